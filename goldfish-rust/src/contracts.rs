//! Output contracts: does this data match what pipeline.yaml promised? Same checks, check names and
//! messages as the Python SDK (`stage_sdk/contracts.py`).

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::output::OutputData;
use crate::table::Table;

/// One contract problem: `check` is `shape`, `dtype`, `rank`, `columns`, `arrays`, `type` or `schema`.
#[derive(Clone, Debug, PartialEq)]
pub struct ContractIssue {
    pub check: &'static str,
    pub message: String,
}

fn issue(check: &'static str, message: String) -> ContractIssue {
    ContractIssue { check, message }
}

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

/// The schema's kind: explicit `kind`, else inferred from its fields; None when it says nothing.
pub fn schema_kind(schema: &Value) -> Option<String> {
    if let Some(k) = schema.get("kind").filter(|k| !k.is_null()) {
        return Some(k.as_str().map(str::to_string).unwrap_or_else(|| k.to_string()));
    }
    if schema.get("columns").is_some() || schema.get("dtypes").is_some() {
        Some("tabular".into())
    } else if ["shape", "dtype", "rank", "arrays"].iter().any(|k| schema.get(k).is_some()) {
        Some("tensor".into())
    } else {
        None
    }
}

fn fmt_dims(dims: &[Value]) -> String {
    let parts: Vec<String> = dims.iter().map(|d| if d.is_null() { "null".into() } else { d.to_string() }).collect();
    format!("[{}]", parts.join(", "))
}

fn fmt_shape(shape: &[usize]) -> String {
    format!("[{}]", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "))
}

fn check_array(data: &OutputData, spec: &Map<String, Value>, label: &str, out: &mut Vec<ContractIssue>) {
    let (shape, dtype) = match (data.shape(), data.dtype_str()) {
        (Some(s), Some(d)) => (s, d),
        _ => {
            out.push(issue("type", format!("{}: expected an array, got {} data.", label, data.kind_name())));
            return;
        }
    };
    if let Some(want) = spec.get("shape").filter(|v| !v.is_null()) {
        let dims = want.as_array().filter(|a| a.iter().all(|d| d.is_null() || d.as_i64().map_or(false, |x| x >= -1)));
        match dims {
            None => out.push(issue(
                "schema",
                format!("{}: schema shape {} must be a list of ints, null or -1 (wildcard).", label, want),
            )),
            Some(dims) => {
                let matches = dims.len() == shape.len()
                    && dims
                        .iter()
                        .zip(shape)
                        .all(|(w, &got)| w.is_null() || w.as_i64() == Some(-1) || w.as_u64() == Some(got as u64));
                if !matches {
                    out.push(issue(
                        "shape",
                        format!(
                            "{}: shape mismatch: expected {} (null/-1 = any), got {}.",
                            label,
                            fmt_dims(dims),
                            fmt_shape(shape)
                        ),
                    ));
                }
            }
        }
    }
    if let Some(rank) = spec.get("rank").filter(|v| !v.is_null()) {
        if rank.as_u64() != Some(shape.len() as u64) {
            out.push(issue(
                "rank",
                format!(
                    "{}: rank mismatch: expected {}, got {} (shape {}).",
                    label,
                    rank,
                    shape.len(),
                    fmt_shape(shape)
                ),
            ));
        }
    }
    if let Some(want) = spec.get("dtype").filter(|v| !v.is_null()) {
        let want = want.as_str().map(str::to_string).unwrap_or_else(|| want.to_string());
        if normalize_dtype(&want) != dtype {
            out.push(issue("dtype", format!("{}: dtype mismatch: expected {}, got {}.", label, want, dtype)));
        }
    }
}

fn check_named(
    arrays: &HashMap<String, OutputData>,
    schema: &Map<String, Value>,
    signal: &str,
    out: &mut Vec<ContractIssue>,
) {
    let mut keys: Vec<&String> = arrays.keys().collect();
    keys.sort();
    match schema.get("arrays").and_then(Value::as_object) {
        None if keys.len() == 1 => check_array(&arrays[keys[0]], schema, &format!("{}.{}", signal, keys[0]), out),
        None => out.push(issue(
            "type",
            format!(
                "{}: the schema describes one tensor but the data holds several arrays ({}). Fix: save one array, \
                 or describe them with schema.arrays.",
                signal,
                keys.iter().take(10).map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
            ),
        )),
        Some(declared) => {
            for (name, spec) in declared {
                match arrays.get(name) {
                    Some(d) => {
                        check_array(d, spec.as_object().unwrap_or(&Map::new()), &format!("{}.{}", signal, name), out)
                    }
                    None => {
                        let have = keys.iter().take(10).map(|k| k.as_str()).collect::<Vec<_>>().join(", ");
                        out.push(issue(
                            "arrays",
                            format!(
                                "{}: declared array '{}' is missing; the data has {}.",
                                signal,
                                name,
                                if have.is_empty() { "no arrays".to_string() } else { have }
                            ),
                        ))
                    }
                }
            }
        }
    }
}

fn check_tensor(data: &OutputData, schema: &Map<String, Value>, signal: &str, out: &mut Vec<ContractIssue>) {
    let arrays = schema.get("arrays").filter(|v| !v.is_null());
    if let Some(a) = arrays {
        if a.as_object().map_or(true, |m| m.is_empty()) {
            out.push(issue(
                "schema",
                format!("{}: schema arrays must be a non-empty mapping of name to {{shape, dtype}}.", signal),
            ));
            return;
        }
    }
    if let OutputData::MultiTensor(m) = data {
        return check_named(m, schema, signal, out);
    }
    let declared = match arrays.and_then(Value::as_object) {
        Some(d) if !["shape", "dtype", "rank"].iter().any(|k| schema.contains_key(*k)) => d,
        _ => return check_array(data, schema, signal, out),
    };
    let name = match schema.get("primary_array").and_then(Value::as_str) {
        Some(p) if !declared.contains_key(p) => {
            out.push(issue(
                "schema",
                format!(
                    "{}: primary_array '{}' is not one of the declared arrays ({}).",
                    signal,
                    p,
                    declared.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
            return;
        }
        Some(p) => p.to_string(),
        None => declared.keys().next().cloned().unwrap_or_default(),
    };
    let spec = declared.get(&name).and_then(Value::as_object).cloned().unwrap_or_default();
    check_array(data, &spec, &format!("{} ({})", signal, name), out);
}

fn dtype_matches(want: &str, got: &str) -> bool {
    let w = normalize_dtype(want);
    w == got || (w == "object" && got == "object")
}

fn check_tabular(data: &OutputData, schema: &Map<String, Value>, signal: &str, out: &mut Vec<ContractIssue>) {
    let t: &Table = match data {
        OutputData::Tabular(t) => t,
        other => {
            out.push(issue(
                "type",
                format!("{}: expected a table (OutputData::Tabular), got {} data.", signal, other.kind_name()),
            ));
            return;
        }
    };
    let want_dtypes = match schema.get("dtypes").filter(|v| !v.is_null()) {
        None => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            out.push(issue("schema", format!("{}: schema dtypes must map column -> dtype.", signal)));
            return;
        }
    };
    let cols: Vec<&str> = t.column_names().iter().map(|s| s.as_str()).collect();
    let want_cols = schema.get("columns").filter(|v| !v.is_null());
    if let Some(w) = want_cols {
        match w.as_array() {
            None => out.push(issue("schema", format!("{}: schema columns must be a list.", signal))),
            Some(list) => {
                let want: Vec<String> =
                    list.iter().map(|c| c.as_str().map(str::to_string).unwrap_or_else(|| c.to_string())).collect();
                if want != cols {
                    let missing: Vec<&String> = want.iter().filter(|c| !cols.contains(&c.as_str())).collect();
                    let extra: Vec<&&str> = cols.iter().filter(|c| !want.iter().any(|w| w == **c)).collect();
                    let mut detail = Vec::new();
                    if !missing.is_empty() {
                        detail.push(format!("missing {:?}", missing));
                    }
                    if !extra.is_empty() {
                        detail.push(format!("unexpected {:?}", extra));
                    }
                    if detail.is_empty() {
                        detail.push("same columns in a different order".to_string());
                    }
                    out.push(issue(
                        "columns",
                        format!(
                            "{}: columns mismatch ({}): expected {:?}, got {:?}.",
                            signal,
                            detail.join("; "),
                            want,
                            cols
                        ),
                    ));
                }
            }
        }
    }
    for (col, want) in &want_dtypes {
        let want = want.as_str().map(str::to_string).unwrap_or_else(|| want.to_string());
        match t.column(col) {
            None if want_cols.is_none() => {
                out.push(issue("columns", format!("{}: column '{}' (declared in dtypes) is missing.", signal, col)))
            }
            None => {}
            Some(c) if !dtype_matches(&want, c.dtype()) => out.push(issue(
                "dtype",
                format!("{}: column '{}' dtype mismatch: expected {}, got {}.", signal, col, want, c.dtype()),
            )),
            Some(_) => {}
        }
    }
}

/// All contract problems of `data` against `schema` (empty when it conforms, or for `file` schemas).
pub fn check(schema: &Value, data: &OutputData, signal: &str) -> Vec<ContractIssue> {
    let mut out = Vec::new();
    let map = match schema {
        Value::Null => return out,
        Value::Object(m) => m,
        other => {
            out.push(issue(
                "schema",
                format!(
                    "{}: schema must be a mapping or null, got {}. Fix: use schema: {{kind: tensor, ...}} or schema: null.",
                    signal, other
                ),
            ));
            return out;
        }
    };
    match schema_kind(schema).as_deref() {
        Some("tensor") => check_tensor(data, map, signal, &mut out),
        Some("tabular") => check_tabular(data, map, signal, &mut out),
        Some("json") => match data {
            OutputData::Json(Value::Object(_)) | OutputData::Json(Value::Array(_)) => {}
            other => out.push(issue(
                "type",
                format!(
                    "{}: expected JSON (an object or a list), got {}.",
                    signal,
                    match other {
                        OutputData::Json(_) => "a JSON scalar",
                        d => d.kind_name(),
                    }
                ),
            )),
        },
        Some("file") | None => {}
        Some(kind) => out.push(issue(
            "schema",
            format!(
                "{}: unknown schema kind '{}'. Fix: use one of tensor, tabular, json, file, or schema: null.",
                signal, kind
            ),
        )),
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

    fn checks(v: &[ContractIssue]) -> Vec<&str> {
        v.iter().map(|i| i.check).collect()
    }

    #[test]
    fn tensor_shape_dtype_rank() {
        let s = json!({"kind": "tensor", "shape": [null, 768], "dtype": "float32"});
        assert!(check(&s, &f32s(vec![5, 768]), "emb").is_empty());
        assert!(check(&json!({"shape": [-1, 768], "dtype": "<f4", "rank": 2}), &f32s(vec![1, 768]), "emb").is_empty());
        let p = check(&s, &f32s(vec![5, 767]), "emb");
        assert_eq!(p[0].message, "emb: shape mismatch: expected [null, 768] (null/-1 = any), got [5, 767].");
        let p = check(&json!({"kind": "tensor", "shape": [3], "dtype": "int64", "rank": 3}), &f32s(vec![2, 2]), "x");
        assert_eq!(checks(&p), vec!["shape", "rank", "dtype"], "all problems are reported together");
        assert_eq!(p[2].message, "x: dtype mismatch: expected int64, got float32.");
        assert_eq!(checks(&check(&s, &OutputData::Json(json!({})), "emb")), vec!["type"]);
        assert_eq!(checks(&check(&json!({"shape": "big"}), &f32s(vec![1]), "x")), vec!["schema"]);
    }

    #[test]
    fn multi_array_schemas() {
        let s = json!({"kind": "tensor", "primary_array": "x", "arrays": {
            "x": {"shape": [null, 2], "dtype": "float32", "role": "features"},
            "y": {"shape": [null], "dtype": "int64", "role": "labels"}}});
        let mut m = HashMap::new();
        m.insert("x".to_string(), f32s(vec![4, 2]));
        m.insert("y".to_string(), OutputData::TensorI64(ArrayD::from_vec(vec![1, 2, 3, 4])));
        assert!(check(&s, &OutputData::MultiTensor(m.clone()), "d").is_empty());
        m.remove("y");
        assert_eq!(
            check(&s, &OutputData::MultiTensor(m.clone()), "d")[0].message,
            "d: declared array 'y' is missing; the data has x."
        );
        assert!(check(&s, &f32s(vec![4, 2]), "d").is_empty(), "a single array is checked against primary_array");
        assert!(check(&s, &f32s(vec![4, 3]), "d")[0].message.starts_with("d (x): shape mismatch"));
        let single = json!({"kind": "tensor", "shape": [4, 2]});
        assert!(check(&single, &OutputData::MultiTensor(m.clone()), "d").is_empty(), "one array vs one-tensor schema");
        m.insert("z".to_string(), f32s(vec![1]));
        assert_eq!(checks(&check(&single, &OutputData::MultiTensor(m), "d")), vec!["type"]);
        let bad = json!({"kind": "tensor", "primary_array": "q", "arrays": {"x": {}}});
        assert_eq!(checks(&check(&bad, &f32s(vec![1]), "d")), vec!["schema"]);
    }

    #[test]
    fn tabular_json_and_kinds() {
        let t = Table::from_columns(vec![("a", Column::Int64(vec![1])), ("b", Column::Str(vec![None]))]).unwrap();
        let ok = json!({"kind": "tabular", "columns": ["a", "b"], "dtypes": {"a": "int64", "b": "str"}});
        assert!(check(&ok, &OutputData::Tabular(t.clone()), "t").is_empty());
        let bad = json!({"columns": ["b", "a"], "dtypes": {"a": "float64"}});
        let p = check(&bad, &OutputData::Tabular(t.clone()), "t");
        assert_eq!(checks(&p), vec!["columns", "dtype"]);
        assert!(p[0].message.contains("same columns in a different order"));
        let missing = json!({"dtypes": {"c": "int64"}});
        assert_eq!(
            check(&missing, &OutputData::Tabular(t), "t")[0].message,
            "t: column 'c' (declared in dtypes) is missing."
        );
        let j = json!({"kind": "json"});
        assert!(check(&j, &OutputData::Json(json!([1])), "j").is_empty());
        assert_eq!(checks(&check(&j, &OutputData::Json(json!(1)), "j")), vec!["type"]);
        assert!(check(&json!({"kind": "file"}), &f32s(vec![1]), "f").is_empty());
        assert!(check(&json!({"note": "nothing"}), &f32s(vec![1]), "f").is_empty());
        assert_eq!(checks(&check(&json!({"kind": "image"}), &f32s(vec![1]), "f")), vec!["schema"]);
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
