//! One widget per pane, each drawn from `&AppState` alone.
//!
//! Panes draw into the inner area of a block that `ui.rs` owns (borders,
//! focus colour, titles), so a pane looks the same in the normal layout, when
//! zoomed, and when exported alone by `--batch`.

pub mod agreement;
pub mod breakdown;
pub mod calibration;
pub mod images;
pub mod samples;
pub mod training;
pub mod units;

use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::Modifier;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Widget, Wrap};

use crate::tui::state::{AppState, ImageKey};
use crate::tui::theme::Theme;
use crate::verdict::SamplePrediction;

/// A rectangle of the frame that shows an image (drawn as half blocks; a
/// graphics protocol or a screenshot may draw the real image over it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRegion {
    /// The cells the half blocks use.
    pub rect: Rect,
    /// The whole tile the image may use: a graphics protocol clears it all
    /// and sizes the image with the real cell size, so nothing drawn for
    /// half blocks shows beside a narrower image.
    pub area: Rect,
    pub key: ImageKey,
}

/// Centred, dimmed message for a pane with nothing to show yet.
pub fn empty_message(theme: &Theme, area: Rect, buf: &mut Buffer, text: &str) {
    if area.height == 0 {
        return;
    }
    let lines: Vec<Line> = text.lines().map(Line::from).collect();
    let h = (lines.len() as u16).min(area.height);
    let y = area.y + (area.height - h) / 2;
    Paragraph::new(lines)
        .alignment(Alignment::Center)
        .wrap(Wrap { trim: true })
        .style(theme.dim.add_modifier(Modifier::ITALIC))
        .render(
            Rect::new(area.x, y, area.width, area.height - (y - area.y)),
            buf,
        );
}

/// Formats a probability-like number with a fixed width.
pub fn fmt3(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.3}"),
        _ => "—".to_string(),
    }
}

/// The list's predictions of images the predicting model did not train on:
/// what every held-out view of this pane (and its other views) is drawn from.
pub fn held_out_predictions(state: &AppState) -> Vec<&SamplePrediction> {
    state
        .rows()
        .iter()
        .filter_map(|r| r.prediction.as_ref())
        .filter(|p| p.split != "train")
        .collect()
}

/// The positive class: the predicted class of any row whose positive-class
/// probability is above one half (it is then the arg-max).
pub fn positive_class(preds: &[&SamplePrediction]) -> Option<usize> {
    preds
        .iter()
        .find(|p| p.probability > 0.5)
        .map(|p| p.predicted)
}

/// `1m 20s` style duration, rounded to seconds.
pub fn format_eta(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "—".into();
    }
    humantime::format_duration(std::time::Duration::from_secs(seconds.round() as u64)).to_string()
}
