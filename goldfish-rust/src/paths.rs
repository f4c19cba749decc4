//! Name validation and containment checks for every path built from a name.

use std::path::{Component, Path, PathBuf};

use crate::error::{GoldfishError, Result};

/// A name used as one path component: non-empty, no NUL, `/` or `\`, and not `.` or `..`.
pub fn validate_path_component(name: &str) -> Result<()> {
    let problem = if name.is_empty() {
        Some("is empty")
    } else if name.contains('\0') {
        Some("contains a NUL byte")
    } else if name.contains('/') || name.contains('\\') {
        Some("contains a path separator")
    } else if name == "." || name == ".." {
        Some("is a relative directory reference")
    } else {
        None
    };
    match problem {
        Some(p) => Err(GoldfishError::PathSecurity(format!(
            "name {:?} {}. Fix: use a plain name such as 'features' (letters, digits, '_' or '-').",
            name, p
        ))),
        None => Ok(()),
    }
}

/// Canonical form of `path`, resolving the deepest existing ancestor so paths that do not exist yet
/// can be checked too.
fn resolve_lenient(path: &Path) -> std::io::Result<PathBuf> {
    let mut existing = path.to_path_buf();
    let mut tail: Vec<std::ffi::OsString> = Vec::new();
    loop {
        match existing.canonicalize() {
            Ok(c) => {
                let mut out = c;
                for part in tail.iter().rev() {
                    out.push(part);
                }
                return Ok(out);
            }
            Err(e) => match (existing.file_name().map(|f| f.to_os_string()), existing.parent()) {
                (Some(name), Some(parent)) => {
                    tail.push(name);
                    existing = parent.to_path_buf();
                }
                _ => return Err(e),
            },
        }
    }
}

/// Refuse `candidate` unless it resolves (symlinks followed) inside `root`; returns the resolved path.
pub(crate) fn ensure_inside(root: &Path, candidate: &Path, what: &str) -> Result<PathBuf> {
    let root_r = resolve_lenient(root).map_err(GoldfishError::io_ctx(format!("resolve {}", root.display())))?;
    let cand_r =
        resolve_lenient(candidate).map_err(GoldfishError::io_ctx(format!("resolve {}", candidate.display())))?;
    if cand_r.components().any(|c| matches!(c, Component::ParentDir)) || !cand_r.starts_with(&root_r) {
        return Err(GoldfishError::PathSecurity(format!(
            "{} {} resolves to {}, outside {}. Fix: keep files inside the directory and do not use symlinks that \
             lead out of it.",
            what,
            candidate.display(),
            cand_r.display(),
            root.display()
        )));
    }
    Ok(cand_r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_components() {
        for bad in ["", ".", "..", "a/b", "a\\b", "x\0y", "/etc"] {
            let e = validate_path_component(bad).unwrap_err();
            assert!(matches!(e, GoldfishError::PathSecurity(_)), "{:?}", bad);
        }
        for good in ["features", "a.b", "x-1_y", "...x"] {
            validate_path_component(good).unwrap();
        }
    }

    #[test]
    fn containment_follows_symlinks() {
        let dir = crate::testutil::TempDir::new("paths");
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        assert!(ensure_inside(&root, &root.join("new/file.npy"), "output").is_ok());
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        let e = ensure_inside(&root, &root.join("link/x.npy"), "output").unwrap_err();
        assert!(matches!(e, GoldfishError::PathSecurity(_)));
        assert!(ensure_inside(&root, &root.join("../outside"), "output").is_err());
    }
}
