//! Reference inputs for IG and DeepLIFT, all in the normalised input space.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::data::image::normalise;
use crate::model::config::Normalisation;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Baseline {
    /// All zeros after normalisation (the study's choice; mid-grey for Lite models).
    Zero,
    /// A black image (0 pixels), normalised.
    Black,
    /// The input blurred with a Gaussian (sigma = 1/16 of the side): removes
    /// detail but keeps colour and lighting.
    Blur,
    /// Uniform noise pixels in [0, 1], normalised (seeded).
    Noise,
}

impl std::str::FromStr for Baseline {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "zero" => Ok(Baseline::Zero),
            "black" => Ok(Baseline::Black),
            "blur" => Ok(Baseline::Blur),
            "noise" => Ok(Baseline::Noise),
            _ => Err(crate::Error::Config(format!(
                "unknown baseline '{s}' (zero, black, blur, noise)"
            ))),
        }
    }
}

impl Baseline {
    /// A baseline shaped like `x` `(1,3,H,W)`.
    pub fn build(self, x: &Tensor, norm: &Normalisation, seed: u64) -> Tensor {
        match self {
            Baseline::Zero => x.zeros_like(),
            Baseline::Black => normalise(&x.zeros_like(), norm),
            Baseline::Blur => {
                let size = x.size();
                let sigma = (size[2].min(size[3]) as f64 / 16.0).max(1.0);
                gaussian_blur(x, sigma)
            }
            Baseline::Noise => {
                let g = tch::Tensor::rand(x.size(), (Kind::Float, tch::Device::Cpu));
                let _ = seed; // libtorch's global generator is seeded by the caller
                normalise(&g.to_device(x.device()), norm)
            }
        }
    }
}

/// Separable Gaussian blur of `(N,C,H,W)` with reflection padding.
pub fn gaussian_blur(x: &Tensor, sigma: f64) -> Tensor {
    let radius = (3.0 * sigma).ceil() as i64;
    let k: Vec<f32> = (-radius..=radius)
        .map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp() as f32)
        .collect();
    let sum: f32 = k.iter().sum();
    let k: Vec<f32> = k.iter().map(|v| v / sum).collect();
    let c = x.size()[1];
    let n = k.len() as i64;
    let kernel = Tensor::from_slice(&k).to_device(x.device());
    let kh = kernel.view([1, 1, n, 1]).repeat([c, 1, 1, 1]);
    let kw = kernel.view([1, 1, 1, n]).repeat([c, 1, 1, 1]);
    let size = x.size();
    let r = radius.min(size[2] - 1).min(size[3] - 1);
    let (kh, kw) = if r < radius {
        let k2: Vec<f32> = k[(radius - r) as usize..(radius + r + 1) as usize].to_vec();
        let s: f32 = k2.iter().sum();
        let k2: Vec<f32> = k2.iter().map(|v| v / s).collect();
        let m = k2.len() as i64;
        let t = Tensor::from_slice(&k2).to_device(x.device());
        (
            t.view([1, 1, m, 1]).repeat([c, 1, 1, 1]),
            t.view([1, 1, 1, m]).repeat([c, 1, 1, 1]),
        )
    } else {
        (kh, kw)
    };
    let y = x
        .reflection_pad2d([0, 0, r, r])
        .conv2d(&kh, None::<Tensor>, [1, 1], [0, 0], [1, 1], c);
    y.reflection_pad2d([r, r, 0, 0])
        .conv2d(&kw, None::<Tensor>, [1, 1], [0, 0], [1, 1], c)
}
