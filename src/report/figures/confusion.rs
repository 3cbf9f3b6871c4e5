//! The 2x2 confusion matrix, shaded per actual class.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use plotters::style::FontTransform;

use super::draw::*;
use super::FigureError;

/// Size of [`confusion_matrix`] output.
pub const CONFUSION_MATRIX_SIZE: (u32, u32) = (760, 650);

const CM_LEFT: i32 = 210;
const CM_TOP: i32 = 130;
const CM_CELL: i32 = 220;

/// Pixel rectangle `(x0, y0, x1, y1)` (exclusive ends) of cell
/// `(actual, predicted)` in the figure written by [`confusion_matrix`].
pub fn confusion_matrix_cell_rect(actual: usize, predicted: usize) -> (u32, u32, u32, u32) {
    let x0 = CM_LEFT + CM_CELL * predicted.min(1) as i32;
    let y0 = CM_TOP + CM_CELL * actual.min(1) as i32;
    (
        x0 as u32,
        y0 as u32,
        (x0 + CM_CELL) as u32,
        (y0 + CM_CELL) as u32,
    )
}

/// 2×2 confusion matrix. `counts[actual][predicted]`, classes in `labels`
/// order (e.g. `["nevus", "melanoma"]` gives `[[tn, fp], [fn, tp]]`). Cells
/// are shaded by the share of their row (actual class), and show the count and
/// that share. Size [`CONFUSION_MATRIX_SIZE`].
pub fn confusion_matrix(
    path: &Path,
    labels: [&str; 2],
    counts: [[u64; 2]; 2],
    title: &str,
) -> Result<(), FigureError> {
    let total: u64 = counts.iter().flatten().sum();
    render(path, CONFUSION_MATRIX_SIZE, |root| {
        let (w, _) = root.dim_in_pixel();
        let grid = 2 * CM_CELL;
        root.draw_text(
            title,
            &text_style(22.0, BLACK, HPos::Center, VPos::Center),
            (w as i32 / 2, 32),
        )?;
        root.draw_text(
            "Predicted",
            &text_style(17.0, BLACK, HPos::Center, VPos::Center),
            (CM_LEFT + grid / 2, CM_TOP - 64),
        )?;
        root.draw_text(
            "Actual",
            &text_style(17.0, BLACK, HPos::Center, VPos::Center)
                .transform(FontTransform::Rotate270),
            (56, CM_TOP + grid / 2),
        )?;
        let label_style = text_style(15.0, BLACK, HPos::Center, VPos::Center);
        for (k, label) in labels.iter().enumerate() {
            let lines = wrap_text(root, label, &label_style, (CM_CELL - 10) as u32);
            draw_lines(
                root,
                &lines,
                (CM_LEFT + CM_CELL * k as i32 + CM_CELL / 2, CM_TOP - 26),
                15.0,
                BLACK,
            )?;
            let lines = wrap_text(root, label, &label_style, (CM_LEFT - 90) as u32);
            draw_lines(
                root,
                &lines,
                (
                    (CM_LEFT + 76) / 2,
                    CM_TOP + CM_CELL * k as i32 + CM_CELL / 2,
                ),
                15.0,
                BLACK,
            )?;
        }
        for (a, row) in counts.iter().enumerate() {
            let row_total: u64 = row.iter().sum();
            for (p, &n) in row.iter().enumerate() {
                let share = if row_total > 0 {
                    n as f64 / row_total as f64
                } else {
                    f64::NAN
                };
                let (x0, y0, x1, y1) = confusion_matrix_cell_rect(a, p);
                let (x0, y0, x1, y1) = (x0 as i32, y0 as i32, x1 as i32, y1 as i32);
                let bg = if share.is_finite() {
                    blues(share)
                } else {
                    RGBColor(240, 240, 240)
                };
                root.draw(&Rectangle::new([(x0, y0), (x1, y1)], bg.filled()))?;
                root.draw(&Rectangle::new([(x0, y0), (x1, y1)], WHITE.stroke_width(2)))?;
                let fg = text_on(bg);
                let (cx, cy) = ((x0 + x1) / 2, (y0 + y1) / 2);
                root.draw_text(
                    &n.to_string(),
                    &text_style(34.0, fg, HPos::Center, VPos::Center),
                    (cx, cy - 14),
                )?;
                let pct = if share.is_finite() {
                    format!("{:.1}% of actual", 100.0 * share)
                } else {
                    "—".to_string()
                };
                root.draw_text(
                    &pct,
                    &text_style(15.0, fg, HPos::Center, VPos::Center),
                    (cx, cy + 26),
                )?;
            }
        }
        draw_colorbar(
            root,
            (
                CM_LEFT + grid + 24,
                CM_TOP,
                CM_LEFT + grid + 40,
                CM_TOP + grid,
            ),
            blues,
            (0.0, 100.0),
            5,
            "",
        )?;
        root.draw_text(
            &format!("n = {total}; shading and percentages are per actual class (row)"),
            &text_style(14.0, GREY, HPos::Center, VPos::Center),
            (w as i32 / 2, CM_TOP + grid + 36),
        )?;
        Ok(())
    })
}
