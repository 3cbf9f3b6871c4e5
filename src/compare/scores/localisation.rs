//! Localisation against a lesion mask (`true` = lesion): does the map put
//! its relevance on the lesion? Only with masks ([data] masks).

use super::descending;

/// Relevance mass accuracy (Arras et al. 2022): the share of the total
/// attribution that falls inside the mask.
pub fn relevance_mass_accuracy(a: &[f64], mask: &[bool]) -> f64 {
    let inside: f64 = a.iter().zip(mask).filter(|(_, &m)| m).map(|(v, _)| v).sum();
    inside / a.iter().sum::<f64>()
}

/// Relevance rank accuracy (Arras et al. 2022): of the |mask| most relevant
/// pixels, the share inside the mask.
pub fn relevance_rank_accuracy(a: &[f64], mask: &[bool]) -> f64 {
    let k = mask.iter().filter(|&&m| m).count();
    if k == 0 {
        return f64::NAN;
    }
    let hits = descending(a)[..k].iter().filter(|&&i| mask[i]).count();
    hits as f64 / k as f64
}

/// Pointing game (Zhang et al. 2018): whether a most relevant pixel lies in
/// the mask.
pub fn pointing_game(a: &[f64], mask: &[bool]) -> bool {
    let max = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    a.iter().zip(mask).any(|(&v, &m)| m && v == max)
}

/// Top-k intersection (Theiner et al. 2021): the share of the `k` most
/// relevant pixels inside the mask; with `concept_influence` divided by the
/// mask's share of the image.
pub fn top_k_intersection(a: &[f64], mask: &[bool], k: usize, concept_influence: bool) -> f64 {
    let k = k.min(a.len());
    let hits = descending(a)[..k].iter().filter(|&&i| mask[i]).count();
    let score = hits as f64 / k as f64;
    if concept_influence {
        let inside = mask.iter().filter(|&&m| m).count() as f64;
        score * a.len() as f64 / inside
    } else {
        score
    }
}
