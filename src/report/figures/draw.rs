//! The shared plotting toolkit of the figures: palette, colour maps, the
//! embedded font, rendering to PNG, text wrapping, colour bars and legends.

use std::path::Path;
use std::sync::OnceLock;

use ab_glyph::FontRef;
use image::{ImageFormat, Rgb, RgbImage};
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontTransform;

use super::backend::FigBackend;
use super::{viridis, FigureError};

pub(super) const FONT_FAMILY: &str = "sans-serif";
pub(super) static FONT_BYTES: &[u8] = include_bytes!("../../../assets/DejaVuSans.ttf");

/// Matplotlib's "tab10" palette, the usual categorical colours.
pub(super) const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

pub(super) const GREY: RGBColor = RGBColor(120, 120, 120);
pub(super) const LIGHT_GREY: RGBColor = RGBColor(215, 215, 215);

pub(super) fn palette(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// ColorBrewer "Blues" (9 classes), as in matplotlib, at `t` in `[0, 1]`.
pub(super) fn blues(t: f64) -> RGBColor {
    const STOPS: [(u8, u8, u8); 9] = [
        (247, 251, 255),
        (222, 235, 247),
        (198, 219, 239),
        (158, 202, 225),
        (107, 174, 214),
        (66, 146, 198),
        (33, 113, 181),
        (8, 81, 156),
        (8, 48, 107),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f64;
    let lerp = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * f).round() as u8;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    RGBColor(lerp(a.0, b.0), lerp(a.1, b.1), lerp(a.2, b.2))
}

pub(super) fn viridis_color(t: f64) -> RGBColor {
    let [r, g, b] = viridis(t as f32);
    RGBColor(r, g, b)
}

/// Black or white, whichever reads better on `bg`.
pub(super) fn text_on(bg: RGBColor) -> RGBColor {
    let lum = 0.299 * f64::from(bg.0) + 0.587 * f64::from(bg.1) + 0.114 * f64::from(bg.2);
    if lum < 140.0 {
        WHITE
    } else {
        BLACK
    }
}

pub(super) type Area<'a> = DrawingArea<FigBackend<'a>, Shift>;

/// The embedded font, parsed once.
pub(super) fn embedded_font() -> Result<&'static FontRef<'static>, FigureError> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(FONT_BYTES).ok())
        .as_ref()
        .ok_or(FigureError::Font)
}

/// Registers the embedded font with plotters (used only for plotters' own
/// text measurement fallbacks; [`FigBackend`] draws all text itself).
pub(super) fn ensure_font() -> Result<&'static FontRef<'static>, FigureError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, FONT_BYTES).is_ok()
    });
    if ok {
        embedded_font()
    } else {
        Err(FigureError::Font)
    }
}

pub(super) fn font(size: f64) -> TextStyle<'static> {
    (FONT_FAMILY, size).into_font().into()
}

pub(super) fn text_style(size: f64, color: RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    (FONT_FAMILY, size)
        .into_font()
        .color(&color)
        .pos(Pos::new(h, v))
}

/// Draws onto `canvas` (which keeps whatever pixels it already has) and
/// writes it to `path` as PNG.
pub(super) fn render_onto<F>(path: &Path, mut canvas: RgbImage, draw: F) -> Result<(), FigureError>
where
    F: FnOnce(&Area<'_>) -> Result<(), FigureError>,
{
    let font = ensure_font()?;
    let (w, h) = canvas.dimensions();
    {
        let root = FigBackend {
            inner: BitMapBackend::with_buffer(&mut canvas, (w, h)),
            font,
        }
        .into_drawing_area();
        draw(&root)?;
        root.present()?;
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| FigureError::CreateDir {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    // Encoded in memory and written atomically: never a truncated PNG.
    let mut png = std::io::Cursor::new(Vec::new());
    canvas
        .write_to(&mut png, ImageFormat::Png)
        .map_err(|source| FigureError::Write {
            path: path.to_path_buf(),
            source,
        })?;
    crate::files::write_bytes(path, png.get_ref()).map_err(|e| FigureError::Write {
        path: path.to_path_buf(),
        source: image::ImageError::IoError(std::io::Error::other(e.to_string())),
    })
}

/// Draws on a white `size` canvas and writes it to `path`.
pub(super) fn render<F>(path: &Path, size: (u32, u32), draw: F) -> Result<(), FigureError>
where
    F: FnOnce(&Area<'_>) -> Result<(), FigureError>,
{
    render_onto(
        path,
        RgbImage::from_pixel(size.0, size.1, Rgb([255, 255, 255])),
        draw,
    )
}

pub(super) fn invalid(msg: impl Into<String>) -> FigureError {
    FigureError::InvalidInput(msg.into())
}

/// Splits `text` into lines no wider than `max_w` pixels (words longer than
/// that stay on a line of their own).
pub(super) fn wrap_text(
    area: &Area<'_>,
    text: &str,
    style: &TextStyle<'_>,
    max_w: u32,
) -> Vec<String> {
    let width = |s: &str| area.estimate_text_size(s, style).map_or(0, |(w, _)| w);
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            let candidate = if line.is_empty() {
                word.to_string()
            } else {
                format!("{line} {word}")
            };
            if !line.is_empty() && width(&candidate) > max_w {
                lines.push(std::mem::replace(&mut line, word.to_string()));
            } else {
                line = candidate;
            }
        }
        lines.push(line);
    }
    lines
}

/// Draws `lines` centred on `(cx, cy)`, one below the other.
pub(super) fn draw_lines(
    area: &Area<'_>,
    lines: &[String],
    (cx, cy): (i32, i32),
    size: f64,
    color: RGBColor,
) -> Result<(), FigureError> {
    let line_h = (size * 1.25).round() as i32;
    let top = cy - line_h * (lines.len() as i32 - 1) / 2;
    let style = text_style(size, color, HPos::Center, VPos::Center);
    for (i, line) in lines.iter().enumerate() {
        area.draw_text(line, &style, (cx, top + line_h * i as i32))?;
    }
    Ok(())
}

/// Vertical colour bar in pixel space with tick labels on its right.
pub(super) fn draw_colorbar(
    area: &Area<'_>,
    (x0, y0, x1, y1): (i32, i32, i32, i32),
    cmap: impl Fn(f64) -> RGBColor,
    (lo, hi): (f64, f64),
    ticks: usize,
    label: &str,
) -> Result<(), FigureError> {
    let span = (y1 - y0).max(1);
    for y in y0..y1 {
        let t = 1.0 - f64::from(y - y0) / f64::from(span);
        area.draw(&Rectangle::new([(x0, y), (x1, y + 1)], cmap(t).filled()))?;
    }
    area.draw(&Rectangle::new([(x0, y0), (x1, y1)], BLACK.stroke_width(1)))?;
    let style = text_style(13.0, BLACK, HPos::Left, VPos::Center);
    let ticks = ticks.max(2);
    for k in 0..ticks {
        let f = k as f64 / (ticks - 1) as f64;
        let y = y1 - (f * f64::from(span)).round() as i32;
        let value = lo + (hi - lo) * f;
        area.draw(&PathElement::new(vec![(x1, y), (x1 + 5, y)], BLACK))?;
        area.draw_text(&format_tick(value), &style, (x1 + 8, y))?;
    }
    if !label.is_empty() {
        let style =
            text_style(14.0, BLACK, HPos::Center, VPos::Center).transform(FontTransform::Rotate270);
        area.draw_text(label, &style, (x1 + 58, (y0 + y1) / 2))?;
    }
    Ok(())
}

pub(super) fn format_tick(v: f64) -> String {
    if v.abs() < 1e-12 {
        "0".to_string()
    } else if (v.fract()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// `(min, max)` of the finite values, padded so the range is never empty.
pub(super) fn finite_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        None
    } else if (hi - lo).abs() < 1e-12 {
        Some((lo - 0.5, hi + 0.5))
    } else {
        Some((lo, hi))
    }
}

pub(super) fn solid_legend(style: ShapeStyle) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style)
}

pub(super) fn dashed_legend(
    style: ShapeStyle,
) -> impl Fn((i32, i32)) -> DashedPathElement<std::vec::IntoIter<(i32, i32)>, i32> {
    move |(x, y)| DashedPathElement::new(vec![(x, y), (x + 24, y)], 6, 4, style)
}

pub(super) fn box_legend(color: RGBAColor) -> impl Fn((i32, i32)) -> Rectangle<(i32, i32)> {
    move |(x, y)| Rectangle::new([(x + 2, y - 6), (x + 22, y + 6)], color.filled())
}

/// The legend box of the full-size curve figures (ROC, risk–coverage,
/// decision curve): at `position`, on a white ground with a light border.
pub(super) fn curve_legend<'a, 'b: 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, FigBackend<'b>, CT>,
    position: SeriesLabelPosition,
) -> Result<(), FigureError> {
    chart
        .configure_series_labels()
        .position(position)
        .margin(12)
        .legend_area_size(34)
        .label_font(font(15.0))
        .background_style(WHITE.mix(0.9))
        .border_style(LIGHT_GREY)
        .draw()?;
    Ok(())
}

pub(super) fn fmt_metric(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.3}")
    } else {
        "n/a".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viridis_matches_matplotlib_anchor_points() {
        // matplotlib's viridis LUT entries 0, 128 and 255.
        let close = |a: [u8; 3], b: [u8; 3]| a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 5);
        assert!(close(viridis(0.0), [68, 1, 84]), "{:?}", viridis(0.0));
        assert!(
            close(viridis(128.0 / 255.0), [33, 145, 140]),
            "{:?}",
            viridis(0.5)
        );
        assert!(close(viridis(1.0), [253, 231, 37]), "{:?}", viridis(1.0));
        assert_eq!(viridis(f32::NAN), viridis(0.0));
        assert_eq!(viridis(2.0), viridis(1.0));
    }
}
