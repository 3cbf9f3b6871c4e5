//! Patient/lesion-grouped splits: no group of images on two sides.
//!
//! HAM10000 (`lesion_id`) and ISIC 2020 (`patient_id`) publish several images
//! per lesion or patient. A per-image split puts near-duplicates of one lesion
//! in train and test and inflates every held-out figure, so these splits keep
//! each group on one side and balance classes as far as the groups allow.
//! Data without groups (every group a singleton, e.g. MED-NODE) gets exactly
//! the splits of `split.rs`, so splits already recorded stay valid.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap, HashSet};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::split::{around_test, fold_split, stratified_folds, stratified_split, Split};
use crate::error::{Error, Result};

/// Dense group indices from the published keys, in first-appearance order.
/// A missing or blank key makes the row its own group: an image without a
/// lesion id cannot be matched to any other.
pub fn dense_groups(keys: &[Option<String>]) -> Vec<usize> {
    let mut ids: HashMap<&str, usize> = HashMap::new();
    let mut next = 0;
    let mut fresh = || {
        next += 1;
        next - 1
    };
    keys.iter()
        .map(|key| match key.as_deref().map(str::trim) {
            Some(k) if !k.is_empty() => *ids.entry(k).or_insert_with(&mut fresh),
            _ => fresh(),
        })
        .collect()
}

/// True when every group holds one row: grouping changes nothing, so the
/// per-image splits apply unchanged.
pub fn is_ungrouped(groups: &[usize]) -> bool {
    let mut seen = HashSet::with_capacity(groups.len());
    groups.iter().all(|g| seen.insert(*g))
}

/// Rows and class counts of every group, groups in first-appearance order.
struct Table {
    rows: Vec<Vec<usize>>,
    counts: Vec<Vec<usize>>,
    totals: Vec<usize>,
}

fn table(labels: &[usize], groups: &[usize]) -> Result<Table> {
    if labels.len() != groups.len() {
        return Err(Error::Dataset(format!(
            "{} labels but {} group ids",
            labels.len(),
            groups.len()
        )));
    }
    let classes = labels.iter().max().map_or(0, |m| m + 1);
    let mut index: HashMap<usize, usize> = HashMap::new();
    let mut t = Table {
        rows: Vec::new(),
        counts: Vec::new(),
        totals: vec![0; classes],
    };
    for (i, (&label, &group)) in labels.iter().zip(groups).enumerate() {
        let d = *index.entry(group).or_insert(t.rows.len());
        if d == t.rows.len() {
            t.rows.push(Vec::new());
            t.counts.push(vec![0; classes]);
        }
        t.rows[d].push(i);
        t.counts[d][label] += 1;
        t.totals[label] += 1;
    }
    Ok(t)
}

/// Group indices in a seeded random order, the tie-breaker for the sorts.
fn shuffled_groups(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    order
}

/// Population standard deviation (numpy's `np.std`).
fn std_dev(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt()
}

/// numpy's `isclose` with its default tolerances; never close to infinity.
fn is_close(a: f64, b: f64) -> bool {
    b.is_finite() && (a - b).abs() <= 1e-8 + 1e-5 * b.abs()
}

/// Stratified k folds with no group in two folds (scikit-learn's
/// `StratifiedGroupKFold(shuffle=True)`): groups in seeded random order,
/// stably sorted by the spread of their class counts (mixed groups last),
/// each put in the fold that keeps the per-class fold proportions most even;
/// ties (within numpy's `isclose`) go to the fold with fewer images.
/// Unlike scikit-learn 1.x, the shuffle moves group ids with their counts.
/// Ungrouped data gets exactly [`stratified_folds`].
pub fn stratified_group_folds(
    labels: &[usize],
    groups: &[usize],
    k: usize,
    seed: u64,
) -> Result<Vec<Vec<usize>>> {
    let t = table(labels, groups)?;
    if is_ungrouped(groups) {
        return stratified_folds(labels, k, seed);
    }
    if k < 2 || k > t.rows.len() {
        return Err(Error::Config(format!(
            "--folds must be between 2 and {} (the number of patient/lesion groups), got {k}",
            t.rows.len()
        )));
    }
    // Classes absent from the data have no proportion (as np.unique drops them).
    let present: Vec<usize> = (0..t.totals.len()).filter(|&c| t.totals[c] > 0).collect();
    let spread: Vec<f64> = t
        .counts
        .iter()
        .map(|g| std_dev(&present.iter().map(|&c| g[c] as f64).collect::<Vec<_>>()))
        .collect();
    let mut order = shuffled_groups(t.rows.len(), seed);
    order.sort_by(|&a, &b| spread[b].total_cmp(&spread[a]));
    let mut fold_counts = vec![vec![0usize; t.totals.len()]; k];
    let mut folds = vec![Vec::new(); k];
    for g in order {
        let best = best_fold(&fold_counts, &t.totals, &present, &t.counts[g]);
        for (f, n) in fold_counts[best].iter_mut().zip(&t.counts[g]) {
            *f += n;
        }
        folds[best].extend_from_slice(&t.rows[g]);
    }
    for f in &mut folds {
        f.sort_unstable();
    }
    Ok(folds)
}

/// The fold whose taking `group` gives the smallest mean over classes of the
/// standard deviation of per-fold class proportions.
fn best_fold(
    fold_counts: &[Vec<usize>],
    totals: &[usize],
    present: &[usize],
    group: &[usize],
) -> usize {
    let mut best: Option<(usize, f64, usize)> = None;
    for i in 0..fold_counts.len() {
        let eval = present
            .iter()
            .map(|&c| {
                let props: Vec<f64> = fold_counts
                    .iter()
                    .enumerate()
                    .map(|(f, n)| {
                        let add = if f == i { group[c] } else { 0 };
                        (n[c] + add) as f64 / totals[c] as f64
                    })
                    .collect();
                std_dev(&props)
            })
            .sum::<f64>()
            / present.len().max(1) as f64;
        let size: usize = fold_counts[i].iter().sum();
        let better = match best {
            None => true,
            Some((_, e, s)) if is_close(eval, e) => size < s,
            Some((_, e, _)) => eval < e,
        };
        if better {
            best = Some((i, eval, size));
        }
    }
    best.map_or(0, |(i, _, _)| i)
}

/// The number of a class's `n` images a part takes: as `split.rs` does,
/// `round(fraction * n)`, at least one when the fraction is positive and
/// the class has two images, never the whole class.
fn take_count(n: usize, fraction: f64) -> usize {
    let mut m = (fraction * n as f64).round() as usize;
    if fraction > 0.0 && m == 0 && n >= 2 {
        m = 1;
    }
    m.min(n.saturating_sub(1))
}

fn check_fractions(test: f64, val: f64) -> Result<()> {
    if !(0.0..1.0).contains(&test) || !(0.0..1.0).contains(&val) {
        return Err(Error::Config(format!(
            "split fractions must be in [0, 1): test {test}, val {val}"
        )));
    }
    Ok(())
}

const TRAIN: usize = 0;
const VAL: usize = 1;
const TEST: usize = 2;

/// Grouped train/val/test: about `test_fraction` of each class's images in
/// test, then `val_fraction` of the rest in val, no group on two sides.
/// Greedy: groups in seeded random order, largest first; each goes to the
/// part that it brings closer to its per-class target counts and whose
/// deficit, relative to its target, is largest; else to train. Relative
/// deficits interleave the parts, so large groups are not all on one side.
/// Ungrouped data gets exactly [`stratified_split`].
pub fn grouped_split(
    labels: &[usize],
    groups: &[usize],
    test_fraction: f64,
    val_fraction: f64,
    seed: u64,
) -> Result<Split> {
    let t = table(labels, groups)?;
    if is_ungrouped(groups) {
        return stratified_split(labels, test_fraction, val_fraction, seed);
    }
    check_fractions(test_fraction, val_fraction)?;
    let mut targets = vec![Vec::new(); 3];
    for &n in &t.totals {
        let test = take_count(n, test_fraction);
        let val = take_count(n - test, val_fraction);
        targets[TRAIN].push(n - test - val);
        targets[VAL].push(val);
        targets[TEST].push(test);
    }
    let mut order = shuffled_groups(t.rows.len(), seed);
    order.sort_by_key(|&g| Reverse(t.rows[g].len()));
    let mut filled = vec![vec![0usize; t.totals.len()]; 3];
    let mut parts = vec![Vec::new(); 3];
    for g in order {
        let p = best_part(&targets, &filled, &t.counts[g]);
        for (f, n) in filled[p].iter_mut().zip(&t.counts[g]) {
            *f += n;
        }
        parts[p].extend_from_slice(&t.rows[g]);
    }
    for p in &mut parts {
        p.sort_unstable();
    }
    let test = parts.pop().unwrap_or_default();
    let val = parts.pop().unwrap_or_default();
    let train = parts.pop().unwrap_or_default();
    Ok(Split { train, val, test })
}

/// The part a group with class counts `group` goes to (see [`grouped_split`]).
fn best_part(targets: &[Vec<usize>], filled: &[Vec<usize>], group: &[usize]) -> usize {
    let mut best = (TRAIN, f64::NEG_INFINITY);
    for p in [TRAIN, TEST, VAL] {
        let (mut before, mut after, mut score) = (0i64, 0i64, 0.0);
        for (c, &g) in group.iter().enumerate().filter(|(_, &g)| g > 0) {
            let deficit = targets[p][c] as i64 - filled[p][c] as i64;
            before += deficit.abs();
            after += (deficit - g as i64).abs();
            score += g as f64 * deficit as f64 / targets[p][c].max(1) as f64;
        }
        if after < before && score > best.1 {
            best = (p, score);
        }
    }
    best.0
}

/// Fold `fold` of [`stratified_group_folds`] is test; `val_fraction` of the
/// rest (grouped, seeded by seed + fold + 1) is validation. Ungrouped data
/// gets exactly [`fold_split`].
pub fn grouped_fold_split(
    labels: &[usize],
    groups: &[usize],
    k: usize,
    fold: usize,
    val_fraction: f64,
    seed: u64,
) -> Result<Split> {
    if labels.len() == groups.len() && is_ungrouped(groups) {
        return fold_split(labels, k, fold, val_fraction, seed);
    }
    let folds = stratified_group_folds(labels, groups, k, seed)?;
    let test = folds
        .get(fold)
        .cloned()
        .ok_or_else(|| Error::Config(format!("fold {fold} out of range 0..{k}")))?;
    around_test(labels.len(), test, |rest| {
        let rest_labels: Vec<usize> = rest.iter().map(|&i| labels[i]).collect();
        let rest_groups: Vec<usize> = rest.iter().map(|&i| groups[i]).collect();
        grouped_split(
            &rest_labels,
            &rest_groups,
            0.0,
            val_fraction,
            seed.wrapping_add(fold as u64 + 1),
        )
    })
}

/// Images, groups and images per class in one part of a split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartSummary {
    pub images: usize,
    pub groups: usize,
    pub per_class: Vec<usize>,
}

/// "Images and groups per split", for the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitSummary {
    pub train: PartSummary,
    pub val: PartSummary,
    pub test: PartSummary,
}

/// Counts for the report; `per_class` has `k` entries (more if a label is
/// `k` or above, so no image goes uncounted).
pub fn summarise(split: &Split, labels: &[usize], groups: &[usize], k: usize) -> SplitSummary {
    let part = |rows: &[usize]| {
        let mut per_class = vec![0; k];
        let mut distinct = HashSet::new();
        for &i in rows {
            if let Some(&l) = labels.get(i) {
                if l >= per_class.len() {
                    per_class.resize(l + 1, 0);
                }
                per_class[l] += 1;
            }
            distinct.insert(groups.get(i).copied());
        }
        PartSummary {
            images: rows.len(),
            groups: distinct.len(),
            per_class,
        }
    };
    SplitSummary {
        train: part(&split.train),
        val: part(&split.val),
        test: part(&split.test),
    }
}

/// Groups with rows in more than one part, ascending: empty means no leak.
/// Rows beyond `groups` belong to no group and are skipped.
pub fn groups_on_two_sides(split: &Split, groups: &[usize]) -> Vec<usize> {
    let mut side: HashMap<usize, usize> = HashMap::new();
    let mut leaked = BTreeSet::new();
    for (p, rows) in [&split.train, &split.val, &split.test]
        .into_iter()
        .enumerate()
    {
        for g in rows.iter().filter_map(|&i| groups.get(i)) {
            if *side.entry(*g).or_insert(p) != p {
                leaked.insert(*g);
            }
        }
    }
    leaked.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::Rng;

    /// Rows of `n` in groups of 1..=`max_size` images; labels per group
    /// (`group_level`) or per image, in `0..classes`.
    fn synthetic(
        n: usize,
        max_size: usize,
        classes: usize,
        group_level: bool,
        seed: u64,
    ) -> (Vec<usize>, Vec<usize>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (mut labels, mut groups) = (Vec::new(), Vec::new());
        let mut g = 0;
        while labels.len() < n {
            let size = rng.gen_range(1..=max_size).min(n - labels.len());
            let label = rng.gen_range(0..classes);
            for _ in 0..size {
                groups.push(g);
                labels.push(if group_level {
                    label
                } else {
                    rng.gen_range(0..classes)
                });
            }
            g += 1;
        }
        (labels, groups)
    }

    fn n_groups(groups: &[usize]) -> usize {
        groups.iter().collect::<HashSet<_>>().len()
    }

    fn sorted_rows(split: &Split) -> Vec<usize> {
        let mut all: Vec<usize> = [&split.train, &split.val, &split.test]
            .into_iter()
            .flatten()
            .copied()
            .collect();
        all.sort_unstable();
        all
    }

    /// The fold of every group; fails the test when a group is in two.
    fn fold_of_groups(folds: &[Vec<usize>], groups: &[usize]) -> HashMap<usize, usize> {
        let mut at = HashMap::new();
        for (f, rows) in folds.iter().enumerate() {
            for &i in rows {
                assert_eq!(*at.entry(groups[i]).or_insert(f), f, "group {}", groups[i]);
            }
        }
        at
    }

    #[test]
    fn dense_groups_share_equal_keys_and_isolate_missing_ones() {
        let keys: Vec<Option<String>> =
            [Some("a"), None, Some("b"), Some("a"), Some(" "), Some("b")]
                .into_iter()
                .map(|k| k.map(String::from))
                .collect();
        assert_eq!(dense_groups(&keys), vec![0, 1, 2, 0, 3, 2]);
        assert!(is_ungrouped(&dense_groups(&[None, None, Some("x".into())])));
        assert!(!is_ungrouped(&[3, 9, 3]));
        assert!(is_ungrouped(&[]));
    }

    #[test]
    fn ungrouped_data_keeps_the_per_image_splits_bit_for_bit() {
        let (labels, _) = synthetic(170, 1, 3, true, 5);
        let groups: Vec<usize> = (0..170).rev().collect();
        for seed in [0, 42, 7] {
            assert_eq!(
                stratified_group_folds(&labels, &groups, 5, seed).unwrap(),
                stratified_folds(&labels, 5, seed).unwrap()
            );
            assert_eq!(
                grouped_split(&labels, &groups, 0.15, 0.15, seed).unwrap(),
                stratified_split(&labels, 0.15, 0.15, seed).unwrap()
            );
            assert_eq!(
                grouped_fold_split(&labels, &groups, 5, 3, 0.2, seed).unwrap(),
                fold_split(&labels, 5, 3, 0.2, seed).unwrap()
            );
        }
    }

    #[test]
    fn bad_parameters_are_errors_that_name_the_numbers() {
        let (labels, groups) = synthetic(40, 4, 2, true, 1);
        let g = n_groups(&groups);
        let msg = stratified_group_folds(&labels, &groups, g + 1, 0)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(&g.to_string()) && msg.contains(&(g + 1).to_string()),
            "{msg}"
        );
        assert!(stratified_group_folds(&labels, &groups, 1, 0).is_err());
        assert!(stratified_group_folds(&labels, &groups, g, 0).is_ok());
        assert!(grouped_split(&labels, &groups, 1.0, 0.1, 0).is_err());
        assert!(grouped_fold_split(&labels, &groups, 3, 3, 0.1, 0).is_err());
        assert!(matches!(
            grouped_split(&labels, &groups[1..], 0.2, 0.1, 0),
            Err(Error::Dataset(_))
        ));
    }

    #[test]
    fn grouped_split_hits_class_targets_without_leaks() {
        // 100 lesions of 2 images, 30 melanoma lesions: 60 and 140 images.
        let groups: Vec<usize> = (0..200).map(|i| i / 2).collect();
        let labels: Vec<usize> = groups.iter().map(|&g| usize::from(g >= 30)).collect();
        let s = grouped_split(&labels, &groups, 0.15, 0.15, 42).unwrap();
        assert!(groups_on_two_sides(&s, &groups).is_empty());
        let sum = summarise(&s, &labels, &groups, 2);
        // Targets: test 9 and 21 (odd, so within one group of 2); val 8 and 18.
        assert!(sum.test.per_class[0].abs_diff(9) <= 1, "{sum:?}");
        assert!(sum.test.per_class[1].abs_diff(21) <= 1, "{sum:?}");
        assert_eq!(sum.val.per_class, vec![8, 18]);
        assert_eq!(sum.test.images, 2 * sum.test.groups);
        assert_eq!(sum.train.images + sum.val.images + sum.test.images, 200);
        assert_eq!(s, grouped_split(&labels, &groups, 0.15, 0.15, 42).unwrap());
        assert_ne!(s, grouped_split(&labels, &groups, 0.15, 0.15, 43).unwrap());
    }

    #[test]
    fn a_group_too_large_for_a_part_goes_to_train() {
        // Class 1: two lesions of 6 images and three single images; its test
        // target is 3 and val target 1, so neither lesion of 6 may go there.
        let mut groups = vec![0; 6];
        groups.extend([1; 6]);
        groups.extend(2..15);
        let mut labels = vec![1; 15];
        labels.extend([0; 10]);
        for seed in 0..20 {
            let s = grouped_split(&labels, &groups, 0.2, 0.1, seed).unwrap();
            let sum = summarise(&s, &labels, &groups, 2);
            assert_eq!(sum.test.per_class, vec![2, 2], "seed {seed}");
            assert_eq!(sum.val.per_class, vec![1, 1], "seed {seed}");
        }
    }

    #[test]
    fn summary_counts_images_groups_and_classes() {
        let labels = [0, 0, 1, 1, 2, 0];
        let groups = [0, 0, 1, 2, 2, 3];
        let split = Split {
            train: vec![0, 1, 2],
            val: vec![5],
            test: vec![3, 4],
        };
        let s = summarise(&split, &labels, &groups, 2);
        let part = |images, groups, per_class: &[usize]| PartSummary {
            images,
            groups,
            per_class: per_class.to_vec(),
        };
        assert_eq!(s.train, part(3, 2, &[2, 1]));
        assert_eq!(s.val, part(1, 1, &[1, 0]));
        assert_eq!(s.test, part(2, 1, &[0, 1, 1]));
        assert!(groups_on_two_sides(&split, &groups).is_empty());
        let leaky = Split {
            train: vec![0, 3],
            val: vec![1],
            test: vec![2, 4, 5],
        };
        assert_eq!(groups_on_two_sides(&leaky, &groups), vec![0, 2]);
    }

    /// Test accuracy of 1-nearest-neighbour, the model that profits most
    /// from near-duplicates across the split.
    fn one_nn_accuracy(x: &[Vec<f64>], labels: &[usize], split: &Split) -> f64 {
        let dist =
            |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(p, q)| (p - q).powi(2)).sum::<f64>();
        let correct = split
            .test
            .iter()
            .filter(|&&i| {
                let nearest = split
                    .train
                    .iter()
                    .min_by(|&&a, &&b| dist(&x[i], &x[a]).total_cmp(&dist(&x[i], &x[b])))
                    .unwrap();
                labels[*nearest] == labels[i]
            })
            .count();
        correct as f64 / split.test.len() as f64
    }

    #[test]
    fn per_image_splits_leak_and_grouped_splits_do_not() {
        // 60 lesions x 4 near-duplicate images; labels random per lesion, so
        // nothing carries from one lesion to another: honest accuracy ~0.5.
        let (mut per_image, mut grouped) = (0.0, 0.0);
        let seeds = [1u64, 2, 3, 4, 5];
        for seed in seeds {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let groups: Vec<usize> = (0..240).map(|i| i / 4).collect();
            let lesion_labels: Vec<usize> = (0..60).map(|_| rng.gen_range(0..2)).collect();
            let labels: Vec<usize> = groups.iter().map(|&g| lesion_labels[g]).collect();
            let centres: Vec<Vec<f64>> = (0..60)
                .map(|_| (0..16).map(|_| rng.gen::<f64>()).collect())
                .collect();
            let x: Vec<Vec<f64>> = groups
                .iter()
                .map(|&g| {
                    centres[g]
                        .iter()
                        .map(|c| c + 1e-3 * rng.gen::<f64>())
                        .collect()
                })
                .collect();
            let leaky = stratified_split(&labels, 0.25, 0.0, seed).unwrap();
            assert!(!groups_on_two_sides(&leaky, &groups).is_empty());
            per_image += one_nn_accuracy(&x, &labels, &leaky) / seeds.len() as f64;
            let clean = grouped_split(&labels, &groups, 0.25, 0.0, seed).unwrap();
            assert!(groups_on_two_sides(&clean, &groups).is_empty());
            grouped += one_nn_accuracy(&x, &labels, &clean) / seeds.len() as f64;
        }
        assert!(per_image > 0.9, "per-image split accuracy {per_image}");
        assert!(grouped < 0.75, "grouped split accuracy {grouped}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn folds_partition_rows_and_never_split_a_group(
            n in 20usize..=300,
            classes in 2usize..=5,
            group_level in any::<bool>(),
            k in 2usize..=5,
            data_seed in any::<u64>(),
            seed in any::<u64>(),
        ) {
            let (labels, groups) = synthetic(n, 8, classes, group_level, data_seed);
            let result = stratified_group_folds(&labels, &groups, k, seed);
            prop_assert_eq!(result.is_err(), k > n_groups(&groups));
            let Ok(folds) = result else { return Ok(()) };
            prop_assert_eq!(folds.concat().len(), n);
            let mut all = folds.concat();
            all.sort_unstable();
            prop_assert_eq!(all, (0..n).collect::<Vec<_>>());
            prop_assert!(folds.iter().all(|f| !f.is_empty()));
            fold_of_groups(&folds, &groups);
            prop_assert_eq!(&folds, &stratified_group_folds(&labels, &groups, k, seed).unwrap());
        }

        #[test]
        fn splits_partition_rows_and_never_split_a_group(
            n in 20usize..=300,
            classes in 2usize..=5,
            group_level in any::<bool>(),
            k in 2usize..=5,
            test_fraction in 0.0f64..0.5,
            val_fraction in 0.0f64..0.5,
            data_seed in any::<u64>(),
            seed in any::<u64>(),
        ) {
            let (labels, groups) = synthetic(n, 8, classes, group_level, data_seed);
            let s = grouped_split(&labels, &groups, test_fraction, val_fraction, seed).unwrap();
            prop_assert_eq!(sorted_rows(&s), (0..n).collect::<Vec<_>>());
            prop_assert!(groups_on_two_sides(&s, &groups).is_empty());
            prop_assert_eq!(&s, &grouped_split(&labels, &groups, test_fraction, val_fraction, seed).unwrap());
            let fold = (seed % k as u64) as usize;
            let result = grouped_fold_split(&labels, &groups, k, fold, val_fraction, seed);
            prop_assert_eq!(result.is_err(), k > n_groups(&groups));
            let Ok(f) = result else { return Ok(()) };
            prop_assert_eq!(sorted_rows(&f), (0..n).collect::<Vec<_>>());
            prop_assert!(groups_on_two_sides(&f, &groups).is_empty());
            let folds = stratified_group_folds(&labels, &groups, k, seed).unwrap();
            prop_assert_eq!(&f.test, &folds[fold]);
        }

        /// Lesion-level labels: each class's count in each fold, and in the
        /// test part, is within one largest group of its target.
        #[test]
        fn class_counts_stay_within_one_group_of_target(
            n in 60usize..=300,
            classes in 2usize..=5,
            k in 2usize..=5,
            max_size in 1usize..=8,
            data_seed in any::<u64>(),
            seed in any::<u64>(),
        ) {
            let (labels, groups) = synthetic(n, max_size, classes, true, data_seed);
            let folds = stratified_group_folds(&labels, &groups, k, seed).unwrap();
            let s = grouped_split(&labels, &groups, 0.2, 0.1, seed).unwrap();
            let sum = summarise(&s, &labels, &groups, classes);
            for c in 0..classes {
                let total = labels.iter().filter(|&&l| l == c).count();
                for f in &folds {
                    let in_fold = f.iter().filter(|&&i| labels[i] == c).count();
                    prop_assert!((in_fold as f64 - total as f64 / k as f64).abs() <= max_size as f64,
                        "class {} has {} of {} in a fold of {}", c, in_fold, total, k);
                }
                let target = take_count(total, 0.2);
                prop_assert!(sum.test.per_class[c].abs_diff(target) <= max_size,
                    "class {} test {} target {}", c, sum.test.per_class[c], target);
            }
        }
    }
}
