//! `config.toml`: every option of the pipeline, with defaults that reproduce
//! the study on MED-NODE. CLI flags override file values.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    pub data: DataConfig,
    pub model: ModelConfig,
    /// Sections of later stages are kept as tables until their modules read them.
    pub train: toml::Table,
    pub calibrate: toml::Table,
    pub explain: toml::Table,
    pub compare: toml::Table,
    pub report: toml::Table,
    pub tui: toml::Table,
    pub batch: toml::Table,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// Folder with one sub-folder per class.
    pub root: PathBuf,
    /// Name of the positive class (metrics treat it as "disease present").
    pub positive_class: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Architecture of new models: lite0..lite4, b0..b7.
    pub arch: String,
    /// Where checkpoints and the ImageNet weights live.
    pub weights_dir: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            device: "auto".into(),
            data: DataConfig::default(),
            model: ModelConfig::default(),
            train: toml::Table::new(),
            calibrate: toml::Table::new(),
            explain: toml::Table::new(),
            compare: toml::Table::new(),
            report: toml::Table::new(),
            tui: toml::Table::new(),
            batch: toml::Table::new(),
        }
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            root: PathBuf::from("complete_mednode_dataset"),
            positive_class: "melanoma".into(),
        }
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            arch: "lite0".into(),
            weights_dir: PathBuf::from("weights"),
        }
    }
}

impl Config {
    /// Reads `path`; a missing file at the default location means defaults.
    pub fn load(path: &Path, required: bool) -> Result<Config> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                Ok(Config::default())
            }
            Err(e) => Err(Error::io(path, e)),
        }
    }
}
