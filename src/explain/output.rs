//! Writing one explanation to disk: raw attribution and heatmap as `.npy`
//! (float32) and a colour-mapped overlay PNG.

use std::path::{Path, PathBuf};

use image::RgbImage;
use serde::Serialize;

use super::heatmap::{overlay, save_png, to_vec};
use super::Explanation;
use crate::data::npy::write_f32;
use crate::error::Result;

/// The files of one explanation of one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapFile {
    /// Raw attribution `(C,H,W)`, float32 `.npy`.
    Attribution,
    /// Post-processed heatmap `(H,W)` in [0, 1], float32 `.npy`.
    Heatmap,
    /// Colour-mapped overlay on the photo, PNG.
    Overlay,
}

impl MapFile {
    fn suffix(self) -> &'static str {
        match self {
            MapFile::Attribution => "_attr.npy",
            MapFile::Heatmap => "_map.npy",
            MapFile::Overlay => ".png",
        }
    }
}

/// `<dir>/<stem>_<method><suffix>`: the one place explanation file names
/// are spelled, for every writer (`explain`, `compare`, `--batch`) and
/// reader (grid figures, screenshots). `method` is a [`super::Method`]
/// key (`gradcam`, `ig`, ...); `stem` names the image (see
/// [`super::split::stem`] for data-set samples).
pub fn map_path(dir: &Path, stem: &str, method: &str, file: MapFile) -> PathBuf {
    dir.join(format!("{stem}_{method}{}", file.suffix()))
}

#[derive(Debug, Clone, Serialize)]
pub struct WrittenFiles {
    pub attribution: PathBuf,
    pub heatmap: PathBuf,
    pub overlay: PathBuf,
}

/// One output stem per input file (its file stem), keeping the extension for
/// inputs that share a stem (`dup.jpg`, `dup.png`); refuses inputs whose file
/// names are equal, which would overwrite each other's maps in one folder.
pub fn input_stems(inputs: &[PathBuf]) -> Result<Vec<String>> {
    use crate::data::scan::name_text;
    let plain = |p: &PathBuf| {
        p.file_stem()
            .map(name_text)
            .unwrap_or_else(|| "input".into())
    };
    let full = |p: &PathBuf| {
        p.file_name()
            .map(name_text)
            .unwrap_or_else(|| "input".into())
            .replace('.', "_")
    };
    let count = |s: &str| inputs.iter().filter(|p| plain(p) == s).count();
    let stems: Vec<String> = inputs
        .iter()
        .map(|p| {
            let s = plain(p);
            if count(&s) > 1 {
                full(p)
            } else {
                s
            }
        })
        .collect();
    for (i, s) in stems.iter().enumerate() {
        if let Some(j) = stems[..i].iter().position(|t| t == s) {
            return Err(crate::error::Error::Config(format!(
                "inputs {} and {} would write the same map files ('{s}_*'); give them different file names",
                inputs[j].display(),
                inputs[i].display()
            )));
        }
    }
    Ok(stems)
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
        attribution: map_path(out_dir, stem, key, MapFile::Attribution),
        heatmap: map_path(out_dir, stem, key, MapFile::Heatmap),
        overlay: map_path(out_dir, stem, key, MapFile::Overlay),
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
