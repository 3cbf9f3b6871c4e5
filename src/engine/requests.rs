//! What a face can ask the engine to do. Requests go down a channel to the
//! worker thread; answers come back as [`super::events::Event`]s.

use std::path::PathBuf;

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
