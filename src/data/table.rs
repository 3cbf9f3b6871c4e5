//! Data sets described by CSV tables (HAM10000, ISIC 2019/2020, PAD-UFES-20).
//!
//! The first table defines the rows (one per image); further tables are
//! left-joined on the image column. The label is either a column of class
//! names or a set of one-hot columns, renamed, merged or dropped by a label
//! map. A malformed table stops the run with a message naming file,
//! spreadsheet row (header = row 1) and column; a missing or unreadable image
//! is listed in [`TableScan::skipped`] and the run goes on, as with
//! ImageFolder scans.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use crate::data::scan::{Sample, Skipped};
use crate::error::{Error, Result};

/// Where a table-described data set is and how to read it (the `[data]` keys).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableSource {
    /// CSV files; the first defines the rows, the others are joined to it.
    pub tables: Vec<PathBuf>,
    /// Column naming the image, present in every table (the join key).
    pub image_column: String,
    /// Column holding a class name per row (exclusive with `label_columns`).
    pub label_column: Option<String>,
    /// One-hot columns, one per class, cells 0/1 (exclusive with `label_column`).
    pub label_columns: Vec<String>,
    /// Lesion/patient column, so near-duplicates stay on one side of a split.
    pub group_column: Option<String>,
    /// Folders searched in order for each image.
    pub image_dirs: Vec<PathBuf>,
    /// File name with `{image}` standing for the image cell, e.g. `{image}.jpg`.
    pub image_pattern: String,
    /// Source class -> target class; `""` drops the rows, key `"*"` maps the rest.
    pub label_map: BTreeMap<String, String>,
    /// Columns copied raw into [`Sample::attributes`] (for subgroup metrics).
    pub attribute_columns: Vec<String>,
}

/// The readable, labelled images of a table and the rows left out.
#[derive(Debug, Clone, Serialize)]
pub struct TableScan {
    pub classes: Vec<String>,
    pub samples: Vec<Sample>,
    pub skipped: Vec<Skipped>,
}

/// Checks one image file; `Err` holds the reason it is skipped.
pub type Verify<'a> = &'a (dyn Fn(&Path) -> std::result::Result<(), String> + Sync);

/// The usual [`Verify`]: the file decodes completely (truncated JPEGs fail).
pub fn decodes(path: &Path) -> std::result::Result<(), String> {
    super::image::decode_rgb(path)
        .map(|_| ())
        .map_err(|e| match e {
            Error::Image { message, .. } => message,
            other => other.to_string(),
        })
}

/// One CSV file held in memory (metadata tables are a few MB at most).
struct Table {
    path: PathBuf,
    header: Vec<String>,
    rows: Vec<csv::StringRecord>,
}

/// A column found in one of the tables.
#[derive(Debug, Clone)]
struct Col {
    name: String,
    table: usize,
    index: usize,
}

/// How a row's source class is read.
enum LabelSpec {
    Column(Col),
    OneHot(Vec<Col>),
}

/// Reads the tables, labels every row and finds (and, with `verify`, checks in
/// parallel) its image file.
pub fn read_table(src: &TableSource, verify: Option<Verify>) -> Result<TableScan> {
    check_source(src)?;
    let tables: Vec<Table> = src.tables.iter().map(|p| load(p)).collect::<Result<_>>()?;
    let joined = Joined::new(&tables, &src.image_column)?;
    let spec = match &src.label_column {
        Some(c) => LabelSpec::Column(joined.column(c)?),
        None => LabelSpec::OneHot(joined.columns(&src.label_columns)?),
    };
    let group = src.group_column.as_deref().map(|c| joined.column(c));
    let group = group.transpose()?;
    let attributes = joined.columns(&src.attribute_columns)?;
    let sources = (0..joined.len())
        .map(|row| joined.source_label(row, &spec))
        .collect::<Result<Vec<_>>>()?;
    check_label_map(&src.label_map, &spec, &sources, &joined)?;
    let targets: Vec<&str> = sources.iter().map(|s| target(&src.label_map, s)).collect();
    let classes = classes_of(&targets, &joined)?;
    let mut candidates = Vec::new();
    for (row, t) in targets.iter().enumerate().filter(|(_, t)| !t.is_empty()) {
        let cell = |c: &Col| joined.cell(row, c).to_string();
        let sample = Sample {
            path: PathBuf::new(),
            id: joined.key(row).to_string(),
            label: classes.binary_search_by(|c| c.as_str().cmp(t)).unwrap_or(0),
            group: group.as_ref().map(cell).filter(|g| !g.is_empty()),
            attributes: attributes
                .iter()
                .map(|a| (a.name.clone(), cell(a)))
                .collect(),
        };
        candidates.push((row, sample));
    }
    let found = find_images(src, &joined, candidates, verify);
    let (samples, skipped) = keep_unique_ids(found, &joined);
    require_every_class(&classes, &samples, &joined)?;
    Ok(TableScan {
        classes,
        samples,
        skipped,
    })
}

/// Rejects `[data]` settings that cannot describe a table source.
fn check_source(src: &TableSource) -> Result<()> {
    let (one, many) = (src.label_column.is_some(), !src.label_columns.is_empty());
    let problem = match () {
        _ if src.tables.is_empty() => "table: no CSV file given".to_string(),
        _ if one && many => "label_column and label_columns are both set: use label_column for \
            a column of class names or label_columns for one-hot columns, not both"
            .into(),
        _ if !one && !many => "neither label_column (a column of class names) nor \
            label_columns (one-hot columns) is set"
            .into(),
        _ if src.image_dirs.is_empty() => "image_dir: no image folder given".into(),
        _ if !src.image_pattern.contains("{image}") => format!(
            "image_pattern '{}' lacks {{image}}: every row would name the same file",
            src.image_pattern
        ),
        _ => return Ok(()),
    };
    Err(Error::Config(format!("[data] {problem}")))
}

/// Reads a whole CSV file; trims cells so `0.0, 1.0` and `0.0,1.0` read alike.
fn load(path: &Path) -> Result<Table> {
    let csv_error = |e: csv::Error| {
        let row = e.position().map(|p| p.record() + 1);
        let text = e.to_string();
        match (e.into_kind(), row) {
            (csv::ErrorKind::Io(io), _) => Error::io(path, io),
            (_, Some(row)) => Error::Dataset(format!("{} row {row}: {text}", path.display())),
            (_, None) => Error::Dataset(format!("{}: {text}", path.display())),
        }
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(csv_error)?;
    let header = reader
        .headers()
        .map_err(csv_error)?
        .iter()
        .map(String::from)
        .collect();
    let rows = reader
        .records()
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(csv_error)?;
    if rows.is_empty() {
        return Err(Error::Dataset(format!(
            "{}: no data rows (an empty table describes no images)",
            path.display()
        )));
    }
    Ok(Table {
        path: path.to_path_buf(),
        header,
        rows,
    })
}

/// The first table's rows with the other tables' rows matched by image cell.
struct Joined<'a> {
    tables: &'a [Table],
    /// Image column index per table.
    keys: Vec<usize>,
    /// Per row of the first table, the matching row of each table.
    links: Vec<Vec<Option<usize>>>,
    key_name: String,
}

impl<'a> Joined<'a> {
    fn new(tables: &'a [Table], image_column: &str) -> Result<Self> {
        let mut keys = Vec::new();
        for t in tables {
            match t.header.iter().position(|h| h == image_column) {
                Some(i) => keys.push(i),
                None => return Err(missing_column(image_column, std::slice::from_ref(t))),
            }
        }
        let first = &tables[0];
        let mut indexes = Vec::new();
        for (t, &k) in tables.iter().zip(&keys).skip(1) {
            indexes.push(key_index(t, k, image_column)?);
        }
        let mut links = Vec::with_capacity(first.rows.len());
        for (row, rec) in first.rows.iter().enumerate() {
            let image = rec.get(keys[0]).unwrap_or("");
            if image.is_empty() {
                return Err(Error::Dataset(format!(
                    "{} row {}, column '{image_column}': empty image cell",
                    first.path.display(),
                    row + 2
                )));
            }
            let mut link = vec![Some(row)];
            link.extend(indexes.iter().map(|ix| ix.get(image).copied()));
            links.push(link);
        }
        Ok(Joined {
            tables,
            keys,
            links,
            key_name: image_column.to_string(),
        })
    }

    fn len(&self) -> usize {
        self.links.len()
    }

    /// The image cell of a row of the first table.
    fn key(&self, row: usize) -> &str {
        self.tables[0].rows[row].get(self.keys[0]).unwrap_or("")
    }

    /// Finds a column in the first table that has it.
    fn column(&self, name: &str) -> Result<Col> {
        self.tables
            .iter()
            .enumerate()
            .find_map(|(table, t)| {
                t.header.iter().position(|h| h == name).map(|index| Col {
                    name: name.to_string(),
                    table,
                    index,
                })
            })
            .ok_or_else(|| missing_column(name, self.tables))
    }

    /// A cell; empty where a joined table has no row for the image.
    fn cell(&self, row: usize, col: &Col) -> &str {
        match self.links[row][col.table] {
            Some(r) => self.tables[col.table].rows[r].get(col.index).unwrap_or(""),
            None => "",
        }
    }

    fn columns(&self, names: &[String]) -> Result<Vec<Col>> {
        names.iter().map(|c| self.column(c)).collect()
    }

    /// "file row N" for the row of the table holding `col`.
    fn place(&self, row: usize, col: &Col) -> String {
        let t = &self.tables[col.table];
        match self.links[row][col.table] {
            Some(r) => format!("{} row {}", t.path.display(), r + 2),
            None => format!(
                "{} (no row for {} '{}' of {} row {})",
                t.path.display(),
                self.key_name,
                self.key(row),
                self.tables[0].path.display(),
                row + 2
            ),
        }
    }

    /// "file row N" of the first table, for messages about a whole row.
    fn row_place(&self, row: usize) -> String {
        format!("{} row {}", self.tables[0].path.display(), row + 2)
    }

    fn source_label(&self, row: usize, spec: &LabelSpec) -> Result<String> {
        let fail = |col: &Col, what: String| {
            Err(Error::Dataset(format!(
                "{}, column '{}': {what}",
                self.place(row, col),
                col.name
            )))
        };
        let cols = match spec {
            LabelSpec::Column(col) => {
                let v = self.cell(row, col);
                return match v.is_empty() {
                    true => fail(col, "empty label cell".into()),
                    false => Ok(v.to_string()),
                };
            }
            LabelSpec::OneHot(cols) => cols,
        };
        let mut set: Vec<&Col> = Vec::new();
        for col in cols {
            let v = self.cell(row, col);
            if v.is_empty() {
                return fail(col, "empty label cell".into());
            }
            match v.parse::<f64>() {
                Ok(1.0) => set.push(col),
                Ok(0.0) => {}
                Ok(_) => return fail(col, format!("one-hot cell '{v}' is neither 0 nor 1")),
                Err(_) => return fail(col, format!("one-hot cell '{v}' is not a number")),
            }
        }
        match set.as_slice() {
            [one] => Ok(one.name.clone()),
            [] => Err(Error::Dataset(format!(
                "{}, columns {}: no label set (one-hot rows need exactly one 1)",
                self.place(row, &cols[0]),
                quoted(cols.iter().map(|c| c.name.as_str()))
            ))),
            [a, b, ..] => Err(Error::Dataset(format!(
                "{}, columns '{}' and '{}': two labels set (one-hot rows need exactly one 1)",
                self.place(row, a),
                a.name,
                b.name
            ))),
        }
    }
}

/// Image cell -> row of a joined table; a repeated image would make the join
/// ambiguous, so it is an error.
fn key_index<'t>(t: &'t Table, key: usize, name: &str) -> Result<HashMap<&'t str, usize>> {
    let mut index = HashMap::with_capacity(t.rows.len());
    for (r, rec) in t.rows.iter().enumerate() {
        let image = rec.get(key).unwrap_or("");
        if let Some(first) = index.insert(image, r) {
            return Err(Error::Dataset(format!(
                "{} row {}, column '{name}': image '{image}' already in row {}; a joined table \
                 needs one row per image",
                t.path.display(),
                r + 2,
                first + 2
            )));
        }
    }
    Ok(index)
}

fn missing_column(name: &str, tables: &[Table]) -> Error {
    let headers: Vec<String> = tables
        .iter()
        .map(|t| {
            format!(
                "{} row 1 (header) has {}",
                t.path.display(),
                quoted(t.header.iter().map(String::as_str))
            )
        })
        .collect();
    Error::Dataset(format!("column '{name}' not found: {}", headers.join("; ")))
}

fn quoted<'s>(names: impl Iterator<Item = &'s str>) -> String {
    names
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A label map key that matches no class is almost always a typo that would
/// otherwise silently keep the class under its old name.
fn check_label_map(
    map: &BTreeMap<String, String>,
    spec: &LabelSpec,
    sources: &[String],
    joined: &Joined,
) -> Result<()> {
    let (found, col): (BTreeSet<&str>, &Col) = match spec {
        LabelSpec::Column(col) => (sources.iter().map(String::as_str).collect(), col),
        LabelSpec::OneHot(cols) => (cols.iter().map(|c| c.name.as_str()).collect(), &cols[0]),
    };
    for key in map.keys().filter(|k| *k != "*") {
        if !found.contains(key.as_str()) {
            let what = match spec {
                LabelSpec::Column(c) => format!("column '{}' has", c.name),
                LabelSpec::OneHot(_) => "label_columns are".to_string(),
            };
            return Err(Error::Dataset(format!(
                "label_map key '{key}' is not a class of {} ({what} {})",
                joined.tables[col.table].path.display(),
                quoted(found.iter().copied())
            )));
        }
    }
    Ok(())
}

/// The class a source class ends up in; `""` means the row is dropped.
fn target<'m>(map: &'m BTreeMap<String, String>, source: &'m str) -> &'m str {
    map.get(source)
        .or_else(|| map.get("*"))
        .map(String::as_str)
        .unwrap_or(source)
}

/// Sorted distinct targets (the ImageFolder rule), at least two.
fn classes_of(targets: &[&str], joined: &Joined) -> Result<Vec<String>> {
    let classes: BTreeSet<&str> = targets.iter().copied().filter(|t| !t.is_empty()).collect();
    if classes.len() < 2 {
        return Err(Error::Dataset(format!(
            "{}: {} class(es) after label_map ({}); a classifier needs at least two",
            joined.tables[0].path.display(),
            classes.len(),
            quoted(classes.iter().copied())
        )));
    }
    Ok(classes.into_iter().map(String::from).collect())
}

/// Resolves each candidate's file (first folder that has it) and verifies it,
/// in parallel because both touch the disk once per image.
fn find_images(
    src: &TableSource,
    joined: &Joined,
    candidates: Vec<(usize, Sample)>,
    verify: Option<Verify>,
) -> Vec<(usize, std::result::Result<Sample, Skipped>)> {
    let searched: Vec<String> = (src.image_dirs.iter())
        .map(|d| d.display().to_string())
        .collect();
    let searched = searched.join(", ");
    let find = |(row, mut sample): (usize, Sample)| {
        let name = src.image_pattern.replace("{image}", &sample.id);
        let dirs = src.image_dirs.iter();
        let Some(path) = dirs.map(|d| d.join(&name)).find(|p| p.is_file()) else {
            let reason = format!(
                "{}: image file '{name}' (image_pattern '{}') not found in {searched}",
                joined.row_place(row),
                src.image_pattern,
            );
            let path = src.image_dirs[0].join(&name);
            return (row, Err(Skipped { path, reason }));
        };
        if let Some(Err(reason)) = verify.map(|v| v(&path)) {
            return (row, Err(Skipped { path, reason }));
        }
        sample.path = path;
        (row, Ok(sample))
    };
    candidates.into_par_iter().map(find).collect()
}

/// Ids key splits, caches and map files, so a repeated image cell keeps only
/// its first usable row.
fn keep_unique_ids(
    found: Vec<(usize, std::result::Result<Sample, Skipped>)>,
    joined: &Joined,
) -> (Vec<Sample>, Vec<Skipped>) {
    let (mut samples, mut skipped) = (Vec::new(), Vec::new());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (row, result) in found {
        match result.map(|s| (seen.get(&s.id).copied(), s)) {
            Ok((None, s)) => {
                seen.insert(s.id.clone(), row);
                samples.push(s);
            }
            Ok((Some(first), s)) => skipped.push(Skipped {
                reason: format!(
                    "{}: its id '{}' is already taken by row {}",
                    joined.row_place(row),
                    s.id,
                    first + 2
                ),
                path: s.path,
            }),
            Err(s) => skipped.push(s),
        }
    }
    (samples, skipped)
}

/// A class whose every image was skipped would silently vanish from training.
fn require_every_class(classes: &[String], samples: &[Sample], joined: &Joined) -> Result<()> {
    for (label, name) in classes.iter().enumerate() {
        if !samples.iter().any(|s| s.label == label) {
            return Err(Error::Dataset(format!(
                "{}: class '{name}' has no usable image (all its rows were skipped)",
                joined.tables[0].path.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder with `t.csv` (the given text) and `img/` holding `files`.
    fn setup(csv: &str, files: &[&str]) -> (tempfile::TempDir, TableSource) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t.csv"), csv).unwrap();
        std::fs::create_dir(dir.path().join("img")).unwrap();
        for f in files {
            std::fs::write(dir.path().join("img").join(f), b"x").unwrap();
        }
        let src = TableSource {
            tables: vec![dir.path().join("t.csv")],
            image_column: "image".into(),
            label_column: Some("dx".into()),
            image_dirs: vec![dir.path().join("img")],
            image_pattern: "{image}.jpg".into(),
            ..TableSource::default()
        };
        (dir, src)
    }

    /// Asserts that reading fails with a message ending in `tail`.
    fn fails(src: &TableSource, tail: &str) {
        let e = read_table(src, None).unwrap_err().to_string();
        assert!(e.ends_with(tail), "{e}\ndoes not end with\n{tail}");
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn ids(scan: &TableScan) -> Vec<(&str, usize)> {
        scan.samples
            .iter()
            .map(|s| (s.id.as_str(), s.label))
            .collect()
    }

    const HAM: &str =
        "lesion,image,dx,age\nL1,a,nv,45.0\nL1,b,nv,45.0\n,c,mel,\nL3,d,bkl,60.0\nL4,e,nv,30.0\n";

    #[test]
    fn rows_become_samples_with_groups_attributes_and_missing_images_skipped() {
        let (dir, mut src) = setup(HAM, &["a.jpg", "b.jpg", "c.jpg", "d.jpg"]);
        src.group_column = Some("lesion".into());
        src.attribute_columns = vec!["age".into()];
        let scan = read_table(&src, None).unwrap();
        assert_eq!(scan.classes, ["bkl", "mel", "nv"]);
        assert_eq!(ids(&scan), [("a", 2), ("b", 2), ("c", 1), ("d", 0)]);
        let a = &scan.samples[0];
        assert_eq!(a.path, dir.path().join("img/a.jpg"));
        assert_eq!(a.group.as_deref(), Some("L1"));
        assert_eq!(a.attributes, [("age".to_string(), "45.0".to_string())]);
        assert_eq!(scan.samples[2].group, None, "empty group cell: own group");
        assert_eq!(scan.samples[2].attributes[0].1, "");
        assert_eq!(scan.skipped.len(), 1);
        let s = &scan.skipped[0];
        assert_eq!(s.path, dir.path().join("img/e.jpg"));
        let want = format!(
            "{} row 6: image file 'e.jpg' (image_pattern '{{image}}.jpg') not found in {}",
            src.tables[0].display(),
            src.image_dirs[0].display()
        );
        assert_eq!(s.reason, want);
        let (_dir, src) = setup(HAM, &["a.jpg", "d.jpg"]);
        fails(
            &src,
            "t.csv: class 'mel' has no usable image (all its rows were skipped)",
        );
    }

    #[test]
    fn label_map_renames_merges_drops_and_star_maps_the_rest() {
        let (_dir, mut src) = setup(HAM, &["a.jpg", "b.jpg", "c.jpg", "d.jpg"]);
        src.label_map = map(&[("mel", "melanoma"), ("*", "other")]);
        let scan = read_table(&src, None).unwrap();
        assert_eq!(scan.classes, ["melanoma", "other"]);
        assert_eq!(ids(&scan), [("a", 1), ("b", 1), ("c", 0), ("d", 1)]);
        assert_eq!(scan.skipped.len(), 1, "e.jpg is missing");
        src.label_map = map(&[("nv", ""), ("bkl", "mel")]);
        fails(
            &src,
            "t.csv: 1 class(es) after label_map ('mel'); a classifier needs at least two",
        );
        src.label_map = map(&[("bkl", "")]);
        let scan = read_table(&src, None).unwrap();
        assert_eq!(ids(&scan), [("a", 1), ("b", 1), ("c", 0)]);
        assert_eq!(scan.skipped.len(), 1, "a dropped row is not a skipped file");
        src.label_map = map(&[("melanoma", "mel")]);
        let want = "t.csv (column 'dx' has 'bkl', 'mel', 'nv')";
        fails(&src, want);
        let e = read_table(&src, None).unwrap_err().to_string();
        assert!(e.starts_with("data set: label_map key 'melanoma' is not a class of /"));
    }

    #[test]
    fn config_errors_and_missing_columns() {
        let (_dir, mut src) = setup(HAM, &[]);
        src.label_columns = vec!["MEL".into()];
        let e = read_table(&src, None).unwrap_err().to_string();
        assert!(e.starts_with("config: [data] label_column and label_columns are both set"));
        src.label_columns.clear();
        src.label_column = None;
        fails(&src, "neither label_column (a column of class names) nor label_columns (one-hot columns) is set");
        src.label_column = Some("dx".into());
        src.group_column = Some("lesion_id".into());
        fails(
            &src,
            "t.csv row 1 (header) has 'lesion', 'image', 'dx', 'age'",
        );
        let e = read_table(&src, None).unwrap_err().to_string();
        assert!(e.starts_with("data set: column 'lesion_id' not found: /"));
    }

    #[test]
    fn empty_cells_name_file_row_and_column() {
        let (_dir, src) = setup("image,dx\na,nv\nb,\n", &[]);
        fails(&src, "t.csv row 3, column 'dx': empty label cell");
        let (_dir, src) = setup("image,dx\na,nv\n,mel\n", &[]);
        fails(&src, "t.csv row 3, column 'image': empty image cell");
    }

    const ISIC: &str = "image,MEL,NV,UNK\na,1.0,0.0,0.0\nb,0,1,0\nc,0.0,1.0,0.0\n";

    fn one_hot(csv: &str) -> (tempfile::TempDir, TableSource) {
        let (dir, mut src) = setup(csv, &["a.jpg", "b.jpg", "c.jpg"]);
        src.label_column = None;
        src.label_columns = ["MEL", "NV", "UNK"].map(String::from).to_vec();
        (dir, src)
    }

    #[test]
    fn one_hot_columns_label_rows_and_can_be_mapped() {
        let (_dir, mut src) = one_hot(ISIC);
        let scan = read_table(&src, None).unwrap();
        assert_eq!(
            scan.classes,
            ["MEL", "NV"],
            "a column never set is no class"
        );
        assert_eq!(ids(&scan), [("a", 0), ("b", 1), ("c", 1)]);
        src.label_map = map(&[("MEL", "melanoma"), ("*", "other"), ("UNK", "")]);
        let scan = read_table(&src, None).unwrap();
        assert_eq!(scan.classes, ["melanoma", "other"]);
        src.label_map = map(&[("SCC", "x")]);
        fails(&src, "t.csv (label_columns are 'MEL', 'NV', 'UNK')");
    }

    #[test]
    fn malformed_one_hot_rows_name_file_row_and_columns() {
        let cases = [
            (
                "1.0,1.0,0.0",
                "row 5, columns 'MEL' and 'NV': two labels set",
            ),
            (
                "0.0,0.0,0.0",
                "row 5, columns 'MEL', 'NV', 'UNK': no label set",
            ),
            (
                "0.0,yes,0.0",
                "row 5, column 'NV': one-hot cell 'yes' is not a number",
            ),
            (
                "0.0,0.5,0.0",
                "row 5, column 'NV': one-hot cell '0.5' is neither 0 nor 1",
            ),
            ("0.0,1.0,", "row 5, column 'UNK': empty label cell"),
        ];
        for (row, want) in cases {
            let (_dir, src) = one_hot(&format!("{ISIC}d,{row}\n"));
            let e = read_table(&src, None).unwrap_err().to_string();
            assert!(e.contains(&format!("t.csv {want}")), "{row}: {e}");
        }
    }

    #[test]
    fn later_tables_are_left_joined_on_the_image_column() {
        let (dir, mut src) = setup(
            "image,dx\na,nv\nb,mel\nc,nv\n",
            &["a.jpg", "b.jpg", "c.jpg"],
        );
        let meta = dir.path().join("meta.csv");
        std::fs::write(&meta, "sex,image,lesion\nmale,b,L2\nfemale,a,L1\n").unwrap();
        src.tables.push(meta.clone());
        src.group_column = Some("lesion".into());
        src.attribute_columns = vec!["sex".into(), "dx".into()];
        let scan = read_table(&src, None).unwrap();
        let got: Vec<_> = (scan.samples.iter())
            .map(|s| (s.group.as_deref(), s.attributes[0].1.as_str()))
            .collect();
        assert_eq!(
            got,
            [(Some("L1"), "female"), (Some("L2"), "male"), (None, "")]
        );
        assert_eq!(scan.samples[1].attributes[1], ("dx".into(), "mel".into()));
        src.label_column = Some("lesion".into());
        fails(&src, "t.csv row 4), column 'lesion': empty label cell");
        let e = read_table(&src, None).unwrap_err().to_string();
        assert!(e.contains("meta.csv (no row for image 'c' of /"), "{e}");
        std::fs::write(&meta, "sex,image\nmale,b\nfemale,b\n").unwrap();
        fails(&src, "meta.csv row 3, column 'image': image 'b' already in row 2; a joined table needs one row per image");
        std::fs::write(&meta, "sex,img\nmale,b\n").unwrap();
        fails(&src, "meta.csv row 1 (header) has 'sex', 'img'");
    }

    #[test]
    fn a_cell_with_its_extension_is_found_in_the_first_dir_holding_it() {
        let (dir, mut src) = setup(
            "img_id,diagnostic\nP_1.png,MEL\nP_2.png,NEV\n",
            &["P_2.png"],
        );
        let part2 = dir.path().join("part2");
        std::fs::create_dir(&part2).unwrap();
        std::fs::write(part2.join("P_1.png"), b"x").unwrap();
        std::fs::write(part2.join("P_2.png"), b"x").unwrap();
        src.image_dirs.push(part2.clone());
        src.image_column = "img_id".into();
        src.label_column = Some("diagnostic".into());
        src.image_pattern = "{image}".into();
        let scan = read_table(&src, None).unwrap();
        let paths: Vec<_> = scan.samples.iter().map(|s| s.path.clone()).collect();
        assert_eq!(
            paths,
            [part2.join("P_1.png"), dir.path().join("img/P_2.png")]
        );
        assert_eq!(scan.samples[0].id, "P_1.png");
    }

    #[test]
    fn duplicate_ids_and_rejected_files_are_skipped_with_the_reason() {
        let csv = "image,dx\na,nv\nb,mel\na,mel\nc,nv\nd,mel\n";
        let (dir, src) = setup(csv, &["a.jpg", "b.jpg", "c.jpg", "d.jpg"]);
        let reject_c = |p: &Path| match p.ends_with("c.jpg") {
            true => Err("truncated JPEG".to_string()),
            false => Ok(()),
        };
        let scan = read_table(&src, Some(&reject_c)).unwrap();
        assert_eq!(ids(&scan), [("a", 1), ("b", 0), ("d", 0)]);
        let skipped: Vec<_> = (scan.skipped.iter())
            .map(|s| (s.path.clone(), s.reason.as_str()))
            .collect();
        assert_eq!(skipped.len(), 2);
        assert_eq!(skipped[1], (dir.path().join("img/c.jpg"), "truncated JPEG"));
        assert!(skipped[0]
            .1
            .ends_with("t.csv row 4: its id 'a' is already taken by row 2"));
    }

    #[test]
    fn empty_or_malformed_tables_are_errors() {
        let (_dir, src) = setup("image,dx\n", &[]);
        fails(
            &src,
            "t.csv: no data rows (an empty table describes no images)",
        );
        let (_dir, src) = setup("image,dx\na,nv\nb,mel,extra\n", &[]);
        fails(&src, "t.csv row 3: CSV error: record 2 (line: 3, byte: 14): found record with 3 fields, but the previous record has 2 fields");
        let (_dir, mut src) = setup(HAM, &[]);
        src.tables[0] = src.tables[0].with_file_name("absent.csv");
        fails(&src, "absent.csv: No such file or directory (os error 2)");
    }

    #[test]
    fn decodes_rejects_a_truncated_jpeg() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jpg");
        image::RgbImage::from_pixel(40, 30, image::Rgb([200, 120, 90]))
            .save(&path)
            .unwrap();
        assert_eq!(decodes(&path), Ok(()));
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert!(decodes(&path).unwrap_err().starts_with("truncated JPEG"));
    }
}
