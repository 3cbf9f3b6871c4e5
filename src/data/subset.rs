//! Which held-out images `--batch` explains when explaining all of them
//! would take hours (30 000 images x 3 methods): a seeded sample that keeps
//! every class and both right and wrong predictions in proportion, so the
//! agreement figures describe the same mix of cases the model meets.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// `[batch] explain_images`: `"all"` or a number of images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExplainImages {
    #[default]
    All,
    Count(usize),
}

impl Serialize for ExplainImages {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ExplainImages::All => s.serialize_str("all"),
            ExplainImages::Count(n) => s.serialize_u64(*n as u64),
        }
    }
}

impl<'de> Deserialize<'de> for ExplainImages {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Count(u64),
            Word(String),
        }
        match Raw::deserialize(d)? {
            Raw::Count(0) => Err(serde::de::Error::custom(
                "explain_images must be \"all\" or at least 1",
            )),
            Raw::Count(n) => Ok(ExplainImages::Count(n as usize)),
            Raw::Word(w) if w == "all" => Ok(ExplainImages::All),
            Raw::Word(w) => Err(serde::de::Error::custom(format!(
                "explain_images must be \"all\" or a number, not \"{w}\""
            ))),
        }
    }
}

/// Indices of at most `n` of the items, each item's stratum being its
/// (class, prediction correct?) pair (`None`: not predicted). Strata get
/// shares proportional to their size (largest remainders), at least one
/// each while `n` allows; items are drawn within a stratum by a seeded
/// shuffle and returned in their original order.
pub fn stratified_sample(strata: &[(usize, Option<bool>)], n: usize, seed: u64) -> Vec<usize> {
    if n >= strata.len() {
        return (0..strata.len()).collect();
    }
    let mut groups: std::collections::BTreeMap<(usize, Option<bool>), Vec<usize>> =
        Default::default();
    for (i, key) in strata.iter().enumerate() {
        groups.entry(*key).or_default().push(i);
    }
    let quota = quotas(&groups.values().map(Vec::len).collect::<Vec<_>>(), n);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut picked = Vec::with_capacity(n);
    for (members, q) in groups.into_values().zip(quota) {
        let mut members = members;
        members.shuffle(&mut rng);
        picked.extend(members.into_iter().take(q));
    }
    picked.sort_unstable();
    picked
}

/// `n` (< the total) split over strata of `sizes` in proportion (largest
/// remainders), then every empty-handed stratum given one image taken from
/// the largest share while `n` allows, so a rare class or error is never
/// left out.
fn quotas(sizes: &[usize], n: usize) -> Vec<usize> {
    let total: usize = sizes.iter().sum();
    let share: Vec<f64> = sizes
        .iter()
        .map(|&s| n as f64 * s as f64 / total as f64)
        .collect();
    let mut q: Vec<usize> = share.iter().map(|s| s.floor() as usize).collect();
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by(|&a, &b| {
        let frac = |i: usize| share[i] - share[i].floor();
        frac(b).total_cmp(&frac(a)).then(sizes[b].cmp(&sizes[a]))
    });
    let given: usize = q.iter().sum();
    for &i in order.iter().take(n - given) {
        q[i] += 1;
    }
    if n >= sizes.len() {
        for i in 0..sizes.len() {
            if q[i] == 0 {
                let donor = (0..sizes.len()).max_by_key(|&j| q[j]).unwrap_or(i);
                if q[donor] > 1 {
                    q[donor] -= 1;
                    q[i] = 1;
                }
            }
        }
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strata() -> Vec<(usize, Option<bool>)> {
        // 900 benign (850 right), 100 melanoma (70 right).
        let mut v = vec![(1, Some(true)); 850];
        v.extend(vec![(1, Some(false)); 50]);
        v.extend(vec![(0, Some(true)); 70]);
        v.extend(vec![(0, Some(false)); 30]);
        v
    }

    #[test]
    fn a_sample_keeps_the_mix_of_classes_and_errors_and_is_seeded() {
        let s = strata();
        let picked = stratified_sample(&s, 100, 5);
        assert_eq!(picked.len(), 100);
        let count = |k: (usize, Option<bool>)| picked.iter().filter(|&&i| s[i] == k).count();
        assert_eq!(count((1, Some(true))), 85);
        assert_eq!(count((1, Some(false))), 5);
        assert_eq!(count((0, Some(true))), 7);
        assert_eq!(count((0, Some(false))), 3);
        assert!(picked.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(picked, stratified_sample(&s, 100, 5));
        assert_ne!(picked, stratified_sample(&s, 100, 6));
    }

    #[test]
    fn small_strata_are_kept_and_all_means_all() {
        let mut s = vec![(0, Some(true)); 97];
        s.extend([(1, Some(false)), (1, Some(true)), (2, None)]);
        let picked = stratified_sample(&s, 4, 0);
        assert_eq!(picked.len(), 4);
        assert!(picked.contains(&97) && picked.contains(&98) && picked.contains(&99));
        assert_eq!(stratified_sample(&s, 1000, 0).len(), 100);
    }

    #[test]
    fn the_setting_reads_all_or_a_number() {
        #[derive(Debug, Deserialize)]
        struct T {
            e: ExplainImages,
        }
        let t: T = toml::from_str("e = \"all\"").unwrap();
        assert_eq!(t.e, ExplainImages::All);
        let t: T = toml::from_str("e = 200").unwrap();
        assert_eq!(t.e, ExplainImages::Count(200));
        assert!(toml::from_str::<T>("e = 0").is_err());
        assert!(toml::from_str::<T>("e = \"some\"")
            .unwrap_err()
            .to_string()
            .contains("\"some\""));
    }
}
