//! Conformal prediction sets: the classes whose conformity score is within
//! a quantile of the calibration images' scores, so that the set holds the
//! true class with probability ≥ 1 − α for exchangeable data, whatever the
//! model. "This set contains the true diagnosis with probability ≥ 90 %"
//! holds at n = 170 where an ECE cannot be told from zero.
//!
//! Score functions as in MAPIE 1.6 (checked against it on committed
//! fixtures, `tests/conformal_fixtures.rs`):
//!
//! * **LAC**: `1 − p_y`; class k is in the set when `1 − p_k ≤ q`.
//! * **APS**: the probabilities summed in descending order through the true
//!   class, less `u · p_y` for a uniform draw `u` (the randomised score
//!   MAPIE always calibrates with); the set is the descending prefix whose
//!   running sum first reaches `q` (the class that crosses it included).
//! * **RAPS**: APS plus `λ · max(0, rank − k_reg)` (rank 1-based), which
//!   keeps sets of unlikely classes short.
//!
//! The threshold is the ⌈(n+1)(1−α)⌉-th smallest calibration score (+∞ when
//! that rank exceeds n: every class is then in every set). The
//! class-conditional (Mondrian) variant calibrates one threshold per class
//! on that class's images, so melanoma gets its own coverage. Comparisons
//! carry MAPIE's 1e-8 slack. Where MAPIE 1.6 refuses (APS on two classes,
//! α below 1/n) or falls back to class 0 (no running sum reaches q), sets
//! here are the conservative ones: every class.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// MAPIE's comparison slack.
pub const EPSILON: f64 = 1e-8;

/// Which conformity score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScoreName {
    #[default]
    Lac,
    Aps,
    Raps,
}

impl ScoreName {
    pub fn label(self) -> &'static str {
        match self {
            ScoreName::Lac => "LAC",
            ScoreName::Aps => "APS",
            ScoreName::Raps => "RAPS",
        }
    }
}

/// `[predict.conformal]`: how prediction sets are calibrated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConformalSettings {
    /// Miscoverage: sets hold the true class with probability ≥ 1 − α.
    pub alpha: f64,
    pub score: ScoreName,
    /// One threshold per class (Mondrian): coverage ≥ 1 − α within each
    /// class, melanoma included, instead of on average.
    pub class_conditional: bool,
    /// RAPS: ranks above this one are penalised.
    pub k_reg: usize,
    /// RAPS: the penalty per rank above `k_reg`.
    pub lambda: f64,
}

impl Default for ConformalSettings {
    fn default() -> Self {
        ConformalSettings {
            alpha: 0.1,
            score: ScoreName::Lac,
            class_conditional: true,
            k_reg: 1,
            lambda: 0.01,
        }
    }
}

impl ConformalSettings {
    /// The message names the key.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(format!("alpha = {} must be in (0, 1)", self.alpha));
        }
        if !(self.lambda.is_finite() && self.lambda >= 0.0) {
            return Err(format!("lambda = {} must be finite and ≥ 0", self.lambda));
        }
        Ok(())
    }

    /// "LAC, α = 0.10, class-conditional".
    pub fn describe(&self) -> String {
        let raps = match self.score {
            ScoreName::Raps => format!(" (k_reg {}, λ {})", self.k_reg, self.lambda),
            _ => String::new(),
        };
        format!(
            "{}{raps}, α = {:.2}{}",
            self.score.label(),
            self.alpha,
            if self.class_conditional {
                ", class-conditional"
            } else {
                ""
            }
        )
    }
}

/// What happens to the class whose running sum crosses the threshold
/// (APS and RAPS; MAPIE's `include_last_label`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LastLabel {
    /// Kept (MAPIE's default; sets are never empty).
    Include,
    /// Dropped unless it is the most likely class.
    Exclude,
    /// Kept with the probability that makes coverage exact, decided by the
    /// sample's uniform draw.
    Randomized(f64),
}

/// Class indices by descending probability, ties by ascending index (numpy's
/// `flip(argsort(p))`, which MAPIE uses, orders ties by no fixed rule, so
/// the fixtures have none).
fn descending(p: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
    order
}

/// RAPS penalty at 1-based `rank`.
fn penalty(s: &ConformalSettings, rank: usize) -> f64 {
    match s.score {
        ScoreName::Raps => s.lambda * rank.saturating_sub(s.k_reg) as f64,
        _ => 0.0,
    }
}

/// Conformity score of true class `y` under probabilities `p`; `u` is the
/// uniform draw of the randomised APS/RAPS score (ignored by LAC).
pub fn conformity_score(p: &[f64], y: usize, s: &ConformalSettings, u: f64) -> f64 {
    match s.score {
        ScoreName::Lac => 1.0 - p[y],
        ScoreName::Aps | ScoreName::Raps => {
            let order = descending(p);
            let mut sum = 0.0;
            let mut rank = 0;
            for (i, &k) in order.iter().enumerate() {
                sum += p[k];
                if k == y {
                    rank = i + 1;
                    break;
                }
            }
            sum - u * p[y] + penalty(s, rank)
        }
    }
}

/// The ⌈(n+1)(1−α)⌉-th smallest score; +∞ when that rank exceeds n (too
/// few calibration images for α: every class is then in every set).
pub fn conformal_quantile(scores: &[f64], alpha: f64) -> f64 {
    let n = scores.len();
    let rank = ((n as f64 + 1.0) * (1.0 - alpha)).ceil();
    if n == 0 || rank > n as f64 {
        return f64::INFINITY;
    }
    let mut sorted = scores.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[(rank as usize).max(1) - 1]
}

/// The running sum (in descending order, with the RAPS penalty) reached at
/// each class.
fn running_sums(p: &[f64], s: &ConformalSettings) -> Vec<f64> {
    let mut sums = vec![0.0; p.len()];
    let mut sum = 0.0;
    for (i, &k) in descending(p).iter().enumerate() {
        sum += p[k];
        sums[k] = sum + penalty(s, i + 1);
    }
    sums
}

/// Which classes the set at threshold `q` holds (`true` = in the set).
pub fn prediction_set(p: &[f64], q: f64, s: &ConformalSettings, last: LastLabel) -> Vec<bool> {
    if s.score == ScoreName::Lac {
        return p.iter().map(|&pk| (1.0 - pk) - q <= EPSILON).collect();
    }
    let sums = running_sums(p, s);
    // The class whose running sum first reaches q; every class when none
    // does (q beyond the total mass, e.g. +∞).
    let last_index = match last {
        LastLabel::Include | LastLabel::Randomized(_) => {
            let reached = (0..p.len()).filter(|&k| sums[k] - q >= -EPSILON);
            reached.min_by(|&a, &b| (sums[a] - q).total_cmp(&(sums[b] - q)))
        }
        LastLabel::Exclude => {
            let lowest = sums.iter().copied().fold(f64::INFINITY, f64::min);
            let bound = q.max(lowest);
            (0..p.len())
                .filter(|&k| sums[k] - bound <= EPSILON)
                .max_by(|&a, &b| (sums[a] - bound).total_cmp(&(sums[b] - bound)))
        }
    };
    let Some(last_index) = last_index else {
        return vec![true; p.len()];
    };
    let mut p_last = p[last_index];
    if p_last <= EPSILON {
        p_last = p
            .iter()
            .copied()
            .filter(|&v| v >= EPSILON)
            .fold(f64::INFINITY, f64::min);
    }
    let mut set: Vec<bool> = p.iter().map(|&pk| pk - p_last >= -EPSILON).collect();
    if let LastLabel::Randomized(u) = last {
        let size = set.iter().filter(|&&b| b).count();
        let divisor = match s.score {
            ScoreName::Raps => {
                let over = size.saturating_sub(s.k_reg) as f64;
                p_last - s.lambda * over + if size > s.k_reg { s.lambda } else { 0.0 }
            }
            _ => p_last,
        };
        let v = (sums[last_index] - q) / divisor;
        set[last_index] = v - u <= EPSILON;
    }
    set
}

/// Uniform draws for the randomised APS/RAPS calibration scores.
pub fn uniform_draws(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.gen::<f64>()).collect()
}

/// Why a conformal predictor could not be calibrated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConformalError {
    #[error("{0}")]
    Settings(String),
    #[error("no calibration images")]
    Empty,
    #[error("calibration row {row} has {got} probabilities, expected {expected}")]
    Shape {
        row: usize,
        got: usize,
        expected: usize,
    },
    #[error("calibration row {row} has label {label}, but there are {classes} classes")]
    Label {
        row: usize,
        label: usize,
        classes: usize,
    },
}

/// Calibrated thresholds, as stored in an ensemble manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConformalPredictor {
    pub settings: ConformalSettings,
    /// One threshold, or one per class when class-conditional; +∞ = the
    /// class (or every class) is always in the set.
    pub quantiles: Vec<f64>,
    /// Calibration images per threshold.
    pub calibrated_on: Vec<usize>,
    /// Seed of the randomised APS/RAPS calibration scores.
    #[serde(default)]
    pub seed: u64,
}

impl ConformalPredictor {
    /// Thresholds from calibration probabilities `probs` and labels; `u` are
    /// the per-row uniform draws of the randomised APS/RAPS scores.
    pub fn calibrate(
        probs: &[Vec<f64>],
        labels: &[usize],
        settings: ConformalSettings,
        u: &[f64],
        seed: u64,
    ) -> Result<Self, ConformalError> {
        settings.validate().map_err(ConformalError::Settings)?;
        let classes = probs.first().map(Vec::len).ok_or(ConformalError::Empty)?;
        for (row, (p, &label)) in probs.iter().zip(labels).enumerate() {
            if p.len() != classes {
                return Err(ConformalError::Shape {
                    row,
                    got: p.len(),
                    expected: classes,
                });
            }
            if label >= classes {
                return Err(ConformalError::Label {
                    row,
                    label,
                    classes,
                });
            }
        }
        let score = |i: usize| {
            conformity_score(
                &probs[i],
                labels[i],
                &settings,
                u.get(i).copied().unwrap_or(0.0),
            )
        };
        let groups: Vec<Vec<usize>> = if settings.class_conditional {
            (0..classes)
                .map(|k| (0..labels.len()).filter(|&i| labels[i] == k).collect())
                .collect()
        } else {
            vec![(0..labels.len().min(probs.len())).collect()]
        };
        let quantiles = groups
            .iter()
            .map(|g| {
                let scores: Vec<f64> = g.iter().map(|&i| score(i)).collect();
                conformal_quantile(&scores, settings.alpha)
            })
            .collect();
        Ok(ConformalPredictor {
            settings,
            quantiles,
            calibrated_on: groups.iter().map(Vec::len).collect(),
            seed,
        })
    }

    /// [`Self::calibrate`] with the draws from `seed`.
    pub fn calibrate_seeded(
        probs: &[Vec<f64>],
        labels: &[usize],
        settings: ConformalSettings,
        seed: u64,
    ) -> Result<Self, ConformalError> {
        let u = uniform_draws(probs.len(), seed);
        Self::calibrate(probs, labels, settings, &u, seed)
    }

    /// The set's membership per class, with `last` for APS/RAPS.
    pub fn membership(&self, p: &[f64], last: LastLabel) -> Vec<bool> {
        if self.settings.class_conditional {
            (0..p.len())
                .map(|k| {
                    let q = self.quantiles.get(k).copied().unwrap_or(f64::INFINITY);
                    prediction_set(p, q, &self.settings, last)[k]
                })
                .collect()
        } else {
            let q = self.quantiles.first().copied().unwrap_or(f64::INFINITY);
            prediction_set(p, q, &self.settings, last)
        }
    }

    /// The prediction set of calibrated probabilities `p` (class indices,
    /// ascending); the last class kept, as MAPIE does by default.
    pub fn set(&self, p: &[f64]) -> Vec<usize> {
        let m = self.membership(p, LastLabel::Include);
        (0..m.len()).filter(|&k| m[k]).collect()
    }

    /// Each value a loader relies on; the message names the key.
    pub fn validate(&self) -> std::result::Result<(), String> {
        self.settings.validate()?;
        if self.quantiles.is_empty() || self.quantiles.iter().any(|q| q.is_nan()) {
            return Err("quantiles must be numbers (+inf allowed), at least one".into());
        }
        if self.calibrated_on.len() != self.quantiles.len() {
            return Err(format!(
                "calibrated_on has {} counts for {} quantiles",
                self.calibrated_on.len(),
                self.quantiles.len()
            ));
        }
        Ok(())
    }
}

/// One input's prediction set, as `predict` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SetVerdict {
    /// Class indices in the set, ascending.
    pub classes: Vec<usize>,
    /// "melanoma", "melanoma + naevus", "∅".
    pub label: String,
    /// Anything but one class other than the positive one.
    pub refer: bool,
    /// The promised coverage 1 − α.
    pub coverage: f64,
    /// How the set was calibrated ("LAC, α = 0.10, class-conditional").
    pub method: String,
}

impl ConformalPredictor {
    /// The set of calibrated probabilities `p`, labelled with `classes`.
    pub fn verdict(&self, p: &[f64], classes: &[String], positive: usize) -> SetVerdict {
        let set = self.set(p);
        SetVerdict {
            label: set_label(&set, classes),
            refer: set_refers(&set, positive),
            coverage: 1.0 - self.settings.alpha,
            method: self.settings.describe(),
            classes: set,
        }
    }
}

/// "refer" unless the set is one class other than `positive` (a set of two,
/// an empty set or the positive class alone all send the case on).
pub fn set_refers(set: &[usize], positive: usize) -> bool {
    !(set.len() == 1 && set[0] != positive)
}

/// "melanoma", "melanoma + naevus", "∅".
pub fn set_label(set: &[usize], classes: &[String]) -> String {
    if set.is_empty() {
        return "∅".into();
    }
    set.iter()
        .map(|&k| classes.get(k).cloned().unwrap_or_else(|| k.to_string()))
        .collect::<Vec<_>>()
        .join(" + ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(score: ScoreName) -> ConformalSettings {
        ConformalSettings {
            score,
            class_conditional: false,
            ..Default::default()
        }
    }

    #[test]
    fn quantile_is_the_finite_sample_order_statistic() {
        let scores: Vec<f64> = (1..=9).map(|i| i as f64 / 10.0).collect();
        // n = 9, α = 0.2: ⌈10 · 0.8⌉ = 8th smallest.
        assert_eq!(conformal_quantile(&scores, 0.2), 0.8);
        // α = 0.05: ⌈10 · 0.95⌉ = 10 > 9: no finite threshold.
        assert_eq!(conformal_quantile(&scores, 0.05), f64::INFINITY);
        assert_eq!(conformal_quantile(&[], 0.1), f64::INFINITY);
    }

    #[test]
    fn lac_keeps_classes_within_the_threshold() {
        let s = settings(ScoreName::Lac);
        assert_eq!(
            prediction_set(&[0.7, 0.3], 0.75, &s, LastLabel::Include),
            [true, true]
        );
        assert_eq!(
            prediction_set(&[0.7, 0.3], 0.5, &s, LastLabel::Include),
            [true, false]
        );
        // Both below 1 − q: the empty set (LAC does not force one class).
        assert_eq!(
            prediction_set(&[0.55, 0.45], 0.3, &s, LastLabel::Include),
            [false, false]
        );
        assert!((conformity_score(&[0.7, 0.3], 1, &s, 0.5) - 0.7).abs() < 1e-12);
    }

    #[test]
    fn aps_sums_down_to_the_true_class() {
        let s = settings(ScoreName::Aps);
        let p = [0.2, 0.5, 0.3];
        assert!((conformity_score(&p, 2, &s, 0.0) - 0.8).abs() < 1e-12);
        assert!((conformity_score(&p, 2, &s, 1.0) - 0.5).abs() < 1e-12);
        // q = 0.6: 0.5 < 0.6 ≤ 0.8, so the crossing class (2) is kept.
        assert_eq!(
            prediction_set(&p, 0.6, &s, LastLabel::Include),
            [false, true, true]
        );
        assert_eq!(
            prediction_set(&p, 0.6, &s, LastLabel::Exclude),
            [false, true, false]
        );
        // Beyond the total mass: every class.
        assert_eq!(
            prediction_set(&p, f64::INFINITY, &s, LastLabel::Include),
            [true, true, true]
        );
    }

    #[test]
    fn raps_penalises_ranks_beyond_k_reg() {
        let s = ConformalSettings {
            k_reg: 1,
            lambda: 0.5,
            ..settings(ScoreName::Raps)
        };
        let p = [0.2, 0.5, 0.3];
        // Rank 3: 1.0 + 0.5 · 2.
        assert!((conformity_score(&p, 0, &s, 0.0) - 2.0).abs() < 1e-12);
        // Running sums with penalty: 0.5, 1.3, 2.0; q = 1.0 stops at class 2.
        assert_eq!(
            prediction_set(&p, 1.0, &s, LastLabel::Include),
            [false, true, true]
        );
    }

    #[test]
    fn class_conditional_thresholds_are_per_class() {
        let probs: Vec<Vec<f64>> = (0..40)
            .map(|i| {
                let p = 0.3 + (i % 10) as f64 * 0.06;
                if i < 20 {
                    vec![p, 1.0 - p]
                } else {
                    vec![1.0 - p, p]
                }
            })
            .collect();
        let labels: Vec<usize> = (0..40).map(|i| usize::from(i >= 20)).collect();
        let s = ConformalSettings::default();
        let c = ConformalPredictor::calibrate_seeded(&probs, &labels, s, 1).unwrap();
        assert_eq!(c.quantiles.len(), 2);
        assert_eq!(c.calibrated_on, [20, 20]);
        // Each class: 1 − p over 20 images, ⌈21 · 0.9⌉ = 19th smallest.
        assert!((c.quantiles[0] - 0.7).abs() < 1e-9, "{:?}", c.quantiles);
        assert_eq!(c.set(&[0.95, 0.05]), [0]);
        assert_eq!(c.set(&[0.5, 0.5]), [0, 1]);
        assert!(set_refers(&[0, 1], 0));
        assert!(!set_refers(&[1], 0));
        assert!(set_refers(&[], 0));
        assert_eq!(
            set_label(&[0, 1], &["melanoma".into(), "naevus".into()]),
            "melanoma + naevus"
        );
    }

    #[test]
    fn bad_calibration_input_names_the_row() {
        let s = ConformalSettings::default();
        let e = ConformalPredictor::calibrate(&[vec![0.5, 0.5], vec![1.0]], &[0, 1], s, &[], 0)
            .unwrap_err();
        assert!(e.to_string().contains("row 1"), "{e}");
        let e = ConformalPredictor::calibrate(&[vec![0.5, 0.5]], &[2], s, &[], 0).unwrap_err();
        assert!(e.to_string().contains("label 2"), "{e}");
        let bad = ConformalSettings { alpha: 1.5, ..s };
        assert!(ConformalPredictor::calibrate(&[vec![0.5, 0.5]], &[0], bad, &[], 0).is_err());
    }
}
