//! The units of a watched run (`melxai --watch RUN`) above the training
//! charts: how far the run is, what runs now and where, what failed and
//! why. Running and failed units come first, so a short pane shows them.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::format_eta;
use crate::progress::UnitLine;
use crate::tui::state::WatchedRun;
use crate::tui::theme::Theme;

/// Display order: what needs eyes first.
fn rank(state: &str) -> u8 {
    match state {
        "running" => 0,
        "failed" => 1,
        "ready" => 2,
        "waiting" => 3,
        _ => 4,
    }
}

/// One unit's line: state, id, and where it stands.
fn unit_line<'a>(theme: &Theme, u: &'a UnitLine, focus: bool) -> Line<'a> {
    let style = match u.state.as_str() {
        "done" => theme.good,
        "failed" => theme.bad,
        "running" => theme.accent,
        _ => theme.dim,
    };
    let what = match u.state.as_str() {
        "running" => {
            let eta = u
                .eta_seconds
                .map(|e| format!(" · ETA {}", format_eta(e)))
                .unwrap_or_default();
            let epochs = u
                .epochs
                .last()
                .map(|e| format!(" · epoch {}/{}", e.epoch, e.epochs))
                .unwrap_or_default();
            format!("{} {}/{}{epochs}{eta}", u.stage, u.done, u.total)
        }
        "failed" => u.detail.clone().unwrap_or_default(),
        "done" => u
            .epochs
            .last()
            .map(|e| format!("{} epochs", e.epoch))
            .unwrap_or_default(),
        _ => String::new(),
    };
    let marker = if focus { "▸ " } else { "  " };
    Line::from(vec![
        Span::styled(marker, theme.accent),
        Span::styled(format!("{:<8}", u.state), style),
        Span::styled(format!("{:<36} ", u.id), theme.text),
        Span::styled(what, theme.dim),
    ])
}

pub fn render(theme: &Theme, run: &WatchedRun, area: Rect, buf: &mut Buffer) {
    if area.height == 0 {
        return;
    }
    let n = run.units.len();
    let mut lines = vec![Line::styled(
        if n == 0 {
            format!(
                "run '{}': no unit plan yet (reports/{}/units/plan.json)",
                run.run, run.run
            )
        } else {
            format!(
                "run '{}': {}/{n} units done · {} running · {} failed · {} waiting",
                run.run,
                run.count("done"),
                run.count("running"),
                run.count("failed"),
                run.count("ready") + run.count("waiting")
            )
        },
        theme.text,
    )];
    let mut shown: Vec<&UnitLine> = run.units.iter().collect();
    shown.sort_by_key(|u| rank(&u.state));
    let room = area.height.saturating_sub(1) as usize;
    for u in shown.iter().take(room) {
        lines.push(unit_line(
            theme,
            u,
            run.focus.as_deref() == Some(u.id.as_str()),
        ));
    }
    Paragraph::new(lines).render(area, buf);
}
