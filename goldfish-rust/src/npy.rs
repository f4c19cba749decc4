//! NPY format 1.0/2.0/3.0: read (little- or big-endian, C or Fortran order) and write (little-endian, C order).

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::Path;

use crate::error::{GoldfishError, Result};
use crate::fsutil::atomic_write_with;
use crate::output::OutputData;
use crate::tensor::{element_count, ArrayD, Element};

/// Largest header accepted when reading (numpy itself writes a few hundred bytes).
pub const MAX_HEADER_BYTES: usize = 1 << 20;
const MAGIC: &[u8; 6] = b"\x93NUMPY";
const ALIGN: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Dtype {
    F32,
    F64,
    I64,
    I32,
    U8,
}

impl Dtype {
    fn size(self) -> usize {
        match self {
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::F64 | Dtype::I64 => 8,
            Dtype::U8 => 1,
        }
    }
}

/// The parsed NPY header.
#[derive(Debug)]
struct Header {
    dtype: Dtype,
    big_endian: bool,
    fortran: bool,
    shape: Vec<usize>,
}

fn fmt_err(what: &str, msg: impl AsRef<str>) -> GoldfishError {
    GoldfishError::Format(format!("{}: {}", what, msg.as_ref()))
}

fn parse_descr(descr: &str, what: &str) -> Result<(Dtype, bool)> {
    let (order, rest) = match descr.chars().next() {
        Some(c @ ('<' | '>' | '|' | '=')) => (c, &descr[1..]),
        _ => ('=', descr),
    };
    let dtype = match rest {
        "f4" => Dtype::F32,
        "f8" => Dtype::F64,
        "i8" => Dtype::I64,
        "i4" => Dtype::I32,
        "u1" => Dtype::U8,
        _ => {
            return Err(fmt_err(
                what,
                format!(
                    "unsupported dtype '{}'. Supported: float32 (<f4), float64 (<f8), int64 (<i8), int32 (<i4), uint8 (|u1). \
                     Fix: convert before saving, e.g. arr.astype(np.float32).",
                    descr
                ),
            ))
        }
    };
    // '|' (not applicable) and '=' (native) are little-endian on every platform Goldfish runs on.
    Ok((dtype, order == '>' && dtype != Dtype::U8))
}

/// A value in the header's Python dict literal.
#[derive(Debug)]
enum Lit {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
}

struct LitParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> LitParser<'a> {
    fn ws(&mut self) {
        while self.i < self.s.len() && (self.s[self.i] as char).is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.i < self.s.len() && self.s[self.i] == c {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn string(&mut self) -> Option<String> {
        self.ws();
        let q = *self.s.get(self.i)?;
        if q != b'\'' && q != b'"' {
            return None;
        }
        let start = self.i + 1;
        let end = start + self.s[start..].iter().position(|&c| c == q)?;
        self.i = end + 1;
        String::from_utf8(self.s[start..end].to_vec()).ok()
    }

    fn int(&mut self) -> Option<usize> {
        self.ws();
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
            self.i += 1;
        }
        let v = std::str::from_utf8(&self.s[start..self.i]).ok()?.parse().ok()?;
        // Python 2 era headers wrote longs as `3L`.
        if self.i < self.s.len() && self.s[self.i] == b'L' {
            self.i += 1;
        }
        Some(v)
    }

    fn value(&mut self) -> Option<Lit> {
        self.ws();
        let rest = &self.s[self.i..];
        if rest.starts_with(b"True") {
            self.i += 4;
            return Some(Lit::Bool(true));
        }
        if rest.starts_with(b"False") {
            self.i += 5;
            return Some(Lit::Bool(false));
        }
        match rest.first()? {
            b'\'' | b'"' => self.string().map(Lit::Str),
            b'(' | b'[' => {
                let close = if rest[0] == b'(' { b')' } else { b']' };
                self.i += 1;
                let mut dims = Vec::new();
                loop {
                    if self.eat(close) {
                        return Some(Lit::Tuple(dims));
                    }
                    dims.push(self.int()?);
                    if !self.eat(b',') {
                        return if self.eat(close) { Some(Lit::Tuple(dims)) } else { None };
                    }
                }
            }
            _ => None,
        }
    }

    fn dict(&mut self) -> Option<Vec<(String, Lit)>> {
        if !self.eat(b'{') {
            return None;
        }
        let mut out = Vec::new();
        loop {
            if self.eat(b'}') {
                return Some(out);
            }
            let k = self.string()?;
            if !self.eat(b':') {
                return None;
            }
            out.push((k, self.value()?));
            if !self.eat(b',') {
                return if self.eat(b'}') { Some(out) } else { None };
            }
        }
    }
}

fn parse_header_text(text: &[u8], what: &str) -> Result<Header> {
    let items = LitParser { s: text, i: 0 }
        .dict()
        .ok_or_else(|| fmt_err(what, "the NPY header is not a valid dict literal"))?;
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    for (k, v) in items {
        match (k.as_str(), v) {
            ("descr", Lit::Str(s)) => descr = Some(s),
            ("fortran_order", Lit::Bool(b)) => fortran = Some(b),
            ("shape", Lit::Tuple(t)) => shape = Some(t),
            ("descr", _) => return Err(fmt_err(what, "structured dtypes are not supported; save plain arrays")),
            _ => {}
        }
    }
    let descr = descr.ok_or_else(|| fmt_err(what, "the NPY header has no 'descr'"))?;
    let (dtype, big_endian) = parse_descr(&descr, what)?;
    Ok(Header {
        dtype,
        big_endian,
        fortran: fortran.ok_or_else(|| fmt_err(what, "the NPY header has no 'fortran_order'"))?,
        shape: shape.ok_or_else(|| fmt_err(what, "the NPY header has no 'shape'"))?,
    })
}

/// Read the preamble and header from `r`; returns the header and the number of payload bytes it announces.
fn read_header<R: Read>(r: &mut R, what: &str) -> Result<(Header, usize)> {
    let mut pre = [0u8; 8];
    r.read_exact(&mut pre).map_err(|_| fmt_err(what, "too short to be an NPY file"))?;
    if &pre[..6] != MAGIC {
        return Err(fmt_err(what, "not an NPY file (bad magic). Fix: write it with np.save"));
    }
    let header_len = match pre[6] {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b).map_err(|_| fmt_err(what, "truncated NPY preamble"))?;
            u16::from_le_bytes(b) as usize
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b).map_err(|_| fmt_err(what, "truncated NPY preamble"))?;
            u32::from_le_bytes(b) as usize
        }
        v => return Err(fmt_err(what, format!("unsupported NPY format version {}.{}", v, pre[7]))),
    };
    if header_len > MAX_HEADER_BYTES {
        return Err(fmt_err(
            what,
            format!("NPY header of {} bytes exceeds the {} byte limit", header_len, MAX_HEADER_BYTES),
        ));
    }
    let mut text = vec![0u8; header_len];
    r.read_exact(&mut text).map_err(|_| fmt_err(what, "truncated NPY header"))?;
    let header = parse_header_text(&text, what)?;
    let n = element_count(&header.shape)
        .and_then(|n| n.checked_mul(header.dtype.size()))
        .ok_or_else(|| fmt_err(what, format!("shape {:?} is too large", header.shape)))?;
    Ok((header, n))
}

fn decode<T: Element>(bytes: &[u8], h: &Header) -> Result<ArrayD<T>> {
    let mut data: Vec<T> = if h.big_endian {
        bytes.chunks_exact(T::SIZE).map(T::from_be_slice).collect()
    } else {
        bytes.chunks_exact(T::SIZE).map(T::from_le_slice).collect()
    };
    if h.fortran && h.shape.len() > 1 {
        data = fortran_to_c(&data, &h.shape);
    }
    ArrayD::from_shape_vec(h.shape.clone(), data)
}

/// Reorder column-major data into row-major order.
fn fortran_to_c<T: Copy>(data: &[T], shape: &[usize]) -> Vec<T> {
    let nd = shape.len();
    let mut fstride = vec![1usize; nd];
    for k in 1..nd {
        fstride[k] = fstride[k - 1] * shape[k - 1];
    }
    let mut out = Vec::with_capacity(data.len());
    let mut idx = vec![0usize; nd];
    for _ in 0..data.len() {
        let off: usize = idx.iter().zip(&fstride).map(|(i, s)| i * s).sum();
        out.push(data[off]);
        for k in (0..nd).rev() {
            idx[k] += 1;
            if idx[k] < shape[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    out
}

fn to_output(payload: &[u8], h: &Header) -> Result<OutputData> {
    Ok(match h.dtype {
        Dtype::F32 => OutputData::TensorF32(decode(payload, h)?),
        Dtype::F64 => OutputData::TensorF64(decode(payload, h)?),
        Dtype::I64 => OutputData::TensorI64(decode(payload, h)?),
        Dtype::I32 => OutputData::TensorI32(decode(payload, h)?),
        Dtype::U8 => OutputData::TensorU8(decode(payload, h)?),
    })
}

/// Parse an in-memory NPY file into the tensor variant matching its dtype.
pub fn parse_npy_bytes(bytes: &[u8], what: &str) -> Result<OutputData> {
    let mut cursor = bytes;
    let (h, n) = read_header(&mut cursor, what)?;
    if cursor.len() < n {
        return Err(fmt_err(what, format!("truncated NPY data: expected {} bytes, found {}", n, cursor.len())));
    }
    to_output(&cursor[..n], &h)
}

/// Read an `.npy` file into the tensor variant matching its dtype.
pub fn read_npy_any(path: &Path) -> Result<OutputData> {
    let what = path.display().to_string();
    let mut f = File::open(path).map_err(GoldfishError::io_ctx(format!("open {}", what)))?;
    let total = f.metadata().map(|m| m.len()).unwrap_or(0);
    let (h, n) = read_header(&mut f, &what)?;
    // Check the file really holds the announced payload before allocating for it.
    let header_total = f.stream_position().map_err(GoldfishError::io_ctx(format!("read {}", what)))?;
    if total.saturating_sub(header_total) < n as u64 {
        return Err(fmt_err(
            &what,
            format!("truncated NPY data: expected {} bytes, found {}", n, total.saturating_sub(header_total)),
        ));
    }
    let mut payload = vec![0u8; n];
    f.read_exact(&mut payload).map_err(GoldfishError::io_ctx(format!("read {}", what)))?;
    to_output(&payload, &h)
}

/// Read an `.npy` file that must hold `T` elements.
pub fn read_npy<T: Element>(path: impl AsRef<Path>) -> Result<ArrayD<T>> {
    let path = path.as_ref();
    let data = read_npy_any(path)?;
    T::unwrap_owned(data).map_err(|other| {
        GoldfishError::Schema(format!(
            "{} holds {} data, expected {}. Fix: read it with the matching type or convert it with astype.",
            path.display(),
            other.dtype_str().unwrap_or("non-tensor"),
            T::DTYPE
        ))
    })
}

fn shape_literal(shape: &[usize]) -> String {
    match shape.len() {
        0 => "()".to_string(),
        1 => format!("({},)", shape[0]),
        _ => format!("({})", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    }
}

/// Serialise as NPY (version 1.0 when the header fits, else 2.0), little-endian, C order.
pub fn npy_bytes<T: Element>(array: &ArrayD<T>) -> Vec<u8> {
    let dict =
        format!("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", T::DESCR, shape_literal(array.shape()));
    let (version, prefix) = if dict.len() + 1 + 10 <= u16::MAX as usize { (1u8, 10) } else { (2u8, 12) };
    let pad = (ALIGN - (prefix + dict.len() + 1) % ALIGN) % ALIGN;
    let header_len = dict.len() + pad + 1;
    let mut out = Vec::with_capacity(prefix + header_len + array.len() * T::SIZE);
    out.extend_from_slice(MAGIC);
    out.push(version);
    out.push(0);
    if version == 1 {
        out.extend_from_slice(&(header_len as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(header_len as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.extend(std::iter::repeat(b' ').take(pad));
    out.push(b'\n');
    for &x in array.as_slice() {
        x.extend_le(&mut out);
    }
    out
}

/// Write `array` to `path` as NPY, atomically (temp file + rename).
pub fn write_npy<T: Element>(path: impl AsRef<Path>, array: &ArrayD<T>) -> Result<()> {
    let path = path.as_ref();
    let bytes = npy_bytes(array);
    atomic_write_with(path, |f| f.write_all(&bytes))
}

/// NPY bytes of any tensor variant; errors for non-tensor data.
pub fn npy_bytes_any(data: &OutputData) -> Result<Vec<u8>> {
    match data {
        OutputData::TensorF32(a) => Ok(npy_bytes(a)),
        OutputData::TensorF64(a) => Ok(npy_bytes(a)),
        OutputData::TensorI64(a) => Ok(npy_bytes(a)),
        OutputData::TensorI32(a) => Ok(npy_bytes(a)),
        OutputData::TensorU8(a) => Ok(npy_bytes(a)),
        other => Err(GoldfishError::Schema(format!(
            "cannot write {} data as .npy. Fix: pass a tensor variant (OutputData::TensorF32, ...).",
            other.kind_name()
        ))),
    }
}

/// Write any tensor variant as NPY, atomically.
pub(crate) fn write_npy_any(path: &Path, data: &OutputData) -> Result<()> {
    let bytes = npy_bytes_any(data)?;
    atomic_write_with(path, |f| f.write_all(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip<T: Element>(shape: Vec<usize>, data: Vec<T>) {
        let a = ArrayD::from_shape_vec(shape, data).unwrap();
        let bytes = npy_bytes(&a);
        let header_end = 10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!(header_end % 64, 0, "header must be 64-byte aligned");
        assert_eq!(bytes[header_end - 1], b'\n');
        let back = parse_npy_bytes(&bytes, "test").unwrap();
        assert_eq!(T::peek(&back), Some(&a));
        let dir = crate::testutil::TempDir::new("npy");
        let p = dir.path().join("a.npy");
        write_npy(&p, &a).unwrap();
        assert_eq!(read_npy::<T>(&p).unwrap(), a);
        assert_eq!(read_npy_any(&p).unwrap().dtype_str(), Some(T::DTYPE));
    }

    #[test]
    fn round_trip_every_dtype() {
        roundtrip(vec![2, 3], vec![1.5f32, -2.0, 1e-30, f32::MAX, f32::MIN_POSITIVE, 0.0]);
        roundtrip(vec![3], vec![1.0e300f64, -0.25, 3.0]);
        roundtrip(vec![2, 2, 1], vec![i64::MIN, -1, 0, i64::MAX]);
        roundtrip(vec![4], vec![i32::MIN, -7, 7, i32::MAX]);
        roundtrip(vec![2, 2], vec![0u8, 1, 128, 255]);
        roundtrip(vec![], vec![42i64]);
        roundtrip(vec![0, 3], Vec::<f32>::new());
    }

    #[test]
    fn header_matches_numpy_layout() {
        let a = ArrayD::from_shape_vec(vec![3], vec![1.0f32, 2.0, 3.0]).unwrap();
        let b = npy_bytes(&a);
        let text = std::str::from_utf8(&b[10..74]).unwrap();
        assert!(text.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }"));
        assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
        assert_eq!(b.len(), 128 + 12, "numpy pads this header to 128 bytes");
    }

    fn handmade(version: u8, dict: &str, payload: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.push(version);
        out.push(0);
        if version == 1 {
            out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(dict.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(dict.as_bytes());
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn reads_v2_v3_big_endian_and_fortran() {
        let payload: Vec<u8> = [1i32, 2, 3, 4, 5, 6].iter().flat_map(|x| x.to_le_bytes()).collect();
        // Fortran order: column-major [[1,3,5],[2,4,6]] stored as 1..6.
        for v in [2u8, 3] {
            let b = handmade(v, "{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3), }\n", &payload);
            let a = parse_npy_bytes(&b, "t").unwrap().into_tensor_i32().unwrap();
            assert_eq!(a.as_slice(), &[1, 3, 5, 2, 4, 6]);
        }
        let be: Vec<u8> = [1.5f64, -2.0].iter().flat_map(|x| x.to_be_bytes()).collect();
        let b = handmade(1, "{\"descr\": \">f8\", \"fortran_order\": False, \"shape\": (2L,)}", &be);
        let a = parse_npy_bytes(&b, "t").unwrap().into_tensor_f64().unwrap();
        assert_eq!(a.as_slice(), &[1.5, -2.0]);
    }

    #[test]
    fn rejects_bad_files() {
        let ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }";
        let short = handmade(1, ok, &[0u8; 8]);
        assert!(parse_npy_bytes(&short, "t").unwrap_err().to_string().contains("truncated"));
        let unsupported = handmade(1, "{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }", &[0; 16]);
        let e = parse_npy_bytes(&unsupported, "t").unwrap_err().to_string();
        assert!(e.contains("unsupported dtype") && e.contains("astype"), "{}", e);
        assert!(parse_npy_bytes(b"PK\x03\x04 not npy", "t").unwrap_err().to_string().contains("bad magic"));
        let garbage = handmade(1, "{'descr': '<f4', 'shape': (4,), ", &[0; 16]);
        assert!(parse_npy_bytes(&garbage, "t").is_err());
        let huge = handmade(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", &[]);
        assert!(parse_npy_bytes(&huge, "t").unwrap_err().to_string().contains("too large"));
    }

    #[test]
    fn header_size_limit() {
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&[2, 0]);
        b.extend_from_slice(&((MAX_HEADER_BYTES + 1) as u32).to_le_bytes());
        b.extend(std::iter::repeat(b' ').take(64));
        let e = parse_npy_bytes(&b, "t").unwrap_err().to_string();
        assert!(e.contains("exceeds the 1048576 byte limit"), "{}", e);
    }

    #[test]
    fn truncated_file_is_rejected_before_allocation() {
        let dir = crate::testutil::TempDir::new("npytrunc");
        let p = dir.path().join("t.npy");
        std::fs::write(
            &p,
            handmade(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (100000000000,), }", &[0; 8]),
        )
        .unwrap();
        assert!(read_npy_any(&p).unwrap_err().to_string().contains("truncated"));
    }
}
