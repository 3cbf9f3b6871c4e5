//! Lesion masks for the localisation scores: a folder of
//! `<image stem>_segmentation.png` as in ISIC 2018 task 1 (white = lesion),
//! resized to the model's input with nearest-neighbour sampling.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// `<dir>/<stem of image>_segmentation.png`.
pub fn mask_path(dir: &Path, image: &Path) -> PathBuf {
    let stem = image
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.join(format!("{stem}_segmentation.png"))
}

/// The mask at `path` as `height·width` booleans (row-major; a pixel is
/// lesion when its grey value is above half).
pub fn load_mask(path: &Path, height: u32, width: u32) -> Result<Vec<bool>> {
    let img = image::open(path)
        .map_err(|e| Error::Dataset(format!("lesion mask {}: {e}", path.display())))?
        .to_luma8();
    let resized =
        image::imageops::resize(&img, width, height, image::imageops::FilterType::Nearest);
    let mask: Vec<bool> = resized.pixels().map(|p| p.0[0] > 127).collect();
    if !mask.iter().any(|&m| m) {
        return Err(Error::Dataset(format!(
            "lesion mask {} marks no lesion pixel (white = lesion)",
            path.display()
        )));
    }
    Ok(mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_are_named_after_the_image_and_resized() {
        assert_eq!(
            mask_path(Path::new("m"), Path::new("x/ISIC_0000001.jpg")),
            Path::new("m/ISIC_0000001_segmentation.png")
        );
        let dir = std::env::temp_dir().join(format!("melxai-mask-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a_segmentation.png");
        // Left half lesion.
        let img =
            image::GrayImage::from_fn(8, 4, |x, _| image::Luma([if x < 4 { 255 } else { 0 }]));
        img.save(&path).unwrap();
        let m = load_mask(&path, 2, 4).unwrap();
        assert_eq!(m, [true, true, false, false, true, true, false, false]);
        image::GrayImage::new(4, 4).save(&path).unwrap();
        let e = load_mask(&path, 2, 2).unwrap_err().to_string();
        assert!(e.contains("no lesion"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
