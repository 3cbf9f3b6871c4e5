//! The look-alike pictures: a lesion blob whose colour, size, outline and
//! texture depend on the class, on a skin tone that depends on the patient,
//! with dermoscope-like dark corners and pixel noise. The blob's shape and
//! place come from the lesion's seed and only a small jitter from the image's,
//! so images of one lesion are near-duplicates.

use image::ImageEncoder;
use rand::Rng;

use super::{person, rng_for, Layout, LookalikeSpec, Row};

/// How a class looks: ink colour, radius (share of the short side),
/// outline irregularity, edge softness and texture.
fn look(class: &str) -> ([f32; 3], f32, f32, f32, f32) {
    match class {
        "mel" | "MEL" | "melanoma" | "1" => ([70.0, 40.0, 38.0], 0.30, 0.28, 0.04, 0.35),
        "nv" | "NV" | "NEV" | "naevus" | "0" => ([135.0, 88.0, 60.0], 0.20, 0.04, 0.12, 0.0),
        "bcc" | "BCC" => ([205.0, 140.0, 145.0], 0.22, 0.12, 0.06, 0.15),
        "bkl" | "BKL" | "SEK" => ([165.0, 120.0, 75.0], 0.26, 0.14, 0.05, 0.25),
        "akiec" | "AK" | "ACK" => ([195.0, 95.0, 85.0], 0.18, 0.16, 0.15, 0.1),
        "df" | "DF" => ([150.0, 100.0, 95.0], 0.14, 0.05, 0.2, 0.0),
        "vasc" | "VASC" => ([150.0, 40.0, 75.0], 0.15, 0.08, 0.05, 0.0),
        _ => ([175.0, 75.0, 65.0], 0.24, 0.22, 0.08, 0.2), // SCC
    }
}

/// Skin tones of Fitzpatrick types I to VI.
const SKIN: [[f32; 3]; 6] = [
    [245.0, 215.0, 195.0],
    [232.0, 192.0, 165.0],
    [212.0, 168.0, 136.0],
    [180.0, 132.0, 98.0],
    [138.0, 94.0, 64.0],
    [92.0, 64.0, 46.0],
];

/// Everything one picture needs, drawn from the patient, lesion and row seeds.
pub(super) struct Picture {
    skin: [f32; 3],
    ink: [f32; 3],
    radius: f32,
    wobble: f32,
    edge: f32,
    texture: f32,
    centre: (f32, f32),
    aspect: f32,
    angle: f32,
    harmonics: [f32; 4],
    brightness: f32,
    noise_seed: u64,
}

pub(super) fn picture(layout: Layout, seed: u64, index: usize, r: &Row) -> Picture {
    let (ink, radius, wobble, edge, texture) = look(layout.classes().0[r.class]);
    let mut lesion = rng_for(seed, 2, r.lesion);
    let mut jitter = rng_for(seed, 3, index);
    let mut j = |s: f32| jitter.gen_range(-s..=s);
    let (jx, jy, ja, jr, jb) = (j(0.02), j(0.02), j(0.15), j(0.05), j(0.05));
    let mut l = |lo: f32, hi: f32| lesion.gen_range(lo..=hi);
    Picture {
        skin: SKIN[person(seed, r.patient).fitzpatrick - 1],
        ink,
        radius: radius * l(0.85, 1.15) * (1.0 + jr),
        wobble,
        edge,
        texture,
        centre: (0.5 + l(-0.08, 0.08) + jx, 0.5 + l(-0.08, 0.08) + jy),
        aspect: l(0.8, 1.25),
        angle: l(0.0, std::f32::consts::PI) + ja,
        harmonics: [l(-1.0, 1.0), l(-1.0, 1.0), l(-1.0, 1.0), l(-1.0, 1.0)],
        brightness: 1.0 + jb,
        noise_seed: jitter.gen::<u64>() | 1,
    }
}

/// RGB8 pixels: skin with a dermoscope's dark corners, the blob (soft-edged,
/// darker and textured inside) and per-pixel noise.
pub(super) fn paint(w: u32, h: u32, p: &Picture) -> Vec<u8> {
    let (wf, hf) = (w as f32, h as f32);
    let scale = 1.0 / (p.radius * wf.min(hf));
    let (cx, cy) = (p.centre.0 * wf, p.centre.1 * hf);
    let (cos, sin) = (p.angle.cos(), p.angle.sin());
    let [h0, h1, h2, h3] = p.harmonics;
    let ex2: Vec<f32> = (0..w)
        .map(|x| (2.0 * x as f32 / wf - 1.0).powi(2))
        .collect();
    let mut out = vec![0u8; (w * h * 3) as usize];
    let mut state = p.noise_seed;
    for (y, line) in out.chunks_exact_mut(3 * w as usize).enumerate() {
        let ey2 = (2.0 * y as f32 / hf - 1.0).powi(2);
        let dy = (y as f32 - cy) * scale;
        for (x, px) in line.chunks_exact_mut(3).enumerate() {
            let dx = (x as f32 - cx) * scale;
            let u = (dx * cos + dy * sin) * p.aspect;
            let v = (dy * cos - dx * sin) / p.aspect;
            let r2 = u * u + v * v;
            let (mut t, mut shade) = (0.0, 1.0);
            if r2 < 2.5 {
                let r = r2.sqrt().max(1e-6);
                let (c, s) = (u / r, v / r);
                let (c2, s2) = (c * c - s * s, 2.0 * c * s);
                let (c3, s3) = (c * c2 - s * s2, s * c2 + c * s2);
                let bound = 1.0 + p.wobble * (h0 * c2 + h1 * s2 + 0.6 * (h2 * c3 + h3 * s3));
                t = ((bound - r) / p.edge).clamp(0.0, 1.0);
                let net = ((7.0 * u).sin() * (7.0 * v).sin()).abs();
                shade = (0.8 + 0.25 * r / bound) * (1.0 - p.texture * net);
            }
            let d2 = ex2[x] + ey2;
            let vignette = if d2 > 1.0 {
                (1.6 - 0.6 * d2).max(0.25)
            } else {
                1.0
            };
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = ((state >> 56) as f32 - 128.0) * 0.05;
            let gain = p.brightness * vignette;
            for ((out, skin), ink) in px.iter_mut().zip(p.skin).zip(p.ink) {
                let colour = skin + (ink * shade - skin) * t;
                // `as u8` saturates, so no clamp is needed.
                *out = (colour * gain + noise) as u8;
            }
        }
    }
    out
}

/// JPEG at the spec's quality, or PNG for PAD-UFES-20 (its photos are PNGs).
pub(super) fn encode(
    layout: Layout,
    pixels: &[u8],
    spec: &LookalikeSpec,
) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let (w, h, rgb) = (spec.width, spec.height, image::ExtendedColorType::Rgb8);
    let done = match layout {
        Layout::PadUfes20 => image::codecs::png::PngEncoder::new_with_quality(
            &mut out,
            image::codecs::png::CompressionType::Fast,
            image::codecs::png::FilterType::Sub,
        )
        .write_image(pixels, w, h, rgb),
        _ => image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, spec.jpeg_quality)
            .write_image(pixels, w, h, rgb),
    };
    done.map(|_| out).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::super::row;
    use super::*;

    /// A 64x48 HAM10000 picture of `class` for lesion (and patient) `lesion`.
    fn pixels(class: usize, lesion: usize, index: usize) -> Vec<u8> {
        let r = row(class, lesion, lesion, false);
        paint(64, 48, &picture(Layout::Ham10000, 1, index, &r))
    }

    fn distance(a: &[u8], b: &[u8]) -> f64 {
        let sum: f64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| (*x as f64 - *y as f64).abs())
            .sum();
        sum / a.len() as f64
    }

    /// Mean value of the central 16x12 pixels, where every blob lies.
    fn centre(px: &[u8]) -> f64 {
        let (mut sum, mut n) = (0.0, 0.0);
        for y in 18..30 {
            for x in 24..40 {
                sum += px[(y * 64 + x) * 3..][..3]
                    .iter()
                    .map(|&v| v as f64)
                    .sum::<f64>();
                n += 3.0;
            }
        }
        sum / n
    }

    #[test]
    fn the_class_shows_where_the_lesion_is() {
        let mean = |class: usize| (0..20).map(|l| centre(&pixels(class, l, l))).sum::<f64>() / 20.0;
        // HAM10000 classes 4 = mel (dark), 5 = nv (brown), 1 = bcc (pink).
        let (mel, nv, bcc) = (mean(4), mean(5), mean(1));
        assert!(mel + 30.0 < nv && nv + 30.0 < bcc, "{mel} {nv} {bcc}");
    }

    #[test]
    fn images_of_one_lesion_are_near_duplicates() {
        let (mut same, mut other) = (0.0, 0.0);
        for lesion in 0..10 {
            let a = pixels(5, lesion, 2 * lesion);
            same += distance(&a, &pixels(5, lesion, 2 * lesion + 1));
            other += distance(&a, &pixels(5, lesion + 100, 2 * lesion + 1));
            assert_ne!(
                a,
                pixels(5, lesion, 2 * lesion + 1),
                "jitter and noise differ"
            );
        }
        assert!(
            same < 0.5 * other,
            "same lesion {same}, other lesions {other}"
        );
    }
}
