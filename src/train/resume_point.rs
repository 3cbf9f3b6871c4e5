//! The `-last` resume point of a training run: the epoch's tensors,
//! optimiser state and history, committed together on a background thread,
//! and the checks that decide whether a run may resume from it.

use std::path::{Path, PathBuf};

use tch::Tensor;

use crate::error::{Error, Result};
use crate::model::checkpoint::{self, CheckpointMeta, TrainingProgress};
use crate::model::Classifier;
use crate::progress::EpochSummary;

/// Resume-point path stems for a run name.
pub(super) fn last_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}-last"))
}
pub(super) fn optim_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}-last-optim.safetensors"))
}

/// Per-epoch history is kept beside the last checkpoint for resume.
pub(super) fn history_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}-last-history.json"))
}

/// Refuses to resume `last` (saved as `was`) into a run built as `now`:
/// another input size or architecture (weights copy over by name without
/// complaint, since conv kernels do not depend on the input size, so a new
/// recipe under an old name would silently become the old run), another
/// weight-averaging window, or another data split.
pub(super) fn check_resumable(
    was: &CheckpointMeta,
    now: &CheckpointMeta,
    last: &Path,
) -> Result<()> {
    if was.input_size != now.input_size || was.model.arch != now.model.arch {
        return Err(Error::Checkpoint {
            path: last.to_path_buf(),
            message: format!(
                "was trained as {} at {}x{} px, this run is {} at {}x{} px; cannot resume. Use another name, or train without resume to start over",
                was.model.arch.name(),
                was.input_size[0],
                was.input_size[1],
                now.model.arch.name(),
                now.input_size[0],
                now.input_size[1]
            ),
        });
    }
    // A finished run is reused by name: one trained without weight
    // averaging (or over another window) would pass for the averaged one.
    let window = |m: &CheckpointMeta| {
        m.training
            .get("swa_epochs")
            .and_then(|v| v.as_integer())
            .unwrap_or(0)
    };
    if window(was) != window(now) {
        return Err(Error::Checkpoint {
            path: last.to_path_buf(),
            message: format!(
                "was trained with swa_epochs = {}, this run has swa_epochs = {}; cannot resume. Use another name, or train without resume to start over",
                window(was),
                window(now)
            ),
        });
    }
    if was.split != now.split {
        return Err(Error::Checkpoint {
            path: last.to_path_buf(),
            message:
                "its data split differs from this run's (data set or seed changed); cannot resume"
                    .into(),
        });
    }
    Ok(())
}

/// The `-last` resume point of an epoch, committed on a background thread
/// while the next epoch trains: the host copies are made first, so only
/// writing, hashing and syncing ~40 MB runs beside the training (on an H100
/// a MED-NODE epoch takes ~0.2 s, and that commit took about as long).
/// Joined before the next commit, at the end of training, and on drop, so
/// an error or a cancel never leaves a commit half-done behind it.
#[derive(Default)]
pub(super) struct BackgroundSave(Option<std::thread::JoinHandle<Result<PathBuf>>>);

impl BackgroundSave {
    /// Waits for the commit in flight; its error, if it failed.
    pub(super) fn wait(&mut self) -> Result<()> {
        match self.0.take() {
            None => Ok(()),
            Some(h) => h
                .join()
                .map_err(|_| Error::Other("the checkpoint writer thread panicked".into()))?
                .map(|_| ()),
        }
    }
}

impl Drop for BackgroundSave {
    fn drop(&mut self) {
        let _ = self.wait();
    }
}

/// A `-last` checkpoint that cannot be resumed from (parts of two epochs
/// after a kill mid-save, or unreadable): the error, and what to do instead.
/// `restart` is the command that starts the run over in its own shape
/// ([`super::trainer::restart_command`]).
pub(super) fn torn_last(e: Error, last: &Path, run: &str, restart: &str) -> Error {
    Error::Checkpoint {
        path: checkpoint::meta_path(last),
        message: format!(
            "cannot resume from this interrupted run's last checkpoint, nothing was resumed: {e}. To start '{run}' over, run `{restart}` without --resume (it replaces the -last files)"
        ),
    }
}

pub(super) fn save_last(
    model: &Classifier,
    // The optimiser's state and the weight average, if any (host copies).
    state: Vec<(String, Tensor)>,
    progress: &TrainingProgress,
    history: &[EpochSummary],
    dir: &Path,
    name: &str,
    pending: &mut BackgroundSave,
) -> Result<()> {
    pending.wait()?;
    let mut meta = model.meta.clone();
    meta.progress = Some(progress.clone());
    meta.name = format!("{name}-last");
    let host = checkpoint::host_variables(&model.vs);
    let text = serde_json::to_string(history).map_err(|e| Error::Other(e.to_string()))?;
    let (path, optim, hist) = (
        last_path(dir, name),
        optim_path(dir, name),
        history_path(dir, name),
    );
    pending.0 = Some(std::thread::spawn(move || {
        // One unit: tensors, optimiser state and history, then the manifest.
        let parts = vec![
            checkpoint::Part {
                path: optim,
                write: Box::new(move |tmp: &Path| {
                    Tensor::write_safetensors(&state, tmp).map_err(Error::from)
                }),
            },
            checkpoint::Part {
                path: hist,
                write: Box::new(move |tmp: &Path| {
                    std::fs::write(tmp, text).map_err(|e| Error::io(tmp, e))
                }),
            },
        ];
        checkpoint::save_host_tensors(host, &meta, &path, parts)
    }));
    Ok(())
}
