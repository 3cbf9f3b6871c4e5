//! Calibration: the math of temperature scaling and calibration metrics
//! ([`scaling`]), and fitting a checkpoint's temperature from its held-out
//! predictions ([`fit`]), and the ECE a perfectly calibrated model would
//! show on the same predictions ([`consistency`]).

pub mod consistency;
pub mod fit;
pub mod scaling;

pub use consistency::{ece_consistency, EceConsistency};
pub use scaling::*;
