//! `--batch --executor slurm`: one sbatch job array per stage of the plan
//! under `reports/<run>/slurm/`, each stage `afterok` on the stages before
//! it (and `--kill-on-invalid-dep`, so a failed unit does not leave the
//! rest pending for ever), the report last. Every array task runs
//! `melxai batch run-unit` for its unit, its output in the unit's log.
//! `status` joins the unit files with `squeue` (and `sacct` where the
//! cluster keeps accounting); `resume` cancels what is left of the run and
//! submits the units that are not done.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use super::state::{unit_states, units_dir, UnitState};
use super::worker::WorkerOptions;
use super::{Plan, UnitKind};
use crate::config::SlurmConfig;
use crate::error::{Error, Result};

/// One submitted stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageJob {
    pub stage: usize,
    pub job_id: String,
    pub script: PathBuf,
    /// Array task i runs `units[i]`.
    pub units: Vec<String>,
}

/// `slurm/jobs.json`: the jobs of the last submission.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SlurmJobs {
    pub stages: Vec<StageJob>,
}

impl SlurmJobs {
    pub fn path(run: &str) -> PathBuf {
        slurm_dir(run).join("jobs.json")
    }

    pub fn read(run: &str) -> Option<SlurmJobs> {
        serde_json::from_str(&std::fs::read_to_string(Self::path(run)).ok()?).ok()
    }

    /// The job (array task) id running `unit`, `<job>_<task>`.
    pub fn task_of(&self, unit: &str) -> Option<String> {
        self.stages.iter().find_map(|s| {
            let i = s.units.iter().position(|u| u == unit)?;
            Some(format!("{}_{i}", s.job_id))
        })
    }
}

pub fn slurm_dir(run: &str) -> PathBuf {
    crate::batch::run_dir(run).join("slurm")
}

fn job_name(run: &str, stage: usize) -> String {
    format!("melxai-{run}-s{stage}")
}

/// Single-quoted for bash.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).map_err(|e| Error::io(p, e))
}

/// The sbatch script of one stage running `units`.
pub fn stage_script(
    plan: &Plan,
    stage: usize,
    units: &[String],
    slurm: &SlurmConfig,
    opts: &WorkerOptions,
    workdir: &Path,
) -> Result<String> {
    let logs = absolute(&units_dir(&plan.run).join("logs"))?;
    let mut s = String::from("#!/bin/bash\n");
    let mut line = |l: String| {
        s.push_str("#SBATCH ");
        s.push_str(&l);
        s.push('\n');
    };
    line(format!("--job-name={}", job_name(&plan.run, stage)));
    let limit = match slurm.array_parallelism {
        0 => String::new(),
        k => format!("%{k}"),
    };
    line(format!(
        "--array=0-{}{limit}",
        units.len().saturating_sub(1)
    ));
    line(format!("--output={}/slurm-%A_%a.out", logs.display()));
    line("--kill-on-invalid-dep=yes".into());
    for (key, value) in [
        ("partition", &slurm.partition),
        ("account", &slurm.account),
        ("time", &slurm.time),
        ("gres", &slurm.gres),
        ("mem", &slurm.mem),
    ] {
        if !value.is_empty() {
            line(format!("--{key}={value}"));
        }
    }
    if slurm.cpus_per_task > 0 {
        line(format!("--cpus-per-task={}", slurm.cpus_per_task));
    }
    for extra in &slurm.extra {
        line(extra.trim().to_string());
    }
    s.push_str("set -euo pipefail\n");
    s.push_str(&format!("cd {}\n", quote(&workdir.display().to_string())));
    let ids: Vec<String> = units.iter().map(|u| quote(u)).collect();
    s.push_str(&format!("units=({})\n", ids.join(" ")));
    s.push_str("id=\"${units[$SLURM_ARRAY_TASK_ID]}\"\n");
    s.push_str(&format!(
        "mkdir -p {}\n",
        quote(&logs.display().to_string())
    ));
    let mut cmd = vec![
        quote(&opts.exe.display().to_string()),
        "--config".into(),
        quote(&opts.config.display().to_string()),
    ];
    if let Some(d) = &opts.device {
        cmd.extend(["--device".into(), quote(d)]);
    }
    cmd.extend([
        "batch".into(),
        "run-unit".into(),
        "--run".into(),
        quote(&plan.run),
        "\"$id\"".into(),
    ]);
    // `opts.threads`: the caller's choice (the task's CPUs unless `[batch]
    // cpu_threads` fixes them). The report runs alone with libtorch's
    // default, as a single-process run does.
    let report = units
        .iter()
        .all(|u| plan.unit(u).is_ok_and(|u| u.kind == UnitKind::Report));
    if let (Some(t), false) = (opts.threads, report) {
        cmd.extend(["--threads".into(), t.to_string()]);
    }
    s.push_str(&format!(
        "exec {} >>{}/\"$id\".log 2>&1\n",
        cmd.join(" "),
        quote(&logs.display().to_string())
    ));
    Ok(s)
}

/// Writes one script per stage holding units that are not done, submits
/// them in stage order (each `afterok` on every stage submitted before
/// it) and records the job ids in `slurm/jobs.json`.
pub fn submit(plan: &Plan, slurm: &SlurmConfig, opts: &WorkerOptions) -> Result<SlurmJobs> {
    let workdir = std::env::current_dir().map_err(|e| Error::io(Path::new("."), e))?;
    let dir = slurm_dir(&plan.run);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let states = unit_states(plan, &|_| false);
    // Slurm opens each task's output file itself: its folder must exist.
    let logs = units_dir(&plan.run).join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| Error::io(&logs, e))?;
    let mut jobs = SlurmJobs::default();
    for stage in 0..plan.stages() {
        let units: Vec<String> = plan
            .units
            .iter()
            .zip(&states)
            .filter(|(u, s)| u.stage == stage && s.state != UnitState::Done)
            .map(|(u, _)| u.id.clone())
            .collect();
        if units.is_empty() {
            continue;
        }
        let script = dir.join(format!("stage{stage}.sbatch"));
        let text = stage_script(plan, stage, &units, slurm, opts, &workdir)?;
        crate::files::write_bytes(&script, text.as_bytes())?;
        let mut c = Command::new("sbatch");
        c.arg("--parsable");
        if !jobs.stages.is_empty() {
            let after: Vec<&str> = jobs.stages.iter().map(|s| s.job_id.as_str()).collect();
            c.arg(format!("--dependency=afterok:{}", after.join(":")));
        }
        let out = c.arg(&script).output().map_err(|e| {
            Error::Other(format!("cannot run sbatch (is Slurm installed here?): {e}"))
        })?;
        if !out.status.success() {
            return Err(Error::Other(format!(
                "sbatch {} failed: {}",
                script.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let job_id = text.trim().split(';').next().unwrap_or("").to_string();
        if job_id.is_empty() {
            return Err(Error::Other(format!(
                "sbatch printed no job id for {}",
                script.display()
            )));
        }
        jobs.stages.push(StageJob {
            stage,
            job_id,
            script,
            units,
        });
    }
    let text = serde_json::to_string_pretty(&jobs).map_err(|e| Error::Other(e.to_string()))?;
    crate::files::write_bytes(&SlurmJobs::path(&plan.run), text.as_bytes())?;
    Ok(jobs)
}

/// One queued or running array task, as `squeue` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueueEntry {
    /// `<job>_<task>`, or `<job>_[0-3]` for tasks not started yet.
    pub job: String,
    pub state: String,
    pub reason: String,
}

/// The run's jobs still in the queue (by job name, so that finished jobs
/// are no error); empty when `squeue` is not there.
pub fn queue(run: &str, jobs: &SlurmJobs) -> Vec<QueueEntry> {
    let names: Vec<String> = jobs.stages.iter().map(|s| job_name(run, s.stage)).collect();
    if names.is_empty() {
        return Vec::new();
    }
    let Ok(out) = Command::new("squeue")
        .args(["-h", "-r", "-o", "%i|%T|%r", "-n", &names.join(",")])
        .output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut p = l.split('|');
            Some(QueueEntry {
                job: p.next()?.trim().to_string(),
                state: p.next()?.trim().to_string(),
                reason: p.next().unwrap_or("").trim().to_string(),
            })
        })
        .collect()
}

/// `sacct`'s state of every task of the run's jobs, where the cluster keeps
/// accounting (`None` where it does not: a slurmctld without slurmdbd).
pub fn accounting(jobs: &SlurmJobs) -> Option<Vec<(String, String)>> {
    let ids: Vec<&str> = jobs.stages.iter().map(|s| s.job_id.as_str()).collect();
    let out = Command::new("sacct")
        .args(["-n", "-P", "-X", "-o", "JobID,State", "-j", &ids.join(",")])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let (a, b) = l.split_once('|')?;
                Some((a.to_string(), b.to_string()))
            })
            .collect(),
    )
}

/// Units not done nor started whose array task has left the queue: their
/// job failed, was cancelled, or was killed for an invalid dependency (a
/// unit before it failed), so nothing will run them.
pub fn never_run(
    run: &str,
    jobs: &SlurmJobs,
    queue: &[QueueEntry],
    states: &mut [super::state::UnitStatus],
) {
    let queued = |task: &str| {
        let (job, index) = task.split_once('_').unwrap_or((task, ""));
        queue.iter().any(|q| {
            q.job == task
                || (q.job.starts_with(&format!("{job}_["))
                    && array_holds(&q.job[job.len() + 1..], index))
        })
    };
    for s in states.iter_mut() {
        if !matches!(s.state, UnitState::Ready | UnitState::Waiting) {
            continue;
        }
        let Some(task) = jobs.task_of(&s.id) else {
            continue;
        };
        if !queued(&task) {
            s.state = UnitState::Failed;
            s.detail = Some(format!(
                "Slurm task {task} left the queue without running it (failed, cancelled, or a unit before it failed); `melxai batch resume {run}` resubmits it"
            ));
        }
    }
}

/// Whether squeue's pending-array text `[0-3,5%2]` holds task `index`.
fn array_holds(text: &str, index: &str) -> bool {
    let Ok(i) = index.parse::<usize>() else {
        return false;
    };
    let inner = text
        .trim_start_matches('[')
        .split(['%', ']'])
        .next()
        .unwrap_or("");
    inner.split(',').any(|part| match part.split_once('-') {
        Some((a, b)) => match (a.parse::<usize>(), b.parse::<usize>()) {
            (Ok(a), Ok(b)) => (a..=b).contains(&i),
            _ => false,
        },
        None => part.parse::<usize>() == Ok(i),
    })
}

/// Cancels every job of the run's last submission still queued or running.
pub fn cancel(jobs: &SlurmJobs) -> Result<()> {
    let ids: Vec<&str> = jobs.stages.iter().map(|s| s.job_id.as_str()).collect();
    if ids.is_empty() {
        return Ok(());
    }
    let out = Command::new("scancel")
        .args(&ids)
        .output()
        .map_err(|e| Error::Other(format!("cannot run scancel: {e}")))?;
    if !out.status.success() {
        return Err(Error::Other(format!(
            "scancel {} failed: {}",
            ids.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn pending_array_ranges_are_read_as_squeue_prints_them() {
        assert!(super::array_holds("[0-3]", "2"));
        assert!(super::array_holds("[0-3,5%2]", "5"));
        assert!(!super::array_holds("[0-3,5%2]", "4"));
        assert!(super::array_holds("[7]", "7"));
        assert!(!super::array_holds("[0-3]", "x"));
    }
}
