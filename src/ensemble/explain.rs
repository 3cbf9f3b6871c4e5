//! Explanations of a [`Model`]: for an ensemble, the attribution of the
//! combined output.
//!
//! The explained function is the ensemble's combined output for the target
//! class (see [`super::combine`]); every member explains the ensemble's
//! predicted class, so the maps answer one question.
//!
//! - Mean of logits: Integrated Gradients and DeepLIFT (Rescale) are linear
//!   in the function explained when the networks share no layers, so the
//!   attribution of the mean logit is the mean of the members' attributions
//!   for the same target, baseline and path, and its completeness delta the
//!   mean of theirs.
//! - Mean of probabilities, `F = ln((1/k) Σ_m softmax(l_m)_c)`: IG runs on
//!   `F` itself, all members in one graph per path point. DeepLIFT chains
//!   multipliers: each member's Rescale attributions of each of its logits,
//!   weighted by the combine stage's multipliers `μ_{m,j}`, the average
//!   gradient of `F` along the straight line from the members' baseline
//!   logits to their input logits (so `Σ_{m,j} μ_{m,j} Δl_{m,j} = ΔF`, and
//!   completeness holds for the whole ensemble as it does for one network).
//! - GradCAM has no such identity under either rule; its class-activation
//!   maps (upsampled, before normalisation) are averaged over members.

use std::collections::BTreeMap;
use std::time::Instant;

use tch::{Kind, Tensor};

use super::combine::{combine, log_mean_probabilities};
use super::manifest::CombineRule;
use super::Model;
use crate::error::{Error, Result};
use crate::explain::integrated_gradients::{self, Integration};
use crate::explain::split::MemberAgreement;
use crate::explain::{explain, heatmap, ExplainConfig, Explanation, Method};
use crate::progress::CancelToken;
use crate::verdict::uncertainty::softmax;

/// Explains `input` `(3,H,W)` (normalised) under `model` with `method`;
/// for one checkpoint this is [`crate::explain::explain`]. TTA does not
/// apply to explanations (a map belongs to one view of the image).
pub fn explain_model(
    model: &Model,
    input: &Tensor,
    method: Method,
    cfg: &ExplainConfig,
) -> Result<Explanation> {
    if let Some(one) = model.single() {
        return explain(one, input, method, cfg);
    }
    let (combined, _) = member_explanations(model, input, method, cfg, None)?;
    combined.ok_or_else(|| Error::Other(format!("ensemble '{}' has no members", model.meta.name)))
}

/// The ensemble's explanation and each member's (same target), for
/// measuring how far the members' explanations agree. `None` without members.
///
/// `cancel` is checked before each member's map and before the combined one:
/// one method on an ensemble of five is six explanations (seconds each on a
/// CPU), and quitting waits for the one in flight, not for all of them.
pub fn member_explanations(
    model: &Model,
    input: &Tensor,
    method: Method,
    cfg: &ExplainConfig,
    cancel: Option<&CancelToken>,
) -> Result<(Option<Explanation>, Vec<Explanation>)> {
    let check = || cancel.map_or(Ok(()), CancelToken::check);
    let t0 = Instant::now();
    let target = match cfg.target {
        Some(t) => t,
        None => {
            let x = batch_of(model, input);
            let logits: Vec<Tensor> = model.members().iter().map(|m| m.logits_fp32(&x)).collect();
            if logits.is_empty() {
                return Ok((None, Vec::new()));
            }
            combine(model.combine_rule(), &logits)
                .argmax(-1, false)
                .int64_value(&[0]) as usize
        }
    };
    let fixed = ExplainConfig {
        target: Some(target),
        ..cfg.clone()
    };
    let members: Vec<Explanation> = model
        .members()
        .iter()
        .map(|m| {
            check()?;
            explain(m, input, method, &fixed)
        })
        .collect::<Result<_>>()?;
    let Some(first) = members.first() else {
        return Ok((None, members));
    };
    check()?;
    let mut combined = match (model.combine_rule(), method) {
        (CombineRule::MeanProbabilities, Method::IntegratedGradients) => {
            ig_of_mean_probabilities(model, input, &fixed, target)?
        }
        (CombineRule::MeanProbabilities, Method::DeepLift) => {
            deeplift_of_mean_probabilities(model, input, &fixed, target, &members)?
        }
        _ => mean_of(&members, method, target),
    };
    combined.seconds = t0.elapsed().as_secs_f64();
    if combined.attribution.size() != first.attribution.size() {
        return Err(Error::Shape {
            expected: first.attribution.size(),
            got: combined.attribution.size(),
        });
    }
    Ok((Some(combined), members))
}

/// The members' explanations averaged (attributions, outputs, deltas).
fn mean_of(members: &[Explanation], method: Method, target: usize) -> Explanation {
    let k = members.len() as f64;
    let attributions: Vec<Tensor> = members
        .iter()
        .map(|e| e.attribution.shallow_clone())
        .collect();
    let attribution = Tensor::stack(&attributions, 0).mean_dim(0, false, None);
    let heatmap = match method {
        Method::GradCam | Method::GradCamPlusPlus => heatmap::min_max(&attribution.squeeze_dim(0)),
        Method::IntegratedGradients | Method::DeepLift => heatmap::postprocess(&attribution),
    };
    let mean = |f: fn(&Explanation) -> Option<f64>| -> Option<f64> {
        let v: Vec<f64> = members.iter().filter_map(f).collect();
        (v.len() == members.len()).then(|| v.iter().sum::<f64>() / k)
    };
    Explanation {
        method,
        target,
        output: members.iter().map(|e| e.output).sum::<f64>() / k,
        attribution,
        heatmap,
        delta: mean(|e| e.delta),
        baseline_output: mean(|e| e.baseline_output),
        seconds: 0.0,
    }
}

/// `input` as `(1,3,H,W)` float on the model's device.
fn batch_of(model: &Model, input: &Tensor) -> Tensor {
    let x = input.to_device(model.device()).to_kind(Kind::Float);
    if x.dim() == 3 {
        x.unsqueeze(0)
    } else {
        x
    }
}

/// IG of `ln` of the members' mean probability of `target`: every path point
/// runs through all members (fp32, eval mode) and the combine rule, so the
/// gradient is that of the ensemble's output. The internal batch is split
/// among the members to keep memory where one network's IG keeps it.
fn ig_of_mean_probabilities(
    model: &Model,
    input: &Tensor,
    cfg: &ExplainConfig,
    target: usize,
) -> Result<Explanation> {
    let x = batch_of(model, input);
    let b = cfg.baseline.build(&x, &model.meta.normalisation, cfg.seed);
    let forward = |xs: &Tensor| -> Tensor {
        let logits: Vec<Tensor> = model
            .members()
            .iter()
            .map(|m| m.net.forward_t(xs, false).to_kind(Kind::Float))
            .collect();
        log_mean_probabilities(&logits)
    };
    let chunk = (cfg.internal_batch / model.members().len()).max(1);
    integrated_gradients::explain(&forward, &x, &b, target, cfg.steps, cfg.integration, chunk)
}

/// Nodes of the combine stage's path integral: Gauss-Legendre, exact far
/// beyond the smoothness of a softmax over logit differences of tens.
const COMBINE_NODES: usize = 256;

/// DeepLIFT of `ln` of the members' mean probability of `target` (module
/// docs): each member's Rescale attributions of every class logit (the
/// target's are `members[m]`), weighted by [`combine_multipliers`].
fn deeplift_of_mean_probabilities(
    model: &Model,
    input: &Tensor,
    cfg: &ExplainConfig,
    target: usize,
    members: &[Explanation],
) -> Result<Explanation> {
    let classes = model.meta.class_names.len();
    // per member, per class: (attribution, l(x), l(b))
    let mut per_member: Vec<Vec<(Tensor, f64, f64)>> = Vec::with_capacity(members.len());
    for (net, own) in model.members().iter().zip(members) {
        let mut row = Vec::with_capacity(classes);
        for j in 0..classes {
            let e = if j == target {
                None
            } else {
                let cfg_j = ExplainConfig {
                    target: Some(j),
                    ..cfg.clone()
                };
                Some(explain(net, input, Method::DeepLift, &cfg_j)?)
            };
            let e = e.as_ref().unwrap_or(own);
            let fb = e
                .baseline_output
                .ok_or_else(|| Error::Other("DeepLIFT returned no baseline output".into()))?;
            row.push((e.attribution.shallow_clone(), e.output, fb));
        }
        per_member.push(row);
    }
    let lx: Vec<Vec<f64>> = per_member
        .iter()
        .map(|r| r.iter().map(|c| c.1).collect())
        .collect();
    let lb: Vec<Vec<f64>> = per_member
        .iter()
        .map(|r| r.iter().map(|c| c.2).collect())
        .collect();
    let mu = combine_multipliers(&lb, &lx, target);
    let mut attribution = per_member[0][0].0.zeros_like();
    for (row, weights) in per_member.iter().zip(&mu) {
        for ((a, _, _), w) in row.iter().zip(weights) {
            attribution += a * *w;
        }
    }
    let f = |l: &[Vec<f64>]| super::combine::log_mean_probabilities_f64(l)[target];
    let (fx, fb) = (f(&lx), f(&lb));
    let delta = attribution.sum(Kind::Double).double_value(&[]) - (fx - fb);
    Ok(Explanation {
        method: Method::DeepLift,
        target,
        output: fx,
        heatmap: heatmap::postprocess(&attribution),
        attribution,
        delta: Some(delta),
        baseline_output: Some(fb),
        seconds: 0.0,
    })
}

/// `μ[m][j]`: the mean over the straight line from the members' logits
/// `from` to `to` of `∂F/∂l_{m,j}`, with `F = ln((1/k) Σ_m softmax(l_m)_c)`
/// and `c = target`: `∂F/∂l_{m,j} = w_m (δ_{jc} − p_{m,j})`,
/// `w_m = p_{m,c} / Σ_n p_{n,c}`. Then `Σ μ Δl = F(to) − F(from)`.
pub fn combine_multipliers(from: &[Vec<f64>], to: &[Vec<f64>], target: usize) -> Vec<Vec<f64>> {
    let (alphas, weights) = integrated_gradients::nodes(Integration::GaussLegendre, COMBINE_NODES);
    let mut mu: Vec<Vec<f64>> = from.iter().map(|r| vec![0.0; r.len()]).collect();
    for (a, w) in alphas.iter().zip(&weights) {
        let probs: Vec<Vec<f64>> = from
            .iter()
            .zip(to)
            .map(|(l0, l1)| {
                let z: Vec<f64> = l0.iter().zip(l1).map(|(u, v)| u + a * (v - u)).collect();
                softmax(&z, 1.0)
            })
            .collect();
        let total: f64 = probs.iter().map(|p| p[target]).sum();
        if total <= 0.0 {
            continue;
        }
        for (m, p) in probs.iter().enumerate() {
            let wm = p[target] / total;
            for (j, pj) in p.iter().enumerate() {
                let own = if j == target { 1.0 } else { 0.0 };
                mu[m][j] += w * wm * (own - pj);
            }
        }
    }
    mu
}

/// [`explain_model`] and, for an ensemble, how far its members' maps agree:
/// the members' maps are made for the combined one anyway, so the agreement
/// costs no extra network pass. `None` for one checkpoint. `cancel` is
/// checked between an ensemble's members.
pub fn explain_with_agreement(
    model: &Model,
    input: &Tensor,
    method: Method,
    cfg: &ExplainConfig,
    cancel: Option<&CancelToken>,
) -> Result<(Explanation, Option<MemberAgreement>)> {
    if model.single().is_some() {
        return Ok((explain_model(model, input, method, cfg)?, None));
    }
    let (combined, members) = member_explanations(model, input, method, cfg, cancel)?;
    let combined = combined
        .ok_or_else(|| Error::Other(format!("ensemble '{}' has no members", model.meta.name)))?;
    Ok((combined, member_agreement(&members)?))
}

/// Agreement of the members' heatmaps (`None` with fewer than two members).
pub fn member_agreement(members: &[Explanation]) -> Result<Option<MemberAgreement>> {
    use crate::compare::similarity::{compare_maps, CompareOptions, Map, Metric};
    if members.len() < 2 {
        return Ok(None);
    }
    let maps: Vec<(Vec<f32>, usize, usize)> = members
        .iter()
        .map(|e| {
            let size = e.heatmap.size();
            let (h, w) = (size[0] as usize, size[1] as usize);
            Ok((heatmap::to_vec(&e.heatmap)?, h, w))
        })
        .collect::<Result<_>>()?;
    let opts = CompareOptions::default();
    let mut values: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    let mut pairs = 0usize;
    for i in 0..maps.len() {
        for j in i + 1..maps.len() {
            let map = |k: usize| {
                Map::new(&maps[k].0, maps[k].1, maps[k].2)
                    .map_err(|e| Error::Other(format!("member map: {e}")))
            };
            let r = compare_maps(map(i)?, map(j)?, &opts)
                .map_err(|e| Error::Other(format!("member agreement: {e}")))?;
            for m in Metric::ALL {
                values.entry(m.name()).or_default().push(m.of(&r));
            }
            pairs += 1;
        }
    }
    let metrics = values
        .into_iter()
        .filter_map(|(name, v)| {
            let finite: Vec<f64> = v.into_iter().filter(|x| x.is_finite()).collect();
            (!finite.is_empty()).then(|| (name.to_string(), crate::metrics::mean_std(&finite).mean))
        })
        .collect();
    Ok(Some(MemberAgreement {
        members: members.len(),
        pairs,
        metrics,
    }))
}
