//! Real pixels for photos and heatmaps where the terminal can show them.
//!
//! Half blocks (see `halfblock.rs`) work everywhere but are coarse; kitty,
//! sixel and iTerm2 terminals can show the actual photo. ratatui-image's
//! `Picker` detects the protocol (or `--graphics` forces one), and each image
//! is encoded once per (sample, image, cell size) and kept, because encoding
//! a sixel or kitty image on every frame would make the UI sluggish over SSH.

use std::collections::HashMap;
use std::str::FromStr;

use image::DynamicImage;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::widgets::StatefulWidget;
use ratatui_image::picker::{Capability, Picker, ProtocolType};
use ratatui_image::protocol::StatefulProtocol;
use ratatui_image::{Resize, StatefulImage};

use crate::tui::error::TuiError;
use crate::tui::halfblock;
use crate::tui::panes::ImageRegion;
use crate::tui::probe;
use crate::tui::state::{AppState, ImageKey, ImageKind};

/// How images are drawn (`--graphics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GraphicsMode {
    /// Ask the terminal; fall back to half blocks.
    #[default]
    Auto,
    Kitty,
    Sixel,
    Iterm2,
    /// Unicode half blocks only (works in any colour terminal).
    Halfblocks,
}

impl FromStr for GraphicsMode {
    type Err = TuiError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(GraphicsMode::Auto),
            "kitty" => Ok(GraphicsMode::Kitty),
            "sixel" => Ok(GraphicsMode::Sixel),
            "iterm2" | "iterm" => Ok(GraphicsMode::Iterm2),
            "halfblocks" | "halfblock" | "blocks" | "none" => Ok(GraphicsMode::Halfblocks),
            other => Err(TuiError::Graphics(format!(
                "unknown graphics mode {other:?} (auto, kitty, sixel, iterm2, halfblocks)"
            ))),
        }
    }
}

impl std::fmt::Display for GraphicsMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GraphicsMode::Auto => "auto",
            GraphicsMode::Kitty => "kitty",
            GraphicsMode::Sixel => "sixel",
            GraphicsMode::Iterm2 => "iterm2",
            GraphicsMode::Halfblocks => "halfblocks",
        })
    }
}

/// Most protocol states kept; past this the cache starts over.
const MAX_CACHED: usize = 48;

/// First kitty release with Unicode placeholders (`U=1`), the only kitty
/// placement ratatui-image has; older kitty reads them as a malformed command
/// and shows a grid of placeholder glyphs.
const KITTY_PLACEHOLDERS_SINCE: [u32; 2] = [0, 28];

/// What start-up learnt about the terminal's image support.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GraphicsFacts {
    /// Protocol ratatui-image's capability query found (`None`: not asked).
    pub queried: Option<ProtocolType>,
    /// The terminal listed sixel in its device attributes.
    pub sixel: bool,
    /// The terminal reported its cell size in pixels (query or ioctl); sixel
    /// and iTerm2 images are sized from it, so a guess would misplace them.
    pub cell_size_known: bool,
    /// XTVERSION reply, e.g. `kitty(0.26.5)`.
    pub version: Option<String>,
    /// Set inside tmux.
    pub tmux: Option<TmuxFacts>,
}

/// tmux between the program and the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TmuxFacts {
    /// `allow-passthrough` is on (or `all`): image escapes reach the terminal.
    pub passthrough: bool,
    /// ratatui-image wraps its escapes for tmux (it recognises tmux by
    /// `TERM=tmux*` or `TERM_PROGRAM=tmux`); unwrapped, tmux eats them.
    pub wrapped: bool,
}

/// How images will be drawn, and why.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Protocol(ProtocolType),
    /// Half blocks, with the reason shown on the status line.
    Halfblocks(String),
}

/// Why tmux rules out graphics, if it does.
pub fn tmux_blocks(tmux: &TmuxFacts) -> Option<String> {
    if !tmux.passthrough {
        Some("inside tmux with allow-passthrough off".into())
    } else if !tmux.wrapped {
        Some("inside tmux but TERM is not tmux*, so image escapes would not be wrapped".into())
    } else {
        None
    }
}

/// The protocol for the detected facts (pure, so every case is tested).
/// `--graphics` other than `auto` is obeyed whatever the facts say.
pub fn decide(mode: GraphicsMode, facts: &GraphicsFacts) -> Decision {
    match mode {
        GraphicsMode::Halfblocks => return Decision::Halfblocks("--graphics halfblocks".into()),
        GraphicsMode::Kitty => return Decision::Protocol(ProtocolType::Kitty),
        GraphicsMode::Sixel => return Decision::Protocol(ProtocolType::Sixel),
        GraphicsMode::Iterm2 => return Decision::Protocol(ProtocolType::Iterm2),
        GraphicsMode::Auto => {}
    }
    if let Some(why) = facts.tmux.as_ref().and_then(tmux_blocks) {
        return Decision::Halfblocks(why);
    }
    let sized = |p: ProtocolType, what: &str| {
        if facts.tmux.is_some() {
            // tmux does not know the image is there and repaints the cells
            // under it (seen in xterm + tmux 3.3a: a blank tile). Kitty's
            // placeholders are text, which tmux keeps.
            Decision::Halfblocks(format!("{what} through tmux is painted over by tmux"))
        } else if facts.cell_size_known {
            Decision::Protocol(p)
        } else {
            Decision::Halfblocks(format!(
                "{what}, but the terminal did not report its cell size"
            ))
        }
    };
    match facts.queried {
        Some(ProtocolType::Kitty) => {
            let (name, version) = facts
                .version
                .as_deref()
                .map(probe::name_and_version)
                .unwrap_or_default();
            let placeholders = (name.eq_ignore_ascii_case("kitty")
                && version.as_slice() >= KITTY_PLACEHOLDERS_SINCE.as_slice())
                || name.eq_ignore_ascii_case("ghostty");
            if placeholders {
                Decision::Protocol(ProtocolType::Kitty)
            } else if facts.sixel {
                sized(ProtocolType::Sixel, "sixel")
            } else if name.eq_ignore_ascii_case("kitty") {
                let v: Vec<String> = version.iter().map(u32::to_string).collect();
                Decision::Halfblocks(format!(
                    "kitty {} has no Unicode placeholders (0.28+)",
                    v.join(".")
                ))
            } else {
                Decision::Halfblocks(format!(
                    "kitty graphics without Unicode placeholders known ({})",
                    facts
                        .version
                        .as_deref()
                        .unwrap_or("terminal version unknown")
                ))
            }
        }
        Some(ProtocolType::Sixel) => sized(ProtocolType::Sixel, "sixel"),
        Some(ProtocolType::Iterm2) => sized(ProtocolType::Iterm2, "iTerm2"),
        Some(ProtocolType::Halfblocks) | None => {
            Decision::Halfblocks("no graphics protocol reported".into())
        }
    }
}

/// tmux facts from the environment and `tmux show -gv allow-passthrough`.
fn tmux_facts() -> Option<TmuxFacts> {
    std::env::var_os("TMUX").filter(|v| !v.is_empty())?;
    let passthrough = std::process::Command::new("tmux")
        .args(["show", "-gv", "allow-passthrough"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .is_some_and(|o| matches!(String::from_utf8_lossy(&o.stdout).trim(), "on" | "all"));
    let wrapped = std::env::var("TERM").is_ok_and(|t| t.starts_with("tmux"))
        || std::env::var("TERM_PROGRAM").is_ok_and(|t| t == "tmux");
    Some(TmuxFacts {
        passthrough,
        wrapped,
    })
}

/// Whether the tty reports its size in pixels (`TIOCGWINSZ`).
#[cfg(unix)]
fn winsize_has_pixels() -> bool {
    // SAFETY: TIOCGWINSZ fills a winsize; a zeroed one is a valid start.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    ok && ws.ws_xpixel > 0 && ws.ws_ypixel > 0 && ws.ws_col > 0 && ws.ws_row > 0
}

#[cfg(not(unix))]
fn winsize_has_pixels() -> bool {
    false
}

/// Draws images with a terminal graphics protocol over their half-block cells.
pub struct ProtocolRenderer {
    picker: Picker,
    cache: HashMap<(ImageKey, u16, u16), StatefulProtocol>,
}

impl ProtocolRenderer {
    /// Picks the protocol. Must run after the alternate screen is entered and
    /// before input is read (detection talks to the terminal). `version` is
    /// the XTVERSION reply. Returns the renderer (`None` for half blocks,
    /// which the panes draw themselves) and a line saying what was chosen.
    pub fn detect(mode: GraphicsMode, version: Option<&str>) -> (Option<Self>, String) {
        let mut facts = GraphicsFacts {
            version: version.map(str::to_string),
            tmux: tmux_facts(),
            ..Default::default()
        };
        let blocked = facts.tmux.as_ref().and_then(tmux_blocks);
        let picker = match (mode, blocked) {
            (GraphicsMode::Halfblocks, _) => None,
            // Asking would go nowhere, and ratatui-image's query turns
            // allow-passthrough on behind the user's back.
            (GraphicsMode::Auto, Some(_)) => None,
            _ => Picker::from_query_stdio().ok(),
        };
        if let Some(p) = &picker {
            facts.queried = Some(p.protocol_type());
            facts.sixel = p.capabilities().contains(&Capability::Sixel);
            facts.cell_size_known = winsize_has_pixels()
                || p.capabilities()
                    .iter()
                    .any(|c| matches!(c, Capability::CellSize(Some(_))));
        }
        match decide(mode, &facts) {
            Decision::Halfblocks(why) => (None, format!("images: half blocks ({why})")),
            Decision::Protocol(t) => {
                let mut picker = picker.unwrap_or_else(Picker::halfblocks);
                picker.set_protocol_type(t);
                let name = format!("{t:?}").to_lowercase();
                (
                    Some(ProtocolRenderer {
                        picker,
                        cache: HashMap::new(),
                    }),
                    format!("images: {name}"),
                )
            }
        }
    }

    pub fn protocol_name(&self) -> String {
        format!("{:?}", self.picker.protocol_type()).to_lowercase()
    }

    /// Draws every region with the protocol, encoding only new (image, size)
    /// pairs. The image is scaled to whole cells of the terminal's real cell
    /// size and every cell of the region's tile is cleared first, so neither
    /// the half blocks underneath nor padding show beside it.
    pub fn draw(&mut self, state: &AppState, regions: &[ImageRegion], buf: &mut Buffer) {
        let font = self.picker.font_size();
        for region in regions {
            let Some((w, h)) = source_size(state, &region.key) else {
                continue;
            };
            let rect = fit_cells(w, h, region.area, font);
            for y in region.area.top()..region.area.bottom() {
                for x in region.area.left()..region.area.right() {
                    if let Some(cell) = buf.cell_mut((x, y)) {
                        cell.reset();
                    }
                }
            }
            if rect.width == 0 || rect.height == 0 {
                continue;
            }
            let key = (region.key.clone(), rect.width, rect.height);
            if !self.cache.contains_key(&key) {
                let Some(img) = source_image(state, &region.key) else {
                    continue;
                };
                let exact = img.resize_exact(
                    rect.width as u32 * font.0 as u32,
                    rect.height as u32 * font.1 as u32,
                    image::imageops::FilterType::Triangle,
                );
                if self.cache.len() >= MAX_CACHED {
                    self.cache.clear();
                }
                self.cache
                    .insert(key.clone(), self.picker.new_resize_protocol(exact));
            }
            if let Some(proto) = self.cache.get_mut(&key) {
                StatefulImage::default()
                    .resize(Resize::Scale(None))
                    .render(rect, buf, proto);
            }
        }
    }

    /// Drops the states of a sample whose images changed (e.g. a new heatmap).
    pub fn forget_sample(&mut self, sample_id: &str) {
        self.cache.retain(|(k, _, _), _| k.sample_id != sample_id);
    }
}

/// Whole cells an image of `w`×`h` pixels takes when fitted (aspect kept,
/// centred) into `area` with cells of `font` pixels. The image is then
/// stretched by less than one cell to cover them exactly.
pub fn fit_cells(w: u32, h: u32, area: Rect, font: (u16, u16)) -> Rect {
    if w == 0 || h == 0 || area.width == 0 || area.height == 0 || font.0 == 0 || font.1 == 0 {
        return Rect::new(area.x, area.y, 0, 0);
    }
    let (fw, fh) = (font.0 as f64, font.1 as f64);
    let scale = (area.width as f64 * fw / w as f64).min(area.height as f64 * fh / h as f64);
    let cw = ((w as f64 * scale / fw).round() as u16).clamp(1, area.width);
    let ch = ((h as f64 * scale / fh).round() as u16).clamp(1, area.height);
    Rect::new(
        area.x + (area.width - cw) / 2,
        area.y + (area.height - ch) / 2,
        cw,
        ch,
    )
}

/// Pixel size of the image behind a region, without building it.
fn source_size(state: &AppState, key: &ImageKey) -> Option<(u32, u32)> {
    match &key.kind {
        ImageKind::Photo | ImageKind::Overlay { .. } => {
            state.photo(&key.sample_id).map(|p| p.dimensions())
        }
        ImageKind::Heatmap(method) => state
            .heatmap(&key.sample_id, method)
            .map(|m| (m.width as u32, m.height as u32)),
    }
}

/// The full-resolution image behind an on-screen region.
pub fn source_image(state: &AppState, key: &ImageKey) -> Option<DynamicImage> {
    match &key.kind {
        ImageKind::Photo => state
            .photo(&key.sample_id)
            .map(|p| DynamicImage::ImageRgb8(p.clone())),
        ImageKind::Heatmap(method) => state
            .heatmap(&key.sample_id, method)
            .and_then(halfblock::heatmap_image)
            .map(DynamicImage::ImageRgb8),
        ImageKind::Overlay { method, opacity } => {
            let photo = state.photo(&key.sample_id)?;
            let map = state.heatmap(&key.sample_id, method)?;
            halfblock::overlay_image(photo, map, *opacity as f32 / 100.0)
                .map(DynamicImage::ImageRgb8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(queried: ProtocolType, version: &str) -> GraphicsFacts {
        GraphicsFacts {
            queried: Some(queried),
            sixel: false,
            cell_size_known: true,
            version: Some(version.into()),
            tmux: None,
        }
    }

    #[test]
    fn kitty_placeholders_only_from_0_28() {
        let d = decide(
            GraphicsMode::Auto,
            &facts(ProtocolType::Kitty, "kitty(0.26.5)"),
        );
        assert!(
            matches!(&d, Decision::Halfblocks(why) if why.contains("0.26.5")),
            "{d:?}"
        );
        for v in ["kitty(0.28.0)", "kitty(0.32.2)", "kitty(1.0)"] {
            assert_eq!(
                decide(GraphicsMode::Auto, &facts(ProtocolType::Kitty, v)),
                Decision::Protocol(ProtocolType::Kitty),
                "{v}"
            );
        }
        assert_eq!(
            decide(
                GraphicsMode::Auto,
                &facts(ProtocolType::Kitty, "ghostty 1.1.3")
            ),
            Decision::Protocol(ProtocolType::Kitty)
        );
    }

    #[test]
    fn other_kitty_protocol_terminals_use_sixel_or_half_blocks() {
        let mut f = facts(ProtocolType::Kitty, "WezTerm 20240203-110809-5046fc22");
        assert!(matches!(
            decide(GraphicsMode::Auto, &f),
            Decision::Halfblocks(_)
        ));
        f.sixel = true;
        assert_eq!(
            decide(GraphicsMode::Auto, &f),
            Decision::Protocol(ProtocolType::Sixel)
        );
        f.version = None;
        f.sixel = false;
        assert!(matches!(
            decide(GraphicsMode::Auto, &f),
            Decision::Halfblocks(_)
        ));
    }

    #[test]
    fn sixel_needs_the_cell_size() {
        let mut f = facts(ProtocolType::Sixel, "XTerm(379)");
        assert_eq!(
            decide(GraphicsMode::Auto, &f),
            Decision::Protocol(ProtocolType::Sixel)
        );
        f.cell_size_known = false;
        assert!(
            matches!(decide(GraphicsMode::Auto, &f), Decision::Halfblocks(why) if why.contains("cell size"))
        );
    }

    #[test]
    fn tmux_needs_passthrough_and_wrapping() {
        let mut f = facts(ProtocolType::Sixel, "tmux 3.3a");
        f.tmux = Some(TmuxFacts {
            passthrough: false,
            wrapped: true,
        });
        assert!(
            matches!(decide(GraphicsMode::Auto, &f), Decision::Halfblocks(why) if why.contains("allow-passthrough"))
        );
        f.tmux = Some(TmuxFacts {
            passthrough: true,
            wrapped: false,
        });
        assert!(matches!(
            decide(GraphicsMode::Auto, &f),
            Decision::Halfblocks(_)
        ));
        f.tmux = Some(TmuxFacts {
            passthrough: true,
            wrapped: true,
        });
        // Passthrough on: sixel is still painted over by tmux.
        assert!(matches!(
            decide(GraphicsMode::Auto, &f),
            Decision::Halfblocks(why) if why.contains("painted over")
        ));
        // Kitty placeholders (text tmux keeps) when the version is known.
        let mut new = facts(ProtocolType::Kitty, "kitty(0.32.2)");
        new.tmux = f.tmux;
        assert_eq!(
            decide(GraphicsMode::Auto, &new),
            Decision::Protocol(ProtocolType::Kitty)
        );
        // Kitty behind tmux: XTVERSION names tmux, not kitty, so no placeholders.
        let mut k = facts(ProtocolType::Kitty, "tmux 3.3a");
        k.tmux = Some(TmuxFacts {
            passthrough: true,
            wrapped: true,
        });
        assert!(matches!(
            decide(GraphicsMode::Auto, &k),
            Decision::Halfblocks(_)
        ));
    }

    #[test]
    fn nothing_reported_means_half_blocks_and_flags_force() {
        assert!(matches!(
            decide(GraphicsMode::Auto, &GraphicsFacts::default()),
            Decision::Halfblocks(_)
        ));
        let mut f = facts(ProtocolType::Halfblocks, "XTerm(379)");
        assert!(matches!(
            decide(GraphicsMode::Auto, &f),
            Decision::Halfblocks(_)
        ));
        f.tmux = Some(TmuxFacts {
            passthrough: false,
            wrapped: false,
        });
        assert_eq!(
            decide(GraphicsMode::Kitty, &f),
            Decision::Protocol(ProtocolType::Kitty)
        );
        assert_eq!(
            decide(GraphicsMode::Sixel, &f),
            Decision::Protocol(ProtocolType::Sixel)
        );
        assert_eq!(
            decide(GraphicsMode::Iterm2, &f),
            Decision::Protocol(ProtocolType::Iterm2)
        );
        let k = facts(ProtocolType::Kitty, "kitty(0.32.2)");
        assert!(matches!(
            decide(GraphicsMode::Halfblocks, &k),
            Decision::Halfblocks(_)
        ));
    }

    #[test]
    fn fitted_cells_keep_aspect_and_stay_inside() {
        let area = Rect::new(10, 5, 40, 20);
        // Square image, 10x20 px cells: 20 rows = 400 px tall -> 40 cols wide.
        assert_eq!(
            fit_cells(512, 512, area, (10, 20)),
            Rect::new(10, 5, 40, 20)
        );
        // Wide image limited by width.
        let r = fit_cells(800, 200, area, (10, 20));
        assert_eq!((r.width, r.height), (40, 5));
        assert!(r.y > area.y && r.bottom() <= area.bottom());
        assert_eq!(fit_cells(0, 10, area, (10, 20)).width, 0);
    }
}
