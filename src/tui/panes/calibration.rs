//! Calibration before and after temperature scaling: the scalar metrics
//! (ECE, adaptive ECE, MCE, Brier, NLL) and a reliability diagram, so one can
//! see whether the probabilities shown in the list can be taken at face value;
//! below it, when there is room, the risk–coverage curve of the predicted
//! images and its AURC (how well the model's confidence ranks its own errors:
//! what error rate remains when the least certain cases are referred).

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Cell, Chart, Dataset, GraphType, Row, Table, Widget};

use super::{empty_message, fmt3};
use crate::selective::{risk_coverage, RiskCoverage};
use crate::tui::state::{AppState, CalibrationMetrics};

/// Rows the diagram area needs before the risk–coverage chart gets half.
const RISK_COVERAGE_MIN_HEIGHT: u16 = 16;

/// The risk–coverage curve of the images with a prediction (confidence =
/// calibrated top-label probability), or `None` without predictions.
fn predicted_risk_coverage(state: &AppState) -> Option<RiskCoverage> {
    let (confidence, correct): (Vec<f64>, Vec<bool>) = state
        .rows()
        .iter()
        .filter_map(|r| r.prediction.as_ref())
        .map(|p| (p.probability.max(1.0 - p.probability), p.correct()))
        .unzip();
    risk_coverage(&confidence, &correct).ok()
}

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
    let rc = predicted_risk_coverage(state);
    let diagram = match &rc {
        Some(rc) if diagram.height >= RISK_COVERAGE_MIN_HEIGHT => {
            let [top, bottom] =
                Layout::vertical([Constraint::Percentage(55), Constraint::Min(0)]).areas(diagram);
            risk_coverage_chart(rc, bottom, buf);
            top
        }
        _ => diagram,
    };
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

/// Risk (error rate of the decided images) against coverage, most confident
/// decided first; the title carries the AURC and the overall error rate.
fn risk_coverage_chart(rc: &RiskCoverage, area: Rect, buf: &mut Buffer) {
    let points: Vec<(f64, f64)> = std::iter::once((0.0, rc.curve.first().map_or(0.0, |p| p.risk)))
        .chain(rc.curve.iter().map(|p| (p.coverage, p.risk)))
        .collect();
    let top = points.iter().map(|p| p.1).fold(0.1_f64, f64::max).min(1.0);
    Chart::new(vec![Dataset::default()
        .marker(Marker::Braille)
        .graph_type(GraphType::Line)
        .style(Style::default().fg(Color::Yellow))
        .data(&points)])
    .block(Block::default().title(Line::from(format!(
        "risk–coverage · AURC {} (best {}) · n {}",
        fmt3(Some(rc.aurc)),
        fmt3(Some(rc.optimal_aurc)),
        rc.n
    ))))
    .x_axis(
        Axis::default()
            .bounds([0.0, 1.0])
            .labels(vec![Span::raw("0"), Span::raw("coverage 1")])
            .style(Style::default().fg(Color::Gray)),
    )
    .y_axis(
        Axis::default()
            .bounds([0.0, top])
            .labels(vec![Span::raw("0"), Span::raw(format!("{top:.2}"))])
            .style(Style::default().fg(Color::Gray)),
    )
    .render(area, buf);
}
