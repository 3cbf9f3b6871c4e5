//! Test-time augmentation: the eight dihedral transforms of the square
//! (identity, three 90° rotations, and each of those after a horizontal
//! flip), the same label-preserving group the training augments with.
//!
//! A network's TTA logits are the mean of its logits over the eight
//! transformed inputs, the same combine rule as the ensemble's (mean of
//! logits). Because the eight transforms form a group, transforming the
//! input only permutes them, so TTA output is invariant to flipping or
//! rotating the input by 90° (up to float rounding).

use std::fmt;

use serde::{Deserialize, Serialize};
use tch::Tensor;

/// Number of transforms TTA averages over.
pub const DIHEDRAL_TRANSFORMS: usize = 8;

/// A TTA switch in config.toml: `true`, `false` or `"auto"`. What "auto"
/// means depends on the key: for `[train] tta` on for a CUDA device (where
/// the 8x held-out inference is cheap), for `[predict] tta` on exactly when
/// the model's temperature was fitted on TTA predictions, so the
/// calibration always matches the predictions it scales.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TtaSetting {
    On,
    #[default]
    Off,
    Auto,
}

impl TtaSetting {
    pub fn is_off(&self) -> bool {
        *self == TtaSetting::Off
    }

    /// `[train] tta` for a run on `device`.
    pub fn for_training(self, device: tch::Device) -> bool {
        match self {
            TtaSetting::On => true,
            TtaSetting::Off => false,
            TtaSetting::Auto => device.is_cuda(),
        }
    }

    /// `[predict] tta` for a model whose temperature was (or was not) fitted
    /// on TTA predictions.
    pub fn for_model(self, fitted_with_tta: bool) -> bool {
        match self {
            TtaSetting::On => true,
            TtaSetting::Off => false,
            TtaSetting::Auto => fitted_with_tta,
        }
    }
}

impl From<bool> for TtaSetting {
    fn from(on: bool) -> Self {
        if on {
            TtaSetting::On
        } else {
            TtaSetting::Off
        }
    }
}

impl Serialize for TtaSetting {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            TtaSetting::On => s.serialize_bool(true),
            TtaSetting::Off => s.serialize_bool(false),
            TtaSetting::Auto => s.serialize_str("auto"),
        }
    }
}

impl<'de> Deserialize<'de> for TtaSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = TtaSetting;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "true, false or \"auto\"")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<TtaSetting, E> {
                Ok(v.into())
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<TtaSetting, E> {
                match v {
                    "auto" => Ok(TtaSetting::Auto),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// Transform `index` (0..8) of a batch `(N, C, H, W)`: `index % 4` quarter
/// turns in the (H, W) plane, preceded by a horizontal flip when `index >= 4`.
/// For non-square inputs a quarter turn swaps H and W (the network pools
/// globally, so it still applies).
pub fn dihedral(xs: &Tensor, index: usize) -> Tensor {
    let flipped = if index >= 4 {
        xs.flip([3])
    } else {
        xs.shallow_clone()
    };
    match index % 4 {
        0 => flipped,
        k => flipped.rot90(k as i64, [2, 3]),
    }
}

/// Mean of `f` over the eight dihedral transforms of `xs`; `f` maps a batch
/// `(N, C, H, W)` to logits `(N, classes)`.
pub fn mean_over_dihedral(xs: &Tensor, f: impl Fn(&Tensor) -> Tensor) -> Tensor {
    let outs: Vec<Tensor> = (0..DIHEDRAL_TRANSFORMS)
        .map(|i| f(&dihedral(xs, i)))
        .collect();
    Tensor::stack(&outs, 0).mean_dim(0, false, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn the_eight_transforms_are_distinct_and_closed_under_flip() {
        let x = Tensor::arange(2 * 3 * 4 * 4, (Kind::Float, Device::Cpu)).view([2, 3, 4, 4]);
        let all: Vec<Tensor> = (0..8).map(|i| dihedral(&x, i)).collect();
        for i in 0..8 {
            for j in 0..i {
                assert!(!all[i].equal(&all[j]), "transforms {i} and {j} coincide");
            }
        }
        // Flipping the input maps the set onto itself.
        let flipped = x.flip([2]);
        for i in 0..8 {
            let t = dihedral(&flipped, i);
            assert!(all.iter().any(|a| a.equal(&t)), "transform {i} of the flip");
        }
    }
}
