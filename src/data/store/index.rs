//! The store's index: the content key of every row, contents known not to
//! decode, and a stat cache (path, length, mtime -> key) that lets a second
//! run settle every file without reading it. Stored as one checksummed
//! binary file, replaced atomically, so it is either intact or refused.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::decode::RESIZE_RULE;
use super::StoreOptions;
use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"MXSTORE1";

pub(super) type Key = [u8; 32];

/// Content key: the file's digest plus everything that shapes its row.
pub(super) fn content_key(bytes: &[u8], opts: &StoreOptions) -> Key {
    let mut h = Sha256::new();
    h.update(RESIZE_RULE.as_bytes());
    h.update(opts.height.to_le_bytes());
    h.update(opts.width.to_le_bytes());
    h.update(opts.decode.as_str().as_bytes());
    h.update(Sha256::digest(bytes));
    h.finalize().into()
}

/// Where one store (size, mode, rule) keeps its rows, index and lock.
pub(super) struct StoreFiles {
    pub(super) dir: PathBuf,
    pub(super) data: PathBuf,
    pub(super) index: PathBuf,
}

impl StoreFiles {
    pub(super) fn new(opts: &StoreOptions) -> StoreFiles {
        let dir = opts.dir.join(format!(
            "{}x{}-{}",
            opts.height,
            opts.width,
            opts.decode.as_str()
        ));
        StoreFiles {
            data: dir.join(format!("rows-{RESIZE_RULE}.u8")),
            index: dir.join(format!("index-{RESIZE_RULE}.bin")),
            dir,
        }
    }
}

/// A file as last hashed: canonical path -> (length, mtime ns, content key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stat {
    pub(super) len: u64,
    pub(super) mtime_ns: i64,
}

/// What the store knows, as committed in `index-<rule>.bin`.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Index {
    /// Key of every row, in row order.
    pub(super) keys: Vec<Key>,
    pub(super) rows: HashMap<Key, usize>,
    /// Contents that failed to decode, so they are not decoded every run.
    pub(super) failures: HashMap<Key, String>,
    pub(super) stats: HashMap<Vec<u8>, (Stat, Key)>,
}

impl Index {
    pub(super) fn load(path: &Path, opts: &StoreOptions) -> Result<Index> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Index::default()),
            Err(e) => return Err(Error::io(path, e)),
        };
        Index::decode(&bytes, opts).ok_or_else(|| Error::Invalid {
            path: path.into(),
            message: "corrupt image store index; delete its folder to rebuild the store".into(),
        })
    }

    fn header(opts: &StoreOptions) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        put_bytes(&mut b, RESIZE_RULE.as_bytes());
        b.extend_from_slice(&opts.height.to_le_bytes());
        b.extend_from_slice(&opts.width.to_le_bytes());
        put_bytes(&mut b, opts.decode.as_str().as_bytes());
        b
    }

    pub(super) fn encode(&self, opts: &StoreOptions) -> Vec<u8> {
        let mut b = Index::header(opts);
        b.extend_from_slice(&(self.keys.len() as u64).to_le_bytes());
        self.keys.iter().for_each(|k| b.extend_from_slice(k));
        b.extend_from_slice(&(self.failures.len() as u64).to_le_bytes());
        for (key, reason) in &self.failures {
            b.extend_from_slice(key);
            put_bytes(&mut b, reason.as_bytes());
        }
        b.extend_from_slice(&(self.stats.len() as u64).to_le_bytes());
        for (path, (stat, key)) in &self.stats {
            put_bytes(&mut b, path);
            b.extend_from_slice(&stat.len.to_le_bytes());
            b.extend_from_slice(&stat.mtime_ns.to_le_bytes());
            b.extend_from_slice(key);
        }
        let digest = Sha256::digest(&b);
        b.extend_from_slice(&digest);
        b
    }

    /// `None` for anything but an intact index of this store's settings.
    pub(super) fn decode(bytes: &[u8], opts: &StoreOptions) -> Option<Index> {
        let (body, digest) = bytes.split_at(bytes.len().checked_sub(32)?);
        let header = Index::header(opts);
        if Sha256::digest(body).as_slice() != digest || !body.starts_with(&header) {
            return None;
        }
        let mut r = Reader(&body[header.len()..]);
        let mut index = Index::default();
        for row in 0..r.u64()? {
            let key = r.key()?;
            index.keys.push(key);
            index.rows.insert(key, row as usize);
        }
        for _ in 0..r.u64()? {
            let key = r.key()?;
            let reason = String::from_utf8(r.bytes()?.to_vec()).ok()?;
            index.failures.insert(key, reason);
        }
        for _ in 0..r.u64()? {
            let path = r.bytes()?.to_vec();
            let stat = Stat {
                len: r.u64()?,
                mtime_ns: r.u64()? as i64,
            };
            index.stats.insert(path, (stat, r.key()?));
        }
        r.0.is_empty().then_some(index)
    }

    pub(super) fn knows(&self, key: &Key) -> bool {
        self.rows.contains_key(key) || self.failures.contains_key(key)
    }
}

fn put_bytes(b: &mut Vec<u8>, bytes: &[u8]) {
    b.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    b.extend_from_slice(bytes);
}

/// Bounds-checked little-endian reads; `None` at the end of the data.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn key(&mut self) -> Option<Key> {
        self.take(32)?.try_into().ok()
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = u32::from_le_bytes(self.take(4)?.try_into().ok()?);
        self.take(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::super::DecodeMode;
    use super::*;

    fn options(dir: &Path, height: u32, width: u32, decode: DecodeMode) -> StoreOptions {
        StoreOptions {
            dir: dir.to_path_buf(),
            height,
            width,
            decode,
            progress: false,
        }
    }

    #[test]
    fn index_round_trips_and_rejects_damage() {
        let opts = options(Path::new("/x"), 8, 8, DecodeMode::Reduced);
        let mut index = Index {
            keys: vec![[1; 32], [2; 32]],
            rows: HashMap::from([([1; 32], 0), ([2; 32], 1)]),
            ..Index::default()
        };
        index.failures.insert([3; 32], "bad".into());
        let stat = Stat {
            len: 10,
            mtime_ns: -5,
        };
        index.stats.insert(b"/a/b.jpg".to_vec(), (stat, [2; 32]));
        let bytes = index.encode(&opts);
        assert_eq!(Index::decode(&bytes, &opts), Some(index));
        assert_eq!(Index::decode(&bytes[..bytes.len() - 1], &opts), None);
        let other = options(Path::new("/x"), 8, 9, DecodeMode::Reduced);
        assert_eq!(Index::decode(&bytes, &other), None);
    }
}
