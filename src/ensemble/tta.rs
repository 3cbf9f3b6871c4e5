//! Test-time augmentation: the eight dihedral transforms of the square
//! (identity, three 90° rotations, and each of those after a horizontal
//! flip), the same label-preserving group the training augments with.
//!
//! A network's TTA logits are the mean of its logits over the eight
//! transformed inputs, the same combine rule as the ensemble's (mean of
//! logits). Because the eight transforms form a group, transforming the
//! input only permutes them, so TTA output is invariant to flipping or
//! rotating the input by 90° (up to float rounding).

use tch::Tensor;

/// Number of transforms TTA averages over.
pub const DIHEDRAL_TRANSFORMS: usize = 8;

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
