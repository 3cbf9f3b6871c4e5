//! Decoding one image for the store: the full decoder that `decode_rgb`
//! uses, or a JPEG decoded at a reduced scale in the DCT domain (several
//! times faster on large photos) before the same resize.

use std::io::Cursor;
use std::path::Path;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, RgbImage};
use serde::{Deserialize, Serialize};

use crate::data::image::resize;
use crate::data::jpeg::{check_complete, is_jpeg};
use crate::error::{Error, Result};

/// Names the decode + resize rule. It is part of every key and of the file
/// names, so a changed rule (filter, crop) starts new files instead of
/// serving rows made the old way.
pub const RESIZE_RULE: &str = "triangle-exact-v1";

/// How JPEGs are decoded before the resize.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DecodeMode {
    /// Full resolution: rows equal `decode_rgb` + `resize` bit for bit.
    #[default]
    Full,
    /// JPEGs decoded at 1/8..1 scale in the DCT domain (several times faster
    /// on large photos, a level or so of difference after the resize).
    Reduced,
}

impl DecodeMode {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            DecodeMode::Full => "full",
            DecodeMode::Reduced => "reduced",
        }
    }
}

/// Decodes `path` (EXIF orientation applied, truncated JPEGs refused as by
/// `decode_rgb`) and resizes it to exactly (height, width).
pub fn decode_resized(path: &Path, height: u32, width: u32, mode: DecodeMode) -> Result<RgbImage> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_bytes(path, &bytes, height, width, mode)
}

pub(super) fn decode_bytes(
    path: &Path,
    bytes: &[u8],
    height: u32,
    width: u32,
    mode: DecodeMode,
) -> Result<RgbImage> {
    let image_error = |message: String| Error::Image {
        path: path.into(),
        message,
    };
    if bytes.is_empty() {
        return Err(image_error("empty file".into()));
    }
    let jpeg = is_jpeg(bytes);
    if jpeg {
        check_complete(bytes).map_err(image_error)?;
    }
    let reduced = match mode {
        DecodeMode::Reduced if jpeg => decode_jpeg_reduced(bytes, height, width),
        _ => None,
    };
    let img = match reduced {
        Some(img) => img,
        None => decode_full(path, bytes)?,
    };
    Ok(resize(&img, height, width))
}

/// `decode_rgb` after its checks, on bytes already read (and hashed): the
/// file is read once, so the row always matches the key.
fn decode_full(path: &Path, bytes: &[u8]) -> Result<RgbImage> {
    let image_error = |message: String| Error::Image {
        path: path.into(),
        message,
    };
    let reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| image_error(e.to_string()))?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| image_error(e.to_string()))?;
    img.apply_orientation(orientation);
    Ok(img.to_rgb8())
}

/// Decodes a JPEG at the smallest DCT scale that keeps both sides at least
/// twice the target, upright, when that scale is 1/4 or 1/8. `None` leaves
/// the file to the full decoder (larger scales, CMYK, 16-bit, or anything
/// jpeg-decoder refuses).
fn decode_jpeg_reduced(bytes: &[u8], height: u32, width: u32) -> Option<RgbImage> {
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    decoder.read_info().ok()?;
    let info = decoder.info()?;
    let (tw, th) = match exif_orientation(decoder.exif_data()) {
        o if swaps_axes(o) => (height, width),
        _ => (width, height),
    };
    let want = reduced_size(info.width, info.height, tw, th);
    // At 1/2 scale jpeg-decoder's scaled decode is no faster than the full
    // decoder (measured: 1024x768 to 224, 263 against 354 img/s; 1600x1200,
    // even), so only 1/4 and 1/8 go this way (4000x3000: 44 against 27).
    if u32::from(want.0) * 4 > u32::from(info.width) {
        return None;
    }
    if decoder.scale(want.0, want.1).ok()? != want {
        return None;
    }
    let pixels = decoder.decode().ok()?;
    let info = decoder.info()?;
    let rgb = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => pixels,
        jpeg_decoder::PixelFormat::L8 => pixels.iter().flat_map(|&v| [v, v, v]).collect(),
        _ => return None,
    };
    let img = RgbImage::from_raw(info.width.into(), info.height.into(), rgb)?;
    // After decode every APP segment has been seen, wherever it was.
    let mut img = DynamicImage::ImageRgb8(img);
    img.apply_orientation(exif_orientation(decoder.exif_data()));
    Some(img.into_rgb8())
}

/// Side lengths at the smallest scale of 1/8, 1/4, 1/2 whose output still
/// has >= 2x the target on both sides, so the triangle resize that follows
/// still averages; the full size when none does.
fn reduced_size(width: u16, height: u16, tw: u32, th: u32) -> (u16, u16) {
    let scaled = |len: u16, s: u32| (u32::from(len) * s).div_ceil(8);
    for s in [1, 2, 4] {
        let (w, h) = (scaled(width, s), scaled(height, s));
        if w >= 2 * tw && h >= 2 * th {
            return (w as u16, h as u16);
        }
    }
    (width, height)
}

fn exif_orientation(exif: Option<&[u8]>) -> Orientation {
    exif.and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms)
}

fn swaps_axes(o: Orientation) -> bool {
    use Orientation::*;
    matches!(o, Rotate90 | Rotate270 | Rotate90FlipH | Rotate270FlipH)
}

/// RGB interleaved (HWC) to planar CHW, the layout of the tensors.
pub fn to_chw(img: &RgbImage) -> Vec<u8> {
    let plane = (img.width() * img.height()) as usize;
    let mut chw = vec![0u8; 3 * plane];
    for (p, px) in img.as_raw().chunks_exact(3).enumerate() {
        chw[p] = px[0];
        chw[plane + p] = px[1];
        chw[2 * plane + p] = px[2];
    }
    chw
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn reduced_mode_is_close_to_full_on_a_large_jpeg() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("large.jpg");
        write_jpeg(&path, &photo(1600, 1200, 5), None);
        // 1/2 scale keeps 800x600 >= 2 * 224; 1/4 (400x300) would not.
        assert_eq!(reduced_size(1600, 1200, 224, 224), (800, 600));
        assert_eq!(reduced_size(300, 200, 224, 224), (300, 200));
        // At 1/2 the full decoder is used (no faster scaled path there).
        let full = to_chw(&decode_resized(&path, 224, 224, DecodeMode::Full).unwrap());
        let half = to_chw(&decode_resized(&path, 224, 224, DecodeMode::Reduced).unwrap());
        assert_eq!(full, half);
        // To 64x64, 1/8 (200x150) keeps twice the target: decoded reduced.
        assert_eq!(reduced_size(1600, 1200, 64, 64), (200, 150));
        let full = to_chw(&decode_resized(&path, 64, 64, DecodeMode::Full).unwrap());
        let reduced = to_chw(&decode_resized(&path, 64, 64, DecodeMode::Reduced).unwrap());
        let mae = mean_abs_diff(&full, &reduced);
        assert!(mae > 0.0 && mae < 2.0, "mean absolute difference {mae}");
    }

    #[test]
    fn reduced_mode_applies_exif_orientation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rotated.jpg");
        // Red left half, blue right half; orientation 6 turns it a quarter
        // clockwise, so upright the red half is on top.
        let img = RgbImage::from_fn(800, 400, |x, _| {
            if x < 400 {
                image::Rgb([220, 20, 20])
            } else {
                image::Rgb([20, 20, 220])
            }
        });
        write_jpeg(&path, &img, Some(exif_orientation_chunk(6)));
        let reduced = decode_resized(&path, 64, 32, DecodeMode::Reduced).unwrap();
        assert_eq!(reduced.dimensions(), (32, 64));
        assert!(reduced.get_pixel(16, 5)[0] > 200 && reduced.get_pixel(16, 58)[2] > 200);
        let full = decode_resized(&path, 64, 32, DecodeMode::Full).unwrap();
        assert!(mean_abs_diff(full.as_raw(), reduced.as_raw()) < 2.0);
    }
}
