//! Calibration before and after temperature scaling: the scalar metrics
//! (ECE, adaptive ECE, MCE, Brier, NLL) and a reliability diagram, so one can
//! see whether the probabilities shown in the list can be taken at face value.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Cell, Chart, Dataset, GraphType, Row, Table, Widget};

use super::{empty_message, fmt3};
use crate::tui::state::{AppState, CalibrationMetrics};

/// Points (mean confidence, accuracy) of the non-empty bins.
fn reliability_points(m: &CalibrationMetrics) -> Vec<(f64, f64)> {
    m.bins
        .iter()
        .filter(|b| b.count > 0)
        .filter_map(|b| Some((b.mean_confidence?, b.accuracy?)))
        .collect()
}

pub fn render(state: &AppState, area: Rect, buf: &mut Buffer) {
    let Some(cal) = state.calibration() else {
        let text = if state.checkpoint().is_none() {
            "No checkpoint yet — press t to train"
        } else {
            "No calibration yet — press r to evaluate and calibrate"
        };
        empty_message(area, buf, text);
        return;
    };
    let [numbers, diagram] =
        Layout::horizontal([Constraint::Length(30), Constraint::Min(0)]).areas(area);
    let row = |name: &str, b: Option<f64>, a: Option<f64>| {
        let better = matches!((b, a), (Some(b), Some(a)) if a < b);
        Row::new(vec![
            Cell::from(name.to_string()),
            Cell::from(fmt3(b)),
            Cell::from(Span::styled(
                fmt3(a),
                if better {
                    Style::default().fg(Color::Green)
                } else {
                    Style::default()
                },
            )),
        ])
    };
    let (b, a) = (&cal.before, &cal.after);
    let rows = vec![
        row("ECE", b.ece, a.ece),
        row("adaptive ECE", b.adaptive_ece, a.adaptive_ece),
        row("MCE", b.mce, a.mce),
        row("Brier", b.brier, a.brier),
        row("NLL", b.nll, a.nll),
    ];
    Table::new(
        rows,
        [
            Constraint::Length(12),
            Constraint::Length(7),
            Constraint::Length(7),
        ],
    )
    .header(
        Row::new(vec!["", "before", "after"]).style(
            Style::default()
                .fg(Color::Cyan)
                .add_modifier(Modifier::BOLD),
        ),
    )
    .block(Block::default().title(Line::from(format!("T = {:.3}", cal.temperature))))
    .render(numbers, buf);

    if diagram.width < 20 || diagram.height < 6 {
        return;
    }
    let diagonal = [(0.0, 0.0), (1.0, 1.0)];
    let before = reliability_points(b);
    let after = reliability_points(a);
    Chart::new(vec![
        Dataset::default()
            .name("perfect")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::default().fg(Color::DarkGray))
            .data(&diagonal),
        Dataset::default()
            .name("before")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::default().fg(Color::Red))
            .data(&before),
        Dataset::default()
            .name("after")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::default().fg(Color::Green))
            .data(&after),
    ])
    .block(Block::default().title(super::training::legend(
        "reliability",
        &[
            ("before", Color::Red),
            ("after", Color::Green),
            ("ideal", Color::DarkGray),
        ],
    )))
    .legend_position(None)
    .x_axis(
        Axis::default()
            .bounds([0.0, 1.0])
            .labels(vec![Span::raw("0"), Span::raw("1")])
            .style(Style::default().fg(Color::Gray)),
    )
    .y_axis(
        Axis::default()
            .bounds([0.0, 1.0])
            .labels(vec![Span::raw("0"), Span::raw("1")])
            .style(Style::default().fg(Color::Gray)),
    )
    .render(diagram, buf);
}
