//! Reliability diagrams (Guo et al. 2017) before and after calibration.

use std::path::Path;

use plotters::prelude::*;

use serde::{Deserialize, Serialize};

use super::draw::*;
use super::FigureError;

/// One bin of a reliability diagram (same shape as the calibration report's
/// bins).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bin {
    /// Lower confidence edge.
    pub lower: f64,
    /// Upper confidence edge.
    pub upper: f64,
    /// Mean confidence of the samples in the bin; `None` if empty.
    pub mean_confidence: Option<f64>,
    /// Fraction of correct predictions in the bin; `None` if empty.
    pub accuracy: Option<f64>,
    /// Number of samples in the bin.
    pub count: usize,
}

/// Size of [`reliability_diagram`] output without an "after" panel.
pub const RELIABILITY_SIZE_SINGLE: (u32, u32) = (560, 820);
/// Size of [`reliability_diagram`] output with before and after panels.
pub const RELIABILITY_SIZE_PAIR: (u32, u32) = (1000, 820);

/// Reliability diagram as in Guo et al. (2017): per confidence bin, a bar of
/// the observed accuracy against the diagonal of perfect calibration, the gap
/// to the bin's mean confidence shaded red, and underneath a histogram of how
/// many samples fall in each bin (with the average confidence and accuracy
/// marked). With `bins_after`, the calibrated model is drawn on the right.
/// Size [`RELIABILITY_SIZE_SINGLE`] or [`RELIABILITY_SIZE_PAIR`].
pub fn reliability_diagram(
    path: &Path,
    bins_before: &[Bin],
    bins_after: Option<&[Bin]>,
    ece_before: f64,
    ece_after: Option<f64>,
) -> Result<(), FigureError> {
    if bins_before.is_empty() || bins_after.is_some_and(<[Bin]>::is_empty) {
        return Err(invalid("reliability_diagram: no bins"));
    }
    let size = if bins_after.is_some() {
        RELIABILITY_SIZE_PAIR
    } else {
        RELIABILITY_SIZE_SINGLE
    };
    render(path, size, |root| {
        let mut columns: Vec<(Area<'_>, &[Bin], String)> = Vec::new();
        match bins_after {
            Some(after) => {
                let (l, r) = root.split_horizontally(size.0 / 2);
                columns.push((
                    l,
                    bins_before,
                    format!("Before calibration (ECE = {})", fmt_metric(ece_before)),
                ));
                let ece = ece_after.map_or_else(|| "n/a".to_string(), fmt_metric);
                columns.push((r, after, format!("After calibration (ECE = {ece})")));
            }
            None => columns.push((
                root.clone(),
                bins_before,
                format!("Reliability (ECE = {})", fmt_metric(ece_before)),
            )),
        }
        for (area, bins, caption) in &columns {
            reliability_column(area, bins, caption)?;
        }
        Ok(())
    })
}

/// One column of [`reliability_diagram`]: the accuracy bars over the
/// diagonal (top two thirds) and the histogram of bin counts below.
fn reliability_column(area: &Area<'_>, bins: &[Bin], caption: &str) -> Result<(), FigureError> {
    let (_, h) = area.dim_in_pixel();
    let (top, bottom) = area.split_vertically((f64::from(h) * 0.64) as u32);
    let x_lo = bins
        .iter()
        .map(|b| b.lower)
        .fold(f64::INFINITY, f64::min)
        .min(0.0);
    let x_hi = bins
        .iter()
        .map(|b| b.upper)
        .fold(f64::NEG_INFINITY, f64::max)
        .max(1.0);
    accuracy_panel(&top, bins, caption, (x_lo, x_hi))?;
    count_histogram(&bottom, bins, (x_lo, x_hi))
}

/// Per-bin accuracy bars, the gap to the mean confidence and the diagonal.
fn accuracy_panel(
    top: &Area<'_>,
    bins: &[Bin],
    caption: &str,
    (x_lo, x_hi): (f64, f64),
) -> Result<(), FigureError> {
    let mut chart = ChartBuilder::on(top)
        .caption(caption, font(19.0))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(x_lo..x_hi, 0.0..1.0)?;
    chart
        .configure_mesh()
        .x_desc("Confidence")
        .y_desc("Accuracy")
        .label_style(font(14.0))
        .axis_desc_style(font(15.0))
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBColor(228, 228, 228))
        .draw()?;
    let bar = palette(0);
    let gap = RGBColor(214, 39, 40);
    chart
        .draw_series(bins.iter().filter_map(|b| {
            let acc = b.accuracy?;
            Some(Rectangle::new(
                [(b.lower, 0.0), (b.upper, acc.clamp(0.0, 1.0))],
                bar.mix(0.85).filled(),
            ))
        }))?
        .label("Accuracy")
        .legend(box_legend(bar.mix(0.85)));
    chart.draw_series(bins.iter().filter_map(|b| {
        let acc = b.accuracy?;
        Some(Rectangle::new(
            [(b.lower, 0.0), (b.upper, acc.clamp(0.0, 1.0))],
            RGBColor(20, 60, 110).stroke_width(1),
        ))
    }))?;
    chart
        .draw_series(bins.iter().filter_map(|b| {
            let (acc, conf) = (b.accuracy?, b.mean_confidence?);
            Some(Rectangle::new(
                [
                    (b.lower, acc.clamp(0.0, 1.0)),
                    (b.upper, conf.clamp(0.0, 1.0)),
                ],
                gap.mix(0.3).filled(),
            ))
        }))?
        .label("Gap to mean confidence")
        .legend(box_legend(gap.mix(0.3)));
    chart.draw_series(bins.iter().filter_map(|b| {
        let (acc, conf) = (b.accuracy?, b.mean_confidence?);
        Some(Rectangle::new(
            [
                (b.lower, acc.clamp(0.0, 1.0)),
                (b.upper, conf.clamp(0.0, 1.0)),
            ],
            gap.stroke_width(1),
        ))
    }))?;
    let diag = GREY.stroke_width(2);
    chart
        .draw_series(DashedLineSeries::new(
            vec![(0.0, 0.0), (1.0, 1.0)],
            8,
            6,
            diag,
        ))?
        .label("Perfect calibration")
        .legend(dashed_legend(diag));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .margin(10)
        .legend_area_size(30)
        .label_font(font(14.0))
        .background_style(WHITE.mix(0.9))
        .border_style(LIGHT_GREY)
        .draw()?;
    Ok(())
}

/// Histogram of the samples per bin, with the average confidence and
/// accuracy marked.
fn count_histogram(
    bottom: &Area<'_>,
    bins: &[Bin],
    (x_lo, x_hi): (f64, f64),
) -> Result<(), FigureError> {
    let max_count = bins.iter().map(|b| b.count).max().unwrap_or(0).max(1);
    let total: usize = bins.iter().map(|b| b.count).sum();
    let mut hist = ChartBuilder::on(bottom)
        .margin(12)
        .margin_top(4)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(x_lo..x_hi, 0.0..(max_count as f64 * 1.15))?;
    hist.configure_mesh()
        .x_desc("Confidence")
        .y_desc("Samples")
        .label_style(font(14.0))
        .axis_desc_style(font(15.0))
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBColor(228, 228, 228))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    let occupied = || bins.iter().filter(|b| b.count > 0);
    hist.draw_series(occupied().map(|b| {
        Rectangle::new(
            [(b.lower, 0.0), (b.upper, b.count as f64)],
            palette(0).mix(0.55).filled(),
        )
    }))?;
    hist.draw_series(occupied().map(|b| {
        Rectangle::new(
            [(b.lower, 0.0), (b.upper, b.count as f64)],
            RGBColor(20, 60, 110).stroke_width(1),
        )
    }))?;
    if total > 0 {
        let weighted = |f: fn(&Bin) -> Option<f64>| -> Option<f64> {
            let (sum, n) = bins.iter().fold((0.0, 0usize), |(s, n), b| match f(b) {
                Some(v) if v.is_finite() => (s + v * b.count as f64, n + b.count),
                _ => (s, n),
            });
            (n > 0).then(|| sum / n as f64)
        };
        let y_top = max_count as f64 * 1.15;
        if let Some(conf) = weighted(|b| b.mean_confidence) {
            let style = GREY.stroke_width(2);
            hist.draw_series(DashedLineSeries::new(
                vec![(conf, 0.0), (conf, y_top)],
                6,
                4,
                style,
            ))?
            .label(format!("Avg. confidence {conf:.3}"))
            .legend(dashed_legend(style));
        }
        if let Some(acc) = weighted(|b| b.accuracy) {
            let style = BLACK.stroke_width(2);
            hist.draw_series(LineSeries::new(vec![(acc, 0.0), (acc, y_top)], style))?
                .label(format!("Accuracy {acc:.3}"))
                .legend(solid_legend(style));
            hist.configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .margin(8)
                .legend_area_size(30)
                .label_font(font(13.0))
                .background_style(WHITE.mix(0.9))
                .border_style(LIGHT_GREY)
                .draw()?;
        }
    }
    Ok(())
}
