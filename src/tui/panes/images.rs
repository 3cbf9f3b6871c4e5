//! The selected sample's photo beside its GradCAM, DeepLIFT and Integrated
//! Gradients heatmaps, so the three explanations can be compared at a glance
//! against what the model saw.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget};

use super::{empty_message, ImageRegion};
use crate::tui::halfblock;
use crate::tui::state::{method_title, AppState, ImageKey, ImageKind};

pub fn render(state: &AppState, area: Rect, buf: &mut Buffer, regions: &mut Vec<ImageRegion>) {
    let Some(row) = state.selected_row() else {
        empty_message(area, buf, "No sample selected");
        return;
    };
    if area.height < 3 {
        return;
    }
    let [info, tiles] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
    let mut spans = vec![
        Span::styled(
            row.id.clone(),
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!("  true: {}", state.class_name(row.label))),
    ];
    if let Some(p) = &row.prediction {
        let colour = if p.correct() {
            Color::Green
        } else {
            Color::Red
        };
        spans.push(Span::styled(
            format!(
                "  pred: {} p={:.2} {}",
                state.class_name(p.predicted),
                p.probability,
                if p.correct() { "✓" } else { "✗" }
            ),
            Style::default().fg(colour),
        ));
    }
    if let Some(a) = row.agreement {
        spans.push(Span::raw(format!("  agreement {a:.2}")));
    }
    Paragraph::new(Line::from(spans)).render(info, buf);

    let maps = state.heatmaps_of(&row.id);
    let n_tiles = 1 + maps.len().max(1);
    let areas =
        Layout::horizontal(vec![Constraint::Ratio(1, n_tiles as u32); n_tiles]).split(tiles);

    // The photo.
    let tile = Block::default()
        .borders(Borders::ALL)
        .border_style(Style::default().fg(Color::DarkGray))
        .title("photo");
    let inner = tile.inner(areas[0]);
    tile.render(areas[0], buf);
    match state.photo(&row.id) {
        Some(img) => {
            let rect = halfblock::render_rgb(img, inner, buf);
            if rect.width > 0 {
                regions.push(ImageRegion {
                    rect,
                    key: ImageKey {
                        sample_id: row.id.clone(),
                        kind: ImageKind::Photo,
                    },
                });
            }
        }
        None => empty_message(inner, buf, "no image"),
    }

    if maps.is_empty() {
        let text = if state.checkpoint().is_none() {
            "No checkpoint yet — press t to train"
        } else {
            "No explanations yet — press e"
        };
        empty_message(areas[1], buf, text);
        return;
    }
    for (map, &area) in maps.iter().zip(areas.iter().skip(1)) {
        let mut title = method_title(&map.method).to_string();
        if let Some(d) = map.delta {
            title.push_str(&format!(" δ={d:.3}"));
        }
        let tile = Block::default()
            .borders(Borders::ALL)
            .border_style(Style::default().fg(Color::DarkGray))
            .title(title);
        let inner = tile.inner(area);
        tile.render(area, buf);
        let rect = halfblock::render_heatmap(map, inner, buf);
        if rect.width > 0 {
            regions.push(ImageRegion {
                rect,
                key: ImageKey {
                    sample_id: row.id.clone(),
                    kind: ImageKind::Heatmap(map.method.clone()),
                },
            });
        }
    }
}
