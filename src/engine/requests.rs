//! What a face can ask the engine to do. Requests go down a channel to the
//! engine task; answers come back as [`crate::progress::Event`]s.

use std::path::PathBuf;

use super::{Control, EngineJob};
use crate::progress::JobKind;

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Train with the configured settings (optionally overriding the run name
    /// and the number of epochs). Samples excluded in triage are left out.
    Train {
        name: Option<String>,
        epochs: Option<usize>,
        excluded: Vec<String>,
    },
    /// Predict every sample of the data set with a checkpoint (emits `Predictions`).
    Evaluate { checkpoint: PathBuf },
    /// Fit the temperature of a checkpoint on its validation split (emits `Calibration`).
    Calibrate { checkpoint: PathBuf },
    /// Explain samples with the given methods (`gradcam`, `ig`, `deeplift`); emits `Heatmap`s.
    Explain {
        checkpoint: PathBuf,
        sample_ids: Vec<String>,
        methods: Vec<String>,
    },
    /// Stop the running job at the next batch boundary.
    Cancel,
    /// Finish and end the worker thread.
    Shutdown,
}

impl EngineJob for Request {
    fn control(&self) -> Option<Control> {
        match self {
            Request::Cancel => Some(Control::Cancel),
            Request::Shutdown => Some(Control::Shutdown),
            _ => None,
        }
    }

    fn describe(&self) -> (JobKind, String) {
        match self {
            Request::Train { name, .. } => (
                JobKind::Train,
                format!(
                    "training {}",
                    name.clone().unwrap_or_else(|| "(configured)".into())
                ),
            ),
            Request::Evaluate { checkpoint } => (
                JobKind::Evaluate,
                format!("evaluating {}", checkpoint.display()),
            ),
            Request::Calibrate { checkpoint } => (
                JobKind::Calibrate,
                format!("calibrating {}", checkpoint.display()),
            ),
            Request::Explain {
                sample_ids,
                methods,
                ..
            } => (
                JobKind::Explain,
                format!(
                    "explaining {} sample(s) with {}",
                    sample_ids.len(),
                    methods.join(", ")
                ),
            ),
            Request::Cancel | Request::Shutdown => (JobKind::Evaluate, String::new()),
        }
    }
}
