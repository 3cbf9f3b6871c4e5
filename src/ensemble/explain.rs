//! Explanations of a [`Model`]: for an ensemble, the attribution of the
//! combined output.
//!
//! The ensemble's logit is the mean of the members' logits, and Integrated
//! Gradients and DeepLIFT (Rescale) are linear in the function explained
//! when the networks share no layers: the attribution of the mean logit is
//! the mean of the members' attributions for the same target, baseline and
//! path, and its completeness delta is the mean of theirs. GradCAM has no
//! such identity; its class-activation maps (upsampled, before
//! normalisation) are averaged over members. Every member explains the
//! ensemble's predicted class, so the maps answer one question.

use std::collections::BTreeMap;
use std::time::Instant;

use tch::{Kind, Tensor};

use super::combine::mean_logits;
use super::Model;
use crate::error::{Error, Result};
use crate::explain::split::MemberAgreement;
use crate::explain::{explain, heatmap, ExplainConfig, Explanation, Method};

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
    let (combined, _) = member_explanations(model, input, method, cfg)?;
    combined.ok_or_else(|| Error::Other(format!("ensemble '{}' has no members", model.meta.name)))
}

/// The ensemble's explanation and each member's (same target), for
/// measuring how far the members' explanations agree. `None` without members.
pub fn member_explanations(
    model: &Model,
    input: &Tensor,
    method: Method,
    cfg: &ExplainConfig,
) -> Result<(Option<Explanation>, Vec<Explanation>)> {
    let t0 = Instant::now();
    let target = match cfg.target {
        Some(t) => t,
        None => {
            let x = input.to_device(model.device()).to_kind(Kind::Float);
            let x = if x.dim() == 3 { x.unsqueeze(0) } else { x };
            let logits: Vec<Tensor> = model.members().iter().map(|m| m.logits_fp32(&x)).collect();
            if logits.is_empty() {
                return Ok((None, Vec::new()));
            }
            mean_logits(&logits).argmax(-1, false).int64_value(&[0]) as usize
        }
    };
    let fixed = ExplainConfig {
        target: Some(target),
        ..cfg.clone()
    };
    let members: Vec<Explanation> = model
        .members()
        .iter()
        .map(|m| explain(m, input, method, &fixed))
        .collect::<Result<_>>()?;
    let Some(first) = members.first() else {
        return Ok((None, members));
    };
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
    let combined = Explanation {
        method,
        target,
        output: members.iter().map(|e| e.output).sum::<f64>() / k,
        attribution,
        heatmap,
        delta: mean(|e| e.delta),
        baseline_output: mean(|e| e.baseline_output),
        seconds: t0.elapsed().as_secs_f64(),
    };
    if combined.attribution.size() != first.attribution.size() {
        return Err(Error::Shape {
            expected: first.attribution.size(),
            got: combined.attribution.size(),
        });
    }
    Ok((Some(combined), members))
}

/// [`explain_model`] and, for an ensemble, how far its members' maps agree:
/// the members' maps are made for the combined one anyway, so the agreement
/// costs no extra network pass. `None` for one checkpoint.
pub fn explain_with_agreement(
    model: &Model,
    input: &Tensor,
    method: Method,
    cfg: &ExplainConfig,
) -> Result<(Explanation, Option<MemberAgreement>)> {
    if model.single().is_some() {
        return Ok((explain_model(model, input, method, cfg)?, None));
    }
    let (combined, members) = member_explanations(model, input, method, cfg)?;
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
