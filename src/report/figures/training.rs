//! Training curves: losses and validation metrics per epoch (and fold).

use std::path::Path;

use plotters::prelude::*;

use serde::{Deserialize, Serialize};

use super::draw::*;
use super::FigureError;

/// One epoch of training, as recorded by the trainer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochPoint {
    /// Epoch number (1-based by convention; plotted as given).
    pub epoch: usize,
    /// Mean training loss. Non-finite values are skipped.
    pub train_loss: f64,
    /// Validation loss. Non-finite values are skipped.
    pub val_loss: f64,
    /// Validation AUROC. NaN (undefined, e.g. one class only) is skipped.
    pub val_auroc: f64,
    /// Validation balanced accuracy. Non-finite values are skipped.
    pub val_balanced_accuracy: f64,
    /// 0-based fold index for k-fold runs (shown as "fold k+1"); `None` for a
    /// single split.
    pub fold: Option<usize>,
}

/// Size of [`training_curves`] output.
pub const TRAINING_CURVES_SIZE: (u32, u32) = (1000, 460);

/// One panel of [`training_curves`].
struct CurvePanel<'p, 'b> {
    area: &'p Area<'b>,
    caption: &'static str,
    y_desc: &'static str,
    /// Legend names of the solid and the dashed series.
    names: [&'static str; 2],
    y_hi: f64,
    /// Validation metrics (true) or losses (false).
    metrics: bool,
}

/// Training curves: losses (left) and validation AUROC / balanced accuracy
/// (right). With folds, each fold gets its own colour; line style tells the
/// series apart (solid: train loss / AUROC, dashed: val loss / balanced
/// accuracy). Size [`TRAINING_CURVES_SIZE`].
pub fn training_curves(path: &Path, epochs: &[EpochPoint]) -> Result<(), FigureError> {
    if epochs.is_empty() {
        return Err(invalid("training_curves: no epochs"));
    }
    let mut folds: Vec<Option<usize>> = epochs.iter().map(|e| e.fold).collect();
    folds.sort_unstable();
    folds.dedup();
    let per_fold: Vec<(Option<usize>, Vec<EpochPoint>)> = folds
        .iter()
        .map(|&f| {
            let mut pts: Vec<EpochPoint> = epochs.iter().filter(|e| e.fold == f).copied().collect();
            pts.sort_by_key(|e| e.epoch);
            (f, pts)
        })
        .collect();
    let multi = per_fold.len() > 1 || folds.first().is_some_and(Option::is_some);

    let x_range = finite_range(epochs.iter().map(|e| e.epoch as f64))
        .ok_or_else(|| invalid("training_curves: no epochs"))?;
    let loss_hi = finite_range(epochs.iter().flat_map(|e| [e.train_loss, e.val_loss]))
        .map_or(1.0, |(_, hi)| hi.max(1e-6) * 1.08);

    render(path, TRAINING_CURVES_SIZE, |root| {
        let (left, right) = root.split_horizontally(TRAINING_CURVES_SIZE.0 / 2);
        let panels = [
            CurvePanel {
                area: &left,
                caption: "Loss",
                y_desc: "Loss",
                names: ["train loss", "val loss"],
                y_hi: loss_hi,
                metrics: false,
            },
            CurvePanel {
                area: &right,
                caption: "Validation metrics",
                y_desc: "Metric",
                names: ["val AUROC", "val balanced acc."],
                y_hi: 1.02,
                metrics: true,
            },
        ];
        for panel in &panels {
            draw_panel(panel, &per_fold, multi, x_range)?;
        }
        Ok(())
    })
}

/// Legend name of a fold's series.
fn fold_name(fold: Option<usize>) -> String {
    match fold {
        Some(k) => format!("fold {}", k + 1),
        None => "single split".to_string(),
    }
}

/// One panel of [`training_curves`]: axes, each fold's solid and dashed
/// series, and the legend (per series for one split, per fold and line
/// style with folds).
fn draw_panel(
    panel: &CurvePanel<'_, '_>,
    per_fold: &[(Option<usize>, Vec<EpochPoint>)],
    multi: bool,
    (x_lo, x_hi): (f64, f64),
) -> Result<(), FigureError> {
    let &CurvePanel {
        area,
        caption,
        y_desc,
        names,
        y_hi,
        metrics,
    } = panel;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, font(20.0))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(x_lo..x_hi, 0.0..y_hi)?;
    chart
        .configure_mesh()
        .x_desc("Epoch")
        .y_desc(y_desc)
        .label_style(font(14.0))
        .axis_desc_style(font(15.0))
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBColor(228, 228, 228))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()?;
    for (i, (fold, pts)) in per_fold.iter().enumerate() {
        let color = if multi { palette(i) } else { palette(0) };
        let pick = |e: &EpochPoint, second: bool| match (metrics, second) {
            (false, false) => e.train_loss,
            (false, true) => e.val_loss,
            (true, false) => e.val_auroc,
            (true, true) => e.val_balanced_accuracy,
        };
        let series = |second: bool| -> Vec<(f64, f64)> {
            pts.iter()
                .map(|e| (e.epoch as f64, pick(e, second)))
                .filter(|(_, y)| y.is_finite())
                .collect()
        };
        let first_style = color.stroke_width(2);
        let second_color = if multi { color } else { palette(1) };
        let second_style = second_color.stroke_width(2);
        let a = chart.draw_series(LineSeries::new(series(false), first_style))?;
        if !multi {
            a.label(names[0]).legend(solid_legend(first_style));
        } else {
            a.label(fold_name(*fold)).legend(solid_legend(first_style));
        }
        let b = chart.draw_series(DashedLineSeries::new(series(true), 8, 5, second_style))?;
        if !multi {
            b.label(names[1]).legend(dashed_legend(second_style));
        }
    }
    if multi {
        let style = BLACK.stroke_width(2);
        chart
            .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())?
            .label(format!("{} (solid)", names[0]))
            .legend(solid_legend(style));
        chart
            .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())?
            .label(format!("{} (dashed)", names[1]))
            .legend(dashed_legend(style));
    }
    chart
        .configure_series_labels()
        .position(if metrics {
            SeriesLabelPosition::LowerRight
        } else {
            SeriesLabelPosition::UpperRight
        })
        .margin(8)
        .legend_area_size(32)
        .label_font(font(13.0))
        .background_style(WHITE.mix(0.85))
        .border_style(LIGHT_GREY)
        .draw()?;
    Ok(())
}
