//! Progress of a pipeline job: typed events, where they go, and how a job is
//! asked to stop.
//!
//! This module sits below the pipeline so that no pipeline module knows who
//! watches: the TUI engine, the CLI bars and `--batch` each bring their own
//! [`EventSink`]. Events carry plain data only (numbers, strings, `Vec<f32>`
//! maps), never tensors: models live on the thread that runs the job.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use crate::verdict::SamplePrediction;

/// Identifies one submitted job.
pub type JobId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Train,
    Evaluate,
    Calibrate,
    Explain,
    Compare,
}

/// Set while the TUI owns the terminal: progress bars on stderr would draw
/// over its screen.
static TERMINAL_OWNED: AtomicBool = AtomicBool::new(false);

/// Called by the TUI when it takes and gives back the terminal.
pub fn set_terminal_owned(owned: bool) {
    TERMINAL_OWNED.store(owned, Ordering::SeqCst);
}

/// Whether a long step may draw a progress bar on stderr: a terminal that
/// the TUI does not own.
pub fn progress_bars_allowed() -> bool {
    use std::io::IsTerminal;
    !TERMINAL_OWNED.load(Ordering::SeqCst) && std::io::stderr().is_terminal()
}

/// Per-epoch summary of training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochSummary {
    /// (fold index, number of folds) for k-fold runs.
    pub fold: Option<(usize, usize)>,
    /// 1-based.
    pub epoch: usize,
    pub epochs: usize,
    pub train_loss: f64,
    /// NaN (JSON `null`) when the run holds no validation images.
    #[serde(deserialize_with = "null_as_nan")]
    pub val_loss: f64,
    #[serde(deserialize_with = "null_as_nan")]
    pub val_balanced_accuracy: f64,
    #[serde(deserialize_with = "null_as_nan")]
    pub val_auroc: f64,
    pub learning_rate: f64,
    pub seconds: f64,
    /// Training throughput this epoch.
    pub images_per_second: f64,
}

/// serde_json writes NaN as `null`; read it back as NaN, so that a history
/// without validation figures survives a resume.
pub fn null_as_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// A heatmap for one sample and method, ready to draw.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeatmapData {
    pub sample_id: String,
    pub method: String,
    pub height: usize,
    pub width: usize,
    /// Row-major values in [0, 1].
    pub values: Vec<f32>,
    pub target: usize,
    /// Completeness / convergence delta, where the method has one.
    pub delta: Option<f64>,
}

/// One unit of a watched run: its state (`done`, `running`, `failed`,
/// `ready`, `waiting`), where it stands, and a training's finished epochs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnitLine {
    pub id: String,
    pub state: String,
    pub stage: String,
    pub done: u64,
    pub total: u64,
    pub eta_seconds: Option<f64>,
    /// The error or where it runs.
    pub detail: Option<String>,
    pub epochs: Vec<EpochSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Started {
        job: JobId,
        kind: JobKind,
        description: String,
    },
    /// Coarse progress of the current stage (throttled to about 10 per second).
    Progress {
        job: JobId,
        stage: String,
        done: u64,
        total: u64,
        /// Estimated seconds left for the whole job.
        eta_seconds: Option<f64>,
    },
    Batch {
        job: JobId,
        epoch: usize,
        batch: usize,
        batches: usize,
        loss: f64,
        learning_rate: f64,
    },
    Epoch {
        job: JobId,
        summary: EpochSummary,
    },
    /// Skipped files and other non-fatal problems.
    Warning {
        job: JobId,
        message: String,
    },
    Predictions {
        job: JobId,
        model: String,
        rows: Vec<SamplePrediction>,
    },
    /// Calibration before/after as JSON (see `calibrate::CalibrationReport`).
    Calibration {
        job: JobId,
        model: String,
        temperature: f64,
        before: serde_json::Value,
        after: serde_json::Value,
    },
    Heatmap {
        job: JobId,
        model: String,
        map: HeatmapData,
    },
    /// One image's maps scored (which explanation to trust): per method,
    /// `(score name, value)` pairs in display order.
    Scores {
        job: JobId,
        sample_id: String,
        methods: Vec<MethodScores>,
    },
    /// A job wrote a model (a checkpoint, or a fold run's ensemble manifest)
    /// that the faces should use from now on.
    ModelWritten {
        job: JobId,
        path: std::path::PathBuf,
    },
    /// The units of a run that other processes or a cluster execute, as
    /// their files say (`melxai --watch RUN`), about once a second.
    Units {
        run: String,
        units: Vec<UnitLine>,
    },
    Finished {
        job: JobId,
        summary: String,
    },
    Failed {
        job: JobId,
        error: String,
    },
    Cancelled {
        job: JobId,
    },
}

/// One method's scores of one image: the method and `(score, value)` pairs.
pub type MethodScores = (String, Vec<(String, f64)>);

/// Where events go. The trainer and other jobs only know this trait.
pub trait EventSink: Send {
    fn send(&mut self, event: Event);
}

impl<F: FnMut(Event) + Send> EventSink for F {
    fn send(&mut self, event: Event) {
        self(event)
    }
}

/// A sink that drops every event (jobs run where nobody watches).
pub struct NullSink;

impl EventSink for NullSink {
    fn send(&mut self, _event: Event) {}
}

/// A cooperative request to stop, checked by jobs between batches and steps.
///
/// Clones share one flag, so a face keeps one clone and hands another (by
/// reference) to every job it starts: cancelling reaches the running job and
/// the ones still queued behind it. Stopping is never a panic; a job that
/// sees the flag returns [`Error::Cancelled`] at its next step boundary.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every job holding this token (or a clone) to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(Error::Cancelled)` once cancelled: `token.check()?` at a step boundary.
    pub fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_flag() {
        let token = CancelToken::new();
        let held_by_job = token.clone();
        assert!(held_by_job.check().is_ok());
        token.cancel();
        assert!(held_by_job.is_cancelled());
        assert!(matches!(held_by_job.check(), Err(Error::Cancelled)));
    }
}
