//! Stochastic weight averaging (`[train] swa_epochs = N`): the run's
//! checkpoint is the mean of its weights at the end of its last N epochs,
//! not the epoch that scored best on the validation split.
//!
//! Why: in cross-validation the validation split of a fold is ~20 images,
//! and the "best" epoch it picks ranged from 2 to 15 of 15 across the
//! repetitions measured here, so which weights a seed ships was mostly
//! validation noise. The average of the late epochs does not depend on it.
//! With frozen batch-norm statistics (the default) the averaged network is
//! exact: there are no batch statistics to recompute.
//!
//! The running mean travels with the `-last` resume point (inside its
//! optimiser-state file, as `swa.<variable>`), so an interrupted run resumes
//! with the same average it would have reached uninterrupted.

use tch::Tensor;

use crate::error::{Error, Result};
use crate::model::Classifier;

/// Prefix of the running mean's tensors in the `-last` optimiser-state file.
const PREFIX: &str = "swa.";

/// The running mean of a model's variables over the epochs of the window.
pub(super) struct WeightAverage {
    /// First epoch (1-based) whose weights enter the mean.
    first_epoch: usize,
    /// Epochs averaged so far.
    count: usize,
    /// Mean of every variable (weights and batch-norm buffers), by name.
    mean: Vec<(String, Tensor)>,
}

impl WeightAverage {
    /// The averaging window of `epochs` training epochs, the last
    /// `swa_epochs` of them; `None` when averaging is off.
    pub(super) fn new(epochs: usize, swa_epochs: usize) -> Option<Self> {
        (swa_epochs > 0).then(|| WeightAverage {
            first_epoch: epochs.saturating_sub(swa_epochs) + 1,
            count: 0,
            mean: Vec::new(),
        })
    }

    /// Whether the weights after `epoch` enter the mean.
    pub(super) fn covers(&self, epoch: usize) -> bool {
        epoch >= self.first_epoch
    }

    /// First epoch (1-based) of the window.
    pub(super) fn first_epoch(&self) -> usize {
        self.first_epoch
    }

    /// Epochs averaged so far.
    pub(super) fn count(&self) -> usize {
        self.count
    }

    /// Adds the model's current weights to the mean.
    pub(super) fn add(&mut self, model: &Classifier) -> Result<()> {
        tch::no_grad(|| -> Result<()> {
            let vars = sorted_variables(model);
            if self.count == 0 {
                self.mean = vars.iter().map(|(n, t)| (n.clone(), t.copy())).collect();
            } else {
                let k = (self.count + 1) as f64;
                for ((name, mean), (other, w)) in self.mean.iter_mut().zip(&vars) {
                    debug_assert_eq!(name, other);
                    // mean += (w - mean) / (k): the running mean, in place.
                    let step = (w - &*mean) / k;
                    let _ = mean.f_add_(&step)?;
                }
            }
            Ok(())
        })?;
        self.count += 1;
        Ok(())
    }

    /// Runs `f` with the mean in place of the model's weights, then puts
    /// the training weights back (the optimiser keeps training those).
    pub(super) fn with_mean<T>(
        &self,
        model: &mut Classifier,
        f: impl FnOnce(&mut Classifier) -> Result<T>,
    ) -> Result<T> {
        let saved: Vec<Tensor> = tch::no_grad(|| -> Result<Vec<Tensor>> {
            let mut saved = Vec::new();
            for ((_, mut w), (_, mean)) in sorted_variables(model).into_iter().zip(&self.mean) {
                saved.push(w.copy());
                w.f_copy_(mean)?;
            }
            Ok(saved)
        })?;
        let out = f(model);
        tch::no_grad(|| -> Result<()> {
            for ((_, mut w), old) in sorted_variables(model).into_iter().zip(&saved) {
                w.f_copy_(old)?;
            }
            Ok(())
        })?;
        out
    }

    /// Host copies of the mean, named for the `-last` optimiser-state file.
    pub(super) fn state(&self) -> Vec<(String, Tensor)> {
        let tensors: Vec<Tensor> = self.mean.iter().map(|(_, t)| t.shallow_clone()).collect();
        self.mean
            .iter()
            .zip(crate::model::checkpoint::to_host(&tensors))
            .map(|((n, _), t)| (format!("{PREFIX}{n}"), t))
            .collect()
    }

    /// Restores the mean of a run resumed after `epochs_done` epochs from
    /// its `-last` optimiser-state file. Every variable must be there: a
    /// mean that is partly missing would silently restart the average.
    pub(super) fn restore(
        &mut self,
        model: &Classifier,
        state: &[(String, Tensor)],
        epochs_done: usize,
    ) -> Result<()> {
        let count = (epochs_done + 1).saturating_sub(self.first_epoch);
        if count == 0 {
            return Ok(());
        }
        let device = model.vs.device();
        let saved: std::collections::HashMap<&str, &Tensor> = state
            .iter()
            .filter_map(|(k, t)| k.strip_prefix(PREFIX).map(|n| (n, t)))
            .collect();
        let mut mean = Vec::new();
        for (name, w) in sorted_variables(model) {
            let t = saved.get(name.as_str()).ok_or_else(|| {
                    Error::Other(format!(
                        "the saved weight average lacks '{name}' ({count} epoch(s) averaged before the interruption)"
                    ))
                })?;
            if t.size() != w.size() {
                return Err(Error::Other(format!(
                    "the saved weight average of '{name}' has shape {:?}, the model {:?}",
                    t.size(),
                    w.size()
                )));
            }
            mean.push((name, t.to_device(device).to_kind(w.kind())));
        }
        self.mean = mean;
        self.count = count;
        Ok(())
    }
}

/// The model's variables sorted by name, so means and weights pair up.
fn sorted_variables(model: &Classifier) -> Vec<(String, Tensor)> {
    let mut vars: Vec<(String, Tensor)> = model.vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}
