//! Building a store: settle inputs from the stat cache, hash and decode the
//! rest on the rayon pool, append their rows, commit the index now and then.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rayon::prelude::*;

use super::decode::{decode_bytes, to_chw};
use super::index::{content_key, Index, Key, Stat, StoreFiles};
use super::StoreOptions;
use crate::error::{Error, Result};
use crate::files::{clean_stale_temps, write_bytes, RunLock};

/// A killed build loses at most this much decoding work.
const COMMIT_EVERY: Duration = Duration::from_secs(30);
/// A file modified this recently may change again within the same mtime
/// tick, so its stat is not trusted to stand for its content (git's "racy
/// clean" problem); it is hashed again next run.
const RACY: Duration = Duration::from_secs(2);

/// Rows committed by a build, and what became of each input.
pub(super) struct Built {
    pub(super) data: PathBuf,
    pub(super) rows: usize,
    pub(super) out: Resolution,
}

/// Brings the store for `opts` up to date with `paths` under its run lock.
pub(super) fn build(paths: &[PathBuf], opts: &StoreOptions) -> Result<Built> {
    let files = StoreFiles::new(opts);
    std::fs::create_dir_all(&files.dir).map_err(|e| Error::io(&files.dir, e))?;
    let _lock = wait_for_lock(&files.dir)?;
    clean_stale_temps(&files.dir);
    let row_len = 3 * opts.height as usize * opts.width as usize;
    let mut index = Index::load(&files.index, opts)?;
    let data = open_data(&files.data, (index.keys.len() * row_len) as u64)?;
    let mut out = Resolution::new(paths.len());
    let pending = out.resolve_known(paths, &index);
    if !pending.is_empty() {
        let mut writer = Writer {
            file: &data,
            data_path: &files.data,
            index: &mut index,
            index_path: &files.index,
            opts,
            row_len,
            dirty: false,
            last_commit: Instant::now(),
        };
        writer.build(paths, pending, &mut out)?;
    }
    out.failed.sort_by_key(|f| f.0);
    Ok(Built {
        rows: index.keys.len(),
        data: files.data,
        out,
    })
}

/// Serialises builders of one store: a second run waits instead of failing,
/// then finds most of its rows already made.
fn wait_for_lock(dir: &Path) -> Result<RunLock> {
    let mut told = false;
    loop {
        match RunLock::acquire(&dir.join(".lock"), "image store") {
            Err(Error::Locked(_)) => {
                if !told {
                    eprintln!(
                        "image store {} is being written by another melxai run; waiting for it",
                        dir.display()
                    );
                    told = true;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            other => return other,
        }
    }
}

/// Opens the data file for appending, cutting off rows a killed build wrote
/// after its last commit.
fn open_data(path: &Path, committed: u64) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if len < committed {
        return Err(Error::Invalid {
            path: path.into(),
            message: format!(
                "holds {len} bytes but its index commits {committed}; delete the folder to rebuild the store"
            ),
        });
    }
    if len > committed {
        file.set_len(committed).map_err(|e| Error::io(path, e))?;
    }
    Ok(file)
}

/// An input whose stat did not identify known content.
struct Pending {
    input: usize,
    /// Canonical path and stat, when the stat may be recorded.
    stat: Option<(Vec<u8>, Stat)>,
}

/// The canonical path and stat of a file, and whether the stat may stand for
/// the content (see [`RACY`]).
fn stat_of(path: &Path) -> std::io::Result<(Vec<u8>, Stat, bool)> {
    let canonical = path.canonicalize()?;
    let meta = std::fs::metadata(&canonical)?;
    let stat = Stat {
        len: meta.len(),
        mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
    };
    let now_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    let settled = now_ns - stat.mtime_ns > RACY.as_nanos() as i64;
    Ok((canonical.as_os_str().as_bytes().to_vec(), stat, settled))
}

/// The answer being assembled, one slot per input.
pub(super) struct Resolution {
    pub(super) rows: Vec<Option<usize>>,
    pub(super) failed: Vec<(usize, String)>,
    pub(super) decoded: usize,
    pub(super) reused: usize,
    pub(super) hashed: usize,
}

impl Resolution {
    fn new(n: usize) -> Resolution {
        Resolution {
            rows: vec![None; n],
            failed: Vec::new(),
            decoded: 0,
            reused: 0,
            hashed: 0,
        }
    }

    /// Settles every input whose stat names known content (the whole set on
    /// a second run, without reading a file) and returns the rest.
    fn resolve_known(&mut self, paths: &[PathBuf], index: &Index) -> Vec<Pending> {
        let stats: Vec<_> = paths.par_iter().map(|p| stat_of(p)).collect();
        let mut pending = Vec::new();
        for (input, stat) in stats.into_iter().enumerate() {
            let (canonical, stat, settled) = match stat {
                Ok(s) => s,
                Err(e) => {
                    self.failed
                        .push((input, Error::io(&paths[input], e).to_string()));
                    continue;
                }
            };
            match index.stats.get(&canonical) {
                Some((known, key)) if *known == stat && index.knows(key) => {
                    self.settle(input, key, index)
                }
                _ => pending.push(Pending {
                    input,
                    stat: settled.then_some((canonical, stat)),
                }),
            }
        }
        pending
    }

    fn settle(&mut self, input: usize, key: &Key, index: &Index) {
        match index.rows.get(key) {
            Some(&row) => {
                self.rows[input] = Some(row);
                self.reused += 1;
            }
            None => {
                let reason = index.failures.get(key).cloned().unwrap_or_default();
                self.failed.push((input, reason));
            }
        }
    }
}

/// What a decoding worker found for one pending input.
enum Outcome {
    /// The content already has a row or a recorded failure.
    Known(Key),
    Decoded(Key, Vec<u8>),
    Undecodable(Key, String),
    Unreadable(String),
}

fn process(path: &Path, known: &HashSet<Key>, opts: &StoreOptions) -> Outcome {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return Outcome::Unreadable(Error::io(path, e).to_string()),
    };
    let key = content_key(&bytes, opts);
    if known.contains(&key) {
        return Outcome::Known(key);
    }
    let decode = || decode_bytes(path, &bytes, opts.height, opts.width, opts.decode);
    // A decoder panic on a hostile file must cost that file, not the run.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode)) {
        Ok(Ok(img)) => Outcome::Decoded(key, to_chw(&img)),
        Ok(Err(e)) => Outcome::Undecodable(key, e.to_string()),
        Err(_) => Outcome::Undecodable(key, format!("{}: the decoder crashed", path.display())),
    }
}

/// Appends decoded rows and commits the index now and then.
struct Writer<'a> {
    file: &'a File,
    data_path: &'a Path,
    index: &'a mut Index,
    index_path: &'a Path,
    opts: &'a StoreOptions,
    row_len: usize,
    dirty: bool,
    last_commit: Instant,
}

impl Writer<'_> {
    /// Hashes and decodes `pending` on the rayon pool while this thread
    /// appends the results in arrival order; the bounded channel keeps at
    /// most a few dozen rows in memory whatever the data set size.
    fn build(
        &mut self,
        paths: &[PathBuf],
        pending: Vec<Pending>,
        out: &mut Resolution,
    ) -> Result<()> {
        let known: HashSet<Key> = self
            .index
            .rows
            .keys()
            .chain(self.index.failures.keys())
            .copied()
            .collect();
        let bar = self.opts.progress.then(|| progress_bar(pending.len()));
        let stop = AtomicBool::new(false);
        let (tx, rx) = sync_channel::<(Pending, Outcome)>(2 * rayon::current_num_threads() + 8);
        let (opts, known, stop) = (self.opts, &known, &stop);
        let result = std::thread::scope(|s| {
            s.spawn(move || produce(paths, pending, known, opts, stop, tx));
            let result = self.consume(rx, out, bar.as_ref());
            stop.store(true, Ordering::Relaxed);
            result
        });
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        result?;
        if self.dirty {
            self.commit()?;
        }
        Ok(())
    }

    fn consume(
        &mut self,
        rx: Receiver<(Pending, Outcome)>,
        out: &mut Resolution,
        bar: Option<&indicatif::ProgressBar>,
    ) -> Result<()> {
        for (pending, outcome) in rx {
            let key = match outcome {
                Outcome::Unreadable(reason) => {
                    out.failed.push((pending.input, reason));
                    None
                }
                Outcome::Known(key) => {
                    out.settle(pending.input, &key, self.index);
                    Some(key)
                }
                Outcome::Decoded(key, row) => {
                    if self.index.rows.contains_key(&key) {
                        // Same content earlier in this run.
                        out.settle(pending.input, &key, self.index);
                    } else {
                        self.append(key, &row)?;
                        out.rows[pending.input] = self.index.rows.get(&key).copied();
                        out.decoded += 1;
                    }
                    Some(key)
                }
                Outcome::Undecodable(key, reason) => {
                    self.index.failures.insert(key, reason.clone());
                    self.dirty = true;
                    out.failed.push((pending.input, reason));
                    Some(key)
                }
            };
            if let Some(key) = key {
                out.hashed += 1;
                if let Some((canonical, stat)) = pending.stat {
                    self.index.stats.insert(canonical, (stat, key));
                    self.dirty = true;
                }
            }
            if let Some(bar) = bar {
                bar.inc(1);
            }
            if self.dirty && self.last_commit.elapsed() >= COMMIT_EVERY {
                self.commit()?;
            }
        }
        Ok(())
    }

    /// Writes past the last row; invisible to readers until the next commit.
    fn append(&mut self, key: Key, row: &[u8]) -> Result<()> {
        let row_index = self.index.keys.len();
        let at = (row_index * self.row_len) as u64;
        self.file
            .write_all_at(row, at)
            .map_err(|e| Error::io(self.data_path, e))?;
        self.index.keys.push(key);
        self.index.rows.insert(key, row_index);
        self.dirty = true;
        Ok(())
    }

    /// Rows reach the disk before the index that names them.
    fn commit(&mut self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| Error::io(self.data_path, e))?;
        write_bytes(self.index_path, &self.index.encode(self.opts))?;
        self.dirty = false;
        self.last_commit = Instant::now();
        Ok(())
    }
}

fn produce(
    paths: &[PathBuf],
    pending: Vec<Pending>,
    known: &HashSet<Key>,
    opts: &StoreOptions,
    stop: &AtomicBool,
    tx: SyncSender<(Pending, Outcome)>,
) {
    pending.into_par_iter().for_each_with(tx, |tx, p| {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let outcome = process(&paths[p.input], known, opts);
        if tx.send((p, outcome)).is_err() {
            stop.store(true, Ordering::Relaxed);
        }
    });
}

fn progress_bar(n: usize) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(n as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "decoding images [{bar:30}] {pos}/{len} {per_sec} (eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}
