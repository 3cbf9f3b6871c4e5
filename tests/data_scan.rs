//! ImageFolder scan rules and bad files: convert what can be converted, skip and
//! list what cannot, never abort; clear errors for missing folders and empty classes.

mod common;

use image::{GrayImage, ImageBuffer, Luma, Rgb, RgbImage, Rgba, RgbaImage};
use melxai::data::cache::ImageCache;
use melxai::data::scan::scan;

#[test]
fn scan_converts_odd_formats_and_skips_broken_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mel = root.join("melanoma");
    let nae = root.join("naevus");
    std::fs::create_dir_all(&mel).unwrap();
    std::fs::create_dir_all(&nae).unwrap();
    std::fs::create_dir_all(root.join(".hidden_class")).unwrap();
    RgbImage::from_pixel(20, 10, Rgb([200, 10, 10]))
        .save(mel.join("rgb.JPG"))
        .unwrap();
    GrayImage::from_pixel(12, 12, Luma([77]))
        .save(mel.join("grey.png"))
        .unwrap();
    RgbaImage::from_pixel(12, 12, Rgba([1, 2, 3, 128]))
        .save(mel.join("alpha.png"))
        .unwrap();
    let deep: ImageBuffer<Rgb<u16>, Vec<u16>> =
        ImageBuffer::from_pixel(9, 9, Rgb([60000, 100, 30000]));
    deep.save(nae.join("deep16.png")).unwrap();
    RgbImage::from_pixel(16, 16, Rgb([1, 200, 1]))
        .save(nae.join("ok.bmp"))
        .unwrap();
    std::fs::write(nae.join("empty.jpg"), b"").unwrap();
    let jpeg = std::fs::read(mel.join("rgb.JPG")).unwrap();
    std::fs::write(nae.join("truncated.jpg"), &jpeg[..jpeg.len() / 3]).unwrap();
    std::fs::write(nae.join("notes.txt"), b"not an image").unwrap();
    std::fs::write(nae.join(".DS_Store"), b"junk").unwrap();

    let s = scan(root, true).expect("scan must not abort on bad files");
    assert_eq!(
        s.classes,
        vec!["melanoma", "naevus"],
        "hidden folders ignored, classes sorted"
    );
    let ids: Vec<&str> = s.samples.iter().map(|x| x.id.as_str()).collect();
    assert_eq!(
        ids,
        vec![
            "melanoma/alpha.png",
            "melanoma/grey.png",
            "melanoma/rgb.JPG",
            "naevus/deep16.png",
            "naevus/ok.bmp"
        ]
    );
    assert_eq!(s.class_counts(), vec![3, 2]);
    let mut skipped: Vec<String> = s
        .skipped
        .iter()
        .map(|k| k.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    skipped.sort();
    assert_eq!(skipped, vec!["empty.jpg", "notes.txt", "truncated.jpg"]);
    assert!(s.skipped.iter().all(|k| !k.reason.is_empty()));

    // Every kept file decodes to 3-channel tensors of the requested size.
    let cache = ImageCache::build(&s.samples, [8, 8]).unwrap();
    assert_eq!(cache.images.size(), vec![5, 3, 8, 8]);
    assert!(cache.skipped.is_empty());
}

#[test]
fn missing_folder_and_empty_class_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = scan(&missing, false).unwrap_err().to_string();
    assert!(
        err.contains("does not exist") && err.contains("nope"),
        "{err}"
    );

    std::fs::create_dir_all(dir.path().join("melanoma")).unwrap();
    std::fs::create_dir_all(dir.path().join("naevus")).unwrap();
    RgbImage::new(4, 4)
        .save(dir.path().join("naevus/a.png"))
        .unwrap();
    let err = scan(dir.path(), false).unwrap_err().to_string();
    assert!(
        err.contains("melanoma") && err.contains("no images"),
        "{err}"
    );
}

#[test]
fn class_with_only_broken_files_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("melanoma")).unwrap();
    std::fs::create_dir_all(dir.path().join("naevus")).unwrap();
    std::fs::write(dir.path().join("melanoma/bad.jpg"), b"garbage").unwrap();
    RgbImage::new(4, 4)
        .save(dir.path().join("naevus/a.png"))
        .unwrap();
    let err = scan(dir.path(), true).unwrap_err().to_string();
    assert!(
        err.contains("melanoma") && err.contains("no readable images"),
        "{err}"
    );
}
