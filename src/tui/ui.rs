//! Frame layout: header, the five panes, status line, help overlay.
//!
//! Rendering is a pure function of `&AppState` into a ratatui `Buffer`, which
//! is why the same code serves the live terminal, `TestBackend` snapshots and
//! headless screenshots. It returns where images were drawn so a graphics
//! protocol (or a screenshot) can put the real pixels there.

use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph, Widget, Wrap};

use crate::tui::keys::{Action, KeyMap};
use crate::tui::panes::{self, ImageRegion};
use crate::tui::state::{AppState, InputMode, JobStatus, Level, Pane};
use crate::tui::theme::Theme;

/// Smallest usable terminal.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;

const SPINNER: [&str; 8] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧"];

/// Where each pane goes for a given terminal area (`None` = not shown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PaneAreas {
    pub header: Rect,
    pub status: Rect,
    pub samples: Option<Rect>,
    pub images: Option<Rect>,
    /// The shared slot of Training / Calibration / Agreement.
    pub tabbed: Option<Rect>,
}

/// The layout (pure, so the run loop can size pages and hit-test the mouse).
pub fn layout(state: &AppState, area: Rect) -> PaneAreas {
    let [header, body, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    let mut out = PaneAreas {
        header,
        status,
        ..Default::default()
    };
    match state.zoomed() {
        Some(Pane::Samples) => out.samples = Some(body),
        Some(Pane::Images) => out.images = Some(body),
        Some(_) => out.tabbed = Some(body),
        None => {
            let left_w = (body.width * 38 / 100).clamp(30.min(body.width), 56);
            let [left, right] =
                Layout::horizontal([Constraint::Length(left_w), Constraint::Min(0)]).areas(body);
            let [top, bottom] =
                Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)])
                    .areas(right);
            out.samples = Some(left);
            out.images = Some(top);
            out.tabbed = Some(bottom);
        }
    }
    out
}

fn pane_block(theme: &Theme, title: Line<'static>, focused: bool) -> Block<'static> {
    let (border, kind) = if focused {
        (theme.border_focused, BorderType::Thick)
    } else {
        (theme.border, BorderType::Plain)
    };
    Block::default()
        .borders(Borders::ALL)
        .border_type(kind)
        .border_style(border)
        .title_style(theme.text)
        .title(title)
}

fn samples_title(state: &AppState) -> Line<'static> {
    let n = state.visible().len();
    let mut t = format!(
        " Samples {n}/{} · {} · by {}",
        state.rows().len(),
        state.filter().label(),
        state.sort().label()
    );
    if let Some(split) = state.split_filter() {
        t.push_str(&format!(" · {split}"));
    }
    if !state.query().is_empty() {
        t.push_str(&format!(" · /{}", state.query()));
    }
    t.push(' ');
    Line::from(t)
}

fn tab_title(state: &AppState, shown: Pane) -> Line<'static> {
    let theme = state.theme();
    let mut spans = vec![Span::raw(" ")];
    for (i, p) in [Pane::Training, Pane::Calibration, Pane::Agreement]
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            spans.push(Span::styled(" │ ", theme.border));
        }
        let style = if p == shown {
            theme.tab_active
        } else {
            theme.tab_inactive
        };
        let mut title = p.title().to_string();
        if p == Pane::Agreement {
            title.push_str(&format!(" ({})", state.metric().title()));
        }
        spans.push(Span::styled(title, style));
    }
    spans.push(Span::raw(" "));
    Line::from(spans)
}

/// Draws one pane with its block into `area`.
pub fn render_pane(
    state: &AppState,
    pane: Pane,
    area: Rect,
    buf: &mut Buffer,
    regions: &mut Vec<ImageRegion>,
) {
    let focused = state.focus() == pane;
    let title = match pane {
        Pane::Samples => samples_title(state),
        Pane::Images => Line::from(format!(" {} ", pane.title())),
        _ => tab_title(state, pane),
    };
    let block = pane_block(state.theme(), title, focused);
    let inner = block.inner(area);
    block.render(area, buf);
    match pane {
        Pane::Samples => panes::samples::render(state, inner, buf),
        Pane::Images => panes::images::render(state, inner, buf, regions),
        Pane::Training => panes::training::render(state, inner, buf),
        Pane::Calibration => panes::calibration::render(state, inner, buf),
        Pane::Agreement => panes::agreement::render(state, inner, buf),
    }
}

fn render_header(state: &AppState, area: Rect, buf: &mut Buffer) {
    let theme = state.theme();
    let model = state.model().unwrap_or("no checkpoint");
    let mut spans = vec![
        Span::styled(" melxai ", theme.badge),
        Span::styled(format!(" model: {model}  "), theme.text),
    ];
    if let Some(device) = &state.device {
        spans.push(Span::raw(format!("device: {device}  ")));
    }
    match state.job() {
        JobStatus::Idle => spans.push(Span::styled("idle", theme.dim)),
        JobStatus::Running {
            kind,
            description,
            progress,
        } => {
            let spin = SPINNER[(state.tick_count() % SPINNER.len() as u64) as usize];
            let mut s = format!("{spin} {kind:?}: {description}");
            if let Some(p) = progress {
                s.push_str(&format!(
                    " — {} {}/{} ({:.0}%)",
                    p.stage,
                    p.done,
                    p.total,
                    p.ratio() * 100.0
                ));
                if let Some(eta) = p.eta_seconds {
                    s.push_str(&format!(" ETA {}", panes::format_eta(eta)));
                }
            }
            spans.push(Span::styled(s, theme.warn));
        }
        JobStatus::Done(summary) => spans.push(Span::styled(format!("✓ {summary}"), theme.good)),
        JobStatus::Failed(msg) => spans.push(Span::styled(format!("✗ {msg}"), theme.bad)),
    }
    // The hint takes the corner only where the model, device and job text
    // leave room for it: it is never drawn over them. Text too long for the
    // line ends in an ellipsis.
    let hint = "? help  q quit ";
    let hint_width = hint.chars().count() as u16;
    let line = Line::from(spans);
    if line.width() + 1 + hint_width as usize <= area.width as usize {
        Paragraph::new(Span::styled(hint, theme.dim)).render(
            Rect::new(area.right() - hint_width, area.y, hint_width, 1),
            buf,
        );
    }
    let cut = line.width() > area.width as usize;
    Paragraph::new(line).render(area, buf);
    if cut && area.width > 0 {
        buf[(area.right() - 1, area.y)].set_symbol("…");
    }
}

fn render_status(state: &AppState, area: Rect, buf: &mut Buffer) {
    let theme = state.theme();
    let line = match state.input() {
        InputMode::Search(q) => Line::from(vec![
            Span::styled("/", theme.accent),
            Span::styled(q.clone(), theme.text),
            Span::styled("▏", theme.accent),
            Span::styled("  Enter keep · Esc clear", theme.dim),
        ]),
        InputMode::Note(n) => Line::from(vec![
            Span::styled("note: ", theme.accent),
            Span::styled(n.clone(), theme.text),
            Span::styled("▏", theme.accent),
            Span::styled("  Enter save · Esc cancel", theme.dim),
        ]),
        InputMode::Normal => match state.last_message() {
            Some(m) => {
                let style = match m.level {
                    Level::Info => theme.dim,
                    Level::Warning => theme.warn,
                    Level::Error => theme.bad,
                };
                Line::from(Span::styled(m.text.clone(), style))
            }
            None => Line::from(Span::styled(
                "j/k move · Tab pane · f filter · s sort · / search · t train · e explain · o overlay · p screenshot",
                theme.dim,
            )),
        },
    };
    Paragraph::new(line).render(area, buf);
}

/// Help lines: keys and what they do.
pub fn help_lines(keys: &KeyMap) -> Vec<(String, &'static str)> {
    Action::NAMED
        .iter()
        .map(|(_, a)| {
            let ks: Vec<String> = keys.keys_for(*a).iter().map(|k| k.to_string()).collect();
            (ks.join(" "), a.describe())
        })
        .collect()
}

fn render_help(theme: &Theme, keys: &KeyMap, area: Rect, buf: &mut Buffer) {
    let lines: Vec<Line> = help_lines(keys)
        .into_iter()
        .map(|(k, d)| {
            Line::from(vec![
                Span::styled(format!("{k:>12}  "), theme.accent),
                Span::styled(d, theme.text),
            ])
        })
        .collect();
    let w = 72.min(area.width.saturating_sub(2));
    let h = (lines.len() as u16 + 2).min(area.height.saturating_sub(2));
    let popup = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    Clear.render(popup, buf);
    Paragraph::new(lines)
        .block(
            Block::default()
                .borders(Borders::ALL)
                .border_type(BorderType::Rounded)
                .border_style(theme.border_focused)
                .title(Span::styled(" keys (Esc or ? closes) ", theme.text)),
        )
        .render(popup, buf);
}

fn render_too_small(area: Rect, buf: &mut Buffer) {
    let text = vec![
        Line::from(Span::styled(
            "window too small",
            Style::default().add_modifier(Modifier::BOLD),
        )),
        Line::from(format!(
            "need {MIN_WIDTH}x{MIN_HEIGHT}, have {}x{}",
            area.width, area.height
        )),
        Line::from("q quits"),
    ];
    let y = area.y + area.height.saturating_sub(3) / 2;
    Paragraph::new(text)
        .alignment(Alignment::Center)
        .wrap(Wrap { trim: true })
        .render(
            Rect::new(area.x, y, area.width, area.height - (y - area.y)),
            buf,
        );
}

/// Renders the whole frame; returns the image rectangles drawn.
pub fn render(state: &AppState, keys: &KeyMap, area: Rect, buf: &mut Buffer) -> Vec<ImageRegion> {
    let mut regions = Vec::new();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        render_too_small(area, buf);
        return regions;
    }
    let l = layout(state, area);
    render_header(state, l.header, buf);
    if let Some(a) = l.samples {
        render_pane(state, Pane::Samples, a, buf, &mut regions);
    }
    if let Some(a) = l.images {
        render_pane(state, Pane::Images, a, buf, &mut regions);
    }
    if let Some(a) = l.tabbed {
        let shown = match state.zoomed() {
            Some(p) if p.is_tabbed() => p,
            _ => state.tab(),
        };
        render_pane(state, shown, a, buf, &mut regions);
    }
    render_status(state, l.status, buf);
    if state.show_help() {
        render_help(state.theme(), keys, area, buf);
        // The overlay hides images under it.
        regions.clear();
    }
    regions
}

/// Renders a single pane filling `area` (for `--batch` pane exports).
pub fn render_single(
    state: &AppState,
    pane: Pane,
    area: Rect,
    buf: &mut Buffer,
) -> Vec<ImageRegion> {
    let mut regions = Vec::new();
    render_pane(state, pane, area, buf, &mut regions);
    regions
}
