//! Tiny look-alikes of public skin-lesion data sets, for tests and benchmarks.
//!
//! Each layout has the published file names, folders and columns of its
//! original (HAM10000, ISIC 2019, ISIC 2020, PAD-UFES-20, or a MED-NODE-like
//! ImageFolder), so the table reader and the pipeline run without downloading
//! gigabytes. Pictures are learnable: a lesion blob whose colour, size and
//! outline depend on the class, on a skin tone that depends on the patient.
//! Images of one lesion (or patient) are near-duplicates, as in the
//! originals, so a split that ignores groups leaks. Every file depends only on
//! the spec: each image has its own seed, so parallel writing is
//! deterministic.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::error::{Error, Result};

mod picture;
mod tables;

use picture::{encode, paint, picture};
use tables::{write_tables, ISIC2019_TRUTH_HEADER};

/// Which published layout to imitate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    ImageFolder,
    Ham10000,
    Isic2019,
    Isic2020,
    PadUfes20,
}

impl Layout {
    pub const ALL: [Layout; 5] = [
        Layout::ImageFolder,
        Layout::Ham10000,
        Layout::Isic2019,
        Layout::Isic2020,
        Layout::PadUfes20,
    ];

    fn name(self) -> &'static str {
        match self {
            Layout::ImageFolder => "imagefolder",
            Layout::Ham10000 => "ham10000",
            Layout::Isic2019 => "isic2019",
            Layout::Isic2020 => "isic2020",
            Layout::PadUfes20 => "pad-ufes-20",
        }
    }

    /// Class labels as the files spell them, with their counts in the
    /// original (the look-alike's class mix).
    fn classes(self) -> (&'static [&'static str], &'static [f64]) {
        match self {
            Layout::ImageFolder => (&["melanoma", "naevus"], &[70.0, 100.0]),
            Layout::Ham10000 => (
                &["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"],
                &[327.0, 514.0, 1099.0, 115.0, 1113.0, 6705.0, 142.0],
            ),
            Layout::Isic2019 => (
                &["MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC"],
                &[4522.0, 12875.0, 3323.0, 867.0, 2624.0, 239.0, 253.0, 628.0],
            ),
            Layout::Isic2020 => (&["0", "1"], &[32542.0, 584.0]),
            Layout::PadUfes20 => (
                &["ACK", "BCC", "MEL", "NEV", "SCC", "SEK"],
                &[730.0, 845.0, 52.0, 244.0, 192.0, 235.0],
            ),
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Layout {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let names: Vec<&str> = Layout::ALL.iter().map(|l| l.name()).collect();
        (Layout::ALL
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(s)))
        .ok_or_else(|| {
            Error::Config(format!(
                "unknown layout '{s}' (one of {})",
                names.join(", ")
            ))
        })
    }
}

/// What to write. `images` counts table rows (files for ImageFolder);
/// `missing` of them name a file that is not written and `corrupt` are
/// written cut to half their bytes, spread over the table but never leaving
/// a class fewer than two readable images. ImageFolder has no table, so
/// `missing` does not apply to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookalikeSpec {
    pub images: usize,
    pub width: u32,
    pub height: u32,
    pub seed: u64,
    pub corrupt: usize,
    pub missing: usize,
    pub jpeg_quality: u8,
}

impl Default for LookalikeSpec {
    fn default() -> Self {
        LookalikeSpec {
            images: 48,
            width: 64,
            height: 48,
            seed: 0,
            corrupt: 0,
            missing: 0,
            jpeg_quality: 90,
        }
    }
}

/// A written look-alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookalike {
    /// Absolute folder holding everything.
    pub root: PathBuf,
    /// A `[data]` section that reads it (absolute paths).
    pub data_toml: String,
    /// Image files on disk, truncated ones included.
    pub images_written: usize,
}

/// What happens to a row's image file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Written,
    Corrupt,
    Missing,
}

/// One row (one image) of the look-alike.
#[derive(Debug, Clone)]
struct Row {
    class: usize,
    lesion: usize,
    patient: usize,
    /// ISIC 2019 rows without a lesion id (their own group).
    anonymous: bool,
    fate: Fate,
    /// The image cell of the table.
    cell: String,
    /// Image file relative to the root.
    file: PathBuf,
}

/// Writes the look-alike of `layout` into `dir`, which must be empty or
/// absent: files of an earlier run would mix in (a "missing" image present).
pub fn write(layout: Layout, dir: &Path, spec: &LookalikeSpec) -> Result<Lookalike> {
    check_spec(layout, spec)?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    if entries.next().is_some() {
        let why = "is not empty (files of an earlier run would mix in)";
        return Err(Error::Config(format!(
            "look-alike folder {} {why}",
            dir.display()
        )));
    }
    let root = dir.canonicalize().map_err(|e| Error::io(dir, e))?;
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let mut rows = match layout {
        Layout::Isic2020 => assign_patients(spec.images, &mut rng),
        _ => assign_lesions(layout, spec.images, &mut rng),
    };
    // A real table lists lesions and patients interleaved.
    rows.shuffle(&mut rng);
    let missing = if layout == Layout::ImageFolder {
        0
    } else {
        spec.missing
    };
    assign_fates(layout, &mut rows, spec.corrupt, missing)?;
    name_rows(layout, &mut rows);
    write_images(layout, &root, &rows, spec)?;
    write_tables(layout, &root, &rows, spec.seed)?;
    Ok(Lookalike {
        data_toml: data_toml(layout, &root),
        root,
        images_written: rows.iter().filter(|r| r.fate != Fate::Missing).count(),
    })
}

fn check_spec(layout: Layout, spec: &LookalikeSpec) -> Result<()> {
    let k = layout.classes().0.len();
    let least = if layout == Layout::Isic2020 { 8 } else { 2 * k };
    let config = |m: String| Err(Error::Config(format!("{layout} look-alike: {m}")));
    if spec.images < least {
        return config(format!(
            "{} images are too few (at least {least}: two per class)",
            spec.images
        ));
    }
    if spec.width < 8 || spec.height < 8 {
        return config(format!(
            "{}x{} pixels is too small (at least 8x8)",
            spec.width, spec.height
        ));
    }
    if spec.jpeg_quality == 0 || spec.jpeg_quality > 100 {
        return config(format!(
            "jpeg_quality {} is outside 1..=100",
            spec.jpeg_quality
        ));
    }
    Ok(())
}

fn draw(weights: &[f64], rng: &mut ChaCha8Rng) -> usize {
    let mut x = rng.gen::<f64>() * weights.iter().sum::<f64>();
    for (i, w) in weights.iter().enumerate() {
        x -= w;
        if x < 0.0 {
            return i;
        }
    }
    weights.len() - 1
}

fn row(class: usize, lesion: usize, patient: usize, anonymous: bool) -> Row {
    Row {
        class,
        lesion,
        patient,
        anonymous,
        fate: Fate::Written,
        cell: String::new(),
        file: PathBuf::new(),
    }
}

/// Lesions of one class with 1-4 images each; the first two lesions of every
/// class come first, so each class has at least two rows.
fn assign_lesions(layout: Layout, n: usize, rng: &mut ChaCha8Rng) -> Vec<Row> {
    let (classes, prior) = layout.classes();
    let guaranteed = 2 * classes.len();
    let (mut rows, mut lesion, mut patient) = (Vec::with_capacity(n), 0, 0);
    while rows.len() < n {
        let class = match lesion < guaranteed {
            true => lesion % classes.len(),
            false => draw(prior, rng),
        };
        // ~30 % of ISIC 2019 rows have no lesion id (MSK, some BCN images).
        let anonymous = layout == Layout::Isic2019 && rng.gen_bool(0.38);
        let size = match (layout, anonymous) {
            (Layout::ImageFolder, _) | (_, true) => 1,
            _ => 1 + draw(&[70.0, 20.0, 7.0, 3.0], rng),
        };
        let room = n - rows.len() - guaranteed.saturating_sub(lesion + 1);
        for _ in 0..size.min(room).max(1) {
            rows.push(row(class, lesion, patient, anonymous));
        }
        lesion += 1;
        // PAD-UFES-20 patients often have several lesions; elsewhere the
        // lesion is the group.
        if layout != Layout::PadUfes20 || rng.gen_bool(0.6) {
            patient += 1;
        }
    }
    rows
}

/// ISIC 2020: patients with several images each (one blob look per patient),
/// ~1.8 % melanoma spread so at least two patients have one.
fn assign_patients(n: usize, rng: &mut ChaCha8Rng) -> Vec<Row> {
    let cap = (n / 4).clamp(2, 12);
    let mut rows = Vec::with_capacity(n);
    let mut firsts = Vec::new();
    while rows.len() < n {
        let patient = firsts.len();
        firsts.push(rows.len());
        for _ in 0..rng.gen_range(1..=cap).min(n - rows.len()) {
            rows.push(row(0, patient, patient, false));
        }
    }
    let melanomas = ((n as f64 * 0.018).round() as usize).max(2);
    for k in 0..melanomas {
        let first = firsts[k * firsts.len() / melanomas];
        let at = (first..n).find(|&i| rows[i].class == 0).unwrap_or(first);
        rows[at].class = 1;
    }
    rows
}

/// Marks `missing` + `corrupt` rows, spread over the table, skipping rows
/// whose class would be left fewer than two readable images.
fn assign_fates(layout: Layout, rows: &mut [Row], corrupt: usize, missing: usize) -> Result<()> {
    let mut intact = vec![0; layout.classes().0.len()];
    rows.iter().for_each(|r| intact[r.class] += 1);
    let (hit, mut done) = (corrupt + missing, 0);
    let gap = (rows.len() / hit.max(1)).max(1);
    for i in (0..rows.len()).step_by(gap).chain(0..rows.len()) {
        let r = &mut rows[i];
        if done < hit && r.fate == Fate::Written && intact[r.class] > 2 {
            intact[r.class] -= 1;
            r.fate = if done < missing {
                Fate::Missing
            } else {
                Fate::Corrupt
            };
            done += 1;
        }
    }
    match done == hit {
        true => Ok(()),
        false => Err(Error::Config(format!(
            "{layout} look-alike: {hit} corrupt and missing images would leave a class fewer \
             than two readable images (raise images)"
        ))),
    }
}

/// Published naming: ISIC ids, HAM's two image folders, PAD's
/// `PAT_<patient>_<lesion>_<n>.png`.
fn name_rows(layout: Layout, rows: &mut [Row]) {
    let n = rows.len();
    for (i, r) in rows.iter_mut().enumerate() {
        let (cell, dir, ext) = match layout {
            Layout::ImageFolder => (
                format!("{:07}", 1_000_000 + 37 * i),
                layout.classes().0[r.class].to_string(),
                ".jpg",
            ),
            Layout::Ham10000 => {
                let part = if 2 * i < n { 1 } else { 2 };
                let dir = format!("HAM10000_images_part_{part}");
                (format!("ISIC_{:07}", 24306 + i), dir, ".jpg")
            }
            Layout::Isic2019 => (
                format!("ISIC_{i:07}"),
                "ISIC_2019_Training_Input".into(),
                ".jpg",
            ),
            Layout::Isic2020 => {
                let id = format!("ISIC_{:07}", 15719 + 29 * i + (7 * i) % 13);
                (id, "train".into(), ".jpg")
            }
            Layout::PadUfes20 => {
                let id = format!("PAT_{}_{}_{}.png", 8 + r.patient, 12 + r.lesion, 1 + i);
                (id, "images".into(), "")
            }
        };
        r.file = PathBuf::from(dir).join(format!("{cell}{ext}"));
        r.cell = cell;
    }
}

/// A seed for one purpose (`tag`) and one index, so pictures and metadata do
/// not depend on generation order.
fn rng_for(seed: u64, tag: u64, index: usize) -> ChaCha8Rng {
    let mut x = seed ^ tag.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (index as u64).rotate_left(32);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    ChaCha8Rng::seed_from_u64(x ^ (x >> 31))
}

/// Patient traits shared by all of a patient's rows.
struct Person {
    age: Option<u32>,
    male: bool,
    fitzpatrick: usize,
}

fn person(seed: u64, patient: usize) -> Person {
    let mut rng = rng_for(seed, 1, patient);
    let age = 5 * rng.gen_range(3..18);
    Person {
        age: (!rng.gen_bool(0.04)).then_some(age),
        male: rng.gen_bool(0.52),
        fitzpatrick: 1 + draw(&[15.0, 35.0, 27.0, 13.0, 6.0, 4.0], &mut rng),
    }
}

/// Paints, encodes and writes every non-missing image, in parallel.
fn write_images(layout: Layout, root: &Path, rows: &[Row], spec: &LookalikeSpec) -> Result<()> {
    let dirs: std::collections::BTreeSet<&Path> =
        rows.iter().filter_map(|r| r.file.parent()).collect();
    for d in dirs {
        std::fs::create_dir_all(root.join(d)).map_err(|e| Error::io(root.join(d), e))?;
    }
    rows.par_iter()
        .enumerate()
        .filter(|(_, r)| r.fate != Fate::Missing)
        .try_for_each(|(i, r)| {
            let pixels = paint(spec.width, spec.height, &picture(layout, spec.seed, i, r));
            let path = root.join(&r.file);
            let bytes = encode(layout, &pixels, spec).map_err(|message| Error::Image {
                path: path.clone(),
                message,
            })?;
            let keep = if r.fate == Fate::Corrupt {
                bytes.len() / 2
            } else {
                bytes.len()
            };
            std::fs::write(&path, &bytes[..keep]).map_err(|e| Error::io(&path, e))
        })
}

/// The `[data]` keys that read the look-alike (those of the examples/
/// configs, with absolute paths).
fn data_toml(layout: Layout, root: &Path) -> String {
    let q = |s: &str| toml::Value::String(s.to_string()).to_string();
    let path = |p: &str| q(&root.join(p).display().to_string());
    let list = |items: &[&str]| {
        let quoted: Vec<String> = items.iter().map(|s| q(s)).collect();
        format!("[{}]", quoted.join(", "))
    };
    let melanoma = "{ MEL = \"melanoma\" }".to_string();
    let keys: Vec<(&str, String)> = match layout {
        Layout::ImageFolder => vec![("root", q(&root.display().to_string()))],
        Layout::Ham10000 => vec![
            ("table", path("HAM10000_metadata.csv")),
            ("image_column", q("image_id")),
            ("label_column", q("dx")),
            ("group_column", q("lesion_id")),
            (
                "image_dir",
                format!(
                    "[{}, {}]",
                    path("HAM10000_images_part_1"),
                    path("HAM10000_images_part_2")
                ),
            ),
            ("image_pattern", q("{image}.jpg")),
            ("label_map", "{ mel = \"melanoma\" }".into()),
            ("attribute_columns", list(&["age", "sex", "localization"])),
        ],
        Layout::Isic2019 => vec![
            (
                "table",
                format!(
                    "[{}, {}]",
                    path("ISIC_2019_Training_GroundTruth.csv"),
                    path("ISIC_2019_Training_Metadata.csv")
                ),
            ),
            ("image_column", q("image")),
            (
                "label_columns",
                list(&ISIC2019_TRUTH_HEADER.split(',').skip(1).collect::<Vec<_>>()),
            ),
            ("group_column", q("lesion_id")),
            ("image_dir", path("ISIC_2019_Training_Input")),
            ("image_pattern", q("{image}.jpg")),
            ("label_map", "{ MEL = \"melanoma\", UNK = \"\" }".into()),
            (
                "attribute_columns",
                list(&["age_approx", "anatom_site_general", "sex"]),
            ),
        ],
        Layout::Isic2020 => vec![
            ("table", path("train.csv")),
            ("image_column", q("image_name")),
            ("label_column", q("target")),
            ("group_column", q("patient_id")),
            ("image_dir", path("train")),
            ("image_pattern", q("{image}.jpg")),
            (
                "label_map",
                "{ \"0\" = \"benign\", \"1\" = \"melanoma\" }".into(),
            ),
            (
                "attribute_columns",
                list(&["sex", "age_approx", "anatom_site_general_challenge"]),
            ),
        ],
        Layout::PadUfes20 => vec![
            ("table", path("metadata.csv")),
            ("image_column", q("img_id")),
            ("label_column", q("diagnostic")),
            ("group_column", q("patient_id")),
            ("image_dir", path("images")),
            ("image_pattern", q("{image}")),
            ("label_map", melanoma),
            (
                "attribute_columns",
                list(&["age", "gender", "fitspatrick", "region"]),
            ),
        ],
    };
    let mut text = String::from("[data]\n");
    for (k, v) in keys {
        text += &format!("{k} = {v}\n");
    }
    text + "positive_class = \"melanoma\"\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::table::{decodes, read_table, TableSource};
    use std::collections::BTreeSet;

    /// The table source a `[data]` section describes (what the config
    /// loader will do), so the test also checks `data_toml`.
    fn source(text: &str) -> TableSource {
        let doc: toml::Table = text.parse().unwrap();
        let d = doc["data"].as_table().unwrap();
        let s = |k: &str| d.get(k).and_then(|v| v.as_str()).map(String::from);
        let list = |k: &str| -> Vec<String> {
            match d.get(k) {
                Some(toml::Value::Array(a)) => {
                    a.iter().map(|v| v.as_str().unwrap().into()).collect()
                }
                Some(v) => vec![v.as_str().unwrap().into()],
                None => Vec::new(),
            }
        };
        let map = d
            .get("label_map")
            .and_then(|m| m.as_table())
            .cloned()
            .unwrap_or_default();
        TableSource {
            tables: list("table").into_iter().map(PathBuf::from).collect(),
            image_column: s("image_column").unwrap(),
            label_column: s("label_column"),
            label_columns: list("label_columns"),
            group_column: s("group_column"),
            image_dirs: list("image_dir").into_iter().map(PathBuf::from).collect(),
            image_pattern: s("image_pattern").unwrap_or("{image}.jpg".into()),
            label_map: map
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().into()))
                .collect(),
            attribute_columns: list("attribute_columns"),
        }
    }

    fn spec(images: usize) -> LookalikeSpec {
        let (corrupt, missing) = (1, 2);
        LookalikeSpec {
            images,
            width: 40,
            height: 32,
            seed: 7,
            corrupt,
            missing,
            jpeg_quality: 80,
        }
    }

    #[test]
    fn layout_names_round_trip() {
        for l in Layout::ALL {
            assert_eq!(l.to_string().parse::<Layout>().unwrap(), l);
        }
        assert_eq!("PAD-UFES-20".parse::<Layout>().unwrap(), Layout::PadUfes20);
        let e = "isic".parse::<Layout>().unwrap_err().to_string();
        let want =
            "unknown layout 'isic' (one of imagefolder, ham10000, isic2019, isic2020, pad-ufes-20)";
        assert_eq!(e, format!("config: {want}"));
    }

    #[test]
    fn each_layout_writes_the_published_header_lines() {
        let pad = "patient_id,lesion_id,smoke,drink,background_father,background_mother,age,\
            pesticide,gender,skin_cancer_history,cancer_history,has_piped_water,has_sewage_system,\
            fitspatrick,region,diameter_1,diameter_2,diagnostic,itch,grew,hurt,changed,bleed,\
            elevation,img_id,biopsed";
        let cases = [
            (Layout::Ham10000, "HAM10000_metadata.csv", "lesion_id,image_id,dx,dx_type,age,sex,localization"),
            (Layout::Isic2019, "ISIC_2019_Training_GroundTruth.csv", "image,MEL,NV,BCC,AK,BKL,DF,VASC,SCC,UNK"),
            (Layout::Isic2019, "ISIC_2019_Training_Metadata.csv", "image,age_approx,anatom_site_general,lesion_id,sex"),
            (Layout::Isic2020, "train.csv", "image_name,patient_id,sex,age_approx,anatom_site_general_challenge,diagnosis,benign_malignant,target"),
            (Layout::PadUfes20, "metadata.csv", pad),
        ];
        let dir = tempfile::tempdir().unwrap();
        for (layout, file, header) in cases {
            let root = dir.path().join(layout.to_string());
            if !root.exists() {
                write(layout, &root, &spec(20)).unwrap();
            }
            let text = std::fs::read_to_string(root.join(file)).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines[0], header, "{file}");
            assert_eq!(lines.len(), 21, "{file}: header and one row per image");
            let width = header.split(',').count();
            assert!(
                lines.iter().all(|l| l.split(',').count() == width),
                "{file}"
            );
        }
    }

    /// (layout, classes after the data_toml's label_map, image file extension)
    const READ_BACK: [(Layout, usize, &str); 4] = [
        (Layout::Ham10000, 7, "jpg"),
        (Layout::Isic2019, 8, "jpg"),
        (Layout::Isic2020, 2, "jpg"),
        (Layout::PadUfes20, 6, "png"),
    ];

    #[test]
    fn reading_back_gives_classes_groups_and_skipped_files() {
        let dir = tempfile::tempdir().unwrap();
        for (layout, classes, ext) in READ_BACK {
            let out = write(layout, &dir.path().join(layout.to_string()), &spec(60)).unwrap();
            assert_eq!(out.images_written, 58, "{layout}");
            let scan = read_table(&source(&out.data_toml), Some(&decodes)).unwrap();
            assert_eq!(scan.classes.len(), classes, "{layout}: {:?}", scan.classes);
            assert!(scan.classes.contains(&"melanoma".to_string()), "{layout}");
            assert_eq!(scan.samples.len(), 57, "{layout}");
            let reasons: Vec<&str> = scan.skipped.iter().map(|s| s.reason.as_str()).collect();
            assert_eq!(
                reasons
                    .iter()
                    .filter(|r| r.contains("not found in"))
                    .count(),
                2,
                "{layout}"
            );
            let bad = if ext == "png" {
                "unexpected end of file"
            } else {
                "truncated JPEG"
            };
            assert_eq!(
                reasons.iter().filter(|r| r.contains(bad)).count(),
                1,
                "{layout}: {reasons:?}"
            );
            assert!(scan
                .samples
                .iter()
                .all(|s| s.path.extension().unwrap() == ext));
            assert!(scan.samples.iter().all(|s| s.attributes.len() >= 3));
            let grouped = scan.samples.iter().filter(|s| s.group.is_some()).count();
            let groups: BTreeSet<_> = scan
                .samples
                .iter()
                .filter_map(|s| s.group.clone())
                .collect();
            assert!(
                groups.len() < grouped,
                "{layout}: some groups hold several images"
            );
            if layout == Layout::Isic2019 {
                assert!(
                    (8..=30).contains(&(57 - grouped)),
                    "{layout}: ~30 % without lesion id"
                );
            } else {
                assert_eq!(grouped, 57, "{layout}: every row has a group");
            }
        }
    }

    #[test]
    fn image_folder_scans_with_its_corrupt_file_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let out = write(Layout::ImageFolder, dir.path(), &spec(12)).unwrap();
        assert_eq!(
            out.images_written, 12,
            "missing does not apply without a table"
        );
        let want = format!(
            "[data]\nroot = \"{}\"\npositive_class = \"melanoma\"\n",
            out.root.display()
        );
        assert_eq!(out.data_toml, want);
        let scan = crate::data::scan::scan(&out.root, true).unwrap();
        assert_eq!(scan.classes, ["melanoma", "naevus"]);
        assert_eq!((scan.samples.len(), scan.skipped.len()), (11, 1));
    }

    #[test]
    fn the_same_spec_writes_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = |name: &str, seed: u64| {
            let root = dir.path().join(name);
            write(Layout::Isic2019, &root, &LookalikeSpec { seed, ..spec(20) }).unwrap();
            let meta = std::fs::read(root.join("ISIC_2019_Training_Metadata.csv")).unwrap();
            let image = std::fs::read(root.join("ISIC_2019_Training_Input/ISIC_0000003.jpg"));
            (meta, image.unwrap())
        };
        let a = bytes("a", 7);
        assert_eq!(a, bytes("b", 7));
        assert_ne!(a, bytes("c", 8));
    }

    #[test]
    fn isic2020_keeps_its_melanoma_share_over_several_patients() {
        for (n, melanomas) in [(8, 2), (500, 9), (5000, 90)] {
            let rows = assign_patients(n, &mut ChaCha8Rng::seed_from_u64(3));
            let mel: Vec<&Row> = rows.iter().filter(|r| r.class == 1).collect();
            assert_eq!(mel.len(), melanomas, "{n}");
            let patients: BTreeSet<usize> = mel.iter().map(|r| r.patient).collect();
            assert!(patients.len() >= 2, "{n}");
        }
    }

    #[test]
    fn impossible_specs_are_config_errors() {
        let dir = tempfile::tempdir().unwrap();
        let e = write(Layout::Ham10000, dir.path(), &spec(13))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "config: ham10000 look-alike: 13 images are too few (at least 14: two per class)"
        );
        std::fs::write(dir.path().join("x"), b"").unwrap();
        let e = write(Layout::ImageFolder, dir.path(), &spec(12))
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with(" is not empty (files of an earlier run would mix in)"),
            "{e}"
        );
        let too_many = LookalikeSpec {
            corrupt: 30,
            ..spec(20)
        };
        let e = write(Layout::ImageFolder, &dir.path().join("y"), &too_many)
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("30 corrupt and missing images would leave a class fewer than two readable images (raise images)"),
            "{e}"
        );
    }
}
