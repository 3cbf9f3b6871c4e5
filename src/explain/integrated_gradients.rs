//! Integrated Gradients (Sundararajan et al. 2017) with Captum's integration
//! rules: Riemann left/right/middle/trapezoid and Gauss-Legendre. Interpolated
//! inputs go through the model `internal_batch` at a time, so memory stays
//! bounded whatever the number of steps.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::{Explanation, Method};
use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Integration {
    RiemannLeft,
    RiemannRight,
    RiemannMiddle,
    RiemannTrapezoid,
    /// Captum's name, `gausslegendre`, is accepted too.
    #[serde(alias = "gausslegendre")]
    GaussLegendre,
}

impl std::str::FromStr for Integration {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "riemann_left" | "left" => Ok(Integration::RiemannLeft),
            "riemann_right" | "right" => Ok(Integration::RiemannRight),
            "riemann_middle" | "middle" => Ok(Integration::RiemannMiddle),
            "riemann_trapezoid" | "trapezoid" => Ok(Integration::RiemannTrapezoid),
            "gausslegendre" | "gauss_legendre" | "gl" => Ok(Integration::GaussLegendre),
            _ => Err(crate::Error::Config(format!(
                "unknown integration '{s}' (riemann_left, riemann_right, riemann_middle, riemann_trapezoid, gausslegendre)"
            ))),
        }
    }
}

/// (alphas, weights) of an `n`-point rule on [0, 1], as Captum defines them
/// (`captum.attr._utils.approximation_methods`).
pub fn nodes(rule: Integration, n: usize) -> (Vec<f64>, Vec<f64>) {
    let n = n.max(1);
    let nf = n as f64;
    let linspace = |a: f64, b: f64| -> Vec<f64> {
        if n == 1 {
            return vec![a];
        }
        (0..n)
            .map(|i| a + (b - a) * i as f64 / (nf - 1.0))
            .collect()
    };
    match rule {
        Integration::GaussLegendre => {
            let (x, w) = gauss_legendre(n);
            (
                x.iter().map(|v| 0.5 * (1.0 + v)).collect(),
                w.iter().map(|v| 0.5 * v).collect(),
            )
        }
        Integration::RiemannLeft => (linspace(0.0, 1.0 - 1.0 / nf), vec![1.0 / nf; n]),
        Integration::RiemannRight => (linspace(1.0 / nf, 1.0), vec![1.0 / nf; n]),
        Integration::RiemannMiddle => (
            linspace(1.0 / (2.0 * nf), 1.0 - 1.0 / (2.0 * nf)),
            vec![1.0 / nf; n],
        ),
        Integration::RiemannTrapezoid => {
            let mut w = vec![1.0 / nf; n];
            w[0] /= 2.0;
            w[n - 1] /= 2.0;
            (linspace(0.0, 1.0), w)
        }
    }
}

/// Gauss-Legendre nodes and weights on [-1, 1] (Newton iteration on P_n),
/// ascending like `numpy.polynomial.legendre.leggauss`.
pub fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut x = vec![0.0; n];
    let mut w = vec![0.0; n];
    let nf = n as f64;
    for i in 0..n.div_ceil(2) {
        let mut z = (std::f64::consts::PI * (i as f64 + 0.75) / (nf + 0.5)).cos();
        let mut dp = 1.0;
        for _ in 0..100 {
            let (mut p0, mut p1) = (1.0, z);
            for k in 2..=n {
                let kf = k as f64;
                let p2 = ((2.0 * kf - 1.0) * z * p1 - (kf - 1.0) * p0) / kf;
                p0 = p1;
                p1 = p2;
            }
            let pn = if n == 1 { z } else { p1 };
            let pn1 = if n == 1 { 1.0 } else { p0 };
            dp = nf * (z * pn - pn1) / (z * z - 1.0);
            let dz = pn / dp;
            z -= dz;
            if dz.abs() < 1e-15 {
                break;
            }
        }
        let weight = 2.0 / ((1.0 - z * z) * dp * dp);
        x[i] = -z;
        x[n - 1 - i] = z;
        w[i] = weight;
        w[n - 1 - i] = weight;
    }
    (x, w)
}

/// Integrated Gradients of column `target` of any differentiable `forward`
/// (`(N,3,H,W)` → `(N, classes)`): one network's logits, or an ensemble's
/// combined output. `x`, `baseline`: `(1,3,H,W)` on the forward's device.
pub fn explain(
    forward: &dyn Fn(&Tensor) -> Tensor,
    x: &Tensor,
    baseline: &Tensor,
    target: usize,
    steps: usize,
    rule: Integration,
    internal_batch: usize,
) -> Result<Explanation> {
    let (alphas, weights) = nodes(rule, steps);
    let diff = x - baseline;
    let mut total = x.zeros_like();
    let chunk = internal_batch.max(1);
    for (a_chunk, w_chunk) in alphas.chunks(chunk).zip(weights.chunks(chunk)) {
        let k = a_chunk.len() as i64;
        let a = Tensor::from_slice(&a_chunk.iter().map(|&v| v as f32).collect::<Vec<_>>())
            .to_device(x.device())
            .view([k, 1, 1, 1]);
        let w = Tensor::from_slice(&w_chunk.iter().map(|&v| v as f32).collect::<Vec<_>>())
            .to_device(x.device())
            .view([k, 1, 1, 1]);
        let inputs = (baseline + &a * &diff).detach().set_requires_grad(true);
        let out = forward(&inputs).select(1, target as i64).sum(Kind::Float);
        let grads = Tensor::f_run_backward(&[&out], &[&inputs], false, false)?;
        total += (&grads[0] * w).sum_dim_intlist([0].as_slice(), true, Kind::Float);
    }
    let attribution = (&diff * total).detach();
    let (fx, fb) = tch::no_grad(|| {
        let both = forward(&Tensor::cat(&[x, baseline], 0));
        (
            both.double_value(&[0, target as i64]),
            both.double_value(&[1, target as i64]),
        )
    });
    let delta = attribution.sum(Kind::Double).double_value(&[]) - (fx - fb);
    let attribution = attribution.squeeze_dim(0).to_device(tch::Device::Cpu);
    Ok(Explanation {
        method: Method::IntegratedGradients,
        target,
        output: fx,
        heatmap: super::heatmap::postprocess(&attribution),
        attribution,
        delta: Some(delta),
        baseline_output: Some(fb),
        seconds: 0.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauss_legendre_integrates_polynomials_exactly() {
        for n in [1, 2, 5, 50, 200] {
            let (a, w) = nodes(Integration::GaussLegendre, n);
            let sum: f64 = w.iter().sum();
            assert!((sum - 1.0).abs() < 1e-12, "n={n}: weights sum {sum}");
            // ∫0^1 t^k dt = 1/(k+1), exact for k <= 2n-1.
            let k = (2 * n - 1).min(9) as i32;
            let integral: f64 = a.iter().zip(&w).map(|(t, w)| w * t.powi(k)).sum();
            assert!((integral - 1.0 / (k as f64 + 1.0)).abs() < 1e-12, "n={n}");
            assert!(a.windows(2).all(|p| p[0] < p[1]), "ascending");
        }
    }

    #[test]
    fn riemann_rules_match_captum() {
        let (a, w) = nodes(Integration::RiemannTrapezoid, 5);
        assert_eq!(a, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        assert_eq!(w, vec![0.1, 0.2, 0.2, 0.2, 0.1]);
        let (a, _) = nodes(Integration::RiemannMiddle, 4);
        assert_eq!(a, vec![0.125, 0.375, 0.625, 0.875]);
        let (a, _) = nodes(Integration::RiemannLeft, 4);
        assert_eq!(a, vec![0.0, 0.25, 0.5, 0.75]);
        let (a, _) = nodes(Integration::RiemannRight, 4);
        assert_eq!(a, vec![0.25, 0.5, 0.75, 1.0]);
    }
}
