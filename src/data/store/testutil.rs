//! Test images and file helpers shared by the store's tests.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use image::{ImageEncoder, RgbImage};

use super::decode::to_chw;
use super::{DecodeMode, StoreOptions};
use crate::data::image::{decode_rgb, resize};

pub(super) fn options(dir: &Path, height: u32, width: u32, decode: DecodeMode) -> StoreOptions {
    StoreOptions {
        dir: dir.to_path_buf(),
        height,
        width,
        decode,
        progress: false,
    }
}

/// Smooth shading, mid-frequency texture and a little noise, like a
/// dermoscopy photo rather than a flat test card.
pub(super) fn photo(width: u32, height: u32, seed: u32) -> RgbImage {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    RgbImage::from_fn(width, height, |x, y| {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let noise = (state >> 28) as f32 - 8.0;
        let (fx, fy) = (x as f32 / width as f32, y as f32 / height as f32);
        let wave = 30.0 * ((x as f32 / 9.0).sin() * (y as f32 / 13.0).cos());
        let base = [180.0 * fx + 40.0, 120.0 * fy + 60.0, 90.0 + 60.0 * fx * fy];
        image::Rgb(base.map(|b| (b + wave + noise + seed as f32 % 17.0).clamp(0.0, 255.0) as u8))
    })
}

pub(super) fn write_jpeg(path: &Path, img: &RgbImage, exif: Option<Vec<u8>>) {
    let mut bytes = Vec::new();
    let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90);
    if let Some(exif) = exif {
        enc.set_exif_metadata(exif).unwrap();
    }
    enc.write_image(
        img.as_raw(),
        img.width(),
        img.height(),
        image::ExtendedColorType::Rgb8,
    )
    .unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Minimal little-endian EXIF block holding only an orientation tag.
pub(super) fn exif_orientation_chunk(value: u8) -> Vec<u8> {
    let mut b = vec![
        0x49, 0x49, 0x2A, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0,
    ];
    b.extend_from_slice(&[value, 0, 0, 0, 0, 0, 0, 0]);
    b
}

/// Moves a file's mtime into the past so its stat is trusted at once.
pub(super) fn backdate(path: &Path, seconds_ago: u64) {
    let file = File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(seconds_ago))
        .unwrap();
}

pub(super) fn expected_row(path: &Path, height: u32, width: u32) -> Vec<u8> {
    to_chw(&resize(&decode_rgb(path).unwrap(), height, width))
}

pub(super) fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let sum: u64 = a.iter().zip(b).map(|(&x, &y)| x.abs_diff(y) as u64).sum();
    sum as f64 / a.len() as f64
}

/// `n` distinct small JPEGs, backdated, in `dir`.
pub(super) fn jpegs(dir: &Path, n: u32, side: u32) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            let p = dir.join(format!("img{i}.jpg"));
            write_jpeg(&p, &photo(side + i, side, i), None);
            backdate(&p, 3600);
            p
        })
        .collect()
}
