//! The bitmap backend with correct text layout (own module so that the
//! backend traits' methods do not clash with plotters' `Color` methods).

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
