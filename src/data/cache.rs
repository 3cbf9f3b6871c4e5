//! Decode-once image cache: every sample is decoded and resized in parallel a
//! single time and kept as one `u8` tensor, so training never waits on JPEG
//! decoding after start-up.

use std::path::PathBuf;

use rayon::prelude::*;
use tch::{Kind, Tensor};

use super::image::{decode_rgb, resize};
use super::scan::{Sample, Skipped};
use crate::error::Result;

/// Images `(N,3,H,W)` as u8 (0..255), labels, and the ids in the same order.
pub struct ImageCache {
    pub images: Tensor,
    pub labels: Vec<usize>,
    pub ids: Vec<String>,
    pub paths: Vec<PathBuf>,
    /// Dense lesion/patient group per row (every row its own group when the
    /// data set has none), so splits keep a group on one side.
    pub groups: Vec<usize>,
    pub size: [i64; 2],
    /// Files that failed to decode here (already-scanned sets rarely have any).
    pub skipped: Vec<Skipped>,
}

impl ImageCache {
    /// Decodes and resizes `samples` to `size` = (H, W).
    pub fn build(samples: &[Sample], size: [i64; 2]) -> Result<ImageCache> {
        // Zero would panic in the resize, a huge size abort on allocation.
        let range = 1..=*crate::model::checkpoint::INPUT_SIDE_RANGE.end();
        if !range.contains(&size[0]) || !range.contains(&size[1]) {
            return Err(crate::error::Error::Config(format!(
                "input size {}x{} is outside {}..={} pixels per side",
                size[0],
                size[1],
                range.start(),
                range.end()
            )));
        }
        let (h, w) = (size[0] as u32, size[1] as u32);
        let decoded: Vec<(usize, std::result::Result<Vec<u8>, String>)> = samples
            .par_iter()
            .enumerate()
            .map(|(i, s)| {
                let r = decode_rgb(&s.path).map(|img| {
                    let img = resize(&img, h, w);
                    // HWC -> CHW
                    let raw = img.as_raw();
                    let plane = (h * w) as usize;
                    let mut chw = vec![0u8; 3 * plane];
                    for p in 0..plane {
                        for c in 0..3 {
                            chw[c * plane + p] = raw[3 * p + c];
                        }
                    }
                    chw
                });
                (i, r.map_err(|e| e.to_string()))
            })
            .collect();
        let mut data = Vec::with_capacity(samples.len() * 3 * (h * w) as usize);
        let (mut labels, mut ids, mut paths, mut skipped) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut group_keys = Vec::new();
        for (i, r) in decoded {
            match r {
                Ok(chw) => {
                    data.extend_from_slice(&chw);
                    labels.push(samples[i].label);
                    ids.push(samples[i].id.clone());
                    paths.push(samples[i].path.clone());
                    group_keys.push(samples[i].group.clone());
                }
                Err(reason) => skipped.push(Skipped {
                    path: samples[i].path.clone(),
                    reason,
                }),
            }
        }
        let n = labels.len() as i64;
        let images = Tensor::from_slice(&data).view([n, 3, size[0], size[1]]);
        Ok(ImageCache {
            images,
            labels,
            ids,
            paths,
            groups: super::groups::dense_groups(&group_keys),
            size,
            skipped,
        })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Float batch `(B,3,H,W)` in 0..1 for the given cache rows.
    pub fn batch(&self, rows: &[usize]) -> Tensor {
        let idx = Tensor::from_slice(&rows.iter().map(|&r| r as i64).collect::<Vec<_>>());
        self.images.index_select(0, &idx).to_kind(Kind::Float) / 255.0
    }

    /// Rows `idx` (an index tensor on `images`' device) of `images` (the
    /// cache's uint8 tensor, possibly moved to a GPU), as floats in 0..1.
    pub fn gather(images: &Tensor, idx: &Tensor) -> Tensor {
        images.index_select(0, idx).to_kind(Kind::Float) / 255.0
    }

    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.ids.iter().position(|i| i == id)
    }
}
