//! Decode-once image cache: every sample is decoded and resized in parallel a
//! single time and kept as one `u8` tensor, so training never waits on JPEG
//! decoding after start-up.

use std::path::PathBuf;

use rayon::prelude::*;
use tch::{Kind, Tensor};

use super::image::{decode_rgb, resize};
use super::scan::{Sample, Skipped};
use super::store::{to_chw, ImageStore, StoreOptions};
use super::DataConfig;
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
    /// Set when the decoded images exceed `[data] memory_budget_mb`: rows
    /// are read from the store batch by batch and `images` is empty.
    pub streamed: Option<StreamedRows>,
}

/// The store rows of a streamed cache, one per cache row.
pub struct StreamedRows {
    pub store: std::sync::Arc<ImageStore>,
    pub rows: Vec<usize>,
}

/// Zero would panic in the resize, a huge size abort on allocation.
fn check_size(size: [i64; 2]) -> Result<()> {
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
    Ok(())
}

impl ImageCache {
    /// Decodes and resizes `samples` to `size` = (H, W).
    pub fn build(samples: &[Sample], size: [i64; 2]) -> Result<ImageCache> {
        check_size(size)?;
        let (h, w) = (size[0] as u32, size[1] as u32);
        let decoded: Vec<(usize, std::result::Result<Vec<u8>, String>)> = samples
            .par_iter()
            .enumerate()
            .map(|(i, s)| {
                let r = decode_rgb(&s.path).map(|img| to_chw(&resize(&img, h, w)));
                (i, r.map_err(|e| e.to_string()))
            })
            .collect();
        let mut data = Vec::with_capacity(samples.len() * 3 * (h * w) as usize);
        let (mut kept, mut skipped) = (Vec::new(), Vec::new());
        for (i, r) in decoded {
            match r {
                Ok(chw) => {
                    data.extend_from_slice(&chw);
                    kept.push(&samples[i]);
                }
                Err(reason) => skipped.push(Skipped {
                    path: samples[i].path.clone(),
                    reason,
                }),
            }
        }
        let images = Tensor::from_slice(&data).view([kept.len() as i64, 3, size[0], size[1]]);
        Ok(ImageCache::assemble(&kept, images, size, skipped, None))
    }

    /// The cache of the decoded `kept` samples (rows of `images`, in order).
    fn assemble(
        kept: &[&Sample],
        images: Tensor,
        size: [i64; 2],
        skipped: Vec<Skipped>,
        streamed: Option<StreamedRows>,
    ) -> ImageCache {
        let group_keys: Vec<Option<String>> = kept.iter().map(|s| s.group.clone()).collect();
        ImageCache {
            images,
            labels: kept.iter().map(|s| s.label).collect(),
            ids: kept.iter().map(|s| s.id.clone()).collect(),
            paths: kept.iter().map(|s| s.path.clone()).collect(),
            groups: super::groups::dense_groups(&group_keys),
            size,
            skipped,
            streamed,
        }
    }

    /// As `[data]` asks: through the decode-once store when `store` is set
    /// (held in memory within `memory_budget_mb`, streamed beyond it),
    /// else decoded here. `progress` draws a bar on stderr (never in the TUI).
    pub fn for_config(
        samples: &[Sample],
        size: [i64; 2],
        data: &DataConfig,
        progress: bool,
    ) -> Result<ImageCache> {
        let Some(dir) = &data.store else {
            return ImageCache::build(samples, size);
        };
        check_size(size)?;
        let paths: Vec<PathBuf> = samples.iter().map(|s| s.path.clone()).collect();
        let built = ImageStore::open_or_build(
            &paths,
            &StoreOptions {
                dir: dir.clone(),
                height: size[0] as u32,
                width: size[1] as u32,
                decode: data.decode,
                progress,
            },
        )?;
        let mut skipped: Vec<Skipped> = built
            .failed
            .iter()
            .map(|(i, reason)| Skipped {
                path: samples[*i].path.clone(),
                reason: reason.clone(),
            })
            .collect();
        skipped.sort_by(|a, b| a.path.cmp(&b.path));
        let kept: Vec<(usize, usize)> = built
            .rows
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.map(|r| (i, r)))
            .collect();
        let store = std::sync::Arc::new(built.store);
        let rows: Vec<usize> = kept.iter().map(|&(_, r)| r).collect();
        let bytes = rows.len() * store.row_len();
        let fits = bytes <= data.memory_budget_mb.saturating_mul(1 << 20);
        let (images, streamed) = if fits {
            let mut buf = Vec::with_capacity(bytes);
            store.read_rows(&rows, &mut buf);
            let t = Tensor::from_slice(&buf).view([rows.len() as i64, 3, size[0], size[1]]);
            (t, None)
        } else {
            (
                Tensor::zeros([0], (Kind::Uint8, tch::Device::Cpu)),
                Some(StreamedRows { store, rows }),
            )
        };
        let kept: Vec<&Sample> = kept.iter().map(|&(i, _)| &samples[i]).collect();
        Ok(ImageCache::assemble(&kept, images, size, skipped, streamed))
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Float batch `(B,3,H,W)` in 0..1 for the given cache rows.
    pub fn batch(&self, rows: &[usize]) -> Tensor {
        if let Some(s) = &self.streamed {
            let wanted: Vec<usize> = rows.iter().map(|&r| s.rows[r]).collect();
            let mut buf = Vec::with_capacity(wanted.len() * s.store.row_len());
            s.store.read_rows(&wanted, &mut buf);
            return Tensor::from_slice(&buf)
                .view([rows.len() as i64, 3, self.size[0], self.size[1]])
                .to_kind(Kind::Float)
                / 255.0;
        }
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
