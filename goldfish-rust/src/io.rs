//! `load_input` / `save_output`: the on-disk layout of signals, contracts and stats at save time.

use std::collections::HashMap;
use std::fs;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::config::Enforcement;
use crate::config::{Format, SignalSpec};
use crate::contracts::{check, schema_kind};
use crate::error::{GoldfishError, Result};
use crate::fsutil::atomic_write;
use crate::npy::{read_npy_any, write_npy_any};
use crate::npz::{load_npz, MAX_NPZ_ARRAYS};
use crate::output::OutputData;
use crate::paths::{ensure_inside, validate_path_component};
use crate::session::{Finding, Session};
use crate::stats::tensor_stats;
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

/// First regular file in `dir` with extension `ext`, by name.
fn first_with_ext(dir: &Path, ext: &str) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().and_then(|x| x.to_str()) == Some(ext))
        .collect();
    found.sort();
    found.into_iter().next()
}

impl Session {
    pub(crate) fn input_path(&self, name: &str) -> Result<PathBuf> {
        validate_path_component(name)?;
        Ok(self.inputs_dir.join(name))
    }

    /// `<outputs>/<name>`; creates the outputs dir (not the path itself) and refuses symlinks out.
    pub(crate) fn output_path(&self, name: &str) -> Result<PathBuf> {
        validate_path_component(name)?;
        fs::create_dir_all(&self.outputs_dir)
            .map_err(GoldfishError::io_ctx(format!("create outputs directory {}", self.outputs_dir.display())))?;
        let p = self.outputs_dir.join(name);
        ensure_inside(&self.outputs_dir, &p, "output path")?;
        Ok(p)
    }

    /// Where input `name` is: `<inputs>/<name>`, `<inputs>/<name>.<ext>`, or the config `location`.
    fn locate_input(&self, name: &str, spec: &SignalSpec, fmt: Format) -> Result<PathBuf> {
        let mut tried = vec![self.inputs_dir.join(name)];
        if let Some(ext) = fmt.extension() {
            tried.push(self.inputs_dir.join(format!("{}.{}", name, ext)));
        }
        if let Some(loc) = spec.location.as_deref().filter(|l| !l.contains("://")) {
            tried.push(PathBuf::from(loc));
        }
        if let Some(p) = tried.iter().find(|p| p.exists()) {
            return Ok(p.clone());
        }
        let hint = match spec.location.as_deref() {
            Some(l) if l.contains("://") => {
                format!(" Its location {} is remote and was not staged into the inputs directory.", l)
            }
            _ => String::new(),
        };
        Err(not_found(format!(
            "input '{}' not found (tried {}).{} Fix: check that the upstream stage produced it or that \
             GOLDFISH_INPUTS_DIR points at the staged inputs",
            name,
            tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
            hint
        )))
    }

    /// The file to read for a single-file format: `base` itself, or `<base>/<name>.<ext>`, or the
    /// first `*.<ext>` in `base`.
    fn input_member(&self, base: &Path, name: &str, ext: &str) -> Result<PathBuf> {
        if !base.is_dir() {
            return Ok(base.to_path_buf());
        }
        let preferred = base.join(format!("{}.{}", name, ext));
        let file = if preferred.is_file() { Some(preferred) } else { first_with_ext(base, ext) };
        match file {
            Some(f) => {
                ensure_inside(base, &f, "input file")?;
                Ok(f)
            }
            None => Err(not_found(format!(
                "input '{}' is a directory ({}) with no .{} file. Fix: load it with format \"directory\" or write \
                 a .{} file upstream",
                name,
                base.display(),
                ext,
                ext
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
        let base = self.locate_input(name, spec, fmt)?;
        match fmt {
            Format::Npy => read_npy_any(&self.input_member(&base, name, "npy")?),
            // Never auto-loaded: hand back the file for load_npz / load_npz_array.
            Format::Npz => Ok(OutputData::Path(self.input_member(&base, name, "npz")?)),
            Format::Csv => {
                Ok(OutputData::Tabular(Table::read_csv(self.input_member(&base, name, "csv")?, spec.csv_delimiter()?)?))
            }
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

    /// Turn `Path` data into something a contract can be checked against, or explain why not.
    fn materialize_for_contract(&self, name: &str, schema: &Value, p: &Path) -> Result<Option<OutputData>> {
        let kind = schema_kind(schema);
        if p.is_dir() {
            if let (true, Some(arrays)) = (kind == "tensor", schema.get("arrays").and_then(Value::as_object)) {
                if let Some(npz) = first_with_ext(p, "npz") {
                    return Ok(Some(OutputData::MultiTensor(load_npz(&npz)?.into_arrays())));
                }
                let mut m = HashMap::new();
                for array in arrays.keys() {
                    if validate_path_component(array).is_err() {
                        continue;
                    }
                    let f = p.join(format!("{}.npy", array));
                    if f.is_file() {
                        m.insert(array.clone(), read_npy_any(&f)?);
                    }
                }
                return Ok(Some(OutputData::MultiTensor(m)));
            }
            if kind != "file" {
                self.log_once(
                    &format!("unchecked-dir:{}", name),
                    &format!(
                        "output '{}' is a directory; only tensor schemas with 'arrays' can be checked for directories, \
                         so its {} contract was not checked",
                        name, kind
                    ),
                    "WARN",
                );
            }
            return Ok(None);
        }
        let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        Ok(match (kind.as_str(), ext.as_str()) {
            ("tensor", "npy") => Some(read_npy_any(p)?),
            ("tensor", "npz") => Some(OutputData::MultiTensor(load_npz(p)?.into_arrays())),
            ("tabular", "csv") => Some(OutputData::Tabular(Table::read_csv(p, None)?)),
            ("json", "json") => Some(OutputData::Json(serde_json::from_slice(
                &fs::read(p).map_err(GoldfishError::io_ctx(format!("read {}", p.display())))?,
            )?)),
            ("tensor" | "tabular" | "json", _) => Some(OutputData::Path(p.to_path_buf())),
            _ => None,
        })
    }

    fn contract_problems(&self, name: &str, schema: &Value, data: &OutputData) -> Result<Vec<String>> {
        match data {
            OutputData::Path(p) => match self.materialize_for_contract(name, schema, p)? {
                Some(OutputData::Path(_)) => Ok(vec![format!(
                    "{} is a file that cannot be checked against a {} schema; pass the data in memory \
                     (e.g. OutputData::TensorF32) or save it as .npy/.csv/.json",
                    p.display(),
                    schema_kind(schema)
                )]),
                Some(loaded) => Ok(check(schema, &loaded)),
                None => Ok(Vec::new()),
            },
            other => Ok(check(schema, other)),
        }
    }

    fn enforce(&self, name: &str, problems: &[String]) -> Result<()> {
        let summary = format!("output '{}' does not match its schema: {}", name, problems.join("; "));
        let mode = self.svs.effective_enforcement();
        let (severity, level) = match mode {
            Enforcement::Silent => return Ok(()),
            Enforcement::Blocking => ("error", "ERROR"),
            Enforcement::Warning => ("warning", "WARN"),
        };
        self.log(&summary, level);
        self.add_finding(Finding {
            source: "contract",
            check: "schema_mismatch".into(),
            severity,
            signal: Some(name.to_string()),
            message: summary.clone(),
            value: None,
            threshold: None,
        });
        if mode == Enforcement::Blocking {
            return Err(GoldfishError::Schema(format!(
                "{}. Nothing was written. Fix: make the data match the schema, or change the schema in \
                 pipeline.yaml (schema: null opts out).",
                summary
            )));
        }
        Ok(())
    }

    /// Where data of this kind goes for format `fmt`; errors name the format to use instead.
    fn target_for(&self, name: &str, data: &OutputData, fmt: Format) -> Result<PathBuf> {
        let out = self.output_path(name)?;
        let in_dir = |ext: &str| out.join(format!("{}.{}", name, ext));
        let with_ext = |ext: &str| self.outputs_dir.join(format!("{}.{}", name, ext));
        let mismatch = |want: &str| {
            Err(GoldfishError::Schema(format!(
                "output '{}' has format {} but was given {} data. Fix: pass {} or change the output's type/format \
                 in pipeline.yaml.",
                name,
                fmt.as_str(),
                data.kind_name(),
                want
            )))
        };
        match (data, fmt) {
            (OutputData::Path(_), f) => Ok(match f.extension() {
                Some(ext) => with_ext(ext),
                None => out,
            }),
            (d, Format::Npy) if d.is_tensor() => Ok(with_ext("npy")),
            (d, Format::File) if d.is_tensor() => Ok(out),
            (d, Format::Directory | Format::Dataset) if d.is_tensor() => Ok(in_dir("npy")),
            (OutputData::MultiTensor(_), Format::Directory | Format::File | Format::Dataset) => Ok(out),
            (OutputData::MultiTensor(_), Format::Npz) => Err(GoldfishError::Schema(format!(
                "output '{}' has format npz, but save_output does not write .npz files. Fix: declare it as type \
                 directory (one <array>.npy per array), or write the archive yourself under get_output_path(\"{}\") \
                 and save that path.",
                name, name
            ))),
            (OutputData::MultiTensor(_), _) => {
                mismatch("a single tensor (npy holds one array), or use a directory output")
            }
            (OutputData::Json(_), Format::Json) => Ok(with_ext("json")),
            (OutputData::Json(_), Format::File) => Ok(out),
            (OutputData::Json(_), Format::Directory | Format::Dataset) => Ok(in_dir("json")),
            (OutputData::Tabular(_), Format::Csv) => Ok(with_ext("csv")),
            (OutputData::Tabular(_), Format::File) => Ok(out),
            (OutputData::Tabular(_), Format::Directory | Format::Dataset) => Ok(in_dir("csv")),
            (_, Format::Npy) => mismatch("a tensor (OutputData::TensorF32, ...)"),
            (_, Format::Csv) => mismatch("OutputData::Tabular"),
            (_, Format::Json) => mismatch("OutputData::Json"),
            (_, Format::Npz) => mismatch("OutputData::Path to an .npz you wrote under get_output_path"),
            (_, _) => mismatch("a supported variant"),
        }
    }

    pub(crate) fn save_output(&self, name: &str, data: OutputData, artifact: bool) -> Result<()> {
        validate_path_component(name)?;
        let cfg = self.config()?;
        let spec = cfg.output(name)?.clone();
        let fmt = spec.effective_format(Format::File)?;
        if let OutputData::MultiTensor(m) = &data {
            if m.len() > MAX_NPZ_ARRAYS {
                return Err(GoldfishError::Schema(format!(
                    "output '{}' has {} arrays; at most {} are saved per output. Fix: split it into several outputs.",
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
        if let OutputData::Path(p) = &data {
            if !p.exists() {
                return Err(not_found(format!(
                    "output '{}': path {} does not exist. Fix: write the file or directory first (see get_output_path)",
                    name,
                    p.display()
                )));
            }
        }
        let target = self.target_for(name, &data, fmt)?;

        match &spec.schema {
            None => self.log_once(
                &format!("null-schema:{}", name),
                &format!(
                    "output '{}' has schema: null, so no contract is checked. Fix: declare a schema in pipeline.yaml \
                     when you can.",
                    name
                ),
                "WARN",
            ),
            Some(schema) => {
                let problems = self.contract_problems(name, schema, &data)?;
                if !problems.is_empty() {
                    self.enforce(name, &problems)?;
                }
            }
        }

        let mut stats_items: Vec<(String, &OutputData)> = Vec::new();
        match &data {
            OutputData::Path(src) => copy_into_place(src, &target)?,
            OutputData::MultiTensor(m) => {
                fs::create_dir_all(&target).map_err(GoldfishError::io_ctx(format!("create {}", target.display())))?;
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                for k in keys {
                    let file = target.join(format!("{}.npy", k));
                    ensure_inside(&self.outputs_dir, &file, "output file")?;
                    write_npy_any(&file, &m[k])?;
                    stats_items.push((format!("{}.{}", name, k), &m[k]));
                }
            }
            d if d.is_tensor() => {
                ensure_inside(&self.outputs_dir, &target, "output file")?;
                write_npy_any(&target, d)?;
                stats_items.push((name.to_string(), d));
            }
            OutputData::Json(v) => {
                ensure_inside(&self.outputs_dir, &target, "output file")?;
                let text = serde_json::to_string_pretty(v)?;
                atomic_write(&target, text.as_bytes())?;
            }
            OutputData::Tabular(t) => {
                ensure_inside(&self.outputs_dir, &target, "output file")?;
                t.write_csv(&target, spec.csv_delimiter()?.unwrap_or(b','))?;
            }
            _ => {}
        }

        if self.svs.stats_enabled {
            for (key, d) in stats_items {
                if let Some(s) = tensor_stats(d) {
                    if self.record_stats(&key, s).is_err() {
                        self.log_once("stats-write", "could not write svs_stats.json", "WARN");
                    }
                }
            }
        }
        if artifact || spec.artifact {
            let marker = self.outputs_dir.join(".artifacts").join(name);
            atomic_write(&marker, b"")?;
        }
        let shown = target.strip_prefix(&self.outputs_dir).unwrap_or(&target).display().to_string();
        self.log(&format!("saved output '{}' -> {} ({})", name, shown, describe(&data)), "INFO");
        Ok(())
    }
}

/// Put `src` at `dst` (a file or a directory tree). Nothing to do when they are the same path.
fn copy_into_place(src: &Path, dst: &Path) -> Result<()> {
    let src_r = src.canonicalize().map_err(GoldfishError::io_ctx(format!("resolve {}", src.display())))?;
    if dst.exists() {
        if let Ok(d) = dst.canonicalize() {
            if d == src_r {
                return Ok(());
            }
        }
    }
    if src_r.is_dir() {
        let dst_parent = dst.parent().and_then(|p| p.canonicalize().ok()).unwrap_or_default();
        if dst_parent.join(dst.file_name().unwrap_or_default()).starts_with(&src_r) {
            return Err(GoldfishError::PathSecurity(format!(
                "cannot copy {} into itself ({}). Fix: write the directory at get_output_path(name) directly.",
                src.display(),
                dst.display()
            )));
        }
        copy_dir(&src_r, dst)
    } else {
        let bytes = fs::read(&src_r).map_err(GoldfishError::io_ctx(format!("read {}", src.display())))?;
        atomic_write(dst, &bytes)
    }
}

fn copy_dir(src: &Path, dst: &Path) -> Result<()> {
    fs::create_dir_all(dst).map_err(GoldfishError::io_ctx(format!("create {}", dst.display())))?;
    for entry in fs::read_dir(src).map_err(GoldfishError::io_ctx(format!("list {}", src.display())))? {
        let entry = entry.map_err(GoldfishError::io_ctx(format!("list {}", src.display())))?;
        let ty = entry.file_type().map_err(GoldfishError::io_ctx(format!("stat {}", entry.path().display())))?;
        let to = dst.join(entry.file_name());
        if ty.is_symlink() {
            return Err(GoldfishError::PathSecurity(format!(
                "{} is a symlink; outputs are copied without symlinks. Fix: copy the target file instead.",
                entry.path().display()
            )));
        } else if ty.is_dir() {
            copy_dir(&entry.path(), &to)?;
        } else {
            let bytes =
                fs::read(entry.path()).map_err(GoldfishError::io_ctx(format!("read {}", entry.path().display())))?;
            atomic_write(&to, &bytes)?;
        }
    }
    Ok(())
}
