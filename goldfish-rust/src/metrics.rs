//! `metrics.jsonl`: validated metric and artifact records, with the Python SDK's rules and reason
//! codes. Invalid items are skipped and counted as "lost"; nothing here returns an error or panics
//! into stage code. Records are appended immediately (one `write` each), so a crash loses nothing.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Component, Path};
use std::time::{Duration, Instant, SystemTime};

use crate::numfmt::fmt_g;
use crate::session::{lock, Finding, Session};
use crate::timefmt::iso_utc;

/// Longest metric or artifact name.
pub const MAX_METRIC_NAME_LEN: usize = 256;
/// Rejections logged one by one per reason before going quiet (they are still counted).
const PROBLEM_LOG_LIMIT: u64 = 10;
const LOSS_WINDOW: u64 = 100;
const LOSS_MIN_HISTORY: u64 = 10;
const LOSS_SPIKE_RATIO: f64 = 10.0;

/// Sliding minimum over the last `LOSS_WINDOW` values of a loss (monotonic deque).
struct SpikeWatch {
    count: u64,
    window: VecDeque<(u64, f64)>,
    cooldown_until: Option<u64>,
}

impl SpikeWatch {
    fn new() -> Self {
        SpikeWatch { count: 0, window: VecDeque::new(), cooldown_until: None }
    }

    /// The window minimum when `value` is more than 10x it (once per window), then record `value`.
    fn observe(&mut self, value: f64) -> Option<f64> {
        let mut spike = None;
        let cooled = self.cooldown_until.map_or(true, |c| self.count > c);
        if self.count >= LOSS_MIN_HISTORY && cooled {
            if let Some(&(_, low)) = self.window.front() {
                if low > 0.0 && value > LOSS_SPIKE_RATIO * low {
                    spike = Some(low);
                    self.cooldown_until = Some(self.count + LOSS_WINDOW);
                }
            }
        }
        let i = self.count;
        while self.window.back().map_or(false, |&(_, v)| v >= value) {
            self.window.pop_back();
        }
        self.window.push_back((i, value));
        while self.window.front().map_or(false, |&(j, _)| j + LOSS_WINDOW <= i) {
            self.window.pop_front();
        }
        self.count = i + 1;
        spike
    }
}

struct NameState {
    stepped: bool,
    spikes: Option<SpikeWatch>,
}

pub(crate) struct MetricsState {
    file: Option<File>,
    names: HashMap<String, NameState>,
    max_names: usize,
    lost_total: BTreeMap<&'static str, u64>,
    lost_pending: BTreeMap<&'static str, u64>,
    problems: HashMap<&'static str, u64>,
    last_lost_flush: Instant,
    lost_flush_interval: Duration,
    health_reported: HashSet<String>,
}

impl MetricsState {
    pub(crate) fn new(max_names: usize, lost_flush_interval: Duration) -> Self {
        MetricsState {
            file: None,
            names: HashMap::new(),
            max_names,
            lost_total: BTreeMap::new(),
            lost_pending: BTreeMap::new(),
            problems: HashMap::new(),
            last_lost_flush: Instant::now(),
            lost_flush_interval,
            health_reported: HashSet::new(),
        }
    }
}

/// True when `name` is a valid metric/artifact name: `^[A-Za-z][A-Za-z0-9_.\-/:]{0,255}$`
/// without `..` or `//`.
pub fn is_valid_metric_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_METRIC_NAME_LEN
        && b[0].is_ascii_alphabetic()
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'/' | b':'))
        && !name.contains("..")
        && !name.contains("//")
}

fn show(s: &str) -> String {
    let text = format!("'{}'", s.escape_debug());
    if text.chars().count() <= 80 {
        text
    } else {
        format!("{}...", text.chars().take(77).collect::<String>())
    }
}

fn name_message(what: &str, name: &str) -> String {
    format!(
        "invalid {} {}: use a letter then up to 255 of [A-Za-z0-9_.-/:], without '..' or '//' (e.g. 'train/loss').",
        what,
        show(name)
    )
}

fn percent_decode_once(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 3 <= b.len() {
            if let Ok(v) = u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The artifact path normalised to `a/b/c`, or why it is refused. Same rules as the Python SDK,
/// except that non-ASCII text is refused outright (no NFKC tables offline to fold lookalikes).
fn check_artifact_path(outputs: &Path, raw: &str) -> Result<String, String> {
    let bad = |why: &str| Err(format!("artifact path {} {}", show(raw), why));
    if raw.contains('\\') || raw.to_ascii_lowercase().contains("%5c") {
        return bad("contains a backslash; use '/'.");
    }
    let mut text = raw.to_string();
    for _ in 0..4 {
        let decoded = percent_decode_once(&text);
        if decoded == text {
            break;
        }
        text = decoded;
    }
    if text.is_empty() || text.trim() != text {
        return bad("is empty or has surrounding whitespace.");
    }
    if !text.is_ascii() {
        return bad("contains non-ASCII characters; use plain ASCII file names.");
    }
    if text.chars().any(|c| (c as u32) < 32 || "\\\"`$<>|;&*?\x7f".contains(c)) {
        return bad("contains control or shell characters.");
    }
    let p = Path::new(&text);
    let drive = text.len() >= 2 && text.as_bytes()[0].is_ascii_alphabetic() && text.as_bytes()[1] == b':';
    if p.is_absolute() || text.starts_with('~') || drive {
        return bad("is absolute; give it relative to the outputs dir (e.g. 'model/model.pt').");
    }
    if p.components().any(|c| matches!(c, Component::ParentDir)) {
        return bad("contains '..'; it must stay inside the outputs dir.");
    }
    let parts: Vec<&str> = text.split('/').filter(|s| !s.is_empty() && *s != ".").collect();
    if parts.is_empty() {
        return bad("names the outputs dir itself.");
    }
    let mut cur = outputs.to_path_buf();
    for part in &parts {
        cur.push(part);
        if fs::symlink_metadata(&cur).map(|m| m.file_type().is_symlink()).unwrap_or(false) {
            return bad(&format!("is or passes through a symlink ({}); log the real file instead.", cur.display()));
        }
    }
    let rel = parts.join("/");
    if crate::paths::ensure_inside(outputs, &outputs.join(&rel), "artifact").is_err() {
        return bad("resolves outside the outputs dir.");
    }
    Ok(rel)
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
        let buf = format!("{}\n", line);
        match st.file.as_mut().map(|f| f.write_all(buf.as_bytes())) {
            Some(Ok(())) => true,
            _ => {
                st.file = None;
                false
            }
        }
    }

    fn reject(&self, st: &mut MetricsState, reason: &'static str, message: String) {
        *st.lost_total.entry(reason).or_insert(0) += 1;
        *st.lost_pending.entry(reason).or_insert(0) += 1;
        let seen = {
            let n = st.problems.entry(reason).or_insert(0);
            *n += 1;
            *n
        };
        if seen <= PROBLEM_LOG_LIMIT {
            self.sdk_warning(&format!("goldfish.metrics: skipped ({}): {}", reason, message));
        } else if seen == PROBLEM_LOG_LIMIT + 1 {
            self.sdk_warning(&format!(
                "goldfish.metrics: further '{}' problems are not logged one by one; they are counted in \
                 metrics.jsonl 'lost' records.",
                reason
            ));
        }
    }

    /// Validate and record one metric. Returns true when it was written.
    pub(crate) fn log_metric(&self, name: &str, value: f64, step: Option<i64>) -> bool {
        let mut st = lock(&self.metrics);
        let ok = self.record_metric(&mut st, name, value, step, SystemTime::now());
        self.maybe_flush_lost(&mut st, false);
        ok
    }

    /// Record several metrics with one step and timestamp. Returns how many were written.
    pub(crate) fn log_metrics(&self, items: Vec<(String, f64)>, step: Option<i64>) -> usize {
        let mut st = lock(&self.metrics);
        if let Some(s) = step.filter(|s| *s < 0) {
            for _ in 0..items.len().max(1) {
                self.reject(&mut st, "invalid_step", format!("step {} must be None or an int >= 0.", s));
            }
            return 0;
        }
        let now = SystemTime::now();
        let n = items.into_iter().filter(|(k, v)| self.record_metric(&mut st, k, *v, step, now)).count();
        self.maybe_flush_lost(&mut st, false);
        n
    }

    fn record_metric(&self, st: &mut MetricsState, name: &str, value: f64, step: Option<i64>, at: SystemTime) -> bool {
        if let Some(s) = step.filter(|s| *s < 0) {
            self.reject(st, "invalid_step", format!("step {} must be None or an int >= 0.", s));
            return false;
        }
        if !value.is_finite() {
            self.non_finite(st, name, value, step);
            return false;
        }
        let stepped = step.is_some();
        match st.names.get(name).map(|n| n.stepped) {
            Some(first) if first != stepped => {
                let (was, now) = if first { ("with", "without") } else { ("without", "with") };
                self.reject(
                    st,
                    "step_mode",
                    format!(
                        "metric '{}' was first logged {} a step, so this call {} one is skipped; keep one mode per name.",
                        name, was, now
                    ),
                );
                return false;
            }
            Some(_) => {}
            None => {
                if !is_valid_metric_name(name) {
                    self.reject(st, "invalid_name", name_message("metric name", name));
                    return false;
                }
                if st.names.len() >= st.max_names {
                    self.reject(
                        st,
                        "name_cap",
                        format!(
                            "metric '{}' would exceed the per-run cap of {} distinct names (GOLDFISH_METRICS_MAX_NAMES); \
                             reuse names and use steps.",
                            name, st.max_names
                        ),
                    );
                    return false;
                }
                let is_loss = name == "loss" || name.ends_with("/loss");
                st.names.insert(
                    name.to_string(),
                    NameState { stepped, spikes: if is_loss { Some(SpikeWatch::new()) } else { None } },
                );
            }
        }
        let line = format!(
            "{{\"type\":\"metric\",\"name\":{},\"value\":{},\"step\":{},\"timestamp\":{}}}",
            json_str(name),
            json_f64(value),
            step.map(|s| s.to_string()).unwrap_or_else(|| "null".into()),
            json_str(&iso_utc(at))
        );
        if !self.append_record(st, &line) {
            self.reject(st, "write_error", format!("could not write {}.", self.metrics_path().display()));
            return false;
        }
        let spike = st.names.get_mut(name).and_then(|n| n.spikes.as_mut()).and_then(|w| w.observe(value));
        if let Some(low) = spike {
            self.loss_spike(name, value, low, step);
        }
        true
    }

    fn non_finite(&self, st: &mut MetricsState, name: &str, value: f64, step: Option<i64>) {
        if !is_valid_metric_name(name) {
            self.reject(st, "invalid_name", name_message("metric name", name));
            return;
        }
        let kind = if value.is_nan() {
            "NaN"
        } else if value > 0.0 {
            "+Inf"
        } else {
            "-Inf"
        };
        let at = step.map(|s| format!(" at step {}", s)).unwrap_or_default();
        self.reject(st, "non_finite", format!("metric '{}' value {}{} is not finite.", name, kind, at));
        if st.health_reported.insert(name.to_string()) && self.svs.enabled {
            self.add_finding(Finding::new(
                "metric_health",
                "non_finite_metric",
                "error",
                name,
                format!(
                    "Metric '{}' produced {}{}; the value was skipped. Training has likely diverged (check the \
                     learning rate, loss scaling and inputs).",
                    name, kind, at
                ),
            ));
        }
    }

    fn loss_spike(&self, name: &str, value: f64, low: f64, step: Option<i64>) {
        let at = step.map(|s| format!(" at step {}", s)).unwrap_or_default();
        let msg = format!(
            "Loss '{}' spiked to {}{}, more than {}x the minimum {} of its last {} values: possible divergence.",
            name,
            fmt_g(value, 4),
            at,
            fmt_g(LOSS_SPIKE_RATIO, 6),
            fmt_g(low, 4),
            LOSS_WINDOW
        );
        self.sdk_warning(&format!("goldfish.metrics: {}", msg));
        if self.svs.enabled {
            let mut f = Finding::new("metric_health", "loss_divergence", "warning", name, msg);
            f.value = Some(value);
            f.threshold = Some(LOSS_SPIKE_RATIO * low);
            self.add_finding(f);
        }
    }

    /// Validate and record an artifact (path relative to the outputs dir). Returns true when written.
    pub(crate) fn log_artifact(&self, name: &str, path: &str) -> bool {
        let mut st = lock(&self.metrics);
        if !is_valid_metric_name(name) {
            self.reject(&mut st, "invalid_artifact", name_message("artifact name", name));
            return false;
        }
        let rel = match check_artifact_path(&self.outputs_dir, path) {
            Ok(r) => r,
            Err(msg) => {
                self.reject(&mut st, "invalid_artifact", msg);
                return false;
            }
        };
        if !self.outputs_dir.join(&rel).exists() {
            self.sdk_warning(&format!(
                "goldfish.metrics: artifact '{}' path '{}' does not exist yet in the outputs dir; recorded anyway.",
                name, rel
            ));
        }
        let line = format!(
            "{{\"type\":\"artifact\",\"name\":{},\"path\":{},\"timestamp\":{},\"backend_url\":null}}",
            json_str(name),
            json_str(&rel),
            json_str(&iso_utc(SystemTime::now()))
        );
        let ok = self.append_record(&mut st, &line);
        if !ok {
            self.reject(&mut st, "write_error", format!("could not write {}.", self.metrics_path().display()));
        }
        self.maybe_flush_lost(&mut st, false);
        ok
    }

    fn maybe_flush_lost(&self, st: &mut MetricsState, force: bool) {
        if st.lost_pending.is_empty() || (!force && st.last_lost_flush.elapsed() < st.lost_flush_interval) {
            return;
        }
        let count: u64 = st.lost_pending.values().sum();
        let reasons: Vec<String> = st.lost_pending.iter().map(|(k, v)| format!("{}:{}", json_str(k), v)).collect();
        let line = format!("{{\"type\":\"lost\",\"count\":{},\"reasons\":{{{}}}}}", count, reasons.join(","));
        if self.append_record(st, &line) {
            st.lost_pending.clear();
        }
        st.last_lost_flush = Instant::now();
    }

    /// Write the pending `lost` record, if any (each counts the items rejected since the previous one).
    pub(crate) fn flush_lost(&self, force: bool) {
        let mut st = lock(&self.metrics);
        self.maybe_flush_lost(&mut st, force);
        if let Some(f) = st.file.as_mut() {
            let _ = f.flush();
        }
    }

    pub(crate) fn sync_metrics(&self) {
        if let Some(f) = lock(&self.metrics).file.as_mut() {
            let _ = f.sync_data();
        }
    }

    /// Items skipped so far in this process, by reason.
    pub(crate) fn lost_counts(&self) -> BTreeMap<String, u64> {
        lock(&self.metrics).lost_total.iter().map(|(k, v)| (k.to_string(), *v)).collect()
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

    fn findings(s: &Session) -> Vec<Value> {
        fs::read(s.runtime_dir().join("svs_findings.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|v| v["findings"].as_array().cloned())
            .unwrap_or_default()
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
        assert!(r[1]["value"].is_f64(), "1.0 stays a JSON float");
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
        assert_eq!(s.log_metrics(vec![("x".into(), 1.0), ("y".into(), 2.0)], Some(-5)), 0);
        s.flush_lost(true);
        let r = records(&s);
        let lost: Vec<&Value> = r.iter().filter(|x| x["type"] == "lost").collect();
        assert_eq!(lost.len(), 1);
        assert_eq!(lost[0]["count"], 8);
        assert_eq!(lost[0]["reasons"]["non_finite"], 2);
        assert_eq!(lost[0]["reasons"]["step_mode"], 2);
        assert_eq!(lost[0]["reasons"]["invalid_name"], 1);
        assert_eq!(lost[0]["reasons"]["invalid_step"], 3);
        assert_eq!(r.iter().filter(|x| x["type"] == "metric").count(), 2);
        s.flush_lost(true);
        assert_eq!(records(&s).len(), r.len(), "a second flush with nothing new writes nothing");
        assert_eq!(s.lost_counts()["non_finite"], 2);

        let items = findings(&s);
        assert_eq!(items.len(), 1, "one health finding per metric name");
        assert_eq!(items[0]["source"], "metric_health");
        assert_eq!(items[0]["check"], "non_finite_metric");
        assert_eq!(items[0]["severity"], "error");
        assert_eq!(items[0]["signal"], "loss");
        assert!(items[0]["message"].as_str().unwrap().contains("produced NaN at step 1"));
        let logs = fs::read_to_string(s.runtime_dir().join("logs.txt")).unwrap();
        assert!(logs.contains("WARNING: goldfish.metrics: skipped (non_finite): metric 'loss' value NaN at step 1"));
    }

    #[test]
    fn rejection_logging_is_capped_per_reason() {
        let dir = TempDir::new("cap-log");
        let s = session(&dir, None, SvsConfig { enabled: false, ..SvsConfig::default() });
        for i in 0..30 {
            s.log_metric("m", f64::NAN, Some(i));
        }
        let logs = fs::read_to_string(s.runtime_dir().join("logs.txt")).unwrap();
        assert_eq!(logs.matches("skipped (non_finite)").count(), 10);
        assert_eq!(logs.matches("further 'non_finite' problems").count(), 1);
        assert!(findings(&s).is_empty(), "no findings while SVS is off");
    }

    #[test]
    fn loss_spikes_are_reported_once_per_window() {
        let dir = TempDir::new("spike");
        let s = session(&dir, None, SvsConfig::default());
        for step in 0..20 {
            s.log_metric("train/loss", 1.0, Some(step));
        }
        s.log_metric("train/loss", 50.0, Some(20));
        s.log_metric("train/loss", 60.0, Some(21));
        for step in 0..20 {
            s.log_metric("acc", if step == 15 { 100.0 } else { 1.0 }, Some(step));
        }
        let f = findings(&s);
        assert_eq!(f.len(), 1, "{:?}", f);
        assert_eq!(f[0]["check"], "loss_divergence");
        assert_eq!(f[0]["value"], 50.0);
        assert_eq!(f[0]["threshold"], 10.0);
        assert!(f[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("Loss 'train/loss' spiked to 50 at step 20, more than 10x"));
    }

    #[test]
    fn spike_window_forgets_old_minimums() {
        let mut w = SpikeWatch::new();
        assert_eq!(w.observe(0.1), None);
        let spikes: Vec<Option<f64>> = (0..250).map(|_| w.observe(2.0)).collect();
        assert_eq!(spikes.iter().filter(|s| s.is_some()).count(), 1, "once per window while 0.1 is the minimum");
        // 0.1 left the window long ago; 15 is 7.5x the current minimum 2.0.
        assert_eq!(w.observe(15.0), None);
        assert_eq!(w.observe(25.0), Some(2.0));
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
        assert_eq!(s.lost_counts()["name_cap"], 1);
    }

    #[test]
    fn artifact_paths() {
        let dir = TempDir::new("artifacts");
        let s = session(&dir, None, SvsConfig::default());
        fs::create_dir_all(s.outputs_dir.join("model")).unwrap();
        std::os::unix::fs::symlink("/etc", s.outputs_dir.join("escape")).unwrap();
        assert!(s.log_artifact("checkpoint", "model/checkpoint.pt"));
        assert!(s.log_artifact("normalised", "./model//weights.bin"));
        for bad in [
            "",
            ".",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a\\b",
            "%5Cx",
            "%2e%2e/x",
            "%252e%252e/x",
            "a%00b",
            " x",
            "escape/passwd",
            "a;rm",
            "~/x",
            "C:x",
            "ｍodel",
        ] {
            assert!(!s.log_artifact("bad", bad), "{:?} accepted", bad);
        }
        assert!(!s.log_artifact("9bad", "model"));
        let r = records(&s);
        assert_eq!(r.len(), 2);
        let keys: Vec<&String> = r[0].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["type", "name", "path", "timestamp", "backend_url"]);
        assert_eq!(r[0]["path"], "model/checkpoint.pt");
        assert_eq!(r[1]["path"], "model/weights.bin");
        assert!(r[0]["backend_url"].is_null());
        assert_eq!(s.lost_counts()["invalid_artifact"], 17);
    }
}
