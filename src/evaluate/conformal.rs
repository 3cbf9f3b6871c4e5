//! How conformal prediction sets hold up out of fold.
//!
//! * **Cross-conformal sets**: each image's set comes from thresholds
//!   calibrated on the out-of-fold predictions of the *other* folds, so no
//!   image calibrates its own set and none is spent twice.
//! * **Coverage and set size** of those sets, with bootstrap intervals over
//!   images, for the seed ensemble and per repetition for single models.
//! * **The repeated-split experiment**: many random halvings of the
//!   ensemble's out-of-fold predictions into a calibration half and a test
//!   half; split conformal promises a mean test coverage ≥ 1 − α, and the
//!   Monte-Carlo error says how close the measured mean can be expected to
//!   come.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::evaluate::group_bootstrap::bootstrap_by_group;
use crate::metrics::{mean_std, BootstrapOptions, Interval, MeanStd};
use crate::verdict::conformal::{uniform_draws, ConformalPredictor, ConformalSettings};

/// Random calibration/test halvings in the repeated-split experiment.
pub const EXPERIMENT_SPLITS: usize = 1000;

/// The levels the experiment always checks, besides the configured one.
pub const EXPERIMENT_ALPHAS: [f64; 2] = [0.1, 0.2];

fn err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Other(format!("conformal: {what}: {e}"))
}

/// Coverage and size of a list of sets against their labels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SetSummary {
    pub n: usize,
    /// Share of sets holding the true class.
    pub coverage: f64,
    pub mean_size: f64,
    /// Share of empty sets, of one class and of two classes or more.
    pub empty: f64,
    pub singletons: f64,
    pub two_or_more: f64,
    /// Coverage within each class (`None` for a class with no image).
    pub class_coverage: Vec<Option<f64>>,
}

/// [`SetSummary`] of `sets` (class indices) against `labels`.
pub fn summarise(sets: &[Vec<usize>], labels: &[usize], classes: usize) -> SetSummary {
    let n = sets.len();
    let share = |f: &dyn Fn(&Vec<usize>) -> bool| {
        sets.iter().filter(|s| f(s)).count() as f64 / n.max(1) as f64
    };
    let covered = |i: usize| sets[i].contains(&labels[i]);
    let class_coverage = (0..classes)
        .map(|k| {
            let idx: Vec<usize> = (0..n).filter(|&i| labels[i] == k).collect();
            (!idx.is_empty())
                .then(|| idx.iter().filter(|&&i| covered(i)).count() as f64 / idx.len() as f64)
        })
        .collect();
    SetSummary {
        n,
        coverage: (0..n).filter(|&i| covered(i)).count() as f64 / n.max(1) as f64,
        mean_size: sets.iter().map(Vec::len).sum::<usize>() as f64 / n.max(1) as f64,
        empty: share(&|s| s.is_empty()),
        singletons: share(&|s| s.len() == 1),
        two_or_more: share(&|s| s.len() >= 2),
        class_coverage,
    }
}

/// Each image's set from thresholds calibrated on the images of the other
/// folds (`fold_of[i]` in `0..folds`). The randomised APS/RAPS draws come
/// from `seed`, one per image.
pub fn cross_conformal_sets(
    probs: &[Vec<f64>],
    labels: &[usize],
    fold_of: &[usize],
    folds: usize,
    settings: ConformalSettings,
    seed: u64,
) -> Result<Vec<Vec<usize>>> {
    let u = uniform_draws(probs.len(), seed);
    let mut sets = vec![Vec::new(); probs.len()];
    for f in 0..folds {
        let cal: Vec<usize> = (0..probs.len()).filter(|&i| fold_of[i] != f).collect();
        let pick_p: Vec<Vec<f64>> = cal.iter().map(|&i| probs[i].clone()).collect();
        let pick_y: Vec<usize> = cal.iter().map(|&i| labels[i]).collect();
        let pick_u: Vec<f64> = cal.iter().map(|&i| u[i]).collect();
        let c = ConformalPredictor::calibrate(&pick_p, &pick_y, settings, &pick_u, seed)
            .map_err(|e| err(&format!("fold {f}"), e))?;
        for i in (0..probs.len()).filter(|&i| fold_of[i] == f) {
            sets[i] = c.set(&probs[i]);
        }
    }
    Ok(sets)
}

/// Mean test coverage over random calibration/test halvings at one α.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SplitExperiment {
    pub alpha: f64,
    pub splits: usize,
    pub calibration_size: usize,
    pub test_size: usize,
    pub mean_coverage: f64,
    /// Two standard errors of the mean over splits (a 95 % Monte-Carlo
    /// band).
    pub monte_carlo_error: f64,
    pub mean_size: f64,
    /// Mean coverage within each class over splits.
    pub class_coverage: Vec<Option<f64>>,
    /// `mean_coverage ≥ 1 − α − monte_carlo_error`.
    pub holds: bool,
}

/// Split conformal on `splits` random halvings of `probs`/`labels`.
pub fn repeated_split_experiment(
    probs: &[Vec<f64>],
    labels: &[usize],
    settings: ConformalSettings,
    splits: usize,
    seed: u64,
) -> Result<SplitExperiment> {
    let n = probs.len();
    if n < 4 || splits == 0 {
        return Err(err(
            "experiment",
            format!("{n} images, {splits} splits (need ≥ 4 images and ≥ 1 split)"),
        ));
    }
    let classes = probs[0].len();
    let n_cal = n / 2;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..n).collect();
    let (mut cover, mut size) = (Vec::with_capacity(splits), Vec::with_capacity(splits));
    let mut class_sums = vec![(0.0, 0usize); classes];
    for s in 0..splits {
        order.shuffle(&mut rng);
        let (cal, test) = order.split_at(n_cal);
        let p: Vec<Vec<f64>> = cal.iter().map(|&i| probs[i].clone()).collect();
        let y: Vec<usize> = cal.iter().map(|&i| labels[i]).collect();
        let c = ConformalPredictor::calibrate_seeded(&p, &y, settings, seed.wrapping_add(s as u64))
            .map_err(|e| err("experiment", e))?;
        let sets: Vec<Vec<usize>> = test.iter().map(|&i| c.set(&probs[i])).collect();
        let ty: Vec<usize> = test.iter().map(|&i| labels[i]).collect();
        let summary = summarise(&sets, &ty, classes);
        cover.push(summary.coverage);
        size.push(summary.mean_size);
        for (k, c) in summary.class_coverage.iter().enumerate() {
            if let Some(c) = c {
                class_sums[k].0 += c;
                class_sums[k].1 += 1;
            }
        }
    }
    let c = mean_std(&cover);
    let se = if splits > 1 {
        c.std / (splits as f64).sqrt()
    } else {
        f64::NAN
    };
    let monte_carlo_error = 2.0 * se;
    Ok(SplitExperiment {
        alpha: settings.alpha,
        splits,
        calibration_size: n_cal,
        test_size: n - n_cal,
        mean_coverage: c.mean,
        monte_carlo_error,
        mean_size: mean_std(&size).mean,
        class_coverage: class_sums
            .iter()
            .map(|&(s, k)| (k > 0).then(|| s / k as f64))
            .collect(),
        holds: c.mean >= 1.0 - settings.alpha - monte_carlo_error.max(0.0),
    })
}

/// The out-of-fold evaluation of conformal sets, reported under
/// "Decisions".
#[derive(Debug, Clone, Serialize)]
pub struct ConformalEvaluation {
    pub settings: ConformalSettings,
    /// Target coverage 1 − α.
    pub target: f64,
    /// The seed ensemble's cross-conformal sets (first repetition's folds).
    pub ensemble: SetSummary,
    pub coverage_ci: Interval,
    pub mean_size_ci: Interval,
    /// Share of images referred by their set (anything but one benign class).
    pub referral_rate: f64,
    /// Single models: coverage and mean set size per repetition, and their
    /// mean ± sd.
    pub single_coverage: Vec<f64>,
    pub single_mean_size: Vec<f64>,
    pub single_coverage_spread: MeanStd,
    pub single_mean_size_spread: MeanStd,
    /// Repeated random halvings at α = 0.1, 0.2 and the configured α.
    pub experiment: Vec<SplitExperiment>,
    /// Per image (id order): the ensemble's cross-conformal set.
    #[serde(skip)]
    pub sets: Vec<Vec<usize>>,
}

/// Probabilities and fold of every image, for one set of out-of-fold
/// predictions.
pub struct OutOfFold<'a> {
    pub probs: &'a [Vec<f64>],
    pub fold_of: &'a [usize],
    pub folds: usize,
}

/// Everything [`ConformalEvaluation`] holds: `ensemble` is the seed
/// ensemble's out-of-fold predictions, `singles` one per repetition; the
/// coverage and size intervals resample patient/lesion `groups` when given.
pub fn conformal_evaluation(
    ensemble: &OutOfFold,
    singles: &[OutOfFold],
    labels: &[usize],
    positive: usize,
    settings: ConformalSettings,
    (opts, groups): (&BootstrapOptions, Option<&[usize]>),
) -> Result<ConformalEvaluation> {
    let classes = ensemble.probs.first().map_or(0, Vec::len);
    let seed = opts.seed;
    let sets = cross_conformal_sets(
        ensemble.probs,
        labels,
        ensemble.fold_of,
        ensemble.folds,
        settings,
        seed,
    )?;
    let summary = summarise(&sets, labels, classes);
    let n = labels.len();
    let covered: Vec<f64> = (0..n)
        .map(|i| f64::from(u8::from(sets[i].contains(&labels[i]))))
        .collect();
    let sizes: Vec<f64> = sets.iter().map(|s| s.len() as f64).collect();
    let mean_of =
        |v: &[f64], idx: &[usize]| idx.iter().map(|&i| v[i]).sum::<f64>() / idx.len() as f64;
    let ci = |point: f64, v: &[f64]| {
        bootstrap_by_group(n, groups, point, |idx| mean_of(v, idx), opts)
            .map_err(|e| err("bootstrap", e))
    };
    let coverage_ci = ci(summary.coverage, &covered)?;
    let mean_size_ci = ci(summary.mean_size, &sizes)?;
    let mut single_coverage = Vec::new();
    let mut single_mean_size = Vec::new();
    for (r, s) in singles.iter().enumerate() {
        let sets = cross_conformal_sets(
            s.probs,
            labels,
            s.fold_of,
            s.folds,
            settings,
            seed.wrapping_add(r as u64 + 1),
        )?;
        let m = summarise(&sets, labels, classes);
        single_coverage.push(m.coverage);
        single_mean_size.push(m.mean_size);
    }
    let mut alphas: Vec<f64> = EXPERIMENT_ALPHAS.to_vec();
    if !alphas.iter().any(|a| (a - settings.alpha).abs() < 1e-12) {
        alphas.push(settings.alpha);
    }
    let experiment = alphas
        .iter()
        .map(|&alpha| {
            repeated_split_experiment(
                ensemble.probs,
                labels,
                ConformalSettings { alpha, ..settings },
                EXPERIMENT_SPLITS,
                seed,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let referred = sets
        .iter()
        .filter(|s| crate::verdict::conformal::set_refers(s, positive))
        .count();
    Ok(ConformalEvaluation {
        settings,
        target: 1.0 - settings.alpha,
        referral_rate: referred as f64 / n.max(1) as f64,
        ensemble: summary,
        coverage_ci,
        mean_size_ci,
        single_coverage_spread: mean_std(&single_coverage),
        single_mean_size_spread: mean_std(&single_mean_size),
        single_coverage,
        single_mean_size,
        experiment,
        sets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A calibrated-looking binary model: p(class 1) drawn, label drawn
    /// from it.
    fn calibrated_data(n: usize, seed: u64) -> (Vec<Vec<f64>>, Vec<usize>) {
        use rand::Rng;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let p: f64 = rng.gen_range(0.02..0.98);
                let y = usize::from(rng.gen::<f64>() < p);
                (vec![1.0 - p, p], y)
            })
            .unzip()
    }

    #[test]
    fn summary_counts_coverage_and_sizes() {
        let sets = vec![vec![0], vec![0, 1], vec![], vec![1]];
        let s = summarise(&sets, &[0, 1, 0, 0], 2);
        assert_eq!(s.coverage, 0.5);
        assert_eq!(s.mean_size, 1.0);
        assert_eq!((s.empty, s.singletons, s.two_or_more), (0.25, 0.5, 0.25));
        assert_eq!(s.class_coverage, [Some(1.0 / 3.0), Some(1.0)]);
    }

    #[test]
    fn cross_conformal_never_calibrates_on_the_image_itself() {
        let (p, y) = calibrated_data(60, 3);
        let fold_of: Vec<usize> = (0..60).map(|i| i % 3).collect();
        let s = ConformalSettings {
            class_conditional: false,
            ..Default::default()
        };
        let sets = cross_conformal_sets(&p, &y, &fold_of, 3, s, 0).unwrap();
        // Fold 0's sets equal a predictor calibrated on folds 1 and 2 only.
        let cal: Vec<usize> = (0..60).filter(|i| i % 3 != 0).collect();
        let c = ConformalPredictor::calibrate_seeded(
            &cal.iter().map(|&i| p[i].clone()).collect::<Vec<_>>(),
            &cal.iter().map(|&i| y[i]).collect::<Vec<_>>(),
            s,
            0,
        )
        .unwrap();
        for i in (0..60).filter(|i| i % 3 == 0) {
            assert_eq!(sets[i], c.set(&p[i]), "image {i}");
        }
    }

    #[test]
    fn split_conformal_covers_at_the_promised_rate() {
        let (p, y) = calibrated_data(400, 11);
        for alpha in [0.1, 0.2] {
            for class_conditional in [false, true] {
                let s = ConformalSettings {
                    alpha,
                    class_conditional,
                    ..Default::default()
                };
                let e = repeated_split_experiment(&p, &y, s, 300, 5).unwrap();
                assert!(e.holds, "{e:?}");
                // Not wildly over-covering either: ⌈(n+1)(1−α)⌉/n bounds it.
                assert!(e.mean_coverage < 1.0 - alpha + 0.03, "{e:?}");
                for c in e
                    .class_coverage
                    .iter()
                    .flatten()
                    .filter(|_| class_conditional)
                {
                    assert!(*c >= 1.0 - alpha - 0.03, "{e:?}");
                }
            }
        }
    }
}
