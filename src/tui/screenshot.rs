//! Screenshots of the UI as SVG and HTML.
//!
//! Researchers put views of the app into papers, slides and issues; a PNG of
//! a terminal loses the text and blurs when scaled. These exports keep the
//! layout on a monospace grid, the colours and bold/italic, keep the text
//! selectable (one `<text>`/`<span>` per run of same-styled cells), and embed
//! each photo and heatmap as a real PNG (base64 data URI) at the cell
//! rectangle where the frame drew it.
//!
//! Rendering goes through ratatui's `TestBackend`, so it works headless: the
//! `--batch` mode exports panes with [`export_pane`].

use std::fmt::Write as _;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use image::{ImageFormat, RgbImage};
use ratatui::backend::TestBackend;
use ratatui::buffer::{Buffer, Cell};
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};
use ratatui::Terminal;

use crate::tui::error::{Result, TuiError};
use crate::tui::graphics::source_image;
use crate::tui::keys::KeyMap;
use crate::tui::panes::ImageRegion;
use crate::tui::state::{AppState, Pane};
use crate::tui::triage::atomic_write;
use crate::tui::ui;

/// Cell size in SVG user units (pixels).
const CELL_W: f64 = 9.0;
const CELL_H: f64 = 18.0;
const FONT_SIZE: f64 = 15.0;
const DEFAULT_FG: &str = "#d4d4d4";
const DEFAULT_BG: &str = "#1e1e1e";
/// Largest side of an embedded image.
const MAX_EMBED_SIDE: u32 = 512;

/// A rendered frame: the cells and where images are.
pub struct RenderedFrame {
    pub buffer: Buffer,
    pub regions: Vec<ImageRegion>,
}

/// Renders the whole UI headless (default keys).
pub fn render_to_buffer(state: &AppState, width: u16, height: u16) -> Buffer {
    render_frame(state, &KeyMap::default(), None, width, height).buffer
}

/// Renders the whole UI, or one pane filling the area, headless.
pub fn render_frame(
    state: &AppState,
    keys: &KeyMap,
    pane: Option<Pane>,
    width: u16,
    height: u16,
) -> RenderedFrame {
    let area = Rect::new(0, 0, width, height);
    let mut buffer = Buffer::empty(area);
    let regions = match pane {
        None => ui::render(state, keys, area, &mut buffer),
        Some(p) => ui::render_single(state, p, area, &mut buffer),
    };
    RenderedFrame { buffer, regions }
}

/// Same as [`render_frame`] through a ratatui `Terminal<TestBackend>`
/// (exercises the real draw path; used by tests).
pub fn render_with_test_backend(state: &AppState, width: u16, height: u16) -> Result<Buffer> {
    let mut terminal = Terminal::new(TestBackend::new(width, height))?;
    let keys = KeyMap::default();
    terminal.draw(|f| {
        let area = f.area();
        ui::render(state, &keys, area, f.buffer_mut());
    })?;
    Ok(terminal.backend().buffer().clone())
}

/// The buffer as plain text, one line per row (for snapshots and logs).
pub fn buffer_to_text(buf: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        for x in 0..buf.area.width {
            if let Some(cell) = buf.cell((buf.area.x + x, buf.area.y + y)) {
                line.push_str(cell.symbol());
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Hex colour of a terminal colour (xterm palette); `None` = terminal default.
fn hex(c: Color) -> Option<String> {
    const BASE: [&str; 16] = [
        "#000000", "#cd3131", "#0dbc79", "#e5e510", "#2472c8", "#bc3fbc", "#11a8cd", "#e5e5e5",
        "#666666", "#f14c4c", "#23d18b", "#f5f543", "#3b8eea", "#d670d6", "#29b8db", "#ffffff",
    ];
    let idx = |i: usize| Some(BASE[i].to_string());
    match c {
        Color::Reset => None,
        Color::Black => idx(0),
        Color::Red => idx(1),
        Color::Green => idx(2),
        Color::Yellow => idx(3),
        Color::Blue => idx(4),
        Color::Magenta => idx(5),
        Color::Cyan => idx(6),
        Color::Gray => idx(7),
        Color::DarkGray => idx(8),
        Color::LightRed => idx(9),
        Color::LightGreen => idx(10),
        Color::LightYellow => idx(11),
        Color::LightBlue => idx(12),
        Color::LightMagenta => idx(13),
        Color::LightCyan => idx(14),
        Color::White => idx(15),
        Color::Rgb(r, g, b) => Some(format!("#{r:02x}{g:02x}{b:02x}")),
        Color::Indexed(i) if i < 16 => idx(i as usize),
        Color::Indexed(i) if i < 232 => {
            let i = i - 16;
            let level = |v: u8| if v == 0 { 0 } else { 55 + 40 * v };
            Some(format!(
                "#{:02x}{:02x}{:02x}",
                level(i / 36),
                level((i / 6) % 6),
                level(i % 6)
            ))
        }
        Color::Indexed(i) => {
            let v = 8 + 10 * (i - 232);
            Some(format!("#{v:02x}{v:02x}{v:02x}"))
        }
    }
}

/// Resolved style of a cell: (fg, bg, modifiers) as written to the file.
#[derive(Clone, PartialEq)]
struct RunStyle {
    fg: String,
    bg: Option<String>,
    mods: Modifier,
}

fn run_style(cell: &Cell) -> RunStyle {
    let mut fg = hex(cell.fg);
    let mut bg = hex(cell.bg);
    if cell.modifier.contains(Modifier::REVERSED) {
        std::mem::swap(&mut fg, &mut bg);
        fg = fg.or_else(|| Some(DEFAULT_BG.to_string()));
        bg = bg.or_else(|| Some(DEFAULT_FG.to_string()));
    }
    RunStyle {
        fg: fg.unwrap_or_else(|| DEFAULT_FG.to_string()),
        bg,
        mods: cell.modifier,
    }
}

/// A run of same-styled cells on one row.
struct Run {
    x: u16,
    y: u16,
    len: u16,
    text: String,
    style: RunStyle,
}

fn in_regions(regions: &[ImageRegion], x: u16, y: u16) -> bool {
    regions
        .iter()
        .any(|r| x >= r.rect.x && x < r.rect.right() && y >= r.rect.y && y < r.rect.bottom())
}

/// Runs of the buffer, skipping image cells (images are embedded instead).
fn runs(buf: &Buffer, regions: &[ImageRegion]) -> Vec<Run> {
    let mut out = Vec::new();
    for y in 0..buf.area.height {
        let mut cur: Option<Run> = None;
        for x in 0..buf.area.width {
            let (ax, ay) = (buf.area.x + x, buf.area.y + y);
            let cell = match buf.cell((ax, ay)) {
                Some(c) if !in_regions(regions, ax, ay) => c,
                _ => {
                    out.extend(cur.take());
                    continue;
                }
            };
            let style = run_style(cell);
            let sym = if cell.symbol().is_empty() {
                " "
            } else {
                cell.symbol()
            };
            match &mut cur {
                Some(run) if run.style == style => {
                    run.len += 1;
                    run.text.push_str(sym);
                }
                _ => {
                    out.extend(cur.take());
                    cur = Some(Run {
                        x,
                        y,
                        len: 1,
                        text: sym.to_string(),
                        style,
                    });
                }
            }
        }
        out.extend(cur.take());
    }
    out
}

fn escape_xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Standard base64 (RFC 4648) with padding.
pub fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A PNG data URI of the image behind a region.
fn png_data_uri(state: &AppState, region: &ImageRegion) -> Option<String> {
    let img = source_image(state, &region.key)?;
    let img: RgbImage = if img.width().max(img.height()) > MAX_EMBED_SIDE {
        img.thumbnail(MAX_EMBED_SIDE, MAX_EMBED_SIDE).to_rgb8()
    } else {
        img.to_rgb8()
    };
    let mut bytes = Cursor::new(Vec::new());
    img.write_to(&mut bytes, ImageFormat::Png).ok()?;
    Some(format!("data:image/png;base64,{}", base64(bytes.get_ref())))
}

/// The frame as a standalone SVG.
pub fn to_svg(state: &AppState, frame: &RenderedFrame) -> String {
    let buf = &frame.buffer;
    let (w, h) = (
        buf.area.width as f64 * CELL_W,
        buf.area.height as f64 * CELL_H,
    );
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="'DejaVu Sans Mono', Menlo, Consolas, monospace" font-size="{FONT_SIZE}">"#
    );
    let _ = writeln!(
        s,
        r#"<rect width="100%" height="100%" fill="{DEFAULT_BG}"/>"#
    );
    let runs = runs(buf, &frame.regions);
    for r in runs.iter().filter(|r| r.style.bg.is_some()) {
        let _ = writeln!(
            s,
            r#"<rect x="{}" y="{}" width="{}" height="{CELL_H}" fill="{}"/>"#,
            r.x as f64 * CELL_W,
            r.y as f64 * CELL_H,
            r.len as f64 * CELL_W,
            r.style.bg.as_deref().unwrap_or(DEFAULT_BG)
        );
    }
    for r in runs.iter().filter(|r| !r.text.trim().is_empty()) {
        let mut attrs = format!(r#"fill="{}""#, r.style.fg);
        if r.style.mods.contains(Modifier::BOLD) {
            attrs.push_str(r#" font-weight="bold""#);
        }
        if r.style.mods.contains(Modifier::ITALIC) {
            attrs.push_str(r#" font-style="italic""#);
        }
        if r.style.mods.contains(Modifier::UNDERLINED) {
            attrs.push_str(r#" text-decoration="underline""#);
        }
        if r.style.mods.contains(Modifier::DIM) {
            attrs.push_str(r#" opacity="0.6""#);
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" textLength="{}" lengthAdjust="spacingAndGlyphs" xml:space="preserve" {attrs}>{}</text>"#,
            r.x as f64 * CELL_W,
            r.y as f64 * CELL_H + CELL_H * 0.78,
            r.len as f64 * CELL_W,
            escape_xml(&r.text)
        );
    }
    for region in &frame.regions {
        if let Some(uri) = png_data_uri(state, region) {
            let _ = writeln!(
                s,
                r#"<image x="{}" y="{}" width="{}" height="{}" preserveAspectRatio="xMidYMid meet" href="{uri}"/>"#,
                region.rect.x as f64 * CELL_W,
                region.rect.y as f64 * CELL_H,
                region.rect.width as f64 * CELL_W,
                region.rect.height as f64 * CELL_H,
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

/// The frame as a standalone HTML page (text in a `<pre>`, images on top).
pub fn to_html(state: &AppState, frame: &RenderedFrame) -> String {
    let buf = &frame.buffer;
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>melxai</title><style>\n\
body{{background:{DEFAULT_BG};margin:1em}}\n\
.term{{position:relative;display:inline-block}}\n\
pre{{margin:0;font-family:'DejaVu Sans Mono',Menlo,Consolas,monospace;font-size:{FONT_SIZE}px;line-height:{CELL_H}px;color:{DEFAULT_FG};background:{DEFAULT_BG}}}\n\
img{{position:absolute;object-fit:contain}}\n\
</style></head><body><div class=\"term\"><pre>"
    );
    let runs = runs(buf, &frame.regions);
    let mut row = 0u16;
    let mut col = 0u16;
    for r in &runs {
        while row < r.y {
            s.push('\n');
            row += 1;
            col = 0;
        }
        // Image cells are left blank; the <img> covers them.
        for _ in col..r.x {
            s.push(' ');
        }
        let mut css = format!("color:{}", r.style.fg);
        if let Some(bg) = &r.style.bg {
            let _ = write!(css, ";background:{bg}");
        }
        if r.style.mods.contains(Modifier::BOLD) {
            css.push_str(";font-weight:bold");
        }
        if r.style.mods.contains(Modifier::ITALIC) {
            css.push_str(";font-style:italic");
        }
        if r.style.mods.contains(Modifier::UNDERLINED) {
            css.push_str(";text-decoration:underline");
        }
        let _ = write!(s, "<span style=\"{css}\">{}</span>", escape_xml(&r.text));
        col = r.x + r.len;
    }
    s.push_str("</pre>\n");
    for region in &frame.regions {
        if let Some(uri) = png_data_uri(state, region) {
            let _ = writeln!(
                s,
                "<img style=\"left:{}ch;top:{}px;width:{}ch;height:{}px\" src=\"{uri}\" alt=\"{}\">",
                region.rect.x,
                region.rect.y as f64 * CELL_H,
                region.rect.width,
                region.rect.height as f64 * CELL_H,
                escape_xml(&region.key.sample_id)
            );
        }
    }
    s.push_str("</div></body></html>\n");
    s
}

/// `20250102T030405Z` for now (UTC).
pub fn timestamp() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .replace(['-', ':'], "")
}

/// Writes `<dir>/screens/melxai-<UTC timestamp>.{svg,html}`; returns both paths.
pub fn save_screenshot(
    state: &AppState,
    frame: &RenderedFrame,
    dir: &Path,
) -> Result<(PathBuf, PathBuf)> {
    let screens = dir.join("screens");
    let stamp = timestamp();
    let mut base = screens.join(format!("melxai-{stamp}"));
    let mut n = 1;
    while base.with_extension("svg").exists() {
        n += 1;
        base = screens.join(format!("melxai-{stamp}-{n}"));
    }
    let svg = base.with_extension("svg");
    let html = base.with_extension("html");
    atomic_write(&svg, to_svg(state, frame).as_bytes())?;
    atomic_write(&html, to_html(state, frame).as_bytes())?;
    Ok((svg, html))
}

/// Exports one pane (`w`×`h` cells) headless; `.html` paths get HTML, others SVG.
pub fn export_pane(state: &AppState, pane: Pane, w: u16, h: u16, path: &Path) -> Result<()> {
    if w == 0 || h == 0 {
        return Err(TuiError::Screenshot("empty size".into()));
    }
    let frame = render_frame(state, &KeyMap::default(), Some(pane), w, h);
    let is_html = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("html"));
    let text = if is_html {
        to_html(state, &frame)
    } else {
        to_svg(state, &frame)
    };
    atomic_write(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn palette() {
        assert_eq!(hex(Color::Reset), None);
        assert_eq!(hex(Color::Rgb(1, 2, 255)).as_deref(), Some("#0102ff"));
        assert_eq!(hex(Color::Indexed(16)).as_deref(), Some("#000000"));
        assert_eq!(hex(Color::Indexed(231)).as_deref(), Some("#ffffff"));
        assert_eq!(hex(Color::Indexed(255)).as_deref(), Some("#eeeeee"));
    }
}
