//! Architecture descriptions: EfficientNet-Lite0..4 and B0..B7 as data.
//!
//! Variants are constructors of one config (`EfficientNetConfig::lite0()`), not
//! flags scattered through the model. Numbers follow the official TensorFlow
//! builders (`efficientnet_builder.py`, `efficientnet_lite_builder.py`) as
//! mirrored by `efficientnet_pytorch` / `efficientnet-lite-pytorch`.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Every architecture melxai can build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Lite0,
    Lite1,
    Lite2,
    Lite3,
    Lite4,
    B0,
    B1,
    B2,
    B3,
    B4,
    B5,
    B6,
    B7,
}

impl Arch {
    pub const ALL: [Arch; 13] = [
        Arch::Lite0,
        Arch::Lite1,
        Arch::Lite2,
        Arch::Lite3,
        Arch::Lite4,
        Arch::B0,
        Arch::B1,
        Arch::B2,
        Arch::B3,
        Arch::B4,
        Arch::B5,
        Arch::B6,
        Arch::B7,
    ];

    /// `arch` names an architecture melxai can build (`lite0`..`lite4`,
    /// `b0`..`b7`); the error lists them under `key`.
    pub fn check(key: &str, arch: &str) -> crate::validation::check::Checked {
        arch.parse::<Arch>().map(|_| ()).map_err(|_| {
            let names: Vec<&str> = Arch::ALL.iter().map(|a| a.name()).collect();
            crate::validation::OutOfRange::new(
                key,
                format!("{arch:?}"),
                &format!("one of {}", names.join(", ")),
            )
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::Lite0 => "lite0",
            Arch::Lite1 => "lite1",
            Arch::Lite2 => "lite2",
            Arch::Lite3 => "lite3",
            Arch::Lite4 => "lite4",
            Arch::B0 => "b0",
            Arch::B1 => "b1",
            Arch::B2 => "b2",
            Arch::B3 => "b3",
            Arch::B4 => "b4",
            Arch::B5 => "b5",
            Arch::B6 => "b6",
            Arch::B7 => "b7",
        }
    }

    pub fn is_lite(self) -> bool {
        matches!(
            self,
            Arch::Lite0 | Arch::Lite1 | Arch::Lite2 | Arch::Lite3 | Arch::Lite4
        )
    }

    /// File name of the shipped ImageNet weights for this architecture, if any.
    pub fn imagenet_weights_file(self) -> Option<String> {
        match self {
            Arch::Lite0 | Arch::Lite1 | Arch::Lite2 => {
                Some(format!("efficientnet-{}-imagenet.safetensors", self.name()))
            }
            _ => None,
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Arch {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let key = s
            .trim()
            .to_ascii_lowercase()
            .replace("efficientnet-", "")
            .replace("efficientnet_", "");
        Arch::ALL
            .into_iter()
            .find(|a| a.name() == key)
            .ok_or_else(|| {
                Error::Config(format!(
                    "unknown architecture '{s}' (expected one of lite0..lite4, b0..b7)"
                ))
            })
    }
}

/// The element-wise non-linearity of a family: ReLU6 for Lite, SiLU (swish) for B.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Relu6,
    Silu,
}

/// One MBConv stage as written in the builders (`r1_k3_s11_e1_i32_o16_se0.25`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StageConfig {
    pub num_repeat: i64,
    pub kernel_size: i64,
    pub stride: i64,
    pub expand_ratio: i64,
    pub input_filters: i64,
    pub output_filters: i64,
}

/// One concrete MBConv block after width/depth scaling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockConfig {
    pub kernel_size: i64,
    pub stride: i64,
    pub expand_ratio: i64,
    pub input_filters: i64,
    pub output_filters: i64,
    /// Squeeze-excitation channels (None for Lite models).
    pub se_channels: Option<i64>,
    /// Drop-connect probability of this block in training (scaled by depth).
    pub drop_connect: f64,
}

impl BlockConfig {
    pub fn expanded_filters(&self) -> i64 {
        self.input_filters * self.expand_ratio
    }
    pub fn has_residual(&self) -> bool {
        self.stride == 1 && self.input_filters == self.output_filters
    }
}

/// Full description of one network. Serialised into checkpoint metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EfficientNetConfig {
    pub arch: Arch,
    pub width: f64,
    pub depth: f64,
    /// Native input resolution (square), pixels.
    pub resolution: i64,
    pub dropout: f64,
    pub drop_connect: f64,
    pub num_classes: i64,
}

const BASE_STAGES: [StageConfig; 7] = [
    stage(1, 3, 1, 1, 32, 16),
    stage(2, 3, 2, 6, 16, 24),
    stage(2, 5, 2, 6, 24, 40),
    stage(3, 3, 2, 6, 40, 80),
    stage(3, 5, 1, 6, 80, 112),
    stage(4, 5, 2, 6, 112, 192),
    stage(1, 3, 1, 6, 192, 320),
];

const fn stage(r: i64, k: i64, s: i64, e: i64, i: i64, o: i64) -> StageConfig {
    StageConfig {
        num_repeat: r,
        kernel_size: k,
        stride: s,
        expand_ratio: e,
        input_filters: i,
        output_filters: o,
    }
}

/// Squeeze-excitation ratio of B models.
const SE_RATIO: f64 = 0.25;
const DEPTH_DIVISOR: f64 = 8.0;
const STEM_FILTERS: i64 = 32;
const HEAD_FILTERS: i64 = 1280;

impl EfficientNetConfig {
    pub fn new(arch: Arch, num_classes: i64) -> Self {
        let (width, depth, resolution, dropout) = match arch {
            Arch::Lite0 => (1.0, 1.0, 224, 0.2),
            Arch::Lite1 => (1.0, 1.1, 240, 0.2),
            Arch::Lite2 => (1.1, 1.2, 260, 0.3),
            Arch::Lite3 => (1.2, 1.4, 280, 0.3),
            Arch::Lite4 => (1.4, 1.8, 300, 0.3),
            Arch::B0 => (1.0, 1.0, 224, 0.2),
            Arch::B1 => (1.0, 1.1, 240, 0.2),
            Arch::B2 => (1.1, 1.2, 260, 0.3),
            Arch::B3 => (1.2, 1.4, 300, 0.3),
            Arch::B4 => (1.4, 1.8, 380, 0.4),
            Arch::B5 => (1.6, 2.2, 456, 0.4),
            Arch::B6 => (1.8, 2.6, 528, 0.5),
            Arch::B7 => (2.0, 3.1, 600, 0.5),
        };
        EfficientNetConfig {
            arch,
            width,
            depth,
            resolution,
            dropout,
            drop_connect: 0.2,
            num_classes,
        }
    }

    pub fn lite0(num_classes: i64) -> Self {
        Self::new(Arch::Lite0, num_classes)
    }
    pub fn b0(num_classes: i64) -> Self {
        Self::new(Arch::B0, num_classes)
    }

    pub fn activation(&self) -> Activation {
        if self.arch.is_lite() {
            Activation::Relu6
        } else {
            Activation::Silu
        }
    }

    /// Width scaling with the TF rounding rule (multiple of 8, never more than 10 % down).
    pub fn round_filters(&self, filters: i64) -> i64 {
        let f = filters as f64 * self.width;
        let mut new = ((f + DEPTH_DIVISOR / 2.0) / DEPTH_DIVISOR).floor() * DEPTH_DIVISOR;
        new = new.max(DEPTH_DIVISOR);
        if new < 0.9 * f {
            new += DEPTH_DIVISOR;
        }
        new as i64
    }

    fn round_repeats(&self, repeats: i64) -> i64 {
        (self.depth * repeats as f64).ceil() as i64
    }

    pub fn stem_filters(&self) -> i64 {
        if self.arch.is_lite() {
            STEM_FILTERS
        } else {
            self.round_filters(STEM_FILTERS)
        }
    }

    pub fn head_filters(&self) -> i64 {
        if self.arch.is_lite() {
            HEAD_FILTERS
        } else {
            self.round_filters(HEAD_FILTERS)
        }
    }

    /// The concrete block list. Lite models keep the first and last stage's
    /// repeats and the stem input width fixed ("fix_head_stem").
    pub fn blocks(&self) -> Vec<BlockConfig> {
        let lite = self.arch.is_lite();
        let last = BASE_STAGES.len() - 1;
        let mut raw = Vec::new();
        for (i, s) in BASE_STAGES.iter().enumerate() {
            let mut input = self.round_filters(s.input_filters);
            let output = self.round_filters(s.output_filters);
            let repeats = if lite && (i == 0 || i == last) {
                if i == 0 {
                    input = STEM_FILTERS;
                }
                s.num_repeat
            } else {
                self.round_repeats(s.num_repeat)
            };
            for r in 0..repeats {
                let (inp, stride) = if r == 0 {
                    (input, s.stride)
                } else {
                    (output, 1)
                };
                let se_channels = if lite {
                    None
                } else {
                    Some(((inp as f64 * SE_RATIO) as i64).max(1))
                };
                raw.push(BlockConfig {
                    kernel_size: s.kernel_size,
                    stride,
                    expand_ratio: s.expand_ratio,
                    input_filters: inp,
                    output_filters: output,
                    se_channels,
                    drop_connect: 0.0,
                });
            }
        }
        let n = raw.len() as f64;
        for (idx, b) in raw.iter_mut().enumerate() {
            b.drop_connect = self.drop_connect * idx as f64 / n;
        }
        raw
    }

    /// Per-channel normalisation applied to 0..1 RGB pixels: `(x - mean) / std`.
    /// Lite: 127/128 on 0..255 (inputs in about [-1, 1]); B: ImageNet statistics.
    pub fn normalisation(&self) -> Normalisation {
        if self.arch.is_lite() {
            Normalisation {
                mean: [127.0 / 255.0; 3],
                std: [128.0 / 255.0; 3],
            }
        } else {
            Normalisation {
                mean: [0.485, 0.456, 0.406],
                std: [0.229, 0.224, 0.225],
            }
        }
    }
}

/// Input normalisation on 0..1 pixels, per RGB channel.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalisation {
    pub mean: [f64; 3],
    pub std: [f64; 3],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lite0_has_16_blocks_and_fixed_stem() {
        let c = EfficientNetConfig::lite0(1000);
        let blocks = c.blocks();
        assert_eq!(blocks.len(), 16);
        assert_eq!(blocks[0].input_filters, 32);
        assert_eq!(blocks.last().map(|b| b.output_filters), Some(320));
        assert_eq!(c.head_filters(), 1280);
    }

    #[test]
    fn lite2_scales_width_but_not_stem_or_head() {
        let c = EfficientNetConfig::new(Arch::Lite2, 1000);
        let blocks = c.blocks();
        assert_eq!(c.stem_filters(), 32);
        assert_eq!(blocks[0].input_filters, 32);
        assert_eq!(blocks[0].output_filters, 16);
        assert_eq!(blocks.last().map(|b| b.output_filters), Some(352));
        assert_eq!(c.head_filters(), 1280);
        // depth 1.2: stages 2..6 are ceil(1.2 r); first and last stay 1.
        assert_eq!(blocks.len(), 1 + 3 + 3 + 4 + 4 + 5 + 1);
    }

    #[test]
    fn b0_has_se_and_16_blocks() {
        let c = EfficientNetConfig::b0(1000);
        let blocks = c.blocks();
        assert_eq!(blocks.len(), 16);
        assert_eq!(blocks[0].se_channels, Some(8));
        assert_eq!(c.activation(), Activation::Silu);
    }

    #[test]
    fn arch_parses_common_spellings() {
        assert_eq!("efficientnet-lite1".parse::<Arch>().ok(), Some(Arch::Lite1));
        assert_eq!("B3".parse::<Arch>().ok(), Some(Arch::B3));
        assert!("resnet50".parse::<Arch>().is_err());
    }
}
