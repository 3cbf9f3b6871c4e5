//! Which images `--batch` explains: the reference model's split, and of it
//! all or a stratified sample (`[batch] explain_images`).

use crate::data::scan::Scan;
use crate::data::split::SplitName;
use crate::train::SplitOutcome;
use crate::verdict::EvalRow;

/// The ids of `split` for the reference model: its own validation or test
/// images, its training images (every sample in neither), or all.
pub(super) fn explained_ids(split: SplitName, own: &SplitOutcome, data: &Scan) -> Vec<String> {
    let ids_of = |rows: &[EvalRow]| rows.iter().map(|e| e.id.clone()).collect();
    match split {
        SplitName::Test => ids_of(&own.test),
        SplitName::Val => ids_of(&own.val),
        SplitName::Train => {
            let held: std::collections::HashSet<&str> = own
                .val
                .iter()
                .chain(&own.test)
                .map(|e| e.id.as_str())
                .collect();
            data.samples
                .iter()
                .filter(|s| !held.contains(s.id.as_str()))
                .map(|s| s.id.clone())
                .collect()
        }
        SplitName::All => data.samples.iter().map(|s| s.id.clone()).collect(),
    }
}

/// `[batch] explain_images` of `ids`: all, or N stratified by class and by
/// whether the reference model's held-out prediction was right.
pub(super) fn sampled(
    ids: Vec<String>,
    own: &SplitOutcome,
    data: &Scan,
    how: crate::data::subset::ExplainImages,
    seed: u64,
) -> Vec<String> {
    let crate::data::subset::ExplainImages::Count(n) = how else {
        return ids;
    };
    let label: std::collections::HashMap<&str, usize> = data
        .samples
        .iter()
        .map(|s| (s.id.as_str(), s.label))
        .collect();
    let right: std::collections::HashMap<&str, bool> = own
        .val
        .iter()
        .chain(&own.test)
        .map(|e| {
            (
                e.id.as_str(),
                crate::evaluate::multiclass::argmax(&e.logits) == e.label,
            )
        })
        .collect();
    let strata: Vec<(usize, Option<bool>)> = ids
        .iter()
        .map(|id| {
            (
                label.get(id.as_str()).copied().unwrap_or(0),
                right.get(id.as_str()).copied(),
            )
        })
        .collect();
    crate::data::subset::stratified_sample(&strata, n, seed)
        .into_iter()
        .map(|i| ids[i].clone())
        .collect()
}
