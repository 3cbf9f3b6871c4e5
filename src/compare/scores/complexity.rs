//! Complexity of a map: how few pixels carry the relevance. A concise map
//! is easier to read, and a map spread evenly over the image says little.

/// Sparseness (Chalasani et al. 2020): the Gini index of the (prepared)
/// attributions, each lifted by 1e-7 as Quantus does; 1 = all relevance on
/// one pixel, 0 = uniform.
pub fn sparseness(a: &[f64]) -> f64 {
    let mut v: Vec<f64> = a.iter().map(|x| x + 1e-7).collect();
    v.sort_by(f64::total_cmp);
    let n = v.len() as f64;
    let weighted: f64 = v
        .iter()
        .enumerate()
        .map(|(i, x)| (2.0 * (i as f64 + 1.0) - n - 1.0) * x)
        .sum();
    weighted / (n * v.iter().sum::<f64>())
}

/// Complexity (Bhatt et al. 2020): the entropy (nats) of the attributions
/// as a distribution over pixels, `v = a / Σ|a|`; NaN when a value is
/// negative (prepare with `abs`).
pub fn complexity(a: &[f64]) -> f64 {
    let total: f64 = a.iter().map(|x| x.abs()).sum();
    -a.iter()
        .map(|x| {
            let v = x / total;
            v * (v + 1e-12).ln()
        })
        .sum::<f64>()
}
