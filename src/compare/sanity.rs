//! Model-randomisation sanity check (Adebayo et al. 2018): re-initialise the
//! network cumulatively from the top down and measure how far each method's
//! map moves from the trained model's map. A method whose maps barely change
//! while the weights become random is explaining the input, not the model.

use std::collections::BTreeMap;

use serde::Serialize;
use tch::Tensor;

use super::similarity::{spearman, ssim, Map, SsimOptions};
use crate::error::{Error, Result};
use crate::explain::heatmap::to_vec;
use crate::explain::{explain, ExplainConfig, Method};
use crate::model::Classifier;

#[derive(Debug, Clone, Serialize)]
pub struct SanityStep {
    /// Layers randomised so far, top-down; the last group added is named here.
    pub randomised_through: String,
    /// Per method: (SSIM, Spearman) between this step's map and the original.
    pub ssim: BTreeMap<String, f64>,
    pub spearman: BTreeMap<String, f64>,
}

/// Variable-name groups from the top of the network down.
fn groups(model: &Classifier) -> Vec<(String, Vec<String>)> {
    let names: Vec<String> = model.vs.variables().into_keys().collect();
    let block =
        |n: &str| -> Option<usize> { n.strip_prefix("_blocks.")?.split('.').next()?.parse().ok() };
    let num_blocks = names
        .iter()
        .filter_map(|n| block(n))
        .max()
        .map_or(0, |m| m + 1);
    let mut out = vec![
        (
            "_fc".to_string(),
            names
                .iter()
                .filter(|n| n.starts_with("_fc."))
                .cloned()
                .collect(),
        ),
        (
            "_conv_head".to_string(),
            names
                .iter()
                .filter(|n| n.starts_with("_conv_head.") || n.starts_with("_bn1."))
                .cloned()
                .collect(),
        ),
    ];
    // Blocks in groups of four, from the last.
    let mut hi = num_blocks;
    while hi > 0 {
        let lo = hi.saturating_sub(4);
        let members: Vec<String> = names
            .iter()
            .filter(|n| block(n).is_some_and(|b| b >= lo && b < hi))
            .cloned()
            .collect();
        out.push((format!("_blocks.{lo}-{}", hi - 1), members));
        hi = lo;
    }
    out.push((
        "_conv_stem".to_string(),
        names
            .iter()
            .filter(|n| n.starts_with("_conv_stem.") || n.starts_with("_bn0."))
            .cloned()
            .collect(),
    ));
    out
}

/// Re-initialises variables: conv/linear weights ~ N(0, 2/fan_in), biases 0,
/// batch-norm scale 1, shift 0, running mean 0, running variance 1.
fn reinitialise(model: &Classifier, names: &[String]) -> Result<()> {
    let vars = model.vs.variables();
    tch::no_grad(|| -> Result<()> {
        for n in names {
            let Some(v) = vars.get(n) else { continue };
            let mut v = v.shallow_clone();
            let is_bn = n.contains("._bn") || n.starts_with("_bn");
            let value = if n.ends_with("running_var") || (is_bn && n.ends_with(".weight")) {
                v.ones_like()
            } else if n.ends_with("running_mean") || n.ends_with(".bias") {
                v.zeros_like()
            } else {
                let size = v.size();
                let fan_in: i64 = size.iter().skip(1).product::<i64>().max(1);
                v.randn_like() * (2.0 / fan_in as f64).sqrt()
            };
            v.f_copy_(&value)?;
        }
        Ok(())
    })
}

/// Runs the cascade on a private copy of the model loaded by `load`.
pub fn randomisation(
    load: impl Fn() -> Result<Classifier>,
    input: &Tensor,
    methods: &[Method],
    cfg: &ExplainConfig,
) -> Result<Vec<SanityStep>> {
    let model = load()?;
    let target = match cfg.target {
        Some(t) => t,
        None => model
            .logits_fp32(&input.unsqueeze(0))
            .argmax(-1, false)
            .int64_value(&[0]) as usize,
    };
    let cfg = ExplainConfig {
        target: Some(target),
        ..cfg.clone()
    };
    let map_of = |m: &Classifier, method: Method| -> Result<(Vec<f32>, usize, usize)> {
        let e = explain(m, input, method, &cfg)?;
        let s = e.heatmap.size();
        Ok((to_vec(&e.heatmap)?, s[0] as usize, s[1] as usize))
    };
    let originals: Vec<(Vec<f32>, usize, usize)> = methods
        .iter()
        .map(|&m| map_of(&model, m))
        .collect::<Result<_>>()?;
    tch::manual_seed(cfg.seed as i64);
    let mut steps = Vec::new();
    for (label, names) in groups(&model) {
        reinitialise(&model, &names)?;
        let mut step = SanityStep {
            randomised_through: label,
            ssim: BTreeMap::new(),
            spearman: BTreeMap::new(),
        };
        for (&method, (orig, h, w)) in methods.iter().zip(&originals) {
            let (now, _, _) = map_of(&model, method)?;
            let a = Map::new(orig, *h, *w).map_err(|e| Error::Other(e.to_string()))?;
            let b = Map::new(&now, *h, *w).map_err(|e| Error::Other(e.to_string()))?;
            let s = ssim(a, b, &SsimOptions::default()).unwrap_or(f64::NAN);
            let r = spearman(a, b).unwrap_or(f64::NAN);
            step.ssim.insert(method.key().into(), s);
            step.spearman.insert(method.key().into(), r);
        }
        steps.push(step);
    }
    Ok(steps)
}
