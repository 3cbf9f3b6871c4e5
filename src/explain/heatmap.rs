//! Heatmap post-processing and overlays.

use std::path::Path;

use image::{Rgb, RgbImage};
use tch::{Kind, Tensor};

use super::colormap::viridis;
use crate::error::{Error, Result};

/// Min-max to [0, 1]; a constant map becomes all zeros.
pub fn min_max(t: &Tensor) -> Tensor {
    let t = t.to_kind(Kind::Float);
    let (lo, hi) = (t.min(), t.max());
    let range = (&hi - &lo).double_value(&[]);
    if range > 0.0 && range.is_finite() {
        (&t - lo) / range
    } else {
        t.zeros_like()
    }
}

/// The study's post-processing of an attribution `(C,H,W)`: absolute value,
/// mean over channels, min-max to [0, 1], then power 0.5. Returns `(H,W)`.
pub fn postprocess(attribution: &Tensor) -> Tensor {
    let m = attribution
        .abs()
        .mean_dim([0].as_slice(), false, Kind::Float);
    min_max(&m).sqrt()
}

/// `(H,W)` tensor to row-major `Vec<f32>`.
pub fn to_vec(map: &Tensor) -> Result<Vec<f32>> {
    Ok(Vec::<f32>::try_from(
        map.to_kind(Kind::Float)
            .to_device(tch::Device::Cpu)
            .reshape([-1]),
    )?)
}

/// Colour-mapped heatmap alone.
pub fn colourise(values: &[f32], height: usize, width: usize) -> RgbImage {
    RgbImage::from_fn(width as u32, height as u32, |x, y| {
        Rgb(viridis(values[y as usize * width + x as usize]))
    })
}

/// Heatmap blended over `image` (same size) with opacity `alpha`.
pub fn overlay(image: &RgbImage, values: &[f32], alpha: f32) -> RgbImage {
    let (w, h) = (image.width() as usize, image.height() as usize);
    RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let base = image.get_pixel(x, y).0;
        let heat = viridis(values[y as usize * w + x as usize]);
        Rgb([0, 1, 2]
            .map(|c| ((1.0 - alpha) * base[c] as f32 + alpha * heat[c] as f32).round() as u8))
    })
}

/// Normalised input `(3,H,W)` back to an RGB image via `denormalised` 0..1 values.
pub fn tensor_to_rgb(unit: &Tensor) -> Result<RgbImage> {
    let t = (unit.clamp(0.0, 1.0) * 255.0)
        .round()
        .to_kind(Kind::Uint8)
        .permute([1, 2, 0])
        .contiguous();
    let size = t.size();
    let data = Vec::<u8>::try_from(t.reshape([-1]))?;
    RgbImage::from_raw(size[1] as u32, size[0] as u32, data)
        .ok_or_else(|| Error::Other("image buffer size".into()))
}

/// Writes `img` as a PNG, atomically (a full disk never leaves a truncated PNG).
pub fn save_png(img: &RgbImage, path: &Path) -> Result<()> {
    crate::files::write_bytes(path, &encode_png(img, path)?)
}

/// PNG bytes of `img`; `path` only names the file in the error.
pub fn encode_png(img: &RgbImage, path: &Path) -> Result<Vec<u8>> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| Error::Image {
            path: path.into(),
            message: e.to_string(),
        })?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postprocess_is_abs_mean_minmax_sqrt() {
        // Channel means of |a|: [[1, 2], [3, 5]] -> min-max [[0, .25], [.5, 1]] -> sqrt.
        let a = Tensor::from_slice(&[1.0f32, -2.0, 3.0, 5.0, -1.0, 2.0, -3.0, 5.0]).view([2, 2, 2]);
        let m = to_vec(&postprocess(&a)).unwrap();
        let expected = [0.0f32, 0.5, 0.5f32.sqrt(), 1.0];
        for (g, e) in m.iter().zip(expected) {
            assert!((g - e).abs() < 1e-6, "{m:?}");
        }
        assert_eq!(
            to_vec(&min_max(&Tensor::ones(
                [2, 2],
                (Kind::Float, tch::Device::Cpu)
            )))
            .unwrap(),
            vec![0.0; 4]
        );
    }
}
