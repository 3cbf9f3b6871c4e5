//! Perceptually ordered colour maps for heatmaps (viridis by default: its
//! lightness rises monotonically, so "more red" never lies as jet does).

/// Viridis at `t` in [0, 1] as RGB8. Degree-6 polynomial fit of matplotlib's
/// viridis (max error below 1/255 per channel), after Matt Zucker's CC0 fit.
pub fn viridis(t: f32) -> [u8; 3] {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0) as f64
    } else {
        0.0
    };
    const C: [[f64; 3]; 7] = [
        [
            0.277_727_327_223_417_7,
            0.005_407_344_544_966_578,
            0.334_099_805_335_306_1,
        ],
        [
            0.105_093_043_108_577_4,
            1.404_613_529_898_575,
            1.384_590_162_594_685,
        ],
        [
            -0.330_861_828_725_556_3,
            0.214_847_559_468_213,
            0.095_095_163_028_236_59,
        ],
        [
            -4.634_230_498_983_486,
            -5.799_100_973_351_585,
            -19.332_440_956_279_87,
        ],
        [
            6.228_269_936_347_081,
            14.179_933_366_805_09,
            56.690_552_600_681_05,
        ],
        [
            4.776_384_997_670_288,
            -13.745_145_377_746_01,
            -65.353_032_633_372_34,
        ],
        [
            -5.435_455_855_934_631,
            4.645_852_612_178_535,
            26.312_435_249_583_2,
        ],
    ];
    let mut out = [0u8; 3];
    for (ch, o) in out.iter_mut().enumerate() {
        let mut v = C[6][ch];
        for k in (0..6).rev() {
            v = C[k][ch] + t * v;
        }
        *o = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_monotone_lightness() {
        assert_eq!(viridis(0.0), [71, 1, 85]);
        let end = viridis(1.0);
        assert!(end[0] > 240 && end[1] > 220 && end[2] < 50, "{end:?}");
        let luma = |c: [u8; 3]| 0.299 * c[0] as f64 + 0.587 * c[1] as f64 + 0.114 * c[2] as f64;
        let mut prev = -1.0;
        for i in 0..=20 {
            let l = luma(viridis(i as f32 / 20.0));
            assert!(l > prev, "lightness must rise");
            prev = l;
        }
    }
}
