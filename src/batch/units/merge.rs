//! The report unit's first step: the explanation shards' maps moved into
//! `reports/<run>/maps/<model>/` and their records joined into that
//! folder's `maps.json`, where the in-process explanation step finds and
//! reuses them (by content key) instead of computing them again.
//!
//! Idempotent: files are moved before the records are written, and a
//! shard's `maps.json` is removed last, so a report killed half way merges
//! what is left on its next start.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

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
    let maps_from = from.join("maps.json");
    if !maps_from.exists() {
        return Ok(());
    }
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
    merge_records(
        &scores_path(from),
        &scores_path(to),
        |a: &ScoreRecord, b| a.id == b.id,
    )?;
    // Last: the shard's maps.json marks a folder not merged yet.
    merge_records(&maps_from, &to.join("maps.json"), |a: &MapRecord, b| {
        a.id == b.id && a.method == b.method
    })
}

/// Appends the records of the file `from` to those of `to` (an incoming
/// record replaces every `same` one), writes `to` atomically, then removes
/// `from`. Nothing to do when `from` is absent.
fn merge_records<T: Serialize + DeserializeOwned>(
    from: &Path,
    to: &Path,
    same: impl Fn(&T, &T) -> bool,
) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(from) else {
        return Ok(());
    };
    let incoming: Vec<T> = serde_json::from_str(&text)
        .map_err(|e| Error::Other(format!("{}: {e}", from.display())))?;
    let mut records: Vec<T> = std::fs::read_to_string(to)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    for r in incoming {
        records.retain(|o| !same(o, &r));
        records.push(r);
    }
    let text = serde_json::to_string_pretty(&records).map_err(|e| Error::Other(e.to_string()))?;
    crate::files::write_bytes(to, text.as_bytes())?;
    std::fs::remove_file(from).map_err(|e| Error::io(from, e))
}
