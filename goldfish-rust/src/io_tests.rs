//! Session-level tests of load_input / save_output against the on-disk contract.

use std::collections::HashMap;
use std::fs;

use serde_json::{json, Value};

use crate::config::{Enforcement, SvsConfig};
use crate::error::GoldfishError;
use crate::npy::{read_npy, write_npy};
use crate::output::OutputData;
use crate::session::tests::session;
use crate::session::Session;
use crate::table::{Column, Table};
use crate::tensor::ArrayD;
use crate::testutil::TempDir;

fn svs(mode: Enforcement, stats: bool) -> SvsConfig {
    SvsConfig { enabled: true, stats_enabled: stats, default_enforcement: mode, domain: "default".into() }
}

const CONFIG: &str = r#"{
  "stage": "train", "epochs": 2,
  "inputs": {
    "features": {"format": "npy", "type": "npy", "schema": null},
    "table": {"format": "csv", "type": "csv", "schema": null, "format_params": {"delimiter": ";"}},
    "raw": {"type": "directory", "schema": null},
    "bundle": {"format": "npz", "type": "npz", "schema": null}
  },
  "outputs": {
    "emb": {"format": "npy", "type": "npy", "schema": {"kind": "tensor", "shape": [null, 4], "dtype": "float32"}},
    "parts": {"type": "directory", "schema": {"kind": "tensor", "primary_array": "x", "arrays": {
        "x": {"shape": [null, 2], "dtype": "float32", "role": "features"},
        "y": {"shape": [null], "dtype": "int64", "role": "labels"}}}},
    "packed": {"type": "npz", "schema": null},
    "report": {"type": "json", "schema": {"kind": "json"}},
    "rows": {"type": "csv", "schema": {"kind": "tabular", "columns": ["id"], "dtypes": {"id": "int64"}}},
    "model": {"type": "directory", "schema": null, "artifact": true},
    "free": {"type": "npy", "schema": null}
  }
}"#;

fn emb(rows: usize, cols: usize) -> OutputData {
    OutputData::TensorF32(
        ArrayD::from_shape_vec(vec![rows, cols], (0..rows * cols).map(|i| i as f32).collect()).unwrap(),
    )
}

fn findings(s: &Session) -> Vec<Value> {
    fs::read(s.runtime_dir().join("svs_findings.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v["findings"].as_array().cloned())
        .unwrap_or_default()
}

fn stats(s: &Session) -> Value {
    fs::read(s.runtime_dir().join("svs_stats.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .map(|v| v["stats"].clone())
        .unwrap_or(Value::Null)
}

fn logs(s: &Session) -> String {
    fs::read_to_string(s.runtime_dir().join("logs.txt")).unwrap_or_default()
}

#[test]
fn loads_each_input_format() {
    let dir = TempDir::new("load");
    let s = session(&dir, Some(CONFIG), SvsConfig::default());
    let a = ArrayD::from_shape_vec(vec![2, 2], vec![1i32, 2, 3, 4]).unwrap();
    // A directory holding <name>.npy, as the run engine stages it.
    write_npy(s.inputs_dir.join("features").join("features.npy"), &a).unwrap();
    fs::create_dir_all(s.inputs_dir.join("raw")).unwrap();
    fs::write(s.inputs_dir.join("table"), "id;score\n1;0.5\n").unwrap();
    fs::write(s.inputs_dir.join("bundle.npz"), b"PK").unwrap();

    assert_eq!(s.load_input("features", None).unwrap().into_tensor_i32().unwrap(), a);
    let t = s.load_input("table", None).unwrap().into_tabular().unwrap();
    assert_eq!(t.dtypes(), vec![("id", "int64"), ("score", "float64")], "format_params.delimiter is used");
    assert_eq!(s.load_input("raw", None).unwrap().into_path().unwrap(), s.inputs_dir.join("raw"));
    assert_eq!(s.load_input("bundle", None).unwrap().into_path().unwrap(), s.inputs_dir.join("bundle.npz"));
    assert_eq!(s.load_input("raw", Some("file")).unwrap().as_path(), Some(&s.inputs_dir.join("raw")));
    assert_eq!(s.input_path("bundle").unwrap(), s.inputs_dir.join("bundle.npz"));
    assert_eq!(logs(&s).matches("Input 'features' has schema: null").count(), 1);

    let e = s.load_input("nope", None).unwrap_err();
    assert!(
        matches!(e, GoldfishError::Config(_))
            && e.to_string().contains("declared inputs: bundle, features, raw, table")
    );
    assert!(matches!(s.load_input("../x", None), Err(GoldfishError::PathSecurity(_))));
    assert!(s.load_input("raw", Some("pickle")).unwrap_err().to_string().contains("unknown format"));
    fs::remove_dir_all(s.inputs_dir.join("raw")).unwrap();
    let e = s.load_input("raw", None).unwrap_err();
    assert!(matches!(e, GoldfishError::Io { .. }) && e.to_string().contains("not found"), "{}", e);
}

#[test]
fn input_location_fallback_and_ambiguity() {
    let dir = TempDir::new("loc");
    let elsewhere = dir.path().join("elsewhere");
    let cfg = json!({"inputs": {"f": {"type": "npy", "location": elsewhere.to_str().unwrap(), "schema": null}}});
    let s = session(&dir, Some(&cfg.to_string()), SvsConfig::default());
    write_npy(elsewhere.join("only.npy"), &ArrayD::from_vec(vec![2u8])).unwrap();
    assert_eq!(s.load_input("f", None).unwrap().into_tensor_u8().unwrap().as_slice(), &[2]);
    write_npy(elsewhere.join("zzz.npy"), &ArrayD::from_vec(vec![1u8])).unwrap();
    let e = s.load_input("f", None).unwrap_err().to_string();
    assert!(e.contains("holds 2 .npy files") && e.contains("ambiguous"), "{}", e);
    write_npy(elsewhere.join("f.npy"), &ArrayD::from_vec(vec![3u8])).unwrap();
    assert_eq!(s.load_input("f", None).unwrap().into_tensor_u8().unwrap().as_slice(), &[3], "<name>.npy wins");
}

#[test]
fn saves_every_kind_where_the_engine_expects_it() {
    let dir = TempDir::new("save");
    let s = session(&dir, Some(CONFIG), svs(Enforcement::Blocking, true));
    let out = s.outputs_dir.clone();

    s.save_output("emb", emb(3, 4), false).unwrap();
    assert_eq!(read_npy::<f32>(out.join("emb.npy")).unwrap().shape(), &[3, 4]);

    let mut m = HashMap::new();
    m.insert("x".to_string(), emb(5, 2));
    m.insert("y".to_string(), OutputData::TensorI64(ArrayD::from_vec(vec![0, 1, 0, 1, 1])));
    s.save_output("parts", OutputData::MultiTensor(m.clone()), false).unwrap();
    assert_eq!(read_npy::<i64>(out.join("parts/y.npy")).unwrap().len(), 5);
    // A later save replaces the directory as a whole.
    m.remove("y");
    s.save_output("free", emb(1, 1), false).unwrap();
    s.save_output("packed", OutputData::MultiTensor(m), false).unwrap();
    assert_eq!(crate::npz::load_npz(out.join("packed.npz")).unwrap().keys(), vec!["x"]);

    s.save_output("report", OutputData::Json(json!({"acc": 0.9})), false).unwrap();
    let v: Value = serde_json::from_slice(&fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(v["acc"], 0.9);

    let t = Table::from_columns(vec![("id", Column::Int64(vec![1, 2]))]).unwrap();
    s.save_output("rows", OutputData::Tabular(t), false).unwrap();
    assert_eq!(fs::read_to_string(out.join("rows.csv")).unwrap(), "id\n1\n2\n");

    // A directory written elsewhere is copied into place; the output's artifact flag marks it.
    let src = dir.path().join("scratch_model");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("sub/w.bin"), b"weights").unwrap();
    s.save_output("model", OutputData::Path(src.clone()), false).unwrap();
    assert_eq!(fs::read(out.join("model/sub/w.bin")).unwrap(), b"weights");
    assert!(out.join(".artifacts/model").exists());
    // Saving the path that already is the output location copies nothing.
    s.save_output("model", OutputData::Path(out.join("model")), false).unwrap();
    fs::write(src.join("sub/w.bin"), b"v2").unwrap();
    s.save_output("model", OutputData::Path(src), false).unwrap();
    assert_eq!(fs::read(out.join("model/sub/w.bin")).unwrap(), b"v2");

    let st = stats(&s);
    assert_eq!(st["emb"]["shape"], json!([3, 4]));
    assert_eq!(st["parts.x"]["dtype"], "float32");
    assert!(st["parts.y"]["entropy"].as_f64().unwrap() > 0.9);
    assert_eq!(st["rows.id"]["dtype"], "int64");
    assert!(st.get("report").is_none());
    assert!(logs(&s).contains("INFO: saved output 'emb' -> emb.npy (float32 [3, 4])"), "{}", logs(&s));
    let leftovers: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".gf-"))
        .collect();
    assert!(leftovers.is_empty(), "{:?}", leftovers);
}

#[test]
fn blocking_mismatch_errors_and_writes_nothing() {
    let dir = TempDir::new("block");
    let s = session(&dir, Some(CONFIG), svs(Enforcement::Blocking, true));
    let e = s.save_output("emb", emb(3, 5), false).unwrap_err();
    assert!(matches!(e, GoldfishError::Schema(_)));
    assert_eq!(
        e.to_string(),
        "schema contract violated: Output 'emb' was not written (svs.default_enforcement: blocking): emb: shape \
         mismatch: expected [null, 4] (null/-1 = any), got [3, 5]. Fix: make the data match the schema in \
         pipeline.yaml, correct the schema, or set svs.default_enforcement: warning in goldfish.yaml."
    );
    assert!(!s.outputs_dir.join("emb.npy").exists());
    let f = findings(&s);
    assert_eq!(f.len(), 1);
    assert_eq!(
        (f[0]["source"].as_str(), f[0]["check"].as_str(), f[0]["severity"].as_str(), f[0]["signal"].as_str()),
        (Some("contract"), Some("shape"), Some("error"), Some("emb"))
    );
    assert!(logs(&s).contains("WARNING: SVS contract error (shape): emb: shape mismatch"));

    let mut m = HashMap::new();
    m.insert("x".to_string(), emb(5, 2));
    let e = s.save_output("parts", OutputData::MultiTensor(m), false).unwrap_err().to_string();
    assert!(e.contains("declared array 'y' is missing"), "{}", e);
    assert!(!s.outputs_dir.join("parts").exists());
}

#[test]
fn blocking_stats_error_blocks_too() {
    let dir = TempDir::new("blockstats");
    let mut cfg = svs(Enforcement::Blocking, true);
    cfg.domain = "image_embeddings".into();
    let s = session(&dir, Some(CONFIG), cfg);
    let mut data: Vec<f32> = (0..400).map(|i| i as f32).collect();
    data[0] = f32::NAN;
    let e = s.save_output("emb", OutputData::TensorF32(ArrayD::from_shape_vec(vec![100, 4], data).unwrap()), false);
    assert!(e.unwrap_err().to_string().contains("null_ratio 0.0025 is above the maximum 0.001"));
    assert!(!s.outputs_dir.join("emb.npy").exists());
    assert_eq!(stats(&s)["emb"]["null_ratio"], 0.0025, "stats are recorded even when the save is blocked");
}

#[test]
fn warning_and_silent_modes_save_anyway() {
    let dir = TempDir::new("warn");
    let s = session(&dir, Some(CONFIG), svs(Enforcement::Warning, false));
    s.save_output("emb", OutputData::TensorF64(ArrayD::zeros(vec![2, 4])), false).unwrap();
    assert!(s.outputs_dir.join("emb.npy").exists());
    let f = findings(&s);
    assert_eq!(f.len(), 1);
    assert_eq!((f[0]["severity"].as_str(), f[0]["check"].as_str()), (Some("warning"), Some("dtype")));
    assert_eq!(f[0]["message"], "emb: dtype mismatch: expected float32, got float64.");
    assert!(logs(&s).contains("WARNING: SVS contract warning (dtype): emb: dtype mismatch"));
    assert!(!s.runtime_dir().join("svs_stats.json").exists(), "stats are off");

    let dir2 = TempDir::new("silent");
    let s2 = session(&dir2, Some(CONFIG), svs(Enforcement::Silent, true));
    s2.save_output("emb", emb(1, 9), false).unwrap();
    let f2 = findings(&s2);
    assert!(f2.iter().all(|f| f["source"] == "stats"), "silent silences contract findings only: {:?}", f2);
    let dir3 = TempDir::new("disabled");
    let s3 = session(&dir3, Some(CONFIG), SvsConfig { enabled: false, stats_enabled: false, ..SvsConfig::default() });
    s3.save_output("emb", emb(1, 9), false).unwrap();
    assert!(findings(&s3).is_empty());
}

#[test]
fn data_format_mismatches_and_bad_names() {
    let dir = TempDir::new("mismatch");
    let s = session(&dir, Some(CONFIG), svs(Enforcement::Silent, false));
    let e = s.save_output("free", OutputData::Json(json!([1])), false).unwrap_err().to_string();
    assert!(e.contains("format npy but was given json data"), "{}", e);
    let mut m = HashMap::new();
    m.insert("a".to_string(), emb(1, 1));
    assert!(s.save_output("free", OutputData::MultiTensor(m.clone()), false).is_err());
    m.insert("../evil".to_string(), emb(1, 1));
    assert!(matches!(s.save_output("parts", OutputData::MultiTensor(m), false), Err(GoldfishError::PathSecurity(_))));
    assert!(matches!(s.save_output("undeclared", emb(1, 1), false), Err(GoldfishError::Config(_))));
    assert!(matches!(s.save_output("a/b", emb(1, 1), false), Err(GoldfishError::PathSecurity(_))));
    let e = s.save_output("model", OutputData::Path(dir.path().join("missing")), false).unwrap_err().to_string();
    assert!(e.contains("does not exist"), "{}", e);
    let file = dir.path().join("weights.bin");
    fs::write(&file, b"w").unwrap();
    let e = s.save_output("model", OutputData::Path(file), false).unwrap_err().to_string();
    assert!(e.contains("is a directory signal but"), "{}", e);
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(dir.path(), &link).unwrap();
    assert!(matches!(s.save_output("model", OutputData::Path(link), false), Err(GoldfishError::PathSecurity(_))));
    let e = s.save_output("model", OutputData::Path(s.outputs_dir.clone()), false).unwrap_err().to_string();
    assert!(e.contains("contains the output path"), "{}", e);
    let names: Vec<String> = fs::read_dir(&s.outputs_dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert!(names.is_empty(), "nothing written: {:?}", names);
}

#[test]
fn null_schema_warns_once_and_output_symlink_is_refused() {
    let dir = TempDir::new("nullschema");
    let s = session(&dir, Some(CONFIG), svs(Enforcement::Blocking, false));
    s.save_output("free", emb(1, 1), false).unwrap();
    s.save_output("free", emb(1, 1), false).unwrap();
    assert_eq!(logs(&s).matches("Output 'free' has schema: null").count(), 1);

    let outside = dir.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, s.outputs_dir.join("model")).unwrap();
    let e = s.save_output("model", OutputData::Path(outside.clone()), false).unwrap_err();
    assert!(matches!(e, GoldfishError::PathSecurity(_)), "{}", e);
    assert!(matches!(s.output_path("model"), Err(GoldfishError::PathSecurity(_))));
}

#[test]
fn path_outputs_are_loaded_for_their_contract() {
    let dir = TempDir::new("pathdir");
    let s = session(&dir, Some(CONFIG), svs(Enforcement::Blocking, true));
    let src = s.output_path("parts").unwrap();
    assert!(src.is_dir(), "get_output_path creates a directory output's directory");
    write_npy(src.join("x.npy"), &ArrayD::from_shape_vec(vec![2, 2], vec![0f32, 1.0, 2.0, 3.0]).unwrap()).unwrap();
    write_npy(src.join("y.npy"), &ArrayD::from_vec(vec![1i64, 2])).unwrap();
    s.save_output("parts", OutputData::Path(src.clone()), false).unwrap();
    assert_eq!(stats(&s)["parts.y"]["dtype"], "int64");
    write_npy(src.join("y.npy"), &ArrayD::from_vec(vec![1i32, 2])).unwrap();
    let e = s.save_output("parts", OutputData::Path(src), false).unwrap_err().to_string();
    assert!(e.contains("parts.y: dtype mismatch: expected int64, got int32."), "{}", e);
    // A file Path against a tensor schema is read and checked when it is .npy.
    let f = dir.path().join("e.npy");
    write_npy(&f, &ArrayD::from_shape_vec(vec![2, 4], vec![0f32, 1., 2., 3., 4., 5., 6., 7.]).unwrap()).unwrap();
    s.save_output("emb", OutputData::Path(f), false).unwrap();
    assert_eq!(read_npy::<f32>(s.outputs_dir.join("emb.npy")).unwrap().shape(), &[2, 4]);
    assert_eq!(s.output_path("emb").unwrap(), s.outputs_dir.join("emb.npy"));
    // An opaque file cannot be checked: saved, with an info finding.
    let g = dir.path().join("e.bin");
    fs::write(&g, b"x").unwrap();
    s.save_output("emb", OutputData::Path(g), false).unwrap();
    let f = findings(&s);
    let last = f.last().unwrap();
    assert_eq!((last["check"].as_str(), last["severity"].as_str()), (Some("unchecked"), Some("info")));
}

#[test]
fn outputs_and_metrics_without_config() {
    let dir = TempDir::new("noconfig");
    let s = session(&dir, None, SvsConfig::default());
    // Metrics, logs and heartbeats need no stage config.
    assert!(s.log_metric("loss", 1.0, None));
    std::env::remove_var("GOLDFISH_STAGE_CONFIG");
    let e = s.save_output("x", emb(1, 1), false).unwrap_err().to_string();
    assert!(e.contains("GOLDFISH_STAGE_CONFIG is not set"), "{}", e);
    assert!(s.output_path("x").is_err());
}
