//! Workers: `melxai batch worker` takes ready units until none is left, each
//! run as its own `melxai batch run-unit` process (its log in
//! `units/logs/<id>.log`; a crash or kill costs that unit only). The local
//! executor (`--batch --workers N`, `--devices`) starts N such workers and
//! waits for them.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::state::{now, unit_states, write_json, Failed, UnitFiles, UnitState};
use super::{Plan, UnitKind};
use crate::error::{Error, Result};

/// Exit status of `run-unit` when another process holds the unit.
pub const EXIT_LOCKED: i32 = 3;

/// How to start melxai again for a unit or a worker.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The melxai binary.
    pub exe: PathBuf,
    /// The config file, absolute.
    pub config: PathBuf,
    pub device: Option<String>,
    /// libtorch threads of each unit but the report (which runs alone and
    /// gets every core); `None`: libtorch's default.
    pub threads: Option<usize>,
    pub shard: Option<WorkerShard>,
}

/// `--shard i/N`: this worker takes the units whose plan index is i mod N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerShard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for WorkerShard {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = || format!("'{s}': expected i/N with 0 <= i < N, e.g. 0/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse::<usize>().map_err(|_| bad())?,
            n.trim().parse::<usize>().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(WorkerShard { index, count })
    }
}

impl WorkerOptions {
    /// The global arguments every child gets.
    fn base(&self) -> Command {
        let mut c = Command::new(&self.exe);
        c.arg("--config").arg(&self.config);
        if let Some(d) = &self.device {
            c.args(["--device", d]);
        }
        c
    }

    fn unit_command(&self, run: &str, id: &str, report: bool) -> Command {
        let mut c = self.base();
        c.args(["batch", "run-unit", "--run", run, id]);
        if let (Some(t), false) = (self.threads, report) {
            c.args(["--threads", &t.to_string()]);
        }
        c
    }
}

/// What one worker did.
#[derive(Debug, Default)]
pub struct WorkerReport {
    pub ran: Vec<String>,
    pub failed: Vec<String>,
}

/// Takes ready units of `plan` (of its shard) until none is left to take:
/// all done, failed, or waiting on a failure. `say` hears one line per
/// unit started and ended.
pub fn worker(
    plan: &Plan,
    opts: &WorkerOptions,
    say: &mut dyn FnMut(&str),
) -> Result<WorkerReport> {
    let mine = |i: usize| opts.shard.is_none_or(|s| i % s.count == s.index);
    let mut report = WorkerReport::default();
    let mut failed_here: HashSet<String> = HashSet::new();
    let mut idle_rounds = 0u32;
    // The local executor numbers its workers (`MELXAI_WORKER_INDEX`).
    let index = std::env::var("MELXAI_WORKER_INDEX")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    loop {
        // Units started on another host are taken as running: their
        // worker is not ours to judge.
        let states = unit_states(plan, &|_| true);
        let done = |id: &str| {
            states
                .iter()
                .any(|s| s.id == id && s.state == UnitState::Done)
        };
        let ready: Vec<_> = plan
            .units
            .iter()
            .enumerate()
            .filter(|(i, u)| {
                let s = &states[*i];
                mine(*i)
                    && matches!(s.state, UnitState::Ready | UnitState::Failed)
                    && !failed_here.contains(&u.id)
                    && u.deps.iter().all(|d| done(d))
            })
            .collect();
        // Workers freed at once take different units (the i-th worker the
        // i-th ready one), rather than all racing for the first.
        let next = (!ready.is_empty()).then(|| ready[index % ready.len()]);
        if let Some((_, unit)) = next {
            idle_rounds = 0;
            say(&format!("start {}", unit.id));
            match run_child(plan, opts, &unit.id, unit.kind == UnitKind::Report)? {
                Outcome::Done => {
                    say(&format!("done  {}", unit.id));
                    report.ran.push(unit.id.clone());
                }
                Outcome::Locked => std::thread::sleep(Duration::from_millis(500)),
                Outcome::Failed(why) => {
                    say(&format!("FAIL  {}: {why}", unit.id));
                    failed_here.insert(unit.id.clone());
                    report.failed.push(unit.id.clone());
                }
            }
            continue;
        }
        let running = states.iter().any(|s| s.state == UnitState::Running);
        // A sharded worker waits for the units other shards run.
        let others_pending = opts.shard.is_some()
            && plan.units.iter().enumerate().any(|(i, u)| {
                mine(i)
                    && !failed_here.contains(&u.id)
                    && !matches!(states[i].state, UnitState::Done | UnitState::Failed)
            });
        if !running && !others_pending {
            return Ok(report);
        }
        idle_rounds = idle_rounds.saturating_add(1);
        std::thread::sleep(Duration::from_millis(if idle_rounds < 20 {
            250
        } else {
            1000
        }));
    }
}

enum Outcome {
    Done,
    Locked,
    Failed(String),
}

/// One `run-unit` child, its output appended to the unit's log.
fn run_child(plan: &Plan, opts: &WorkerOptions, id: &str, report: bool) -> Result<Outcome> {
    let files = UnitFiles::new(&plan.run, id);
    let log = open_log(&files.log_path())?;
    let err = log
        .try_clone()
        .map_err(|e| Error::io(files.log_path(), e))?;
    let status = opts
        .unit_command(&plan.run, id, report)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .status()
        .map_err(|e| Error::Other(format!("cannot start {}: {e}", opts.exe.display())))?;
    Ok(match status.code() {
        Some(0) => Outcome::Done,
        Some(EXIT_LOCKED) => Outcome::Locked,
        Some(code) => Outcome::Failed(format!("exit {code}, log {}", files.log_path().display())),
        None => {
            // Killed by a signal: it could not say so itself.
            let key = plan.unit(id)?.key.clone();
            let why = format!("killed by a signal ({status})");
            write_json(
                &files.failed_path(),
                &Failed {
                    key,
                    error: why.clone(),
                    at: now(),
                },
            )?;
            Outcome::Failed(why)
        }
    })
}

fn open_log(path: &std::path::Path) -> Result<std::fs::File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(path, e))
}

/// `--batch --workers N [--devices ...]` on this machine.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    pub workers: usize,
    /// One per worker, in order; empty: every worker on `--device`.
    pub devices: Vec<String>,
    /// The machine's cores, divided between the workers when
    /// `divide_cores` (a CPU run without `[batch] cpu_threads`).
    pub cores: usize,
    pub divide_cores: bool,
}

/// Starts the workers of a local run and waits for them; `say` hears a line
/// whenever the count of finished units changes. Fails naming the units
/// that failed (with their logs) unless the report unit finished.
pub fn run_local(
    plan: &Plan,
    base: &WorkerOptions,
    local: &LocalOptions,
    say: &mut dyn FnMut(&str),
) -> Result<()> {
    let n = local.workers.max(1);
    let mut children: Vec<Child> = Vec::with_capacity(n);
    for i in 0..n {
        let mut opts = base.clone();
        if let Some(d) = local.devices.get(i) {
            opts.device = Some(d.clone());
        }
        if local.divide_cores && n > 1 {
            opts.threads = Some((local.cores / n).max(1));
        }
        let mut c = opts.base();
        c.args(["batch", "worker", "--run", &plan.run]);
        if let Some(t) = opts.threads {
            c.args(["--threads", &t.to_string()]);
        }
        let log_path = super::state::units_dir(&plan.run)
            .join("logs")
            .join(format!("worker-{i}.log"));
        let log = open_log(&log_path)?;
        let err = log.try_clone().map_err(|e| Error::io(&log_path, e))?;
        let child = c
            .env("MELXAI_WORKER_INDEX", i.to_string())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| Error::Other(format!("cannot start worker {i}: {e}")))?;
        children.push(child);
    }
    let mut last = String::new();
    loop {
        let finished = children
            .iter_mut()
            .all(|c| matches!(c.try_wait(), Ok(Some(_))));
        let states = unit_states(plan, &|_| true);
        let done = states.iter().filter(|s| s.state == UnitState::Done).count();
        let running: Vec<&str> = states
            .iter()
            .filter(|s| s.state == UnitState::Running)
            .map(|s| s.id.as_str())
            .collect();
        let line = format!(
            "units {done}/{} done; running: {}",
            states.len(),
            if running.is_empty() {
                "-".to_string()
            } else {
                running.join(", ")
            }
        );
        if line != last {
            say(&line);
            last = line;
        }
        if finished {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let states = unit_states(plan, &|_| false);
    let failed: Vec<String> = states
        .iter()
        .filter(|s| s.state != UnitState::Done)
        .map(|s| {
            format!(
                "{} ({:?}{}; log {})",
                s.id,
                s.state,
                s.detail
                    .as_ref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default(),
                s.log.display()
            )
        })
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::Other(format!(
            "{} of {} units did not finish: {}. Finished units are kept: `melxai batch resume {}` runs the rest",
            failed.len(),
            states.len(),
            failed.join("; "),
            plan.run
        )))
    }
}
