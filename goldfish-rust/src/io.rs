//! `load_input` / `save_output`: where signals live on disk, and the contract + stats checks that
//! run before an output is written (same flow as the Python SDK's `save_output`).

use std::collections::HashMap;
use std::fs;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::config::{Enforcement, Format, SignalSpec};
use crate::contracts::{check, schema_kind};
use crate::error::{GoldfishError, Result};
use crate::fsutil::{atomic_write, copy_tree, write_dir_atomically};
use crate::npy::{read_npy_any, write_npy_any};
use crate::npz::{load_npz, write_npz, MAX_NPZ_ARRAYS};
use crate::output::OutputData;
use crate::paths::{ensure_inside, validate_path_component};
use crate::session::{Finding, Session};
use crate::stats::{evaluate, table_stats, tensor_stats};
use crate::table::Table;

fn not_found(context: String) -> GoldfishError {
    GoldfishError::io(context, io::Error::new(ErrorKind::NotFound, "no such file or directory"))
}

fn describe(data: &OutputData) -> String {
    match (data.dtype_str(), data.shape()) {
        (Some(d), Some(s)) => format!("{} {:?}", d, s),
        _ => match data {
            OutputData::MultiTensor(m) => format!("{} arrays", m.len()),
            OutputData::Tabular(t) => format!("table {}x{}", t.n_rows(), t.n_cols()),
            other => other.kind_name().to_string(),
        },
    }
}

/// Regular files in `dir` with extension `ext`, by name.
fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> =
        fs::read_dir(dir).map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect()).unwrap_or_default();
    found.retain(|p| {
        p.extension().and_then(|x| x.to_str()) == Some(ext)
            && fs::symlink_metadata(p).map(|m| m.file_type().is_file()).unwrap_or(false)
    });
    found.sort();
    found
}

/// What a contract can be checked against.
enum Checked {
    Data(OutputData),
    /// A format the SDK cannot read (e.g. a `.pt` file): the contract is reported as unchecked.
    Opaque,
    Unreadable(String),
}

/// A borrowed view of `Checked` (in-memory data is checked without a copy).
#[derive(Clone, Copy)]
enum CheckRef<'a> {
    Data(&'a OutputData),
    Opaque,
    Unreadable(&'a str),
}

impl Checked {
    fn as_ref(&self) -> CheckRef<'_> {
        match self {
            Checked::Data(d) => CheckRef::Data(d),
            Checked::Opaque => CheckRef::Opaque,
            Checked::Unreadable(e) => CheckRef::Unreadable(e),
        }
    }
}

/// Load an existing output file or directory just enough to check it: a directory becomes its
/// `*.npy` arrays (by stem) plus the arrays of its `*.npz` files.
fn open_for_check(path: &Path) -> Checked {
    let loaded: Result<Option<OutputData>> = (|| {
        if path.is_dir() {
            let mut arrays = HashMap::new();
            for f in files_with_ext(path, "npy") {
                let stem = f.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                arrays.insert(stem, read_npy_any(&f)?);
            }
            for f in files_with_ext(path, "npz") {
                arrays.extend(load_npz(&f)?.into_arrays());
            }
            return Ok(if arrays.is_empty() { None } else { Some(OutputData::MultiTensor(arrays)) });
        }
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        Ok(match ext.as_str() {
            "npy" => Some(read_npy_any(path)?),
            "npz" => Some(OutputData::MultiTensor(load_npz(path)?.into_arrays())),
            "csv" => Some(OutputData::Tabular(Table::read_csv(path, Some(b','))?)),
            "json" => {
                let bytes = fs::read(path).map_err(GoldfishError::io_ctx(format!("read {}", path.display())))?;
                Some(OutputData::Json(serde_json::from_slice(&bytes)?))
            }
            _ => None,
        })
    })();
    match loaded {
        Ok(Some(d)) => Checked::Data(d),
        Ok(None) => Checked::Opaque,
        Err(e) => Checked::Unreadable(e.to_string()),
    }
}

/// The schema's `vocab_size` for a single array, or for the primary (or only) array of several.
fn vocab_size(schema: Option<&Value>, array: Option<&str>) -> Option<u64> {
    let schema = schema?.as_object()?;
    let mut value = schema.get("vocab_size");
    if let (Some(name), Some(arrays)) = (array, schema.get("arrays").and_then(Value::as_object)) {
        match arrays.get(name).and_then(|s| s.get("vocab_size")) {
            Some(v) => value = Some(v),
            None => {
                let primary = schema.get("primary_array").and_then(Value::as_str) == Some(name);
                let only = arrays.len() == 1 && arrays.contains_key(name);
                if !(primary || only) {
                    value = None;
                }
            }
        }
    }
    value.and_then(Value::as_u64).filter(|v| *v > 0)
}

fn stats_entries(signal: &str, data: &OutputData, schema: Option<&Value>) -> Vec<(String, Value)> {
    match data {
        d if d.is_tensor() => {
            tensor_stats(d, vocab_size(schema, None)).map(|s| vec![(signal.to_string(), s)]).unwrap_or_default()
        }
        OutputData::MultiTensor(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            keys.into_iter()
                .take(MAX_NPZ_ARRAYS)
                .filter_map(|k| {
                    tensor_stats(&m[k], vocab_size(schema, Some(k))).map(|s| (format!("{}.{}", signal, k), s))
                })
                .collect()
        }
        OutputData::Tabular(t) => table_stats(t).into_iter().map(|(c, s)| (format!("{}.{}", signal, c), s)).collect(),
        _ => Vec::new(),
    }
}

impl Session {
    /// Where a declared input is: `<inputs>/<name>`, `<inputs>/<name>.<ext>`, or the config `location`.
    fn locate_input(&self, name: &str, spec: &SignalSpec, fmt: Format) -> Option<PathBuf> {
        let base = self.inputs_dir.join(name);
        if base.exists() {
            return Some(base);
        }
        if let Some(ext) = fmt.extension() {
            let with_ext = self.inputs_dir.join(format!("{}.{}", name, ext));
            if with_ext.exists() {
                return Some(with_ext);
            }
        }
        spec.location
            .as_deref()
            .filter(|l| !l.is_empty() && !l.contains("://"))
            .map(PathBuf::from)
            .filter(|p| p.exists())
    }

    fn missing_input(&self, name: &str, spec: &SignalSpec, fmt: Format) -> GoldfishError {
        let mut looked = vec![self.inputs_dir.join(name).display().to_string()];
        if let Some(ext) = fmt.extension() {
            looked.push(self.inputs_dir.join(format!("{}.{}", name, ext)).display().to_string());
        }
        let hint = match spec.location.as_deref() {
            Some(l) if l.contains("://") => format!(
                "Its location {} is remote and was not staged into {}. Fix: run the stage through goldfish so inputs \
                 are staged, or copy the data to that path",
                l,
                self.inputs_dir.display()
            ),
            other => {
                if let Some(l) = other {
                    looked.push(l.to_string());
                }
                "Fix: check the upstream run produced it (inspect_run), or set inputs_override to a real path".into()
            }
        };
        not_found(format!("input '{}' not found; looked at {}. {}", name, looked.join(", "), hint))
    }

    /// The file to read for a single-file format: the path itself, `<name>.<ext>` inside a directory,
    /// or the directory's only `*.<ext>` (several is ambiguous).
    fn input_member(&self, base: &Path, name: &str, ext: &str) -> Result<PathBuf> {
        if base.is_file() {
            return Ok(base.to_path_buf());
        }
        let preferred = base.join(format!("{}.{}", name, ext));
        if preferred.is_file() {
            ensure_inside(base, &preferred, "input file")?;
            return Ok(preferred);
        }
        let matches = files_with_ext(base, ext);
        match matches.len() {
            1 => {
                ensure_inside(base, &matches[0], "input file")?;
                Ok(matches[0].clone())
            }
            0 => {
                let mut listing: Vec<String> = fs::read_dir(base)
                    .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
                    .unwrap_or_default();
                listing.sort();
                listing.truncate(10);
                Err(not_found(format!(
                    "input '{}': no .{} file in directory {} (contains: {}). Fix: load it with format \"directory\" and \
                     read the files yourself, or declare the right format",
                    name,
                    ext,
                    base.display(),
                    if listing.is_empty() { "(empty)".to_string() } else { listing.join(", ") }
                )))
            }
            n => Err(GoldfishError::Config(format!(
                "input '{}': directory {} holds {} .{} files ({}), so which to load is ambiguous. Fix: name one {}.{}, \
                 or load_input(\"{}\", Some(\"directory\")) and pick the file.",
                name,
                base.display(),
                n,
                ext,
                matches.iter().take(10).filter_map(|p| p.file_name()).map(|f| f.to_string_lossy().into_owned()).collect::<Vec<_>>().join(", "),
                name,
                ext,
                name
            ))),
        }
    }

    pub(crate) fn load_input(&self, name: &str, format: Option<&str>) -> Result<OutputData> {
        validate_path_component(name)?;
        let cfg = self.config()?;
        let spec = cfg.input(name)?;
        let fmt = match format {
            Some(f) => Format::parse(f)?,
            None => spec.effective_format(Format::File)?,
        };
        if spec.raw.get("schema") == Some(&Value::Null) {
            self.warn_once(
                &format!("input-null-schema:{}", name),
                &format!(
                    "Input '{}' has schema: null, so it has no contract. Fix: describe it in pipeline.yaml \
                     (kind: tensor/tabular/json/file) when you can.",
                    name
                ),
            );
        }
        let base = self.locate_input(name, spec, fmt).ok_or_else(|| self.missing_input(name, spec, fmt))?;
        match fmt {
            Format::Npy => read_npy_any(&self.input_member(&base, name, "npy")?),
            // Never auto-loaded: hand back the archive for load_npz / load_npz_array.
            Format::Npz => Ok(OutputData::Path(self.input_member(&base, name, "npz")?)),
            Format::Csv => Ok(OutputData::Tabular(Table::read_csv(
                self.input_member(&base, name, "csv")?,
                Some(spec.csv_delimiter()?.unwrap_or(b',')),
            )?)),
            Format::Json => {
                let f = self.input_member(&base, name, "json")?;
                let bytes = fs::read(&f).map_err(GoldfishError::io_ctx(format!("read {}", f.display())))?;
                serde_json::from_slice(&bytes)
                    .map(OutputData::Json)
                    .map_err(|e| GoldfishError::Format(format!("{} is not valid JSON: {}", f.display(), e)))
            }
            Format::Directory | Format::File | Format::Dataset => Ok(OutputData::Path(base)),
        }
    }

    /// Where a declared input lives (its location when staged elsewhere); need not exist.
    pub(crate) fn input_path(&self, name: &str) -> Result<PathBuf> {
        validate_path_component(name)?;
        let cfg = self.config()?;
        let spec = cfg.input(name)?;
        let fmt = spec.effective_format(Format::File)?;
        Ok(self.locate_input(name, spec, fmt).unwrap_or_else(|| self.inputs_dir.join(name)))
    }

    fn output_format(&self, name: &str, spec: &SignalSpec) -> Result<Format> {
        match spec.effective_format(Format::Directory)? {
            Format::Dataset => Err(GoldfishError::Config(format!(
                "output '{}' has format dataset, which save_output cannot write. Fix: use one of npy, npz, csv, json, \
                 file, directory, or write it at get_output_path(\"{}\").",
                name, name
            ))),
            f => Ok(f),
        }
    }

    /// `<outputs>/<name>.<ext>` (npy/npz/csv/json) or `<outputs>/<name>`; refuses a symlink out.
    fn output_target(&self, name: &str, fmt: Format) -> Result<PathBuf> {
        fs::create_dir_all(&self.outputs_dir)
            .map_err(GoldfishError::io_ctx(format!("create outputs directory {}", self.outputs_dir.display())))?;
        let target = match fmt.extension() {
            Some(ext) => self.outputs_dir.join(format!("{}.{}", name, ext)),
            None => self.outputs_dir.join(name),
        };
        ensure_inside(&self.outputs_dir, &target, "output path")?;
        Ok(target)
    }

    /// Where a declared output must be written; a directory output's directory is created.
    pub(crate) fn output_path(&self, name: &str) -> Result<PathBuf> {
        validate_path_component(name)?;
        let cfg = self.config()?;
        let fmt = self.output_format(name, cfg.output(name)?)?;
        let target = self.output_target(name, fmt)?;
        if fmt == Format::Directory {
            if target.exists() && !target.is_dir() {
                return Err(GoldfishError::Config(format!(
                    "output '{}' is a directory signal but {} is a file. Fix: remove it.",
                    name,
                    target.display()
                )));
            }
            fs::create_dir_all(&target).map_err(GoldfishError::io_ctx(format!("create {}", target.display())))?;
        }
        Ok(target)
    }

    /// Check that `data` can be saved in format `fmt`; returns where it goes.
    fn data_target(&self, name: &str, data: &OutputData, fmt: Format, base: &Path) -> Result<PathBuf> {
        let mismatch = |want: &str| {
            Err(GoldfishError::Schema(format!(
                "output '{}' has format {} but was given {} data. Fix: pass {}, or change the output's type/format in \
                 pipeline.yaml.",
                name,
                fmt.as_str(),
                data.kind_name(),
                want
            )))
        };
        match (data, fmt) {
            (OutputData::Path(_), _) => Ok(base.to_path_buf()),
            (d, Format::Npy) if d.is_tensor() => Ok(base.to_path_buf()),
            (d, Format::Directory) if d.is_tensor() => Ok(base.join(format!("{}.npy", name))),
            (OutputData::MultiTensor(_), Format::Directory | Format::File | Format::Npz) => Ok(base.to_path_buf()),
            (OutputData::Json(_), Format::Json | Format::File) => Ok(base.to_path_buf()),
            (OutputData::Json(_), Format::Directory) => Ok(base.join(format!("{}.json", name))),
            (OutputData::Tabular(_), Format::Csv | Format::File) => Ok(base.to_path_buf()),
            (OutputData::Tabular(_), Format::Directory) => Ok(base.join(format!("{}.csv", name))),
            (OutputData::MultiTensor(_), _) => {
                mismatch("one tensor (npy holds one array), or declare a directory or npz output")
            }
            (_, Format::Npy) => mismatch("a tensor (OutputData::TensorF32, ...)"),
            (_, Format::Npz) => mismatch("OutputData::MultiTensor"),
            (_, Format::Csv) => mismatch("OutputData::Tabular"),
            (_, Format::Json) => mismatch("OutputData::Json"),
            (_, Format::File) => mismatch("OutputData::Path to the file you wrote at get_output_path"),
            (_, _) => mismatch("a supported variant"),
        }
    }

    fn check_path_output(&self, name: &str, src: &Path, fmt: Format, target: &Path) -> Result<()> {
        let meta = fs::symlink_metadata(src).map_err(|_| {
            not_found(format!(
                "output '{}': {} does not exist. Fix: write it first (at get_output_path(\"{}\") to avoid a copy)",
                name,
                src.display(),
                name
            ))
        })?;
        if meta.file_type().is_symlink() {
            return Err(GoldfishError::PathSecurity(format!(
                "output '{}': {} is a symlink; refusing to follow it. Fix: pass the real path.",
                name,
                src.display()
            )));
        }
        if fmt == Format::Directory && !meta.is_dir() {
            return Err(GoldfishError::Config(format!(
                "output '{}' is a directory signal but {} is a file. Fix: pass a directory.",
                name,
                src.display()
            )));
        }
        if fmt != Format::Directory && meta.is_dir() {
            return Err(GoldfishError::Config(format!(
                "output '{}' is a {} signal but {} is a directory. Fix: pass a file.",
                name,
                fmt.as_str(),
                src.display()
            )));
        }
        if meta.is_dir() {
            let src_r = src.canonicalize().map_err(GoldfishError::io_ctx(format!("resolve {}", src.display())))?;
            let same = target.canonicalize().map(|t| t == src_r).unwrap_or(false);
            if !same && ensure_inside(&src_r, target, "output").is_ok() {
                return Err(GoldfishError::PathSecurity(format!(
                    "output '{}': {} contains the output path {} itself, so it cannot be copied there. Fix: build the \
                     directory at get_output_path(\"{}\") and pass that.",
                    name,
                    src.display(),
                    target.display(),
                    name
                )));
            }
        }
        Ok(())
    }

    /// Contract + stats checks and their findings; `Err(Schema)` in blocking mode when any is an error.
    fn enforce(
        &self,
        signal: &str,
        schema: Option<&Value>,
        checked: CheckRef<'_>,
        entries: &[(String, Value)],
    ) -> Result<()> {
        if schema.is_none() {
            self.warn_once(
                &format!("output-null-schema:{}", signal),
                &format!(
                    "Output '{}' has schema: null, so it is saved without a contract. Fix: describe it in pipeline.yaml \
                     (kind: tensor/tabular/json/file) when you can.",
                    signal
                ),
            );
        }
        let mode = self.svs.effective_enforcement();
        let severity = if mode == Enforcement::Warning { "warning" } else { "error" };
        let mut found: Vec<Finding> = Vec::new();
        if let (true, Some(schema)) = (self.svs.enabled, schema) {
            let contract: Vec<Finding> = match checked {
                CheckRef::Data(d) => check(schema, d, signal)
                    .into_iter()
                    .map(|i| Finding::new("contract", i.check, severity, signal, i.message))
                    .collect(),
                CheckRef::Unreadable(e) => vec![Finding::new(
                    "contract",
                    "type",
                    severity,
                    signal,
                    format!("{}: the output could not be read to check its contract: {}", signal, e),
                )],
                CheckRef::Opaque => {
                    let kind = schema_kind(schema).unwrap_or_default();
                    if ["tensor", "tabular", "json"].contains(&kind.as_str()) {
                        found.push(Finding::new(
                            "contract",
                            "unchecked",
                            "info",
                            signal,
                            format!(
                                "{}: the {} contract was not checked because the file's format is opaque (not \
                                 npy/npz/csv/json).",
                                signal, kind
                            ),
                        ));
                    }
                    Vec::new()
                }
            };
            if mode != Enforcement::Silent {
                found.extend(contract);
            }
        }
        if self.svs.stats_enabled && !entries.is_empty() {
            self.record_stats(entries);
            let primary = schema
                .filter(|s| s.get("arrays").map_or(false, Value::is_object))
                .and_then(|s| s.get("primary_array").and_then(Value::as_str))
                .map(|p| format!("{}.{}", signal, p));
            for (key, entry) in entries {
                let domain_checks = primary.as_deref().map_or(true, |p| p == key);
                found.extend(evaluate(entry, signal, key, &self.svs.domain, domain_checks));
            }
        }
        self.add_findings(&found);
        for f in found.iter().filter(|f| f.severity != "info") {
            self.log(&format!("SVS {} {} ({}): {}", f.source, f.severity, f.check, f.message), "WARNING");
        }
        if mode == Enforcement::Blocking {
            let errors: Vec<&str> =
                found.iter().filter(|f| f.severity == "error").map(|f| f.message.as_str()).collect();
            if !errors.is_empty() {
                return Err(GoldfishError::Schema(format!(
                    "Output '{}' was not written (svs.default_enforcement: blocking): {} Fix: make the data match the \
                     schema in pipeline.yaml, correct the schema, or set svs.default_enforcement: warning in goldfish.yaml.",
                    signal,
                    errors.join(" ")
                )));
            }
        }
        Ok(())
    }

    pub(crate) fn save_output(&self, name: &str, data: OutputData, artifact: bool) -> Result<PathBuf> {
        validate_path_component(name)?;
        let cfg = self.config()?;
        let spec = cfg.output(name)?;
        let fmt = self.output_format(name, spec)?;
        if let OutputData::MultiTensor(m) = &data {
            if m.is_empty() || m.len() > MAX_NPZ_ARRAYS {
                return Err(GoldfishError::Schema(format!(
                    "output '{}' has {} arrays; save 1 to {} per output. Fix: split it into several outputs.",
                    name,
                    m.len(),
                    MAX_NPZ_ARRAYS
                )));
            }
            for (k, v) in m {
                validate_path_component(k)?;
                if !v.is_tensor() {
                    return Err(GoldfishError::Schema(format!(
                        "output '{}': array '{}' is {} data; a MultiTensor holds tensors only.",
                        name,
                        k,
                        v.kind_name()
                    )));
                }
            }
        }
        let base = self.output_target(name, fmt)?;
        let target = self.data_target(name, &data, fmt, &base)?;
        let schema = spec.schema.as_ref();

        let loaded = match &data {
            OutputData::Path(src) => {
                self.check_path_output(name, src, fmt, &target)?;
                if self.svs.enabled && (schema.is_some() || self.svs.stats_enabled) {
                    open_for_check(src)
                } else {
                    Checked::Opaque
                }
            }
            _ => Checked::Opaque,
        };
        let checked = match &data {
            OutputData::Path(_) => loaded.as_ref(),
            d => CheckRef::Data(d),
        };
        let entries = match (self.svs.stats_enabled, checked) {
            (true, CheckRef::Data(d)) => stats_entries(name, d, schema),
            _ => Vec::new(),
        };
        self.enforce(name, schema, checked, &entries)?;

        match &data {
            OutputData::Path(src) => copy_into_place(src, &target)?,
            OutputData::MultiTensor(m) if fmt == Format::Npz => write_npz(&target, m)?,
            OutputData::MultiTensor(m) => write_dir_atomically(&target, |tmp| {
                for (k, v) in m {
                    write_npy_any(&tmp.join(format!("{}.npy", k)), v)?;
                }
                Ok(())
            })?,
            d if d.is_tensor() => write_npy_any(&target, d)?,
            OutputData::Json(v) => {
                let text = serde_json::to_string(v)?;
                atomic_write(&target, text.as_bytes())?;
            }
            OutputData::Tabular(t) => t.write_csv(&target, spec.csv_delimiter()?.unwrap_or(b','))?,
            _ => {}
        }
        if artifact || spec.artifact {
            atomic_write(&self.outputs_dir.join(".artifacts").join(name), b"")?;
        }
        let shown = target.strip_prefix(&self.outputs_dir).unwrap_or(&target).display().to_string();
        self.log(&format!("saved output '{}' -> {} ({})", name, shown, describe(&data)), "INFO");
        Ok(target)
    }
}

/// Put `src` (a file or a directory tree) at `dst`; nothing to do when it already is `dst`.
fn copy_into_place(src: &Path, dst: &Path) -> Result<()> {
    let src_r = src.canonicalize().map_err(GoldfishError::io_ctx(format!("resolve {}", src.display())))?;
    if dst.canonicalize().map(|d| d == src_r).unwrap_or(false) {
        return Ok(());
    }
    if src_r.is_dir() {
        write_dir_atomically(dst, |tmp| copy_tree(&src_r, tmp))
    } else {
        if dst.is_dir() && !fs::symlink_metadata(dst).map(|m| m.file_type().is_symlink()).unwrap_or(false) {
            fs::remove_dir_all(dst).map_err(GoldfishError::io_ctx(format!("replace {}", dst.display())))?;
        }
        let bytes = fs::read(&src_r).map_err(GoldfishError::io_ctx(format!("read {}", src.display())))?;
        atomic_write(dst, &bytes)
    }
}
