//! Data set discovery with ImageFolder rules.
//!
//! Class = sub-folder name, classes in sorted order; files with an image
//! extension (any letter case) are samples; hidden files and folders are
//! ignored. Files that cannot be decoded are not fatal: they are listed in
//! [`Scan::skipped`] with the reason, and the run goes on without them.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};

pub const IMAGE_EXTENSIONS: [&str; 8] = ["jpg", "jpeg", "png", "bmp", "tif", "tiff", "webp", "npy"];

/// One usable image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sample {
    pub path: PathBuf,
    /// Path relative to the data root, with `/` separators (stable identifier).
    pub id: String,
    pub label: usize,
    /// Lesion/patient id from a table's group column (None: the image is its
    /// own group, as in every ImageFolder set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// (column, raw value) of the configured attribute columns, in config
    /// order: what subgroup results are broken down by.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<(String, String)>,
}

impl Sample {
    /// An ImageFolder sample: no group, no attributes.
    pub fn new(path: PathBuf, id: String, label: usize) -> Sample {
        Sample {
            path,
            id,
            label,
            group: None,
            attributes: Vec::new(),
        }
    }
}

/// A file that was left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Scan {
    pub root: PathBuf,
    pub classes: Vec<String>,
    pub samples: Vec<Sample>,
    pub skipped: Vec<Skipped>,
}

impl Scan {
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for s in &self.samples {
            counts[s.label] += 1;
        }
        counts
    }

    /// Each sample's dense patient/lesion group (a sample without a group id
    /// is its own group), in sample order.
    pub fn groups(&self) -> Vec<usize> {
        let keys: Vec<Option<String>> = self.samples.iter().map(|s| s.group.clone()).collect();
        super::groups::dense_groups(&keys)
    }

    /// Distinct groups when any sample has a group id (None: ImageFolder
    /// sets, every image its own group).
    pub fn group_count(&self) -> Option<usize> {
        let groups = self.groups();
        (!super::groups::is_ungrouped(&groups)).then(|| groups.iter().max().map_or(0, |m| m + 1))
    }

    pub fn class_index(&self, name: &str) -> Option<usize> {
        self.classes.iter().position(|c| c == name)
    }
}

fn is_hidden(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

fn has_image_extension(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)) && !e.eq_ignore_ascii_case("npy")
    })
}

/// One path component as id text. Valid UTF-8 is kept as is; any other byte
/// is written `%XX`, so two different non-UTF-8 names never share an id.
pub fn name_text(name: &std::ffi::OsStr) -> String {
    if let Some(s) = name.to_str() {
        return s.to_string();
    }
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for chunk in name.as_bytes().utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What a folder entry is, following symlinks; a dangling link or a loop is
/// reported instead of silently dropped.
enum Entry {
    Dir,
    File,
    Other,
    Broken(String),
}

fn classify(p: &Path) -> Entry {
    match std::fs::metadata(p) {
        Ok(m) if m.is_dir() => Entry::Dir,
        Ok(m) if m.is_file() => Entry::File,
        Ok(_) => Entry::Other,
        Err(e) => {
            let is_link = std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink());
            Entry::Broken(match (is_link, e.raw_os_error()) {
                (true, Some(libc::ELOOP)) => "symbolic link loop".to_string(),
                (true, Some(libc::ENOENT)) => "dangling symbolic link (target missing)".to_string(),
                (true, _) => format!("symbolic link cannot be followed: {e}"),
                (false, _) => format!("cannot be read: {e}"),
            })
        }
    }
}

/// Lists classes and candidate files, then (when `verify`) decodes each file in
/// parallel so unreadable ones are skipped up front rather than mid-training.
pub fn scan(root: &Path, verify: bool) -> Result<Scan> {
    check_root(root)?;
    let mut skipped = Vec::new();
    let classes = class_folders(root, &mut skipped)?;
    let mut candidates = Vec::new();
    let mut class_names = Vec::new();
    for (label, dir) in classes.iter().enumerate() {
        class_names.push(class_candidates(label, dir, &mut candidates, &mut skipped)?);
    }
    let checked = decode_check(candidates, verify);
    let samples = keep_unique_ids(checked, &mut skipped);
    require_every_class(&class_names, &classes, &samples)?;
    Ok(Scan {
        root: root.to_path_buf(),
        classes: class_names,
        samples,
        skipped,
    })
}

/// Fails early, naming the expected layout, when the data path is missing,
/// unreadable or a file.
fn check_root(root: &Path) -> Result<()> {
    match std::fs::metadata(root) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Error::Dataset(format!(
                "data path {} is a file, not a folder (expected {}/<class>/<image> sub-folders)",
                root.display(),
                root.display()
            )))
        }
        Err(e) => {
            let why = if e.kind() == std::io::ErrorKind::NotFound {
                "does not exist".to_string()
            } else {
                format!("cannot be opened ({e})")
            };
            return Err(Error::Dataset(format!(
                "data folder {} {why} (expected {}/<class>/<image> sub-folders)",
                root.display(),
                root.display()
            )));
        }
    }
    Ok(())
}

/// A folder's non-hidden entries in sorted order, so classes and samples come
/// out the same on every file system.
fn list_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| !is_hidden(p))
        .collect();
    v.sort();
    Ok(v)
}

/// The root's class sub-folders (broken entries go to `skipped`); a classifier
/// needs at least two.
fn class_folders(root: &Path, skipped: &mut Vec<Skipped>) -> Result<Vec<PathBuf>> {
    let mut classes: Vec<PathBuf> = Vec::new();
    for p in list_dir(root)? {
        match classify(&p) {
            Entry::Dir => classes.push(p),
            Entry::Broken(reason) => skipped.push(Skipped { path: p, reason }),
            Entry::File | Entry::Other => {}
        }
    }
    if classes.is_empty() {
        return Err(Error::Dataset(format!(
            "no class folders in {} (expected e.g. melanoma/ and naevus/)",
            root.display()
        )));
    }
    if classes.len() < 2 {
        return Err(Error::Dataset(format!(
            "only one class folder ({}) in {}: a classifier needs at least two (e.g. melanoma/ and naevus/)",
            classes[0].display(),
            root.display()
        )));
    }
    Ok(classes)
}

/// Appends one class folder's image files to `candidates` (other files and
/// broken entries to `skipped`) and returns the class name; a class without
/// images is an error.
fn class_candidates(
    label: usize,
    dir: &Path,
    candidates: &mut Vec<Sample>,
    skipped: &mut Vec<Skipped>,
) -> Result<String> {
    let name = dir.file_name().map(name_text).unwrap_or_default();
    let mut files = Vec::new();
    for p in list_dir(dir)? {
        match classify(&p) {
            Entry::File => files.push(p),
            Entry::Broken(reason) => skipped.push(Skipped { path: p, reason }),
            Entry::Dir | Entry::Other => {}
        }
    }
    let images: Vec<PathBuf> = files
        .iter()
        .filter(|p| has_image_extension(p))
        .cloned()
        .collect();
    if images.is_empty() {
        return Err(Error::Dataset(format!(
            "class folder {} holds no images",
            dir.display()
        )));
    }
    for p in files.iter().filter(|p| !has_image_extension(p)) {
        skipped.push(Skipped {
            path: p.clone(),
            reason: "not an image file extension".into(),
        });
    }
    for p in images {
        let id = format!(
            "{name}/{}",
            p.file_name().map(name_text).unwrap_or_default()
        );
        candidates.push(Sample::new(p, id, label));
    }
    Ok(name)
}

/// Pairs each candidate with its decode error (in parallel, only when
/// `verify`), keeping the candidates' order.
fn decode_check(candidates: Vec<Sample>, verify: bool) -> Vec<(Sample, Option<String>)> {
    if verify {
        candidates
            .into_par_iter()
            .map(|s| {
                let err = super::image::decode_rgb(&s.path).err().map(|e| match e {
                    Error::Image { message, .. } => message,
                    other => other.to_string(),
                });
                (s, err)
            })
            .collect()
    } else {
        candidates.into_iter().map(|s| (s, None)).collect()
    }
}

/// The readable samples with unique ids; undecodable files and later holders of
/// a taken id go to `skipped`.
fn keep_unique_ids(
    checked: Vec<(Sample, Option<String>)>,
    skipped: &mut Vec<Skipped>,
) -> Vec<Sample> {
    let mut samples: Vec<Sample> = Vec::new();
    let mut seen = std::collections::BTreeMap::new();
    for (s, err) in checked {
        match err {
            None => {
                // Ids key splits, caches and map files: they must be unique.
                if let Some(first) = seen.get(&s.id) {
                    skipped.push(Skipped {
                        reason: format!("its id '{}' is already taken by {}", s.id, first),
                        path: s.path,
                    });
                    continue;
                }
                seen.insert(s.id.clone(), s.path.display().to_string());
                samples.push(s)
            }
            Some(reason) => skipped.push(Skipped {
                path: s.path,
                reason,
            }),
        }
    }
    samples
}

/// Errors when a class lost all its images to decoding failures, since
/// training on it would silently drop the class.
fn require_every_class(
    class_names: &[String],
    classes: &[PathBuf],
    samples: &[Sample],
) -> Result<()> {
    for (label, name) in class_names.iter().enumerate() {
        if !samples.iter().any(|s| s.label == label) {
            return Err(Error::Dataset(format!(
                "class '{name}' has no readable images in {}",
                classes[label].display()
            )));
        }
    }
    Ok(())
}
