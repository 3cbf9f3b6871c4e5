//! The KxK confusion matrix of a multi-class model (HAM10000's 7 classes,
//! ISIC 2019's 8), shaded per actual class so a rare class's recall is as
//! visible as a common one's.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use plotters::style::FontTransform;

use super::draw::*;
use super::FigureError;

const LEFT: i32 = 170;
const TOP: i32 = 150;
/// Grid side in pixels; cells are `GRID / K` wide.
const GRID: i32 = 640;

/// Canvas size of [`confusion_matrix_k`].
pub const CONFUSION_K_SIZE: (u32, u32) = ((LEFT + GRID + 110) as u32, (TOP + GRID + 70) as u32);

/// KxK confusion matrix, `counts[actual][predicted]` in `labels` order.
/// Each cell shows its count and its share of the row (the class's recall on
/// the diagonal). Size [`CONFUSION_K_SIZE`].
pub fn confusion_matrix_k(
    path: &Path,
    labels: &[&str],
    counts: &[Vec<u64>],
    title: &str,
) -> Result<(), FigureError> {
    let k = labels.len();
    if k < 2 || counts.len() != k || counts.iter().any(|r| r.len() != k) {
        return Err(invalid(format!(
            "confusion matrix needs {k}x{k} counts for {k} labels (k >= 2)"
        )));
    }
    let cell = GRID / k as i32;
    let total: u64 = counts.iter().flatten().sum();
    render(path, CONFUSION_K_SIZE, |root| {
        let (w, _) = root.dim_in_pixel();
        root.draw_text(
            title,
            &text_style(22.0, BLACK, HPos::Center, VPos::Center),
            (w as i32 / 2, 30),
        )?;
        root.draw_text(
            "Predicted",
            &text_style(17.0, BLACK, HPos::Center, VPos::Center),
            (LEFT + GRID / 2, 70),
        )?;
        root.draw_text(
            "Actual",
            &text_style(17.0, BLACK, HPos::Center, VPos::Center)
                .transform(FontTransform::Rotate270),
            (30, TOP + GRID / 2),
        )?;
        let label_size = if k > 6 { 13.0 } else { 15.0 };
        for (i, label) in labels.iter().enumerate() {
            let centre = cell * i as i32 + cell / 2;
            root.draw_text(
                label,
                &text_style(label_size, BLACK, HPos::Center, VPos::Center),
                (LEFT + centre, TOP - 22),
            )?;
            root.draw_text(
                label,
                &text_style(label_size, BLACK, HPos::Right, VPos::Center),
                (LEFT - 10, TOP + centre),
            )?;
        }
        for (a, row) in counts.iter().enumerate() {
            draw_row(root, a, row, cell, k)?;
        }
        draw_colorbar(
            root,
            (LEFT + GRID + 24, TOP, LEFT + GRID + 40, TOP + GRID),
            blues,
            (0.0, 100.0),
            5,
            "",
        )?;
        root.draw_text(
            &format!(
                "n = {total}; shading and percentages per actual class (row); diagonal = recall"
            ),
            &text_style(14.0, GREY, HPos::Center, VPos::Center),
            (w as i32 / 2, TOP + GRID + 36),
        )?;
        Ok(())
    })
}

/// One actual class's row of cells.
fn draw_row(
    root: &Area<'_>,
    a: usize,
    row: &[u64],
    cell: i32,
    k: usize,
) -> Result<(), FigureError> {
    let row_total: u64 = row.iter().sum();
    for (p, &n) in row.iter().enumerate() {
        let share = (row_total > 0).then(|| n as f64 / row_total as f64);
        let (x0, y0) = (LEFT + cell * p as i32, TOP + cell * a as i32);
        let (x1, y1) = (x0 + cell, y0 + cell);
        let bg = share.map_or(RGBColor(240, 240, 240), blues);
        root.draw(&Rectangle::new([(x0, y0), (x1, y1)], bg.filled()))?;
        root.draw(&Rectangle::new([(x0, y0), (x1, y1)], WHITE.stroke_width(2)))?;
        let fg = text_on(bg);
        let (cx, cy) = ((x0 + x1) / 2, (y0 + y1) / 2);
        let big = if k > 6 { 18.0 } else { 24.0 };
        root.draw_text(
            &n.to_string(),
            &text_style(big, fg, HPos::Center, VPos::Center),
            (cx, cy - 9),
        )?;
        let pct = share.map_or("—".to_string(), |s| format!("{:.0}%", 100.0 * s));
        root.draw_text(
            &pct,
            &text_style(12.0, fg, HPos::Center, VPos::Center),
            (cx, cy + 14),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seven_class_matrix_is_drawn_at_its_size_and_a_ragged_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let labels = ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"];
        let counts: Vec<Vec<u64>> = (0..7)
            .map(|a| {
                (0..7)
                    .map(|p| if a == p { 20 } else { (a + p) as u64 % 3 })
                    .collect()
            })
            .collect();
        let path = dir.path().join("cm.png");
        confusion_matrix_k(&path, &labels, &counts, "HAM10000 look-alike").unwrap();
        let img = image::open(&path).unwrap();
        assert_eq!((img.width(), img.height()), CONFUSION_K_SIZE);
        let mut ragged = counts.clone();
        ragged[3].pop();
        assert!(confusion_matrix_k(&path, &labels, &ragged, "x").is_err());
    }
}
