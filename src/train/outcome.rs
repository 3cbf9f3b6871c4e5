//! What a training run returns: per-split outcomes (checkpoint, history,
//! held-out predictions) and, for k folds, the pooled out-of-fold summary.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
use crate::error::{Error, Result};
use crate::evaluate::metrics;
use crate::metrics::{
    bootstrap_ci, summarize_folds, BinaryMetrics, BootstrapOptions, FoldSummary, Interval,
    DEFAULT_THRESHOLD,
};
use crate::progress::EpochSummary;
use crate::verdict::EvalRow;

/// Result of training on one split.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SplitOutcome {
    pub checkpoint: PathBuf,
    pub fold: Option<(usize, usize)>,
    /// The epoch whose weights were kept; under weight averaging the last
    /// epoch of the mean.
    pub best_epoch: usize,
    /// Under weight averaging (`swa_epochs`), the first epoch in the mean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub averaged_from: Option<usize>,
    pub history: Vec<EpochSummary>,
    pub val: Vec<EvalRow>,
    pub test: Vec<EvalRow>,
    /// With `[train] tta` on, `val` and `test` are TTA predictions and these
    /// are the same test images without it (TTA measured on and off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_without_tta: Option<Vec<EvalRow>>,
    pub test_metrics: Option<BinaryMetrics>,
}

/// Which epochs a checkpoint holds, for people: "best epoch 7", or "mean of
/// epochs 6-15" for a weight-averaged run.
pub fn checkpoint_epochs(best_epoch: usize, averaged_from: Option<usize>) -> String {
    match averaged_from {
        Some(first) if first < best_epoch => format!("mean of epochs {first}-{best_epoch}"),
        Some(_) => format!("epoch {best_epoch}"),
        None => format!("best epoch {best_epoch}"),
    }
}

impl SplitOutcome {
    /// [`checkpoint_epochs`] of this split's checkpoint.
    pub fn checkpoint_epochs(&self) -> String {
        checkpoint_epochs(self.best_epoch, self.averaged_from)
    }
}

/// Pooled out-of-fold results of k-fold training.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CrossValidation {
    pub folds: usize,
    pub per_fold: Vec<BinaryMetrics>,
    pub summary: FoldSummary,
    /// Every image predicted once, by the model that did not train on it.
    pub out_of_fold: Vec<EvalRow>,
    pub pooled: BinaryMetrics,
    pub pooled_auroc_ci: Interval,
    pub pooled_balanced_accuracy_ci: Interval,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunOutcome {
    pub name: String,
    pub config: TrainConfig,
    pub splits: Vec<SplitOutcome>,
    pub cross_validation: Option<CrossValidation>,
    /// What the run could not measure (a split with no validation or no
    /// test image), as said on stderr while it ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Pools the folds' test predictions (each image once, from the model that
/// did not train on it) with bootstrap intervals.
pub(super) fn cross_validate(
    splits: &[SplitOutcome],
    positive: usize,
    seed: u64,
) -> Result<CrossValidation> {
    let per_fold: Vec<BinaryMetrics> = splits.iter().filter_map(|s| s.test_metrics).collect();
    let mut oof: Vec<EvalRow> = splits.iter().flat_map(|s| s.test.clone()).collect();
    oof.sort_by(|a, b| a.id.cmp(&b.id));
    let pooled = metrics(&oof, positive, 1.0)?;
    let labels: Vec<usize> = oof.iter().map(|r| r.label).collect();
    let scores: Vec<f64> = oof.iter().map(|r| r.probabilities(1.0)[positive]).collect();
    let opts = BootstrapOptions::new(2000, seed);
    let ci = |f: fn(&BinaryMetrics) -> f64| {
        bootstrap_ci(&labels, &scores, positive, DEFAULT_THRESHOLD, f, &opts)
            .map_err(|e| Error::Other(format!("bootstrap: {e}")))
    };
    Ok(CrossValidation {
        folds: splits.len(),
        summary: summarize_folds(&per_fold),
        per_fold,
        pooled_auroc_ci: ci(|m| m.auroc)?,
        pooled_balanced_accuracy_ci: ci(|m| m.balanced_accuracy)?,
        out_of_fold: oof,
        pooled,
    })
}
