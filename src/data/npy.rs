//! `.npy` heatmaps and attributions as plain `Vec<f32>`, through tch's reader/writer.

use std::path::Path;

use tch::{Kind, Tensor};

use crate::error::{Error, Result};

/// Reads a float32 heatmap `(H,W)` or `(1,H,W)`; returns (row-major data, H, W).
pub fn read_map(path: &Path) -> Result<(Vec<f32>, usize, usize)> {
    let t = Tensor::read_npy(path).map_err(|e| Error::Image {
        path: path.into(),
        message: format!("cannot read .npy: {e}"),
    })?;
    let size = t.size();
    let (h, w) = match size.as_slice() {
        [h, w] | [1, h, w] => (*h, *w),
        _ => {
            return Err(Error::Shape {
                expected: vec![-1, -1],
                got: size,
            })
        }
    };
    let data = Vec::<f32>::try_from(t.to_kind(Kind::Float).reshape([-1]))?;
    Ok((data, h as usize, w as usize))
}

/// Writes row-major float32 data with the given shape.
pub fn write_f32(path: &Path, data: &[f32], shape: &[i64]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    Tensor::from_slice(data).reshape(shape).write_npy(path)?;
    Ok(())
}
