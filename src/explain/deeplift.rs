//! DeepLIFT with the Rescale rule on every non-linearity (Shrikumar et al. 2017).
//!
//! The network runs once on `[x; baseline]` in [`ForwardMode::DeepLift`]: each
//! ReLU6 / SiLU / sigmoid output for the input row becomes
//! `f(z₀) + (z − z₀)·m` with the multiplier `m = (f(z) − f(z₀)) / (z − z₀)`
//! held constant (the gradient where z ≈ z₀). Linear layers (convolutions,
//! batch norm in eval mode, pooling, residual sums) pass multipliers through
//! unchanged, so the gradient of the target logit with respect to the input is
//! the DeepLIFT multiplier and `(x − x₀) · m` sums to `f(x) − f(x₀)`.
//!
//! Element-wise products of two input-dependent factors (the squeeze-excitation
//! gate of B models, `σ(s) · a`) are split with the two-player Shapley rule
//! `Δ(ab) = ½(a + a₀)Δb + ½(b + b₀)Δa`, which is exact, so completeness holds
//! for B models too. Captum's DeepLift instead lacks ReLU6/SiLU in its
//! non-linearity list and falls back to plain gradients there, which breaks
//! completeness on EfficientNet.

use tch::{Kind, Tensor};

use super::{Explanation, Method};
use crate::error::Result;
use crate::model::efficientnet::ForwardMode;
use crate::model::Classifier;

/// `x`, `baseline`: `(1,3,H,W)` on the model's device.
pub fn explain(
    model: &Classifier,
    x: &Tensor,
    baseline: &Tensor,
    target: usize,
) -> Result<Explanation> {
    let xi = x.detach().set_requires_grad(true);
    let batch = Tensor::cat(&[&xi, &baseline.detach()], 0);
    let out = model
        .net
        .forward_with(&batch, false, ForwardMode::DeepLift { n: 1 }, None);
    let fx = out.get(0).get(target as i64);
    let fb = out.double_value(&[1, target as i64]);
    let output = fx.double_value(&[]);
    let grads = Tensor::f_run_backward(&[&fx], &[&xi], false, false)?;
    let attribution = ((x - baseline) * &grads[0]).detach();
    let delta = attribution.sum(Kind::Double).double_value(&[]) - (output - fb);
    let attribution = attribution.squeeze_dim(0).to_device(tch::Device::Cpu);
    Ok(Explanation {
        method: Method::DeepLift,
        target,
        output,
        heatmap: super::heatmap::postprocess(&attribution),
        attribution,
        delta: Some(delta),
        baseline_output: Some(fb),
        seconds: 0.0,
    })
}
