//! A small generated data set for tests: two classes whose images differ in
//! colour and texture, so a few epochs separate them.

use std::path::Path;

use image::{Rgb, RgbImage};

/// Writes `per_class` PNG/JPEG images per class into `root/{melanoma,naevus}`.
pub fn make(root: &Path, per_class: usize, size: u32) {
    for (c, class) in ["melanoma", "naevus"].iter().enumerate() {
        let dir = root.join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per_class {
            let mut img = RgbImage::new(size, size);
            for (x, y, p) in img.enumerate_pixels_mut() {
                let t = ((x * 7 + y * 3 + i as u32 * 11) % 64) as u8;
                let centre = ((x as i32 - size as i32 / 2).pow(2)
                    + (y as i32 - size as i32 / 2).pow(2))
                    < (size as i32 / 3).pow(2);
                *p = if centre {
                    if c == 0 {
                        Rgb([40 + t, 20, 30 + t / 2])
                    } else {
                        Rgb([150 + t / 2, 110 + t / 2, 80])
                    }
                } else {
                    Rgb([200, 170 + t / 4, 150])
                };
            }
            let ext = if i % 2 == 0 { "png" } else { "jpg" };
            img.save(dir.join(format!("{class}_{i:02}.{ext}"))).unwrap();
        }
    }
}
