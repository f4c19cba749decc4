//! Atomic file replacement, cross-process locks and locked JSON read-modify-write.
//!
//! Same conventions as the Python SDK (`stage_sdk/_fs.py`): temp siblings are named `.gf-tmp-*`,
//! and `svs_*.json` documents are merged under an `flock` on `.<name>.lock`, so a Rust and a Python
//! writer in one run append to each other's findings instead of overwriting them.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde_json::{Map, Value};

use crate::error::{GoldfishError, Result};

static COUNTER: AtomicU64 = AtomicU64::new(0);
/// Prefix of temp files; readers of an outputs directory skip these.
pub const TMP_TAG: &str = ".gf-tmp-";

pub(crate) fn temp_sibling(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!("{}{}.{}.{:x}", TMP_TAG, name, std::process::id(), n))
}

/// Write `path` through a temp file in the same directory and rename it into place, so readers see
/// the old file or the new one, never a partial write. Creates missing parent directories.
pub(crate) fn atomic_write_with<F>(path: &Path, write: F) -> Result<()>
where
    F: FnOnce(&mut BufWriter<File>) -> io::Result<()>,
{
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(GoldfishError::io_ctx(format!("create directory {}", parent.display())))?;
    }
    let tmp = temp_sibling(path);
    let result = (|| -> io::Result<()> {
        let file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        let mut w = BufWriter::new(file);
        write(&mut w)?;
        w.flush()?;
        drop(w);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(GoldfishError::io(format!("write {}", path.display()), e));
    }
    Ok(())
}

/// Convenience wrapper for whole-buffer writes.
pub(crate) fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    atomic_write_with(path, |f| f.write_all(bytes))
}

/// Copy a directory tree into the new directory `dst`; symlinks are refused, not followed.
pub(crate) fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    fs::create_dir_all(dst).map_err(GoldfishError::io_ctx(format!("create {}", dst.display())))?;
    for entry in fs::read_dir(src).map_err(GoldfishError::io_ctx(format!("list {}", src.display())))? {
        let entry = entry.map_err(GoldfishError::io_ctx(format!("list {}", src.display())))?;
        let ty = entry.file_type().map_err(GoldfishError::io_ctx(format!("stat {}", entry.path().display())))?;
        let to = dst.join(entry.file_name());
        if ty.is_symlink() {
            return Err(GoldfishError::PathSecurity(format!(
                "{} is a symlink; outputs copy real files only. Fix: copy the file it points to into the directory \
                 instead.",
                entry.path().display()
            )));
        } else if ty.is_dir() {
            copy_tree(&entry.path(), &to)?;
        } else {
            fs::copy(entry.path(), &to).map_err(GoldfishError::io_ctx(format!("copy {}", entry.path().display())))?;
        }
    }
    Ok(())
}

/// Put directory `tmp` at `final_path`, moving any previous one aside first and then removing it.
pub(crate) fn replace_dir(tmp: &Path, final_path: &Path) -> Result<()> {
    let mut old = None;
    if final_path.exists() || fs::symlink_metadata(final_path).is_ok() {
        let name = final_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let aside = final_path.with_file_name(format!(
            ".gf-old-{}.{}.{:x}",
            name,
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::rename(final_path, &aside)
            .map_err(GoldfishError::io_ctx(format!("move aside {}", final_path.display())))?;
        old = Some(aside);
    }
    fs::rename(tmp, final_path).map_err(GoldfishError::io_ctx(format!("rename into {}", final_path.display())))?;
    if let Some(old) = old {
        let is_dir = fs::symlink_metadata(&old).map(|m| m.is_dir()).unwrap_or(false);
        let _ = if is_dir { fs::remove_dir_all(&old) } else { fs::remove_file(&old) };
    }
    Ok(())
}

/// Build a directory with `fill` in a temp sibling, then swap it in with `replace_dir`.
pub(crate) fn write_dir_atomically<F>(final_path: &Path, fill: F) -> Result<()>
where
    F: FnOnce(&Path) -> Result<()>,
{
    let tmp = temp_sibling(final_path);
    let result = fs::create_dir_all(&tmp)
        .map_err(GoldfishError::io_ctx(format!("create {}", tmp.display())))
        .and_then(|_| fill(&tmp))
        .and_then(|_| replace_dir(&tmp, final_path));
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}

#[cfg(unix)]
mod sys {
    pub const LOCK_EX: i32 = 2;
    extern "C" {
        // From the C library std already links; declared here to avoid a libc dependency.
        pub fn flock(fd: i32, operation: i32) -> i32;
    }
}

/// An exclusive advisory lock on a lock file, released when dropped (the descriptor closes).
pub(crate) struct FileLock {
    _file: File,
}

pub(crate) fn lock_file(path: &Path) -> io::Result<FileLock> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::io::AsRawFd;
        loop {
            // SAFETY: flock only reads the descriptor number, which `file` keeps open.
            if unsafe { sys::flock(file.as_raw_fd(), sys::LOCK_EX) } == 0 {
                break;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
    Ok(FileLock { _file: file })
}

/// Threads of this process serialise here; other processes on the flock.
static JSON_DOC_LOCK: Mutex<()> = Mutex::new(());

/// Locked read-modify-write of a JSON object document; a missing or unreadable file starts empty.
pub(crate) fn update_json<F>(path: &Path, update: F) -> Result<()>
where
    F: FnOnce(Map<String, Value>) -> Map<String, Value>,
{
    let _thread = JSON_DOC_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let lock_path = path.with_file_name(format!(".{}.lock", name));
    let _lock = lock_file(&lock_path).map_err(GoldfishError::io_ctx(format!("lock {}", lock_path.display())))?;
    let current = fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| match v {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .unwrap_or_default();
    let new = update(current);
    let mut text = serde_json::to_string_pretty(&Value::Object(new))?;
    text.push('\n');
    atomic_write(path, text.as_bytes())
}

#[cfg(test)]
pub(crate) mod testutil {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};

    static N: AtomicU64 = AtomicU64::new(0);

    /// A scratch directory removed on drop (no tempfile crate offline).
    pub(crate) struct TempDir(PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> TempDir {
            let p = std::env::temp_dir().join(format!(
                "goldfish-rust-test-{}-{}-{}",
                tag,
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }

        pub(crate) fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_updates_all_land() {
        let dir = testutil::TempDir::new("update");
        let path = dir.path().join("doc.json");
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let p = path.clone();
                std::thread::spawn(move || {
                    for j in 0..10 {
                        update_json(&p, |mut m| {
                            let list = m.entry("items").or_insert_with(|| Value::Array(vec![]));
                            if let Value::Array(a) = list {
                                a.push(Value::from(i * 100 + j));
                            }
                            m
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let v: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["items"].as_array().unwrap().len(), 80);
        let leftovers = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(TMP_TAG))
            .count();
        assert_eq!(leftovers, 0);
    }
}
