//! Fault injection: the real binary on a generated corpus of bad inputs,
//! broken checkpoints, torn writes, concurrent runs and a full disk.
//!
//! Every case asserts the exit code (2 for bad input, never a panic's 101 or
//! an abort's 134), that the message names the file or key, and that no user
//! file changed. Classes covered: lying / zero-size / non-finite / odd-dtype
//! `.npy` inputs and heatmaps; truncated, corrupt, rotated, oddly named and
//! symlinked images; a data root that is a file; one class folder; invalid
//! checkpoint metadata; mismatched and torn checkpoint parts; stale temp
//! files; `--resume` with nothing to resume; two trainings of one name; kill
//! -9 during training; a full output disk (tmpfs, skipped where it cannot be
//! mounted).

mod common;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use image::{Rgb, RgbImage};
use melxai::data::npy;

const SIDE: u32 = 32;

use common::cli::{assert_refused, melxai as bin, run, text};

/// Asserts two snapshots are equal, naming the files that differ.
fn assert_unchanged(before: &BTreeMap<PathBuf, Vec<u8>>, after: &BTreeMap<PathBuf, Vec<u8>>) {
    let changed: Vec<&PathBuf> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .collect();
    assert!(changed.is_empty(), "files changed: {changed:?}");
}

/// Asserts a refused bad input: exit 2, a message holding every `needle`.
/// Every file under `dir` with its bytes (to prove nothing changed). Run lock
/// files (`.<name>.lock`, empty of user data) are machinery and left out.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() && !p.to_string_lossy().ends_with(".lock") {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn lesion(class: usize, i: u32) -> RgbImage {
    RgbImage::from_fn(SIDE, SIDE, |x, y| {
        let t = ((x * 7 + y * 3 + i * 11) % 64) as u8;
        let centre = (x as i32 - 16).pow(2) + (y as i32 - 16).pow(2) < 100;
        match (centre, class) {
            (true, 0) => Rgb([40 + t, 20, 30 + t / 2]),
            (true, _) => Rgb([150 + t / 2, 110 + t / 2, 80]),
            _ => Rgb([200, 170 + t / 4, 150]),
        }
    })
}

fn jpeg_bytes(img: &RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

/// A project folder: config.toml (CPU, tiny untrained Lite0 at 32 px), data/.
fn project(dir: &Path) {
    for (c, class) in ["melanoma", "naevus"].iter().enumerate() {
        let d = dir.join("data").join(class);
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..8 {
            lesion(c, i)
                .save(d.join(format!("{class}_{i}.png")))
                .unwrap();
        }
    }
    std::fs::write(
        dir.join("config.toml"),
        r#"device = "cpu"
[data]
root = "data"
positive_class = "melanoma"
[model]
arch = "lite0"
weights_dir = "weights"
[train]
name = "base"
epochs = 1
batch_size = 8
pretrained = false
input_size = 32
patience = 0
test_fraction = 0.25
val_fraction = 0.25
"#,
    )
    .unwrap();
}

/// A project with one trained checkpoint `weights/base`, built once and
/// copied per test. Its data set also holds the bad files the scan must list.
fn trained() -> &'static (PathBuf, String) {
    static BASE: OnceLock<(PathBuf, String)> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("faults-fixture");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        project(&dir);
        let mel = dir.join("data/melanoma");
        let full = jpeg_bytes(&lesion(0, 99));
        std::fs::write(mel.join("truncated.jpg"), &full[..full.len() * 2 / 3]).unwrap();
        std::fs::write(mel.join("garbage.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
        std::os::unix::fs::symlink(mel.join("gone.png"), mel.join("dangling.png")).unwrap();
        std::os::unix::fs::symlink(mel.join("loop-b.png"), mel.join("loop-a.png")).unwrap();
        std::os::unix::fs::symlink(mel.join("loop-a.png"), mel.join("loop-b.png")).unwrap();
        let o = run(&dir, &["train"]);
        let t = text(&o);
        assert_eq!(
            o.status.code(),
            Some(0),
            "training the fixture failed:\n{t}"
        );
        (dir, t)
    })
}

/// A fresh copy of the trained project.
fn copy_project() -> tempfile::TempDir {
    let (src, _) = trained();
    let dst = tempfile::tempdir().unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", src.display()))
        .arg(dst.path())
        .status()
        .unwrap();
    assert!(status.success());
    dst
}

fn write_npy_raw(path: &Path, descr: &str, fortran: bool, shape: &str, data: &[u8]) {
    let mut dict = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
        if fortran { "True" } else { "False" }
    );
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    b.extend_from_slice(dict.as_bytes());
    b.extend_from_slice(data);
    std::fs::write(path, b).unwrap();
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn scan_lists_truncated_corrupt_and_symlinked_files() {
    let (_, log) = trained();
    for (file, why) in [
        ("truncated.jpg", "truncated JPEG"),
        ("garbage.png", ""),
        ("dangling.png", "dangling symbolic link"),
        ("loop-a.png", "symbolic link loop"),
    ] {
        let line = log
            .lines()
            .find(|l| l.contains("skipped") && l.contains(file))
            .unwrap_or_else(|| panic!("{file} not listed as skipped:\n{log}"));
        assert!(line.contains(why), "{line}");
    }
}

#[test]
fn lying_zero_size_and_non_finite_npy_inputs_are_refused() {
    let p = copy_project();
    let d = p.path();
    let before = snapshot(&d.join("weights"));
    let n = (3 * SIDE * SIDE) as usize;
    let ok = f32_bytes(&vec![0.1; n]);
    // 176-byte file promising (3,2048,2048): the heap over-read of the issue.
    write_npy_raw(
        &d.join("lying.npy"),
        "<f4",
        false,
        "(3, 2048, 2048)",
        &ok[..48],
    );
    write_npy_raw(&d.join("zero.npy"), "<f4", false, "(3, 0, 224)", &[]);
    let mut nan = vec![0.1f32; n];
    nan[5] = f32::NAN;
    nan[7] = f32::INFINITY;
    write_npy_raw(
        &d.join("nan.npy"),
        "<f4",
        false,
        "(3, 32, 32)",
        &f32_bytes(&nan),
    );
    write_npy_raw(&d.join("tiny.npy"), "<f4", false, "(3, 2, 2)", &ok[..48]);
    write_npy_raw(&d.join("int.npy"), "<i4", false, "(3, 32, 32)", &ok);
    write_npy_raw(&d.join("fortran.npy"), "<f4", true, "(3, 32, 32)", &ok);
    write_npy_raw(
        &d.join("f64.npy"),
        "<f8",
        false,
        "(3, 32, 32)",
        &[ok.clone(), ok.clone()].concat(),
    );
    write_npy_raw(
        &d.join("rank.npy"),
        "<f4",
        false,
        "(32, 32)",
        &ok[..32 * 32 * 4],
    );
    write_npy_raw(
        &d.join("huge.npy"),
        "<f4",
        false,
        "(99999999999, 99999999999)",
        &ok,
    );
    std::fs::write(d.join("magic.npy"), b"PK\x03\x04 not numpy").unwrap();
    let cases = [
        ("lying.npy", "promises"),
        ("zero.npy", "empty dimension"),
        ("nan.npy", "2 value(s) are NaN or infinite"),
        ("tiny.npy", "2x2"),
        ("int.npy", "dtype '<i4'"),
        ("fortran.npy", "Fortran"),
        ("f64.npy", "float32"),
        ("rank.npy", "(3,H,W)"),
        ("huge.npy", "overflows"),
        ("magic.npy", "bad magic"),
    ];
    for (file, why) in cases {
        let o = run(d, &["predict", "--checkpoint", "weights/base", file]);
        assert_refused(&o, &[file, why]);
    }
    // A sound input still works next to them.
    write_npy_raw(&d.join("good.npy"), "<f4", false, "(1, 3, 32, 32)", &ok);
    let o = run(d, &["predict", "--checkpoint", "weights/base", "good.npy"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_unchanged(&before, &snapshot(&d.join("weights")));
}

#[test]
fn similarity_refuses_bad_heatmaps() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    let good = f32_bytes(&(0..64).map(|i| i as f32 / 64.0).collect::<Vec<_>>());
    write_npy_raw(&d.join("a.npy"), "<f4", false, "(8, 8)", &good);
    write_npy_raw(&d.join("short.npy"), "<f4", false, "(8, 8)", &good[..200]);
    write_npy_raw(&d.join("zero.npy"), "<f4", false, "(0, 8)", &[]);
    let mut nan = good.clone();
    nan[..4].copy_from_slice(&f32::NAN.to_le_bytes());
    write_npy_raw(&d.join("nan.npy"), "<f4", false, "(8, 8)", &nan);
    for (file, why) in [
        ("short.npy", "promises"),
        ("zero.npy", "empty dimension"),
        ("nan.npy", "NaN"),
    ] {
        let o = run(d, &["similarity", "a.npy", file]);
        assert_refused(&o, &[file, why]);
    }
    let o = run(d, &["similarity", "a.npy", "a.npy"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// Rewrites one key of the checkpoint metadata with `edit` (a TOML line edit).
fn edit_meta(dir: &Path, edit: impl Fn(&str) -> String) {
    let p = dir.join("weights/base.toml");
    let t = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, edit(&t)).unwrap();
}

/// Replaces the first `key = ...` entry (a multi-line array included) by `new`.
fn replace_line(t: &str, key: &str, new: &str) -> String {
    let mut out = Vec::new();
    let mut lines = t.lines();
    let mut found = false;
    while let Some(l) = lines.next() {
        if !found && l.trim_start().starts_with(&format!("{key} =")) {
            found = true;
            if l.trim_end().ends_with('[') {
                for rest in lines.by_ref() {
                    if rest.trim() == "]" {
                        break;
                    }
                }
            }
            out.push(new.to_string());
        } else {
            out.push(l.to_string());
        }
    }
    assert!(found, "no '{key}' in metadata:\n{t}");
    out.join("\n") + "\n"
}

#[test]
fn invalid_checkpoint_metadata_is_refused_naming_file_and_key() {
    let img = "data/naevus/naevus_0.png";
    let cases: Vec<(&str, String, &str)> = vec![
        ("temperature", "temperature = 0.0".into(), "temperature"),
        ("temperature", "temperature = nan".into(), "temperature"),
        ("temperature", "temperature = -1.5".into(), "temperature"),
        ("input_size", "input_size = [0, 32]".into(), "input_size[0]"),
        (
            "input_size",
            "input_size = [32, -3]".into(),
            "input_size[1]",
        ),
        (
            "input_size",
            "input_size = [32, 99999999]".into(),
            "input_size[1]",
        ),
        (
            "class_names",
            "class_names = [\"melanoma\", \"naevus\", \"extra\"]".into(),
            "class_names has 3 names",
        ),
        ("resolution", "resolution = 1".into(), "model.resolution"),
        ("depth", "depth = 100000.0".into(), "model.depth"),
    ];
    for (i, (key, line, why)) in cases.into_iter().enumerate() {
        let p = copy_project();
        let d = p.path();
        edit_meta(d, |t| replace_line(t, key, &line));
        let before = snapshot(d);
        // Every command reads metadata through one validating reader; the
        // first case checks them all, the others only predict (process
        // start-up dominates the suite's time).
        let mut commands = vec![vec!["predict", "--checkpoint", "weights/base", img]];
        if i == 0 {
            commands.push(vec!["eval", "--checkpoint", "weights/base"]);
            commands.push(vec!["explain", "--checkpoint", "weights/base", img]);
            commands.push(vec!["calibrate", "--checkpoint", "weights/base"]);
        }
        for args in commands {
            let o = run(d, &args);
            assert_refused(&o, &["weights/base.toml", why]);
        }
        assert_unchanged(&before, &snapshot(d));
    }
}

#[test]
fn mismatched_and_torn_checkpoints_are_refused() {
    let p = copy_project();
    let d = p.path();
    // The fixture's tensors with metadata for another architecture.
    edit_meta(d, |t| replace_line(t, "arch", "arch = \"b0\""));
    let o = run(
        d,
        &[
            "predict",
            "--checkpoint",
            "weights/base",
            "data/naevus/naevus_0.png",
        ],
    );
    assert_refused(&o, &["weights/base"]);

    // Torn: tensors that are not the ones this metadata was saved with (kill
    // -9 between the tensors' rename and the metadata's). Flipping a byte of
    // the last weight keeps the file loadable, so only the manifest catches it.
    let p = copy_project();
    let d = p.path();
    flip_last_byte(&d.join("weights/base.safetensors"));
    let before = snapshot(d);
    for args in [
        vec![
            "predict",
            "--checkpoint",
            "weights/base",
            "data/naevus/naevus_0.png",
        ],
        vec!["eval", "--checkpoint", "weights/base"],
    ] {
        let o = run(d, &args);
        assert_refused(&o, &["weights/base.safetensors", "does not match"]);
    }
    assert_unchanged(&before, &snapshot(d));
    // A torn "last" checkpoint (stale optimiser state) is not resumed from.
    flip_last_byte(&d.join("weights/base-last-optim.safetensors"));
    let before = snapshot(d);
    let o = run(d, &["train", "--resume", "--epochs", "2"]);
    assert_refused(&o, &["base-last-optim.safetensors", "does not match"]);
    assert_unchanged(&before, &snapshot(d));
}

fn flip_last_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn out_of_range_input_sizes_are_refused_before_training() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    project(d);
    for size in ["0", "8", "99999999"] {
        let o = run(d, &["train", "--input-size", size, "--name", "sz"]);
        assert_refused(&o, &["input"]);
        assert!(!d.join("weights/sz.safetensors").exists());
    }
}

#[test]
fn calibrate_with_unwritable_reports_leaves_the_checkpoint_alone() {
    let p = copy_project();
    let d = p.path();
    // A file where the reports folder should be: unwritable even for root.
    let _ = std::fs::remove_dir_all(d.join("reports"));
    std::fs::write(d.join("reports"), b"in the way").unwrap();
    let before = snapshot(d);
    let o = run(d, &["calibrate", "--checkpoint", "weights/base"]);
    assert_refused(&o, &["reports"]);
    assert_unchanged(&before, &snapshot(d));
}

#[test]
fn resume_with_nothing_to_resume_says_so() {
    let p = copy_project();
    let d = p.path();
    let before = snapshot(d);
    let o = run(d, &["train", "--resume", "--name", "never-started"]);
    assert_refused(&o, &["nothing to resume", "never-started"]);
    assert_unchanged(&before, &snapshot(d));
}

#[test]
fn resume_at_another_input_size_or_architecture_is_refused() {
    let p = copy_project();
    let d = p.path();
    let before = snapshot(d);
    // Conv kernels fit any input size: without the check this "resumed" the
    // 32 px run and called it a 40 px one.
    let o = run(d, &["train", "--resume", "--input-size", "40"]);
    assert_refused(
        &o,
        &[
            "base-last",
            "lite0 at 32x32 px",
            "lite0 at 40x40 px",
            "cannot resume",
        ],
    );
    assert_unchanged(&before, &snapshot(d));
}

#[test]
fn data_root_that_is_a_file_and_single_class_are_named() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    project(d);
    std::fs::rename(d.join("data"), d.join("data-moved")).unwrap();
    std::fs::write(d.join("data"), b"not a folder").unwrap();
    let o = run(d, &["train"]);
    assert_refused(&o, &["data", "is a file, not a folder"]);

    std::fs::remove_file(d.join("data")).unwrap();
    std::fs::create_dir_all(d.join("data")).unwrap();
    std::fs::rename(d.join("data-moved/naevus"), d.join("data/naevus")).unwrap();
    let o = run(d, &["train"]);
    assert_refused(&o, &["only one class folder", "naevus"]);
    assert!(!d.join("weights").exists(), "a one-class model was written");
}

#[test]
fn odd_names_get_distinct_ids_and_map_files() {
    use melxai::data::scan::scan;
    use melxai::explain::split::stem;
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("data");
    project(d.path());
    let mel = root.join("melanoma");
    for name in [&b"odd\xff.png"[..], &b"odd\xfe.png"[..]] {
        lesion(0, 3)
            .save(mel.join(OsStr::from_bytes(name)))
            .unwrap();
    }
    lesion(0, 4).save(mel.join("dup.png")).unwrap();
    std::fs::write(mel.join("dup.jpg"), jpeg_bytes(&lesion(0, 5))).unwrap();
    let odd_class = root.join(OsStr::from_bytes(b"cls\xff"));
    std::fs::create_dir_all(&odd_class).unwrap();
    lesion(1, 1).save(odd_class.join("a.png")).unwrap();

    let s = scan(&root, true).unwrap();
    let ids: Vec<&String> = s.samples.iter().map(|x| &x.id).collect();
    let unique: std::collections::BTreeSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "ids collide: {ids:?}");
    assert!(
        ids.iter().any(|i| i.as_str() == "melanoma/odd%FF.png"),
        "{ids:?}"
    );
    assert!(s.classes.iter().any(|c| c == "cls%FF"), "{:?}", s.classes);
    assert!(s.classes.iter().all(|c| !c.is_empty()));
    assert_ne!(stem("melanoma/dup.jpg"), stem("melanoma/dup.png"));

    // The CLI refuses inputs that would overwrite each other's maps.
    let stems =
        melxai::explain::output::input_stems(&[mel.join("dup.jpg"), mel.join("dup.png")]).unwrap();
    assert_ne!(stems[0], stems[1]);
    assert!(melxai::explain::output::input_stems(&[
        mel.join("dup.jpg"),
        root.join("naevus/../melanoma/dup.jpg"),
    ])
    .is_err());
}

/// A JPEG carrying an EXIF orientation tag (APP1 inserted after SOI).
fn with_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"II*\x00\x08\x00\x00\x00".to_vec();
    tiff.extend_from_slice(&1u16.to_le_bytes());
    tiff.extend_from_slice(&0x0112u16.to_le_bytes());
    tiff.extend_from_slice(&3u16.to_le_bytes());
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&orientation.to_le_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_le_bytes());
    let mut app1 = b"Exif\x00\x00".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[test]
fn exif_orientation_is_applied_and_truncation_detected() {
    let d = tempfile::tempdir().unwrap();
    let wide = RgbImage::from_fn(40, 24, |x, _| Rgb([(x * 6) as u8, 0, 0]));
    let jpeg = jpeg_bytes(&wide);
    let p = d.path().join("rotated.jpg");
    std::fs::write(&p, with_orientation(&jpeg, 6)).unwrap();
    let img = melxai::data::image::decode_rgb(&p).unwrap();
    assert_eq!(
        (img.width(), img.height()),
        (24, 40),
        "orientation 6 ignored"
    );
    // Rotated 90 degrees clockwise: the original left column is now the top row.
    assert!(img.get_pixel(0, 0)[0] < img.get_pixel(0, 39)[0]);

    let t = d.path().join("cut.jpg");
    std::fs::write(&t, &jpeg[..jpeg.len() - 40]).unwrap();
    let e = melxai::data::image::decode_rgb(&t).unwrap_err().to_string();
    assert!(e.contains("truncated JPEG") && e.contains("cut.jpg"), "{e}");
}

#[test]
fn tiny_images_are_refused_as_inputs() {
    let d = tempfile::tempdir().unwrap();
    let norm = melxai::model::config::Normalisation {
        mean: [0.5; 3],
        std: [0.5; 3],
    };
    let tiny = d.path().join("dot.png");
    RgbImage::from_pixel(1, 1, Rgb([200, 10, 10]))
        .save(&tiny)
        .unwrap();
    let e = melxai::data::image::load_input(&tiny, [224, 224], &norm)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("dot.png") && e.contains("1x1") && e.contains("too small"),
        "{e}"
    );
    let ok = d.path().join("ok.png");
    RgbImage::from_pixel(32, 40, Rgb([200, 10, 10]))
        .save(&ok)
        .unwrap();
    let x = melxai::data::image::load_input(&ok, [224, 224], &norm).unwrap();
    assert_eq!(x.size(), [3, 224, 224]);
}

#[test]
fn stale_temp_files_are_cleaned_by_the_next_save() {
    let p = copy_project();
    let d = p.path();
    // What a run killed between write and rename leaves behind (dead pid).
    let stale = d
        .join("weights")
        .join(".base.safetensors.melxai-tmp.2147483646.safetensors");
    std::fs::write(&stale, vec![0u8; 4096]).unwrap();
    let o = run(d, &["train", "--name", "second"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!stale.exists(), "stale temp file not cleaned");
    let leftovers: Vec<_> = std::fs::read_dir(d.join("weights"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("melxai-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn concurrent_training_of_one_name_is_refused_and_kill_9_is_recoverable() {
    let p = copy_project();
    let d = p.path();
    let mut first = bin(d)
        .args(["train", "--name", "same", "--epochs", "200"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first run holds the lock and has written a checkpoint.
    let lock = d.join("weights/.same.lock");
    let t0 = Instant::now();
    while !(lock.exists()
        && std::fs::read_to_string(&lock).is_ok_and(|s| !s.trim().is_empty())
        && d.join("weights/same-last.toml").exists())
    {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "first run never started"
        );
        assert!(first.try_wait().unwrap().is_none(), "first run ended early");
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = run(d, &["train", "--name", "same", "--epochs", "1"]);
    assert_refused(&o, &["already in use", "same"]);
    assert!(
        !d.join("reports/same").exists(),
        "the refused run wrote a report"
    );

    // kill -9 at an arbitrary point of training, then resume: it either
    // continues from an intact checkpoint or refuses clearly, never panics.
    std::thread::sleep(Duration::from_millis(700));
    first.kill().unwrap();
    first.wait().unwrap();
    let o = run(d, &["train", "--name", "same", "--epochs", "2", "--resume"]);
    let code = o.status.code();
    assert!(code == Some(0) || code == Some(2), "{code:?}\n{}", text(&o));
    if code == Some(2) {
        assert!(text(&o).contains("does not match"), "{}", text(&o));
    }
}

/// Mounts a tmpfs of `kib` KiB at `dir`; `None` (with the reason) where this
/// machine does not allow it (not root, no mount namespace).
fn mount_tmpfs(dir: &Path, kib: u32) -> Option<()> {
    let o = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
        .arg(dir)
        .output();
    match o {
        Ok(o) if o.status.success() => Some(()),
        Ok(o) => {
            eprintln!(
                "SKIP full-disk case: cannot mount a tmpfs ({})",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            None
        }
        Err(e) => {
            eprintln!("SKIP full-disk case: no mount command ({e})");
            None
        }
    }
}

#[test]
fn full_disk_leaves_no_partial_outputs_and_names_the_path() {
    let p = copy_project();
    let d = p.path();
    let out = d.join("full");
    std::fs::create_dir_all(&out).unwrap();
    if mount_tmpfs(&out, 64).is_none() {
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _guard = Unmount(&out);
    // An earlier result the user keeps, then fill the rest of the disk.
    std::fs::write(out.join("keep.txt"), b"earlier result").unwrap();
    for i in 0.. {
        let f = out.join(format!("fill{i}"));
        if std::fs::write(&f, vec![7u8; 1024]).is_err() {
            let _ = std::fs::remove_file(&f);
            break;
        }
    }
    let before = snapshot(&out);
    let o = run(
        d,
        &[
            "explain",
            "--checkpoint",
            "weights/base",
            "--method",
            "gradcam",
            "--out",
            "full",
            "data/naevus/naevus_0.png",
        ],
    );
    assert_refused(&o, &["full/naevus_0_gradcam_"]);
    assert!(!text(&o).contains("libtorch"), "{}", text(&o));
    assert_unchanged(&before, &snapshot(&out));
}

/// `(file name, inode)` of every `*_map.npy` in `dir`: an atomic rewrite gives
/// a file a new inode, so equal sets mean the maps were reused, not rewritten.
fn map_inodes(dir: &Path) -> BTreeMap<String, u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with("_map.npy"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().ino(),
            )
        })
        .collect()
}

/// The bytes of every `*_map.npy` in `dir`, by file name.
fn map_bytes(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    map_inodes(dir)
        .into_keys()
        .map(|n| {
            let b = std::fs::read(dir.join(&n)).unwrap();
            (n, b)
        })
        .collect()
}

#[test]
fn compare_keys_maps_by_model_content_not_metadata_name() {
    let p = copy_project();
    let d = p.path();
    let o = run(d, &["train", "--name", "other", "--seed", "7"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // `other` now carries the metadata name of `base`.
    let meta = d.join("weights/other.toml");
    let t = std::fs::read_to_string(&meta).unwrap();
    std::fs::write(&meta, replace_line(&t, "name", "name = \"base\"")).unwrap();
    let compare = |args: &[&str]| {
        let mut all = vec![
            "compare",
            "--split",
            "all",
            "--methods",
            "gradcam,deeplift",
            "--out",
            "cmp",
        ];
        all.extend_from_slice(args);
        let o = run(d, &all);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        o
    };
    let maps = d.join("cmp/base");
    compare(&["--checkpoint", "weights/base"]);
    let first = map_inodes(&maps);
    let base_maps = map_bytes(&maps);
    assert_eq!(first.len(), 2 * 16, "{first:?}");
    // Same model, same settings: every map is reused.
    compare(&["--checkpoint", "weights/base"]);
    assert_eq!(map_inodes(&maps), first, "maps were recomputed");
    // Another model under the same name: nothing is reused.
    compare(&["--checkpoint", "weights/other"]);
    let second = map_inodes(&maps);
    assert!(
        first.iter().all(|(f, ino)| second[f] != *ino),
        "maps of the first model were reused for the second"
    );
    let other_maps = map_bytes(&maps);
    assert_ne!(
        other_maps, base_maps,
        "two different models gave equal maps"
    );

    // Both at once: two folders, two report entries, each model its own maps.
    let o = compare(&[
        "--checkpoint",
        "weights/base",
        "--against",
        "weights/other",
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = report["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["model"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["base", "other"]);
    assert_eq!(map_bytes(&d.join("cmp/base")), base_maps);
    assert_eq!(map_bytes(&d.join("cmp/other")), other_maps);
    assert!(d.join("cmp/cross_base_vs_other.csv").exists());
}

#[test]
fn batch_rerun_reuses_maps_only_while_explain_settings_are_unchanged() {
    let p = copy_project();
    let d = p.path();
    let config = d.join("config.toml");
    let base = std::fs::read_to_string(&config).unwrap();
    let with_explain = |steps: usize| {
        let text = format!(
            "{base}[explain]\nsteps = {steps}\ninternal_batch = 4\n\
             [batch]\nrun_name = \"r\"\nfolds = 0\nscreenshots = false\n\
             methods = [\"gradcam\", \"ig\"]\n\
             models = [{{ name = \"m\", arch = \"lite0\", seed = 1 }}]\n"
        );
        std::fs::write(&config, text).unwrap();
    };
    let batch = || {
        let o = run(d, &["--batch"]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    };
    let maps = d.join("reports/r/maps/m");
    let split = |m: &BTreeMap<String, u64>, method: &str| -> BTreeMap<String, u64> {
        m.iter()
            .filter(|(f, _)| f.ends_with(&format!("_{method}_map.npy")))
            .map(|(f, i)| (f.clone(), *i))
            .collect()
    };
    with_explain(4);
    batch();
    let first = map_inodes(&maps);
    assert!(!split(&first, "ig").is_empty() && !split(&first, "gradcam").is_empty());
    batch();
    assert_eq!(
        map_inodes(&maps),
        first,
        "unchanged settings: maps recomputed"
    );
    // IG's steps changed: the IG maps are recomputed, GradCAM's (which do not
    // read steps) are kept.
    with_explain(6);
    batch();
    let third = map_inodes(&maps);
    assert_eq!(split(&third, "gradcam"), split(&first, "gradcam"));
    let (ig1, ig3) = (split(&first, "ig"), split(&third, "ig"));
    assert_eq!(ig1.len(), ig3.len());
    assert!(
        ig1.iter().all(|(f, ino)| ig3[f] != *ino),
        "IG maps made with 4 steps were reused for 6"
    );
}

#[test]
fn explain_honours_and_checks_the_explain_section() {
    let p = copy_project();
    let d = p.path();
    let config = d.join("config.toml");
    let base = std::fs::read_to_string(&config).unwrap();
    let attr = |out: &str, extra: &[&str]| {
        let mut args = vec![
            "explain",
            "--checkpoint",
            "weights/base",
            "--method",
            "ig",
            "--out",
            out,
            "data/naevus/naevus_0.png",
        ];
        args.extend_from_slice(extra);
        let o = run(d, &args);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        std::fs::read(d.join(out).join("naevus_0_ig_attr.npy")).unwrap()
    };
    let default = attr("a", &[]);
    let flag = attr("b", &["--steps", "3", "--baseline", "black"]);
    assert_ne!(default, flag);
    std::fs::write(
        &config,
        format!("{base}[explain]\nsteps = 3\nbaseline = \"black\"\n"),
    )
    .unwrap();
    assert_eq!(attr("c", &[]), flag, "[explain] in config.toml ignored");
    std::fs::write(&config, format!("{base}[explain]\nstpes = 3\n")).unwrap();
    let o = run(
        d,
        &[
            "explain",
            "--checkpoint",
            "weights/base",
            "data/naevus/naevus_0.png",
        ],
    );
    assert_refused(&o, &["stpes"]);
}

#[test]
fn eval_and_calibrate_refuse_a_checkpoint_with_another_class_order() {
    let p = copy_project();
    let d = p.path();
    edit_meta(d, |t| {
        replace_line(t, "class_names", "class_names = [\"naevus\", \"melanoma\"]")
    });
    let before = snapshot(d);
    for args in [
        vec!["eval", "--checkpoint", "weights/base"],
        vec!["calibrate", "--checkpoint", "weights/base"],
        vec![
            "compare",
            "--checkpoint",
            "weights/base",
            "--methods",
            "gradcam",
        ],
    ] {
        let o = run(d, &args);
        assert_refused(
            &o,
            &[
                "weights/base.toml",
                "[\"naevus\", \"melanoma\"]",
                "[\"melanoma\", \"naevus\"]",
                "another order",
            ],
        );
    }
    assert_unchanged(&before, &snapshot(d));
}

#[test]
fn unknown_exclude_ids_and_bad_names_are_refused() {
    let p = copy_project();
    let d = p.path();
    let before = snapshot(d);
    let o = run(
        d,
        &[
            "train",
            "--name",
            "ex",
            "--exclude",
            "melanoma/melanoma_0.pgn",
        ],
    );
    assert_refused(
        &o,
        &[
            "--exclude",
            "'melanoma/melanoma_0.pgn'",
            "did you mean 'melanoma/melanoma_0.png'",
        ],
    );
    let o = run(
        d,
        &["train", "--name", "ex", "--exclude", "nothing-like-an-id"],
    );
    assert_refused(&o, &["--exclude", "nothing-like-an-id"]);
    // Known ids that leave a class empty: no one-class model.
    let mut args = vec!["train", "--name", "ex"];
    let all_naevi: Vec<String> = (0..8).map(|i| format!("naevus/naevus_{i}.png")).collect();
    for id in &all_naevi {
        args.extend(["--exclude", id.as_str()]);
    }
    let o = run(d, &args);
    assert_refused(&o, &["no 'naevus' images left", "8 excluded"]);
    for name in ["", "..", ".", "a/b", "../up", "a\\b"] {
        let o = run(d, &["train", "--name", name]);
        assert_refused(&o, &["--name"]);
    }
    assert_unchanged(&before, &snapshot(d));
    // A known id is accepted and left out of the recorded split.
    let o = run(
        d,
        &[
            "train",
            "--name",
            "ex",
            "--exclude",
            "melanoma/melanoma_0.png",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let meta = std::fs::read_to_string(d.join("weights/ex.toml")).unwrap();
    assert!(!meta.contains("melanoma/melanoma_0.png"), "{meta}");
    assert!(meta.contains("melanoma/melanoma_1.png"), "{meta}");
}

#[test]
fn training_over_a_calibrated_checkpoint_needs_force() {
    let p = copy_project();
    let d = p.path();
    edit_meta(d, |t| replace_line(t, "temperature", "temperature = 1.5"));
    let temperature = |d: &Path| {
        let t = std::fs::read_to_string(d.join("weights/base.toml")).unwrap();
        let meta: toml::Table = toml::from_str(&t).unwrap();
        meta["temperature"].as_float().unwrap()
    };
    let before = snapshot(d);
    let o = run(d, &["train"]);
    assert_refused(&o, &["weights/base.toml", "calibrated", "--force"]);
    assert_unchanged(&before, &snapshot(d));
    // Resuming the finished run writes no tensors and keeps the temperature.
    let o = run(d, &["train", "--resume"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(temperature(d), 1.5);
    assert_eq!(
        std::fs::read(d.join("weights/base.safetensors")).unwrap(),
        before[&d.join("weights/base.safetensors")]
    );
    let o = run(d, &["train", "--force"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(temperature(d), 1.0);
}

#[test]
fn torn_checkpoints_on_resume_are_refused_or_replaced_and_temps_cleaned() {
    // A torn `-last` (tensors of one epoch, manifest of another): refused
    // with what to do, a dead run's temp file removed, nothing else changed.
    let p = copy_project();
    let d = p.path();
    flip_last_byte(&d.join("weights/base-last.safetensors"));
    let before = snapshot(d);
    let stale = d
        .join("weights")
        .join(".base-last.safetensors.melxai-tmp.2147483646.safetensors");
    std::fs::write(&stale, vec![0u8; 4096]).unwrap();
    let o = run(d, &["train", "--resume"]);
    assert_refused(
        &o,
        &[
            "weights/base-last.safetensors",
            "does not match",
            "nothing was resumed",
            "without --resume",
        ],
    );
    assert!(!stale.exists(), "stale temp file left behind");
    assert_unchanged(&before, &snapshot(d));

    // A torn best checkpoint of an unfinished run: the resumed run says so
    // and writes a new best, instead of failing when it loads it at the end.
    let p = copy_project();
    let d = p.path();
    let last = d.join("weights/base-last.toml");
    let t = std::fs::read_to_string(&last).unwrap();
    std::fs::write(&last, replace_line(&t, "finished", "finished = false")).unwrap();
    flip_last_byte(&d.join("weights/base.safetensors"));
    let o = run(d, &["train", "--resume", "--epochs", "2"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("best checkpoint (epoch 1) is unusable"),
        "{}",
        text(&o)
    );
    let o = run(
        d,
        &[
            "predict",
            "--checkpoint",
            "weights/base",
            "data/naevus/naevus_0.png",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn a_metadata_name_cannot_lead_outside_the_reports_folder() {
    let p = copy_project();
    let d = p.path().join("project");
    std::fs::create_dir(&d).unwrap();
    for entry in ["config.toml", "data", "weights"] {
        std::fs::rename(p.path().join(entry), d.join(entry)).unwrap();
    }
    edit_meta(&d, |t| replace_line(t, "name", "name = \"../../evil\""));
    let before = snapshot(p.path());
    for args in [
        vec!["calibrate", "--checkpoint", "weights/base"],
        vec![
            "compare",
            "--checkpoint",
            "weights/base",
            "--methods",
            "gradcam",
        ],
    ] {
        let o = run(&d, &args);
        assert_refused(&o, &["weights/base.toml", "name = \"../../evil\""]);
    }
    assert_unchanged(&before, &snapshot(p.path()));
}

#[test]
fn an_io_error_is_named_once_with_its_path() {
    let p = copy_project();
    let o = run(
        p.path(),
        &[
            "--config",
            "nope.toml",
            "eval",
            "--checkpoint",
            "weights/base",
        ],
    );
    assert_refused(&o, &["nope.toml"]);
    assert_eq!(
        text(&o).matches("No such file or directory").count(),
        1,
        "{}",
        text(&o)
    );
}

mod fuzz {
    //! Bounded-time property tests of the readers: arbitrary and mutated
    //! bytes never panic, and whatever is accepted is sound.

    use super::*;
    use melxai::model::checkpoint::CheckpointMeta;
    use proptest::prelude::*;

    fn valid_npy() -> Vec<u8> {
        npy::encode_f32(&(0..48).map(|i| i as f32).collect::<Vec<_>>(), &[3, 4, 4]).unwrap()
    }

    fn meta_text() -> String {
        let (dir, _) = trained();
        std::fs::read_to_string(dir.join("weights/base.toml")).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn npy_parser_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(a) = npy::parse(&bytes) {
                prop_assert_eq!(a.shape.iter().product::<usize>(), a.data.len());
            }
        }

        #[test]
        fn npy_parser_survives_mutations(
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
            cut in any::<usize>(),
        ) {
            let mut b = valid_npy();
            for (at, v) in edits {
                let i = at % b.len();
                b[i] = v;
            }
            b.truncate(cut % (b.len() + 1));
            if let Ok(a) = npy::parse(&b) {
                prop_assert!(a.shape.iter().all(|&d| d >= 1));
                prop_assert_eq!(a.shape.iter().product::<usize>(), a.data.len());
                prop_assert!(a.data.iter().all(|v| v.is_finite()));
            }
        }

        #[test]
        fn jpeg_check_never_panics(
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
            cut in any::<usize>(),
        ) {
            let mut b = jpeg_bytes(&lesion(0, 1));
            for (at, v) in edits {
                let i = at % b.len();
                b[i] = v;
            }
            b.truncate(cut % (b.len() + 1));
            let _ = melxai::data::jpeg::check_complete(&b);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn checkpoint_metadata_is_validated(
            input in (any::<i64>(), any::<i64>()),
            temperature in prop_oneof![any::<f64>(), Just(f64::NAN), Just(0.0), -10.0..10.0f64],
            extra_names in 0usize..3,
        ) {
            let mut m: CheckpointMeta = toml::from_str(&meta_text()).unwrap();
            m.input_size = [input.0, input.1];
            m.temperature = temperature;
            for i in 0..extra_names {
                m.class_names.push(format!("extra{i}"));
            }
            let ok = m.validate().is_ok();
            let sound = (32..=4096).contains(&input.0)
                && (32..=4096).contains(&input.1)
                && temperature.is_finite()
                && temperature > 0.0
                && extra_names == 0;
            prop_assert_eq!(ok, sound);
        }

        #[test]
        fn checkpoint_metadata_text_mutations_never_panic(
            edits in proptest::collection::vec((any::<usize>(), 32u8..127), 1..4),
        ) {
            let mut b = meta_text().into_bytes();
            for (at, v) in edits {
                let i = at % b.len();
                b[i] = v;
            }
            let text = String::from_utf8_lossy(&b);
            if let Ok(m) = toml::from_str::<CheckpointMeta>(&text) {
                let _ = m.validate();
            }
        }
    }
}
