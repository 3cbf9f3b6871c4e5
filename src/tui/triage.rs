//! Triage marks: a researcher's per-sample verdicts, kept on disk.
//!
//! Marks are written the moment they change, atomically (temporary file in
//! the same directory, then rename), so a crash or a killed SSH session never
//! loses or half-writes them. The file is TOML (or JSON when its name ends in
//! `.json`) so it can be read and edited by hand and diffed in review:
//!
//! ```toml
//! [samples."melanoma/ISIC_1.jpg"]
//! mark = "flag"
//! note = "hair artefact"
//! ```
//!
//! Samples marked [`TriageMark::Exclude`] are left out of the next training run.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::tui::error::{Result, TuiError};

/// A researcher's verdict on one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriageMark {
    /// Worth a second look.
    Flag,
    /// Label and prediction checked.
    Confirmed,
    /// Leave out of training (bad image, wrong label, duplicate).
    Exclude,
}

impl TriageMark {
    /// One-character symbol for the sample list.
    pub fn symbol(self) -> &'static str {
        match self {
            TriageMark::Flag => "⚑",
            TriageMark::Confirmed => "●",
            TriageMark::Exclude => "⊘",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            TriageMark::Flag => "flagged",
            TriageMark::Confirmed => "confirmed",
            TriageMark::Exclude => "excluded",
        }
    }
}

/// Mark and note of one sample (either may be absent).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriageEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark: Option<TriageMark>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl TriageEntry {
    pub fn is_empty(&self) -> bool {
        self.mark.is_none() && self.note.as_deref().is_none_or(str::is_empty)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TriageFile {
    #[serde(default)]
    samples: BTreeMap<String, TriageEntry>,
}

fn is_json(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

/// Reads the triage file; a missing file is an empty triage.
pub fn load(path: &Path) -> Result<BTreeMap<String, TriageEntry>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(TuiError::io(path, e)),
    };
    let file: TriageFile = if is_json(path) {
        serde_json::from_str(&text)
            .map_err(|e| TuiError::Triage(format!("{}: {e}", path.display())))?
    } else {
        toml::from_str(&text).map_err(|e| TuiError::Triage(format!("{}: {e}", path.display())))?
    };
    Ok(file.samples)
}

/// Writes all entries (empty ones dropped) atomically.
pub fn save(path: &Path, entries: &BTreeMap<String, TriageEntry>) -> Result<()> {
    let file = TriageFile {
        samples: entries
            .iter()
            .filter(|(_, e)| !e.is_empty())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    let text = if is_json(path) {
        serde_json::to_string_pretty(&file).map_err(|e| TuiError::Triage(e.to_string()))?
    } else {
        toml::to_string_pretty(&file).map_err(|e| TuiError::Triage(e.to_string()))?
    };
    atomic_write(path, text.as_bytes())
}

/// Renames an unreadable triage file to `<file>.unreadable-<unix seconds>`
/// (a free name) so the next save cannot destroy the user's earlier marks;
/// returns the new path, or `None` when the file is gone by now.
pub fn move_aside(path: &Path) -> Result<Option<std::path::PathBuf>> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "triage.toml".into());
    let mut aside = path.with_file_name(format!("{name}.unreadable-{secs}"));
    let mut n = 1;
    while aside.exists() {
        aside = path.with_file_name(format!("{name}.unreadable-{secs}-{n}"));
        n += 1;
    }
    match std::fs::rename(path, &aside) {
        Ok(()) => Ok(Some(aside)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(TuiError::io(path, e)),
    }
}

/// Writes `bytes` atomically (temp file, fsync, rename; see [`crate::files`]).
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::files::write_bytes(path, bytes).map_err(|e| match e {
        crate::error::Error::Io { path, source } => TuiError::io(&path, source),
        other => TuiError::Triage(other.to_string()),
    })
}

/// Ids marked "exclude from training", sorted.
pub fn excluded_ids(entries: &BTreeMap<String, TriageEntry>) -> Vec<String> {
    entries
        .iter()
        .filter(|(_, e)| e.mark == Some(TriageMark::Exclude))
        .map(|(k, _)| k.clone())
        .collect()
}
