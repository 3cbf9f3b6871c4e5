//! How far the explanation methods agree, for the selected sample and over
//! the whole split: a method × method matrix of the chosen similarity metric
//! with viridis-coloured cells, since disagreement between methods is a sign
//! that an explanation should not be trusted on its own.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Row, Table, Widget};

use super::empty_message;
use crate::tui::colormap::viridis;
use crate::tui::state::{method_title, AgreementMatrix, AppState};
use crate::tui::theme::Theme;

fn short(method: &str) -> &str {
    match method {
        "gradcam" => "GradCAM",
        "deeplift" => "DeepLIFT",
        "ig" => "IG",
        other => method_title(other),
    }
}

fn matrix_table(theme: &Theme, m: &AgreementMatrix, title: String, area: Rect, buf: &mut Buffer) {
    let header = std::iter::once(Cell::from(""))
        .chain(m.methods.iter().map(|s| Cell::from(short(s).to_string())))
        .collect::<Vec<_>>();
    let rows = m.methods.iter().zip(&m.values).map(|(name, row)| {
        let cells =
            std::iter::once(Cell::from(short(name).to_string())).chain(row.iter().map(|&v| {
                let c = viridis(v as f32);
                // Palette black/white: fixed, unlike the re-themable ANSI ones.
                let fg = if v > 0.6 {
                    Color::Indexed(16)
                } else {
                    Color::Indexed(231)
                };
                Cell::from(format!("{v:>6.2}"))
                    .style(Style::default().bg(Color::Rgb(c[0], c[1], c[2])).fg(fg))
            }));
        Row::new(cells.collect::<Vec<_>>())
    });
    // Fixed widths (the solver's choice is not stable when space is short).
    let col = (area.width / (m.methods.len() as u16 + 1))
        .saturating_sub(1)
        .clamp(4, 9);
    let widths = vec![Constraint::Length(col); m.methods.len() + 1];
    Table::new(rows, widths)
        .header(Row::new(header).style(theme.accent.add_modifier(Modifier::BOLD)))
        .column_spacing(1)
        .block(Block::default().title(Line::styled(title, theme.text)))
        .render(area, buf);
}

/// The selected image's scorecard beside (or under) the agreement view
/// when its maps were scored.
pub fn render(state: &AppState, area: Rect, buf: &mut Buffer) {
    let scores = state
        .selected_id()
        .and_then(|id| state.scores_of(id).map(|s| (id, s)));
    let Some((id, scores)) = scores else {
        render_agreement(state, area, buf);
        return;
    };
    let [left, right] = if area.width >= 100 {
        Layout::horizontal([Constraint::Percentage(55), Constraint::Min(0)]).areas(area)
    } else {
        Layout::vertical([Constraint::Percentage(50), Constraint::Min(0)]).areas(area)
    };
    render_agreement(state, left, buf);
    scorecard_table(state.theme(), id, scores, right, buf);
}

/// Rows of the scorecard: the score and its short label (the arrow, which
/// way is better, comes from [`SCORE_INFO`](crate::compare::scores::scorecard::SCORE_INFO)).
const SCORE_ROWS: [(&str, &str); 9] = [
    ("road_gap", "ROAD gap"),
    ("road_morf", "ROAD MoRF"),
    ("faithfulness_correlation", "faith. corr"),
    ("pixel_flipping_auc", "flip AUC"),
    ("sparseness", "sparseness"),
    ("random_logit", "rand. logit"),
    ("relevance_mass", "lesion mass"),
    ("completeness_gap", "compl. gap"),
    ("parameter_randomisation", "param. rand."),
];

/// Score rows × method columns for one image; the best method per row is
/// highlighted.
fn scorecard_table(
    theme: &Theme,
    id: &str,
    scores: &[crate::progress::MethodScores],
    area: Rect,
    buf: &mut Buffer,
) {
    let value = |method: &[(String, f64)], key: &str| {
        method
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
            .filter(|v| !v.is_nan())
    };
    let rows: Vec<Row> = SCORE_ROWS
        .iter()
        .filter(|(key, _)| scores.iter().any(|(_, m)| value(m, key).is_some()))
        .map(|(key, short)| {
            let higher = crate::compare::scores::scorecard::score_info(key)
                .is_some_and(|s| s.higher_is_better);
            let label = format!("{short} {}", if higher { '↑' } else { '↓' });
            let values: Vec<Option<f64>> = scores.iter().map(|(_, m)| value(m, key)).collect();
            let best =
                values
                    .iter()
                    .flatten()
                    .copied()
                    .reduce(|a, b| if (b > a) == higher { b } else { a });
            let mut cells = vec![Cell::from(Span::styled(label, theme.text))];
            cells.extend(values.iter().map(|v| match v {
                Some(v) if Some(*v) == best => {
                    Cell::from(Span::styled(format!("{v:.3}"), theme.good))
                }
                Some(v) => Cell::from(Span::styled(format!("{v:.3}"), theme.text)),
                None => Cell::from("—"),
            }));
            Row::new(cells)
        })
        .collect();
    let mut widths = vec![Constraint::Length(15)];
    widths.extend(scores.iter().map(|_| Constraint::Length(9)));
    let header: Vec<String> = std::iter::once(String::new())
        .chain(scores.iter().map(|(m, _)| m.clone()))
        .collect();
    Table::new(rows, widths)
        .header(Row::new(header).style(theme.accent.add_modifier(Modifier::BOLD)))
        .block(Block::default().title(Line::styled(format!("scores · {id}"), theme.text)))
        .render(area, buf);
}

fn render_agreement(state: &AppState, area: Rect, buf: &mut Buffer) {
    let metric = state.metric();
    let sample = state
        .selected_id()
        .and_then(|id| state.sample_matrix(id).map(|m| (id, m)));
    let split = state.split_matrix();
    if sample.is_none() && split.is_none() {
        let has_maps = state
            .selected_id()
            .is_some_and(|id| !state.heatmaps_of(id).is_empty());
        let text = if state.checkpoint().is_none() {
            "No checkpoint yet — press t to train".to_string()
        } else if has_maps {
            format!(
                "No {} agreement for this sample yet\n(needs two or more methods)",
                metric.title()
            )
        } else {
            "No explanations yet — press e".to_string()
        };
        empty_message(state.theme(), area, buf, &text);
        return;
    }
    let parts: Vec<(String, &AgreementMatrix)> = sample
        .map(|(id, m)| (format!("{} · {id}", metric.title()), m))
        .into_iter()
        .chain(split.map(|m| (format!("{} · whole split", metric.title()), m)))
        .collect();
    let horizontal = area.width >= 80;
    let areas = if horizontal {
        Layout::horizontal(vec![Constraint::Ratio(1, parts.len() as u32); parts.len()]).split(area)
    } else {
        Layout::vertical(vec![Constraint::Ratio(1, parts.len() as u32); parts.len()]).split(area)
    };
    for ((title, m), &a) in parts.into_iter().zip(areas.iter()) {
        matrix_table(state.theme(), m, title, a, buf);
    }
}
