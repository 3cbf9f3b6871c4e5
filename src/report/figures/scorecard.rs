//! The attribution scorecard: one panel per score, each method's mean over
//! images with its 95 % bootstrap interval, the better direction in the
//! panel's title.

use std::path::Path;

use plotters::prelude::*;

use super::draw::*;
use super::FigureError;

/// One score's panel: its title (with "higher/lower is better") and, per
/// method, `(name, mean, low, high)`.
pub struct ScorePanel {
    pub title: String,
    pub methods: Vec<(String, f64, f64, f64)>,
}

/// Width of [`scorecard`]; the height grows with the rows of three panels.
pub const SCORECARD_WIDTH: u32 = 1080;

/// Draws the panels three to a row.
pub fn scorecard(path: &Path, panels: &[ScorePanel]) -> Result<(), FigureError> {
    if panels.is_empty() {
        return Err(invalid("scorecard: no panels"));
    }
    let rows = panels.len().div_ceil(3);
    render(path, (SCORECARD_WIDTH, 300 * rows as u32), |root| {
        let areas = root.split_evenly((rows, 3));
        for (area, panel) in areas.iter().zip(panels) {
            let n = panel.methods.len();
            let values = panel
                .methods
                .iter()
                .flat_map(|m| [m.1, m.2, m.3])
                .filter(|v| v.is_finite());
            let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
            let pad = ((hi - lo) * 0.15).max(1e-3);
            let (lo, hi) = if lo.is_finite() {
                (lo - pad, hi + pad)
            } else {
                (0.0, 1.0)
            };
            let mut chart = ChartBuilder::on(area)
                .caption(&panel.title, font(15.0))
                .margin(12)
                .x_label_area_size(30)
                .y_label_area_size(50)
                .build_cartesian_2d(-0.5..(n as f64 - 0.5), lo..hi)?;
            let names: Vec<String> = panel.methods.iter().map(|m| m.0.clone()).collect();
            chart
                .configure_mesh()
                .x_labels(n)
                .x_label_formatter(&|x| {
                    let i = x.round();
                    if (x - i).abs() < 1e-6 && i >= 0.0 {
                        names.get(i as usize).cloned().unwrap_or_default()
                    } else {
                        String::new()
                    }
                })
                .label_style(font(13.0))
                .light_line_style(TRANSPARENT)
                .bold_line_style(RGBColor(230, 230, 230))
                .draw()?;
            for (i, m) in panel.methods.iter().enumerate() {
                let colour = palette(i);
                let x = i as f64;
                if m.2.is_finite() && m.3.is_finite() {
                    chart.draw_series(std::iter::once(PathElement::new(
                        vec![(x, m.2), (x, m.3)],
                        colour.stroke_width(3),
                    )))?;
                }
                if m.1.is_finite() {
                    chart.draw_series(std::iter::once(Circle::new(
                        (x, m.1),
                        6,
                        colour.filled(),
                    )))?;
                }
            }
        }
        Ok(())
    })
}
