//! Training progress: where the run is (epoch and batch gauges, ETA) and
//! whether it is learning (loss and validation metrics per epoch), so a
//! researcher can stop a diverging run early.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, Gauge, GraphType, Paragraph, Widget};

use super::{empty_message, format_eta};
use crate::tui::state::{AppState, TrainingState};
use crate::tui::theme::Theme;

/// A chart title with a colour key (ratatui hides the legend in small charts).
pub fn legend(theme: &Theme, title: &str, series: &[(&str, Color)]) -> Line<'static> {
    let mut spans = vec![Span::styled(title.to_string(), theme.text)];
    for (name, colour) in series {
        spans.push(Span::raw(" "));
        spans.push(Span::styled(
            format!("━ {name}"),
            Style::default().fg(*colour),
        ));
    }
    Line::from(spans)
}

pub fn render(state: &AppState, area: Rect, buf: &mut Buffer) {
    let t = state.training();
    // A watched run: its units above, the focused training's charts below.
    let area = match state.units() {
        Some(run) => {
            let rows = (run.units.len() as u16 + 1).clamp(2, (area.height / 2).max(2));
            let [list, rest] =
                Layout::vertical([Constraint::Length(rows), Constraint::Min(0)]).areas(area);
            super::units::render(state.theme(), run, list, buf);
            if t.history.is_empty() && t.batches == 0 {
                let text = if run.count("running") + run.count("ready") + run.count("waiting") > 0 {
                    "no training unit has finished an epoch yet"
                } else {
                    "no epochs in this run: its trainings were found finished (reused)"
                };
                empty_message(state.theme(), rest, buf, text);
                return;
            }
            rest
        }
        None => area,
    };
    if !t.active && t.history.is_empty() && t.batches == 0 {
        let text = if state.checkpoint().is_none() {
            "No checkpoint yet — press t to train"
        } else {
            "No training run in this session — press t to train"
        };
        empty_message(state.theme(), area, buf, text);
        return;
    }
    let [summary, epoch_gauge, batch_gauge, charts] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(area);

    let theme = state.theme();
    Paragraph::new(Line::styled(summary_line(t), theme.text)).render(summary, buf);

    render_gauges(theme, t, epoch_gauge, batch_gauge, buf);

    if charts.height < 4 {
        return;
    }
    if t.history.is_empty() {
        empty_message(
            state.theme(),
            charts,
            buf,
            "charts appear after the first epoch",
        );
        return;
    }
    render_charts(theme, t, charts, buf);
}

/// Fold, last loss, learning rate, throughput, and ETA or the outcome.
fn summary_line(t: &TrainingState) -> String {
    let mut parts = Vec::new();
    if let Some((k, n)) = t.fold {
        parts.push(format!("fold {}/{n}", k + 1));
    }
    if let Some(loss) = t.last_loss {
        parts.push(format!("loss {loss:.4}"));
    }
    if let Some(lr) = t.learning_rate {
        parts.push(format!("lr {lr:.1e}"));
    }
    if let Some(last) = t.history.last() {
        parts.push(format!("{:.0} img/s", last.images_per_second));
    }
    if t.active {
        if let Some(eta) = t.eta() {
            parts.push(format!("ETA {}", format_eta(eta)));
        }
    } else {
        parts.push(t.outcome.unwrap_or("finished").into());
    }
    parts.join(" · ")
}

/// The epoch and batch progress bars.
fn render_gauges(
    theme: &Theme,
    t: &TrainingState,
    epoch_gauge: Rect,
    batch_gauge: Rect,
    buf: &mut Buffer,
) {
    let epoch_ratio = if t.epochs > 0 {
        let done = t.history.last().map(|e| e.epoch).unwrap_or(0);
        (done as f64 / t.epochs as f64).clamp(0.0, 1.0)
    } else {
        0.0
    };
    Gauge::default()
        .gauge_style(theme.gauge)
        .ratio(epoch_ratio)
        .label(format!(
            "epoch {}/{}",
            t.epoch,
            if t.epochs > 0 {
                t.epochs.to_string()
            } else {
                "?".into()
            }
        ))
        .render(epoch_gauge, buf);
    let batch_ratio = if t.batches > 0 {
        (t.batch as f64 / t.batches as f64).clamp(0.0, 1.0)
    } else {
        0.0
    };
    Gauge::default()
        .gauge_style(theme.gauge)
        .ratio(batch_ratio)
        .label(format!("batch {}/{}", t.batch, t.batches))
        .render(batch_gauge, buf);
}

/// Loss (train, val) on the left, validation metrics on the right, per epoch.
fn render_charts(theme: &Theme, t: &TrainingState, charts: Rect, buf: &mut Buffer) {
    let [c_train, c_val, c_acc, c_auroc] = theme.series;
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(charts);
    let pts = |f: fn(&crate::progress::EpochSummary) -> f64| -> Vec<(f64, f64)> {
        // NaN: a fold trained without validation images.
        t.history
            .iter()
            .map(|e| (e.epoch as f64, f(e)))
            .filter(|p| p.1.is_finite())
            .collect()
    };
    let train_loss = pts(|e| e.train_loss);
    let val_loss = pts(|e| e.val_loss);
    let bal_acc = pts(|e| e.val_balanced_accuracy);
    let auroc = pts(|e| e.val_auroc);
    let x_max = (t.epochs.max(t.history.last().map(|e| e.epoch).unwrap_or(1))).max(2) as f64;
    let loss_max = train_loss
        .iter()
        .chain(val_loss.iter())
        .map(|p| p.1)
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
        .max(1e-3)
        * 1.1;
    let x_axis = || {
        Axis::default()
            .bounds([1.0, x_max])
            .labels(vec![Span::raw("1"), Span::raw(format!("{x_max:.0}"))])
            .style(theme.dim)
    };
    Chart::new(vec![
        Dataset::default()
            .name("train")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::default().fg(c_train))
            .data(&train_loss),
        Dataset::default()
            .name("val")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::default().fg(c_val))
            .data(&val_loss),
    ])
    .block(Block::default().title(legend(theme, "loss", &[("train", c_train), ("val", c_val)])))
    .legend_position(None)
    .x_axis(x_axis())
    .y_axis(
        Axis::default()
            .bounds([0.0, loss_max])
            .labels(vec![Span::raw("0"), Span::raw(format!("{loss_max:.2}"))])
            .style(theme.dim),
    )
    .render(left, buf);
    Chart::new(vec![
        Dataset::default()
            .name("bal. acc")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::default().fg(c_acc))
            .data(&bal_acc),
        Dataset::default()
            .name("AUROC")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::default().fg(c_auroc))
            .data(&auroc),
    ])
    .block(Block::default().title(legend(
        theme,
        "validation",
        &[("bal. acc", c_acc), ("AUROC", c_auroc)],
    )))
    .legend_position(None)
    .x_axis(x_axis())
    .y_axis(
        Axis::default()
            .bounds([0.0, 1.0])
            .labels(vec![Span::raw("0"), Span::raw("1")])
            .style(theme.dim),
    )
    .render(right, buf);
}
