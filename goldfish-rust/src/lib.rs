//! # goldfish-rust
//!
//! The Rust stage SDK of Goldfish. It reads and writes the same files as the Python SDK
//! (`goldfish.io` / `goldfish.metrics`): inputs under `GOLDFISH_INPUTS_DIR`, outputs under
//! `GOLDFISH_OUTPUTS_DIR`, and the runtime files in `<outputs>/.goldfish/` (`metrics.jsonl`,
//! `logs.txt`, `heartbeat`, `stop_requested`, `svs_stats.json`, `svs_findings.json`).
//!
//! ```no_run
//! use goldfish_rust::{init, load_input, save_output, OutputData, GoldfishError};
//! use goldfish_rust::{runtime_log, heartbeat, log_metric, should_stop};
//!
//! fn main() -> Result<(), GoldfishError> {
//!     let _guard = init(); // finalizes metrics and SVS stats when main returns
//!     let features = load_input("features", None)?.into_tensor_f32().expect("f32 tensor");
//!     for epoch in 0..3 {
//!         let loss = 1.0 / (epoch as f64 + 1.0);
//!         runtime_log(&format!("epoch {} loss {:.4}", epoch, loss), "INFO");
//!         log_metric("train/loss", loss, Some(epoch));
//!         heartbeat(Some(&format!("epoch {}", epoch)), false);
//!         if should_stop() {
//!             break;
//!         }
//!     }
//!     save_output("features_out", OutputData::TensorF32(features), false)?;
//!     Ok(())
//! }
//! ```

mod config;
mod contracts;
mod error;
mod fsutil;
mod io;
mod metrics;
mod npy;
mod npz;
mod numfmt;
mod output;
mod paths;
mod session;
mod stats;
mod table;
mod tensor;
mod timefmt;

#[cfg(test)]
mod io_tests;
#[cfg(test)]
pub(crate) use fsutil::testutil;

use std::borrow::Borrow;
use std::path::PathBuf;
use std::sync::{Arc, Once};

/// serde_json, re-exported so a stage can build `OutputData::Json` without a manifest of its own.
pub use serde_json;
pub use serde_json::{json, Map as JsonMap, Value as JsonValue};

pub use config::{Enforcement, Format, SignalSpec, StageConfig, SvsConfig};
pub use contracts::{check as check_contract, normalize_dtype, schema_kind, ContractIssue};
pub use error::{GoldfishError, Result};
pub use metrics::{is_valid_metric_name, MAX_METRIC_NAME_LEN};
pub use npy::{npy_bytes, npy_bytes_any, parse_npy_bytes, read_npy, read_npy_any, write_npy, MAX_HEADER_BYTES};
pub use npz::{
    load_npz, load_npz_array, load_npz_with_limits, write_npz, NpzFile, NpzLimits, MAX_NPZ_ARRAYS, MAX_NPZ_ENTRY_BYTES,
};
pub use output::OutputData;
pub use paths::validate_path_component;
pub use session::{HEARTBEAT_MIN_INTERVAL, LOG_ROTATE_BYTES, MAX_FINDINGS};
pub use stats::{array_stats, column_stats, table_stats, tensor_stats, ENTROPY_BINS, MAX_SAMPLES};
pub use table::{Column, Table, CSV_DELIMITERS};
pub use tensor::{ArrayD, Element, Tensor};
pub use timefmt::iso_utc;

use session::{global, Session};

/// SDK version (also written to the log by `init`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// RAII guard from [`init`]: on drop (also while unwinding from a panic) it writes pending metric
/// loss counts and finalizes `svs_stats.json` when stats are enabled.
#[must_use = "bind it for the whole of main: `let _guard = init();` (a bare `init();` finalizes at once)"]
pub struct GoldfishGuard {
    session: Arc<Session>,
}

impl Drop for GoldfishGuard {
    fn drop(&mut self) {
        self.session.finalize();
    }
}

static PANIC_HOOK: Once = Once::new();

/// Start the SDK: reads the environment, writes a first heartbeat, and logs panics to `logs.txt`
/// so the run monitor sees them. Keep the returned guard alive until the end of `main`.
pub fn init() -> GoldfishGuard {
    let session = global();
    PANIC_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(s) = session::try_global() {
                s.log_from_panic(&format!("stage panicked: {}", info).replace('\n', " "));
            }
            previous(info);
        }));
    });
    let stage = std::env::var("GOLDFISH_STAGE").unwrap_or_else(|_| "?".into());
    let run = std::env::var("GOLDFISH_RUN_ID").unwrap_or_else(|_| "?".into());
    session.log(&format!("goldfish-rust {} started stage '{}' (run {})", VERSION, stage, run), "INFO");
    session.heartbeat(Some("stage started"), true);
    GoldfishGuard { session }
}

/// Finalize now (what the guard does on drop). `timeout_secs` is accepted for parity with the
/// Python SDK; stats are computed at save time, so there is no queue to wait for.
pub fn finalize_svs(timeout_secs: Option<u64>) {
    let _ = timeout_secs;
    global().finalize();
}

/// Load input `name`. The format comes from `format`, else the input's `format`/`type`, else `file`:
/// `npy` → a tensor variant matching the file's dtype; `csv` → `Tabular`; `json` → `Json`;
/// `directory`/`file`/`dataset` → `Path`; `npz` → `Path` of the archive (never auto-loaded; use
/// [`load_npz`]).
pub fn load_input(name: &str, format: Option<&str>) -> Result<OutputData> {
    global().load_input(name, format)
}

/// Save output `name` where the run engine expects it, after its contract and stats checks
/// (blocking: any error finding → `Err(Schema)` and nothing written; warning: WARNING log lines and
/// findings; silent: no contract findings). Layout by the output's format: tensor → `<name>.npy`
/// (npy) or `<name>/<name>.npy` (directory); `MultiTensor` → `<name>/<array>.npy` (directory or
/// file) or `<name>.npz` (npz); `Json` → `<name>.json` or `<name>` (file); `Tabular` → `<name>.csv`;
/// `Path` → copied to `<name>[.ext]` unless it already is that path (files inside it are loaded to
/// check the contract). `artifact` (or the output's `artifact: true`) writes `.artifacts/<name>`.
pub fn save_output(name: &str, data: OutputData, artifact: bool) -> Result<()> {
    global().save_output(name, data, artifact).map(|_| ())
}

/// The merged stage config from `GOLDFISH_STAGE_CONFIG` (read once).
pub fn get_config() -> Result<Arc<StageConfig>> {
    global().config()
}

/// The SVS settings in effect.
pub fn get_svs_config() -> SvsConfig {
    global().svs.clone()
}

/// Where declared input `name` lives: `<inputs dir>/<name>` (or `<name>.<ext>`, or its configured
/// location when it was staged elsewhere). Need not exist.
pub fn get_input_path(name: &str) -> Result<PathBuf> {
    global().input_path(name)
}

/// Where declared output `name` must be written: `<outputs dir>/<name>.<ext>` for npy/npz/csv/json,
/// `<outputs dir>/<name>` otherwise. A directory output's directory is created; for the others
/// only the outputs dir.
pub fn get_output_path(name: &str) -> Result<PathBuf> {
    global().output_path(name)
}

pub fn get_inputs_dir() -> PathBuf {
    global().inputs_dir.clone()
}

pub fn get_outputs_dir() -> PathBuf {
    global().outputs_dir.clone()
}

/// Print `[YYYY-MM-DD HH:MM:SS] LEVEL: msg` (UTC) and append it to `logs.txt` (kept under 10 MB by
/// dropping its older half). Never fails.
pub fn runtime_log(msg: &str, level: &str) {
    global().log(msg, level)
}

/// Write the heartbeat file (at most once a second unless `force`). Returns whether it was written.
pub fn heartbeat(message: Option<&str>, force: bool) -> bool {
    global().heartbeat(message, force)
}

/// True when Goldfish asked the stage to stop (`.goldfish/stop_requested` exists).
pub fn should_stop() -> bool {
    global().stop_file().exists()
}

/// Why a stop was requested, when it was.
pub fn stop_reason() -> Option<String> {
    std::fs::read_to_string(global().stop_file()).ok().map(|s| s.trim().to_string())
}

/// Record a scalar. Invalid names, NaN/Inf values, negative steps, a change between stepped and
/// stepless logging of one name, and names past the per-run cap are skipped and counted (never an
/// error). Returns whether the record was written.
pub fn log_metric(name: &str, value: f64, step: Option<i64>) -> bool {
    global().log_metric(name, value, step)
}

/// Record several scalars with one step and timestamp: accepts `&HashMap<String, f64>`, a
/// `HashMap`/`BTreeMap` by value, or `[("a", 1.0), ...]`. Returns how many were written.
pub fn log_metrics<I, K, V>(metrics: I, step: Option<i64>) -> usize
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: Borrow<f64>,
{
    let items: Vec<(String, f64)> = metrics.into_iter().map(|(k, v)| (k.as_ref().to_string(), *v.borrow())).collect();
    global().log_metrics(items, step)
}

/// Record an artifact; `path` is relative to the outputs dir (absolute paths, `..`, backslashes,
/// symlinks and %-encoded tricks are refused). Returns whether the record was written.
pub fn log_artifact(name: &str, path: &str) -> bool {
    global().log_artifact(name, path)
}

/// Write the pending `lost` record, if any. Metric records themselves are written immediately.
pub fn flush_metrics() {
    global().flush_lost(true)
}

/// Items skipped so far in this process, by reason (`invalid_name`, `non_finite`, `step_mode`, ...).
pub fn lost_counts() -> std::collections::BTreeMap<String, u64> {
    global().lost_counts()
}

/// End-of-run flush (safe to call more than once).
pub fn finish() {
    global().finalize()
}
