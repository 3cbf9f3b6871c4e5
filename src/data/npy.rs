//! `.npy` arrays (heatmaps, attributions, preprocessed inputs) as plain
//! `Vec<f32>`, read and written in Rust.
//!
//! libtorch's reader trusts the header: a file whose header promises more data
//! than it holds is read past its end. Here the magic, version, header, dtype,
//! memory order and shape are validated and the file length is checked against
//! the header *before* anything is allocated or read, and non-finite values
//! are refused, so every caller gets either a sound array or an error naming
//! the file.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// Largest header accepted (numpy itself writes a few hundred bytes).
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Largest array accepted, in elements (1 GiB of float32).
pub const MAX_ELEMENTS: usize = 1 << 28;

/// Element types melxai reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F64,
}

impl Dtype {
    fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F64 => 8,
        }
    }
}

/// A validated array: C order, every dimension >= 1, finite values.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    /// Element type stored in the file (values are always returned as f32).
    pub dtype: Dtype,
    pub data: Vec<f32>,
}

/// The parsed header: dtype, shape and where the data starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub data_offset: usize,
}

impl Header {
    /// Element count (checked: no overflow, at most [`MAX_ELEMENTS`]).
    pub fn elements(&self) -> std::result::Result<usize, String> {
        let n = self
            .shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| format!("shape {:?} overflows", self.shape))?;
        if n > MAX_ELEMENTS {
            return Err(format!(
                "shape {:?} has {n} elements (at most {MAX_ELEMENTS} accepted)",
                self.shape
            ));
        }
        Ok(n)
    }

    /// Exact file length this header promises.
    pub fn expected_len(&self) -> std::result::Result<u64, String> {
        Ok(self.data_offset as u64 + (self.elements()? * self.dtype.size()) as u64)
    }
}

fn invalid(path: &Path, message: impl Into<String>) -> Error {
    Error::Invalid {
        path: path.into(),
        message: message.into(),
    }
}

/// Value of `key` in a numpy header dict such as
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 224, 224), }`.
fn dict_value<'a>(dict: &'a str, key: &str) -> std::result::Result<&'a str, String> {
    let pat_single = format!("'{key}'");
    let pat_double = format!("\"{key}\"");
    let at = dict
        .find(&pat_single)
        .map(|i| i + pat_single.len())
        .or_else(|| dict.find(&pat_double).map(|i| i + pat_double.len()))
        .ok_or_else(|| format!("header has no '{key}'"))?;
    let rest = dict[at..].trim_start();
    let rest = rest
        .strip_prefix(':')
        .ok_or_else(|| format!("header: no ':' after '{key}'"))?
        .trim_start();
    // A value ends at the matching ')' for tuples, else at the next ',' or '}'.
    let end = if rest.starts_with('(') {
        rest.find(')')
            .map(|i| i + 1)
            .ok_or_else(|| format!("header: unterminated '{key}'"))?
    } else {
        rest.find([',', '}'])
            .ok_or_else(|| format!("header: unterminated '{key}'"))?
    };
    Ok(rest[..end].trim())
}

fn parse_dtype(v: &str) -> std::result::Result<Dtype, String> {
    let s = v.trim_matches(|c| c == '\'' || c == '"');
    match s {
        "<f4" | "f4" | "float32" => Ok(Dtype::F32),
        "<f8" | "f8" | "float64" => Ok(Dtype::F64),
        other => Err(format!(
            "dtype '{other}' not supported (expected little-endian float32 '<f4' or float64 '<f8')"
        )),
    }
}

fn parse_shape(v: &str) -> std::result::Result<Vec<usize>, String> {
    let inner = v
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("shape '{v}' is not a tuple"))?;
    let mut shape = Vec::new();
    for part in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let d: usize = part
            .trim_end_matches('L')
            .parse()
            .map_err(|_| format!("shape {v}: '{part}' is not a dimension"))?;
        shape.push(d);
    }
    if shape.is_empty() {
        return Err("shape () is a scalar, not an array".into());
    }
    if shape.contains(&0) {
        return Err(format!("shape {v} has an empty dimension"));
    }
    Ok(shape)
}

/// Parses and validates the header at the start of `bytes` (which must hold
/// at least the whole header).
pub fn parse_header(bytes: &[u8]) -> std::result::Result<Header, String> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("not a .npy file (bad magic)".into());
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err("truncated header".into());
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => return Err(format!("format version {v} not supported")),
    };
    if len > MAX_HEADER_BYTES {
        return Err(format!("header of {len} bytes is implausibly long"));
    }
    let end = start + len;
    let raw = bytes.get(start..end).ok_or("truncated header")?;
    let dict = std::str::from_utf8(raw).map_err(|_| "header is not text")?;
    let dict = dict.trim();
    if !dict.starts_with('{') || !dict.ends_with('}') {
        return Err("header is not a dict".into());
    }
    let dtype = parse_dtype(dict_value(dict, "descr")?)?;
    match dict_value(dict, "fortran_order")? {
        "False" => {}
        "True" => {
            return Err(
                "Fortran-order arrays are not supported (save with np.ascontiguousarray)".into(),
            )
        }
        other => return Err(format!("fortran_order '{other}' is not a boolean")),
    }
    let shape = parse_shape(dict_value(dict, "shape")?)?;
    let header = Header {
        dtype,
        shape,
        data_offset: end,
    };
    header.elements()?;
    Ok(header)
}

/// Decodes validated data bytes, refusing NaN and infinities.
fn decode(dtype: Dtype, bytes: &[u8]) -> std::result::Result<Vec<f32>, String> {
    let data: Vec<f32> = match dtype {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F64 => bytes
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                f64::from_le_bytes(b) as f32
            })
            .collect(),
    };
    if let Some(first) = data.iter().position(|v| !v.is_finite()) {
        let count = data.iter().filter(|v| !v.is_finite()).count();
        return Err(format!(
            "{count} value(s) are NaN or infinite (first at flat index {first}, {}); inputs must be finite",
            data[first]
        ));
    }
    Ok(data)
}

/// Parses a whole `.npy` file held in memory.
pub fn parse(bytes: &[u8]) -> std::result::Result<NpyArray, String> {
    let header = parse_header(bytes)?;
    let expected = header.expected_len()?;
    if bytes.len() as u64 != expected {
        return Err(size_mismatch(&header, bytes.len() as u64, expected));
    }
    let data = decode(header.dtype, &bytes[header.data_offset..])?;
    Ok(NpyArray {
        shape: header.shape,
        dtype: header.dtype,
        data,
    })
}

fn size_mismatch(header: &Header, actual: u64, expected: u64) -> String {
    format!(
        "file is {actual} bytes but its header (shape {:?}, {:?}) promises {expected}: truncated or corrupt",
        header.shape, header.dtype
    )
}

/// Reads and validates a `.npy` file. The header is checked against the file
/// length before the data is read, so a lying header costs nothing.
pub fn read(path: &Path) -> Result<NpyArray> {
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = f.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(invalid(path, "not a regular file"));
    }
    let file_len = meta.len();
    let head_len = (file_len as usize).min(MAX_HEADER_BYTES + 12);
    let mut head = vec![0u8; head_len];
    f.read_exact(&mut head).map_err(|e| Error::io(path, e))?;
    let header = parse_header(&head).map_err(|m| invalid(path, m))?;
    let expected = header.expected_len().map_err(|m| invalid(path, m))?;
    if file_len != expected {
        return Err(invalid(path, size_mismatch(&header, file_len, expected)));
    }
    let mut bytes = head;
    bytes.reserve_exact((expected as usize).saturating_sub(bytes.len()));
    f.read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 != expected {
        return Err(invalid(path, "file changed while being read"));
    }
    let data = decode(header.dtype, &bytes[header.data_offset..]).map_err(|m| invalid(path, m))?;
    Ok(NpyArray {
        shape: header.shape,
        dtype: header.dtype,
        data,
    })
}

/// Reads a float heatmap `(H,W)` or `(1,H,W)`; returns (row-major data, H, W).
pub fn read_map(path: &Path) -> Result<(Vec<f32>, usize, usize)> {
    let a = read(path)?;
    let (h, w) = match a.shape.as_slice() {
        [h, w] | [1, h, w] => (*h, *w),
        _ => {
            return Err(invalid(
                path,
                format!(
                    "expected a heatmap of shape (H,W) or (1,H,W), got {:?}",
                    a.shape
                ),
            ))
        }
    };
    Ok((a.data, h, w))
}

/// Encodes float32 data of `shape` as a version-1 `.npy` file.
pub fn encode_f32(data: &[f32], shape: &[usize]) -> std::result::Result<Vec<u8>, String> {
    let n: usize = shape.iter().product();
    if n != data.len() || shape.is_empty() {
        return Err(format!("{} values do not fill shape {shape:?}", data.len()));
    }
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let tuple = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {tuple}, }}");
    // Pad so the data starts on a 64-byte boundary, header ending in '\n'.
    let unpadded = 10 + dict.len() + 1;
    dict.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    dict.push('\n');
    let mut out = Vec::with_capacity(10 + dict.len() + data.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    Ok(out)
}

/// Writes row-major float32 data with the given shape, atomically.
pub fn write_f32(path: &Path, data: &[f32], shape: &[i64]) -> Result<()> {
    let shape: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
    let bytes = encode_f32(data, &shape).map_err(|m| invalid(path, m))?;
    crate::files::write_bytes(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_shape_and_values() {
        let data: Vec<f32> = (0..24).map(|i| i as f32 * 0.5).collect();
        let bytes = encode_f32(&data, &[2, 3, 4]).unwrap();
        assert_eq!((bytes.len() - 24 * 4) % 64, 0);
        let a = parse(&bytes).unwrap();
        assert_eq!(a.shape, vec![2, 3, 4]);
        assert_eq!(a.data, data);
    }

    #[test]
    fn reads_numpy_written_header() {
        // Exactly what numpy 1.x writes for np.zeros((2,2), np.float32).
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }";
        let mut h = dict.to_string();
        h.push_str(&" ".repeat(128 - 10 - dict.len() - 1));
        h.push('\n');
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(h.len() as u16).to_le_bytes());
        b.extend_from_slice(h.as_bytes());
        b.extend_from_slice(&[0u8; 16]);
        assert_eq!(parse(&b).unwrap().shape, vec![2, 2]);
    }

    #[test]
    fn lying_header_is_refused_before_reading() {
        let mut b = encode_f32(&[1.0; 4], &[2, 2]).unwrap();
        b.truncate(b.len() - 4);
        let e = parse(&b).unwrap_err();
        assert!(e.contains("promises"), "{e}");
    }

    #[test]
    fn zero_dims_fortran_and_non_finite_are_refused() {
        let e = parse_shape("(3, 0, 224)").unwrap_err();
        assert!(e.contains("empty dimension"), "{e}");
        let b = encode_f32(&[1.0, f32::NAN, 2.0, f32::INFINITY], &[2, 2]).unwrap();
        let e = parse(&b).unwrap_err();
        assert!(e.contains("2 value(s)"), "{e}");
        let mut f = encode_f32(&[0.0; 4], &[2, 2]).unwrap();
        let at = f.windows(5).position(|w| w == b"False").unwrap();
        f[at..at + 5].copy_from_slice(b"True ");
        let e = parse(&f).unwrap_err();
        assert!(e.contains("Fortran"), "{e}");
    }

    #[test]
    fn overflowing_shape_is_refused() {
        let e = parse_shape("(18446744073709551615, 2)")
            .map(|shape| {
                Header {
                    dtype: Dtype::F32,
                    shape,
                    data_offset: 64,
                }
                .elements()
            })
            .unwrap()
            .unwrap_err();
        assert!(e.contains("overflows"), "{e}");
    }
}
