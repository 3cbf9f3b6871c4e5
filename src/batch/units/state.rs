//! A unit's files under `reports/<run>/units/`: `<id>.done.json` (its key:
//! finished), `<id>.started.json` (who runs it, where), `<id>.failed.json`
//! (why it stopped), `<id>.progress.json`, `logs/<id>.log`, the lock that
//! keeps two workers off one unit, and `out/<id>/` for what it writes
//! before the report merges it. Every JSON file is written atomically.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Plan, Unit};
use crate::error::{Error, Result};

/// `reports/<run>/units/`.
pub fn units_dir(run: &str) -> PathBuf {
    crate::batch::run_dir(run).join("units")
}

/// The paths of one unit's files.
#[derive(Debug, Clone)]
pub struct UnitFiles {
    pub dir: PathBuf,
    pub id: String,
}

/// Written when a unit finishes: the key it finished under.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Done {
    pub key: String,
    pub seconds: f64,
    pub host: String,
    pub finished_at: u64,
}

/// Written when a unit starts: where it runs, to tell running from lost.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Started {
    pub key: String,
    pub host: String,
    pub pid: u32,
    /// `SLURM_JOB_ID` / `SLURM_ARRAY_JOB_ID_SLURM_ARRAY_TASK_ID` under Slurm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_job: Option<String>,
    pub started_at: u64,
}

/// Written when a unit fails, or by its worker when it was killed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failed {
    pub key: String,
    pub error: String,
    pub at: u64,
}

impl UnitFiles {
    pub fn new(run: &str, id: &str) -> UnitFiles {
        UnitFiles {
            dir: units_dir(run),
            id: id.to_string(),
        }
    }

    fn file(&self, suffix: &str) -> PathBuf {
        self.dir.join(format!("{}.{suffix}", self.id))
    }

    pub fn done_path(&self) -> PathBuf {
        self.file("done.json")
    }
    pub fn started_path(&self) -> PathBuf {
        self.file("started.json")
    }
    pub fn failed_path(&self) -> PathBuf {
        self.file("failed.json")
    }
    pub fn progress_path(&self) -> PathBuf {
        self.file("progress.json")
    }
    pub fn lock_path(&self) -> PathBuf {
        self.dir.join("locks").join(format!("{}.lock", self.id))
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("logs").join(format!("{}.log", self.id))
    }
    /// Where the unit writes what the report merges (explanation shards).
    pub fn out_dir(&self) -> PathBuf {
        self.dir.join("out").join(&self.id)
    }

    pub fn done(&self) -> Option<Done> {
        read_json(&self.done_path())
    }
    pub fn started(&self) -> Option<Started> {
        read_json(&self.started_path())
    }
    pub fn failed(&self) -> Option<Failed> {
        read_json(&self.failed_path())
    }

    /// Finished under `key` (a done file of another key is stale).
    pub fn is_done(&self, key: &str) -> bool {
        self.done().is_some_and(|d| d.key == key)
    }

    /// Removes a file if present (a stale done, started or failed record).
    pub fn remove(&self, path: &Path) -> Result<()> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, e)),
            _ => Ok(()),
        }
    }
}

/// Writes `value` as JSON to `path`, all or nothing.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::Other(e.to_string()))?;
    crate::files::write_bytes(path, text.as_bytes())
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// Whether process `pid` on this machine is a melxai unit runner (a pid
/// reused by another program does not count).
fn alive(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| String::from_utf8_lossy(&c).contains("run-unit"))
}

/// Where a unit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitState {
    Done,
    Running,
    /// Its last attempt failed with an error, or its process is gone without
    /// finishing (killed: by a signal, a node failure or `scancel`).
    Failed,
    /// Every dependency done; not started.
    Ready,
    /// Waiting for a dependency.
    Waiting,
}

/// One unit's state with what tells it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnitStatus {
    pub id: String,
    pub state: UnitState,
    pub stage: usize,
    /// The error, "killed" or where it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    pub log: PathBuf,
}

/// Every unit's state from its files. `running_elsewhere(started)` says
/// whether a unit started on another host (or under a scheduler) still
/// runs; on this host the process table says.
pub fn unit_states(plan: &Plan, running_elsewhere: &dyn Fn(&Started) -> bool) -> Vec<UnitStatus> {
    let here = host();
    let mut out: Vec<UnitStatus> = Vec::with_capacity(plan.units.len());
    for u in &plan.units {
        let files = UnitFiles::new(&plan.run, &u.id);
        let (state, detail, seconds) = state_of(u, &files, &here, running_elsewhere, &out);
        out.push(UnitStatus {
            id: u.id.clone(),
            state,
            stage: u.stage,
            detail,
            seconds,
            log: files.log_path(),
        });
    }
    out
}

fn state_of(
    u: &Unit,
    files: &UnitFiles,
    here: &str,
    running_elsewhere: &dyn Fn(&Started) -> bool,
    before: &[UnitStatus],
) -> (UnitState, Option<String>, Option<f64>) {
    if let Some(d) = files.done().filter(|d| d.key == u.key) {
        return (UnitState::Done, None, Some(d.seconds));
    }
    let started = files.started().filter(|s| s.key == u.key);
    let failed = files.failed().filter(|f| f.key == u.key);
    if let Some(s) = &started {
        let newer_than_failure = failed.as_ref().is_none_or(|f| s.started_at > f.at);
        let runs = if s.host == here {
            alive(s.pid)
        } else {
            running_elsewhere(s)
        };
        if runs && newer_than_failure {
            let job = s
                .slurm_job
                .as_ref()
                .map_or(String::new(), |j| format!(", Slurm job {j}"));
            return (
                UnitState::Running,
                Some(format!("on {} (pid {}{job})", s.host, s.pid)),
                None,
            );
        }
        if newer_than_failure {
            let job = s
                .slurm_job
                .as_ref()
                .map_or(String::new(), |j| format!(" (Slurm job {j})"));
            return (
                UnitState::Failed,
                Some(format!(
                    "killed: started on {}{job}, gone without finishing",
                    s.host
                )),
                None,
            );
        }
    }
    if let Some(f) = failed {
        return (UnitState::Failed, Some(f.error), None);
    }
    let ready = u.deps.iter().all(|d| {
        before
            .iter()
            .any(|b| &b.id == d && b.state == UnitState::Done)
    });
    let state = if ready {
        UnitState::Ready
    } else {
        UnitState::Waiting
    };
    (state, None, None)
}
