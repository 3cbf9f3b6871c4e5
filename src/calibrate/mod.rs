//! Calibration: the math of temperature scaling and calibration metrics
//! ([`scaling`]), and fitting a checkpoint's temperature from its held-out
//! predictions ([`fit`]).

pub mod fit;
pub mod scaling;

pub use scaling::*;
