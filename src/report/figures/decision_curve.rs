//! Decision curves: the net benefit of referring by the model's calibrated
//! probability across threshold probabilities, against "refer all" and
//! "refer none", with the model's bootstrap band and its operating point.

use std::path::Path;

use plotters::prelude::*;

use super::draw::*;
use super::FigureError;

/// Size of [`decision_curve`] output.
pub const DECISION_CURVE_SIZE: (u32, u32) = (760, 620);

/// One model's curve: `(threshold, net benefit, band low, band high)`, the
/// refer-all curve `(threshold, net benefit)`, and the operating threshold.
pub fn decision_curve(
    path: &Path,
    label: &str,
    model: &[(f64, f64, f64, f64)],
    treat_all: &[(f64, f64)],
    operating_threshold: Option<f64>,
) -> Result<(), FigureError> {
    if model.is_empty() {
        return Err(invalid("decision_curve: no points"));
    }
    let x_max = model.iter().map(|p| p.0).fold(0.0_f64, f64::max);
    let top = model
        .iter()
        .flat_map(|p| [p.1, p.3])
        .chain(treat_all.iter().map(|p| p.1))
        .filter(|v| v.is_finite())
        .fold(0.05_f64, f64::max)
        * 1.15;
    let bottom = -0.25 * top;
    render(path, DECISION_CURVE_SIZE, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Decision curve (refer when P(melanoma) ≥ threshold)",
                font(20.0),
            )
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max, bottom..top)?;
        chart
            .configure_mesh()
            .x_desc("Threshold probability")
            .y_desc("Net benefit")
            .label_style(font(14.0))
            .axis_desc_style(font(16.0))
            .light_line_style(TRANSPARENT)
            .bold_line_style(RGBColor(228, 228, 228))
            .draw()?;
        let colour = palette(0);
        let band: Vec<(f64, f64)> = model
            .iter()
            .map(|p| (p.0, p.2))
            .chain(model.iter().rev().map(|p| (p.0, p.3)))
            .filter(|p| p.1.is_finite())
            .collect();
        if band.len() > 2 {
            chart.draw_series(std::iter::once(Polygon::new(
                band,
                colour.mix(0.18).filled(),
            )))?;
        }
        let style = colour.stroke_width(3);
        chart
            .draw_series(LineSeries::new(model.iter().map(|p| (p.0, p.1)), style))?
            .label(format!("{label} (95 % bootstrap band)"))
            .legend(solid_legend(style));
        let all = GREY.stroke_width(2);
        chart
            .draw_series(LineSeries::new(
                treat_all.iter().copied().filter(|p| p.1 >= bottom),
                all,
            ))?
            .label("refer all")
            .legend(solid_legend(all));
        let none = BLACK.stroke_width(1);
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, 0.0), (x_max, 0.0)],
                8,
                6,
                none,
            ))?
            .label("refer none")
            .legend(dashed_legend(none));
        if let Some(t) = operating_threshold.filter(|t| *t <= x_max) {
            let mark = palette(1).stroke_width(2);
            chart
                .draw_series(DashedLineSeries::new([(t, bottom), (t, top)], 6, 4, mark))?
                .label(format!("operating point (t = {t:.3})"))
                .legend(dashed_legend(mark));
        }
        curve_legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}
