//! Atomic file replacement: write a temporary sibling, fsync it, rename it over
//! the target, fsync the folder. On error the temporary file is removed and the
//! target is untouched; the error names the path the user asked for.
//!
//! Temporary files are hidden (`.<name>.melxai-tmp.<pid>.<ext>`), so data set
//! scans never pick them up, and carry the writer's pid, so a later run can
//! remove the ones left by a killed process ([`clean_stale_temps`]).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Marker between the target's name and the writer's pid in a temp file name.
const TEMP_MARKER: &str = ".melxai-tmp.";

/// The temporary sibling used while writing `path`. The extension is kept last
/// because some writers (libtorch) pick the format from it.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bin".into());
    path.with_file_name(format!(".{name}{TEMP_MARKER}{}.{ext}", std::process::id()))
}

fn ensure_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
        }
        _ => Ok(()),
    }
}

/// Flushes a finished file to stable storage (the data, before the rename).
fn sync_file(path: &Path) -> std::io::Result<()> {
    File::open(path)?.sync_all()
}

/// Flushes the folder entry so the rename itself survives a power cut.
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        // Best effort: some file systems refuse fsync on folders.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// Atomically replaces `path` with whatever `write` puts at the temporary path
/// it is given (for writers that only take a path, such as libtorch's).
///
/// Errors from `write` that do not name a path are reported against `path`.
pub fn write_with_path(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    ensure_parent(path)?;
    let tmp = temp_path(path);
    let result = write(&tmp)
        .map_err(|e| match e {
            Error::Io { source, .. } => Error::io(path, source),
            Error::Torch(t) => Error::Other(format!("{}: {t}", path.display())),
            other => other,
        })
        .and_then(|()| sync_file(&tmp).map_err(|e| Error::io(path, e)))
        .and_then(|()| fs::rename(&tmp, path).map_err(|e| Error::io(path, e)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    } else {
        sync_dir(path);
    }
    result
}

/// Atomically replaces `path` with `bytes`.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with_path(path, |tmp| {
        let mut f = File::create(tmp).map_err(|e| Error::io(tmp, e))?;
        f.write_all(bytes).map_err(|e| Error::io(tmp, e))?;
        f.flush().map_err(|e| Error::io(tmp, e))
    })
}

/// Replaces several files as one update: every file is first written and
/// synced to its temporary sibling, and only when all of them are staged are
/// they renamed into place. A failure while staging (a full disk, an
/// unwritable folder) removes the staged files and leaves every target as it
/// was; the error names the file.
pub fn write_all_or_nothing(files: &[(PathBuf, Vec<u8>)]) -> Result<()> {
    let mut staged: Vec<(PathBuf, &Path)> = Vec::new();
    let stage = |path: &Path, bytes: &[u8]| -> Result<PathBuf> {
        ensure_parent(path)?;
        let tmp = temp_path(path);
        let written = File::create(&tmp)
            .and_then(|mut f| f.write_all(bytes).and_then(|()| f.flush()))
            .and_then(|()| sync_file(&tmp));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(Error::io(path, e));
        }
        Ok(tmp)
    };
    for (path, bytes) in files {
        match stage(path, bytes) {
            Ok(tmp) => staged.push((tmp, path)),
            Err(e) => {
                for (tmp, _) in &staged {
                    let _ = fs::remove_file(tmp);
                }
                return Err(e);
            }
        }
    }
    for (tmp, path) in &staged {
        fs::rename(tmp, path).map_err(|e| Error::io(*path, e))?;
        sync_dir(path);
    }
    Ok(())
}

/// Whether a process with this id is still running (signal 0 probes only).
fn process_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 sends nothing; it only checks the pid.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// The writer's pid of a melxai temp file name, if it is one.
fn temp_owner(name: &str) -> Option<i32> {
    let rest = name.strip_prefix('.')?;
    let (_, tail) = rest.rsplit_once(TEMP_MARKER)?;
    tail.split('.').next()?.parse().ok()
}

/// Removes temp files in `dir` left behind by melxai processes that are no
/// longer running (a run killed between write and rename). Returns the files
/// removed. A missing folder is not an error.
pub fn clean_stale_temps(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = temp_owner(&name.to_string_lossy()) else {
            continue;
        };
        if pid as u32 != std::process::id()
            && !process_alive(pid)
            && fs::remove_file(entry.path()).is_ok()
        {
            removed.push(entry.path());
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_round_trip_to_their_pid() {
        let t = temp_path(Path::new("/x/run-1.safetensors"));
        let name = t.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(".run-1.safetensors"));
        assert!(name.ends_with(".safetensors"));
        assert_eq!(temp_owner(&name), Some(std::process::id() as i32));
        assert_eq!(temp_owner("run-1.safetensors"), None);
        assert_eq!(temp_owner(".hidden.toml"), None);
    }

    #[test]
    fn failed_write_leaves_target_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.json");
        write_bytes(&target, b"old").unwrap();
        let err = write_with_path(&target, |tmp| {
            fs::write(tmp, b"half").unwrap();
            Err(Error::Other("disk full".into()))
        });
        assert!(err.is_err());
        assert_eq!(fs::read(&target).unwrap(), b"old");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "temp file left behind");
    }

    #[test]
    fn stale_temps_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        // pid 0x7ffffffe is never a live process on Linux (pid_max <= 2^22).
        let stale = dir
            .path()
            .join(format!(".m.npy{TEMP_MARKER}2147483646.npy"));
        let mine = temp_path(&dir.path().join("n.npy"));
        fs::write(&stale, b"x").unwrap();
        fs::write(&mine, b"x").unwrap();
        let removed = clean_stale_temps(dir.path());
        assert_eq!(removed, vec![stale.clone()]);
        assert!(mine.exists());
    }
}
