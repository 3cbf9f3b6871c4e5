//! Risk–coverage curves of selective prediction (refer the least certain
//! cases first): the error rate of the accepted cases against the fraction
//! accepted, with the AURC in the legend.

use std::path::Path;

use plotters::prelude::*;

use super::draw::*;
use super::FigureError;

/// Size of [`risk_coverage`] output.
pub const RISK_COVERAGE_SIZE: (u32, u32) = (760, 620);

/// One curve: `(coverage, risk)` points, coverage rising in (0, 1], with its
/// AURC and the AURC of the optimal ordering (dashed, same colour) for scale.
pub fn risk_coverage(
    path: &Path,
    label: &str,
    points: &[(f64, f64)],
    aurc: f64,
    optimal: &[(f64, f64)],
) -> Result<(), FigureError> {
    if points.is_empty() {
        return Err(invalid("risk_coverage: no points"));
    }
    let top = points
        .iter()
        .chain(optimal)
        .map(|p| p.1)
        .filter(|r| r.is_finite())
        .fold(0.05_f64, f64::max)
        .min(1.0)
        * 1.1;
    render(path, RISK_COVERAGE_SIZE, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption("Risk–coverage (refer the least certain first)", font(20.0))
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..1.0, 0.0..top)?;
        chart
            .configure_mesh()
            .x_desc("Coverage (fraction decided by the model)")
            .y_desc("Risk (error rate of the decided cases)")
            .label_style(font(14.0))
            .axis_desc_style(font(16.0))
            .light_line_style(TRANSPARENT)
            .bold_line_style(RGBColor(228, 228, 228))
            .draw()?;
        let style = palette(0).stroke_width(3);
        chart
            .draw_series(LineSeries::new(points.iter().copied(), style))?
            .label(format!("{label} (AURC = {})", fmt_metric(aurc)))
            .legend(solid_legend(style));
        if !optimal.is_empty() {
            let dashed = GREY.stroke_width(1);
            chart
                .draw_series(DashedLineSeries::new(optimal.iter().copied(), 8, 6, dashed))?
                .label("optimal ordering")
                .legend(dashed_legend(dashed));
        }
        curve_legend(&mut chart, SeriesLabelPosition::UpperLeft)
    })
}
