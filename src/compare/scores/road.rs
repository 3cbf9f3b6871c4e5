//! ROAD, RemOve And Debias (Rong et al. 2022): remove the most (or least)
//! relevant pixels and fill them by noisy linear imputation, each from its
//! eight neighbours, instead of a flat value whose shape would tell the
//! model which pixels were removed. A faithful map makes the output drop
//! fast when the most relevant pixels go and slowly when the least do.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::{descending, rows_of, standard_normal, Image, ModelFn};
use crate::error::Result;

/// Neighbour offsets (row, column) and weights: 1/6 across an edge, 1/12
/// across a corner.
const NEIGHBOURS: [((i64, i64), f64); 8] = [
    ((1, 1), 1.0 / 12.0),
    ((0, 1), 1.0 / 6.0),
    ((-1, 1), 1.0 / 12.0),
    ((1, -1), 1.0 / 12.0),
    ((0, -1), 1.0 / 6.0),
    ((-1, -1), 1.0 / 12.0),
    ((1, 0), 1.0 / 6.0),
    ((-1, 0), 1.0 / 6.0),
];

/// The linear system of the removed pixels: `tot_i v_i − Σ w_ij v_j =
/// Σ w_ik x_k` over in-image neighbours (`j` removed, `k` kept), symmetric
/// positive definite wherever a removed region touches a kept pixel.
struct System {
    rows: Vec<Equation>,
}

/// One removed pixel's equation: its total neighbour weight, its removed
/// neighbours (position in `removed`, weight) and its kept ones (pixel,
/// weight).
type Equation = (f64, Vec<(usize, f64)>, Vec<(usize, f64)>);

impl System {
    fn new(removed: &[usize], height: usize, width: usize) -> Self {
        let mut position = vec![usize::MAX; height * width];
        for (k, &p) in removed.iter().enumerate() {
            position[p] = k;
        }
        let rows = removed
            .iter()
            .map(|&p| {
                let (r, c) = ((p / width) as i64, (p % width) as i64);
                let (mut total, mut inner, mut outer) = (0.0, Vec::new(), Vec::new());
                for ((dr, dc), w) in NEIGHBOURS {
                    let (rr, cc) = (r + dr, c + dc);
                    if rr < 0 || cc < 0 || rr >= height as i64 || cc >= width as i64 {
                        continue;
                    }
                    total += w;
                    let q = rr as usize * width + cc as usize;
                    match position[q] {
                        usize::MAX => outer.push((q, w)),
                        k => inner.push((k, w)),
                    }
                }
                (total, inner, outer)
            })
            .collect();
        System { rows }
    }

    fn apply(&self, v: &[f64]) -> Vec<f64> {
        self.rows
            .iter()
            .enumerate()
            .map(|(i, (total, inner, _))| {
                total * v[i] - inner.iter().map(|&(j, w)| w * v[j]).sum::<f64>()
            })
            .collect()
    }

    /// Conjugate gradients to relative residual `tolerance` (the system is
    /// symmetric positive definite; Quantus solves it directly).
    fn solve(&self, rhs: &[f64], tolerance: f64) -> Vec<f64> {
        let n = rhs.len();
        let mut x = vec![0.0; n];
        let mut r = rhs.to_vec();
        let mut p = r.clone();
        let mut rr: f64 = r.iter().map(|v| v * v).sum();
        let target = rr * tolerance * tolerance;
        for _ in 0..(10 * n + 100) {
            if rr <= target || rr == 0.0 {
                break;
            }
            let ap = self.apply(&p);
            let alpha = rr / p.iter().zip(&ap).map(|(a, b)| a * b).sum::<f64>();
            for i in 0..n {
                x[i] += alpha * p[i];
                r[i] -= alpha * ap[i];
            }
            let next: f64 = r.iter().map(|v| v * v).sum();
            let beta = next / rr;
            rr = next;
            for i in 0..n {
                p[i] = r[i] + beta * p[i];
            }
        }
        x
    }
}

/// `x` with the pixels `removed` (indices into `H·W`) of every channel
/// replaced by their linear imputation plus `noise · randn`; `randn` holds
/// one standard normal draw per removed pixel and channel (channel-major);
/// the linear system is solved to relative residual `tolerance`.
pub fn impute(x: &Image, removed: &[usize], randn: &[f64], noise: f64, tolerance: f64) -> Vec<f32> {
    let system = System::new(removed, x.height, x.width);
    let hw = x.pixels();
    let mut out = x.data.clone();
    for c in 0..x.channels {
        let plane = &x.data[c * hw..(c + 1) * hw];
        let rhs: Vec<f64> = system
            .rows
            .iter()
            .map(|(_, _, outer)| {
                outer
                    .iter()
                    .map(|&(q, w)| f64::from(w as f32 * plane[q]))
                    .sum()
            })
            .collect();
        let solved = system.solve(&rhs, tolerance);
        for (k, &p) in removed.iter().enumerate() {
            let z = randn.get(c * removed.len() + k).copied().unwrap_or(0.0);
            out[c * hw + p] = (solved[k] + noise * z) as f32;
        }
    }
    out
}

/// The removal fractions of a ROAD curve: 10 %, 20 %, …, 90 %.
pub fn default_fractions() -> Vec<f64> {
    (1..=9).map(|i| i as f64 / 10.0).collect()
}

/// One ROAD curve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoadCurve {
    pub most_relevant_first: bool,
    pub fractions: Vec<f64>,
    /// The output for the target class after each removal.
    pub outputs: Vec<f64>,
    /// Whether the target class is still the arg-max (Quantus's score).
    pub still_predicted: Vec<bool>,
}

impl RoadCurve {
    /// Mean output over the fractions (lower is better for most relevant
    /// first, higher for least relevant first).
    pub fn mean_output(&self) -> f64 {
        self.outputs.iter().sum::<f64>() / self.outputs.len().max(1) as f64
    }
}

/// Pixels removed at `fraction`: the first ⌊H·W·fraction⌋ of `order`.
pub fn removed_at(order: &[usize], fraction: f64) -> &[usize] {
    let k = ((order.len() as f64) * fraction + 1e-9).floor() as usize;
    &order[..k.min(order.len())]
}

/// How a ROAD curve is measured.
#[derive(Debug, Clone, PartialEq)]
pub struct RoadOptions {
    pub fractions: Vec<f64>,
    /// Standard deviation of the imputation noise (Rong et al.: 0.01 of the
    /// input scale).
    pub noise: f64,
    pub seed: u64,
    /// Relative residual of the imputation's solve: far below the noise.
    pub tolerance: f64,
}

impl Default for RoadOptions {
    fn default() -> Self {
        RoadOptions {
            fractions: default_fractions(),
            noise: 0.01,
            seed: 0,
            tolerance: 1e-6,
        }
    }
}

/// ROAD of map `a` (per pixel) for class `target`: at each fraction, the
/// most (or least) relevant pixels imputed with noise, all in one batch
/// through `model`.
pub fn road(
    model: &ModelFn,
    x: &Image,
    a: &[f64],
    target: usize,
    most_relevant_first: bool,
    opts: &RoadOptions,
) -> Result<RoadCurve> {
    let (fractions, noise) = (&opts.fractions, opts.noise);
    let mut order = descending(a);
    if !most_relevant_first {
        order.reverse();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let rows: Vec<Vec<f32>> = fractions
        .iter()
        .map(|&f| {
            let removed = removed_at(&order, f);
            let randn: Vec<f64> = (0..removed.len() * x.channels)
                .map(|_| standard_normal(&mut rng))
                .collect();
            impute(x, removed, &randn, noise, opts.tolerance)
        })
        .collect();
    let out = rows_of(&model(&x.batch(&rows))?)?;
    let outputs = out
        .iter()
        .map(|r| r.get(target).copied().unwrap_or(f64::NAN))
        .collect();
    let still_predicted = out
        .iter()
        .map(|r| {
            let best = (0..r.len()).max_by(|&i, &j| r[i].total_cmp(&r[j]));
            best == Some(target)
        })
        .collect();
    Ok(RoadCurve {
        most_relevant_first,
        fractions: fractions.to_vec(),
        outputs,
        still_predicted,
    })
}
