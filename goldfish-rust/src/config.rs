//! Stage configuration (`GOLDFISH_STAGE_CONFIG`) and SVS settings (`GOLDFISH_SVS_CONFIG`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::error::{GoldfishError, Result};

/// How a signal is stored on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Npy,
    Npz,
    Csv,
    Json,
    Directory,
    File,
    Dataset,
}

impl Format {
    pub const ALL: [&'static str; 7] = ["npy", "npz", "csv", "json", "directory", "file", "dataset"];

    pub fn parse(s: &str) -> Result<Format> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "npy" => Format::Npy,
            "npz" => Format::Npz,
            "csv" => Format::Csv,
            "json" => Format::Json,
            "directory" | "dir" => Format::Directory,
            "file" => Format::File,
            "dataset" => Format::Dataset,
            other => {
                return Err(GoldfishError::Config(format!(
                    "unknown format '{}'. Fix: use one of {}.",
                    other,
                    Format::ALL.join(", ")
                )))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Npy => "npy",
            Format::Npz => "npz",
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Directory => "directory",
            Format::File => "file",
            Format::Dataset => "dataset",
        }
    }

    /// File extension for single-file formats.
    pub fn extension(self) -> Option<&'static str> {
        match self {
            Format::Npy => Some("npy"),
            Format::Npz => Some("npz"),
            Format::Csv => Some("csv"),
            Format::Json => Some("json"),
            _ => None,
        }
    }
}

/// One declared input or output.
#[derive(Clone, Debug, PartialEq)]
pub struct SignalSpec {
    pub name: String,
    /// Absolute location the engine resolved (inputs only); a local-dev fallback when the inputs dir lacks it.
    pub location: Option<String>,
    pub format: Option<String>,
    /// The signal's `type`.
    pub kind: Option<String>,
    /// The contract, or None for `schema: null`.
    pub schema: Option<Value>,
    pub artifact: bool,
    /// The signal's whole config object.
    pub raw: Value,
}

impl SignalSpec {
    fn from_value(name: &str, v: &Value) -> SignalSpec {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        SignalSpec {
            name: name.to_string(),
            location: s("location"),
            format: s("format"),
            kind: s("type"),
            schema: v.get("schema").filter(|x| !x.is_null()).cloned(),
            artifact: v.get("artifact").and_then(Value::as_bool).unwrap_or(false),
            raw: v.clone(),
        }
    }

    /// `format`, else `type`, else `default`.
    pub fn effective_format(&self, default: Format) -> Result<Format> {
        match self.format.as_deref().or(self.kind.as_deref()) {
            Some(f) => Format::parse(f).map_err(|e| match e {
                GoldfishError::Config(m) => GoldfishError::Config(format!("signal '{}': {}", self.name, m)),
                other => other,
            }),
            None => Ok(default),
        }
    }

    /// CSV delimiter from `format_params.delimiter` or `delimiter`, if configured.
    pub fn csv_delimiter(&self) -> Result<Option<u8>> {
        let d = self
            .raw
            .get("format_params")
            .and_then(|p| p.get("delimiter"))
            .or_else(|| self.raw.get("delimiter"))
            .and_then(Value::as_str);
        d.map(crate::table::delimiter_from_str).transpose()
    }
}

/// The merged stage config: user keys plus `stage`, `inputs`, `outputs`.
#[derive(Clone, Debug, PartialEq)]
pub struct StageConfig {
    raw: Map<String, Value>,
    inputs: BTreeMap<String, SignalSpec>,
    outputs: BTreeMap<String, SignalSpec>,
}

impl StageConfig {
    /// Parse the JSON text of `GOLDFISH_STAGE_CONFIG`.
    pub fn from_json_str(text: &str) -> Result<StageConfig> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            GoldfishError::Config(format!(
                "GOLDFISH_STAGE_CONFIG is not valid JSON ({}). Fix: pass the JSON object Goldfish generates.",
                e
            ))
        })?;
        StageConfig::from_value(value)
    }

    pub fn from_value(value: Value) -> Result<StageConfig> {
        let raw = match value {
            Value::Object(m) => m,
            other => {
                return Err(GoldfishError::Config(format!(
                "GOLDFISH_STAGE_CONFIG must be a JSON object, got {}. Fix: pass the JSON object Goldfish generates.",
                type_name(&other)
            )))
            }
        };
        let signals = |key: &str| -> Result<BTreeMap<String, SignalSpec>> {
            match raw.get(key) {
                None | Some(Value::Null) => Ok(BTreeMap::new()),
                Some(Value::Object(m)) => {
                    Ok(m.iter().map(|(k, v)| (k.clone(), SignalSpec::from_value(k, v))).collect())
                }
                Some(other) => Err(GoldfishError::Config(format!(
                    "GOLDFISH_STAGE_CONFIG.{} must be an object of signals, got {}.",
                    key,
                    type_name(other)
                ))),
            }
        };
        let inputs = signals("inputs")?;
        let outputs = signals("outputs")?;
        Ok(StageConfig { raw, inputs, outputs })
    }

    /// Read `GOLDFISH_STAGE_CONFIG`.
    pub fn from_env() -> Result<StageConfig> {
        match std::env::var("GOLDFISH_STAGE_CONFIG") {
            Ok(text) => StageConfig::from_json_str(&text),
            Err(_) => Err(GoldfishError::Config(
                "GOLDFISH_STAGE_CONFIG is not set. Fix: run the stage through Goldfish, or for a local test export \
                 GOLDFISH_STAGE_CONFIG='{\"inputs\":{...},\"outputs\":{...}}'."
                    .to_string(),
            )),
        }
    }

    /// The stage name (`stage` key), if present.
    pub fn stage(&self) -> Option<&str> {
        self.raw.get("stage").and_then(Value::as_str)
    }

    /// A top-level config value (user keys, e.g. `get("epochs")`).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.raw.get(key)
    }

    /// A value by dotted path (`optimizer.lr`).
    pub fn get_path(&self, dotted: &str) -> Option<&Value> {
        let mut parts = dotted.split('.');
        let mut cur = self.raw.get(parts.next()?)?;
        for p in parts {
            cur = cur.get(p)?;
        }
        Some(cur)
    }

    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.get_path(key).and_then(Value::as_f64)
    }

    pub fn get_i64(&self, key: &str) -> Option<i64> {
        self.get_path(key).and_then(Value::as_i64)
    }

    pub fn get_bool(&self, key: &str) -> Option<bool> {
        self.get_path(key).and_then(Value::as_bool)
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get_path(key).and_then(Value::as_str)
    }

    /// The whole config object.
    pub fn raw(&self) -> &Map<String, Value> {
        &self.raw
    }

    pub fn inputs(&self) -> &BTreeMap<String, SignalSpec> {
        &self.inputs
    }

    pub fn outputs(&self) -> &BTreeMap<String, SignalSpec> {
        &self.outputs
    }

    pub fn input(&self, name: &str) -> Result<&SignalSpec> {
        self.inputs.get(name).ok_or_else(|| undeclared("input", name, self.inputs.keys()))
    }

    pub fn output(&self, name: &str) -> Result<&SignalSpec> {
        self.outputs.get(name).ok_or_else(|| undeclared("output", name, self.outputs.keys()))
    }
}

fn undeclared<'a>(what: &str, name: &str, known: impl Iterator<Item = &'a String>) -> GoldfishError {
    let known: Vec<&str> = known.map(|s| s.as_str()).collect();
    GoldfishError::Config(format!(
        "{} '{}' is not declared for this stage (declared {}s: {}). Fix: use a declared name or add it to the \
         stage's {}s in pipeline.yaml.",
        what,
        name,
        what,
        if known.is_empty() { "none".to_string() } else { known.join(", ") },
        what
    ))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// What a contract violation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enforcement {
    /// `save_output` returns `Err(Schema)` and writes nothing.
    Blocking,
    /// A WARN log line and a finding; the output is saved.
    Warning,
    /// Nothing.
    Silent,
}

impl Enforcement {
    pub fn as_str(self) -> &'static str {
        match self {
            Enforcement::Blocking => "blocking",
            Enforcement::Warning => "warning",
            Enforcement::Silent => "silent",
        }
    }
}

/// `GOLDFISH_SVS_CONFIG` plus `GOLDFISH_SVS_STATS_ENABLED`.
#[derive(Clone, Debug, PartialEq)]
pub struct SvsConfig {
    pub enabled: bool,
    pub stats_enabled: bool,
    pub default_enforcement: Enforcement,
    pub domain: String,
}

impl Default for SvsConfig {
    fn default() -> Self {
        SvsConfig {
            enabled: true,
            stats_enabled: true,
            default_enforcement: Enforcement::Warning,
            domain: "default".into(),
        }
    }
}

/// Domains with stats thresholds (`svs.domain`).
pub const DOMAINS: [&str; 4] = ["default", "nlp_tokenizer", "image_embeddings", "tabular_features"];

impl SvsConfig {
    /// Parse `GOLDFISH_SVS_CONFIG` and `GOLDFISH_SVS_STATS_ENABLED` (which overrides `stats_enabled`).
    /// Defaults: enabled, stats on, `warning`, `default`; stats are never on while SVS is off.
    /// Unknown values fall back to the defaults and come back as warnings.
    pub fn parse(svs_json: Option<&str>, stats_env: Option<&str>) -> (SvsConfig, Vec<String>) {
        let mut cfg = SvsConfig::default();
        let mut warnings = Vec::new();
        if let Some(text) = svs_json.filter(|t| !t.trim().is_empty()) {
            match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(m)) => {
                    cfg.enabled = m.get("enabled") != Some(&Value::Bool(false));
                    cfg.stats_enabled = m.get("stats_enabled") != Some(&Value::Bool(false));
                    match m.get("default_enforcement") {
                        None => {}
                        Some(v) => match v.as_str() {
                            Some("blocking") => cfg.default_enforcement = Enforcement::Blocking,
                            Some("warning") => cfg.default_enforcement = Enforcement::Warning,
                            Some("silent") => cfg.default_enforcement = Enforcement::Silent,
                            _ => warnings.push(format!(
                                "svs.default_enforcement {} is not one of blocking, warning, silent; using 'warning'.",
                                v
                            )),
                        },
                    }
                    match m.get("domain") {
                        None => {}
                        Some(v) => match v.as_str() {
                            Some(d) if DOMAINS.contains(&d) => cfg.domain = d.to_string(),
                            _ => warnings.push(format!(
                                "svs.domain {} is not one of {}; using 'default'.",
                                v,
                                DOMAINS.join(", ")
                            )),
                        },
                    }
                }
                Ok(_) => warnings.push("GOLDFISH_SVS_CONFIG is not a JSON object; using SVS defaults.".to_string()),
                Err(e) => warnings.push(format!("GOLDFISH_SVS_CONFIG is not valid JSON ({}); using SVS defaults.", e)),
            }
        }
        if let Some(v) = stats_env.map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty()) {
            cfg.stats_enabled = matches!(v.as_str(), "1" | "true" | "yes" | "on");
        }
        cfg.stats_enabled = cfg.enabled && cfg.stats_enabled;
        (cfg, warnings)
    }

    /// Enforcement actually applied: `silent` whenever SVS is disabled.
    pub fn effective_enforcement(&self) -> Enforcement {
        if self.enabled {
            self.default_enforcement
        } else {
            Enforcement::Silent
        }
    }
}

/// `GOLDFISH_INPUTS_DIR` (default `/mnt/inputs`).
pub fn inputs_dir_from_env() -> PathBuf {
    std::env::var_os("GOLDFISH_INPUTS_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| "/mnt/inputs".into())
}

/// `GOLDFISH_OUTPUTS_DIR` (default `/mnt/outputs`).
pub fn outputs_dir_from_env() -> PathBuf {
    std::env::var_os("GOLDFISH_OUTPUTS_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| "/mnt/outputs".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stage_config() {
        let c = StageConfig::from_json_str(
            r#"{"stage":"train","epochs":3,"opt":{"lr":0.1},
                "inputs":{"features":{"location":"/x","format":"npy","type":"npy","schema":null}},
                "outputs":{"model":{"type":"directory","schema":{"kind":"tensor"},"artifact":true}}}"#,
        )
        .unwrap();
        assert_eq!(c.stage(), Some("train"));
        assert_eq!(c.get_i64("epochs"), Some(3));
        assert_eq!(c.get_f64("opt.lr"), Some(0.1));
        let f = c.input("features").unwrap();
        assert_eq!(f.schema, None);
        assert_eq!(f.effective_format(Format::File).unwrap(), Format::Npy);
        let m = c.output("model").unwrap();
        assert!(m.artifact && m.schema.is_some());
        assert_eq!(m.effective_format(Format::File).unwrap(), Format::Directory);
        let e = c.output("modle").unwrap_err().to_string();
        assert!(e.contains("declared outputs: model"), "{}", e);
        assert!(StageConfig::from_json_str("[1]").is_err());
        assert!(StageConfig::from_json_str("{").unwrap_err().to_string().contains("not valid JSON"));
    }

    #[test]
    fn svs_enforcement() {
        let (c, w) = SvsConfig::parse(Some(r#"{"enabled":true,"default_enforcement":"blocking"}"#), None);
        assert!(w.is_empty() && c.stats_enabled, "stats default on");
        assert_eq!(c.effective_enforcement(), Enforcement::Blocking);
        let (c, _) = SvsConfig::parse(Some(r#"{"stats_enabled":false}"#), Some("true"));
        assert!(c.stats_enabled, "the env var overrides");
        let (c, _) = SvsConfig::parse(Some(r#"{"enabled":false,"default_enforcement":"blocking"}"#), Some("true"));
        assert_eq!(c.effective_enforcement(), Enforcement::Silent);
        assert!(!c.stats_enabled, "never stats while SVS is off");
        let (c, w) = SvsConfig::parse(Some("nope"), Some("false"));
        assert_eq!(c.effective_enforcement(), Enforcement::Warning);
        assert!(!c.stats_enabled && w.len() == 1);
        let (c, w) = SvsConfig::parse(Some(r#"{"default_enforcement":"strict","domain":"vision"}"#), None);
        assert_eq!((c.default_enforcement, c.domain.as_str(), w.len()), (Enforcement::Warning, "default", 2));
    }
}
