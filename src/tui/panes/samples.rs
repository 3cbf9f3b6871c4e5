//! The data set list: one row per sample with the model's verdict and the
//! researcher's triage mark, so misclassified and uncertain cases stand out.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row, Table, Widget};

use super::empty_message;
use crate::tui::state::{AppState, SampleRow};

/// First visible row so that the selection stays on screen (stateless, so
/// the pane depends on `&AppState` only).
pub fn scroll_offset(selected: usize, len: usize, height: usize) -> usize {
    if height == 0 || len <= height {
        return 0;
    }
    let half = height / 2;
    selected.saturating_sub(half).min(len - height)
}

/// Rows of the list body (after the header) that fit in `area`.
pub fn body_height(area: Rect) -> usize {
    area.height.saturating_sub(1) as usize
}

/// Column widths computed here rather than by the constraint solver, whose
/// choice among equally good layouts is not stable when space is short.
/// `uncertainty` adds the entropy column (ensembles only: for one model the
/// entropy is a function of p, which is shown already).
/// `sets` adds the conformal-set column (models with conformal thresholds).
pub fn column_widths(width: u16, uncertainty: bool, sets: bool) -> Vec<Constraint> {
    // mark+note, verdict, file, true, pred, p, split[, CP][, H]; a gap of one between each.
    let extra = if uncertainty { 5 } else { 0 } + if sets { 6 } else { 0 };
    let fixed = 2 + 1 + 4 + 4 + 6 + extra;
    let avail = width.saturating_sub(fixed);
    let class = (avail.saturating_sub(8) / 2).clamp(3, 8);
    let file = avail.saturating_sub(2 * class);
    let mut widths = vec![
        Constraint::Length(2),
        Constraint::Length(1),
        Constraint::Length(file),
        Constraint::Length(class),
        Constraint::Length(class),
        Constraint::Length(4),
        Constraint::Length(4),
    ];
    if sets {
        widths.push(Constraint::Length(5));
    }
    if uncertainty {
        widths.push(Constraint::Length(4));
    }
    widths
}

/// Whether any row carries a conformal prediction set.
fn has_sets(state: &AppState) -> bool {
    state.rows().iter().any(|r| {
        r.prediction
            .as_ref()
            .is_some_and(|p| p.conformal_set.is_some())
    })
}

/// A conformal set in five cells: one class by its name's start, two or
/// more by their count, the empty set as ∅.
pub fn set_cell(set: &[usize], class_name: impl Fn(usize) -> String) -> String {
    match set {
        [] => "∅".into(),
        [k] => class_name(*k).chars().take(5).collect(),
        [_, _] => "both".into(),
        more => format!("{} cls", more.len()),
    }
}

/// Whether any row carries an ensemble's uncertainty (more than one member).
fn has_ensemble_uncertainty(state: &AppState) -> bool {
    state.rows().iter().any(|r| {
        r.prediction
            .as_ref()
            .and_then(|p| p.uncertainty)
            .is_some_and(|u| u.members > 1)
    })
}

/// Short name of the split a prediction was made in, so in-sample
/// probabilities (train) are not read as held-out ones.
pub fn split_label(split: &str) -> &str {
    match split {
        "train" => "trn",
        "val" => "val",
        "test" => "test",
        "out-of-fold" => "oof",
        "unseen" => "new",
        other => other.get(..4).unwrap_or(other),
    }
}

/// The conformal set's cell: a referring set (two or more, or empty) stands
/// out.
fn set_column(state: &AppState, row: &SampleRow) -> Cell<'static> {
    let set = row
        .prediction
        .as_ref()
        .and_then(|p| p.conformal_set.as_ref());
    match set {
        Some(set) => {
            let text = set_cell(set, |k| state.class_name(k));
            if set.len() == 1 {
                Cell::from(text)
            } else {
                Cell::from(Span::styled(text, state.theme().warn))
            }
        }
        None => Cell::from("—"),
    }
}

/// Predictive entropy in nats; highlighted when "uncertain".
fn entropy_column(state: &AppState, row: &SampleRow) -> Cell<'static> {
    match row.prediction.as_ref().and_then(|p| p.uncertainty) {
        Some(u) if u.is_uncertain() => Cell::from(Span::styled(
            format!("{:.2}", u.predictive_entropy),
            state.theme().warn,
        )),
        Some(u) => Cell::from(format!("{:.2}", u.predictive_entropy)),
        None => Cell::from("—"),
    }
}

pub fn render(state: &AppState, area: Rect, buf: &mut Buffer) {
    if state.rows().is_empty() {
        empty_message(
            state.theme(),
            area,
            buf,
            "No samples found —\ncheck the data set path in config.toml",
        );
        return;
    }
    let visible = state.visible();
    if visible.is_empty() {
        let text = format!(
            "No samples match\n(filter: {}{})\nf: change filter · Esc: clear search",
            state.filter().label(),
            if state.query().is_empty() {
                String::new()
            } else {
                format!(", search: {}", state.query())
            }
        );
        empty_message(state.theme(), area, buf, &text);
        return;
    }
    let theme = state.theme();
    let selected = state.selected_position(&visible).unwrap_or(0);
    let with_uncertainty = has_ensemble_uncertainty(state);
    let with_sets = has_sets(state);
    let height = body_height(area);
    let offset = scroll_offset(selected, visible.len(), height);
    let rows = visible
        .iter()
        .enumerate()
        .skip(offset)
        .take(height)
        .map(|(pos, &i)| {
            let row = &state.rows()[i];
            let mark = state.mark_of(&row.id).map(|m| m.symbol()).unwrap_or(" ");
            let has_note = state
                .triage()
                .get(&row.id)
                .is_some_and(|e| e.note.is_some());
            let (verdict, pred, prob, colour) = match &row.prediction {
                Some(p) => (
                    if p.correct() { "✓" } else { "✗" },
                    state.class_name(p.predicted),
                    format!("{:.2}", p.probability),
                    if p.correct() { theme.good } else { theme.bad },
                ),
                None => (" ", "—".to_string(), "—".to_string(), theme.dim),
            };
            let style = if pos == selected {
                theme.text.patch(theme.selected)
            } else {
                theme.text
            };
            let mut cells = vec![
                Cell::from(Line::from(vec![
                    Span::styled(mark, theme.warn),
                    Span::raw(if has_note { "✎" } else { " " }),
                ])),
                Cell::from(Span::styled(verdict, colour)),
                Cell::from(row.file_name().to_string()),
                Cell::from(state.class_name(row.label)),
                Cell::from(Span::styled(pred, colour)),
                Cell::from(prob),
                Cell::from(Span::styled(
                    row.prediction
                        .as_ref()
                        .map(|p| split_label(&p.split))
                        .unwrap_or(""),
                    // In-sample rows dimmed: their probabilities flatter the model.
                    match row.prediction.as_ref().map(|p| p.split.as_str()) {
                        Some("train") => theme.dim,
                        _ => theme.text,
                    },
                )),
            ];
            if with_sets {
                cells.push(set_column(state, row));
            }
            if with_uncertainty {
                cells.push(entropy_column(state, row));
            }
            Row::new(cells).style(style)
        });
    let mut titles = vec!["", "", "file", "true", "pred", "p", "set"];
    if with_sets {
        titles.push("CP");
    }
    if with_uncertainty {
        titles.push("H");
    }
    let header = Row::new(titles).style(theme.accent.add_modifier(Modifier::BOLD));
    Table::new(rows, column_widths(area.width, with_uncertainty, with_sets))
        .header(header)
        .column_spacing(1)
        .render(area, buf);
}
