//! Axioms an attribution method promises. Completeness (Sundararajan et
//! al. 2017): the attributions add up to the output's change from the
//! baseline, as IG and DeepLIFT's rescale rule claim. Input invariance
//! (Kindermans et al. 2019): a constant input shift that the model absorbs
//! in its bias should not move the map.

use serde::Serialize;

use super::{rows_of, Image, ModelFn};
use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Completeness {
    /// Σ attributions.
    pub attribution_sum: f64,
    /// Output for the target at the input less at the baseline.
    pub output_delta: f64,
    /// |sum − delta| / |delta|.
    pub relative_gap: f64,
}

/// Completeness of `a` for `target` against `baseline`.
pub fn completeness(
    model: &ModelFn,
    x: &Image,
    baseline: &Image,
    a: &[f64],
    target: usize,
) -> Result<Completeness> {
    let out = rows_of(&model(&x.batch(&[x.data.clone(), baseline.data.clone()]))?)?;
    let output_delta = out[0][target] - out[1][target];
    let attribution_sum: f64 = a.iter().sum();
    Ok(Completeness {
        attribution_sum,
        output_delta,
        relative_gap: (attribution_sum - output_delta).abs() / output_delta.abs(),
    })
}

/// Whether two maps agree elementwise within `atol + rtol·|b|` (numpy's
/// `allclose`, Quantus's input-invariance test).
pub fn all_close(a: &[f64], b: &[f64], rtol: f64, atol: f64) -> bool {
    a.iter()
        .zip(b)
        .all(|(x, y)| (x - y).abs() <= atol + rtol * y.abs())
}
