//! Writing one explanation to disk: raw attribution and heatmap as `.npy`
//! (float32) and a colour-mapped overlay PNG.

use std::path::{Path, PathBuf};

use image::RgbImage;
use serde::Serialize;

use super::heatmap::{overlay, save_png, to_vec};
use super::Explanation;
use crate::data::npy::write_f32;
use crate::error::Result;

#[derive(Debug, Clone, Serialize)]
pub struct WrittenFiles {
    pub attribution: PathBuf,
    pub heatmap: PathBuf,
    pub overlay: PathBuf,
}

/// Writes `<stem>_<method>_attr.npy`, `<stem>_<method>_map.npy` and `<stem>_<method>.png`.
pub fn write(
    e: &Explanation,
    image: &RgbImage,
    out_dir: &Path,
    stem: &str,
) -> Result<WrittenFiles> {
    let key = e.method.key();
    let files = WrittenFiles {
        attribution: out_dir.join(format!("{stem}_{key}_attr.npy")),
        heatmap: out_dir.join(format!("{stem}_{key}_map.npy")),
        overlay: out_dir.join(format!("{stem}_{key}.png")),
    };
    let attr = to_vec(&e.attribution)?;
    write_f32(&files.attribution, &attr, &e.attribution.size())?;
    let map = to_vec(&e.heatmap)?;
    write_f32(&files.heatmap, &map, &e.heatmap.size())?;
    let resized;
    let base = if image.height() as i64 == e.heatmap.size()[0]
        && image.width() as i64 == e.heatmap.size()[1]
    {
        image
    } else {
        resized = crate::data::image::resize(
            image,
            e.heatmap.size()[0] as u32,
            e.heatmap.size()[1] as u32,
        );
        &resized
    };
    save_png(&overlay(base, &map, 0.5), &files.overlay)?;
    Ok(files)
}
