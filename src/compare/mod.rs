//! Agreement between explanations: similarity metrics on heatmaps, and the
//! within-model and cross-model matrices built from them.

pub mod agreement;
pub mod run;
pub mod sanity;
pub mod scores;
pub mod similarity;

pub use similarity::Metric;
