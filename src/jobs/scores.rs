//! Scoring one image's maps with a loaded model (single network or
//! ensemble): the closures the score functions need, built from the model
//! (calibrated probabilities) and its explainer (the heatmap of another
//! target), shared by `explain --scores`, the TUI and `--batch`.

use std::collections::BTreeMap;

use tch::{Kind, Tensor};

use crate::compare::sanity::randomisation;
use crate::compare::scores::scorecard::{add_reexplained, score_map, MapScores, ScoreSettings};
use crate::compare::scores::Image;
use crate::data::cache::ImageCache;
use crate::data::image::normalise;
use crate::ensemble::explain::explain_with_agreement;
use crate::ensemble::Model;
use crate::error::Result;
use crate::explain::split::ExplainedSample;
use crate::explain::{ExplainConfig, Method};
use crate::model::Classifier;

/// One image and its maps.
pub struct ImageToScore<'a> {
    /// One normalised input `(3, H, W)`.
    pub x: &'a Tensor,
    /// Each method's heatmap (`H·W`, the maps melxai shows).
    pub maps: &'a BTreeMap<Method, Vec<f32>>,
    /// IG's and DeepLIFT's completeness deltas, where known.
    pub deltas: &'a BTreeMap<Method, f64>,
    /// The class explained, and the one the random-logit test explains
    /// instead.
    pub target: usize,
    pub other: Option<usize>,
    pub mask: Option<&'a [bool]>,
}

/// A fresh copy of a single network, for the parameter-randomisation
/// cascade (which re-initialises it).
pub type Reload<'a> = &'a dyn Fn() -> Result<Classifier>;

/// Every score of every map of `image`.
pub fn score_image(
    model: &Model,
    image: ImageToScore,
    explain: &ExplainConfig,
    settings: &ScoreSettings,
    reload: Option<Reload>,
) -> Result<BTreeMap<String, MapScores>> {
    let x = image.x;
    let size = x.size();
    let data = Vec::<f32>::try_from(
        x.to_kind(Kind::Float)
            .to_device(tch::Device::Cpu)
            .reshape([-1]),
    )?;
    let input = Image {
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
    let cfg = ExplainConfig {
        target: Some(image.target),
        ..explain.clone()
    };
    let cascade = match (settings.parameter_randomisation, reload) {
        (true, Some(reload)) => {
            let methods: Vec<Method> = image.maps.keys().copied().collect();
            Some((methods.clone(), randomisation(reload, x, &methods, &cfg)?))
        }
        _ => None,
    };
    let mut out = BTreeMap::new();
    for (&method, map) in image.maps {
        let map: Vec<f64> = map.iter().map(|&v| f64::from(v)).collect();
        let mut scores = score_map(
            &probabilities,
            &input,
            &map,
            image.target,
            image.mask,
            settings,
        )?;
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
            &input,
            &map,
            image.target,
            image.other,
            settings,
        )?;
        scores.completeness_gap = image.deltas.get(&method).map(|d| d.abs());
        if let Some((_, steps)) = &cascade {
            let rs: Vec<f64> = steps
                .iter()
                .filter_map(|s| s.spearman.get(method.key()).copied())
                .filter(|v| !v.is_nan())
                .collect();
            scores.parameter_randomisation =
                (!rs.is_empty()).then(|| rs.iter().sum::<f64>() / rs.len() as f64);
        }
        out.insert(method.key().to_string(), scores);
    }
    Ok(out)
}

/// Scores an explained sample of `cache`: its input normalised for
/// `model`, the class explained (`explain.target`, else the predicted one),
/// the next class for the random-logit test, and a fresh copy of the
/// network at `path` for parameter randomisation (single networks only).
/// `mask` is a lesion mask for the input, when there is one.
pub fn score_sample(
    model: &Model,
    path: &std::path::Path,
    cache: &ImageCache,
    sample: &ExplainedSample,
    explain: &ExplainConfig,
    settings: &ScoreSettings,
    mask: Option<&[bool]>,
) -> Result<BTreeMap<String, MapScores>> {
    let row = cache.index_of(&sample.id).ok_or_else(|| {
        crate::Error::Dataset(format!("sample '{}' not in the data set", sample.id))
    })?;
    let x = normalise(&cache.batch(&[row]), &model.meta.normalisation).squeeze_dim(0);
    let maps = sample
        .maps
        .iter()
        .map(|(m, h)| (*m, h.values.clone()))
        .collect();
    let target = explain.target.unwrap_or(sample.predicted);
    let classes = model.meta.class_names.len();
    let image = ImageToScore {
        x: &x,
        maps: &maps,
        deltas: &sample.deltas,
        target,
        other: (classes > 1).then(|| (target + 1) % classes),
        mask,
    };
    let device = model.device();
    let reload = || Classifier::from_checkpoint(path, device);
    let reload: Option<Reload> = model.single().is_some().then_some(&reload as _);
    score_image(model, image, explain, settings, reload)
}
