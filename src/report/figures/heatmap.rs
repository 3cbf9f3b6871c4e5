//! The method-by-method similarity matrix as a labelled heatmap.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::backend;
use super::draw::*;
use super::FigureError;

const HM_TOP: u32 = 64;
const HM_RIGHT: u32 = 120;
const HM_BOTTOM: u32 = 70;

fn heatmap_cell(n: usize) -> u32 {
    (640 / n.max(1) as u32).clamp(48, 170)
}

/// Method-by-method similarity matrix (e.g. rank correlation or top-k IoU of
/// attribution maps), coloured with viridis over `value_range`, each cell
/// labelled with its value to 2 decimals (NaN: "—", grey cell). The canvas is
/// `left + n * cell + 120` wide, where the left margin fits the longest method
/// name.
pub fn similarity_heatmap(
    path: &Path,
    methods: &[String],
    matrix: &[Vec<f64>],
    title: &str,
    value_range: (f64, f64),
) -> Result<(), FigureError> {
    let n = methods.len();
    if n == 0 {
        return Err(invalid("similarity_heatmap: no methods"));
    }
    if matrix.len() != n || matrix.iter().any(|r| r.len() != n) {
        return Err(invalid(format!(
            "similarity_heatmap: matrix must be {n}x{n} to match the methods"
        )));
    }
    let (lo, hi) = value_range;
    if !(lo.is_finite() && hi.is_finite() && hi > lo) {
        return Err(invalid(format!(
            "similarity_heatmap: bad value range {value_range:?}"
        )));
    }
    let font = ensure_font()?;
    let cell = heatmap_cell(n);
    // Left margin from the longest label, measured with the real font.
    let label_size = if cell >= 80 { 15.0 } else { 13.0 };
    let widest = methods
        .iter()
        .map(|m| backend::text_size(font, m, label_size).0.ceil() as u32)
        .max()
        .unwrap_or(120);
    let left = (widest + 30).clamp(90, 260);
    let size = (
        (left + n as u32 * cell + HM_RIGHT).max(420),
        HM_TOP + n as u32 * cell + HM_BOTTOM,
    );
    render(path, size, |root| {
        let left = left as i32;
        let cell = cell as i32;
        let top = HM_TOP as i32;
        let grid = cell * n as i32;
        root.draw_text(
            title,
            &text_style(20.0, BLACK, HPos::Center, VPos::Center),
            (size.0 as i32 / 2, top / 2),
        )?;
        draw_cells(root, matrix, (left, top), cell, (lo, hi))?;
        let row_style = text_style(label_size, BLACK, HPos::Right, VPos::Center);
        let col_style = text_style(label_size, BLACK, HPos::Center, VPos::Center);
        for (k, m) in methods.iter().enumerate() {
            root.draw_text(m, &row_style, (left - 10, top + cell * k as i32 + cell / 2))?;
            let lines = wrap_text(root, m, &col_style, (cell - 6) as u32);
            let line_h = (label_size * 1.25) as i32;
            draw_lines(
                root,
                &lines,
                (
                    left + cell * k as i32 + cell / 2,
                    top + grid + 14 + line_h * (lines.len() as i32 - 1) / 2,
                ),
                label_size,
                BLACK,
            )?;
        }
        draw_colorbar(
            root,
            (left + grid + 20, top, left + grid + 36, top + grid),
            viridis_color,
            (lo, hi),
            5,
            "",
        )?;
        Ok(())
    })
}

/// The coloured, value-labelled cells of [`similarity_heatmap`], the first
/// one's top-left corner at `(left, top)`.
fn draw_cells(
    root: &Area<'_>,
    matrix: &[Vec<f64>],
    (left, top): (i32, i32),
    cell: i32,
    (lo, hi): (f64, f64),
) -> Result<(), FigureError> {
    let value_size = if cell >= 80 { 18.0 } else { 13.0 };
    for (i, row) in matrix.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            let (x0, y0) = (left + cell * j as i32, top + cell * i as i32);
            let bg = if v.is_finite() {
                viridis_color((v - lo) / (hi - lo))
            } else {
                RGBColor(225, 225, 225)
            };
            root.draw(&Rectangle::new(
                [(x0, y0), (x0 + cell, y0 + cell)],
                bg.filled(),
            ))?;
            root.draw(&Rectangle::new(
                [(x0, y0), (x0 + cell, y0 + cell)],
                WHITE.stroke_width(2),
            ))?;
            let label = if v.is_finite() {
                format!("{v:.2}")
            } else {
                "—".to_string()
            };
            root.draw_text(
                &label,
                &text_style(value_size, text_on(bg), HPos::Center, VPos::Center),
                (x0 + cell / 2, y0 + cell / 2),
            )?;
        }
    }
    Ok(())
}
