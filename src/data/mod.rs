//! Data: decoding inputs, scanning the data set, splits, caching, augmentation.

pub mod augment;
pub mod cache;
pub mod ids;
pub mod image;
pub mod jpeg;
pub mod masks;
pub mod npy;
pub mod scan;
pub mod split;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[data]` of `config.toml`: where the data set is and which class is positive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// Folder with one sub-folder per class.
    pub root: PathBuf,
    /// Name of the positive class (metrics treat it as "disease present").
    pub positive_class: String,
    /// Lesion masks for the localisation scores: a folder of
    /// `<image stem>_segmentation.png` (ISIC 2018 task 1); none by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masks: Option<PathBuf>,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            root: PathBuf::from("complete_mednode_dataset"),
            positive_class: "melanoma".into(),
            masks: None,
        }
    }
}
