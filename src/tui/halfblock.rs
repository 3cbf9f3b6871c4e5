//! Images as Unicode half blocks.
//!
//! Each cell shows two vertically stacked pixels: "▀" with the top pixel as
//! foreground and the bottom pixel as background. Terminal cells are about
//! twice as tall as wide, so these pixels are roughly square. This works in
//! every colour terminal, over SSH and inside tmux, and in ratatui's
//! `TestBackend`, so it is both the fallback when no graphics protocol is
//! available and what snapshot tests see.

use image::RgbImage;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;

use crate::progress::HeatmapData;
use crate::tui::colormap::viridis;

/// Cell rectangle an image of `src_w`×`src_h` pixels occupies when fitted
/// (aspect kept, centred) into `area` at two pixels per cell row.
pub fn fit(src_w: usize, src_h: usize, area: Rect) -> Rect {
    if src_w == 0 || src_h == 0 || area.width == 0 || area.height == 0 {
        return Rect::new(area.x, area.y, 0, 0);
    }
    let max_w = area.width as f64;
    let max_h = area.height as f64 * 2.0;
    let scale = (max_w / src_w as f64).min(max_h / src_h as f64);
    let w = ((src_w as f64 * scale).round() as u16).clamp(1, area.width);
    let px_h = ((src_h as f64 * scale).round() as u16).max(1);
    let h = px_h.div_ceil(2).clamp(1, area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

/// Draws pixels given by `pixel(x, y, x_end, y_end)` (a source box to
/// average) fitted into `area`; returns the cells used.
fn draw(
    src_w: usize,
    src_h: usize,
    area: Rect,
    buf: &mut Buffer,
    pixel: impl Fn(usize, usize, usize, usize) -> [u8; 3],
) -> Rect {
    let rect = fit(src_w, src_h, area);
    if rect.width == 0 {
        return rect;
    }
    let dw = rect.width as usize;
    let dh = rect.height as usize * 2;
    let span = |d: usize, n: usize, src: usize| {
        let a = d * src / n;
        let b = ((d + 1) * src / n).max(a + 1).min(src);
        (a.min(src - 1), b)
    };
    for cy in 0..rect.height as usize {
        for cx in 0..dw {
            let (x0, x1) = span(cx, dw, src_w);
            let (t0, t1) = span(cy * 2, dh, src_h);
            let (b0, b1) = span(cy * 2 + 1, dh, src_h);
            let top = pixel(x0, t0, x1, t1);
            let bottom = pixel(x0, b0, x1, b1);
            if let Some(cell) = buf.cell_mut((rect.x + cx as u16, rect.y + cy as u16)) {
                cell.set_symbol("▀")
                    .set_fg(Color::Rgb(top[0], top[1], top[2]))
                    .set_bg(Color::Rgb(bottom[0], bottom[1], bottom[2]));
            }
        }
    }
    rect
}

/// Draws a photo (box-averaged down, nearest up); returns the cells used.
pub fn render_rgb(img: &RgbImage, area: Rect, buf: &mut Buffer) -> Rect {
    let (w, h) = (img.width() as usize, img.height() as usize);
    draw(w, h, area, buf, |x0, y0, x1, y1| {
        let mut sum = [0u64; 3];
        let mut n = 0u64;
        // Average at most a 16x16 grid of samples per pixel to bound the cost.
        let sx = (x1 - x0).div_ceil(16).max(1);
        let sy = (y1 - y0).div_ceil(16).max(1);
        for y in (y0..y1).step_by(sy) {
            for x in (x0..x1).step_by(sx) {
                let p = img.get_pixel(x as u32, y as u32).0;
                for c in 0..3 {
                    sum[c] += p[c] as u64;
                }
                n += 1;
            }
        }
        let n = n.max(1);
        [(sum[0] / n) as u8, (sum[1] / n) as u8, (sum[2] / n) as u8]
    })
}

/// Mean value of a heatmap box (NaN-free; out-of-range values are clamped later).
fn heat_value(map: &HeatmapData, x0: usize, y0: usize, x1: usize, y1: usize) -> f32 {
    let mut sum = 0.0f32;
    let mut n = 0u32;
    for y in y0..y1 {
        for x in x0..x1 {
            if let Some(v) = map.values.get(y * map.width + x) {
                if v.is_finite() {
                    sum += v;
                    n += 1;
                }
            }
        }
    }
    if n == 0 {
        0.0
    } else {
        sum / n as f32
    }
}

/// Draws a heatmap through the viridis colour map; returns the cells used.
pub fn render_heatmap(map: &HeatmapData, area: Rect, buf: &mut Buffer) -> Rect {
    if map.values.len() < map.width * map.height {
        return Rect::new(area.x, area.y, 0, 0);
    }
    draw(map.width, map.height, area, buf, |x0, y0, x1, y1| {
        viridis(heat_value(map, x0, y0, x1, y1))
    })
}

/// A heatmap (viridis) blended over the photo at `opacity` in [0, 1]: how
/// a dermatologist reads a saliency map, against the lesion itself. The map
/// is sampled nearest-neighbour at the photo's resolution (maps are smaller).
pub fn overlay_image(photo: &RgbImage, map: &HeatmapData, opacity: f32) -> Option<RgbImage> {
    let (pw, ph) = (photo.width() as usize, photo.height() as usize);
    if pw == 0
        || ph == 0
        || map.width == 0
        || map.height == 0
        || map.values.len() < map.width * map.height
    {
        return None;
    }
    let a = if opacity.is_finite() {
        opacity.clamp(0.0, 1.0)
    } else {
        0.5
    };
    Some(RgbImage::from_fn(pw as u32, ph as u32, |x, y| {
        let mx = (x as usize * map.width / pw).min(map.width - 1);
        let my = (y as usize * map.height / ph).min(map.height - 1);
        let heat = viridis(map.values[my * map.width + mx]);
        let p = photo.get_pixel(x, y).0;
        let mix = |i: usize| ((1.0 - a) * p[i] as f32 + a * heat[i] as f32).round() as u8;
        image::Rgb([mix(0), mix(1), mix(2)])
    }))
}

/// A heatmap as an RGB image (for graphics protocols and screenshots).
pub fn heatmap_image(map: &HeatmapData) -> Option<RgbImage> {
    if map.width == 0 || map.height == 0 || map.values.len() < map.width * map.height {
        return None;
    }
    Some(RgbImage::from_fn(
        map.width as u32,
        map.height as u32,
        |x, y| image::Rgb(viridis(map.values[y as usize * map.width + x as usize])),
    ))
}
