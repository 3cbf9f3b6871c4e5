//! Data: decoding inputs, scanning the data set, splits, caching, augmentation.

pub mod augment;
pub mod cache;
pub mod groups;
pub mod ids;
pub mod image;
pub mod jpeg;
pub mod lookalike;
pub mod masks;
pub mod npy;
pub mod scan;
pub mod split;
pub mod store;
pub mod subset;
pub mod table;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[data]` of `config.toml`: where the data set is and which class is positive.
///
/// Two sources: a folder with one sub-folder per class (`root`, ImageFolder
/// rules), or a metadata table (`table`, as HAM10000, ISIC and PAD-UFES-20
/// publish theirs), which also gives lesion/patient groups for grouped splits
/// and attributes for subgroup results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// Folder with one sub-folder per class (unused when `table` is set).
    pub root: PathBuf,
    /// Name of the positive class (metrics treat it as "disease present").
    pub positive_class: String,
    /// Lesion masks for the localisation scores: a folder of
    /// `<image stem>_segmentation.png` (ISIC 2018 task 1); none by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masks: Option<PathBuf>,
    /// Metadata table(s): a CSV, or several joined on `image_column`.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub table: Vec<PathBuf>,
    /// The table column naming each image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_column: Option<String>,
    /// The column holding each image's class name ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_column: Option<String>,
    /// ... or one-hot class columns of 0/1 (ISIC 2019's ground truth).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub label_columns: Vec<String>,
    /// Lesion or patient id: when set, every split keeps a group on one side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_column: Option<String>,
    /// Folder(s) searched in order for each image file.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub image_dir: Vec<PathBuf>,
    /// File name of an image, `{image}` standing for the image column's cell.
    #[serde(
        default = "default_pattern",
        skip_serializing_if = "is_default_pattern"
    )]
    pub image_pattern: String,
    /// Class renames and merges (`mel = "melanoma"`, `"*" = "other"`); a
    /// class mapped to `""` is dropped.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub label_map: BTreeMap<String, String>,
    /// Columns reported by subgroup (numbers binned, e.g. age by decade).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attribute_columns: Vec<String>,
    /// Folder of the decode-once image store (decoded, resized rows keyed by
    /// file content; a second run starts in seconds). None: decode every run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<PathBuf>,
    /// `full`, or `reduced`: large JPEGs decoded at 1/4 or 1/8 scale in the DCT
    /// domain (still at least twice the input size), then resized. Store only.
    #[serde(default, skip_serializing_if = "is_full")]
    pub decode: store::DecodeMode,
    /// Decoded images above this many MiB are streamed from the store batch
    /// by batch instead of held in memory.
    #[serde(default = "default_budget", skip_serializing_if = "is_default_budget")]
    pub memory_budget_mb: usize,
}

fn is_full(m: &store::DecodeMode) -> bool {
    *m == store::DecodeMode::Full
}

fn default_budget() -> usize {
    2048
}

fn is_default_budget(b: &usize) -> bool {
    *b == default_budget()
}

fn default_pattern() -> String {
    "{image}.jpg".into()
}

fn is_default_pattern(p: &str) -> bool {
    p == "{image}.jpg"
}

/// A path or a list of paths.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<PathBuf>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(PathBuf),
        Many(Vec<PathBuf>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(p) => vec![p],
        OneOrMany::Many(v) => v,
    })
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            root: PathBuf::from("complete_mednode_dataset"),
            positive_class: "melanoma".into(),
            masks: None,
            table: Vec::new(),
            image_column: None,
            label_column: None,
            label_columns: Vec::new(),
            group_column: None,
            image_dir: Vec::new(),
            image_pattern: default_pattern(),
            label_map: BTreeMap::new(),
            attribute_columns: Vec::new(),
            store: None,
            decode: store::DecodeMode::Full,
            memory_budget_mb: default_budget(),
        }
    }
}

impl DataConfig {
    /// Whether the data come from a metadata table rather than class folders.
    pub fn is_table(&self) -> bool {
        !self.table.is_empty()
    }

    /// The `table` settings, with a clear error for a missing `image_column`
    /// and the table's own folder as the image folder when none is given.
    fn table_source(&self) -> crate::Result<table::TableSource> {
        let image_column = self.image_column.clone().ok_or_else(|| {
            crate::Error::Config(
                "[data] table is set but image_column is not (e.g. image_column = \"image_id\")"
                    .into(),
            )
        })?;
        let image_dirs = if self.image_dir.is_empty() {
            let first = &self.table[0];
            vec![first.parent().map(PathBuf::from).unwrap_or_default()]
        } else {
            self.image_dir.clone()
        };
        Ok(table::TableSource {
            tables: self.table.clone(),
            image_column,
            label_column: self.label_column.clone(),
            label_columns: self.label_columns.clone(),
            group_column: self.group_column.clone(),
            image_dirs,
            image_pattern: self.image_pattern.clone(),
            label_map: self.label_map.clone(),
            attribute_columns: self.attribute_columns.clone(),
        })
    }
}

/// The data set `[data]` describes: class folders, or a metadata table.
/// `verify` decodes every image up front so unreadable ones are skipped and
/// listed before any work starts.
pub fn load(config: &DataConfig, verify: bool) -> crate::Result<scan::Scan> {
    if !config.is_table() {
        return scan::scan(&config.root, verify);
    }
    let src = config.table_source()?;
    let t = table::read_table(&src, verify.then_some(&table::decodes as table::Verify))?;
    Ok(scan::Scan {
        root: config.table[0].clone(),
        classes: t.classes,
        samples: t.samples,
        skipped: t.skipped,
    })
}
