//! `metrics.jsonl`: validated metric and artifact records. Invalid items are skipped and counted as
//! "lost"; nothing here returns an error or panics into stage code.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Component, Path};
use std::time::{Duration, Instant, SystemTime};

use crate::session::{lock, Finding, Session};
use crate::timefmt::iso_utc;

/// Longest metric or artifact name.
pub const MAX_METRIC_NAME_LEN: usize = 256;
/// Distinct warning lines written about rejected metrics before going quiet (counts continue).
const MAX_REJECTION_WARNINGS: usize = 50;

pub(crate) struct MetricsState {
    file: Option<File>,
    /// name → logged with a step (true) or without (false), fixed by the first accepted record.
    modes: HashMap<String, bool>,
    max_names: usize,
    lost: BTreeMap<&'static str, u64>,
    last_lost_flush: Instant,
    lost_flush_interval: Duration,
    health_reported: HashSet<String>,
    warnings: usize,
}

impl MetricsState {
    pub(crate) fn new(max_names: usize, lost_flush_interval: Duration) -> Self {
        MetricsState {
            file: None,
            modes: HashMap::new(),
            max_names,
            lost: BTreeMap::new(),
            last_lost_flush: Instant::now(),
            lost_flush_interval,
            health_reported: HashSet::new(),
            warnings: 0,
        }
    }
}

/// Why a record was skipped (the keys of the `lost` record's `reasons`).
fn name_problem(name: &str) -> Option<&'static str> {
    let b = name.as_bytes();
    if b.is_empty() {
        return Some("is empty");
    }
    if b.len() > MAX_METRIC_NAME_LEN {
        return Some("is longer than 256 characters");
    }
    if !b[0].is_ascii_alphabetic() {
        return Some("must start with a letter");
    }
    if !b.iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'/' | b':')) {
        return Some("may only contain letters, digits and _ . - / :");
    }
    if name.contains("..") || name.contains("//") {
        return Some("must not contain '..' or '//'");
    }
    None
}

/// True when `name` is a valid metric/artifact name: `^[A-Za-z][A-Za-z0-9_.\-/:]{0,255}$`
/// without `..` or `//`.
pub fn is_valid_metric_name(name: &str) -> bool {
    name_problem(name).is_none()
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok()?;
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Problems with an artifact path (relative to the outputs dir), checked on the raw and the
/// %-decoded text.
fn artifact_path_problem(outputs: &Path, raw: &str) -> Option<String> {
    if raw.is_empty() {
        return Some("is empty".into());
    }
    if raw.trim() != raw {
        return Some("has leading or trailing whitespace".into());
    }
    if !raw.is_ascii() {
        return Some("must be ASCII (non-ASCII lookalikes of '/' and '.' are refused)".into());
    }
    let decoded = match percent_decode(raw) {
        Some(d) => d,
        None => return Some("has an invalid %-escape".into()),
    };
    for text in [raw, decoded.as_str()] {
        if text.contains('\0') {
            return Some("contains a NUL byte".into());
        }
        if text.contains('\\') {
            return Some("contains a backslash".into());
        }
        if text.chars().any(|c| {
            c.is_control()
                || matches!(
                    c,
                    ';' | '|'
                        | '&'
                        | '$'
                        | '`'
                        | '"'
                        | '\''
                        | '<'
                        | '>'
                        | '*'
                        | '?'
                        | '!'
                        | '~'
                        | '{'
                        | '}'
                        | '['
                        | ']'
                )
        }) {
            return Some("contains a shell metacharacter or control character".into());
        }
        let p = Path::new(text);
        if p.is_absolute() {
            return Some("is absolute; give it relative to the outputs directory".into());
        }
        if p.components().any(|c| matches!(c, Component::ParentDir)) {
            return Some("contains '..'".into());
        }
    }
    // No component may be a symlink, and the result must stay inside the outputs dir.
    let mut cur = outputs.to_path_buf();
    for c in Path::new(raw).components() {
        if let Component::Normal(part) = c {
            cur.push(part);
            if let Ok(m) = fs::symlink_metadata(&cur) {
                if m.file_type().is_symlink() {
                    return Some(format!("goes through a symlink ({})", cur.display()));
                }
            }
        }
    }
    if crate::paths::ensure_inside(outputs, &outputs.join(raw), "artifact").is_err() {
        return Some("resolves outside the outputs directory".into());
    }
    None
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn json_f64(x: f64) -> String {
    serde_json::to_string(&x).unwrap_or_else(|_| "null".into())
}

impl Session {
    fn metrics_path(&self) -> std::path::PathBuf {
        self.runtime_dir().join("metrics.jsonl")
    }

    /// Append one line with a single write so concurrent writers never interleave within a line.
    fn append_record(&self, st: &mut MetricsState, line: &str) -> bool {
        if st.file.is_none() {
            let opened = fs::create_dir_all(self.runtime_dir())
                .and_then(|_| OpenOptions::new().create(true).append(true).open(self.metrics_path()));
            match opened {
                Ok(f) => st.file = Some(f),
                Err(_) => return false,
            }
        }
        let mut buf = String::with_capacity(line.len() + 1);
        buf.push_str(line);
        buf.push('\n');
        match st.file.as_mut().map(|f| f.write_all(buf.as_bytes())) {
            Some(Ok(())) => true,
            _ => {
                st.file = None;
                false
            }
        }
    }

    fn reject(&self, st: &mut MetricsState, reason: &'static str, message: String) {
        *st.lost.entry(reason).or_insert(0) += 1;
        if st.warnings < MAX_REJECTION_WARNINGS && self.first_time(&format!("metric-reject:{}", message)) {
            st.warnings += 1;
            let suffix =
                if st.warnings == MAX_REJECTION_WARNINGS { " (further rejections are only counted)" } else { "" };
            self.log(&format!("{}{}", message, suffix), "WARN");
        }
    }

    /// Validate and record one metric. Returns true when it was written.
    pub(crate) fn log_metric(&self, name: &str, value: f64, step: Option<i64>) -> bool {
        let mut st = lock(&self.metrics);
        let ok = self.log_metric_locked(&mut st, name, value, step, SystemTime::now());
        self.maybe_flush_lost(&mut st, false);
        ok
    }

    /// Record several metrics with one timestamp. Returns how many were written.
    pub(crate) fn log_metrics(&self, items: Vec<(String, f64)>, step: Option<i64>) -> usize {
        let mut st = lock(&self.metrics);
        let now = SystemTime::now();
        let n = items.into_iter().filter(|(k, v)| self.log_metric_locked(&mut st, k, *v, step, now)).count();
        self.maybe_flush_lost(&mut st, false);
        n
    }

    fn log_metric_locked(
        &self,
        st: &mut MetricsState,
        name: &str,
        value: f64,
        step: Option<i64>,
        at: SystemTime,
    ) -> bool {
        if let Some(p) = name_problem(name) {
            self.reject(
                st,
                "invalid_name",
                format!("metric {:?} skipped: the name {}. Use names like train/loss.", name, p),
            );
            return false;
        }
        if !value.is_finite() {
            let what = if value.is_nan() {
                "NaN"
            } else if value > 0.0 {
                "+Inf"
            } else {
                "-Inf"
            };
            let at_step = step.map(|s| format!(" at step {}", s)).unwrap_or_default();
            self.reject(st, "non_finite_value", format!("metric '{}' skipped: value is {}{}.", name, what, at_step));
            if st.health_reported.insert(name.to_string()) {
                self.add_finding(Finding {
                    source: "metric_health",
                    check: "non_finite_metric".into(),
                    severity: "error",
                    signal: None,
                    message: format!(
                        "metric '{}' was {}{}; the value was skipped (training may have diverged)",
                        name, what, at_step
                    ),
                    value: None,
                    threshold: None,
                });
            }
            return false;
        }
        if let Some(s) = step {
            if s < 0 {
                self.reject(
                    st,
                    "invalid_step",
                    format!("metric '{}' skipped: step {} is negative; steps are integers >= 0.", name, s),
                );
                return false;
            }
        }
        match st.modes.get(name) {
            Some(&stepped) if stepped != step.is_some() => {
                let (was, now) = if stepped { ("with a step", "without one") } else { ("without a step", "with one") };
                self.reject(
                    st,
                    "step_mode_mismatch",
                    format!(
                        "metric '{}' skipped: it was first logged {} and is now logged {}; keep one mode per name.",
                        name, was, now
                    ),
                );
                return false;
            }
            Some(_) => {}
            None => {
                if st.modes.len() >= st.max_names {
                    self.reject(
                        st,
                        "name_cap",
                        format!(
                            "metric '{}' skipped: this run already has {} metric names (the cap).",
                            name, st.max_names
                        ),
                    );
                    return false;
                }
            }
        }
        let step_json = step.map(|s| s.to_string()).unwrap_or_else(|| "null".into());
        let line = format!(
            "{{\"type\":\"metric\",\"name\":{},\"value\":{},\"step\":{},\"timestamp\":{}}}",
            json_str(name),
            json_f64(value),
            step_json,
            json_str(&iso_utc(at))
        );
        if !self.append_record(st, &line) {
            self.reject(
                st,
                "write_error",
                format!("metric '{}' skipped: cannot write {}.", name, self.metrics_path().display()),
            );
            return false;
        }
        st.modes.entry(name.to_string()).or_insert(step.is_some());
        true
    }

    /// Validate and record an artifact (path relative to the outputs dir). Returns true when written.
    pub(crate) fn log_artifact(&self, name: &str, path: &str) -> bool {
        let mut st = lock(&self.metrics);
        if let Some(p) = name_problem(name) {
            self.reject(&mut st, "invalid_name", format!("artifact {:?} skipped: the name {}.", name, p));
            return false;
        }
        if let Some(p) = artifact_path_problem(&self.outputs_dir, path) {
            self.reject(
                &mut st,
                "invalid_artifact_path",
                format!("artifact '{}' skipped: path {:?} {}.", name, path, p),
            );
            return false;
        }
        let line = format!(
            "{{\"type\":\"artifact\",\"name\":{},\"path\":{},\"timestamp\":{},\"backend_url\":null}}",
            json_str(name),
            json_str(path),
            json_str(&iso_utc(SystemTime::now()))
        );
        let ok = self.append_record(&mut st, &line);
        if !ok {
            self.reject(&mut st, "write_error", format!("artifact '{}' skipped: cannot write metrics.jsonl.", name));
        }
        self.maybe_flush_lost(&mut st, false);
        ok
    }

    fn maybe_flush_lost(&self, st: &mut MetricsState, force: bool) {
        if st.lost.is_empty() || (!force && st.last_lost_flush.elapsed() < st.lost_flush_interval) {
            return;
        }
        let count: u64 = st.lost.values().sum();
        let reasons: Vec<String> = st.lost.iter().map(|(k, v)| format!("{}:{}", json_str(k), v)).collect();
        let line = format!("{{\"type\":\"lost\",\"count\":{},\"reasons\":{{{}}}}}", count, reasons.join(","));
        if self.append_record(st, &line) {
            st.lost.clear();
        }
        st.last_lost_flush = Instant::now();
    }

    /// Write the pending `lost` record, if any (each `lost` record counts items since the previous one).
    pub(crate) fn flush_lost(&self, force: bool) {
        let mut st = lock(&self.metrics);
        self.maybe_flush_lost(&mut st, force);
        if let Some(f) = st.file.as_mut() {
            let _ = f.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SvsConfig;
    use crate::session::tests::session;
    use crate::testutil::TempDir;
    use serde_json::Value;

    fn records(s: &Session) -> Vec<Value> {
        fs::read_to_string(s.metrics_path())
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn name_rules() {
        for good in ["loss", "train/loss", "a.b-c_d:e", &"x".repeat(256)] {
            assert!(is_valid_metric_name(good), "{}", good);
        }
        for bad in ["", "1loss", "_x", "a b", "a..b", "a//b", "loss!", "é", &"x".repeat(257)] {
            assert!(!is_valid_metric_name(bad), "{}", bad);
        }
    }

    #[test]
    fn records_have_the_python_shape() {
        let dir = TempDir::new("metrics");
        let s = session(&dir, None, SvsConfig::default());
        assert!(s.log_metric("train/loss", 0.5, Some(3)));
        assert!(s.log_metric("lr", 1.0, None));
        assert_eq!(s.log_metrics(vec![("a".into(), 1.0), ("b".into(), 2.0)], Some(0)), 2);
        let r = records(&s);
        assert_eq!(r.len(), 4);
        let keys: Vec<&String> = r[0].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["type", "name", "value", "step", "timestamp"]);
        assert_eq!(r[0]["value"], 0.5);
        assert_eq!(r[0]["step"], 3);
        assert!(r[1]["step"].is_null());
        let ts = r[0]["timestamp"].as_str().unwrap();
        assert_eq!(ts.len(), 27);
        assert!(ts.ends_with('Z') && ts.as_bytes()[19] == b'.');
        assert_eq!(r[2]["timestamp"], r[3]["timestamp"]);
    }

    #[test]
    fn invalid_items_are_skipped_counted_and_reported() {
        let dir = TempDir::new("reject");
        let s = session(&dir, None, SvsConfig::default());
        assert!(!s.log_metric("bad name", 1.0, None));
        assert!(!s.log_metric("loss", f64::NAN, Some(1)));
        assert!(!s.log_metric("loss", f64::INFINITY, Some(2)));
        assert!(!s.log_metric("loss", 1.0, Some(-1)));
        assert!(s.log_metric("loss", 1.0, Some(3)));
        assert!(!s.log_metric("loss", 1.0, None));
        assert!(s.log_metric("acc", 1.0, None));
        assert!(!s.log_metric("acc", 1.0, Some(1)));
        s.flush_lost(true);
        let r = records(&s);
        let lost: Vec<&Value> = r.iter().filter(|x| x["type"] == "lost").collect();
        assert_eq!(lost.len(), 1);
        assert_eq!(lost[0]["count"], 6);
        assert_eq!(lost[0]["reasons"]["non_finite_value"], 2);
        assert_eq!(lost[0]["reasons"]["step_mode_mismatch"], 2);
        assert_eq!(lost[0]["reasons"]["invalid_name"], 1);
        assert_eq!(lost[0]["reasons"]["invalid_step"], 1);
        assert_eq!(r.iter().filter(|x| x["type"] == "metric").count(), 2);
        // A second flush with nothing new writes nothing.
        s.flush_lost(true);
        assert_eq!(records(&s).len(), r.len());

        let f: Value = serde_json::from_slice(&fs::read(s.runtime_dir().join("svs_findings.json")).unwrap()).unwrap();
        let items = f["findings"].as_array().unwrap();
        assert_eq!(items.len(), 1, "one finding per metric name");
        assert_eq!(items[0]["source"], "metric_health");
        assert_eq!(items[0]["severity"], "error");
        assert!(items[0]["message"].as_str().unwrap().contains("NaN at step 1"));
        let logs = fs::read_to_string(s.runtime_dir().join("logs.txt")).unwrap();
        assert!(logs.contains("WARN: metric 'loss' skipped: value is NaN at step 1."));
    }

    #[test]
    fn name_cap() {
        let dir = TempDir::new("cap");
        let mut s = session(&dir, None, SvsConfig::default());
        s.metrics = std::sync::Mutex::new(MetricsState::new(2, Duration::from_secs(5)));
        assert!(s.log_metric("a", 1.0, None));
        assert!(s.log_metric("b", 1.0, None));
        assert!(!s.log_metric("c", 1.0, None));
        assert!(s.log_metric("a", 2.0, None));
    }

    #[test]
    fn artifact_paths() {
        let dir = TempDir::new("artifacts");
        let s = session(&dir, None, SvsConfig::default());
        fs::create_dir_all(s.outputs_dir.join("model")).unwrap();
        std::os::unix::fs::symlink("/etc", s.outputs_dir.join("escape")).unwrap();
        assert!(s.log_artifact("checkpoint", "model/checkpoint.pt"));
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a\\b",
            "%2e%2e/x",
            "a%00b",
            " x",
            "escape/passwd",
            "a;rm",
            "ｍodel",
        ] {
            assert!(!s.log_artifact("bad", bad), "{:?} accepted", bad);
        }
        assert!(!s.log_artifact("9bad", "model"));
        let r = records(&s);
        assert_eq!(r.len(), 1);
        let keys: Vec<&String> = r[0].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["type", "name", "path", "timestamp", "backend_url"]);
        assert_eq!(r[0]["path"], "model/checkpoint.pt");
        assert!(r[0]["backend_url"].is_null());
    }
}
