//! How far the explanation methods agree, for the selected sample and over
//! the whole split: a method × method matrix of the chosen similarity metric
//! with viridis-coloured cells, since disagreement between methods is a sign
//! that an explanation should not be trusted on its own.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
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

pub fn render(state: &AppState, area: Rect, buf: &mut Buffer) {
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
