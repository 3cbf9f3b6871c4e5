//! Cluster (group) percentile bootstrap.
//!
//! Why: several images of one lesion or one patient are not independent, so
//! resampling images understates the spread of a test-set metric. Resampling
//! whole groups (patients, lesions) with replacement keeps each group's rows
//! together and gives the interval a clinician can read per patient.
//! Without groups, or when every group is a single row, this is exactly
//! [`bootstrap_statistic`].

use std::collections::BTreeMap;

use rand::Rng;

use crate::metrics::{bootstrap_statistic, BootstrapOptions, Interval, MetricsError};

/// Seeded percentile bootstrap that resamples groups of rows.
///
/// `groups[i]` is the group id of row `i` (normally dense `0..G`; ids with no
/// row are ignored, so sparse ids work too). Each resample draws as many
/// groups as there are non-empty groups, uniformly with replacement, from a
/// ChaCha8 generator seeded with `opts.seed`, and passes the concatenated rows
/// of the drawn groups (each group's rows in ascending order, groups in draw
/// order) to `statistic`; the resample size therefore varies.
///
/// The rules are those of [`bootstrap_statistic`]: non-finite statistics are
/// skipped and drawing stops after `opts.n_resamples` valid resamples or
/// `max(10 * n_resamples, 100)` draws; the bounds are NumPy-default percentiles
/// `(1 ∓ level) / 2`; `point` is stored as given.
///
/// `groups == None` or all-singleton groups delegate to
/// [`bootstrap_statistic`], so the result is bit-identical to it.
///
/// Errors: `groups` not of length `n` ([`MetricsError::WrongLength`]) and the
/// errors of [`bootstrap_statistic`].
pub fn bootstrap_by_group<F: FnMut(&[usize]) -> f64>(
    n: usize,
    groups: Option<&[usize]>,
    point: f64,
    statistic: F,
    opts: &BootstrapOptions,
) -> Result<Interval, MetricsError> {
    let Some(groups) = groups else {
        return bootstrap_statistic(n, point, statistic, opts);
    };
    if groups.len() != n {
        return Err(MetricsError::WrongLength {
            what: "groups",
            expected: n,
            found: groups.len(),
        });
    }
    let members = group_members(groups);
    if members.len() == n {
        return bootstrap_statistic(n, point, statistic, opts);
    }
    crate::metrics::percentile_bootstrap(
        point,
        |rng, idx| {
            idx.clear();
            for _ in 0..members.len() {
                idx.extend_from_slice(&members[rng.gen_range(0..members.len())]);
            }
        },
        statistic,
        opts,
    )
}

/// Rows of each non-empty group, groups in ascending id, rows ascending.
/// A map, not a vector indexed by id, so a huge stray id cannot allocate.
fn group_members(groups: &[usize]) -> Vec<Vec<usize>> {
    let mut map: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (row, &g) in groups.iter().enumerate() {
        map.entry(g).or_default().push(row);
    }
    map.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_of(values: &[f64]) -> impl FnMut(&[usize]) -> f64 + '_ {
        |idx| idx.iter().map(|&i| values[i]).sum::<f64>() / idx.len() as f64
    }

    #[test]
    fn no_groups_and_singletons_delegate_exactly() {
        let values: Vec<f64> = (0..30).map(|i| ((i * 7) % 11) as f64).collect();
        let opts = BootstrapOptions::new(500, 42);
        let plain = bootstrap_statistic(30, 5.0, mean_of(&values), &opts).unwrap();
        let none = bootstrap_by_group(30, None, 5.0, mean_of(&values), &opts).unwrap();
        assert_eq!(none, plain);
        // Singletons with arbitrary (permuted, sparse) ids still delegate.
        let ids: Vec<usize> = (0..30).map(|i| 1000 - 3 * i).collect();
        let single = bootstrap_by_group(30, Some(&ids), 5.0, mean_of(&values), &opts).unwrap();
        assert_eq!(single, plain);
        assert_eq!(single.n_valid, 500);
    }

    #[test]
    fn resamples_keep_every_group_whole() {
        let groups = [2, 0, 2, 1, 3, 3, 0, 2, 5, 3];
        let members = group_members(&groups);
        assert_eq!(
            members,
            vec![vec![1, 6], vec![3], vec![0, 2, 7], vec![4, 5, 9], vec![8]]
        );
        let mut sizes = std::collections::BTreeSet::new();
        let mut checked = 0;
        let stat = |idx: &[usize]| {
            let mut p = 0;
            let mut drawn_groups = 0;
            while p < idx.len() {
                let g = groups[idx[p]];
                let block = members.iter().find(|m| groups[m[0]] == g).unwrap();
                assert_eq!(
                    &idx[p..p + block.len()],
                    block.as_slice(),
                    "group {g} split"
                );
                p += block.len();
                drawn_groups += 1;
            }
            assert_eq!(drawn_groups, 5, "one draw per non-empty group");
            sizes.insert(idx.len());
            checked += 1;
            1.0
        };
        let ci = bootstrap_by_group(10, Some(&groups), 1.0, stat, &BootstrapOptions::new(300, 7))
            .unwrap();
        assert_eq!(checked, 300);
        assert!(sizes.len() > 3, "resample sizes vary: {sizes:?}");
        assert_eq!(
            (ci.low, ci.high, ci.n_valid, ci.n_drawn),
            (1.0, 1.0, 300, 300)
        );
    }

    #[test]
    fn clustered_data_gets_a_wider_interval() {
        // 10 patients x 10 identical images: the information is 10 rows, not 100.
        let values: Vec<f64> = (0..100).map(|i| (i / 10) as f64).collect();
        let groups: Vec<usize> = (0..100).map(|i| i / 10).collect();
        let opts = BootstrapOptions::new(2000, 3);
        let rows = bootstrap_by_group(100, None, 4.5, mean_of(&values), &opts).unwrap();
        let pats = bootstrap_by_group(100, Some(&groups), 4.5, mean_of(&values), &opts).unwrap();
        let (wr, wp) = (rows.high - rows.low, pats.high - pats.low);
        // Design effect 10 => width ratio about sqrt(10) ~ 3.2.
        assert!(wp > 2.5 * wr && wp < 4.0 * wr, "rows {wr}, patients {wp}");
        let again = bootstrap_by_group(100, Some(&groups), 4.5, mean_of(&values), &opts).unwrap();
        assert_eq!(again, pats, "seeded");
    }

    #[test]
    fn nan_statistics_are_skipped_and_counted() {
        let groups = [0, 0, 1, 1, 2];
        let mut calls = 0;
        // Every other resample is undefined.
        let stat = |idx: &[usize]| {
            calls += 1;
            if calls % 2 == 0 {
                f64::NAN
            } else {
                idx.len() as f64
            }
        };
        let ci =
            bootstrap_by_group(5, Some(&groups), 5.0, stat, &BootstrapOptions::new(50, 1)).unwrap();
        assert_eq!((ci.n_valid, ci.n_drawn), (50, 99));
        assert!(ci.low >= 3.0 && ci.high <= 6.0, "{ci:?}");
        let err = bootstrap_by_group(
            5,
            Some(&groups),
            1.0,
            |_| f64::NAN,
            &BootstrapOptions::new(20, 1),
        );
        assert_eq!(err, Err(MetricsError::NoValidResamples { drawn: 200 }));
    }

    #[test]
    fn invalid_inputs_are_errors() {
        let opts = BootstrapOptions::new(10, 0);
        let g = [0, 0, 1];
        assert_eq!(
            bootstrap_by_group(4, Some(&g), 0.0, |_| 0.0, &opts),
            Err(MetricsError::WrongLength {
                what: "groups",
                expected: 4,
                found: 3
            })
        );
        let none = BootstrapOptions::new(0, 0);
        assert_eq!(
            bootstrap_by_group(3, Some(&g), 0.0, |_| 0.0, &none),
            Err(MetricsError::NoResamples)
        );
        let level = BootstrapOptions { level: 1.0, ..opts };
        assert_eq!(
            bootstrap_by_group(3, Some(&g), 0.0, |_| 0.0, &level),
            Err(MetricsError::InvalidLevel(1.0))
        );
        assert_eq!(
            bootstrap_by_group(0, Some(&[]), 0.0, |_| 0.0, &opts),
            Err(MetricsError::Empty)
        );
    }
}
