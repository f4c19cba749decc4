//! Process-wide SDK state: directories, config, and the runtime files under `<outputs>/.goldfish/`.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

use crate::config::{inputs_dir_from_env, outputs_dir_from_env, StageConfig, SvsConfig};
use crate::error::Result;
use crate::fsutil::{atomic_write, update_json};
use crate::metrics::MetricsState;
use crate::timefmt::{iso_utc, log_stamp, unix_seconds};

/// `logs.txt` is cut back to its newest `LOG_ROTATE_BYTES / 2` once it grows past this.
pub const LOG_ROTATE_BYTES: u64 = 10_000_000;
/// Heartbeats closer together than this are skipped unless forced.
pub const HEARTBEAT_MIN_INTERVAL: Duration = Duration::from_secs(1);
/// `svs_findings.json` keeps at most this many (the newest).
pub const MAX_FINDINGS: usize = 10_000;
const MAX_HEARTBEAT_MESSAGE_CHARS: usize = 4096;

/// Lock a mutex even if a panicking thread poisoned it: SDK state stays usable.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One SVS finding, as stored in `svs_findings.json`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Finding {
    pub source: &'static str,
    pub check: String,
    pub severity: &'static str,
    pub signal: Option<String>,
    pub message: String,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
}

impl Finding {
    pub(crate) fn new(
        source: &'static str,
        check: &str,
        severity: &'static str,
        signal: &str,
        message: String,
    ) -> Self {
        Finding {
            source,
            check: check.to_string(),
            severity,
            signal: Some(signal.to_string()),
            message,
            value: None,
            threshold: None,
        }
    }

    fn to_json(&self) -> Value {
        let num = |x: Option<f64>| x.filter(|v| v.is_finite()).map(Value::from).unwrap_or(Value::Null);
        json!({
            "source": self.source,
            "check": self.check,
            "severity": self.severity,
            "signal": self.signal,
            "message": self.message,
            "value": num(self.value),
            "threshold": num(self.threshold),
        })
    }
}

/// Level as the Python SDK writes it: upper case, `WARN` → `WARNING`, anything but 1-16 letters → `INFO`.
pub(crate) fn normalize_level(level: &str) -> String {
    let l = level.trim().to_ascii_uppercase();
    let l = if l == "WARN" { "WARNING".to_string() } else { l };
    if (1..=16).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_uppercase()) {
        l
    } else {
        "INFO".to_string()
    }
}

/// `[YYYY-MM-DD HH:MM:SS] LEVEL: message` (UTC). Continuation lines are indented so a multi-line
/// message cannot forge separate entries.
pub(crate) fn format_log_line(message: &str, level: &str) -> String {
    let text = message.replace("\r\n", "\n").replace('\r', "\n");
    let text = text.trim_end_matches('\n').replace('\n', "\n    ");
    format!("[{}] {}: {}", log_stamp(SystemTime::now()), normalize_level(level), text)
}

pub(crate) struct SessionOptions {
    pub inputs_dir: PathBuf,
    pub outputs_dir: PathBuf,
    /// None: read `GOLDFISH_STAGE_CONFIG` on first use.
    pub stage_config: Option<StageConfig>,
    pub svs: SvsConfig,
    pub max_metric_names: usize,
    pub lost_flush_interval: Duration,
    pub echo: bool,
}

impl SessionOptions {
    pub(crate) fn from_env() -> (SessionOptions, Vec<String>) {
        let (svs, warnings) = SvsConfig::parse(
            std::env::var("GOLDFISH_SVS_CONFIG").ok().as_deref(),
            std::env::var("GOLDFISH_SVS_STATS_ENABLED").ok().as_deref(),
        );
        let env_num = |k: &str, default: f64, lo: f64, hi: f64| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite() && *v > 0.0)
                .map(|v| v.clamp(lo, hi))
                .unwrap_or(default)
        };
        (
            SessionOptions {
                inputs_dir: inputs_dir_from_env(),
                outputs_dir: outputs_dir_from_env(),
                stage_config: None,
                svs,
                max_metric_names: env_num("GOLDFISH_METRICS_MAX_NAMES", 10_000.0, 1.0, 1_000_000.0) as usize,
                lost_flush_interval: Duration::from_secs_f64(env_num(
                    "GOLDFISH_METRICS_FLUSH_INTERVAL",
                    5.0,
                    0.01,
                    3600.0,
                )),
                echo: true,
            },
            warnings,
        )
    }
}

pub(crate) struct Session {
    pub inputs_dir: PathBuf,
    pub outputs_dir: PathBuf,
    pub svs: SvsConfig,
    config: Mutex<Option<Arc<StageConfig>>>,
    log_lock: Mutex<()>,
    heartbeat_last: Mutex<Option<Instant>>,
    pub(crate) metrics: Mutex<MetricsState>,
    stats: Mutex<BTreeMap<String, Value>>,
    once: Mutex<HashSet<String>>,
    echo: bool,
}

static GLOBAL: Mutex<Option<Arc<Session>>> = Mutex::new(None);

/// The process-wide session if it exists and its lock is free (for the panic hook).
pub(crate) fn try_global() -> Option<Arc<Session>> {
    GLOBAL.try_lock().ok().and_then(|g| g.clone())
}

/// The process-wide session, created from the environment on first use.
pub(crate) fn global() -> Arc<Session> {
    let mut g = lock(&GLOBAL);
    if let Some(s) = g.as_ref() {
        return s.clone();
    }
    let (opts, warnings) = SessionOptions::from_env();
    let s = Arc::new(Session::new(opts));
    *g = Some(s.clone());
    drop(g);
    for w in warnings {
        s.sdk_warning(&format!("goldfish: {}", w));
    }
    s
}

impl Session {
    pub(crate) fn new(o: SessionOptions) -> Session {
        Session {
            inputs_dir: o.inputs_dir,
            outputs_dir: o.outputs_dir,
            svs: o.svs,
            config: Mutex::new(o.stage_config.map(Arc::new)),
            log_lock: Mutex::new(()),
            heartbeat_last: Mutex::new(None),
            metrics: Mutex::new(MetricsState::new(o.max_metric_names, o.lost_flush_interval)),
            stats: Mutex::new(BTreeMap::new()),
            once: Mutex::new(HashSet::new()),
            echo: o.echo,
        }
    }

    pub(crate) fn runtime_dir(&self) -> PathBuf {
        self.outputs_dir.join(".goldfish")
    }

    /// The stage config, read from the environment once and cached.
    pub(crate) fn config(&self) -> Result<Arc<StageConfig>> {
        let mut c = lock(&self.config);
        if let Some(cfg) = c.as_ref() {
            return Ok(cfg.clone());
        }
        let cfg = Arc::new(StageConfig::from_env()?);
        *c = Some(cfg.clone());
        Ok(cfg)
    }

    /// True the first time `key` is seen (one-time warnings).
    pub(crate) fn first_time(&self, key: &str) -> bool {
        lock(&self.once).insert(key.to_string())
    }

    // ---- logs.txt -------------------------------------------------------------------------------

    /// `runtime_log`: the line goes to stdout and `logs.txt`. Never fails.
    pub(crate) fn log(&self, message: &str, level: &str) {
        self.emit(&format_log_line(message, level), false);
    }

    /// An SDK problem report (rejected metric, unwritable file): stderr, not the stage's stdout, and `logs.txt`.
    pub(crate) fn sdk_warning(&self, message: &str) {
        self.emit(&format_log_line(message, "WARNING"), true);
    }

    pub(crate) fn warn_once(&self, key: &str, message: &str) {
        if self.first_time(key) {
            self.log(message, "WARNING");
        }
    }

    fn emit(&self, line: &str, to_stderr: bool) {
        if self.echo {
            // A closed stdout/stderr must not kill the stage (println! would panic).
            let bytes = format!("{}\n", line);
            if to_stderr {
                let _ = std::io::stderr().lock().write_all(bytes.as_bytes());
            } else {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(bytes.as_bytes());
                let _ = out.flush();
            }
        }
        let _guard = lock(&self.log_lock);
        self.append_log_line(line);
    }

    /// From the panic hook: never wait for a lock the panicking thread may hold.
    pub(crate) fn log_from_panic(&self, message: &str) {
        if let Ok(_guard) = self.log_lock.try_lock() {
            self.append_log_line(&format_log_line(message, "ERROR"));
        }
    }

    fn append_log_line(&self, line: &str) {
        let path = self.runtime_dir().join("logs.txt");
        let appended = (|| -> std::io::Result<u64> {
            fs::create_dir_all(self.runtime_dir())?;
            let mut f = OpenOptions::new().create(true).append(true).open(&path)?;
            f.write_all(format!("{}\n", line).as_bytes())?;
            Ok(f.metadata()?.len())
        })();
        if let Ok(size) = appended {
            if size > LOG_ROTATE_BYTES {
                let _ = rotate_keep_newest_half(&path);
            }
        }
    }

    // ---- heartbeat --------------------------------------------------------------------------------

    /// Write the heartbeat file atomically; at most once a second unless `force`. Returns whether it wrote.
    pub(crate) fn heartbeat(&self, message: Option<&str>, force: bool) -> bool {
        {
            let mut last = lock(&self.heartbeat_last);
            if !force && last.map_or(false, |t| t.elapsed() < HEARTBEAT_MIN_INTERVAL) {
                return false;
            }
            *last = Some(Instant::now());
        }
        let now = SystemTime::now();
        let message: Option<String> = message.map(|m| m.chars().take(MAX_HEARTBEAT_MESSAGE_CHARS).collect());
        let doc = json!({
            "timestamp": unix_seconds(now),
            "iso_time": iso_utc(now),
            "message": message,
            "pid": std::process::id(),
        });
        atomic_write(&self.runtime_dir().join("heartbeat"), doc.to_string().as_bytes()).is_ok()
    }

    // ---- stop_requested -------------------------------------------------------------------------

    pub(crate) fn stop_file(&self) -> PathBuf {
        self.runtime_dir().join("stop_requested")
    }

    // ---- svs_findings.json / svs_stats.json --------------------------------------------------------

    /// Append findings to `svs_findings.json` (locked merge, atomic replace). Never fails the stage.
    pub(crate) fn add_findings(&self, findings: &[Finding]) {
        if findings.is_empty() {
            return;
        }
        let new: Vec<Value> = findings.iter().map(Finding::to_json).collect();
        let path = self.runtime_dir().join("svs_findings.json");
        let result = update_json(&path, |mut doc| {
            let mut items = match doc.remove("findings") {
                Some(Value::Array(a)) => a,
                _ => Vec::new(),
            };
            items.extend(new);
            if items.len() > MAX_FINDINGS {
                items.drain(..items.len() - MAX_FINDINGS);
            }
            doc.insert("version".into(), json!(1));
            doc.insert("findings".into(), Value::Array(items));
            doc
        });
        if let Err(e) = result {
            self.sdk_warning(&format!("goldfish: could not record SVS findings: {}", e));
        }
    }

    pub(crate) fn add_finding(&self, f: Finding) {
        self.add_findings(&[f]);
    }

    /// Merge stats entries into `svs_stats.json` (a later save of a signal replaces its entry).
    pub(crate) fn record_stats(&self, entries: &[(String, Value)]) {
        if entries.is_empty() {
            return;
        }
        let mut mine = lock(&self.stats);
        for (k, v) in entries {
            mine.insert(k.clone(), v.clone());
        }
        self.write_stats(entries.iter().cloned().collect());
    }

    fn write_stats(&self, entries: BTreeMap<String, Value>) {
        let path = self.runtime_dir().join("svs_stats.json");
        let result = update_json(&path, |mut doc| {
            let mut stats = match doc.remove("stats") {
                Some(Value::Object(m)) => m,
                _ => serde_json::Map::new(),
            };
            for (k, v) in entries {
                stats.insert(k, v);
            }
            doc.insert("version".into(), json!(1));
            doc.insert("stats".into(), Value::Object(stats));
            doc
        });
        if let Err(e) = result {
            self.sdk_warning(&format!("goldfish: could not record SVS stats: {}", e));
        }
    }

    /// End-of-stage work: write the pending `lost` record, fsync `metrics.jsonl`, and merge this
    /// process's stats into `svs_stats.json` once more (idempotent).
    pub(crate) fn finalize(&self) {
        self.flush_lost(true);
        self.sync_metrics();
        let mine = lock(&self.stats).clone();
        if self.svs.stats_enabled && !mine.is_empty() {
            self.write_stats(mine);
        }
    }
}

/// Keep the newest `LOG_ROTATE_BYTES / 2` bytes, starting at a line boundary.
fn rotate_keep_newest_half(path: &Path) -> Result<()> {
    let bytes = fs::read(path)?;
    let cut = bytes.len().saturating_sub((LOG_ROTATE_BYTES / 2) as usize);
    let kept = match bytes[cut..].iter().position(|&b| b == b'\n') {
        Some(nl) => &bytes[cut + nl + 1..],
        None => &bytes[bytes.len()..],
    };
    atomic_write(path, kept)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testutil::TempDir;

    pub(crate) fn session(dir: &TempDir, config: Option<&str>, svs: SvsConfig) -> Session {
        Session::new(SessionOptions {
            inputs_dir: dir.path().join("inputs"),
            outputs_dir: dir.path().join("outputs"),
            stage_config: config.map(|c| StageConfig::from_json_str(c).unwrap()),
            svs,
            max_metric_names: 10_000,
            lost_flush_interval: Duration::from_secs(5),
            echo: false,
        })
    }

    #[test]
    fn log_line_format() {
        let dir = TempDir::new("logs");
        let s = session(&dir, None, SvsConfig::default());
        s.log("hello world", "info");
        s.log("two\r\nlines\n", "warn");
        s.log("odd level", "debug 2");
        let text = fs::read_to_string(s.runtime_dir().join("logs.txt")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(&lines[0][0..1], "[");
        assert_eq!(&lines[0][20..], "] INFO: hello world");
        assert_eq!(lines[0].as_bytes()[5], b'-');
        assert!(lines[1].ends_with("] WARNING: two"));
        assert_eq!(lines[2], "    lines");
        assert!(lines[3].ends_with("] INFO: odd level"));
        assert_eq!(normalize_level("Error"), "ERROR");
    }

    #[test]
    fn rotation_keeps_the_newest_half() {
        let dir = TempDir::new("rotate");
        let s = session(&dir, None, SvsConfig::default());
        let path = s.runtime_dir().join("logs.txt");
        fs::create_dir_all(s.runtime_dir()).unwrap();
        let filler = format!("{}\n", "x".repeat(999));
        let big = filler.repeat((LOG_ROTATE_BYTES / 1000) as usize);
        fs::write(&path, &big).unwrap();
        s.log("after rotation", "WARNING");
        let rotated = fs::read_to_string(&path).unwrap();
        assert!(rotated.len() as u64 <= LOG_ROTATE_BYTES / 2, "{}", rotated.len());
        assert!(rotated.len() as u64 > LOG_ROTATE_BYTES / 2 - 2000);
        assert!(rotated.starts_with('x'), "rotation must cut at a line boundary");
        assert!(rotated.trim_end().ends_with("WARNING: after rotation"));
    }

    #[test]
    fn heartbeat_is_rate_limited_json() {
        let dir = TempDir::new("hb");
        let s = session(&dir, None, SvsConfig::default());
        assert!(s.heartbeat(Some("epoch 1"), false));
        assert!(!s.heartbeat(Some("epoch 2"), false));
        let v: Value = serde_json::from_slice(&fs::read(s.runtime_dir().join("heartbeat")).unwrap()).unwrap();
        assert_eq!(v["message"], "epoch 1");
        assert_eq!(v["pid"], std::process::id());
        assert!(v["timestamp"].as_f64().unwrap() > 1.7e9);
        assert!(v["iso_time"].as_str().unwrap().ends_with('Z'));
        let long = "m".repeat(5000);
        assert!(s.heartbeat(Some(&long), true));
        let v: Value = serde_json::from_slice(&fs::read(s.runtime_dir().join("heartbeat")).unwrap()).unwrap();
        assert_eq!(v["message"].as_str().unwrap().len(), 4096);
        assert!(s.heartbeat(None, true));
        let v: Value = serde_json::from_slice(&fs::read(s.runtime_dir().join("heartbeat")).unwrap()).unwrap();
        assert!(v["message"].is_null());
    }

    #[test]
    fn findings_merge_with_other_writers() {
        let dir = TempDir::new("findings");
        let s = session(&dir, None, SvsConfig::default());
        fs::create_dir_all(s.runtime_dir()).unwrap();
        fs::write(
            s.runtime_dir().join("svs_findings.json"),
            r#"{"version":1,"findings":[{"source":"preflight","check":"x","severity":"info","signal":null,"message":"m","value":null,"threshold":null}]}"#,
        )
        .unwrap();
        let mut f = Finding::new("contract", "shape", "warning", "features", "bad".into());
        f.value = Some(f64::NAN);
        f.threshold = Some(2.0);
        s.add_findings(&[f.clone(), f]);
        let v: Value = serde_json::from_slice(&fs::read(s.runtime_dir().join("svs_findings.json")).unwrap()).unwrap();
        let items = v["findings"].as_array().unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0]["source"], "preflight");
        assert_eq!(items[1]["signal"], "features");
        assert!(items[1]["value"].is_null());
        assert_eq!(items[1]["threshold"], 2.0);
    }
}
