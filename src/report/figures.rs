//! PNG figures for reports: training curves, ROC curves, confusion matrices,
//! reliability diagrams, explanation grids, method-similarity heatmaps and
//! deletion/insertion curves.
//!
//! Why this module exists: the terminal UI shows results live, but a study
//! needs figures that can go into a paper or a README and be compared across
//! runs. Every function here takes plain data (numbers, strings, an
//! [`RgbImage`]) rather than tensors, so figures can be produced from saved
//! JSON reports without loading a model or libtorch, and so they can be
//! tested cheaply.
//!
//! Rendering uses `plotters`' bitmap backend with a font embedded in the
//! binary (DejaVu Sans, `assets/DejaVuSans.ttf`, Bitstream Vera licence in
//! `assets/DejaVuSans-LICENSE.txt`), so no system font libraries
//! (fontconfig/freetype) are needed and output is identical on every machine.
//! Text is laid out with `ab_glyph` by a thin backend wrapper rather than by
//! plotters' own `ab_glyph` path, whose glyph placement is visibly off (see
//! `FigBackend`). PNG encoding goes through `image` 0.25 (the crate's own
//! image dependency) instead of plotters' `bitmap_encoder`, which would pull
//! in a second, older `image`.
//!
//! Every function writes one PNG to `path`, creating missing parent
//! directories, and sizes its canvas for readability at about 1000 px wide.
//! The sizes are fixed per figure (the grid and heatmap grow with their
//! content) and documented on each function.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ab_glyph::FontRef;
use backend::FigBackend;
use image::{imageops, ImageFormat, Rgb, RgbImage};
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontTransform;
use serde::{Deserialize, Serialize};

/// Errors from drawing or writing a figure.
#[derive(Debug, thiserror::Error)]
pub enum FigureError {
    /// The data handed in cannot be drawn (empty, mismatched lengths, ...).
    #[error("invalid figure input: {0}")]
    InvalidInput(String),
    /// The output's parent directory could not be created.
    #[error("could not create directory {path}: {source}")]
    CreateDir {
        /// Directory that could not be created.
        path: PathBuf,
        /// Underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Plotting failed (backend or layout error).
    #[error("drawing failed: {0}")]
    Draw(String),
    /// The PNG could not be encoded or written.
    #[error("could not write PNG {path}: {source}")]
    Write {
        /// Output path.
        path: PathBuf,
        /// Underlying image error.
        #[source]
        source: image::ImageError,
    },
    /// The embedded font could not be registered with plotters.
    #[error("the embedded font could not be loaded")]
    Font,
}

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for FigureError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        FigureError::Draw(e.to_string())
    }
}

// ---------------------------------------------------------------------------
// Input data
// ---------------------------------------------------------------------------

/// One epoch of training, as recorded by the trainer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochPoint {
    /// Epoch number (1-based by convention; plotted as given).
    pub epoch: usize,
    /// Mean training loss. Non-finite values are skipped.
    pub train_loss: f64,
    /// Validation loss. Non-finite values are skipped.
    pub val_loss: f64,
    /// Validation AUROC. NaN (undefined, e.g. one class only) is skipped.
    pub val_auroc: f64,
    /// Validation balanced accuracy. Non-finite values are skipped.
    pub val_balanced_accuracy: f64,
    /// 0-based fold index for k-fold runs (shown as "fold k+1"); `None` for a
    /// single split.
    pub fold: Option<usize>,
}

/// One ROC curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RocSeries {
    /// Legend label, e.g. "fold 1" or "pooled".
    pub label: String,
    /// `(false positive rate, true positive rate)` points in drawing order.
    pub points: Vec<(f64, f64)>,
    /// Area under the curve, shown in the legend (NaN shows as "n/a").
    pub auc: f64,
}

/// One bin of a reliability diagram (same shape as the calibration report's
/// bins).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bin {
    /// Lower confidence edge.
    pub lower: f64,
    /// Upper confidence edge.
    pub upper: f64,
    /// Mean confidence of the samples in the bin; `None` if empty.
    pub mean_confidence: Option<f64>,
    /// Fraction of correct predictions in the bin; `None` if empty.
    pub accuracy: Option<f64>,
    /// Number of samples in the bin.
    pub count: usize,
}

/// One attribution map of one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridMap {
    /// Method name; used as the column title (must match across rows).
    pub method: String,
    /// Row-major `height * width` values in `[0, 1]` (clamped; NaN → 0).
    pub values: Vec<f32>,
    /// Map width in cells.
    pub width: usize,
    /// Map height in cells.
    pub height: usize,
}

/// One row of an explanation grid: a photo and its attribution maps.
#[derive(Debug, Clone, PartialEq)]
pub struct GridRow {
    /// Row title, e.g. file name, label and predicted probability.
    pub title: String,
    /// The photo as the model saw it (same framing as the maps); stretched to
    /// the square tile, so maps stay aligned with it.
    pub image: RgbImage,
    /// Attribution maps in column order (any resolution; upsampled bilinearly).
    pub maps: Vec<GridMap>,
}

/// Deletion and insertion curves of one attribution method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeletionInsertionCurve {
    /// Method name (legend label).
    pub method: String,
    /// Fraction of pixels removed/inserted at each step, ascending in `[0, 1]`.
    pub fractions: Vec<f64>,
    /// Class probability after deleting the top `fraction` of pixels.
    pub deletion: Vec<f64>,
    /// Class probability after inserting the top `fraction` of pixels.
    pub insertion: Vec<f64>,
}

// ---------------------------------------------------------------------------
// Figure sizes (pixels)
// ---------------------------------------------------------------------------

/// Size of [`training_curves`] output.
pub const TRAINING_CURVES_SIZE: (u32, u32) = (1000, 460);
/// Size of [`roc_curve`] output.
pub const ROC_CURVE_SIZE: (u32, u32) = (760, 720);
/// Size of [`confusion_matrix`] output.
pub const CONFUSION_MATRIX_SIZE: (u32, u32) = (760, 650);
/// Size of [`reliability_diagram`] output without an "after" panel.
pub const RELIABILITY_SIZE_SINGLE: (u32, u32) = (560, 820);
/// Size of [`reliability_diagram`] output with before and after panels.
pub const RELIABILITY_SIZE_PAIR: (u32, u32) = (1000, 820);
/// Size of [`deletion_insertion`] output.
pub const DELETION_INSERTION_SIZE: (u32, u32) = (1000, 460);

const FONT_FAMILY: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Matplotlib's "tab10" palette, the usual categorical colours.
const PALETTE: [RGBColor; 10] = [
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

const GREY: RGBColor = RGBColor(120, 120, 120);
const LIGHT_GREY: RGBColor = RGBColor(215, 215, 215);

fn palette(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

// ---------------------------------------------------------------------------
// Colour maps
// ---------------------------------------------------------------------------

pub use crate::explain::colormap::viridis;

/// ColorBrewer "Blues" (9 classes), as in matplotlib, at `t` in `[0, 1]`.
fn blues(t: f64) -> RGBColor {
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

fn viridis_color(t: f64) -> RGBColor {
    let [r, g, b] = viridis(t as f32);
    RGBColor(r, g, b)
}

/// Black or white, whichever reads better on `bg`.
fn text_on(bg: RGBColor) -> RGBColor {
    let lum = 0.299 * f64::from(bg.0) + 0.587 * f64::from(bg.1) + 0.114 * f64::from(bg.2);
    if lum < 140.0 {
        WHITE
    } else {
        BLACK
    }
}

// ---------------------------------------------------------------------------
// Rendering plumbing
// ---------------------------------------------------------------------------

type Area<'a> = DrawingArea<FigBackend<'a>, Shift>;

/// The embedded font, parsed once.
fn embedded_font() -> Result<&'static FontRef<'static>, FigureError> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(FONT_BYTES).ok())
        .as_ref()
        .ok_or(FigureError::Font)
}

/// Registers the embedded font with plotters (used only for plotters' own
/// text measurement fallbacks; [`FigBackend`] draws all text itself).
fn ensure_font() -> Result<&'static FontRef<'static>, FigureError> {
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

fn font(size: f64) -> TextStyle<'static> {
    (FONT_FAMILY, size).into_font().into()
}

fn text_style(size: f64, color: RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    (FONT_FAMILY, size)
        .into_font()
        .color(&color)
        .pos(Pos::new(h, v))
}

/// The bitmap backend with correct text layout (own module so that the
/// backend traits' methods do not clash with plotters' `Color` methods).
mod backend {
    use ab_glyph::{Font as _, FontRef, PxScale, ScaleFont as _};
    use plotters::prelude::{BitMapBackend, DrawingBackend};
    use plotters::style::text_anchor::{HPos, VPos};
    use plotters_backend::{
        BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
    };

    /// [`BitMapBackend`] with its own text rendering.
    ///
    /// plotters 0.3.7's `ab_glyph` text path drops each glyph's left side
    /// bearing, truncates the pen position and rounds the baseline differently
    /// for glyphs above and below half the font size, so text comes out with
    /// uneven letter spacing and dots floating above the baseline. This wrapper
    /// delegates all drawing to the bitmap backend but lays text out with
    /// `ab_glyph` directly: sub-pixel pen positions, kerning, bearings, one
    /// baseline, anti-aliased coverage blended into the bitmap, and plotters'
    /// anchors and rotations honoured.
    pub(super) struct FigBackend<'a> {
        pub(super) inner: BitMapBackend<'a>,
        pub(super) font: &'static FontRef<'static>,
    }

    /// `(width, height)` in pixels of `text` set in `font` at `size`.
    pub(super) fn text_size(font: &FontRef<'static>, text: &str, size: f64) -> (f32, f32) {
        let (_, w, h) = layout(font, text, size);
        (w, h)
    }

    /// Laid-out glyphs of `text` (top of the line box at y = 0) and the
    /// line box's `(width, height)`.
    fn layout(font: &FontRef<'static>, text: &str, size: f64) -> (Vec<ab_glyph::Glyph>, f32, f32) {
        let font = font.as_scaled(PxScale::from(size as f32));
        let ascent = font.ascent();
        let mut pen = 0.0f32;
        let mut prev = None;
        let mut glyphs = Vec::with_capacity(text.len());
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = prev {
                pen += font.kern(p, id);
            }
            glyphs.push(id.with_scale_and_position(font.scale(), ab_glyph::point(pen, ascent)));
            pen += font.h_advance(id);
            prev = Some(id);
        }
        (glyphs, pen, ascent - font.descent())
    }

    impl FigBackend<'_> {
        fn layout(&self, text: &str, size: f64) -> (Vec<ab_glyph::Glyph>, f32, f32) {
            layout(self.font, text, size)
        }
    }

    impl DrawingBackend for FigBackend<'_> {
        type ErrorType = <BitMapBackend<'static> as DrawingBackend>::ErrorType;

        fn get_size(&self) -> (u32, u32) {
            self.inner.get_size()
        }

        fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.inner.ensure_prepared()
        }

        fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.inner.present()
        }

        fn draw_pixel(
            &mut self,
            point: BackendCoord,
            color: BackendColor,
        ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.inner.draw_pixel(point, color)
        }

        fn draw_line<S: BackendStyle>(
            &mut self,
            from: BackendCoord,
            to: BackendCoord,
            style: &S,
        ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.inner.draw_line(from, to, style)
        }

        fn draw_rect<S: BackendStyle>(
            &mut self,
            upper_left: BackendCoord,
            bottom_right: BackendCoord,
            style: &S,
            fill: bool,
        ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.inner.draw_rect(upper_left, bottom_right, style, fill)
        }

        fn blit_bitmap(
            &mut self,
            pos: BackendCoord,
            size: (u32, u32),
            src: &[u8],
        ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.inner.blit_bitmap(pos, size, src)
        }

        fn estimate_text_size<TStyle: BackendTextStyle>(
            &self,
            text: &str,
            style: &TStyle,
        ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
            let (_, w, h) = self.layout(text, style.size());
            Ok((w.ceil() as u32, h.ceil() as u32))
        }

        fn draw_text<TStyle: BackendTextStyle>(
            &mut self,
            text: &str,
            style: &TStyle,
            pos: BackendCoord,
        ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            let color = style.color();
            if color.alpha == 0.0 {
                return Ok(());
            }
            let (glyphs, w, h) = self.layout(text, style.size());
            let anchor = style.anchor();
            let dx = match anchor.h_pos {
                HPos::Left => 0.0,
                HPos::Center => -w / 2.0,
                HPos::Right => -w,
            };
            let dy = match anchor.v_pos {
                VPos::Top => 0.0,
                VPos::Center => -h / 2.0,
                VPos::Bottom => -h,
            };
            let (dx, dy) = (dx.round() as i32, dy.round() as i32);
            let trans = style.transform();
            let mut result = Ok(());
            for glyph in glyphs {
                let Some(outline) = self.font.outline_glyph(glyph) else {
                    continue;
                };
                let bounds = outline.px_bounds();
                let (bx, by) = (bounds.min.x as i32, bounds.min.y as i32);
                outline.draw(|gx, gy, coverage| {
                    if result.is_err() || coverage <= 0.0 {
                        return;
                    }
                    let (x, y) = trans.transform(bx + gx as i32 + dx, by + gy as i32 + dy);
                    let c = BackendColor {
                        alpha: color.alpha * f64::from(coverage.min(1.0)),
                        rgb: color.rgb,
                    };
                    result = self.inner.draw_pixel((pos.0 + x, pos.1 + y), c);
                });
                result
                    .as_ref()
                    .map_err(|_| DrawingErrorKind::FontError(Box::new(TextError)))
                    .map(|_| ())?;
            }
            result
        }
    }

    /// Placeholder error for a failed pixel write during text drawing.
    #[derive(Debug)]
    struct TextError;

    impl std::fmt::Display for TextError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("text drawing failed")
        }
    }

    impl std::error::Error for TextError {}
}

/// Draws onto `canvas` (which keeps whatever pixels it already has) and
/// writes it to `path` as PNG.
fn render_onto<F>(path: &Path, mut canvas: RgbImage, draw: F) -> Result<(), FigureError>
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
    canvas
        .save_with_format(path, ImageFormat::Png)
        .map_err(|source| FigureError::Write {
            path: path.to_path_buf(),
            source,
        })
}

/// Draws on a white `size` canvas and writes it to `path`.
fn render<F>(path: &Path, size: (u32, u32), draw: F) -> Result<(), FigureError>
where
    F: FnOnce(&Area<'_>) -> Result<(), FigureError>,
{
    render_onto(
        path,
        RgbImage::from_pixel(size.0, size.1, Rgb([255, 255, 255])),
        draw,
    )
}

fn invalid(msg: impl Into<String>) -> FigureError {
    FigureError::InvalidInput(msg.into())
}

/// Splits `text` into lines no wider than `max_w` pixels (words longer than
/// that stay on a line of their own).
fn wrap_text(area: &Area<'_>, text: &str, style: &TextStyle<'_>, max_w: u32) -> Vec<String> {
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
fn draw_lines(
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
fn draw_colorbar(
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

fn format_tick(v: f64) -> String {
    if v.abs() < 1e-12 {
        "0".to_string()
    } else if (v.fract()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// `(min, max)` of the finite values, padded so the range is never empty.
fn finite_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
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

fn solid_legend(style: ShapeStyle) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style)
}

fn dashed_legend(
    style: ShapeStyle,
) -> impl Fn((i32, i32)) -> DashedPathElement<std::vec::IntoIter<(i32, i32)>, i32> {
    move |(x, y)| DashedPathElement::new(vec![(x, y), (x + 24, y)], 6, 4, style)
}

fn box_legend(color: RGBAColor) -> impl Fn((i32, i32)) -> Rectangle<(i32, i32)> {
    move |(x, y)| Rectangle::new([(x + 2, y - 6), (x + 22, y + 6)], color.filled())
}

fn fmt_metric(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.3}")
    } else {
        "n/a".to_string()
    }
}

// ---------------------------------------------------------------------------
// 1. Training curves
// ---------------------------------------------------------------------------

/// One panel of [`training_curves`].
struct CurvePanel<'p, 'b> {
    area: &'p Area<'b>,
    caption: &'static str,
    y_desc: &'static str,
    /// Legend names of the solid and the dashed series.
    names: [&'static str; 2],
    y_hi: f64,
    /// Validation metrics (true) or losses (false).
    metrics: bool,
}

/// Training curves: losses (left) and validation AUROC / balanced accuracy
/// (right). With folds, each fold gets its own colour; line style tells the
/// series apart (solid: train loss / AUROC, dashed: val loss / balanced
/// accuracy). Size [`TRAINING_CURVES_SIZE`].
pub fn training_curves(path: &Path, epochs: &[EpochPoint]) -> Result<(), FigureError> {
    if epochs.is_empty() {
        return Err(invalid("training_curves: no epochs"));
    }
    let mut folds: Vec<Option<usize>> = epochs.iter().map(|e| e.fold).collect();
    folds.sort_unstable();
    folds.dedup();
    let per_fold: Vec<(Option<usize>, Vec<EpochPoint>)> = folds
        .iter()
        .map(|&f| {
            let mut pts: Vec<EpochPoint> = epochs.iter().filter(|e| e.fold == f).copied().collect();
            pts.sort_by_key(|e| e.epoch);
            (f, pts)
        })
        .collect();
    let multi = per_fold.len() > 1 || folds.first().is_some_and(Option::is_some);

    let (x_lo, x_hi) = finite_range(epochs.iter().map(|e| e.epoch as f64))
        .ok_or_else(|| invalid("training_curves: no epochs"))?;
    let loss_hi = finite_range(epochs.iter().flat_map(|e| [e.train_loss, e.val_loss]))
        .map_or(1.0, |(_, hi)| hi.max(1e-6) * 1.08);

    let fold_name = |f: Option<usize>| match f {
        Some(k) => format!("fold {}", k + 1),
        None => "single split".to_string(),
    };

    render(path, TRAINING_CURVES_SIZE, |root| {
        let (left, right) = root.split_horizontally(TRAINING_CURVES_SIZE.0 / 2);
        let panels = [
            CurvePanel {
                area: &left,
                caption: "Loss",
                y_desc: "Loss",
                names: ["train loss", "val loss"],
                y_hi: loss_hi,
                metrics: false,
            },
            CurvePanel {
                area: &right,
                caption: "Validation metrics",
                y_desc: "Metric",
                names: ["val AUROC", "val balanced acc."],
                y_hi: 1.02,
                metrics: true,
            },
        ];
        for CurvePanel {
            area,
            caption,
            y_desc,
            names,
            y_hi,
            metrics,
        } in panels
        {
            let mut chart = ChartBuilder::on(area)
                .caption(caption, font(20.0))
                .margin(12)
                .x_label_area_size(44)
                .y_label_area_size(56)
                .build_cartesian_2d(x_lo..x_hi, 0.0..y_hi)?;
            chart
                .configure_mesh()
                .x_desc("Epoch")
                .y_desc(y_desc)
                .label_style(font(14.0))
                .axis_desc_style(font(15.0))
                .light_line_style(TRANSPARENT)
                .bold_line_style(RGBColor(228, 228, 228))
                .x_label_formatter(&|x| format!("{x:.0}"))
                .draw()?;
            for (i, (fold, pts)) in per_fold.iter().enumerate() {
                let color = if multi { palette(i) } else { palette(0) };
                let pick = |e: &EpochPoint, second: bool| match (metrics, second) {
                    (false, false) => e.train_loss,
                    (false, true) => e.val_loss,
                    (true, false) => e.val_auroc,
                    (true, true) => e.val_balanced_accuracy,
                };
                let series = |second: bool| -> Vec<(f64, f64)> {
                    pts.iter()
                        .map(|e| (e.epoch as f64, pick(e, second)))
                        .filter(|(_, y)| y.is_finite())
                        .collect()
                };
                let first_style = color.stroke_width(2);
                let second_color = if multi { color } else { palette(1) };
                let second_style = second_color.stroke_width(2);
                let a = chart.draw_series(LineSeries::new(series(false), first_style))?;
                if !multi {
                    a.label(names[0]).legend(solid_legend(first_style));
                } else {
                    a.label(fold_name(*fold)).legend(solid_legend(first_style));
                }
                let b =
                    chart.draw_series(DashedLineSeries::new(series(true), 8, 5, second_style))?;
                if !multi {
                    b.label(names[1]).legend(dashed_legend(second_style));
                }
            }
            if multi {
                let style = BLACK.stroke_width(2);
                chart
                    .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())?
                    .label(format!("{} (solid)", names[0]))
                    .legend(solid_legend(style));
                chart
                    .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())?
                    .label(format!("{} (dashed)", names[1]))
                    .legend(dashed_legend(style));
            }
            chart
                .configure_series_labels()
                .position(if metrics {
                    SeriesLabelPosition::LowerRight
                } else {
                    SeriesLabelPosition::UpperRight
                })
                .margin(8)
                .legend_area_size(32)
                .label_font(font(13.0))
                .background_style(WHITE.mix(0.85))
                .border_style(LIGHT_GREY)
                .draw()?;
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// 2. ROC curves
// ---------------------------------------------------------------------------

/// ROC curves with the chance diagonal and the AUC of each curve in the
/// legend. Size [`ROC_CURVE_SIZE`].
pub fn roc_curve(path: &Path, curves: &[RocSeries]) -> Result<(), FigureError> {
    if curves.is_empty() {
        return Err(invalid("roc_curve: no curves"));
    }
    render(path, ROC_CURVE_SIZE, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption("ROC curve", font(22.0))
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..1.0, 0.0..1.0)?;
        chart
            .configure_mesh()
            .x_desc("False positive rate (1 − specificity)")
            .y_desc("True positive rate (sensitivity)")
            .label_style(font(14.0))
            .axis_desc_style(font(16.0))
            .light_line_style(TRANSPARENT)
            .bold_line_style(RGBColor(228, 228, 228))
            .draw()?;
        let diag = GREY.stroke_width(1);
        chart
            .draw_series(DashedLineSeries::new(
                vec![(0.0, 0.0), (1.0, 1.0)],
                8,
                6,
                diag,
            ))?
            .label("chance (AUC = 0.5)")
            .legend(dashed_legend(diag));
        for (i, c) in curves.iter().enumerate() {
            let style = palette(i).stroke_width(if curves.len() > 3 { 2 } else { 3 });
            let pts: Vec<(f64, f64)> = c
                .points
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect();
            chart
                .draw_series(LineSeries::new(pts, style))?
                .label(format!("{} (AUC = {})", c.label, fmt_metric(c.auc)))
                .legend(solid_legend(style));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .margin(12)
            .legend_area_size(34)
            .label_font(font(15.0))
            .background_style(WHITE.mix(0.9))
            .border_style(LIGHT_GREY)
            .draw()?;
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// 3. Confusion matrix
// ---------------------------------------------------------------------------

const CM_LEFT: i32 = 210;
const CM_TOP: i32 = 130;
const CM_CELL: i32 = 220;

/// Pixel rectangle `(x0, y0, x1, y1)` (exclusive ends) of cell
/// `(actual, predicted)` in the figure written by [`confusion_matrix`].
pub fn confusion_matrix_cell_rect(actual: usize, predicted: usize) -> (u32, u32, u32, u32) {
    let x0 = CM_LEFT + CM_CELL * predicted.min(1) as i32;
    let y0 = CM_TOP + CM_CELL * actual.min(1) as i32;
    (
        x0 as u32,
        y0 as u32,
        (x0 + CM_CELL) as u32,
        (y0 + CM_CELL) as u32,
    )
}

/// 2×2 confusion matrix. `counts[actual][predicted]`, classes in `labels`
/// order (e.g. `["nevus", "melanoma"]` gives `[[tn, fp], [fn, tp]]`). Cells
/// are shaded by the share of their row (actual class), and show the count and
/// that share. Size [`CONFUSION_MATRIX_SIZE`].
pub fn confusion_matrix(
    path: &Path,
    labels: [&str; 2],
    counts: [[u64; 2]; 2],
    title: &str,
) -> Result<(), FigureError> {
    let total: u64 = counts.iter().flatten().sum();
    render(path, CONFUSION_MATRIX_SIZE, |root| {
        let (w, _) = root.dim_in_pixel();
        let grid = 2 * CM_CELL;
        root.draw_text(
            title,
            &text_style(22.0, BLACK, HPos::Center, VPos::Center),
            (w as i32 / 2, 32),
        )?;
        root.draw_text(
            "Predicted",
            &text_style(17.0, BLACK, HPos::Center, VPos::Center),
            (CM_LEFT + grid / 2, CM_TOP - 64),
        )?;
        root.draw_text(
            "Actual",
            &text_style(17.0, BLACK, HPos::Center, VPos::Center)
                .transform(FontTransform::Rotate270),
            (56, CM_TOP + grid / 2),
        )?;
        let label_style = text_style(15.0, BLACK, HPos::Center, VPos::Center);
        for (k, label) in labels.iter().enumerate() {
            let lines = wrap_text(root, label, &label_style, (CM_CELL - 10) as u32);
            draw_lines(
                root,
                &lines,
                (CM_LEFT + CM_CELL * k as i32 + CM_CELL / 2, CM_TOP - 26),
                15.0,
                BLACK,
            )?;
            let lines = wrap_text(root, label, &label_style, (CM_LEFT - 90) as u32);
            draw_lines(
                root,
                &lines,
                (
                    (CM_LEFT + 76) / 2,
                    CM_TOP + CM_CELL * k as i32 + CM_CELL / 2,
                ),
                15.0,
                BLACK,
            )?;
        }
        for (a, row) in counts.iter().enumerate() {
            let row_total: u64 = row.iter().sum();
            for (p, &n) in row.iter().enumerate() {
                let share = if row_total > 0 {
                    n as f64 / row_total as f64
                } else {
                    f64::NAN
                };
                let (x0, y0, x1, y1) = confusion_matrix_cell_rect(a, p);
                let (x0, y0, x1, y1) = (x0 as i32, y0 as i32, x1 as i32, y1 as i32);
                let bg = if share.is_finite() {
                    blues(share)
                } else {
                    RGBColor(240, 240, 240)
                };
                root.draw(&Rectangle::new([(x0, y0), (x1, y1)], bg.filled()))?;
                root.draw(&Rectangle::new([(x0, y0), (x1, y1)], WHITE.stroke_width(2)))?;
                let fg = text_on(bg);
                let (cx, cy) = ((x0 + x1) / 2, (y0 + y1) / 2);
                root.draw_text(
                    &n.to_string(),
                    &text_style(34.0, fg, HPos::Center, VPos::Center),
                    (cx, cy - 14),
                )?;
                let pct = if share.is_finite() {
                    format!("{:.1}% of actual", 100.0 * share)
                } else {
                    "—".to_string()
                };
                root.draw_text(
                    &pct,
                    &text_style(15.0, fg, HPos::Center, VPos::Center),
                    (cx, cy + 26),
                )?;
            }
        }
        draw_colorbar(
            root,
            (
                CM_LEFT + grid + 24,
                CM_TOP,
                CM_LEFT + grid + 40,
                CM_TOP + grid,
            ),
            blues,
            (0.0, 100.0),
            5,
            "",
        )?;
        root.draw_text(
            &format!("n = {total}; shading and percentages are per actual class (row)"),
            &text_style(14.0, GREY, HPos::Center, VPos::Center),
            (w as i32 / 2, CM_TOP + grid + 36),
        )?;
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// 4. Reliability diagram
// ---------------------------------------------------------------------------

/// Reliability diagram as in Guo et al. (2017): per confidence bin, a bar of
/// the observed accuracy against the diagonal of perfect calibration, the gap
/// to the bin's mean confidence shaded red, and underneath a histogram of how
/// many samples fall in each bin (with the average confidence and accuracy
/// marked). With `bins_after`, the calibrated model is drawn on the right.
/// Size [`RELIABILITY_SIZE_SINGLE`] or [`RELIABILITY_SIZE_PAIR`].
pub fn reliability_diagram(
    path: &Path,
    bins_before: &[Bin],
    bins_after: Option<&[Bin]>,
    ece_before: f64,
    ece_after: Option<f64>,
) -> Result<(), FigureError> {
    if bins_before.is_empty() || bins_after.is_some_and(<[Bin]>::is_empty) {
        return Err(invalid("reliability_diagram: no bins"));
    }
    let size = if bins_after.is_some() {
        RELIABILITY_SIZE_PAIR
    } else {
        RELIABILITY_SIZE_SINGLE
    };
    render(path, size, |root| {
        let mut columns: Vec<(Area<'_>, &[Bin], String)> = Vec::new();
        match bins_after {
            Some(after) => {
                let (l, r) = root.split_horizontally(size.0 / 2);
                columns.push((
                    l,
                    bins_before,
                    format!("Before calibration (ECE = {})", fmt_metric(ece_before)),
                ));
                let ece = ece_after.map_or_else(|| "n/a".to_string(), fmt_metric);
                columns.push((r, after, format!("After calibration (ECE = {ece})")));
            }
            None => columns.push((
                root.clone(),
                bins_before,
                format!("Reliability (ECE = {})", fmt_metric(ece_before)),
            )),
        }
        for (area, bins, caption) in &columns {
            reliability_column(area, bins, caption)?;
        }
        Ok(())
    })
}

fn reliability_column(area: &Area<'_>, bins: &[Bin], caption: &str) -> Result<(), FigureError> {
    let (_, h) = area.dim_in_pixel();
    let (top, bottom) = area.split_vertically((f64::from(h) * 0.64) as u32);
    let x_lo = bins
        .iter()
        .map(|b| b.lower)
        .fold(f64::INFINITY, f64::min)
        .min(0.0);
    let x_hi = bins
        .iter()
        .map(|b| b.upper)
        .fold(f64::NEG_INFINITY, f64::max)
        .max(1.0);

    let mut chart = ChartBuilder::on(&top)
        .caption(caption, font(19.0))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(x_lo..x_hi, 0.0..1.0)?;
    chart
        .configure_mesh()
        .x_desc("Confidence")
        .y_desc("Accuracy")
        .label_style(font(14.0))
        .axis_desc_style(font(15.0))
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBColor(228, 228, 228))
        .draw()?;
    let bar = palette(0);
    let gap = RGBColor(214, 39, 40);
    chart
        .draw_series(bins.iter().filter_map(|b| {
            let acc = b.accuracy?;
            Some(Rectangle::new(
                [(b.lower, 0.0), (b.upper, acc.clamp(0.0, 1.0))],
                bar.mix(0.85).filled(),
            ))
        }))?
        .label("Accuracy")
        .legend(box_legend(bar.mix(0.85)));
    chart.draw_series(bins.iter().filter_map(|b| {
        let acc = b.accuracy?;
        Some(Rectangle::new(
            [(b.lower, 0.0), (b.upper, acc.clamp(0.0, 1.0))],
            RGBColor(20, 60, 110).stroke_width(1),
        ))
    }))?;
    chart
        .draw_series(bins.iter().filter_map(|b| {
            let (acc, conf) = (b.accuracy?, b.mean_confidence?);
            Some(Rectangle::new(
                [
                    (b.lower, acc.clamp(0.0, 1.0)),
                    (b.upper, conf.clamp(0.0, 1.0)),
                ],
                gap.mix(0.3).filled(),
            ))
        }))?
        .label("Gap to mean confidence")
        .legend(box_legend(gap.mix(0.3)));
    chart.draw_series(bins.iter().filter_map(|b| {
        let (acc, conf) = (b.accuracy?, b.mean_confidence?);
        Some(Rectangle::new(
            [
                (b.lower, acc.clamp(0.0, 1.0)),
                (b.upper, conf.clamp(0.0, 1.0)),
            ],
            gap.stroke_width(1),
        ))
    }))?;
    let diag = GREY.stroke_width(2);
    chart
        .draw_series(DashedLineSeries::new(
            vec![(0.0, 0.0), (1.0, 1.0)],
            8,
            6,
            diag,
        ))?
        .label("Perfect calibration")
        .legend(dashed_legend(diag));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .margin(10)
        .legend_area_size(30)
        .label_font(font(14.0))
        .background_style(WHITE.mix(0.9))
        .border_style(LIGHT_GREY)
        .draw()?;

    // Histogram of counts.
    let max_count = bins.iter().map(|b| b.count).max().unwrap_or(0).max(1);
    let total: usize = bins.iter().map(|b| b.count).sum();
    let mut hist = ChartBuilder::on(&bottom)
        .margin(12)
        .margin_top(4)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(x_lo..x_hi, 0.0..(max_count as f64 * 1.15))?;
    hist.configure_mesh()
        .x_desc("Confidence")
        .y_desc("Samples")
        .label_style(font(14.0))
        .axis_desc_style(font(15.0))
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBColor(228, 228, 228))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    let occupied = || bins.iter().filter(|b| b.count > 0);
    hist.draw_series(occupied().map(|b| {
        Rectangle::new(
            [(b.lower, 0.0), (b.upper, b.count as f64)],
            palette(0).mix(0.55).filled(),
        )
    }))?;
    hist.draw_series(occupied().map(|b| {
        Rectangle::new(
            [(b.lower, 0.0), (b.upper, b.count as f64)],
            RGBColor(20, 60, 110).stroke_width(1),
        )
    }))?;
    if total > 0 {
        let weighted = |f: fn(&Bin) -> Option<f64>| -> Option<f64> {
            let (sum, n) = bins.iter().fold((0.0, 0usize), |(s, n), b| match f(b) {
                Some(v) if v.is_finite() => (s + v * b.count as f64, n + b.count),
                _ => (s, n),
            });
            (n > 0).then(|| sum / n as f64)
        };
        let y_top = max_count as f64 * 1.15;
        if let Some(conf) = weighted(|b| b.mean_confidence) {
            let style = GREY.stroke_width(2);
            hist.draw_series(DashedLineSeries::new(
                vec![(conf, 0.0), (conf, y_top)],
                6,
                4,
                style,
            ))?
            .label(format!("Avg. confidence {conf:.3}"))
            .legend(dashed_legend(style));
        }
        if let Some(acc) = weighted(|b| b.accuracy) {
            let style = BLACK.stroke_width(2);
            hist.draw_series(LineSeries::new(vec![(acc, 0.0), (acc, y_top)], style))?
                .label(format!("Accuracy {acc:.3}"))
                .legend(solid_legend(style));
            hist.configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .margin(8)
                .legend_area_size(30)
                .label_font(font(13.0))
                .background_style(WHITE.mix(0.9))
                .border_style(LIGHT_GREY)
                .draw()?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// 5. Explanation grid
// ---------------------------------------------------------------------------

const GRID_TILE: u32 = 200;
const GRID_GAP: u32 = 8;
const GRID_LEFT: u32 = 170;
const GRID_HEADER: u32 = 44;
const GRID_BAR: u32 = 96;

/// Pixel size of the figure [`explanation_grid`] writes for `rows` rows of
/// `maps` attribution maps each.
pub fn explanation_grid_size(rows: usize, maps: usize) -> (u32, u32) {
    let cols = maps as u32 + 1;
    (
        GRID_LEFT + cols * GRID_TILE + (cols - 1) * GRID_GAP + GRID_BAR,
        GRID_HEADER + rows as u32 * (GRID_TILE + GRID_GAP) + 8,
    )
}

/// Explanation grid as in the original study's figure: one row per image,
/// the photo first, then each method's attribution map in viridis blended 50%
/// over the photo, with column titles, row titles on the left and a colour
/// bar. Every row must list the same methods in the same order. Size
/// [`explanation_grid_size`].
pub fn explanation_grid(path: &Path, rows: &[GridRow]) -> Result<(), FigureError> {
    let first = rows
        .first()
        .ok_or_else(|| invalid("explanation_grid: no rows"))?;
    let methods: Vec<&str> = first.maps.iter().map(|m| m.method.as_str()).collect();
    for row in rows {
        let names: Vec<&str> = row.maps.iter().map(|m| m.method.as_str()).collect();
        if names != methods {
            return Err(invalid(format!(
                "explanation_grid: row {:?} has methods {names:?}, expected {methods:?}",
                row.title
            )));
        }
        if row.image.width() == 0 || row.image.height() == 0 {
            return Err(invalid(format!(
                "explanation_grid: row {:?} has an empty image",
                row.title
            )));
        }
        for m in &row.maps {
            if m.width == 0 || m.height == 0 || m.values.len() != m.width * m.height {
                return Err(invalid(format!(
                    "explanation_grid: map {:?} of row {:?} has {} values for {}x{}",
                    m.method,
                    row.title,
                    m.values.len(),
                    m.width,
                    m.height
                )));
            }
        }
    }
    let size = explanation_grid_size(rows.len(), methods.len());
    let mut canvas = RgbImage::from_pixel(size.0, size.1, Rgb([255, 255, 255]));
    let tile_x = |c: u32| GRID_LEFT + c * (GRID_TILE + GRID_GAP);
    let tile_y = |r: u32| GRID_HEADER + r * (GRID_TILE + GRID_GAP);
    for (r, row) in rows.iter().enumerate() {
        let photo = imageops::resize(
            &row.image,
            GRID_TILE,
            GRID_TILE,
            imageops::FilterType::Triangle,
        );
        let y = tile_y(r as u32);
        imageops::replace(&mut canvas, &photo, i64::from(tile_x(0)), i64::from(y));
        for (c, map) in row.maps.iter().enumerate() {
            let tile = overlay(&photo, map);
            imageops::replace(
                &mut canvas,
                &tile,
                i64::from(tile_x(c as u32 + 1)),
                i64::from(y),
            );
        }
    }
    render_onto(path, canvas, |root| {
        let header = text_style(16.0, BLACK, HPos::Center, VPos::Center);
        let titles = std::iter::once("Image").chain(methods.iter().copied());
        for (c, title) in titles.enumerate() {
            let lines = wrap_text(root, title, &header, GRID_TILE - 8);
            draw_lines(
                root,
                &lines,
                (
                    (tile_x(c as u32) + GRID_TILE / 2) as i32,
                    (GRID_HEADER / 2) as i32,
                ),
                16.0,
                BLACK,
            )?;
        }
        let row_style = text_style(14.0, BLACK, HPos::Center, VPos::Center);
        for (r, row) in rows.iter().enumerate() {
            let lines = wrap_text(root, &row.title, &row_style, GRID_LEFT - 16);
            draw_lines(
                root,
                &lines,
                (
                    (GRID_LEFT / 2) as i32 - 2,
                    (tile_y(r as u32) + GRID_TILE / 2) as i32,
                ),
                14.0,
                BLACK,
            )?;
        }
        if !methods.is_empty() {
            let x0 = (tile_x(methods.len() as u32) + GRID_TILE + 14) as i32;
            let y0 = GRID_HEADER as i32 + 10;
            let y1 = y0 + (GRID_TILE as i32 * 2).min(size.1 as i32 - y0 - 20);
            draw_colorbar(
                root,
                (x0, y0, x0 + 16, y1),
                viridis_color,
                (0.0, 1.0),
                3,
                "attribution (normalised)",
            )?;
        }
        Ok(())
    })
}

/// Blends the viridis-coloured, bilinearly upsampled `map` 50% over `photo`.
fn overlay(photo: &RgbImage, map: &GridMap) -> RgbImage {
    let (w, h) = photo.dimensions();
    let value = |x: usize, y: usize| -> f32 {
        let v = map.values[y * map.width + x];
        if v.is_nan() {
            0.0
        } else {
            v.clamp(0.0, 1.0)
        }
    };
    RgbImage::from_fn(w, h, |x, y| {
        // Pixel centres map onto map-cell centres (align_corners = false).
        let fx = ((x as f32 + 0.5) * map.width as f32 / w as f32 - 0.5)
            .clamp(0.0, (map.width - 1) as f32);
        let fy = ((y as f32 + 0.5) * map.height as f32 / h as f32 - 0.5)
            .clamp(0.0, (map.height - 1) as f32);
        let (x0, y0) = (fx.floor() as usize, fy.floor() as usize);
        let (x1, y1) = ((x0 + 1).min(map.width - 1), (y0 + 1).min(map.height - 1));
        let (tx, ty) = (fx - x0 as f32, fy - y0 as f32);
        let top = value(x0, y0) * (1.0 - tx) + value(x1, y0) * tx;
        let bottom = value(x0, y1) * (1.0 - tx) + value(x1, y1) * tx;
        let heat = viridis(top * (1.0 - ty) + bottom * ty);
        let p = photo.get_pixel(x, y).0;
        Rgb(std::array::from_fn(|k| {
            (u16::from(p[k]) + u16::from(heat[k])).div_ceil(2) as u8
        }))
    })
}

// ---------------------------------------------------------------------------
// 6. Similarity heatmap
// ---------------------------------------------------------------------------

const HM_TOP: u32 = 64;
const HM_RIGHT: u32 = 120;
const HM_BOTTOM: u32 = 70;

fn heatmap_cell(n: usize) -> u32 {
    (640 / n.max(1) as u32).clamp(48, 170)
}

/// Method-by-method similarity matrix (e.g. rank correlation or top-k IoU of
/// attribution maps), coloured with viridis over `value_range`, each cell
/// labelled with its value to 2 decimals (NaN: "—", grey cell). The canvas is
/// `left + n * cell + 120` wide, where the left margin fits the longest method
/// name.
pub fn similarity_heatmap(
    path: &Path,
    methods: &[String],
    matrix: &[Vec<f64>],
    title: &str,
    value_range: (f64, f64),
) -> Result<(), FigureError> {
    let n = methods.len();
    if n == 0 {
        return Err(invalid("similarity_heatmap: no methods"));
    }
    if matrix.len() != n || matrix.iter().any(|r| r.len() != n) {
        return Err(invalid(format!(
            "similarity_heatmap: matrix must be {n}x{n} to match the methods"
        )));
    }
    let (lo, hi) = value_range;
    if !(lo.is_finite() && hi.is_finite() && hi > lo) {
        return Err(invalid(format!(
            "similarity_heatmap: bad value range {value_range:?}"
        )));
    }
    let font = ensure_font()?;
    let cell = heatmap_cell(n);
    // Left margin from the longest label, measured with the real font.
    let label_size = if cell >= 80 { 15.0 } else { 13.0 };
    let widest = methods
        .iter()
        .map(|m| backend::text_size(font, m, label_size).0.ceil() as u32)
        .max()
        .unwrap_or(120);
    let left = (widest + 30).clamp(90, 260);
    let size = (
        (left + n as u32 * cell + HM_RIGHT).max(420),
        HM_TOP + n as u32 * cell + HM_BOTTOM,
    );
    render(path, size, |root| {
        let left = left as i32;
        let cell = cell as i32;
        let top = HM_TOP as i32;
        let grid = cell * n as i32;
        root.draw_text(
            title,
            &text_style(20.0, BLACK, HPos::Center, VPos::Center),
            (size.0 as i32 / 2, top / 2),
        )?;
        let value_size = if cell >= 80 { 18.0 } else { 13.0 };
        for (i, row) in matrix.iter().enumerate() {
            for (j, &v) in row.iter().enumerate() {
                let (x0, y0) = (left + cell * j as i32, top + cell * i as i32);
                let bg = if v.is_finite() {
                    viridis_color((v - lo) / (hi - lo))
                } else {
                    RGBColor(225, 225, 225)
                };
                root.draw(&Rectangle::new(
                    [(x0, y0), (x0 + cell, y0 + cell)],
                    bg.filled(),
                ))?;
                root.draw(&Rectangle::new(
                    [(x0, y0), (x0 + cell, y0 + cell)],
                    WHITE.stroke_width(2),
                ))?;
                let label = if v.is_finite() {
                    format!("{v:.2}")
                } else {
                    "—".to_string()
                };
                root.draw_text(
                    &label,
                    &text_style(value_size, text_on(bg), HPos::Center, VPos::Center),
                    (x0 + cell / 2, y0 + cell / 2),
                )?;
            }
        }
        let row_style = text_style(label_size, BLACK, HPos::Right, VPos::Center);
        let col_style = text_style(label_size, BLACK, HPos::Center, VPos::Center);
        for (k, m) in methods.iter().enumerate() {
            root.draw_text(m, &row_style, (left - 10, top + cell * k as i32 + cell / 2))?;
            let lines = wrap_text(root, m, &col_style, (cell - 6) as u32);
            let line_h = (label_size * 1.25) as i32;
            draw_lines(
                root,
                &lines,
                (
                    left + cell * k as i32 + cell / 2,
                    top + grid + 14 + line_h * (lines.len() as i32 - 1) / 2,
                ),
                label_size,
                BLACK,
            )?;
        }
        draw_colorbar(
            root,
            (left + grid + 20, top, left + grid + 36, top + grid),
            viridis_color,
            (lo, hi),
            5,
            "",
        )?;
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// 7. Deletion / insertion
// ---------------------------------------------------------------------------

/// Trapezoidal area under `y(x)`.
fn trapezoid(x: &[f64], y: &[f64]) -> f64 {
    x.windows(2)
        .zip(y.windows(2))
        .map(|(xs, ys)| (xs[1] - xs[0]) * (ys[0] + ys[1]) / 2.0)
        .sum()
}

/// Deletion (left) and insertion (right) curves, one line per method, with
/// each curve's area in the legend (deletion: lower is better; insertion:
/// higher is better). Size [`DELETION_INSERTION_SIZE`].
pub fn deletion_insertion(
    path: &Path,
    curves: &[DeletionInsertionCurve],
) -> Result<(), FigureError> {
    if curves.is_empty() {
        return Err(invalid("deletion_insertion: no curves"));
    }
    for c in curves {
        if c.fractions.len() != c.deletion.len() || c.fractions.len() != c.insertion.len() {
            return Err(invalid(format!(
                "deletion_insertion: {:?} has {} fractions, {} deletion and {} insertion values",
                c.method,
                c.fractions.len(),
                c.deletion.len(),
                c.insertion.len()
            )));
        }
    }
    let (x_lo, x_hi) = finite_range(curves.iter().flat_map(|c| c.fractions.iter().copied()))
        .map_or((0.0, 1.0), |(lo, hi)| (lo.min(0.0), hi.max(1.0)));
    render(path, DELETION_INSERTION_SIZE, |root| {
        let (left, right) = root.split_horizontally(DELETION_INSERTION_SIZE.0 / 2);
        let panels: [(&Area<'_>, &str, &str, bool); 2] = [
            (
                &left,
                "Deletion (lower AUC is better)",
                "Fraction of pixels removed",
                true,
            ),
            (
                &right,
                "Insertion (higher AUC is better)",
                "Fraction of pixels inserted",
                false,
            ),
        ];
        for (area, caption, x_desc, deletion) in panels {
            let mut chart = ChartBuilder::on(area)
                .caption(caption, font(19.0))
                .margin(12)
                .x_label_area_size(44)
                .y_label_area_size(56)
                .build_cartesian_2d(x_lo..x_hi, 0.0..1.02)?;
            chart
                .configure_mesh()
                .x_desc(x_desc)
                .y_desc("Class probability")
                .label_style(font(14.0))
                .axis_desc_style(font(15.0))
                .light_line_style(TRANSPARENT)
                .bold_line_style(RGBColor(228, 228, 228))
                .draw()?;
            for (i, c) in curves.iter().enumerate() {
                let ys = if deletion { &c.deletion } else { &c.insertion };
                let pts: Vec<(f64, f64)> = c
                    .fractions
                    .iter()
                    .copied()
                    .zip(ys.iter().copied())
                    .filter(|(x, y)| x.is_finite() && y.is_finite())
                    .collect();
                let (xs, ys): (Vec<f64>, Vec<f64>) = pts.iter().copied().unzip();
                let style = palette(i).stroke_width(2);
                chart
                    .draw_series(LineSeries::new(pts, style))?
                    .label(format!("{} (AUC = {:.3})", c.method, trapezoid(&xs, &ys)))
                    .legend(solid_legend(style));
            }
            chart
                .configure_series_labels()
                .position(if deletion {
                    SeriesLabelPosition::UpperRight
                } else {
                    SeriesLabelPosition::LowerRight
                })
                .margin(8)
                .legend_area_size(32)
                .label_font(font(14.0))
                .background_style(WHITE.mix(0.85))
                .border_style(LIGHT_GREY)
                .draw()?;
        }
        Ok(())
    })
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

    #[test]
    fn trapezoid_of_line_is_half() {
        assert!((trapezoid(&[0.0, 0.5, 1.0], &[0.0, 0.5, 1.0]) - 0.5).abs() < 1e-12);
    }
}
