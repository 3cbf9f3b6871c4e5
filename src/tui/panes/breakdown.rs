//! The calibration pane's other two views (`b` cycles them): every class of
//! a K-class model (the KxK confusion of the held-out predictions with each
//! class's recall and precision) and every subgroup of the data set's
//! attribute columns (n, AUROC, sensitivity and specificity at the operating
//! point, small groups flagged rather than hidden).

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Row, Table, Widget};

use super::{empty_message, held_out_predictions, positive_class};
use crate::evaluate::subgroups::{subgroup_report, SubgroupOptions};
use crate::metrics::BootstrapOptions;
use crate::tui::state::AppState;
use crate::verdict::Decision;

/// Short class names for narrow columns.
fn short(name: &str, width: usize) -> String {
    name.chars().take(width).collect()
}

/// KxK confusion (rows actual, columns predicted) with recall and precision.
pub fn render_classes(state: &AppState, area: Rect, buf: &mut Buffer) {
    let theme = state.theme();
    let preds = held_out_predictions(state);
    let k = state.class_names().len();
    if preds.is_empty() || k < 2 {
        empty_message(
            theme,
            area,
            buf,
            "No held-out predictions yet — press r to evaluate (b: next view)",
        );
        return;
    }
    let mut cm = vec![vec![0usize; k]; k];
    for p in &preds {
        if p.label < k && p.predicted < k {
            cm[p.label][p.predicted] += 1;
        }
    }
    let width = ((area.width as usize).saturating_sub(28) / (k + 1)).clamp(4, 8);
    let names: Vec<String> = state
        .class_names()
        .iter()
        .map(|c| short(c, width))
        .collect();
    let mut header = vec![Cell::from("actual \\ pred")];
    header.extend(names.iter().map(|n| Cell::from(n.clone())));
    header.extend([Cell::from("recall"), Cell::from("prec.")]);
    let rows: Vec<Row> = (0..k)
        .map(|a| {
            let row_total: usize = cm[a].iter().sum();
            let col_total: usize = (0..k).map(|r| cm[r][a]).sum();
            let ratio = |n: usize, d: usize| {
                if d == 0 {
                    "—".to_string()
                } else {
                    format!("{:.2}", n as f64 / d as f64)
                }
            };
            let mut cells = vec![Cell::from(Span::styled(names[a].clone(), theme.text))];
            cells.extend((0..k).map(|p| {
                let style = if a == p {
                    theme.good
                } else if cm[a][p] > 0 {
                    theme.bad
                } else {
                    theme.text
                };
                Cell::from(Span::styled(cm[a][p].to_string(), style))
            }));
            cells.push(Cell::from(Span::styled(
                ratio(cm[a][a], row_total),
                theme.text,
            )));
            cells.push(Cell::from(Span::styled(
                ratio(cm[a][a], col_total),
                theme.text,
            )));
            Row::new(cells)
        })
        .collect();
    let mut widths = vec![Constraint::Length(14)];
    widths.extend(std::iter::repeat_n(Constraint::Length(width as u16), k));
    widths.extend([Constraint::Length(7), Constraint::Length(6)]);
    let recalls: Vec<f64> = (0..k)
        .filter_map(|a| {
            let t: usize = cm[a].iter().sum();
            (t > 0).then(|| cm[a][a] as f64 / t as f64)
        })
        .collect();
    let balanced = recalls.iter().sum::<f64>() / recalls.len().max(1) as f64;
    let title = format!(
        "Every class: {} held-out images, balanced accuracy {balanced:.3} (b: next view)",
        preds.len()
    );
    Table::new(rows, widths)
        .header(Row::new(header).style(theme.accent.add_modifier(Modifier::BOLD)))
        .block(Block::default().title(Line::styled(title, theme.text)))
        .render(area, buf);
}

/// One row per subgroup of every attribute column.
pub fn render_subgroups(state: &AppState, area: Rect, buf: &mut Buffer) {
    let theme = state.theme();
    let preds = held_out_predictions(state);
    let columns = state.attribute_columns();
    let (Some(positive), false) = (positive_class(&preds), columns.is_empty()) else {
        let text = if columns.is_empty() {
            "No attribute columns: set [data] attribute_columns (b: next view)"
        } else {
            "No held-out predictions yet — press r to evaluate (b: next view)"
        };
        empty_message(theme, area, buf, text);
        return;
    };
    // The operating point where the rows carry its decisions, else 0.5.
    let threshold = preds
        .iter()
        .filter(|p| p.decision == Some(Decision::Refer))
        .map(|p| p.probability)
        .reduce(f64::min)
        .unwrap_or(0.5);
    let scores: Vec<f64> = preds.iter().map(|p| p.probability).collect();
    let labels: Vec<usize> = preds.iter().map(|p| p.label).collect();
    let attributes: Vec<Vec<(String, String)>> = preds
        .iter()
        .map(|p| state.attributes_of(&p.id).to_vec())
        .collect();
    let opts = SubgroupOptions {
        bootstrap: BootstrapOptions::new(200, 0),
        ..SubgroupOptions::default()
    };
    let Ok(report) = subgroup_report(
        &scores,
        &labels,
        positive,
        threshold,
        &attributes,
        columns,
        &opts,
    ) else {
        empty_message(
            theme,
            area,
            buf,
            "Subgroups could not be computed (b: next view)",
        );
        return;
    };
    let f = |v: f64| {
        if v.is_finite() {
            format!("{v:.2}")
        } else {
            "n/a".into()
        }
    };
    let rows: Vec<Row> = report
        .rows
        .iter()
        .map(|r| {
            let style = if r.small { theme.dim } else { theme.text };
            let name = if r.small {
                format!("{} †", r.group)
            } else {
                r.group.clone()
            };
            Row::new(
                [
                    r.column.clone(),
                    name,
                    format!("{} ({})", r.n, r.positives),
                    f(r.auroc.point),
                    f(r.sensitivity.point),
                    f(r.specificity.point),
                ]
                .map(|t| Cell::from(Span::styled(t, style))),
            )
        })
        .collect();
    let title = format!(
        "By subgroup: {} held-out images, threshold {threshold:.2}; † small (b: next view)",
        preds.len()
    );
    Table::new(
        rows,
        [
            Constraint::Length(14),
            Constraint::Length(14),
            Constraint::Length(10),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(6),
        ],
    )
    .header(
        Row::new(["attribute", "group", "n (pos)", "AUROC", "sens", "spec"])
            .style(theme.accent.add_modifier(Modifier::BOLD)),
    )
    .block(Block::default().title(Line::styled(title, theme.text)))
    .render(area, buf);
}
