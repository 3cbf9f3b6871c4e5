//! The selected sample's photo beside its GradCAM, DeepLIFT and Integrated
//! Gradients heatmaps, so the three explanations can be compared at a glance
//! against what the model saw.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget};

use super::{empty_message, ImageRegion};
use crate::progress::HeatmapData;
use crate::tui::halfblock;
use crate::tui::state::{method_title, AppState, ImageKey, ImageKind, SampleRow};

pub fn render(state: &AppState, area: Rect, buf: &mut Buffer, regions: &mut Vec<ImageRegion>) {
    let Some(row) = state.selected_row() else {
        empty_message(state.theme(), area, buf, "No sample selected");
        return;
    };
    if area.height < 3 {
        return;
    }
    let [info, tiles] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
    Paragraph::new(info_line(state, row)).render(info, buf);

    let maps = state.heatmaps_of(&row.id);
    let n_tiles = 1 + maps.len().max(1);
    let areas =
        Layout::horizontal(vec![Constraint::Ratio(1, n_tiles as u32); n_tiles]).split(tiles);

    render_photo_tile(state, row, areas[0], buf, regions);

    if maps.is_empty() {
        let text = if state.checkpoint().is_none() {
            "No checkpoint yet — press t to train"
        } else {
            "No explanations yet — press e"
        };
        empty_message(state.theme(), areas[1], buf, text);
        return;
    }
    for (map, &area) in maps.iter().zip(areas.iter().skip(1)) {
        render_heatmap_tile(state, row, map, area, buf, regions);
    }
}

/// The one-line header (id, true class, prediction, agreement), kept apart so
/// `render` reads as layout only.
fn info_line(state: &AppState, row: &SampleRow) -> Line<'static> {
    let theme = state.theme();
    let mut spans = vec![
        Span::styled(row.id.clone(), theme.text.add_modifier(Modifier::BOLD)),
        Span::styled(
            format!("  true: {}", state.class_name(row.label)),
            theme.text,
        ),
    ];
    if let Some(p) = &row.prediction {
        let colour = if p.correct() { theme.good } else { theme.bad };
        spans.push(Span::styled(
            format!(
                "  pred: {} p={:.2} {}",
                state.class_name(p.predicted),
                p.probability,
                if p.correct() { "✓" } else { "✗" }
            ),
            colour,
        ));
        if let Some(d) = p.decision {
            spans.push(Span::styled(
                format!("  {}", d.label()),
                theme.text.add_modifier(Modifier::BOLD),
            ));
        }
        if let Some(set) = &p.conformal_set {
            let names: Vec<String> = set.iter().map(|&k| state.class_name(k)).collect();
            let style = if set.len() == 1 {
                theme.text
            } else {
                theme.warn
            };
            spans.push(Span::styled(
                format!("  set {{{}}}", names.join(", ")),
                style,
            ));
        }
        if let Some(u) = p.uncertainty.filter(|u| u.members > 1) {
            spans.push(Span::raw(format!(
                "  H {:.2} MI {:.2} sd {:.2}",
                u.predictive_entropy, u.mutual_information, u.spread
            )));
        }
    }
    if let Some(a) = row.agreement {
        spans.push(Span::styled(format!("  agreement {a:.2}"), theme.text));
    }
    Line::from(spans)
}

/// The photo tile, registering its drawn rectangle so clicks on it resolve to
/// the photo.
fn render_photo_tile(
    state: &AppState,
    row: &SampleRow,
    area: Rect,
    buf: &mut Buffer,
    regions: &mut Vec<ImageRegion>,
) {
    let inner = tile(state, "photo".into(), area, buf);
    match state.photo(&row.id) {
        Some(img) => {
            let rect = halfblock::render_rgb(img, inner, buf);
            register(regions, rect, inner, row, ImageKind::Photo);
        }
        None => empty_message(state.theme(), inner, buf, "no image"),
    }
}

/// Draws a titled tile's border; returns the area inside it.
fn tile(state: &AppState, title: String, area: Rect, buf: &mut Buffer) -> Rect {
    let theme = state.theme();
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border)
        .title(Span::styled(title, theme.text));
    let inner = block.inner(area);
    block.render(area, buf);
    inner
}

/// Records where an image of `row` was drawn (nothing when it got no
/// cells), so clicks and the graphics protocols find it.
fn register(
    regions: &mut Vec<ImageRegion>,
    rect: Rect,
    area: Rect,
    row: &SampleRow,
    kind: ImageKind,
) {
    if rect.width > 0 {
        regions.push(ImageRegion {
            rect,
            area,
            key: ImageKey {
                sample_id: row.id.clone(),
                kind,
            },
        });
    }
}

/// One explanation tile: the heatmap alone, or blended over the photo when the
/// overlay is on, registered under the kind that was actually drawn.
fn render_heatmap_tile(
    state: &AppState,
    row: &SampleRow,
    map: &HeatmapData,
    area: Rect,
    buf: &mut Buffer,
    regions: &mut Vec<ImageRegion>,
) {
    let mut title = method_title(&map.method).to_string();
    if let Some(d) = map.delta {
        title.push_str(&format!(" δ={d:.3}"));
    }
    // Over the photo when asked and the photo is there.
    let blended = state.overlay().and_then(|opacity| {
        let photo = state.photo(&row.id)?;
        let img = halfblock::overlay_image(photo, map, opacity as f32 / 100.0)?;
        Some((opacity, img))
    });
    if let Some((opacity, _)) = &blended {
        title.push_str(&format!(" on photo {opacity}%"));
    }
    let inner = tile(state, title, area, buf);
    let (rect, kind) = match &blended {
        Some((opacity, img)) => (
            halfblock::render_rgb(img, inner, buf),
            ImageKind::Overlay {
                method: map.method.clone(),
                opacity: *opacity,
            },
        ),
        None => (
            halfblock::render_heatmap(map, inner, buf),
            ImageKind::Heatmap(map.method.clone()),
        ),
    };
    register(regions, rect, inner, row, kind);
}
