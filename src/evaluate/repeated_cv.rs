//! Repeated cross-validation: single models against their ensemble, nested
//! so that no image's evaluated prediction comes from a model or a
//! temperature fitted on it.
//!
//! Why: one 5-fold run on 170 images says little about seed-to-seed noise,
//! and an ensemble's accuracy cannot be read off the models that make it up.
//! R repetitions of k-fold with different seeds give every image R
//! out-of-fold predictions, each from a model that never saw it:
//!
//! * **Single models**: repetition r is one ordinary cross-validation. Its
//!   temperature is cross-fitted: fold f's predictions are scaled with the
//!   temperature fitted on the other folds' out-of-fold logits. Metrics per
//!   repetition, then mean ± sd across repetitions.
//! * **Ensemble**: the mean of an image's R uncalibrated probabilities is the
//!   out-of-fold prediction of an ensemble of R models none of which saw it,
//!   at no extra training cost. It is a *seed ensemble* (one model per
//!   repetition, members trained on different 4/5ths of the data), not the
//!   deployed ensemble of one run's k fold models, whose members each saw
//!   most images and which therefore cannot be scored out of fold without
//!   nesting another cross-validation; the seed ensemble's numbers are the
//!   honest estimate of what averaging R models buys. Its one temperature is
//!   cross-fitted on the first repetition's folds (applied to fold f: fitted
//!   on the ensemble's log-probabilities of every other fold).
//!
//! Every metric is computed on the calibrated probabilities: AUROC, balanced
//! accuracy (decision at 0.5), ECE (15 equal-width bins of the top-label
//! confidence), Brier (positive class), NLL and AURC (top-label confidence,
//! correct = arg-max is the label). Intervals are percentile bootstraps over
//! images (single models: of the mean over repetitions). The operating point
//! is chosen on the ensemble's calibrated out-of-fold probabilities, and also
//! cross-fitted (see [`crate::operating_point`]).

use std::collections::HashMap;

use serde::Serialize;

use super::conformal::{conformal_evaluation, OutOfFold};
use super::decisions::{decisions, Decisions};
use crate::calibrate as cal;
use crate::calibrate::{ece_consistency, EceConsistency};
use crate::ensemble::combine::{log_mean_probabilities_f64, log_softmax};
use crate::error::{Error, Result};
use crate::evaluate::operating_point::{operating_point_report_grouped, OperatingPointReport};
use crate::evaluate::selective::{risk_coverage, RiskCoverage};
use crate::metrics::{
    auroc, binary_metrics, mean_std, BootstrapOptions, Interval, MeanStd, DEFAULT_THRESHOLD,
};
use crate::verdict::EvalRow;

/// Equal-width bins of the expected calibration error reported here.
pub const ECE_BINS: usize = 15;

/// One repetition of k-fold cross-validation: `folds[f]` holds the
/// out-of-fold rows of fold f (predicted by the model that left fold f out).
#[derive(Debug, Clone)]
pub struct Repetition {
    pub seed: u64,
    /// Side of the square input (pixels) its models were trained and
    /// evaluated at.
    pub input_size: i64,
    pub folds: Vec<Vec<EvalRow>>,
}

/// What the evaluation needs besides the predictions.
#[derive(Debug, Clone, Copy)]
pub struct RepeatedCvOptions {
    pub positive: usize,
    /// Melanoma sensitivity the operating point is chosen for, in (0, 1].
    pub target_sensitivity: f64,
    pub bootstrap: BootstrapOptions,
    /// How the out-of-fold conformal sets are calibrated.
    pub conformal: crate::verdict::conformal::ConformalSettings,
}

/// The metrics of one set of calibrated out-of-fold predictions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MetricSet {
    #[serde(with = "crate::metrics::nan_as_null")]
    pub auroc: f64,
    pub balanced_accuracy: f64,
    pub ece: f64,
    pub brier: f64,
    pub nll: f64,
    pub aurc: f64,
}

/// Mean ± sample sd of each metric across repetitions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MetricSpread {
    pub auroc: MeanStd,
    pub balanced_accuracy: MeanStd,
    pub ece: MeanStd,
    pub brier: MeanStd,
    pub nll: MeanStd,
    pub aurc: MeanStd,
}

/// A bootstrap interval per metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MetricIntervals {
    pub auroc: Interval,
    pub balanced_accuracy: Interval,
    pub ece: Interval,
    pub brier: Interval,
    pub nll: Interval,
    pub aurc: Interval,
}

/// Single models: one per repetition and image.
#[derive(Debug, Clone, Serialize)]
pub struct SingleModels {
    pub per_repetition: Vec<MetricSet>,
    pub spread: MetricSpread,
    /// Intervals of the mean over repetitions (images resampled).
    pub pooled: MetricIntervals,
    /// `[repetition][fold]`: the cross-fitted temperature applied to the fold.
    pub temperatures: Vec<Vec<f64>>,
}

/// The seed ensemble's out-of-fold evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct EnsembleEvaluation {
    /// Models averaged per image (= repetitions).
    pub members: usize,
    /// How members are combined.
    pub combine: String,
    /// Before the ensemble's temperature.
    pub uncalibrated: MetricSet,
    /// After the cross-fitted temperature (the numbers reported).
    pub calibrated: MetricSet,
    pub intervals: MetricIntervals,
    /// The calibrated ECE next to what perfectly calibrated outcomes score on
    /// the same confidences (`opts.bootstrap` resamples).
    pub ece_if_calibrated: EceConsistency,
    /// Per fold of the first repetition: the temperature applied to it.
    pub temperatures: Vec<f64>,
    pub risk_coverage: RiskCoverage,
    pub operating_point: OperatingPointReport,
    /// Calibration evidence and the decision curve of the calibrated
    /// melanoma probability.
    pub decisions: Decisions,
}

/// Everything the repeated cross-validation reports.
#[derive(Debug, Clone, Serialize)]
pub struct RepeatedCvReport {
    pub repetitions: usize,
    pub folds: usize,
    pub images: usize,
    pub seeds: Vec<u64>,
    /// Per repetition: its input size (pixels); repetitions of one seed at
    /// several sizes make a mixed-resolution ensemble.
    pub input_sizes: Vec<i64>,
    pub single: SingleModels,
    pub ensemble: EnsembleEvaluation,
    /// Mean over image and repetition pairs of `|p_a − p_b|` of single
    /// models (calibrated melanoma probability); `None` below 2 repetitions.
    pub seed_abs_diff_single: Option<f64>,
    /// The same between the ensembles of two halves of the repetitions that
    /// share no seed (half of the seeds each, at every input size); `None`
    /// unless each half has two members or more.
    pub seed_abs_diff_ensemble: Option<f64>,
}

/// Where one image's evaluated predictions came from, for checking the
/// nesting (see the module docs). Ids are sample ids.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageProvenance {
    pub id: String,
    /// Per repetition: the fold whose model predicted the image.
    pub model_folds: Vec<usize>,
    /// Per repetition: the images the single-model temperature applied to it
    /// was fitted on.
    pub temperature_fitted_on: Vec<Vec<String>>,
    /// The images the ensemble temperature applied to it was fitted on.
    pub ensemble_temperature_fitted_on: Vec<String>,
}

/// The report and the provenance of every image (in id order).
#[derive(Debug, Clone)]
pub struct RepeatedCv {
    pub report: RepeatedCvReport,
    pub provenance: Vec<ImageProvenance>,
    /// The calibrated ensemble's out-of-fold probabilities (all K classes)
    /// and the labels, in provenance (id) order: what the K-class and
    /// subgroup figures are computed from.
    pub ensemble_probabilities: Vec<Vec<f64>>,
    pub labels: Vec<usize>,
}

/// Log-probabilities of one repetition's images (id order) after its
/// cross-fitted temperature, with where each came from.
struct Calibrated {
    log_probs: Vec<Vec<f64>>,
    temperatures: Vec<f64>,
    /// Fold of each image.
    fold_of: Vec<usize>,
    /// Per image: the ids its temperature was fitted on.
    fitted_on: Vec<Vec<String>>,
}

/// The repetitions of the first and of the second half of the distinct seeds
/// (a seed trained at several input sizes stays in one half, so the two
/// ensembles share no seed); `None` unless each half has two members or more.
pub fn seed_halves(reps: &[Repetition]) -> Option<(Vec<usize>, Vec<usize>)> {
    let mut seeds: Vec<u64> = Vec::new();
    for r in reps {
        if !seeds.contains(&r.seed) {
            seeds.push(r.seed);
        }
    }
    let half = seeds.len() / 2;
    let members = |of: &[u64]| -> Vec<usize> {
        (0..reps.len())
            .filter(|&i| of.contains(&reps[i].seed))
            .collect()
    };
    let a = members(&seeds[..half]);
    let b = members(&seeds[half..2 * half]);
    (a.len() >= 2 && b.len() >= 2).then_some((a, b))
}

/// Cross-fitted temperature scaling of `logits` (one row per image) whose
/// images fall in `fold_of[i]` of `k` folds: fold f is scaled with the
/// temperature fitted on every other fold.
fn cross_fit(
    logits: &[Vec<f64>],
    labels: &[usize],
    ids: &[String],
    fold_of: &[usize],
    k: usize,
) -> Result<Calibrated> {
    let mut log_probs = vec![Vec::new(); logits.len()];
    let mut fitted_on = vec![Vec::new(); logits.len()];
    let mut temperatures = Vec::with_capacity(k);
    for f in 0..k {
        let train: Vec<usize> = (0..logits.len()).filter(|&i| fold_of[i] != f).collect();
        let l: Vec<Vec<f64>> = train.iter().map(|&i| logits[i].clone()).collect();
        let y: Vec<usize> = train.iter().map(|&i| labels[i]).collect();
        let t = cal::fit_temperature(&l, &y)
            .map_err(|e| Error::Other(format!("temperature of fold {f}: {e}")))?
            .temperature;
        let names: Vec<String> = train.iter().map(|&i| ids[i].clone()).collect();
        for i in (0..logits.len()).filter(|&i| fold_of[i] == f) {
            log_probs[i] = log_softmax(&logits[i], t);
            fitted_on[i] = names.clone();
        }
        temperatures.push(t);
    }
    Ok(Calibrated {
        log_probs,
        temperatures,
        fold_of: fold_of.to_vec(),
        fitted_on,
    })
}

/// The metrics of `log_probs` (rows of log-probabilities) against `labels`.
pub fn metric_set(log_probs: &[Vec<f64>], labels: &[usize], positive: usize) -> Result<MetricSet> {
    let err = |e: &dyn std::fmt::Display| Error::Other(format!("evaluation: {e}"));
    let probs: Vec<Vec<f64>> = log_probs
        .iter()
        .map(|r| r.iter().map(|v| v.exp().clamp(0.0, 1.0)).collect())
        .collect();
    let pos: Vec<f64> = probs
        .iter()
        .map(|r| r.get(positive).copied().unwrap_or(f64::NAN))
        .collect();
    let (confidence, correct) =
        cal::confidences_and_correct(&probs, labels).map_err(|e| err(&e))?;
    let nll = log_probs
        .iter()
        .zip(labels)
        .map(|(r, &y)| -r[y])
        .sum::<f64>()
        / labels.len() as f64;
    Ok(MetricSet {
        auroc: auroc(labels, &pos, positive).map_err(|e| err(&e))?,
        balanced_accuracy: binary_metrics(labels, &pos, positive, DEFAULT_THRESHOLD)
            .map_err(|e| err(&e))?
            .balanced_accuracy,
        ece: cal::ece(&confidence, &correct, ECE_BINS).map_err(|e| err(&e))?,
        brier: cal::brier_binary(&pos, labels, positive).map_err(|e| err(&e))?,
        nll,
        aurc: risk_coverage(&confidence, &correct)
            .map_err(|e| err(&e))?
            .aurc,
    })
}

/// Percentile-bootstrap intervals (images resampled) of each metric of
/// `stat(indices)`; `point` holds the full-sample values. All metrics share
/// the seed, so their resamples are paired.
fn intervals(
    (n, groups): (usize, Option<&[usize]>),
    point: &MetricSet,
    opts: &BootstrapOptions,
    stat: impl Fn(&[usize]) -> Option<MetricSet>,
) -> Result<MetricIntervals> {
    let one = |pick: fn(&MetricSet) -> f64| {
        crate::evaluate::group_bootstrap::bootstrap_by_group(
            n,
            groups,
            pick(point),
            |idx| stat(idx).map_or(f64::NAN, |m| pick(&m)),
            opts,
        )
        .map_err(|e| Error::Other(format!("bootstrap: {e}")))
    };
    Ok(MetricIntervals {
        auroc: one(|m| m.auroc)?,
        balanced_accuracy: one(|m| m.balanced_accuracy)?,
        ece: one(|m| m.ece)?,
        brier: one(|m| m.brier)?,
        nll: one(|m| m.nll)?,
        aurc: one(|m| m.aurc)?,
    })
}

/// Rows of `idx` (a bootstrap resample).
fn pick<T: Clone>(v: &[T], idx: &[usize]) -> Vec<T> {
    idx.iter().map(|&i| v[i].clone()).collect()
}

fn spread(sets: &[MetricSet]) -> MetricSpread {
    let ms = |f: fn(&MetricSet) -> f64| mean_std(&sets.iter().map(f).collect::<Vec<_>>());
    MetricSpread {
        auroc: ms(|m| m.auroc),
        balanced_accuracy: ms(|m| m.balanced_accuracy),
        ece: ms(|m| m.ece),
        brier: ms(|m| m.brier),
        nll: ms(|m| m.nll),
        aurc: ms(|m| m.aurc),
    }
}

fn mean_of(sets: &[MetricSet]) -> MetricSet {
    let m = |f: fn(&MetricSet) -> f64| sets.iter().map(f).sum::<f64>() / sets.len() as f64;
    MetricSet {
        auroc: m(|s| s.auroc),
        balanced_accuracy: m(|s| s.balanced_accuracy),
        ece: m(|s| s.ece),
        brier: m(|s| s.brier),
        nll: m(|s| s.nll),
        aurc: m(|s| s.aurc),
    }
}

/// Ensemble log-probabilities per image: the fold ensembles' rule, `ln` of
/// the mean of the members' uncalibrated probabilities
/// ([`log_mean_probabilities_f64`]).
fn combine(members: &[&Vec<Vec<f64>>]) -> Vec<Vec<f64>> {
    (0..members[0].len())
        .map(|i| {
            let rows: Vec<Vec<f64>> = members.iter().map(|m| m[i].clone()).collect();
            log_mean_probabilities_f64(&rows)
        })
        .collect()
}

/// The repetitions' rows re-indexed by image: `logits[r][i]` for the images
/// of the first repetition in id order, and `fold[r][i]`. Refuses
/// repetitions that do not predict every image exactly once, or disagree on
/// a label.
#[allow(clippy::type_complexity)]
fn align(
    reps: &[Repetition],
) -> Result<(Vec<String>, Vec<usize>, Vec<Vec<Vec<f64>>>, Vec<Vec<usize>>)> {
    let first = reps
        .first()
        .ok_or_else(|| Error::Other("repeated cross-validation: no repetition".into()))?;
    let mut rows: Vec<(&String, usize)> = first
        .folds
        .iter()
        .flatten()
        .map(|r| (&r.id, r.label))
        .collect();
    rows.sort();
    let ids: Vec<String> = rows.iter().map(|(id, _)| (*id).clone()).collect();
    let labels: Vec<usize> = rows.iter().map(|(_, l)| *l).collect();
    let index: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    if index.len() != ids.len() {
        return Err(Error::Other(
            "repeated cross-validation: an image is predicted twice in repetition 0".into(),
        ));
    }
    // Every row must have as many logits as the first (the ensemble averages
    // them class by class).
    let classes = first
        .folds
        .iter()
        .flatten()
        .next()
        .map_or(0, |r| r.logits.len());
    let mut logits = Vec::with_capacity(reps.len());
    let mut folds = Vec::with_capacity(reps.len());
    for (r, rep) in reps.iter().enumerate() {
        let mut l: Vec<Option<Vec<f64>>> = vec![None; ids.len()];
        let mut f = vec![0; ids.len()];
        for (k, fold) in rep.folds.iter().enumerate() {
            for row in fold {
                let bad = |what: &str| {
                    Error::Other(format!(
                        "repeated cross-validation: repetition {r} (seed {}) {what} image {}",
                        rep.seed, row.id
                    ))
                };
                let &i = index
                    .get(row.id.as_str())
                    .ok_or_else(|| bad("has an unknown"))?;
                if l[i].is_some() {
                    return Err(bad("predicts twice the"));
                }
                if row.label != labels[i] {
                    return Err(bad("gives another label to the"));
                }
                if row.logits.len() != classes {
                    return Err(bad("has another number of classes for the"));
                }
                l[i] = Some(row.logits.clone());
                f[i] = k;
            }
        }
        let l: Option<Vec<Vec<f64>>> = l.into_iter().collect();
        let l = l.ok_or_else(|| {
            Error::Other(format!(
                "repeated cross-validation: repetition {r} (seed {}) misses images of repetition 0",
                rep.seed
            ))
        })?;
        logits.push(l);
        folds.push(f);
    }
    Ok((ids, labels, logits, folds))
}

/// Evaluates R repetitions of k-fold cross-validation (see the module docs).
/// Errors when the repetitions do not cover the same images once each, a
/// repetition has fewer than 2 folds, a fold's complement cannot fit a
/// temperature, or the ensemble's operating point cannot be chosen (no
/// positive image outside some fold).
pub fn evaluate(reps: &[Repetition], opts: &RepeatedCvOptions) -> Result<RepeatedCv> {
    evaluate_grouped(reps, opts, None)
}

/// As [`evaluate`], the headline intervals resampling patient/lesion groups
/// (`group_of`: image id -> group) instead of images, where the data set
/// has them: images of one lesion are not independent draws.
pub fn evaluate_grouped(
    reps: &[Repetition],
    opts: &RepeatedCvOptions,
    group_of: Option<&std::collections::HashMap<String, usize>>,
) -> Result<RepeatedCv> {
    let (ids, labels, logits, folds) = align(reps)?;
    let positive = opts.positive;
    let n = ids.len();
    let groups: Option<Vec<usize>> = group_of.map(|g| {
        ids.iter()
            .map(|id| g.get(id).copied().unwrap_or(usize::MAX))
            .collect()
    });
    let groups = groups.as_deref();
    let calibrated = calibrate_repetitions(reps, &logits, &labels, &ids, &folds)?;
    let single = single_models(&calibrated, &labels, n, opts, groups)?;

    // The ensemble: members' uncalibrated probabilities averaged, then one
    // temperature cross-fitted on the first repetition's folds.
    let uncal: Vec<Vec<Vec<f64>>> = logits
        .iter()
        .map(|l| l.iter().map(|z| log_softmax(z, 1.0)).collect())
        .collect();
    let k0 = reps[0].folds.len();
    let ensemble_of = |members: &[usize]| -> Result<(Vec<Vec<f64>>, Calibrated)> {
        let m: Vec<&Vec<Vec<f64>>> = members.iter().map(|&r| &uncal[r]).collect();
        let combined = combine(&m);
        let c = cross_fit(&combined, &labels, &ids, &folds[0], k0)?;
        Ok((combined, c))
    };
    let all: Vec<usize> = (0..reps.len()).collect();
    let (combined, ens) = ensemble_of(&all)?;
    let single_probs: Vec<(Vec<Vec<f64>>, &Calibrated)> = calibrated
        .iter()
        .map(|c| (probabilities(&c.log_probs), c))
        .collect();
    let ensemble = ensemble_evaluation(
        reps.len(),
        &combined,
        &ens,
        &single_probs,
        &labels,
        (k0, groups),
        opts,
    )?;

    let seed_abs_diff_single = single_abs_diff(&calibrated, positive);
    let seed_abs_diff_ensemble = match seed_halves(reps) {
        Some((a, b)) => {
            let (_, ea) = ensemble_of(&a)?;
            let (_, eb) = ensemble_of(&b)?;
            Some(mean_abs_diff(
                &positive_probs(&ea.log_probs, positive),
                &positive_probs(&eb.log_probs, positive),
            ))
        }
        None => None,
    };

    let provenance = provenance(&ids, &calibrated, &ens);
    Ok(RepeatedCv {
        report: RepeatedCvReport {
            repetitions: reps.len(),
            folds: k0,
            images: n,
            seeds: reps.iter().map(|r| r.seed).collect(),
            input_sizes: reps.iter().map(|r| r.input_size).collect(),
            single,
            ensemble,
            seed_abs_diff_single,
            seed_abs_diff_ensemble,
        },
        provenance,
        ensemble_probabilities: probabilities(&ens.log_probs),
        labels,
    })
}

/// Each repetition's out-of-fold logits with cross-fitted temperatures,
/// refusing a repetition of fewer than 2 folds (nothing to fit on).
fn calibrate_repetitions(
    reps: &[Repetition],
    logits: &[Vec<Vec<f64>>],
    labels: &[usize],
    ids: &[String],
    folds: &[Vec<usize>],
) -> Result<Vec<Calibrated>> {
    let mut calibrated = Vec::with_capacity(reps.len());
    for (r, rep) in reps.iter().enumerate() {
        if rep.folds.len() < 2 {
            return Err(Error::Other(format!(
                "repeated cross-validation: repetition {r} has {} fold(s); at least 2 are needed",
                rep.folds.len()
            )));
        }
        calibrated.push(cross_fit(
            &logits[r],
            labels,
            ids,
            &folds[r],
            rep.folds.len(),
        )?);
    }
    Ok(calibrated)
}

/// The single models' metrics per repetition, their spread, and bootstrap
/// intervals of their mean over repetitions (images resampled).
fn single_models(
    calibrated: &[Calibrated],
    labels: &[usize],
    n: usize,
    opts: &RepeatedCvOptions,
    groups: Option<&[usize]>,
) -> Result<SingleModels> {
    let positive = opts.positive;
    let per_repetition = calibrated
        .iter()
        .map(|c| metric_set(&c.log_probs, labels, positive))
        .collect::<Result<Vec<_>>>()?;
    let single_stat = |idx: &[usize]| -> Option<MetricSet> {
        let y = pick(labels, idx);
        let sets: Option<Vec<MetricSet>> = calibrated
            .iter()
            .map(|c| metric_set(&pick(&c.log_probs, idx), &y, positive).ok())
            .collect();
        sets.map(|s| mean_of(&s))
    };
    Ok(SingleModels {
        pooled: intervals(
            (n, groups),
            &mean_of(&per_repetition),
            &opts.bootstrap,
            single_stat,
        )?,
        spread: spread(&per_repetition),
        per_repetition,
        temperatures: calibrated.iter().map(|c| c.temperatures.clone()).collect(),
    })
}

/// The calibrated seed ensemble's metrics, intervals, ECE consistency,
/// risk–coverage curve and operating point, from its combined (uncalibrated)
/// and cross-fitted (`ens`) log-probabilities.
fn ensemble_evaluation(
    members: usize,
    combined: &[Vec<f64>],
    ens: &Calibrated,
    single_out_of_fold: &[(Vec<Vec<f64>>, &Calibrated)],
    labels: &[usize],
    (k0, groups): (usize, Option<&[usize]>),
    opts: &RepeatedCvOptions,
) -> Result<EnsembleEvaluation> {
    let n = labels.len();
    let positive = opts.positive;
    let calibrated_set = metric_set(&ens.log_probs, labels, positive)?;
    let ens_probs = probabilities(&ens.log_probs);
    let (confidence, correct) = cal::confidences_and_correct(&ens_probs, labels)
        .map_err(|e| Error::Other(format!("evaluation: {e}")))?;
    let pos: Vec<f64> = ens_probs
        .iter()
        .map(|p| p.get(positive).copied().unwrap_or(f64::NAN))
        .collect();
    let operating_point = operating_point_report_grouped(
        labels,
        &pos,
        (&ens.fold_of, k0),
        positive,
        opts.target_sensitivity,
        &opts.bootstrap,
        groups,
    )
    .map_err(|e| Error::Other(format!("operating point: {e}")))?;
    let is_positive: Vec<usize> = labels.iter().map(|&l| usize::from(l == positive)).collect();
    let mut decisions = decisions(
        &pos,
        &is_positive,
        Some(operating_point.chosen.threshold),
        &opts.bootstrap,
    )?;
    decisions.conformal = Some(conformal_evaluation(
        &OutOfFold {
            probs: &ens_probs,
            fold_of: &ens.fold_of,
            folds: k0,
        },
        &single_out_of_fold
            .iter()
            .map(|(p, c)| OutOfFold {
                probs: p,
                fold_of: &c.fold_of,
                folds: c.temperatures.len(),
            })
            .collect::<Vec<_>>(),
        labels,
        positive,
        opts.conformal,
        (&opts.bootstrap, groups),
    )?);
    Ok(EnsembleEvaluation {
        decisions,
        members,
        combine: "mean of the members' probabilities, then one temperature on their log".into(),
        uncalibrated: metric_set(combined, labels, positive)?,
        intervals: intervals((n, groups), &calibrated_set, &opts.bootstrap, |idx| {
            metric_set(&pick(&ens.log_probs, idx), &pick(labels, idx), positive).ok()
        })?,
        calibrated: calibrated_set,
        ece_if_calibrated: ece_consistency(&confidence, &correct, ECE_BINS, &opts.bootstrap)
            .map_err(|e| Error::Other(format!("ECE consistency: {e}")))?,
        temperatures: ens.temperatures.clone(),
        risk_coverage: risk_coverage(&confidence, &correct)
            .map_err(|e| Error::Other(format!("risk-coverage: {e}")))?,
        operating_point,
    })
}

/// Probabilities of log-probabilities (clamped against rounding).
fn probabilities(log_probs: &[Vec<f64>]) -> Vec<Vec<f64>> {
    log_probs
        .iter()
        .map(|r| r.iter().map(|v| v.exp().clamp(0.0, 1.0)).collect())
        .collect()
}

/// The positive class's probability per image (NaN where the class is
/// missing), the quantity whose seed-to-seed change is reported.
fn positive_probs(lp: &[Vec<f64>], positive: usize) -> Vec<f64> {
    lp.iter()
        .map(|r| r.get(positive).map_or(f64::NAN, |v| v.exp()))
        .collect()
}

/// Mean over images of `|a − b|`, the seed-to-seed stability measure.
fn mean_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>() / a.len() as f64
}

/// Mean |Δp| over all pairs of repetitions' single models; `None` below 2
/// repetitions (no pair).
fn single_abs_diff(calibrated: &[Calibrated], positive: usize) -> Option<f64> {
    let singles: Vec<Vec<f64>> = calibrated
        .iter()
        .map(|c| positive_probs(&c.log_probs, positive))
        .collect();
    let mut pairs = Vec::new();
    for a in 0..singles.len() {
        for b in a + 1..singles.len() {
            pairs.push(mean_abs_diff(&singles[a], &singles[b]));
        }
    }
    (!pairs.is_empty()).then(|| pairs.iter().sum::<f64>() / pairs.len() as f64)
}

/// Per image: which fold models and temperature fits touched it, so the
/// nesting can be checked.
fn provenance(ids: &[String], calibrated: &[Calibrated], ens: &Calibrated) -> Vec<ImageProvenance> {
    (0..ids.len())
        .map(|i| ImageProvenance {
            id: ids[i].clone(),
            model_folds: calibrated.iter().map(|c| c.fold_of[i]).collect(),
            temperature_fitted_on: calibrated.iter().map(|c| c.fitted_on[i].clone()).collect(),
            ensemble_temperature_fitted_on: ens.fitted_on[i].clone(),
        })
        .collect()
}
