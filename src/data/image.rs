//! Turning an input argument into a model-ready tensor.
//!
//! An input is any common image file (decoded, converted to RGB, resized to the
//! model's input size with a triangle filter, scaled to 0..1 and normalised), or
//! a `.npy` float32 array `(3,H,W)` / `(1,3,H,W)` that is already preprocessed
//! and used as is.

use std::path::Path;

use image::imageops::FilterType;
use image::ImageDecoder;
use image::RgbImage;
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::model::config::Normalisation;

/// Decodes any supported image into 8-bit RGB (grey, alpha, palette and
/// 16-bit images are converted), upright: the EXIF orientation a camera
/// recorded is applied, as every photo viewer does. A JPEG that stops before
/// its end-of-image marker is an error, not a partly grey picture.
pub fn decode_rgb(path: &Path) -> Result<RgbImage> {
    let image_error = |message: String| Error::Image {
        path: path.into(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if bytes.is_empty() {
        return Err(image_error("empty file".into()));
    }
    if crate::data::jpeg::is_jpeg(&bytes) {
        crate::data::jpeg::check_complete(&bytes).map_err(image_error)?;
    }
    let reader = image::ImageReader::new(std::io::Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| image_error(e.to_string()))?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img =
        image::DynamicImage::from_decoder(decoder).map_err(|e| image_error(e.to_string()))?;
    img.apply_orientation(orientation);
    Ok(img.to_rgb8())
}

/// Resizes to exactly `(height, width)` (no crop: lesions are often off-centre).
pub fn resize(img: &RgbImage, height: u32, width: u32) -> RgbImage {
    if img.height() == height && img.width() == width {
        return img.clone();
    }
    image::imageops::resize(img, width, height, FilterType::Triangle)
}

/// RGB8 `(H,W,3)` -> float tensor `(3,H,W)` in 0..1, contiguous.
///
/// Contiguous matters: the permuted view has HWC strides, which every
/// elementwise op after it keeps, so a model fed from it runs channels-last.
/// On CUDA that sends the depthwise convolutions down cuDNN's run-time
/// compiled engines: 11.6 s for the first explanation of a process against
/// 1.1 s for PyTorch on an H100 (benches/README.md, GPU).
pub fn to_unit_tensor(img: &RgbImage) -> Tensor {
    let (w, h) = (img.width() as i64, img.height() as i64);
    Tensor::from_slice(img.as_raw())
        .view([h, w, 3])
        .permute([2, 0, 1])
        .contiguous()
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

/// Reads a preprocessed `.npy` input: float32 `(3,H,W)` or `(1,3,H,W)` with
/// finite values and sides of at least [`MIN_INPUT_SIDE`]; returns `(3,H,W)`.
pub fn read_npy_input(path: &Path) -> Result<Tensor> {
    let a = crate::data::npy::read(path)?;
    let invalid = |message: String| Error::Invalid {
        path: path.into(),
        message,
    };
    if a.dtype != crate::data::npy::Dtype::F32 {
        return Err(invalid(format!(
            "expected a float32 array, got {:?} (preprocessed inputs are float32)",
            a.dtype
        )));
    }
    let (h, w) = match a.shape.as_slice() {
        [3, h, w] | [1, 3, h, w] => (*h, *w),
        _ => {
            return Err(invalid(format!(
                "expected shape (3,H,W) or (1,3,H,W), got {:?}",
                a.shape
            )))
        }
    };
    check_input_side(path, h, w)?;
    Ok(Tensor::from_slice(&a.data).view([3, h as i64, w as i64]))
}

/// Smallest input side the networks accept: below it a convolution's kernel
/// is larger than its (padded) input and libtorch refuses the forward pass.
pub const MIN_INPUT_SIDE: usize = 32;
/// Largest input side accepted (B7 is 600; 4096 keeps activations in memory).
pub const MAX_INPUT_SIDE: usize = 4096;

fn check_input_side(path: &Path, h: usize, w: usize) -> Result<()> {
    if !(MIN_INPUT_SIDE..=MAX_INPUT_SIDE).contains(&h)
        || !(MIN_INPUT_SIDE..=MAX_INPUT_SIDE).contains(&w)
    {
        return Err(Error::Invalid {
            path: path.into(),
            message: format!(
                "input of {h}x{w} pixels is outside {MIN_INPUT_SIDE}..={MAX_INPUT_SIDE} per side"
            ),
        });
    }
    Ok(())
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
    // Upscaled to the input size, a few pixels become a flat patch that the
    // model would still classify with confidence: refuse instead. (Large
    // photos are fine: they are resized down.)
    if (img.width() as usize) < MIN_INPUT_SIDE || (img.height() as usize) < MIN_INPUT_SIDE {
        return Err(Error::Invalid {
            path: path.into(),
            message: format!(
                "image of {}x{} pixels is too small: at least {MIN_INPUT_SIDE} per side is needed",
                img.width(),
                img.height()
            ),
        });
    }
    let img = resize(&img, input_size[0] as u32, input_size[1] as u32);
    Ok(normalise(&to_unit_tensor(&img), norm))
}
