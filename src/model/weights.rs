//! Checkpoint key layouts and loading with a precise mismatch report.
//!
//! melxai's variable names are the `efficientnet_pytorch` layout of the shipped
//! ImageNet weights. Users also bring EfficientNet checkpoints from torchvision,
//! timm and Hugging Face `transformers`; [`to_native_names`] maps each of those
//! onto the native names, one rule per comment. Loading then compares names and
//! shapes against the model and reports every missing, unexpected and mis-shaped
//! tensor instead of failing on the first.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::Path;

use serde::Serialize;
use tch::{nn, Tensor};

use crate::error::{Error, Result};

/// Where a checkpoint's names come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Layout {
    /// `_conv_stem`, `_blocks.N._depthwise_conv`, `_fc` (native).
    EfficientNetPytorch,
    /// torchvision `features.S.R.block.J...`, `classifier.1`.
    Torchvision,
    /// timm `conv_stem`, `blocks.S.R.conv_dw`, `conv_head`, `classifier`.
    Timm,
    /// transformers `efficientnet.encoder.blocks.N...`, `classifier`.
    HuggingFace,
}

impl Layout {
    pub fn detect<'a>(names: impl IntoIterator<Item = &'a str> + Clone) -> Option<Layout> {
        let has = |pat: &str| names.clone().into_iter().any(|n| n.starts_with(pat));
        if has("_conv_stem.") || has("_blocks.") {
            Some(Layout::EfficientNetPytorch)
        } else if has("efficientnet.embeddings.") || has("efficientnet.encoder.") {
            Some(Layout::HuggingFace)
        // Any `features.` name, not only the stem's: a checkpoint that lacks the
        // stem must still be recognised so the report names what is missing.
        } else if has("features.") {
            Some(Layout::Torchvision)
        // Likewise any of timm's top-level modules.
        } else if has("conv_stem.") || has("blocks.") || has("conv_head.") {
            Some(Layout::Timm)
        } else {
            None
        }
    }
}

/// Strip wrappers that training scripts add around a model's names, in any order
/// and nesting (`module._orig_mod.` from DDP over `torch.compile`, and
/// `_orig_mod.module.` from `torch.compile` over DDP).
fn strip_wrappers(name: &str) -> &str {
    let mut n = name;
    while let Some(rest) = ["module.", "model.", "_orig_mod."]
        .iter()
        .find_map(|prefix| n.strip_prefix(prefix))
    {
        n = rest;
    }
    n
}

/// Maps a checkpoint's tensors to native names. Names with no native counterpart
/// keep their original name (they then show up as unexpected). Batch-norm
/// `num_batches_tracked` counters are dropped: they carry no weights.
pub fn to_native_names(tensors: Vec<(String, Tensor)>) -> (Option<Layout>, Vec<(String, Tensor)>) {
    let tensors: Vec<(String, Tensor)> = tensors
        .into_iter()
        .filter(|(n, _)| !n.ends_with("num_batches_tracked"))
        .map(|(n, t)| (strip_wrappers(&n).to_string(), t))
        .collect();
    let layout = Layout::detect(tensors.iter().map(|(n, _)| n.as_str()));
    let names: Vec<String> = tensors.iter().map(|(n, _)| n.clone()).collect();
    let map: HashMap<String, String> = match layout {
        Some(Layout::Torchvision) => torchvision_map(&names),
        Some(Layout::Timm) => timm_map(&names),
        Some(Layout::HuggingFace) => names
            .iter()
            .filter_map(|n| hugging_face_name(n).map(|m| (n.clone(), m)))
            .collect(),
        Some(Layout::EfficientNetPytorch) | None => HashMap::new(),
    };
    let mapped = tensors
        .into_iter()
        .map(|(n, t)| (map.get(&n).cloned().unwrap_or(n), t))
        .collect();
    (layout, mapped)
}

/// transformers: names are already flat per block; only the words differ.
fn hugging_face_name(name: &str) -> Option<String> {
    let rules: [(&str, &str); 6] = [
        // Stem.
        ("efficientnet.embeddings.convolution.", "_conv_stem."),
        ("efficientnet.embeddings.batchnorm.", "_bn0."),
        // Head convolution and its norm.
        ("efficientnet.encoder.top_conv.", "_conv_head."),
        ("efficientnet.encoder.top_bn.", "_bn1."),
        // Classifier.
        ("classifier.", "_fc."),
        ("efficientnet.encoder.blocks.", "_blocks."),
    ];
    for (from, to) in rules {
        if let Some(rest) = name.strip_prefix(from) {
            if from != "efficientnet.encoder.blocks." {
                return Some(format!("{to}{rest}"));
            }
            // `N.<part>.<layer>.<param>` inside a block.
            let (index, rest) = rest.split_once('.')?;
            let inner = [
                ("expansion.expand_conv.", "_expand_conv."),
                ("expansion.expand_bn.", "_bn0."),
                ("depthwise_conv.depthwise_conv.", "_depthwise_conv."),
                ("depthwise_conv.depthwise_norm.", "_bn1."),
                ("squeeze_excite.reduce.", "_se_reduce."),
                ("squeeze_excite.expand.", "_se_expand."),
                ("projection.project_conv.", "_project_conv."),
                ("projection.project_bn.", "_bn2."),
            ];
            for (f, t) in inner {
                if let Some(param) = rest.strip_prefix(f) {
                    return Some(format!("_blocks.{index}.{t}{param}"));
                }
            }
            return None;
        }
    }
    None
}

/// Parses `<prefix>S.R.<rest>` into (S, R, rest).
fn stage_repeat<'a>(name: &'a str, prefix: &str) -> Option<(usize, usize, &'a str)> {
    let rest = name.strip_prefix(prefix)?;
    let (s, rest) = rest.split_once('.')?;
    let (r, rest) = rest.split_once('.')?;
    Some((s.parse().ok()?, r.parse().ok()?, rest))
}

/// Flat block index for each (stage, repeat) pair, in (stage, repeat) order.
fn flat_indices(pairs: impl Iterator<Item = (usize, usize)>) -> BTreeMap<(usize, usize), usize> {
    let set: BTreeSet<(usize, usize)> = pairs.collect();
    set.into_iter().enumerate().map(|(i, p)| (p, i)).collect()
}

/// timm: `blocks.S.R.*` with depthwise-separable first blocks (no expansion).
fn timm_map(names: &[String]) -> HashMap<String, String> {
    let index = flat_indices(
        names
            .iter()
            .filter_map(|n| stage_repeat(n, "blocks."))
            .map(|(s, r, _)| (s, r)),
    );
    // A block is an inverted residual when it has any of its projection
    // tensors, so one missing tensor does not turn it into a depthwise-separable
    // block (which would shift bn1/bn2 onto the wrong native names).
    let has_pwl: BTreeSet<(usize, usize)> = names
        .iter()
        .filter_map(|n| stage_repeat(n, "blocks."))
        .filter(|(_, _, rest)| rest.starts_with("conv_pwl.") || rest.starts_with("bn3."))
        .map(|(s, r, _)| (s, r))
        .collect();
    let mut map = HashMap::new();
    for n in names {
        let native = if let Some((s, r, rest)) = stage_repeat(n, "blocks.") {
            let Some(&i) = index.get(&(s, r)) else {
                continue;
            };
            let (layer, param) = rest.split_once('.').unwrap_or((rest, ""));
            // Inverted residual (has conv_pwl): pw = expand, bn1 = after expand,
            // bn2 = after depthwise, pwl/bn3 = projection.
            // Depthwise-separable (no conv_pwl): bn1 = after depthwise, pw/bn2 = projection.
            let inverted = has_pwl.contains(&(s, r));
            let target = match (layer, inverted) {
                ("conv_pw", true) => "_expand_conv",
                ("bn1", true) => "_bn0",
                ("conv_dw", _) => "_depthwise_conv",
                ("bn2", true) => "_bn1",
                ("bn1", false) => "_bn1",
                ("conv_pwl", true) => "_project_conv",
                ("bn3", true) => "_bn2",
                ("conv_pw", false) => "_project_conv",
                ("bn2", false) => "_bn2",
                ("se", _) => {
                    let (sub, p) = param.split_once('.').unwrap_or((param, ""));
                    let t = match sub {
                        "conv_reduce" => "_se_reduce",
                        "conv_expand" => "_se_expand",
                        _ => continue,
                    };
                    map.insert(n.clone(), format!("_blocks.{i}.{t}.{p}"));
                    continue;
                }
                _ => continue,
            };
            format!("_blocks.{i}.{target}.{param}")
        } else if let Some(p) = n.strip_prefix("conv_stem.") {
            format!("_conv_stem.{p}")
        } else if let Some(p) = n.strip_prefix("bn1.") {
            format!("_bn0.{p}")
        } else if let Some(p) = n.strip_prefix("conv_head.") {
            format!("_conv_head.{p}")
        } else if let Some(p) = n.strip_prefix("bn2.") {
            format!("_bn1.{p}")
        } else if let Some(p) = n.strip_prefix("classifier.") {
            format!("_fc.{p}")
        } else {
            continue;
        };
        map.insert(n.clone(), native);
    }
    map
}

/// torchvision: `features.0` stem, `features.1..=7` stages of MBConv whose
/// `block` is a Sequential [expand?, depthwise, se?, project], `features.8` head.
fn torchvision_map(names: &[String]) -> HashMap<String, String> {
    let stage_blocks: Vec<(usize, usize, &str)> = names
        .iter()
        .filter_map(|n| stage_repeat(n, "features."))
        .filter(|(s, _, rest)| *s > 0 && rest.starts_with("block."))
        .collect();
    let index = flat_indices(stage_blocks.iter().map(|(s, r, _)| (*s, *r)));
    // Which sub-modules of each block are conv+bn pairs (in order); the SE
    // module's `fc1`/`fc2` are not. A slot counts when its conv (`J.0.*`) or its
    // norm (`J.1.*`) appears, so one missing tensor does not shift the roles.
    let mut conv_slots: BTreeMap<(usize, usize), BTreeSet<usize>> = BTreeMap::new();
    for (s, r, rest) in &stage_blocks {
        let rest = rest.trim_start_matches("block.");
        if let Some((j, tail)) = rest.split_once('.') {
            if let Ok(j) = j.parse::<usize>() {
                if tail.starts_with("0.") || tail.starts_with("1.") {
                    conv_slots.entry((*s, *r)).or_default().insert(j);
                }
            }
        }
    }
    let head_stage = names
        .iter()
        .filter_map(|n| {
            n.strip_prefix("features.")?
                .split_once('.')?
                .0
                .parse::<usize>()
                .ok()
        })
        .max()
        .unwrap_or(8);
    let mut map = HashMap::new();
    for n in names {
        let native = if let Some(p) = n.strip_prefix("features.0.0.") {
            format!("_conv_stem.{p}")
        } else if let Some(p) = n.strip_prefix("features.0.1.") {
            format!("_bn0.{p}")
        } else if let Some(p) = n.strip_prefix(&format!("features.{head_stage}.0.")) {
            format!("_conv_head.{p}")
        } else if let Some(p) = n.strip_prefix(&format!("features.{head_stage}.1.")) {
            format!("_bn1.{p}")
        } else if let Some(p) = n.strip_prefix("classifier.1.") {
            format!("_fc.{p}")
        } else if let Some((s, r, rest)) = stage_repeat(n, "features.") {
            let Some(rest) = rest.strip_prefix("block.") else {
                continue;
            };
            let Some(&i) = index.get(&(s, r)) else {
                continue;
            };
            let Some((j, tail)) = rest.split_once('.') else {
                continue;
            };
            let Ok(j) = j.parse::<usize>() else { continue };
            if let Some(p) = tail.strip_prefix("fc1.") {
                format!("_blocks.{i}._se_reduce.{p}")
            } else if let Some(p) = tail.strip_prefix("fc2.") {
                format!("_blocks.{i}._se_expand.{p}")
            } else {
                let Some(slots) = conv_slots.get(&(s, r)) else {
                    continue;
                };
                let slots: Vec<usize> = slots.iter().copied().collect();
                let pos = slots.iter().position(|&x| x == j);
                // With three conv+bn slots: expand, depthwise, project; with two: depthwise, project.
                let roles: &[(&str, &str)] = if slots.len() == 3 {
                    &[
                        ("_expand_conv", "_bn0"),
                        ("_depthwise_conv", "_bn1"),
                        ("_project_conv", "_bn2"),
                    ]
                } else {
                    &[("_depthwise_conv", "_bn1"), ("_project_conv", "_bn2")]
                };
                let Some((conv, bn)) = pos.and_then(|p| roles.get(p)) else {
                    continue;
                };
                if let Some(p) = tail.strip_prefix("0.") {
                    format!("_blocks.{i}.{conv}.{p}")
                } else if let Some(p) = tail.strip_prefix("1.") {
                    format!("_blocks.{i}.{bn}.{p}")
                } else {
                    continue;
                }
            }
        } else {
            continue;
        };
        map.insert(n.clone(), native);
    }
    map
}

/// What a load found, tensor by tensor.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadReport {
    pub layout: Option<Layout>,
    pub loaded: usize,
    /// In the model, absent from the file.
    pub missing: Vec<String>,
    /// In the file, absent from the model (after name mapping).
    pub unexpected: Vec<String>,
    /// (name, shape in the model, shape in the file).
    pub mismatched: Vec<(String, Vec<i64>, Vec<i64>)>,
}

impl LoadReport {
    pub fn is_exact(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.mismatched.is_empty()
    }

    /// True when every problem concerns only variables accepted by `allowed`
    /// (used to fine-tune from ImageNet with a new classifier head).
    pub fn only_involves(&self, allowed: impl Fn(&str) -> bool) -> bool {
        self.missing.iter().all(|n| allowed(n))
            && self.unexpected.iter().all(|n| allowed(n))
            && self.mismatched.iter().all(|(n, _, _)| allowed(n))
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOW: usize = 12;
        writeln!(
            f,
            "  layout: {}; {} tensors loaded",
            self.layout
                .map(|l| format!("{l:?}"))
                .unwrap_or_else(|| "unrecognised".into()),
            self.loaded
        )?;
        let list = |f: &mut fmt::Formatter<'_>, title: &str, items: Vec<String>| -> fmt::Result {
            if items.is_empty() {
                return Ok(());
            }
            writeln!(f, "  {title} ({}):", items.len())?;
            for i in items.iter().take(SHOW) {
                writeln!(f, "    {i}")?;
            }
            if items.len() > SHOW {
                writeln!(f, "    ... and {} more", items.len() - SHOW)?;
            }
            Ok(())
        };
        list(f, "missing from the file", self.missing.clone())?;
        list(f, "unexpected in the file", self.unexpected.clone())?;
        list(
            f,
            "wrong shape (model vs file)",
            self.mismatched
                .iter()
                .map(|(n, a, b)| format!("{n}: {a:?} vs {b:?}"))
                .collect(),
        )
    }
}

/// Reads every tensor of a `.safetensors` file (or a tch/`torch.save`d plain dict
/// via `.pt`/`.pth`/`.ot`) into CPU tensors.
pub fn read_tensors(path: &Path) -> Result<Vec<(String, Tensor)>> {
    if !path.exists() {
        return Err(Error::Checkpoint {
            path: path.into(),
            message: "file not found".into(),
        });
    }
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let res = match ext {
        "safetensors" => Tensor::read_safetensors(path),
        "npz" => Tensor::read_npz(path),
        _ => Tensor::loadz_multi(path),
    };
    res.map_err(|e| Error::Checkpoint {
        path: path.into(),
        message: format!(
            "cannot read tensors ({e}); is the file complete and in safetensors format?"
        ),
    })
}

/// Why [`load_into`] failed: the tensors did not fit (with the report, as
/// data), or the file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("checkpoint {path} does not fit the model:\n{report}")]
    WeightsMismatch {
        path: std::path::PathBuf,
        report: LoadReport,
    },
    #[error(transparent)]
    Other(#[from] Error),
}

impl From<tch::TchError> for LoadError {
    fn from(e: tch::TchError) -> Self {
        LoadError::Other(e.into())
    }
}

impl From<LoadError> for Error {
    fn from(e: LoadError) -> Self {
        match e {
            LoadError::WeightsMismatch { path, report } => Error::WeightsMismatch {
                path,
                report: report.to_string(),
            },
            LoadError::Other(e) => e,
        }
    }
}

/// Copies the file's tensors into `vs` and reports what did not fit. Nothing is
/// copied when `accept` rejects the report, so a failed load leaves `vs` as it was.
pub fn load_into(
    vs: &nn::VarStore,
    path: &Path,
    accept: impl Fn(&LoadReport) -> bool,
) -> std::result::Result<LoadReport, LoadError> {
    let (layout, tensors) = to_native_names(read_tensors(path)?);
    let mut vars = vs.variables();
    let mut report = LoadReport {
        layout,
        ..Default::default()
    };
    let mut plan = Vec::new();
    for (name, t) in tensors {
        match vars.remove(&name) {
            None => report.unexpected.push(name),
            Some(var) if var.size() != t.size() => {
                report.mismatched.push((name, var.size(), t.size()))
            }
            Some(var) => plan.push((var, t)),
        }
    }
    report.missing = vars.into_keys().collect();
    report.missing.sort();
    report.unexpected.sort();
    report.mismatched.sort();
    report.loaded = plan.len();
    if !accept(&report) {
        return Err(LoadError::WeightsMismatch {
            path: path.into(),
            report,
        });
    }
    tch::no_grad(|| -> Result<()> {
        for (mut var, t) in plan {
            var.f_copy_(&t.to_kind(var.kind()).to_device(var.device()))?;
        }
        Ok(())
    })?;
    Ok(report)
}
