//! ROC curves with the chance diagonal and each curve's AUC.

use std::path::Path;

use plotters::prelude::*;

use serde::{Deserialize, Serialize};

use super::draw::*;
use super::FigureError;

/// One ROC curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RocSeries {
    /// Legend label, e.g. "fold 1" or "pooled".
    pub label: String,
    /// `(false positive rate, true positive rate)` points in drawing order.
    pub points: Vec<(f64, f64)>,
    /// Area under the curve, shown in the legend (NaN shows as "n/a").
    pub auc: f64,
}

/// Size of [`roc_curve`] output.
pub const ROC_CURVE_SIZE: (u32, u32) = (760, 720);

/// ROC curves with the chance diagonal and the AUC of each curve in the
/// legend. Size [`ROC_CURVE_SIZE`].
pub fn roc_curve(path: &Path, curves: &[RocSeries]) -> Result<(), FigureError> {
    if curves.is_empty() {
        return Err(invalid("roc_curve: no curves"));
    }
    render(path, ROC_CURVE_SIZE, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption("ROC curve", font(22.0))
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..1.0, 0.0..1.0)?;
        chart
            .configure_mesh()
            .x_desc("False positive rate (1 − specificity)")
            .y_desc("True positive rate (sensitivity)")
            .label_style(font(14.0))
            .axis_desc_style(font(16.0))
            .light_line_style(TRANSPARENT)
            .bold_line_style(RGBColor(228, 228, 228))
            .draw()?;
        let diag = GREY.stroke_width(1);
        chart
            .draw_series(DashedLineSeries::new(
                vec![(0.0, 0.0), (1.0, 1.0)],
                8,
                6,
                diag,
            ))?
            .label("chance (AUC = 0.5)")
            .legend(dashed_legend(diag));
        for (i, c) in curves.iter().enumerate() {
            let style = palette(i).stroke_width(if curves.len() > 3 { 2 } else { 3 });
            let pts: Vec<(f64, f64)> = c
                .points
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect();
            chart
                .draw_series(LineSeries::new(pts, style))?
                .label(format!("{} (AUC = {})", c.label, fmt_metric(c.auc)))
                .legend(solid_legend(style));
        }
        curve_legend(&mut chart, SeriesLabelPosition::LowerRight)
    })
}
