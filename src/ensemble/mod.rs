//! Ensembles of checkpoints and test-time augmentation.
//!
//! An ensemble is a manifest beside its member checkpoints ([`manifest`]);
//! loaded, it is a [`Model`] like a single checkpoint, so every command and
//! pane that takes a checkpoint takes either. Members' outputs are combined
//! by the mean of their logits ([`combine`]); TTA averages a network's logits
//! over the eight dihedral transforms the same way ([`tta`]). The spread of
//! the members' probabilities ([`crate::verdict::uncertainty`]) and the
//! operating point ([`crate::verdict::OperatingPoint`]) are ground-floor
//! data every layer carries.

pub mod combine;
pub mod explain;
pub mod manifest;
pub mod model;
pub mod tta;

pub use manifest::{ensemble_path, is_ensemble_path, EnsembleManifest};
pub use model::{read_meta, write_ensemble, Model};
