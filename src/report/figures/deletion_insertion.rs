//! Deletion and insertion curves of the attribution methods.

use std::path::Path;

use plotters::prelude::*;

use serde::{Deserialize, Serialize};

use super::draw::*;
use super::FigureError;

/// Deletion and insertion curves of one attribution method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeletionInsertionCurve {
    /// Method name (legend label).
    pub method: String,
    /// Fraction of pixels removed/inserted at each step, ascending in `[0, 1]`.
    pub fractions: Vec<f64>,
    /// Class probability after deleting the top `fraction` of pixels.
    pub deletion: Vec<f64>,
    /// Class probability after inserting the top `fraction` of pixels.
    pub insertion: Vec<f64>,
}

/// Size of [`deletion_insertion`] output.
pub const DELETION_INSERTION_SIZE: (u32, u32) = (1000, 460);

/// Trapezoidal area under `y(x)`.
fn trapezoid(x: &[f64], y: &[f64]) -> f64 {
    x.windows(2)
        .zip(y.windows(2))
        .map(|(xs, ys)| (xs[1] - xs[0]) * (ys[0] + ys[1]) / 2.0)
        .sum()
}

/// Deletion (left) and insertion (right) curves, one line per method, with
/// each curve's area in the legend (deletion: lower is better; insertion:
/// higher is better). Size [`DELETION_INSERTION_SIZE`].
pub fn deletion_insertion(
    path: &Path,
    curves: &[DeletionInsertionCurve],
) -> Result<(), FigureError> {
    if curves.is_empty() {
        return Err(invalid("deletion_insertion: no curves"));
    }
    for c in curves {
        if c.fractions.len() != c.deletion.len() || c.fractions.len() != c.insertion.len() {
            return Err(invalid(format!(
                "deletion_insertion: {:?} has {} fractions, {} deletion and {} insertion values",
                c.method,
                c.fractions.len(),
                c.deletion.len(),
                c.insertion.len()
            )));
        }
    }
    let (x_lo, x_hi) = finite_range(curves.iter().flat_map(|c| c.fractions.iter().copied()))
        .map_or((0.0, 1.0), |(lo, hi)| (lo.min(0.0), hi.max(1.0)));
    render(path, DELETION_INSERTION_SIZE, |root| {
        let (left, right) = root.split_horizontally(DELETION_INSERTION_SIZE.0 / 2);
        let panels: [(&Area<'_>, &str, &str, bool); 2] = [
            (
                &left,
                "Deletion (lower AUC is better)",
                "Fraction of pixels removed",
                true,
            ),
            (
                &right,
                "Insertion (higher AUC is better)",
                "Fraction of pixels inserted",
                false,
            ),
        ];
        for (area, caption, x_desc, deletion) in panels {
            let mut chart = ChartBuilder::on(area)
                .caption(caption, font(19.0))
                .margin(12)
                .x_label_area_size(44)
                .y_label_area_size(56)
                .build_cartesian_2d(x_lo..x_hi, 0.0..1.02)?;
            chart
                .configure_mesh()
                .x_desc(x_desc)
                .y_desc("Class probability")
                .label_style(font(14.0))
                .axis_desc_style(font(15.0))
                .light_line_style(TRANSPARENT)
                .bold_line_style(RGBColor(228, 228, 228))
                .draw()?;
            for (i, c) in curves.iter().enumerate() {
                let ys = if deletion { &c.deletion } else { &c.insertion };
                let pts: Vec<(f64, f64)> = c
                    .fractions
                    .iter()
                    .copied()
                    .zip(ys.iter().copied())
                    .filter(|(x, y)| x.is_finite() && y.is_finite())
                    .collect();
                let (xs, ys): (Vec<f64>, Vec<f64>) = pts.iter().copied().unzip();
                let style = palette(i).stroke_width(2);
                chart
                    .draw_series(LineSeries::new(pts, style))?
                    .label(format!("{} (AUC = {:.3})", c.method, trapezoid(&xs, &ys)))
                    .legend(solid_legend(style));
            }
            chart
                .configure_series_labels()
                .position(if deletion {
                    SeriesLabelPosition::UpperRight
                } else {
                    SeriesLabelPosition::LowerRight
                })
                .margin(8)
                .legend_area_size(32)
                .label_font(font(14.0))
                .background_style(WHITE.mix(0.85))
                .border_style(LIGHT_GREY)
                .draw()?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trapezoid_of_line_is_half() {
        assert!((trapezoid(&[0.0, 0.5, 1.0], &[0.0, 0.5, 1.0]) - 0.5).abs() < 1e-12);
    }
}
