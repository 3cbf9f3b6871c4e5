//! `melxai batch plan|run-unit|worker|status|resume`, and `--batch` with
//! `--workers N`, `--devices` or `--executor slurm`: the run as units.

use std::path::Path;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use melxai::batch::units::{
    self, slurm, LocalOptions, PlanFile, UnitRun, UnitState, WorkerOptions, WorkerShard,
};
use melxai::config::Config;

#[derive(Debug, Args)]
pub struct BatchArgs {
    #[command(subcommand)]
    pub command: BatchCommand,
}

#[derive(Debug, Subcommand)]
pub enum BatchCommand {
    /// The run's units with their ids, dependencies and stages.
    Plan {
        /// Run name (default `[batch] run_name`).
        #[arg(long)]
        run: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Runs one unit (its dependencies must be done); a unit done under the
    /// same inputs is skipped. Exit 3: another process holds it.
    RunUnit {
        id: String,
        #[arg(long)]
        run: Option<String>,
        /// libtorch threads (default: libtorch's choice).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Takes ready units, each as its own process, until none is left.
    Worker {
        #[arg(long)]
        run: Option<String>,
        /// Take only the units whose index is i mod N (e.g. a Kubernetes
        /// Indexed Job's index of N).
        #[arg(long)]
        shard: Option<WorkerShard>,
        /// libtorch threads of each unit but the report.
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Units done, running and failed, from the unit files and the queue.
    Status {
        run: String,
        #[arg(long)]
        json: bool,
    },
    /// Runs (or resubmits to Slurm) every unit of the run that is not done.
    Resume { run: String },
}

/// How `--batch` was asked to run as units.
pub struct Executor<'a> {
    pub kind: &'a str,
    pub workers: Option<usize>,
    pub devices: &'a [String],
    pub config_path: &'a Path,
    pub device: Option<&'a str>,
}

fn options(config_path: &Path, device: Option<&str>) -> Result<WorkerOptions> {
    Ok(WorkerOptions {
        exe: std::env::current_exe().context("the melxai binary's path")?,
        config: std::path::absolute(config_path)?,
        device: device.map(str::to_string),
        threads: None,
        shard: None,
    })
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `--batch` as units: plans, records the plan, then runs local workers or
/// submits to Slurm.
pub fn start(config: &Config, name: Option<&str>, ex: &Executor) -> Result<i32> {
    let data = melxai::data::load(&config.data, false)?;
    let plan = units::plan(config, name, &data)?;
    let workers = ex.workers.unwrap_or(ex.devices.len().max(1));
    if !ex.devices.is_empty() && ex.devices.len() != workers {
        bail!(
            "--devices lists {} devices for {workers} workers: give one device per worker",
            ex.devices.len()
        );
    }
    let file = PlanFile {
        config: std::path::absolute(ex.config_path)?,
        device: ex.device.map(str::to_string),
        executor: ex.kind.to_string(),
        workers,
        devices: ex.devices.to_vec(),
        plan,
    };
    file.write()?;
    launch(config, &file)
}

fn launch(config: &Config, file: &PlanFile) -> Result<i32> {
    let plan = &file.plan;
    let opts = options(&file.config, file.device.as_deref())?;
    match file.executor.as_str() {
        "slurm" => {
            let mut opts = opts;
            if config.batch.cpu_threads == 0 && config.slurm.cpus_per_task > 0 {
                opts.threads = Some(config.slurm.cpus_per_task);
            }
            let jobs = slurm::submit(plan, &config.slurm, &opts)?;
            if jobs.stages.is_empty() {
                println!("every unit of '{}' is done", plan.run);
            }
            for s in &jobs.stages {
                println!(
                    "submitted stage {} as job {} ({} units, {})",
                    s.stage,
                    s.job_id,
                    s.units.len(),
                    s.script.display()
                );
            }
            println!("follow it with: melxai batch status {}", plan.run);
            Ok(0)
        }
        "local" => {
            let on_cpu = melxai::model::parse_device(&config.device)? == tch::Device::Cpu
                && file.devices.iter().all(|d| d == "cpu");
            let divide_cores = on_cpu && config.batch.cpu_threads == 0 && file.workers > 1;
            if divide_cores {
                eprintln!(
                    "CPU: {} workers share {} cores, {} threads each. libtorch's CPU results depend on the thread count in their last bits: set [batch] cpu_threads for a report identical to a single-process run's",
                    file.workers,
                    cores(),
                    (cores() / file.workers).max(1)
                );
            }
            let local = LocalOptions {
                workers: file.workers,
                devices: file.devices.clone(),
                cores: cores(),
                divide_cores,
            };
            let t0 = std::time::Instant::now();
            units::run_local(plan, &opts, &local, &mut |l| eprintln!("{l}"))?;
            let dir = melxai::batch::run_dir(&plan.run);
            println!(
                "report: {} ({:.0}s, {} workers)",
                dir.join("report.md").display(),
                t0.elapsed().as_secs_f64(),
                file.workers
            );
            Ok(0)
        }
        other => bail!("--executor {other}: expected local or slurm"),
    }
}

/// The plan a subcommand works on: the one recorded for the run, else the
/// config's.
fn current_plan(config: &Config, run: Option<&str>) -> Result<units::Plan> {
    let data = melxai::data::load(&config.data, false)?;
    Ok(units::plan(config, run, &data)?)
}

pub fn run(
    config: &Config,
    config_path: &Path,
    device: Option<&str>,
    args: BatchArgs,
) -> Result<i32> {
    match args.command {
        BatchCommand::Plan { run, json } => {
            let plan = current_plan(config, run.as_deref())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&plan)?);
            } else {
                print_plan(&plan);
            }
            Ok(0)
        }
        BatchCommand::RunUnit { id, run, threads } => {
            run_unit(config, run.as_deref(), &id, threads)
        }
        BatchCommand::Worker {
            run,
            shard,
            threads,
        } => {
            let plan = current_plan(config, run.as_deref())?;
            let mut opts = options(config_path, device)?;
            opts.threads = threads;
            opts.shard = shard;
            let report = units::worker(&plan, &opts, &mut |l| eprintln!("{l}"))?;
            eprintln!(
                "worker finished: {} units run, {} failed",
                report.ran.len(),
                report.failed.len()
            );
            Ok(if report.failed.is_empty() { 0 } else { 1 })
        }
        BatchCommand::Status { run, json } => status(&run, json),
        BatchCommand::Resume { run } => resume(&run),
    }
}

fn print_plan(plan: &units::Plan) {
    println!(
        "run '{}': {} units in {} stages",
        plan.run,
        plan.units.len(),
        plan.stages()
    );
    for u in &plan.units {
        let deps = match u.deps.len() {
            0 => String::new(),
            n if n > 3 => format!("after {n} units"),
            _ => format!("after {}", u.deps.join(", ")),
        };
        println!("  stage {}  {:<40} {deps}", u.stage, u.id);
    }
}

fn run_unit(config: &Config, run: Option<&str>, id: &str, threads: Option<usize>) -> Result<i32> {
    if let Some(t) = threads.filter(|&t| t > 0) {
        tch::set_num_threads(t as i32);
    }
    let mut sink = super::progress::CliProgress::new();
    let cancel = super::progress::cancel_on_ctrl_c("the next step boundary");
    let mut screens = melxai::tui::report_screens::render_run_screens;
    let t0 = std::time::Instant::now();
    match units::run_unit(config, run, id, &mut sink, &cancel, Some(&mut screens)) {
        Ok(UnitRun::AlreadyDone) => eprintln!("unit '{id}': already done"),
        Ok(UnitRun::Ran { seconds }) => eprintln!("unit '{id}': done in {seconds:.1}s"),
        Ok(UnitRun::Report(s)) => eprintln!(
            "unit '{id}': report {} ({:.0}s)",
            s.report_dir.join("report.md").display(),
            t0.elapsed().as_secs_f64()
        ),
        Err(melxai::Error::Locked(why)) => {
            eprintln!("unit '{id}': {why}");
            return Ok(units::EXIT_LOCKED);
        }
        Err(e) => return Err(e.into()),
    }
    Ok(0)
}

fn status(run: &str, json: bool) -> Result<i32> {
    let file = PlanFile::read(run)?;
    let jobs = slurm::SlurmJobs::read(run);
    let queue = jobs
        .as_ref()
        .map(|j| slurm::queue(run, j))
        .unwrap_or_default();
    let running_tasks: Vec<&str> = queue
        .iter()
        .filter(|q| q.state == "RUNNING")
        .map(|q| q.job.as_str())
        .collect();
    let mut states = units::unit_states(&file.plan, &|s| {
        s.slurm_job
            .as_deref()
            .is_some_and(|j| running_tasks.contains(&j))
    });
    if let Some(j) = &jobs {
        slurm::never_run(run, j, &queue, &mut states);
    }
    let accounting = jobs.as_ref().and_then(slurm::accounting);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "run": run, "executor": file.executor, "units": states,
                "queue": queue, "accounting": accounting,
                "jobs": jobs.as_ref().map(|j| &j.stages),
            }))?
        );
        return Ok(0);
    }
    let count = |st: UnitState| states.iter().filter(|s| s.state == st).count();
    println!(
        "run '{run}' ({}): {} units: {} done, {} running, {} failed, {} ready, {} waiting",
        file.executor,
        states.len(),
        count(UnitState::Done),
        count(UnitState::Running),
        count(UnitState::Failed),
        count(UnitState::Ready),
        count(UnitState::Waiting)
    );
    for s in &states {
        let task = jobs
            .as_ref()
            .and_then(|j| j.task_of(&s.id))
            .map(|t| format!("  [job {t}]"))
            .unwrap_or_default();
        let detail = s
            .detail
            .as_deref()
            .map(|d| format!("  {d}"))
            .unwrap_or_default();
        let secs = s.seconds.map(|t| format!("  {t:.0}s")).unwrap_or_default();
        println!(
            "  {:<8} {:<40}{secs}{detail}{task}",
            format!("{:?}", s.state).to_lowercase(),
            s.id
        );
        if s.state == UnitState::Failed {
            println!("           log: {}", s.log.display());
        }
    }
    if !queue.is_empty() {
        println!("queue:");
        for q in &queue {
            println!("  {:<14} {:<10} {}", q.job, q.state, q.reason);
        }
    }
    if jobs.is_some() && accounting.is_none() {
        println!("(no Slurm accounting on this cluster: sacct has nothing; the unit files say what finished)");
    }
    Ok(if count(UnitState::Failed) > 0 { 1 } else { 0 })
}

/// Re-plans from the run's config (a changed config makes its units due)
/// and runs, or resubmits, what is not done.
fn resume(run: &str) -> Result<i32> {
    let mut file = PlanFile::read(run)?;
    let mut config = Config::load(&file.config, true)?;
    if let Some(d) = &file.device {
        config.device = d.clone();
    }
    if file.executor == "slurm" {
        if let Some(jobs) = slurm::SlurmJobs::read(run) {
            slurm::cancel(&jobs)?;
            wait_for_queue_to_empty(run, &jobs)?;
        }
    }
    file.plan = current_plan(&config, Some(run))?;
    file.write()?;
    launch(&config, &file)
}

/// After `scancel`, the killed tasks leave the queue (and release their
/// units' locks) before anything is resubmitted.
fn wait_for_queue_to_empty(run: &str, jobs: &slurm::SlurmJobs) -> Result<()> {
    let t0 = std::time::Instant::now();
    while !slurm::queue(run, jobs).is_empty() {
        if t0.elapsed().as_secs() > 120 {
            bail!("the run's cancelled jobs are still in the queue after 120 s; run resume again once squeue no longer shows them");
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    Ok(())
}
