//! NPZ (zip of `.npy` members, stored or deflated) reading with decompression-bomb guards.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::error::{GoldfishError, Result};
use crate::npy::parse_npy_bytes;
use crate::output::OutputData;

/// Most arrays accepted in one `.npz`.
pub const MAX_NPZ_ARRAYS: usize = 100;
/// Largest decompressed size accepted for one member (1 GiB).
pub const MAX_NPZ_ENTRY_BYTES: u64 = 1 << 30;

/// Limits applied while reading an `.npz`.
#[derive(Clone, Copy, Debug)]
pub struct NpzLimits {
    pub max_arrays: usize,
    pub max_entry_bytes: u64,
}

impl Default for NpzLimits {
    fn default() -> Self {
        NpzLimits { max_arrays: MAX_NPZ_ARRAYS, max_entry_bytes: MAX_NPZ_ENTRY_BYTES }
    }
}

/// The arrays of an `.npz`, keyed by name (the member name without `.npy`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NpzFile {
    arrays: BTreeMap<String, OutputData>,
}

impl NpzFile {
    /// Borrow an array.
    pub fn get(&self, name: &str) -> Option<&OutputData> {
        self.arrays.get(name)
    }

    /// Remove and return an array.
    pub fn take(&mut self, name: &str) -> Option<OutputData> {
        self.arrays.remove(name)
    }

    /// Array names, sorted.
    pub fn keys(&self) -> Vec<&str> {
        self.arrays.keys().map(|k| k.as_str()).collect()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.arrays.contains_key(name)
    }

    pub fn len(&self) -> usize {
        self.arrays.len()
    }

    pub fn is_empty(&self) -> bool {
        self.arrays.is_empty()
    }

    /// All arrays, e.g. to pass on as `OutputData::MultiTensor`.
    pub fn into_arrays(self) -> HashMap<String, OutputData> {
        self.arrays.into_iter().collect()
    }
}

fn open_archive(path: &Path) -> Result<zip::ZipArchive<File>> {
    let f = File::open(path).map_err(GoldfishError::io_ctx(format!("open {}", path.display())))?;
    zip::ZipArchive::new(f).map_err(|e| {
        GoldfishError::Format(format!(
            "{} is not a readable .npz (zip) file: {}. Fix: write it with np.savez or np.savez_compressed.",
            path.display(),
            e
        ))
    })
}

fn read_member(
    archive: &mut zip::ZipArchive<File>,
    index: usize,
    path: &Path,
    limits: &NpzLimits,
) -> Result<(String, OutputData)> {
    let mut entry = archive
        .by_index(index)
        .map_err(|e| GoldfishError::Format(format!("{}: cannot read member {}: {}", path.display(), index, e)))?;
    let member = entry.name().to_string();
    let what = format!("{}[{}]", path.display(), member);
    if entry.size() > limits.max_entry_bytes {
        return Err(GoldfishError::Format(format!(
            "{}: member decompresses to {} bytes, over the {} byte limit (decompression bomb guard). \
             Fix: split the data into smaller arrays or files.",
            what,
            entry.size(),
            limits.max_entry_bytes
        )));
    }
    // The declared size can lie; never read past the limit whatever it says.
    let mut bytes = Vec::with_capacity(entry.size().min(limits.max_entry_bytes) as usize);
    (&mut entry)
        .take(limits.max_entry_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| GoldfishError::Format(format!("{}: decompression failed: {}", what, e)))?;
    if bytes.len() as u64 > limits.max_entry_bytes {
        return Err(GoldfishError::Format(format!(
            "{}: member decompresses past the {} byte limit (decompression bomb guard).",
            what, limits.max_entry_bytes
        )));
    }
    let name = member.strip_suffix(".npy").unwrap_or(&member).to_string();
    Ok((name, parse_npy_bytes(&bytes, &what)?))
}

fn npy_members(archive: &mut zip::ZipArchive<File>) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for i in 0..archive.len() {
        if let Ok(e) = archive.by_index_raw(i) {
            if !e.is_dir() && e.name().ends_with(".npy") {
                out.push((i, e.name().to_string()));
            }
        }
    }
    out
}

/// Load every array of an `.npz` with explicit limits.
pub fn load_npz_with_limits(path: impl AsRef<Path>, limits: NpzLimits) -> Result<NpzFile> {
    let path = path.as_ref();
    let mut archive = open_archive(path)?;
    let members = npy_members(&mut archive);
    if members.len() > limits.max_arrays {
        return Err(GoldfishError::Format(format!(
            "{} holds {} arrays, over the limit of {}. Fix: save fewer arrays per file.",
            path.display(),
            members.len(),
            limits.max_arrays
        )));
    }
    let mut arrays = BTreeMap::new();
    for (index, _) in members {
        let (name, data) = read_member(&mut archive, index, path, &limits)?;
        arrays.insert(name, data);
    }
    Ok(NpzFile { arrays })
}

/// Load every array of an `.npz` (≤100 arrays, ≤1 GiB decompressed per array).
pub fn load_npz(path: impl AsRef<Path>) -> Result<NpzFile> {
    load_npz_with_limits(path, NpzLimits::default())
}

/// Load one array of an `.npz` without decompressing the others.
pub fn load_npz_array(path: impl AsRef<Path>, name: &str) -> Result<OutputData> {
    let path = path.as_ref();
    let limits = NpzLimits::default();
    let mut archive = open_archive(path)?;
    let members = npy_members(&mut archive);
    let wanted = if name.ends_with(".npy") { name.to_string() } else { format!("{}.npy", name) };
    match members.iter().find(|(_, m)| *m == wanted) {
        Some(&(index, _)) => Ok(read_member(&mut archive, index, path, &limits)?.1),
        None => {
            let mut names: Vec<&str> = members.iter().map(|(_, m)| m.strip_suffix(".npy").unwrap_or(m)).collect();
            names.sort_unstable();
            Err(GoldfishError::Config(format!(
                "{} has no array '{}'; it holds: {}. Fix: use one of those names.",
                path.display(),
                name,
                if names.is_empty() { "(no arrays)".to_string() } else { names.join(", ") }
            )))
        }
    }
}

/// Write named tensors as an uncompressed `.npz` (what `np.savez` writes), atomically.
pub fn write_npz(path: impl AsRef<Path>, arrays: &HashMap<String, OutputData>) -> Result<()> {
    let path = path.as_ref();
    let mut names: Vec<&String> = arrays.keys().collect();
    names.sort();
    let mut members = Vec::with_capacity(names.len());
    for name in names {
        members.push((format!("{}.npy", name), crate::npy::npy_bytes_any(&arrays[name])?));
    }
    crate::fsutil::atomic_write_with(path, |w| {
        let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::FileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(members.iter().any(|(_, b)| b.len() as u64 >= u32::MAX as u64));
        for (name, bytes) in &members {
            z.start_file(name.as_str(), opts).map_err(|e| std::io::Error::new(std::io::ErrorKind::Other, e))?;
            std::io::Write::write_all(&mut z, bytes)?;
        }
        let cursor = z.finish().map_err(|e| std::io::Error::new(std::io::ErrorKind::Other, e))?;
        std::io::Write::write_all(w, cursor.get_ref())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::npy::npy_bytes;
    use crate::tensor::ArrayD;
    use std::io::Write;

    fn write_zip(path: &Path, members: &[(&str, Vec<u8>)], method: zip::CompressionMethod) {
        // zip 0.6 without default features can still write stored and deflated members.
        let f = File::create(path).unwrap();
        let mut z = zip::ZipWriter::new(f);
        for (name, bytes) in members {
            let opts = zip::write::FileOptions::default().compression_method(method);
            z.start_file(*name, opts).unwrap();
            z.write_all(bytes).unwrap();
        }
        z.finish().unwrap();
    }

    fn sample() -> (ArrayD<f32>, ArrayD<i64>) {
        (ArrayD::from_shape_vec(vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap(), ArrayD::from_vec(vec![7i64, 8, 9]))
    }

    #[test]
    fn reads_stored_and_deflated() {
        let dir = crate::testutil::TempDir::new("npz");
        let (w, b) = sample();
        for method in [zip::CompressionMethod::Stored, zip::CompressionMethod::Deflated] {
            let p = dir.path().join(format!("{:?}.npz", method));
            write_zip(&p, &[("weights.npy", npy_bytes(&w)), ("bias.npy", npy_bytes(&b))], method);
            let mut npz = load_npz(&p).unwrap();
            assert_eq!(npz.keys(), vec!["bias", "weights"]);
            assert_eq!(npz.len(), 2);
            assert!(npz.contains("weights") && !npz.is_empty());
            assert_eq!(npz.get("weights").unwrap().as_tensor_f32(), Some(&w));
            assert_eq!(npz.take("bias").unwrap().into_tensor_i64().unwrap(), b);
            assert!(!npz.contains("bias"));
            assert_eq!(load_npz_array(&p, "weights").unwrap().as_tensor_f32(), Some(&w));
            let e = load_npz_array(&p, "nope").unwrap_err().to_string();
            assert!(e.contains("bias, weights"), "{}", e);
        }
    }

    #[test]
    fn bomb_guard_stops_oversized_members() {
        let dir = crate::testutil::TempDir::new("bomb");
        let big = ArrayD::from_elem(vec![1 << 16], 0u8); // 64 KiB of zeros deflates to almost nothing
        let p = dir.path().join("bomb.npz");
        write_zip(&p, &[("z.npy", npy_bytes(&big))], zip::CompressionMethod::Deflated);
        assert!(std::fs::metadata(&p).unwrap().len() < 2048);
        let limits = NpzLimits { max_arrays: 100, max_entry_bytes: 4096 };
        let e = load_npz_with_limits(&p, limits).unwrap_err().to_string();
        assert!(e.contains("decompression bomb guard"), "{}", e);
        assert!(load_npz(&p).is_ok());
    }

    #[test]
    fn array_count_limit() {
        let dir = crate::testutil::TempDir::new("many");
        let one = npy_bytes(&ArrayD::from_vec(vec![1u8]));
        let names: Vec<String> = (0..5).map(|i| format!("a{}.npy", i)).collect();
        let members: Vec<(&str, Vec<u8>)> = names.iter().map(|n| (n.as_str(), one.clone())).collect();
        let p = dir.path().join("many.npz");
        write_zip(&p, &members, zip::CompressionMethod::Stored);
        let limits = NpzLimits { max_arrays: 4, max_entry_bytes: 1 << 20 };
        assert!(load_npz_with_limits(&p, limits).unwrap_err().to_string().contains("over the limit of 4"));
        assert_eq!(load_npz(&p).unwrap().len(), 5);
    }

    #[test]
    fn write_then_read() {
        let dir = crate::testutil::TempDir::new("npzw");
        let (w, b) = sample();
        let mut m = HashMap::new();
        m.insert("weights".to_string(), OutputData::TensorF32(w.clone()));
        m.insert("bias".to_string(), OutputData::TensorI64(b));
        let p = dir.path().join("out.npz");
        write_npz(&p, &m).unwrap();
        assert_eq!(load_npz(&p).unwrap().into_arrays(), m);
        m.insert("bad".to_string(), OutputData::Json(serde_json::json!(1)));
        assert!(write_npz(dir.path().join("bad.npz"), &m).is_err());
        assert!(!dir.path().join("bad.npz").exists());
    }

    #[test]
    fn not_a_zip() {
        let dir = crate::testutil::TempDir::new("notzip");
        let p = dir.path().join("x.npz");
        std::fs::write(&p, b"hello").unwrap();
        assert!(load_npz(&p).unwrap_err().to_string().contains("np.savez"));
        assert!(matches!(load_npz(dir.path().join("missing.npz")), Err(GoldfishError::Io { .. })));
    }
}
