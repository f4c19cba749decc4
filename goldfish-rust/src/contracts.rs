//! Output contracts: checking data against a signal's `schema` (tensor, tabular, json).

use std::collections::HashMap;

use serde_json::Value;

use crate::output::OutputData;
use crate::table::Table;

/// Canonical numpy dtype name for the common spellings (`f4`, `<f4`, `float`, `single`, ...).
pub fn normalize_dtype(s: &str) -> String {
    let t = s.trim().to_ascii_lowercase();
    let t = t.trim_start_matches(['<', '>', '|', '=']);
    match t {
        "float32" | "f4" | "single" => "float32",
        "float64" | "f8" | "double" | "float" | "float_" | "d" => "float64",
        "float16" | "f2" | "half" => "float16",
        "int64" | "i8" | "int" | "long" | "int_" | "longlong" => "int64",
        "int32" | "i4" | "intc" => "int32",
        "int16" | "i2" | "short" => "int16",
        "int8" | "i1" | "byte" => "int8",
        "uint8" | "u1" | "ubyte" => "uint8",
        "uint16" | "u2" => "uint16",
        "uint32" | "u4" => "uint32",
        "uint64" | "u8" => "uint64",
        "bool" | "b1" | "?" | "bool_" | "boolean" => "bool",
        "object" | "o" | "str" | "string" | "unicode" => "object",
        other => return other.to_string(),
    }
    .to_string()
}

/// The schema's kind: explicit `kind`, else inferred from its fields.
pub fn schema_kind(schema: &Value) -> String {
    if let Some(k) = schema.get("kind").and_then(Value::as_str) {
        return k.to_string();
    }
    if schema.get("columns").is_some() || schema.get("dtypes").is_some() {
        "tabular".into()
    } else if schema.get("shape").is_some() || schema.get("dtype").is_some() || schema.get("arrays").is_some() {
        "tensor".into()
    } else {
        "file".into()
    }
}

fn shape_str(shape: &[usize]) -> String {
    format!("[{}]", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "))
}

/// Check one tensor against `{shape, dtype, rank}`; `label` prefixes each problem.
fn check_tensor(spec: &Value, data: &OutputData, label: &str, out: &mut Vec<String>) {
    let (shape, dtype) = match (data.shape(), data.dtype_str()) {
        (Some(s), Some(d)) => (s, d),
        _ => {
            out.push(format!("{}expected a tensor, got {} data", label, data.kind_name()));
            return;
        }
    };
    if let Some(declared) = spec.get("dtype").and_then(Value::as_str) {
        if normalize_dtype(declared) != dtype {
            out.push(format!("{}dtype is {}, schema expects {}", label, dtype, declared));
        }
    }
    if let Some(rank) = spec.get("rank").and_then(Value::as_u64) {
        if rank as usize != shape.len() {
            out.push(format!(
                "{}rank is {} (shape {}), schema expects rank {}",
                label,
                shape.len(),
                shape_str(shape),
                rank
            ));
        }
    }
    if let Some(dims) = spec.get("shape").and_then(Value::as_array) {
        if dims.len() != shape.len() {
            out.push(format!(
                "{}shape {} has {} dimensions, schema shape {} has {}",
                label,
                shape_str(shape),
                shape.len(),
                Value::Array(dims.clone()),
                dims.len()
            ));
        } else {
            for (i, (want, &got)) in dims.iter().zip(shape).enumerate() {
                let wildcard = want.is_null() || want.as_i64() == Some(-1);
                if !wildcard && want.as_u64() != Some(got as u64) {
                    out.push(format!(
                        "{}dimension {} is {}, schema expects {} (shape {} vs {})",
                        label,
                        i,
                        got,
                        want,
                        shape_str(shape),
                        Value::Array(dims.clone())
                    ));
                }
            }
        }
    }
}

/// Check named arrays against `arrays: {name: {shape, dtype}}`: every declared array must be present.
fn check_arrays(arrays: &serde_json::Map<String, Value>, data: &HashMap<String, OutputData>, out: &mut Vec<String>) {
    for (name, spec) in arrays {
        match data.get(name) {
            Some(d) => check_tensor(spec, d, &format!("array '{}': ", name), out),
            None => {
                let mut have: Vec<&str> = data.keys().map(|k| k.as_str()).collect();
                have.sort_unstable();
                out.push(format!("array '{}' is missing (present: {})", name, have.join(", ")))
            }
        }
    }
}

fn check_table(schema: &Value, t: &Table, out: &mut Vec<String>) {
    if let Some(cols) = schema.get("columns").and_then(Value::as_array) {
        let want: Vec<&str> = cols.iter().filter_map(Value::as_str).collect();
        let got: Vec<&str> = t.column_names().iter().map(|s| s.as_str()).collect();
        if want != got {
            out.push(format!("columns are {:?}, schema expects {:?}", got, want));
        }
    }
    if let Some(dtypes) = schema.get("dtypes").and_then(Value::as_object) {
        for (col, want) in dtypes {
            let want = want.as_str().unwrap_or("");
            match t.column(col) {
                Some(c) if normalize_dtype(want) != c.dtype() => {
                    out.push(format!("column '{}' has dtype {}, schema expects {}", col, c.dtype(), want))
                }
                Some(_) => {}
                None => out.push(format!("column '{}' (declared in dtypes) is missing", col)),
            }
        }
    }
}

/// All contract problems of `data` against `schema` (empty when it conforms). `Path` data must be
/// loaded by the caller first (see `io`), except that a Path can never satisfy json/tabular kinds.
pub fn check(schema: &Value, data: &OutputData) -> Vec<String> {
    let mut out = Vec::new();
    match schema_kind(schema).as_str() {
        "tensor" => match (schema.get("arrays").and_then(Value::as_object), data) {
            (Some(arrays), OutputData::MultiTensor(m)) => check_arrays(arrays, m, &mut out),
            (Some(arrays), d) if d.is_tensor() => {
                let primary = schema.get("primary_array").and_then(Value::as_str);
                let spec = match primary {
                    Some(p) => arrays.get(p).map(|s| (p.to_string(), s)),
                    None => arrays.iter().next().map(|(k, s)| (k.clone(), s)),
                };
                match spec {
                    Some((name, s)) => check_tensor(s, d, &format!("array '{}': ", name), &mut out),
                    None => out.push("schema declares no arrays".to_string()),
                }
            }
            (None, OutputData::MultiTensor(m)) => out.push(format!(
                "schema describes one tensor but the data holds {} named arrays; declare them under 'arrays'",
                m.len()
            )),
            (_, d) => check_tensor(schema, d, "", &mut out),
        },
        "tabular" => match data {
            OutputData::Tabular(t) => check_table(schema, t, &mut out),
            other => out.push(format!("expected tabular data, got {} data", other.kind_name())),
        },
        "json" => match data {
            OutputData::Json(Value::Object(_)) | OutputData::Json(Value::Array(_)) => {}
            OutputData::Json(_) => out.push("json schema needs an object or a list, got a scalar".to_string()),
            other => out.push(format!("expected json data (an object or a list), got {} data", other.kind_name())),
        },
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Column;
    use crate::tensor::ArrayD;
    use serde_json::json;

    fn f32s(shape: Vec<usize>) -> OutputData {
        let n = shape.iter().product();
        OutputData::TensorF32(ArrayD::from_shape_vec(shape, vec![0.0; n]).unwrap())
    }

    #[test]
    fn tensor_shape_dtype_rank() {
        let s = json!({"kind": "tensor", "shape": [null, 768], "dtype": "float32"});
        assert!(check(&s, &f32s(vec![5, 768])).is_empty());
        assert!(check(&json!({"shape": [-1, 768], "dtype": "<f4", "rank": 2}), &f32s(vec![1, 768])).is_empty());
        let p = check(&s, &f32s(vec![5, 767]));
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("dimension 1 is 767, schema expects 768"), "{:?}", p);
        let p = check(&json!({"kind": "tensor", "shape": [3], "dtype": "int64", "rank": 3}), &f32s(vec![2, 2]));
        assert_eq!(p.len(), 3, "all problems are reported together: {:?}", p);
        assert!(!check(&s, &OutputData::Json(json!({}))).is_empty());
    }

    #[test]
    fn multi_array_schemas() {
        let s = json!({"kind": "tensor", "primary_array": "x", "arrays": {
            "x": {"shape": [null, 2], "dtype": "float32", "role": "features"},
            "y": {"shape": [null], "dtype": "int64", "role": "labels"}}});
        let mut m = HashMap::new();
        m.insert("x".to_string(), f32s(vec![4, 2]));
        m.insert("y".to_string(), OutputData::TensorI64(ArrayD::from_vec(vec![1, 2, 3, 4])));
        assert!(check(&s, &OutputData::MultiTensor(m.clone())).is_empty());
        m.remove("y");
        assert!(check(&s, &OutputData::MultiTensor(m))[0].contains("array 'y' is missing"));
        assert!(check(&s, &f32s(vec![4, 2])).is_empty(), "single array checked against primary_array");
        assert!(!check(&s, &f32s(vec![4, 3])).is_empty());
    }

    #[test]
    fn tabular_and_json() {
        let t = Table::from_columns(vec![("a", Column::Int64(vec![1])), ("b", Column::Str(vec![None]))]).unwrap();
        let ok = json!({"kind": "tabular", "columns": ["a", "b"], "dtypes": {"a": "int64", "b": "str"}});
        assert!(check(&ok, &OutputData::Tabular(t.clone())).is_empty());
        let bad = json!({"columns": ["b", "a"], "dtypes": {"a": "float64", "c": "int64"}});
        assert_eq!(check(&bad, &OutputData::Tabular(t)).len(), 3);
        let j = json!({"kind": "json"});
        assert!(check(&j, &OutputData::Json(json!([1]))).is_empty());
        assert!(!check(&j, &OutputData::Json(json!(1))).is_empty());
        assert!(check(&json!({"kind": "file"}), &f32s(vec![1])).is_empty());
    }

    #[test]
    fn dtype_spellings() {
        for (a, b) in [
            ("f4", "float32"),
            ("<f8", "float64"),
            ("float", "float64"),
            ("int", "int64"),
            ("|u1", "uint8"),
            ("Int64", "int64"),
        ] {
            assert_eq!(normalize_dtype(a), b);
        }
    }
}
