//! Fitting and storing a temperature from held-out predictions.
//!
//! One split: fit on the validation split, report before/after on the test
//! split (never on the data the temperature saw). k folds: the temperature is
//! cross-fitted — each fold's out-of-fold predictions are rescaled with a
//! temperature fitted on the other folds' — so the pooled "after" numbers are
//! honest; the stored temperature is the fit on all out-of-fold predictions.

use std::path::Path;

use serde::Serialize;

use super::scaling::{
    calibration_bootstrap, calibration_report, fit_temperature, CalibrationBootstrap,
    CalibrationConfig, CalibrationReport, TemperatureFit,
};
use crate::error::{Error, Result};
use crate::metrics::BootstrapOptions;
use crate::model::checkpoint::{self, read_meta};
use crate::verdict::EvalRow;

/// Before/after numbers on one set of predictions.
#[derive(Debug, Clone, Serialize)]
pub struct BeforeAfter {
    /// Which predictions: "test", "val" or "out_of_fold".
    pub evaluated_on: String,
    pub before: CalibrationReport,
    pub after: CalibrationReport,
    pub before_ci: CalibrationBootstrap,
    pub after_ci: CalibrationBootstrap,
}

#[derive(Debug, Clone, Serialize)]
pub struct CalibrationOutcome {
    pub fit: TemperatureFit,
    /// Predictions the temperature was fitted on.
    pub fitted_on: String,
    pub fitted_n: usize,
    pub results: Vec<BeforeAfter>,
}

fn logits_labels(rows: &[&EvalRow]) -> (Vec<Vec<f64>>, Vec<usize>) {
    (
        rows.iter().map(|r| r.logits.clone()).collect(),
        rows.iter().map(|r| r.label).collect(),
    )
}

fn err(e: impl std::fmt::Display) -> Error {
    Error::Other(format!("calibration: {e}"))
}

/// Reports at temperature 1 and `after`, with bootstrap intervals.
pub fn before_after(
    rows: &[&EvalRow],
    temperatures: &[f64],
    positive: usize,
    name: &str,
) -> Result<BeforeAfter> {
    let (logits, labels) = logits_labels(rows);
    let cfg = |t: f64| CalibrationConfig {
        temperature: t,
        positive,
        ..CalibrationConfig::default()
    };
    let opts = BootstrapOptions::new(1000, 42);
    // Per-row temperatures (cross-fitting): rescale logits so one config applies.
    let scaled: Vec<Vec<f64>> = logits
        .iter()
        .zip(temperatures)
        .map(|(l, t)| l.iter().map(|v| v / t).collect())
        .collect();
    Ok(BeforeAfter {
        evaluated_on: name.to_string(),
        before: calibration_report(&logits, &labels, &cfg(1.0)).map_err(err)?,
        after: calibration_report(&scaled, &labels, &cfg(1.0)).map_err(err)?,
        before_ci: calibration_bootstrap(&logits, &labels, &cfg(1.0), &opts).map_err(err)?,
        after_ci: calibration_bootstrap(&scaled, &labels, &cfg(1.0), &opts).map_err(err)?,
    })
}

impl BeforeAfter {
    /// One side's report as JSON (`after`: scaled), with the ECE perfectly
    /// calibrated outcomes would score under `ece_if_calibrated`: what the
    /// TUI's calibration pane reads.
    pub fn side_json(&self, after: bool) -> Result<serde_json::Value> {
        let (report, ci) = if after {
            (&self.after, &self.after_ci)
        } else {
            (&self.before, &self.before_ci)
        };
        let mut v = serde_json::to_value(report).map_err(err)?;
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "ece_if_calibrated".into(),
                serde_json::to_value(ci.ece_if_calibrated).map_err(err)?,
            );
        }
        Ok(v)
    }
}

/// Single split: fit on `val`, report on `test` (and on `val`, marked in-sample).
pub fn fit_split(
    val: &[&EvalRow],
    test: &[&EvalRow],
    positive: usize,
) -> Result<CalibrationOutcome> {
    if val.is_empty() {
        return Err(Error::Other(
            "no validation predictions to fit a temperature on".into(),
        ));
    }
    let (logits, labels) = logits_labels(val);
    let fit = fit_temperature(&logits, &labels).map_err(err)?;
    let mut results = Vec::new();
    if !test.is_empty() {
        results.push(before_after(
            test,
            &vec![fit.temperature; test.len()],
            positive,
            "test",
        )?);
    }
    results.push(before_after(
        val,
        &vec![fit.temperature; val.len()],
        positive,
        "val (fitting set)",
    )?);
    Ok(CalibrationOutcome {
        fit,
        fitted_on: "val".into(),
        fitted_n: val.len(),
        results,
    })
}

/// k folds: `folds[i]` holds fold i's out-of-fold predictions.
pub fn fit_cross_validated(folds: &[Vec<EvalRow>], positive: usize) -> Result<CalibrationOutcome> {
    let all: Vec<&EvalRow> = folds.iter().flatten().collect();
    let (logits, labels) = logits_labels(&all);
    let fit = fit_temperature(&logits, &labels).map_err(err)?;
    let mut rows = Vec::new();
    let mut temps = Vec::new();
    for (i, fold) in folds.iter().enumerate() {
        let others: Vec<&EvalRow> = folds
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .flat_map(|(_, f)| f.iter())
            .collect();
        let (l, y) = logits_labels(&others);
        let t = fit_temperature(&l, &y).map_err(err)?.temperature;
        for r in fold {
            rows.push(r);
            temps.push(t);
        }
    }
    Ok(CalibrationOutcome {
        fitted_on: "out_of_fold".into(),
        fitted_n: all.len(),
        results: vec![before_after(
            &rows,
            &temps,
            positive,
            "out_of_fold (cross-fitted)",
        )?],
        fit,
    })
}

/// How an ensemble manifest records a temperature fitted on the pooled
/// out-of-fold predictions of `n` images.
pub fn out_of_fold_label(n: usize) -> String {
    format!("out_of_fold ({n} images, pooled)")
}

/// Stores the fitted temperature of `outcome` in every model at `paths`
/// (a checkpoint's metadata, or an ensemble manifest with where it was
/// fitted) as one update: every file is read and checked first (the error
/// names it; a checkpoint's tensors must match its metadata), then all are
/// written together ([`crate::files::write_all_or_nothing`]), so a refusal
/// leaves every model as it was. A file that already holds the temperature
/// is not rewritten: the predictions cached on it stay valid.
pub fn store_temperatures(
    paths: &[std::path::PathBuf],
    outcome: &CalibrationOutcome,
) -> Result<()> {
    let mut updates = Vec::new();
    for path in paths {
        if let Some(update) = temperature_update(path, outcome)? {
            updates.push(update);
        }
    }
    crate::files::write_all_or_nothing(&updates)
}

/// The file to rewrite, and its new bytes, to store `outcome`'s temperature
/// in the model at `path`; `None` when it holds it already.
fn temperature_update(
    path: &Path,
    outcome: &CalibrationOutcome,
) -> Result<Option<(std::path::PathBuf, Vec<u8>)>> {
    let temperature = outcome.fit.temperature;
    if crate::ensemble::is_ensemble_path(path) {
        let fitted_on = match outcome.fitted_on.as_str() {
            "out_of_fold" => out_of_fold_label(outcome.fitted_n),
            _ => "val (held out from every member)".to_string(),
        };
        let update = crate::ensemble::manifest::temperature_update(path, temperature, &fitted_on)?;
        return Ok(update.map(|text| (path.to_path_buf(), text)));
    }
    let mut meta = read_meta(path)?;
    checkpoint::verify_part(&meta, path, &checkpoint::tensors_path(path))?;
    if meta.temperature == temperature {
        return Ok(None);
    }
    meta.temperature = temperature;
    let file = checkpoint::meta_path(path);
    let text = checkpoint::meta_text(&file, &meta)?;
    Ok(Some((file, text.into_bytes())))
}
