//! The report unit's first step: the explanation shards' maps moved into
//! `reports/<run>/maps/<model>/` and their records joined into that
//! folder's `maps.json`, where the in-process explanation step finds and
//! reuses them (by content key) instead of computing them again.
//!
//! Idempotent: files are moved before the records are written, and a
//! shard's `maps.json` is removed last, so a report killed half way merges
//! what is left on its next start.

use std::path::Path;

use super::state::units_dir;
use crate::error::{Error, Result};
use crate::explain::split::MapRecord;
use crate::jobs::score_store::{scores_path, ScoreRecord};

/// Merges the folders of the shards `shards` (unit ids, in plan order: the
/// records then stand in the order one process writes them) of run `run`.
pub fn merge_shards(run: &str, shards: &[&str]) -> Result<()> {
    let out = units_dir(run).join("out");
    let maps = crate::batch::run_dir(run).join("maps");
    for shard in shards.iter().map(|id| out.join(id)).filter(|p| p.is_dir()) {
        let mut models: Vec<_> = std::fs::read_dir(&shard)
            .map_err(|e| Error::io(&shard, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        models.sort();
        for from in models {
            let Some(name) = from.file_name() else {
                continue;
            };
            merge_folder(&from, &maps.join(name))?;
        }
    }
    Ok(())
}

/// Moves the map files of one shard's model folder `from` into `to` and
/// joins the records (a shard's record replaces one of the same image and
/// method).
fn merge_folder(from: &Path, to: &Path) -> Result<()> {
    let records_from = from.join("maps.json");
    let Ok(text) = std::fs::read_to_string(&records_from) else {
        return Ok(());
    };
    let incoming: Vec<MapRecord> = serde_json::from_str(&text)
        .map_err(|e| Error::Other(format!("{}: {e}", records_from.display())))?;
    std::fs::create_dir_all(to).map_err(|e| Error::io(to, e))?;
    for entry in std::fs::read_dir(from).map_err(|e| Error::io(from, e))? {
        let path = entry.map_err(|e| Error::io(from, e))?.path();
        let Some(name) = path.file_name() else {
            continue;
        };
        if name == "maps.json" || name == "scores.json" || !path.is_file() {
            continue;
        }
        let dest = to.join(name);
        std::fs::rename(&path, &dest).map_err(|e| Error::io(&dest, e))?;
    }
    let records_to = to.join("maps.json");
    let mut records: Vec<MapRecord> = std::fs::read_to_string(&records_to)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    for r in incoming {
        records.retain(|o| !(o.id == r.id && o.method == r.method));
        records.push(r);
    }
    let text = serde_json::to_string_pretty(&records).map_err(|e| Error::Other(e.to_string()))?;
    crate::files::write_bytes(&records_to, text.as_bytes())?;
    merge_scores(from, to)?;
    std::fs::remove_file(&records_from).map_err(|e| Error::io(&records_from, e))
}

/// Joins a shard's per-image scores into the model folder's (a shard's
/// record replaces one of the same image).
fn merge_scores(from: &Path, to: &Path) -> Result<()> {
    let path = scores_path(from);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let incoming: Vec<ScoreRecord> = serde_json::from_str(&text)
        .map_err(|e| Error::Other(format!("{}: {e}", path.display())))?;
    let target = scores_path(to);
    let mut records: Vec<ScoreRecord> = std::fs::read_to_string(&target)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    for r in incoming {
        records.retain(|o| o.id != r.id);
        records.push(r);
    }
    let text = serde_json::to_string_pretty(&records).map_err(|e| Error::Other(e.to_string()))?;
    crate::files::write_bytes(&target, text.as_bytes())?;
    std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))
}
