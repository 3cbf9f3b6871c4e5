//! Ensembles of checkpoints, test-time augmentation and per-sample
//! uncertainty.
//!
//! An ensemble is a manifest beside its member checkpoints ([`manifest`]);
//! loaded, it is a [`Model`] like a single checkpoint, so every command and
//! pane that takes a checkpoint takes either. Members' outputs are combined
//! by the mean of their logits ([`combine`]); TTA averages a network's logits
//! over the eight dihedral transforms the same way ([`tta`]); the spread of
//! the members' probabilities gives the per-sample uncertainty
//! ([`uncertainty`]); an optional operating point turns the calibrated
//! probability into "refer" or "likely benign" ([`operating_point`]).

pub mod combine;
pub mod explain;
pub mod manifest;
pub mod model;
pub mod operating_point;
pub mod tta;
pub mod uncertainty;

pub use manifest::{ensemble_path, is_ensemble_path, EnsembleManifest};
pub use model::{read_meta, write_ensemble, Model};
pub use operating_point::{Decision, OperatingPoint};
pub use uncertainty::Uncertainty;
