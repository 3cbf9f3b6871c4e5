//! Deterministic stratified splits: train/val/test and k folds.
//!
//! Every class is shuffled with one seeded ChaCha stream (classes in index
//! order), so the same labels and seed always give the same split on every
//! machine. Splits are recorded by sample id in checkpoints.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A named part of a data split, as chosen in `[batch] split` and by
/// `melxai compare --split` (`all`: every sample of the data set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitName {
    Test,
    Val,
    Train,
    All,
}

impl SplitName {
    /// The name used in config.toml, on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            SplitName::Test => "test",
            SplitName::Val => "val",
            SplitName::Train => "train",
            SplitName::All => "all",
        }
    }
}

impl std::fmt::Display for SplitName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SplitName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        [
            SplitName::Test,
            SplitName::Val,
            SplitName::Train,
            SplitName::All,
        ]
        .into_iter()
        .find(|n| n.as_str() == s)
        .ok_or_else(|| Error::Config(format!("unknown split '{s}' (test, val, train or all)")))
    }
}

/// Indices into the sample list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub test: Vec<usize>,
}

fn by_class(labels: &[usize], rng: &mut ChaCha8Rng) -> Vec<Vec<usize>> {
    let classes = labels.iter().copied().max().map_or(0, |m| m + 1);
    let mut groups = vec![Vec::new(); classes];
    for (i, &l) in labels.iter().enumerate() {
        groups[l].push(i);
    }
    for g in &mut groups {
        g.shuffle(rng);
    }
    groups
}

/// Takes `round(fraction * n_class)` of every class (at least one when the
/// class has two or more samples and the fraction is positive).
fn take_fraction(groups: &mut [Vec<usize>], fraction: f64) -> Vec<usize> {
    let mut taken = Vec::new();
    for g in groups.iter_mut() {
        let mut n = (fraction * g.len() as f64).round() as usize;
        if fraction > 0.0 && n == 0 && g.len() >= 2 {
            n = 1;
        }
        let n = n.min(g.len().saturating_sub(1));
        taken.extend(g.drain(..n));
    }
    taken.sort_unstable();
    taken
}

/// Stratified train/val/test: `test_fraction` of each class for test, then
/// `val_fraction` of what remains for validation.
pub fn stratified_split(
    labels: &[usize],
    test_fraction: f64,
    val_fraction: f64,
    seed: u64,
) -> Result<Split> {
    check_fractions(test_fraction, val_fraction)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut groups = by_class(labels, &mut rng);
    let test = take_fraction(&mut groups, test_fraction);
    let val = take_fraction(&mut groups, val_fraction);
    let mut train: Vec<usize> = groups.concat();
    train.sort_unstable();
    Ok(Split { train, val, test })
}

fn check_fractions(test: f64, val: f64) -> Result<()> {
    if !(0.0..1.0).contains(&test) || !(0.0..1.0).contains(&val) {
        return Err(Error::Config(format!(
            "split fractions must be in [0, 1): test {test}, val {val}"
        )));
    }
    Ok(())
}

/// Stratified k folds: each class is dealt round-robin into the folds after a
/// seeded shuffle, so fold sizes per class differ by at most one.
pub fn stratified_folds(labels: &[usize], k: usize, seed: u64) -> Result<Vec<Vec<usize>>> {
    if k < 2 || k > labels.len() {
        return Err(Error::Config(format!(
            "--folds must be between 2 and {}, got {k}",
            labels.len()
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let groups = by_class(labels, &mut rng);
    let mut folds = vec![Vec::new(); k];
    let mut next = 0;
    for g in groups {
        for i in g {
            folds[next % k].push(i);
            next += 1;
        }
    }
    for f in &mut folds {
        f.sort_unstable();
    }
    Ok(folds)
}

/// Split for fold `fold` of `k`: that fold is the test set; `val_fraction` of
/// the rest (stratified, seeded by seed + fold) is validation.
pub fn fold_split(
    labels: &[usize],
    k: usize,
    fold: usize,
    val_fraction: f64,
    seed: u64,
) -> Result<Split> {
    let folds = stratified_folds(labels, k, seed)?;
    let test = folds
        .get(fold)
        .cloned()
        .ok_or_else(|| Error::Config(format!("fold {fold} out of range 0..{k}")))?;
    around_test(labels.len(), test, |rest| {
        let rest_labels: Vec<usize> = rest.iter().map(|&i| labels[i]).collect();
        stratified_split(
            &rest_labels,
            0.0,
            val_fraction,
            seed.wrapping_add(fold as u64 + 1),
        )
    })
}

/// The split of a fold: `test` as given, and train/validation drawn by
/// `inner` among the other rows (`inner` sees them as 0..rest.len() and
/// gets their row numbers, which the result maps back to).
pub(crate) fn around_test(
    n: usize,
    test: Vec<usize>,
    inner: impl FnOnce(&[usize]) -> Result<Split>,
) -> Result<Split> {
    let in_test: std::collections::HashSet<usize> = test.iter().copied().collect();
    let rest: Vec<usize> = (0..n).filter(|i| !in_test.contains(i)).collect();
    let inner = inner(&rest)?;
    let map = |v: Vec<usize>| -> Vec<usize> { v.into_iter().map(|i| rest[i]).collect() };
    Ok(Split {
        train: map(inner.train),
        val: map(inner.val),
        test,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<usize> {
        let mut l = vec![0; 70];
        l.extend(vec![1; 100]);
        l
    }

    #[test]
    fn split_is_stratified_disjoint_and_complete() {
        let l = labels();
        let s = stratified_split(&l, 0.15, 0.15, 42).unwrap();
        let count = |v: &[usize], c| v.iter().filter(|&&i| l[i] == c).count();
        assert_eq!((count(&s.test, 0), count(&s.test, 1)), (11, 15));
        assert_eq!(s.train.len() + s.val.len() + s.test.len(), 170);
        let mut all: Vec<usize> = s
            .train
            .iter()
            .chain(&s.val)
            .chain(&s.test)
            .copied()
            .collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 170);
    }

    #[test]
    fn same_seed_same_split_other_seed_differs() {
        let l = labels();
        assert_eq!(
            stratified_split(&l, 0.15, 0.15, 42).unwrap(),
            stratified_split(&l, 0.15, 0.15, 42).unwrap()
        );
        assert_ne!(
            stratified_split(&l, 0.15, 0.15, 42).unwrap(),
            stratified_split(&l, 0.15, 0.15, 7).unwrap()
        );
    }

    #[test]
    fn folds_are_disjoint_cover_everything_and_stratified() {
        let l = labels();
        let folds = stratified_folds(&l, 5, 42).unwrap();
        let mut all: Vec<usize> = folds.concat();
        all.sort_unstable();
        assert_eq!(all, (0..170).collect::<Vec<_>>());
        for f in &folds {
            let mel = f.iter().filter(|&&i| l[i] == 0).count();
            assert_eq!(mel, 14);
            assert_eq!(f.len(), 34);
        }
        let s = fold_split(&l, 5, 2, 0.15, 42).unwrap();
        assert_eq!(s.test, folds[2]);
        assert!(s.train.iter().chain(&s.val).all(|i| !s.test.contains(i)));
        assert_eq!(s.train.len() + s.val.len(), 136);
    }

    #[test]
    fn bad_parameters_are_errors() {
        assert!(stratified_folds(&labels(), 1, 0).is_err());
        assert!(stratified_split(&labels(), 1.5, 0.1, 0).is_err());
    }
}
