//! The explanation grid: photos and their attribution maps, row by row.

use std::path::Path;

use image::{imageops, Rgb, RgbImage};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use serde::{Deserialize, Serialize};

use super::draw::*;
use super::{viridis, FigureError};

/// One attribution map of one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridMap {
    /// Method name; used as the column title (must match across rows).
    pub method: String,
    /// Row-major `height * width` values in `[0, 1]` (clamped; NaN → 0).
    pub values: Vec<f32>,
    /// Map width in cells.
    pub width: usize,
    /// Map height in cells.
    pub height: usize,
}

/// One row of an explanation grid: a photo and its attribution maps.
#[derive(Debug, Clone, PartialEq)]
pub struct GridRow {
    /// Row title, e.g. file name, label and predicted probability.
    pub title: String,
    /// The photo as the model saw it (same framing as the maps); stretched to
    /// the square tile, so maps stay aligned with it.
    pub image: RgbImage,
    /// Attribution maps in column order (any resolution; upsampled bilinearly).
    pub maps: Vec<GridMap>,
}

const GRID_TILE: u32 = 200;
const GRID_GAP: u32 = 8;
const GRID_LEFT: u32 = 170;
const GRID_HEADER: u32 = 44;
const GRID_BAR: u32 = 96;

/// Pixel size of the figure [`explanation_grid`] writes for `rows` rows of
/// `maps` attribution maps each.
pub fn explanation_grid_size(rows: usize, maps: usize) -> (u32, u32) {
    let cols = maps as u32 + 1;
    (
        GRID_LEFT + cols * GRID_TILE + (cols - 1) * GRID_GAP + GRID_BAR,
        GRID_HEADER + rows as u32 * (GRID_TILE + GRID_GAP) + 8,
    )
}

/// Explanation grid as in the original study's figure: one row per image,
/// the photo first, then each method's attribution map in viridis blended 50%
/// over the photo, with column titles, row titles on the left and a colour
/// bar. Every row must list the same methods in the same order. Size
/// [`explanation_grid_size`].
pub fn explanation_grid(path: &Path, rows: &[GridRow]) -> Result<(), FigureError> {
    let first = rows
        .first()
        .ok_or_else(|| invalid("explanation_grid: no rows"))?;
    let methods: Vec<&str> = first.maps.iter().map(|m| m.method.as_str()).collect();
    check_rows(rows, &methods)?;
    let size = explanation_grid_size(rows.len(), methods.len());
    let mut canvas = RgbImage::from_pixel(size.0, size.1, Rgb([255, 255, 255]));
    let tile_x = |c: u32| GRID_LEFT + c * (GRID_TILE + GRID_GAP);
    let tile_y = |r: u32| GRID_HEADER + r * (GRID_TILE + GRID_GAP);
    for (r, row) in rows.iter().enumerate() {
        let photo = imageops::resize(
            &row.image,
            GRID_TILE,
            GRID_TILE,
            imageops::FilterType::Triangle,
        );
        let y = tile_y(r as u32);
        imageops::replace(&mut canvas, &photo, i64::from(tile_x(0)), i64::from(y));
        for (c, map) in row.maps.iter().enumerate() {
            let tile = overlay(&photo, map);
            imageops::replace(
                &mut canvas,
                &tile,
                i64::from(tile_x(c as u32 + 1)),
                i64::from(y),
            );
        }
    }
    render_onto(path, canvas, |root| {
        let header = text_style(16.0, BLACK, HPos::Center, VPos::Center);
        let titles = std::iter::once("Image").chain(methods.iter().copied());
        for (c, title) in titles.enumerate() {
            let lines = wrap_text(root, title, &header, GRID_TILE - 8);
            draw_lines(
                root,
                &lines,
                (
                    (tile_x(c as u32) + GRID_TILE / 2) as i32,
                    (GRID_HEADER / 2) as i32,
                ),
                16.0,
                BLACK,
            )?;
        }
        let row_style = text_style(14.0, BLACK, HPos::Center, VPos::Center);
        for (r, row) in rows.iter().enumerate() {
            let lines = wrap_text(root, &row.title, &row_style, GRID_LEFT - 16);
            draw_lines(
                root,
                &lines,
                (
                    (GRID_LEFT / 2) as i32 - 2,
                    (tile_y(r as u32) + GRID_TILE / 2) as i32,
                ),
                14.0,
                BLACK,
            )?;
        }
        if !methods.is_empty() {
            let x0 = (tile_x(methods.len() as u32) + GRID_TILE + 14) as i32;
            let y0 = GRID_HEADER as i32 + 10;
            let y1 = y0 + (GRID_TILE as i32 * 2).min(size.1 as i32 - y0 - 20);
            draw_colorbar(
                root,
                (x0, y0, x0 + 16, y1),
                viridis_color,
                (0.0, 1.0),
                3,
                "attribution (normalised)",
            )?;
        }
        Ok(())
    })
}

/// Every row has the same methods in the same order, a non-empty photo and
/// maps whose values fill their `width x height`.
fn check_rows(rows: &[GridRow], methods: &[&str]) -> Result<(), FigureError> {
    for row in rows {
        let names: Vec<&str> = row.maps.iter().map(|m| m.method.as_str()).collect();
        if names != methods {
            return Err(invalid(format!(
                "explanation_grid: row {:?} has methods {names:?}, expected {methods:?}",
                row.title
            )));
        }
        if row.image.width() == 0 || row.image.height() == 0 {
            return Err(invalid(format!(
                "explanation_grid: row {:?} has an empty image",
                row.title
            )));
        }
        for m in &row.maps {
            if m.width == 0 || m.height == 0 || m.values.len() != m.width * m.height {
                return Err(invalid(format!(
                    "explanation_grid: map {:?} of row {:?} has {} values for {}x{}",
                    m.method,
                    row.title,
                    m.values.len(),
                    m.width,
                    m.height
                )));
            }
        }
    }
    Ok(())
}

/// Blends the viridis-coloured, bilinearly upsampled `map` 50% over `photo`.
fn overlay(photo: &RgbImage, map: &GridMap) -> RgbImage {
    let (w, h) = photo.dimensions();
    let value = |x: usize, y: usize| -> f32 {
        let v = map.values[y * map.width + x];
        if v.is_nan() {
            0.0
        } else {
            v.clamp(0.0, 1.0)
        }
    };
    RgbImage::from_fn(w, h, |x, y| {
        // Pixel centres map onto map-cell centres (align_corners = false).
        let fx = ((x as f32 + 0.5) * map.width as f32 / w as f32 - 0.5)
            .clamp(0.0, (map.width - 1) as f32);
        let fy = ((y as f32 + 0.5) * map.height as f32 / h as f32 - 0.5)
            .clamp(0.0, (map.height - 1) as f32);
        let (x0, y0) = (fx.floor() as usize, fy.floor() as usize);
        let (x1, y1) = ((x0 + 1).min(map.width - 1), (y0 + 1).min(map.height - 1));
        let (tx, ty) = (fx - x0 as f32, fy - y0 as f32);
        let top = value(x0, y0) * (1.0 - tx) + value(x1, y0) * tx;
        let bottom = value(x0, y1) * (1.0 - tx) + value(x1, y1) * tx;
        let heat = viridis(top * (1.0 - ty) + bottom * ty);
        let p = photo.get_pixel(x, y).0;
        Rgb(std::array::from_fn(|k| {
            (u16::from(p[k]) + u16::from(heat[k])).div_ceil(2) as u8
        }))
    })
}
