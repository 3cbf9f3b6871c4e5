//! "Decisions": what the out-of-fold predictions support at this sample size.
//! Calibration as a statement with its evidence (Spiegelhalter's test, the
//! recalibration slope and intercept, adaptive, debiased and class-wise ECE,
//! each with a bootstrap interval), and the decision curve of referring by
//! the calibrated melanoma probability against referring everyone or no one,
//! and how the conformal prediction sets cover ([`super::conformal`]).

use serde::Serialize;

use super::conformal::ConformalEvaluation;
use super::decision_curve::{decision_curve, default_thresholds, DecisionCurve};
use crate::calibrate::small_sample::{
    average_calibration_error, calibration_intercept, calibration_slope, classwise_ece,
    debiased_ece, recalibration, spiegelhalter, top_label, Recalibration, Spiegelhalter,
};
use crate::calibrate::{adaptive_ece, DEFAULT_N_BINS};
use crate::error::{Error, Result};
use crate::metrics::{bootstrap_statistic, BootstrapOptions, Interval};

/// Significance level of the calibration statement.
pub const CALIBRATION_TEST_LEVEL: f64 = 0.05;

/// Calibration of the positive-class probability, with intervals.
#[derive(Debug, Clone, Serialize)]
pub struct CalibrationEvidence {
    pub n: usize,
    pub spiegelhalter: Spiegelhalter,
    pub recalibration: Recalibration,
    pub slope: Interval,
    pub intercept: Interval,
    /// Equal-mass (15-bin) ECE of the top-label confidences.
    pub adaptive_ece: Interval,
    /// netcal's ACE: equal-width bins of the melanoma probability, each
    /// non-empty bin's gap weighted equally.
    pub average_ce: Interval,
    /// Kumar et al.'s debiased ℓ2 calibration error (15 equal-mass bins).
    pub debiased_ece: Interval,
    /// Mean over both classes of their 15-bin ECE.
    pub classwise_ece: Interval,
    /// Consistent with perfect calibration: Spiegelhalter's p-value at or
    /// above [`CALIBRATION_TEST_LEVEL`] and 1 inside the slope's interval
    /// and 0 inside the intercept's.
    pub consistent: bool,
    /// One sentence with the evidence, for report.md and the TUI.
    pub statement: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Decisions {
    pub calibration: CalibrationEvidence,
    pub decision_curve: DecisionCurve,
    /// The operating point's threshold, marked on the curve.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operating_threshold: Option<f64>,
    /// Cross-conformal prediction sets: coverage, sizes and the
    /// repeated-split experiment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conformal: Option<ConformalEvaluation>,
}

fn err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Other(format!("decisions: {what}: {e}"))
}

/// Percentile interval of `stat` over resampled images (NaN resamples are
/// skipped by the bootstrap).
fn interval(
    p: &[f64],
    y: &[usize],
    point: f64,
    opts: &BootstrapOptions,
    stat: impl Fn(&[f64], &[usize]) -> f64,
) -> Result<Interval> {
    let (mut bp, mut by) = (Vec::new(), Vec::new());
    bootstrap_statistic(
        p.len(),
        point,
        |idx| {
            bp.clear();
            by.clear();
            bp.extend(idx.iter().map(|&i| p[i]));
            by.extend(idx.iter().map(|&i| y[i]));
            stat(&bp, &by)
        },
        opts,
    )
    .map_err(|e| err("bootstrap", e))
}

/// The evidence for `p` (calibrated positive-class probabilities) and `y`
/// (1 = positive class).
pub fn calibration_evidence(
    p: &[f64],
    y: &[usize],
    opts: &BootstrapOptions,
) -> Result<CalibrationEvidence> {
    let bins = DEFAULT_N_BINS;
    let sp = spiegelhalter(p, y).map_err(|e| err("Spiegelhalter", e))?;
    let rc = recalibration(p, y).map_err(|e| err("recalibration", e))?;
    let ace = |p: &[f64], y: &[usize]| {
        let (c, k) = top_label(p, y);
        adaptive_ece(&c, &k, bins).unwrap_or(f64::NAN)
    };
    let debiased = |p: &[f64], y: &[usize]| debiased_ece(p, y, bins).map_or(f64::NAN, |d| d.1);
    let classwise = |p: &[f64], y: &[usize]| classwise_ece(p, y, bins).unwrap_or(f64::NAN);
    let average =
        |p: &[f64], y: &[usize]| average_calibration_error(p, y, bins).unwrap_or(f64::NAN);
    // One fit per resample and statistic (recalibration() would fit both).
    let slope = |p: &[f64], y: &[usize]| calibration_slope(p, y).map_or(f64::NAN, |s| s.0);
    let intercept = |p: &[f64], y: &[usize]| calibration_intercept(p, y).map_or(f64::NAN, |i| i.0);
    let slope_ci = interval(p, y, rc.slope, opts, slope)?;
    let intercept_ci = interval(p, y, rc.intercept, opts, intercept)?;
    let consistent = sp.p_value >= CALIBRATION_TEST_LEVEL
        && slope_ci.low <= 1.0
        && 1.0 <= slope_ci.high
        && intercept_ci.low <= 0.0
        && 0.0 <= intercept_ci.high;
    let statement = format!(
        "{} with perfect calibration (Spiegelhalter Z = {:.2}, p = {:.3}; slope {:.2} [{:.2}, {:.2}]; intercept {:+.2} [{:+.2}, {:+.2}]; n = {})",
        if consistent { "consistent" } else { "not consistent" },
        sp.z,
        sp.p_value,
        rc.slope,
        slope_ci.low,
        slope_ci.high,
        rc.intercept,
        intercept_ci.low,
        intercept_ci.high,
        p.len()
    );
    Ok(CalibrationEvidence {
        n: p.len(),
        adaptive_ece: interval(p, y, ace(p, y), opts, ace)?,
        average_ce: interval(p, y, average(p, y), opts, average)?,
        debiased_ece: interval(p, y, debiased(p, y), opts, debiased)?,
        classwise_ece: interval(p, y, classwise(p, y), opts, classwise)?,
        spiegelhalter: sp,
        recalibration: rc,
        slope: slope_ci,
        intercept: intercept_ci,
        consistent,
        statement,
    })
}

/// Calibration evidence and the decision curve (1–60 %) of `p` against `y`.
pub fn decisions(
    p: &[f64],
    y: &[usize],
    operating_threshold: Option<f64>,
    opts: &BootstrapOptions,
) -> Result<Decisions> {
    Ok(Decisions {
        calibration: calibration_evidence(p, y, opts)?,
        decision_curve: decision_curve(p, y, &default_thresholds(), Some(opts))
            .map_err(|e| err("decision curve", e))?,
        operating_threshold,
        conformal: None,
    })
}
