//! Sample ids the user typed (`--exclude melanoma/a.jpg`): an id that is
//! not in the data set is an error naming it and the nearest id, because a
//! typo would otherwise leave the image in silently.

use super::scan::Scan;
use crate::error::{Error, Result};

/// Levenshtein distance in characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// The id nearest to `wanted`, when it is near enough to be a likely typo
/// (at most a third of its characters differ).
pub fn closest<'a>(wanted: &str, ids: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let (best, d) = ids
        .into_iter()
        .map(|id| (id, distance(wanted, id)))
        .min_by_key(|&(_, d)| d)?;
    (d * 3 <= wanted.chars().count().max(3)).then_some(best)
}

/// Refuses ids given with `option` that are not samples of `data`.
pub fn check_known(option: &str, wanted: &[String], data: &Scan) -> Result<()> {
    for id in wanted {
        if data.samples.iter().any(|s| &s.id == id) {
            continue;
        }
        let hint = closest(id, data.samples.iter().map(|s| s.id.as_str()))
            .map(|c| format!("; did you mean '{c}'?"))
            .unwrap_or_else(|| "; ids are paths below the data root, e.g. 'melanoma/1.jpg'".into());
        return Err(Error::Config(format!(
            "{option}: '{id}' is not a sample of {}{hint}",
            data.root.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_edits() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("same", "same"), 0);
    }

    #[test]
    fn closest_suggests_only_near_ids() {
        let ids = ["melanoma/1.jpg", "naevus/12.jpg"];
        assert_eq!(closest("melanoma/l.jpg", ids), Some("melanoma/1.jpg"));
        assert_eq!(closest("naevus/12.png", ids), Some("naevus/12.jpg"));
        assert_eq!(closest("something-else-entirely", ids), None);
    }
}
