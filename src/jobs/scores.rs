//! Scoring one image's maps with a loaded model (single network or
//! ensemble): the closures the score functions need, built from the model
//! (calibrated probabilities) and its explainer (the heatmap of another
//! target), shared by `explain --scores` and `--batch`.

use std::collections::BTreeMap;

use tch::{Kind, Tensor};

use crate::compare::scores::scorecard::{add_reexplained, score_map, MapScores, ScoreSettings};
use crate::compare::scores::Image;
use crate::ensemble::explain::explain_with_agreement;
use crate::ensemble::Model;
use crate::error::Result;
use crate::explain::{ExplainConfig, Method};

/// `x`: one normalised input `(3, H, W)`; `maps`: each method's heatmap
/// (`H·W`, the maps melxai shows); `target`: the class explained;
/// `other`: the class the random-logit test explains instead.
#[allow(clippy::too_many_arguments)]
pub fn score_image(
    model: &Model,
    x: &Tensor,
    maps: &BTreeMap<Method, Vec<f32>>,
    target: usize,
    other: Option<usize>,
    explain: &ExplainConfig,
    mask: Option<&[bool]>,
    settings: &ScoreSettings,
) -> Result<BTreeMap<String, MapScores>> {
    let size = x.size();
    let data = Vec::<f32>::try_from(
        x.to_kind(Kind::Float)
            .to_device(tch::Device::Cpu)
            .reshape([-1]),
    )?;
    let image = Image {
        data,
        channels: size[0] as usize,
        height: size[1] as usize,
        width: size[2] as usize,
    };
    let device = model.device();
    let probabilities = |b: &Tensor| -> Result<Tensor> {
        Ok(tch::no_grad(|| {
            model.probabilities(&b.to_device(device), true)
        }))
    };
    let mut out = BTreeMap::new();
    for (&method, map) in maps {
        let map: Vec<f64> = map.iter().map(|&v| f64::from(v)).collect();
        let mut scores = score_map(&probabilities, &image, &map, target, mask, settings)?;
        let reexplain = |b: &Tensor, targets: &[i64]| -> Result<Tensor> {
            let mut rows = Vec::with_capacity(targets.len());
            for (i, &t) in targets.iter().enumerate() {
                let cfg = ExplainConfig {
                    target: Some(t as usize),
                    ..explain.clone()
                };
                let (e, _) = explain_with_agreement(model, &b.get(i as i64), method, &cfg, None)?;
                rows.push(e.heatmap.reshape([1, -1]));
            }
            Ok(Tensor::cat(&rows, 0))
        };
        add_reexplained(
            &mut scores,
            &reexplain,
            &image,
            &map,
            target,
            other,
            settings,
        )?;
        out.insert(method.key().to_string(), scores);
    }
    Ok(out)
}
