//! The calibrate job: fit one temperature (on a validation split, or
//! cross-fitted on out-of-fold predictions), report calibration before and
//! after, and store the temperature in the checkpoints that use it.

use std::path::PathBuf;

use super::JobContext;
use crate::calibrate::fit::{
    fit_cross_validated, fit_split, store_temperatures, CalibrationOutcome,
};
use crate::error::Result;
use crate::verdict::EvalRow;

/// Which predictions the temperature is fitted on.
pub enum CalibrationData<'a> {
    /// Fit on `val`, report on `test` (one split).
    Split {
        val: Vec<&'a EvalRow>,
        test: Vec<&'a EvalRow>,
    },
    /// Cross-fitted on the out-of-fold predictions of a k-fold run.
    CrossValidated { folds: &'a [Vec<EvalRow>] },
}

pub struct CalibrateJob<'a> {
    pub data: CalibrationData<'a>,
    pub positive: usize,
    /// Checkpoints whose metadata receives the temperature (empty: none, e.g.
    /// a user's given checkpoint that must not be rewritten).
    pub store_in: Vec<PathBuf>,
}

pub fn calibrate(ctx: &mut JobContext, job: CalibrateJob) -> Result<CalibrationOutcome> {
    ctx.cancel.check()?;
    let outcome = match job.data {
        CalibrationData::Split { val, test } => fit_split(&val, &test, job.positive)?,
        CalibrationData::CrossValidated { folds } => fit_cross_validated(folds, job.positive)?,
    };
    // The fit is done: storing it is one short step, not worth interrupting.
    store_temperatures(&job.store_in, &outcome)?;
    Ok(outcome)
}
