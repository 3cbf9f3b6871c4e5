//! Persistent preprocessed-image store: each image is decoded and resized once
//! per (file content, size, decode mode) and kept on disk as a CHW u8 row, so
//! later runs map the rows instead of decoding 25 000 JPEGs again.
//!
//! Under `<dir>/<h>x<w>-<mode>/` live `rows-<rule>.u8` (rows appended, never
//! rewritten) and `index-<rule>.bin` (the key of every row, failures, and a
//! stat cache), the index replaced atomically. Bytes past the rows the index
//! names belong to a build that was killed; the next build cuts them off.
//! Builds hold a run lock; readers need none because committed rows never
//! change, so a build may append while another process reads.

mod build;
mod decode;
mod index;
#[cfg(test)]
mod testutil;

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use memmap2::{Mmap, MmapOptions};

pub use decode::{decode_resized, to_chw, DecodeMode, RESIZE_RULE};

use crate::data::image::MAX_INPUT_SIDE;
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Root folder; each size and mode gets its own sub-folder.
    pub dir: PathBuf,
    pub height: u32,
    pub width: u32,
    pub decode: DecodeMode,
    /// A bar with count, img/s and ETA on stderr while decoding.
    pub progress: bool,
}

/// Read-only view of the committed rows of one store.
#[derive(Debug)]
pub struct ImageStore {
    path: PathBuf,
    file: File,
    map: Mmap,
    rows: usize,
    row_len: usize,
    height: u32,
    width: u32,
}

/// What [`ImageStore::open_or_build`] made of its inputs. Every input is
/// exactly one of decoded, reused or failed.
#[derive(Debug)]
pub struct StoreBuild {
    pub store: ImageStore,
    /// Store row per input path, `None` where it failed.
    pub rows: Vec<Option<usize>>,
    /// (input index, reason), in input order.
    pub failed: Vec<(usize, String)>,
    /// Inputs decoded this run.
    pub decoded: usize,
    /// Inputs whose content already had a row.
    pub reused: usize,
    /// Inputs read and hashed this run because their stat was not known.
    pub hashed: usize,
}

impl ImageStore {
    /// Opens the store for `opts`, decoding (in parallel) only the inputs
    /// whose content has no row yet. Unreadable and undecodable files are
    /// listed in `failed`, never an error; errors are about the store itself.
    /// Waits while another run builds the same store.
    pub fn open_or_build(paths: &[PathBuf], opts: &StoreOptions) -> Result<StoreBuild> {
        let side = 1..=MAX_INPUT_SIDE as u32;
        if !side.contains(&opts.height) || !side.contains(&opts.width) {
            return Err(Error::Config(format!(
                "image store size {}x{} is outside 1..={MAX_INPUT_SIDE} pixels per side",
                opts.height, opts.width
            )));
        }
        let built = build::build(paths, opts)?;
        let out = built.out;
        Ok(StoreBuild {
            store: ImageStore::map(built.data, built.rows, opts)?,
            rows: out.rows,
            failed: out.failed,
            decoded: out.decoded,
            reused: out.reused,
            hashed: out.hashed,
        })
    }

    fn map(path: PathBuf, rows: usize, opts: &StoreOptions) -> Result<ImageStore> {
        let row_len = 3 * opts.height as usize * opts.width as usize;
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        // SAFETY: the mapping covers committed rows only; builders append past
        // them and cut back only to the committed length, so mapped bytes
        // never change or disappear while melxai is the only writer.
        let map = unsafe { MmapOptions::new().len(rows * row_len).map(&file) }
            .map_err(|e| Error::io(&path, e))?;
        Ok(ImageStore {
            path,
            file,
            map,
            rows,
            row_len,
            height: opts.height,
            width: opts.width,
        })
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// `3 * height * width`.
    pub fn row_len(&self) -> usize {
        self.row_len
    }

    /// (height, width) of every row.
    pub fn size(&self) -> (u32, u32) {
        (self.height, self.width)
    }

    /// Row `i` as CHW u8, straight from the mapping (its pages stay resident
    /// and count in RSS; stream with [`ImageStore::read_rows`]). Panics when
    /// `i >= len()`.
    pub fn row(&self, i: usize) -> &[u8] {
        &self.map[i * self.row_len..(i + 1) * self.row_len]
    }

    /// Copies `rows` in order into `out` (resized to fit). Reads with pread
    /// rather than the mapping, so streaming a data set larger than memory
    /// fills only the page cache, which the kernel reclaims, not this
    /// process's RSS.
    ///
    /// Panics when a row is out of range or the disk fails mid-read (the
    /// same failure through the mapping would be a SIGBUS).
    pub fn read_rows(&self, rows: &[usize], out: &mut Vec<u8>) {
        let n = self.row_len;
        out.clear();
        out.resize(rows.len() * n, 0);
        let mut k = 0;
        while k < rows.len() {
            let start = rows[k];
            let mut run = 1;
            while k + run < rows.len() && rows[k + run] == start + run {
                run += 1;
            }
            assert!(
                start + run <= self.rows,
                "rows {start}..{} out of range: the store has {} rows",
                start + run,
                self.rows
            );
            self.file
                .read_exact_at(&mut out[k * n..(k + run) * n], (start * n) as u64)
                .unwrap_or_else(|e| panic!("reading {}: {e}", self.path.display()));
            k += run;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::index::StoreFiles;
    use super::testutil::*;
    use super::*;

    #[test]
    fn full_mode_rows_equal_decode_rgb_and_resize_bit_for_bit() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir(&src).unwrap();
        let colour = src.join("colour.jpg");
        write_jpeg(&colour, &photo(300, 200, 1), None);
        let rotated = src.join("rotated.jpg");
        write_jpeg(
            &rotated,
            &photo(200, 100, 2),
            Some(exif_orientation_chunk(6)),
        );
        let grey = src.join("grey.jpg");
        image::DynamicImage::ImageRgb8(photo(64, 64, 3))
            .to_luma8()
            .save(&grey)
            .unwrap();
        let alpha = src.join("alpha.png");
        image::DynamicImage::ImageRgb8(photo(120, 90, 4))
            .to_rgba8()
            .save(&alpha)
            .unwrap();
        let paths = vec![colour, rotated, grey, alpha];
        let built =
            ImageStore::open_or_build(&paths, &options(dir.path(), 48, 40, DecodeMode::Full))
                .unwrap();
        assert!(built.failed.is_empty(), "{:?}", built.failed);
        assert_eq!(
            (built.decoded, built.store.len(), built.store.row_len()),
            (4, 4, 3 * 48 * 40)
        );
        for (path, row) in paths.iter().zip(&built.rows) {
            let want = expected_row(path, 48, 40);
            assert_eq!(
                built.store.row(row.unwrap()),
                want.as_slice(),
                "{}",
                path.display()
            );
            let direct = decode_resized(path, 48, 40, DecodeMode::Full).unwrap();
            assert_eq!(to_chw(&direct), want);
        }
    }

    #[test]
    fn second_open_decodes_nothing_and_returns_the_same_rows() {
        let dir = tempfile::tempdir().unwrap();
        let paths = jpegs(dir.path(), 5, 60);
        let opts = options(&dir.path().join("store"), 32, 32, DecodeMode::Full);
        let first = ImageStore::open_or_build(&paths, &opts).unwrap();
        assert_eq!((first.decoded, first.reused, first.hashed), (5, 0, 5));
        let second = ImageStore::open_or_build(&paths, &opts).unwrap();
        // The stat index settles every file without reading it.
        assert_eq!((second.decoded, second.reused, second.hashed), (0, 5, 0));
        assert_eq!(first.rows, second.rows);
        for r in second.rows.iter().flatten() {
            assert_eq!(first.store.row(*r), second.store.row(*r));
        }
        let picks = [4, 0, 1, 2, 2];
        let mut out = Vec::new();
        second.store.read_rows(&picks, &mut out);
        let want: Vec<u8> = picks
            .iter()
            .flat_map(|&r| second.store.row(r).to_vec())
            .collect();
        assert_eq!(out, want);
    }

    #[test]
    fn changed_files_decode_again_and_copies_reuse_their_row() {
        let dir = tempfile::tempdir().unwrap();
        let mut paths = jpegs(dir.path(), 3, 50);
        let opts = options(&dir.path().join("store"), 24, 24, DecodeMode::Full);
        let first = ImageStore::open_or_build(&paths, &opts).unwrap();
        // Touched, same bytes: hashed again, not decoded.
        backdate(&paths[0], 100);
        // New bytes under the old name: decoded again.
        write_jpeg(&paths[1], &photo(70, 50, 99), None);
        backdate(&paths[1], 100);
        // A renamed copy and a duplicate of it: no decoding at all.
        let copy = dir.path().join("renamed.jpg");
        std::fs::copy(&paths[2], &copy).unwrap();
        let twin = dir.path().join("twin.jpg");
        std::fs::copy(&paths[2], &twin).unwrap();
        paths.extend([copy, twin]);
        let second = ImageStore::open_or_build(&paths, &opts).unwrap();
        assert_eq!((second.decoded, second.reused, second.hashed), (1, 4, 4));
        assert_eq!(second.rows[0], first.rows[0]);
        assert_eq!(second.rows[1], Some(3));
        assert_eq!(
            second.store.row(3),
            expected_row(&paths[1], 24, 24).as_slice()
        );
        assert_eq!(second.rows[3], first.rows[2]);
        assert_eq!(second.rows[4], first.rows[2]);
        assert_eq!(second.store.len(), 4);
    }

    #[test]
    fn unreadable_corrupt_and_truncated_files_are_listed_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let good = jpegs(dir.path(), 1, 40).remove(0);
        let bytes = std::fs::read(&good).unwrap();
        let truncated = dir.path().join("truncated.jpg");
        std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
        let garbage = dir.path().join("garbage.jpg");
        std::fs::write(&garbage, b"not an image at all").unwrap();
        let empty = dir.path().join("empty.png");
        std::fs::write(&empty, b"").unwrap();
        let missing = dir.path().join("missing.jpg");
        for p in [&truncated, &garbage, &empty] {
            backdate(p, 3600);
        }
        let paths = vec![good, truncated, garbage, missing, empty];
        let opts = options(&dir.path().join("store"), 16, 16, DecodeMode::Reduced);
        for run in 0..2 {
            let b = ImageStore::open_or_build(&paths, &opts).unwrap();
            let failed: Vec<usize> = b.failed.iter().map(|f| f.0).collect();
            assert_eq!(failed, [1, 2, 3, 4], "run {run}");
            assert!(
                b.failed[0].1.contains("truncated JPEG"),
                "{}",
                b.failed[0].1
            );
            assert!(b.failed[2].1.contains("missing.jpg"), "{}", b.failed[2].1);
            assert!(b.failed[3].1.contains("empty file"), "{}", b.failed[3].1);
            assert_eq!(b.rows, [Some(0), None, None, None, None]);
            // Known-bad content is not decoded again.
            assert_eq!(b.decoded, if run == 0 { 1 } else { 0 });
            assert_eq!(b.decoded + b.reused + b.failed.len(), paths.len());
        }
    }

    #[test]
    fn a_killed_build_leaves_a_usable_store() {
        let dir = tempfile::tempdir().unwrap();
        let paths = jpegs(dir.path(), 3, 40);
        let opts = options(&dir.path().join("store"), 20, 20, DecodeMode::Full);
        let first = ImageStore::open_or_build(&paths[..2], &opts).unwrap();
        let files = StoreFiles::new(&opts);
        // A build killed after appending rows, before committing the index,
        // and one killed between writing the new index and renaming it.
        let mut junk = std::fs::read(&files.data).unwrap();
        junk.extend(vec![7u8; 5000]);
        std::fs::write(&files.data, &junk).unwrap();
        let stale = files.dir.join(".index.bin.melxai-tmp.2147483646.bin");
        std::fs::write(&stale, b"half").unwrap();
        let second = ImageStore::open_or_build(&paths, &opts).unwrap();
        assert_eq!((second.decoded, second.reused), (1, 2));
        assert_eq!(std::fs::metadata(&files.data).unwrap().len(), 3 * 1200);
        assert_eq!(first.store.row(1), second.store.row(1));
        assert_eq!(
            second.store.row(2),
            expected_row(&paths[2], 20, 20).as_slice()
        );
        assert!(!stale.exists());
        // A damaged index is refused, not trusted.
        let mut index = std::fs::read(&files.index).unwrap();
        index[20] ^= 1;
        std::fs::write(&files.index, &index).unwrap();
        let err = ImageStore::open_or_build(&paths, &opts).unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
    }

    #[test]
    fn concurrent_builds_of_one_store_share_the_work() {
        let dir = tempfile::tempdir().unwrap();
        let paths = jpegs(dir.path(), 6, 40);
        let opts = options(&dir.path().join("store"), 16, 16, DecodeMode::Full);
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| ImageStore::open_or_build(&paths, &opts).unwrap());
            let b = s.spawn(|| ImageStore::open_or_build(&paths, &opts).unwrap());
            (a.join().unwrap(), b.join().unwrap())
        });
        assert_eq!(a.decoded + b.decoded, 6);
        assert_eq!(a.rows, b.rows);
        assert_eq!(b.store.len(), 6);
    }

    fn mapping_rss_kb(path: &Path) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let name = path.to_str().unwrap();
        let mut inside = false;
        let mut kb = 0;
        for line in smaps.lines() {
            let mut words = line.split_whitespace();
            let first = words.next().unwrap_or("");
            if !first.ends_with(':') {
                inside = line.ends_with(name);
            } else if inside && first == "Rss:" {
                kb += words.next().unwrap().parse::<u64>().unwrap();
            }
        }
        kb
    }

    #[test]
    fn streaming_every_row_keeps_the_mapping_out_of_rss() {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = (0..100)
            .map(|i| {
                let p = dir.path().join(format!("{i}.png"));
                photo(40, 40, i).save(&p).unwrap();
                p
            })
            .collect();
        let opts = options(&dir.path().join("store"), 512, 512, DecodeMode::Full);
        ImageStore::open_or_build(&paths, &opts).unwrap();
        let store = ImageStore::open_or_build(&paths, &opts).unwrap().store;
        let data = store.path.canonicalize().unwrap();
        assert!(store.len() * store.row_len() > 64 << 20);
        let (mut out, mut one) = (Vec::new(), Vec::new());
        for batch in (0..store.len()).collect::<Vec<_>>().chunks(10) {
            store.read_rows(batch, &mut out);
            store.read_rows(&batch[9..], &mut one);
            assert_eq!(&out[9 * store.row_len()..], one.as_slice());
        }
        // pread never faults the mapping in: reading all 75 MB leaves none of
        // it resident (copying from the mapping would leave all of it).
        let streamed = mapping_rss_kb(&data);
        assert!(streamed < 1024, "{streamed} kB resident");
        // The measure does see mapped pages: every page read via row() stays.
        let touched: u64 = (0..store.len())
            .map(|r| {
                store
                    .row(r)
                    .iter()
                    .step_by(4096)
                    .map(|&b| b as u64)
                    .sum::<u64>()
            })
            .sum();
        assert!(touched > 0);
        let mapped = mapping_rss_kb(&data);
        assert!(mapped > 64 * 1024, "{mapped} kB resident after row()");
    }
}
