//! `units/<id>.progress.json`: where a unit stands, rewritten as it runs, so
//! that `batch status` and the TUI's training pane can follow units that
//! other processes or a cluster run.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::progress::{EpochSummary, Event, EventSink};

/// The progress of one unit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UnitProgress {
    pub unit: String,
    pub stage: String,
    pub done: u64,
    pub total: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_seconds: Option<f64>,
    /// Every finished epoch of a training unit, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub epochs: Vec<EpochSummary>,
    /// Seconds since the epoch, at the last write.
    pub updated_at: u64,
}

/// Reads a unit's progress file (`None` while it has written none).
pub fn read_progress(path: &Path) -> Option<UnitProgress> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// Passes every event on to `inner` and keeps the unit's progress file up
/// to date: at once for an epoch, at most once a second otherwise.
pub struct ProgressFile<'a> {
    path: PathBuf,
    state: UnitProgress,
    last: Option<Instant>,
    inner: &'a mut dyn EventSink,
}

impl<'a> ProgressFile<'a> {
    pub fn new(path: PathBuf, unit: &str, inner: &'a mut dyn EventSink) -> Self {
        ProgressFile {
            path,
            state: UnitProgress {
                unit: unit.to_string(),
                ..Default::default()
            },
            last: None,
            inner,
        }
    }

    fn write(&mut self) {
        self.state.updated_at = super::state::now();
        if let Ok(text) = serde_json::to_string(&self.state) {
            // Progress is advisory: a failed write must not fail the unit.
            let _ = crate::files::write_bytes(&self.path, text.as_bytes());
        }
        self.last = Some(Instant::now());
    }

    /// Writes the final state (the bar full).
    pub fn finish(&mut self, stage: &str) {
        self.state.stage = stage.to_string();
        self.state.done = self.state.total.max(1);
        self.state.total = self.state.done;
        self.state.eta_seconds = Some(0.0);
        self.write();
    }
}

impl EventSink for ProgressFile<'_> {
    fn send(&mut self, event: Event) {
        let due = self
            .last
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
        match &event {
            Event::Progress {
                stage,
                done,
                total,
                eta_seconds,
                ..
            } => {
                self.state.stage = stage.clone();
                self.state.done = *done;
                self.state.total = *total;
                self.state.eta_seconds = *eta_seconds;
                if due {
                    self.write();
                }
            }
            Event::Batch {
                epoch,
                batch,
                batches,
                ..
            } => {
                self.state.stage = format!("training, epoch {epoch}");
                self.state.done = *batch as u64;
                self.state.total = *batches as u64;
                if due {
                    self.write();
                }
            }
            Event::Epoch { summary, .. } => {
                self.state.epochs.push(summary.clone());
                self.write();
            }
            _ => {}
        }
        self.inner.send(event);
    }
}
