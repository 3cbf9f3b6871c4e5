//! Turning an input argument into a model-ready tensor.
//!
//! An input is any common image file (decoded, converted to RGB, resized to the
//! model's input size with a triangle filter, scaled to 0..1 and normalised), or
//! a `.npy` float32 array `(3,H,W)` / `(1,3,H,W)` that is already preprocessed
//! and used as is.

use std::path::Path;

use image::imageops::FilterType;
use image::RgbImage;
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::model::config::Normalisation;

/// Decodes any supported image into 8-bit RGB (grey, alpha, palette and
/// 16-bit images are converted).
pub fn decode_rgb(path: &Path) -> Result<RgbImage> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.len() == 0 {
        return Err(Error::Image {
            path: path.into(),
            message: "empty file".into(),
        });
    }
    let reader = image::ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    let img = reader.decode().map_err(|e| Error::Image {
        path: path.into(),
        message: e.to_string(),
    })?;
    Ok(img.to_rgb8())
}

/// Resizes to exactly `(height, width)` (no crop: lesions are often off-centre).
pub fn resize(img: &RgbImage, height: u32, width: u32) -> RgbImage {
    if img.height() == height && img.width() == width {
        return img.clone();
    }
    image::imageops::resize(img, width, height, FilterType::Triangle)
}

/// RGB8 `(H,W,3)` -> float tensor `(3,H,W)` in 0..1.
pub fn to_unit_tensor(img: &RgbImage) -> Tensor {
    let (w, h) = (img.width() as i64, img.height() as i64);
    Tensor::from_slice(img.as_raw())
        .view([h, w, 3])
        .permute([2, 0, 1])
        .to_kind(Kind::Float)
        / 255.0
}

/// Mean and std as tensors broadcastable against `xs` (`(3,H,W)` or `(N,3,H,W)`).
/// A few float constants made on `device` without a host-to-device copy:
/// on CUDA a pageable copy synchronises the stream, and normalisation and
/// colour jitter need such constants on every batch.
pub fn constant(values: &[f32], device: tch::Device) -> Tensor {
    if device == tch::Device::Cpu {
        return Tensor::from_slice(values);
    }
    let t = Tensor::empty([values.len() as i64], (tch::Kind::Float, device));
    for (i, &v) in values.iter().enumerate() {
        let _ = t.get(i as i64).fill_(v as f64);
    }
    t
}

fn channel_stats(xs: &Tensor, norm: &Normalisation) -> (Tensor, Tensor) {
    let shape: &[i64] = if xs.dim() == 4 {
        &[1, 3, 1, 1]
    } else {
        &[3, 1, 1]
    };
    let as_tensor = |v: [f64; 3]| constant(&v.map(|x| x as f32), xs.device()).view(shape);
    (as_tensor(norm.mean), as_tensor(norm.std))
}

/// `(x - mean) / std` per channel on `(3,H,W)` or `(N,3,H,W)` tensors in 0..1.
pub fn normalise(xs: &Tensor, norm: &Normalisation) -> Tensor {
    let (mean, std) = channel_stats(xs, norm);
    (xs - mean) / std
}

/// Inverse of [`normalise`], for drawing a preprocessed input.
pub fn denormalise(xs: &Tensor, norm: &Normalisation) -> Tensor {
    let (mean, std) = channel_stats(xs, norm);
    xs * std + mean
}

/// Reads a preprocessed `.npy` input: float32 `(3,H,W)` or `(1,3,H,W)`; returns `(3,H,W)`.
pub fn read_npy_input(path: &Path) -> Result<Tensor> {
    let t = Tensor::read_npy(path).map_err(|e| Error::Image {
        path: path.into(),
        message: format!("cannot read .npy: {e}"),
    })?;
    let size = t.size();
    let t = match size.as_slice() {
        [3, _, _] => t,
        [1, 3, _, _] => t.squeeze_dim(0),
        _ => {
            return Err(Error::Shape {
                expected: vec![3, -1, -1],
                got: size,
            })
        }
    };
    if t.kind() != Kind::Float {
        return Err(Error::Image {
            path: path.into(),
            message: format!("expected float32 array, got {:?}", t.kind()),
        });
    }
    Ok(t)
}

/// Loads any input argument as a normalised `(3,H,W)` tensor for a model with
/// the given input size and normalisation.
pub fn load_input(path: &Path, input_size: [i64; 2], norm: &Normalisation) -> Result<Tensor> {
    let is_npy = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    if is_npy {
        return read_npy_input(path);
    }
    let img = decode_rgb(path)?;
    let img = resize(&img, input_size[0] as u32, input_size[1] as u32);
    Ok(normalise(&to_unit_tensor(&img), norm))
}
