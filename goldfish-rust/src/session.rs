//! Process-wide SDK state: directories, config, and the runtime files under `<outputs>/.goldfish/`.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Map, Value};

use crate::config::{inputs_dir_from_env, outputs_dir_from_env, StageConfig, SvsConfig};
use crate::error::Result;
use crate::fsutil::atomic_write;
use crate::metrics::MetricsState;
use crate::timefmt::{iso_utc, log_stamp, unix_seconds};

/// `logs.txt` is cut to its last half once it grows past this many bytes.
pub const LOG_ROTATE_BYTES: u64 = 10_000_000;
/// Heartbeats closer together than this are skipped unless forced.
pub const HEARTBEAT_MIN_INTERVAL: Duration = Duration::from_secs(1);

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

/// (source, check, signal, message): identical findings are written once.
type FindingKey = (String, String, Option<String>, String);

pub(crate) struct SessionOptions {
    pub inputs_dir: PathBuf,
    pub outputs_dir: PathBuf,
    /// None: read `GOLDFISH_STAGE_CONFIG` on first use.
    pub stage_config: Option<StageConfig>,
    pub svs: SvsConfig,
    pub max_metric_names: usize,
    pub lost_flush_interval: Duration,
    pub echo_stdout: bool,
}

impl SessionOptions {
    pub(crate) fn from_env() -> (SessionOptions, Vec<String>) {
        let (svs, warnings) = SvsConfig::parse(
            std::env::var("GOLDFISH_SVS_CONFIG").ok().as_deref(),
            std::env::var("GOLDFISH_SVS_STATS_ENABLED").ok().as_deref(),
        );
        let env_num = |k: &str| std::env::var(k).ok().and_then(|v| v.trim().parse::<f64>().ok());
        let max_names = env_num("GOLDFISH_METRICS_MAX_NAMES").map(|v| v as i64).unwrap_or(10_000).clamp(1, 100_000);
        let interval = env_num("GOLDFISH_METRICS_FLUSH_INTERVAL").filter(|v| v.is_finite() && *v > 0.0).unwrap_or(5.0);
        (
            SessionOptions {
                inputs_dir: inputs_dir_from_env(),
                outputs_dir: outputs_dir_from_env(),
                stage_config: None,
                svs,
                max_metric_names: max_names as usize,
                lost_flush_interval: Duration::from_secs_f64(interval.min(86_400.0)),
                echo_stdout: true,
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
    findings: Mutex<HashSet<FindingKey>>,
    stats: Mutex<BTreeMap<String, Value>>,
    once: Mutex<HashSet<String>>,
    echo_stdout: bool,
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
        s.log(&w, "WARN");
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
            findings: Mutex::new(HashSet::new()),
            stats: Mutex::new(BTreeMap::new()),
            once: Mutex::new(HashSet::new()),
            echo_stdout: o.echo_stdout,
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

    fn format_line(message: &str, level: &str) -> String {
        let level = level.trim();
        let level = if level.is_empty() { "INFO".to_string() } else { level.to_ascii_uppercase() };
        format!("[{}] {}: {}\n", log_stamp(SystemTime::now()), level, message)
    }

    /// Print `[YYYY-MM-DD HH:MM:SS] LEVEL: message` (UTC) and append it to `logs.txt`. Never fails.
    pub(crate) fn log(&self, message: &str, level: &str) {
        let line = Session::format_line(message, level);
        if self.echo_stdout {
            // A closed stdout must not kill the stage (println! would panic).
            let _ = std::io::stdout().lock().write_all(line.as_bytes());
            let _ = std::io::stdout().flush();
        }
        let _guard = lock(&self.log_lock);
        self.append_log_line(&line);
    }

    /// From the panic hook: never wait for a lock the panicking thread may hold.
    pub(crate) fn log_from_panic(&self, message: &str) {
        if let Ok(_guard) = self.log_lock.try_lock() {
            self.append_log_line(&Session::format_line(message, "ERROR"));
        }
    }

    fn append_log_line(&self, line: &str) {
        let path = self.runtime_dir().join("logs.txt");
        let appended = (|| -> std::io::Result<u64> {
            fs::create_dir_all(self.runtime_dir())?;
            let mut f = OpenOptions::new().create(true).append(true).open(&path)?;
            f.write_all(line.as_bytes())?;
            Ok(f.metadata()?.len())
        })();
        if let Ok(size) = appended {
            if size > LOG_ROTATE_BYTES {
                let _ = rotate_keep_last_half(&path);
            }
        }
    }

    // ---- heartbeat --------------------------------------------------------------------------------

    /// Write the heartbeat file atomically; at most once a second unless `force`. Returns whether it wrote.
    pub(crate) fn heartbeat(&self, message: Option<&str>, force: bool) -> bool {
        let mut last = lock(&self.heartbeat_last);
        if !force {
            if let Some(t) = *last {
                if t.elapsed() < HEARTBEAT_MIN_INTERVAL {
                    return false;
                }
            }
        }
        let now = SystemTime::now();
        let doc = json!({
            "timestamp": unix_seconds(now),
            "iso_time": iso_utc(now),
            "message": message,
            "pid": std::process::id(),
        });
        let ok = atomic_write(&self.runtime_dir().join("heartbeat"), doc.to_string().as_bytes()).is_ok();
        if ok {
            *last = Some(Instant::now());
        }
        ok
    }

    // ---- stop_requested -------------------------------------------------------------------------

    pub(crate) fn stop_file(&self) -> PathBuf {
        self.runtime_dir().join("stop_requested")
    }

    // ---- svs_findings.json ----------------------------------------------------------------------

    /// Append a finding to `svs_findings.json` (read, merge, atomic replace); duplicates are dropped.
    pub(crate) fn add_finding(&self, f: Finding) {
        let mut seen = lock(&self.findings);
        let key = (f.source.to_string(), f.check.clone(), f.signal.clone(), f.message.clone());
        if !seen.insert(key) {
            return;
        }
        let path = self.runtime_dir().join("svs_findings.json");
        let mut doc = read_json_object(&path);
        doc.entry("version").or_insert(json!(1));
        let list = doc.entry("findings").or_insert_with(|| json!([]));
        if !list.is_array() {
            *list = json!([]);
        }
        if let Some(items) = list.as_array_mut() {
            items.push(f.to_json());
        }
        if atomic_write(&path, Value::Object(doc).to_string().as_bytes()).is_err() {
            drop(seen);
            self.log_once("findings-write", "could not write svs_findings.json", "WARN");
        }
    }

    pub(crate) fn log_once(&self, key: &str, message: &str, level: &str) {
        if self.first_time(key) {
            self.log(message, level);
        }
    }

    // ---- svs_stats.json -------------------------------------------------------------------------

    /// Record stats for `key` and rewrite `svs_stats.json` (merging what is already on disk).
    pub(crate) fn record_stats(&self, key: &str, stats: Value) -> Result<()> {
        let mut mine = lock(&self.stats);
        mine.insert(key.to_string(), stats);
        self.write_stats_file(&mine)
    }

    fn write_stats_file(&self, mine: &BTreeMap<String, Value>) -> Result<()> {
        let path = self.runtime_dir().join("svs_stats.json");
        let mut stats = match read_json_object(&path).remove("stats") {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        for (k, v) in mine {
            stats.insert(k.clone(), v.clone());
        }
        let doc = json!({"version": 1, "stats": Value::Object(stats)});
        atomic_write(&path, serde_json::to_string_pretty(&doc).unwrap_or_default().as_bytes())
    }

    /// End-of-stage work: flush metric loss counts and make sure `svs_stats.json` exists when stats are on.
    pub(crate) fn finalize(&self) {
        self.flush_lost(true);
        if self.svs.stats_enabled {
            let mine = lock(&self.stats);
            if self.write_stats_file(&mine).is_err() {
                drop(mine);
                self.log_once("stats-write", "could not write svs_stats.json", "WARN");
            }
        }
    }
}

fn read_json_object(path: &Path) -> Map<String, Value> {
    fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| match v {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .unwrap_or_default()
}

/// Keep the last half of the file, starting at a line boundary.
fn rotate_keep_last_half(path: &Path) -> Result<()> {
    let bytes = fs::read(path)?;
    let mut start = bytes.len() / 2;
    if let Some(nl) = bytes[start..].iter().position(|&b| b == b'\n') {
        if start + nl + 1 < bytes.len() {
            start += nl + 1;
        }
    }
    atomic_write(path, &bytes[start..])
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
            echo_stdout: false,
        })
    }

    #[test]
    fn log_line_format_and_rotation() {
        let dir = TempDir::new("logs");
        let s = session(&dir, None, SvsConfig::default());
        s.log("hello world", "info");
        let text = fs::read_to_string(s.runtime_dir().join("logs.txt")).unwrap();
        let line = text.lines().next().unwrap();
        // [2026-01-01 00:00:00] INFO: hello world
        assert_eq!(&line[0..1], "[");
        assert_eq!(&line[20..], "] INFO: hello world");
        assert_eq!(line.as_bytes()[5], b'-');
        assert_eq!(line.as_bytes()[11], b' ');

        let path = s.runtime_dir().join("logs.txt");
        let filler = format!("{}\n", "x".repeat(999));
        let mut big = String::with_capacity(LOG_ROTATE_BYTES as usize + 2000);
        while big.len() as u64 <= LOG_ROTATE_BYTES {
            big.push_str(&filler);
        }
        fs::write(&path, &big).unwrap();
        s.log("after rotation", "WARN");
        let rotated = fs::read_to_string(&path).unwrap();
        assert!(rotated.len() as u64 <= LOG_ROTATE_BYTES / 2 + 2000, "{}", rotated.len());
        assert!(rotated.starts_with('x'), "rotation must cut at a line boundary");
        assert!(rotated.trim_end().ends_with("WARN: after rotation"));
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
        assert!(s.heartbeat(None, true));
        let v: Value = serde_json::from_slice(&fs::read(s.runtime_dir().join("heartbeat")).unwrap()).unwrap();
        assert!(v["message"].is_null());
        let leftovers: Vec<_> = fs::read_dir(s.runtime_dir())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn findings_merge_and_dedupe() {
        let dir = TempDir::new("findings");
        let s = session(&dir, None, SvsConfig::default());
        fs::create_dir_all(s.runtime_dir()).unwrap();
        fs::write(
            s.runtime_dir().join("svs_findings.json"),
            r#"{"version":1,"findings":[{"source":"preflight","check":"x","severity":"info","signal":null,"message":"m","value":null,"threshold":null}]}"#,
        )
        .unwrap();
        let f = Finding {
            source: "contract",
            check: "shape".into(),
            severity: "warning",
            signal: Some("features".into()),
            message: "bad".into(),
            value: Some(f64::NAN),
            threshold: Some(2.0),
        };
        s.add_finding(f.clone());
        s.add_finding(f);
        let v: Value = serde_json::from_slice(&fs::read(s.runtime_dir().join("svs_findings.json")).unwrap()).unwrap();
        let items = v["findings"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1]["signal"], "features");
        assert!(items[1]["value"].is_null());
        assert_eq!(items[1]["threshold"], 2.0);
    }
}
