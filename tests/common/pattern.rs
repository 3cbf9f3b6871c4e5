//! The deterministic model input shared with the Python fixture generators
//! (also the explain bench's fallback input: benches/common includes this file).

/// The deterministic input pattern of scripts/fixtures/gen_logits.py, `(3,size,size)` row-major.
pub fn pattern(size: usize) -> Vec<f32> {
    let mut v = Vec::with_capacity(3 * size * size);
    for c in 0..3 {
        for i in 0..size {
            for j in 0..size {
                let x = 1.5
                    * (0.031 * (i + 1) as f64 * (c + 1) as f64).sin()
                    * (0.017 * (j + 1) as f64 + 0.5 * c as f64).cos();
                v.push(x as f32);
            }
        }
    }
    v
}
