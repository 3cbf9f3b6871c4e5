//! Calibration: the calibration measures ([`measures`]), the math of
//! temperature scaling ([`scaling`]), fitting a checkpoint's temperature from
//! its held-out predictions ([`fit`]), and the ECE a perfectly calibrated model would
//! show on the same predictions ([`consistency`]).

pub mod consistency;
pub mod fit;
pub mod measures;
pub mod scaling;
pub mod small_sample;

pub use consistency::{ece_consistency, EceConsistency};
pub use measures::*;
pub use scaling::*;
