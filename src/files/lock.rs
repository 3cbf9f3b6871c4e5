//! Advisory run locks: two processes that would write the same files (two
//! `train --name same`) must not interleave, so the second one refuses.
//!
//! The lock is `flock` on a hidden lock file, so the kernel releases it when
//! the holder exits for any reason (kill -9 included): a stale lock file never
//! blocks a later run. The file holds the holder's pid for the message.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Held while it lives; dropping it releases the lock.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    _file: File,
}

impl RunLock {
    /// Takes the lock at `path` without waiting; `what` says what it guards,
    /// for the refusal message (e.g. "training run 'x'").
    pub fn acquire(path: &Path, what: &str) -> Result<RunLock> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let by = if holder.is_empty() {
                    String::new()
                } else {
                    format!(" (process {holder})")
                };
                return Err(Error::Locked(format!(
                    "{what} is already in use by another melxai run{by}; wait for it to finish or use another name (lock file {})",
                    path.display()
                )));
            }
            return Err(Error::io(path, err));
        }
        let _ = file.set_len(0);
        let _ = file.seek(SeekFrom::Start(0));
        let _ = write!(file, "{}", std::process::id());
        let _ = file.flush();
        Ok(RunLock {
            path: path.to_path_buf(),
            _file: file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_until_the_first_drops() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".run.lock");
        let first = RunLock::acquire(&p, "training run 'x'").unwrap();
        let err = RunLock::acquire(&p, "training run 'x'")
            .unwrap_err()
            .to_string();
        assert!(err.contains("already in use"), "{err}");
        assert!(err.contains(&std::process::id().to_string()), "{err}");
        drop(first);
        assert!(RunLock::acquire(&p, "training run 'x'").is_ok());
    }
}
