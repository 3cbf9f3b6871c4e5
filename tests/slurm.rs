//! `--batch --executor slurm` against a real single-node Slurm cluster on
//! the loopback (Debian's slurm-wlm and munge; `scripts/slurm_cluster.sh`
//! configures it in a temporary folder with its own munge key, socket and
//! ports, no accounting, and this test starts and stops its daemons).
//!
//! Where Slurm is not installed the test says so (stderr, and the list
//! `make test` prints at its end), and fails when `MELXAI_REQUIRE_SLURM` is
//! set, as `.ci/run` sets it after installing Slurm: it never passes
//! silently.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::runs::{assert_all_done, assert_same_report, melxai, ok, tiny_project};
use serde_json::Value;

/// The cluster's daemons, stopped on drop (also when an assertion fails).
struct Cluster {
    dir: PathBuf,
    conf: String,
}

impl Cluster {
    fn start(dir: &Path) -> Cluster {
        let script = common::root().join("scripts/slurm_cluster.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg("start")
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the test cluster did not start:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Cluster {
            dir: dir.to_path_buf(),
            conf: dir.join("slurm.conf").display().to_string(),
        }
    }

    fn env(&self) -> [(&str, &str); 1] {
        [("SLURM_CONF", self.conf.as_str())]
    }

    /// The run's jobs still queued or running.
    fn queued(&self) -> usize {
        let out = Command::new("squeue")
            .args(["-h", "-o", "%i"])
            .env("SLURM_CONF", &self.conf)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).lines().count()
    }

    fn wait_for_empty_queue(&self, limit: Duration) {
        let t0 = Instant::now();
        while self.queued() > 0 {
            assert!(t0.elapsed() < limit, "jobs still queued after {limit:?}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let script = common::root().join("scripts/slurm_cluster.sh");
        let _ = Command::new("bash")
            .arg(script)
            .arg("stop")
            .arg(&self.dir)
            .output();
    }
}

fn slurm_installed() -> bool {
    [
        "sbatch",
        "squeue",
        "scancel",
        "slurmctld",
        "slurmd",
        "munged",
    ]
    .iter()
    .all(|t| {
        Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// Says why the test did not run, where people see it, or fails it when
/// Slurm is required.
fn skip_or_fail(why: &str) {
    assert!(
        std::env::var_os("MELXAI_REQUIRE_SLURM").is_none(),
        "MELXAI_REQUIRE_SLURM is set but {why}"
    );
    common::report_skip(
        "slurm",
        &format!("{why} (scripts/install_slurm.sh installs it)"),
    );
}

fn status(dir: &Path, cluster: &Cluster) -> Value {
    let out = melxai(dir, &["batch", "status", "tiny", "--json"], &cluster.env());
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "status --json: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn state_of<'a>(status: &'a Value, id: &str) -> &'a str {
    status["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == id)
        .unwrap()["state"]
        .as_str()
        .unwrap()
}

#[test]
fn slurm_runs_the_batch_as_job_arrays_and_resumes_a_killed_task() {
    if !slurm_installed() {
        skip_or_fail("Slurm (slurm-wlm, munge) is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(&tmp.path().join("cluster"));
    let (single, submitted, killed) = (
        tmp.path().join("single"),
        tmp.path().join("submitted"),
        tmp.path().join("killed"),
    );
    for d in [&single, &submitted, &killed] {
        tiny_project(d);
    }
    ok(
        &melxai(&single, &["--batch"], &[]),
        "single-process --batch",
    );
    let reference = single.join("reports/tiny");

    // 1. Submitted through sbatch: a job array per stage, the report last.
    let out = melxai(
        &submitted,
        &["--batch", "--executor", "slurm"],
        &cluster.env(),
    );
    ok(&out, "--batch --executor slurm");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("submitted stage").count(), 4, "{text}");
    let script =
        std::fs::read_to_string(submitted.join("reports/tiny/slurm/stage0.sbatch")).unwrap();
    assert!(
        script.contains("#SBATCH --array=0-5") && script.contains("--kill-on-invalid-dep=yes"),
        "{script}"
    );
    let stage1 =
        std::fs::read_to_string(submitted.join("reports/tiny/slurm/stage1.sbatch")).unwrap();
    assert!(
        stage1.contains("units=('evaluate-a' 'evaluate-b' 'ensemble-a-cv')"),
        "{stage1}"
    );
    cluster.wait_for_empty_queue(Duration::from_secs(400));
    let s = status(&submitted, &cluster);
    assert_all_done(&s);
    assert_eq!(
        s["accounting"],
        Value::Null,
        "a cluster without slurmdbd keeps no accounting"
    );
    assert_same_report(&reference, &submitted.join("reports/tiny"));

    // 2. One array task killed mid-run: status names it, resume finishes.
    ok(
        &melxai(&killed, &["--batch", "--executor", "slurm"], &cluster.env()),
        "submit",
    );
    let victim = "train-a-r1-cv-fold1";
    let progress = killed.join(format!("reports/tiny/units/{victim}.progress.json"));
    let t0 = Instant::now();
    // Mid-run: after its first epoch, before its last.
    loop {
        let epochs = std::fs::read_to_string(&progress)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v["epochs"].as_array().map(Vec::len))
            .unwrap_or(0);
        if epochs >= 1 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "{victim} never started an epoch"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let jobs: Value = serde_json::from_str(
        &std::fs::read_to_string(killed.join("reports/tiny/slurm/jobs.json")).unwrap(),
    )
    .unwrap();
    let stage0 = &jobs["stages"][0];
    let index = stage0["units"]
        .as_array()
        .unwrap()
        .iter()
        .position(|u| u == victim)
        .unwrap();
    let task = format!("{}_{index}", stage0["job_id"].as_str().unwrap());
    let out = Command::new("scancel")
        .arg(&task)
        .env("SLURM_CONF", &cluster.conf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scancel {task}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    cluster.wait_for_empty_queue(Duration::from_secs(400));
    assert!(
        !killed
            .join(format!("reports/tiny/units/{victim}.done.json"))
            .exists(),
        "{victim} finished before the kill landed"
    );
    let s = status(&killed, &cluster);
    assert_eq!(state_of(&s, victim), "failed", "{s}");
    assert_eq!(
        state_of(&s, "report"),
        "failed",
        "the report's job was killed for its invalid dependency: {s}"
    );
    let text = String::from_utf8_lossy(
        &melxai(&killed, &["batch", "status", "tiny"], &cluster.env()).stdout,
    )
    .to_string();
    let line = text
        .lines()
        .find(|l| l.contains(victim))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("failed") && line.contains("killed"), "{line}");
    assert_eq!(
        state_of(&s, "train-a"),
        "done",
        "the other tasks of the array ran: {s}"
    );
    let out = melxai(&killed, &["batch", "resume", "tiny"], &cluster.env());
    ok(&out, "batch resume");
    let text = String::from_utf8_lossy(&out.stdout);
    // Only what is not done: the killed task alone in stage 0.
    assert!(
        text.contains("submitted stage 0 as job") && text.contains("(1 units"),
        "{text}"
    );
    cluster.wait_for_empty_queue(Duration::from_secs(400));
    let s = status(&killed, &cluster);
    assert_all_done(&s);
    assert_same_report(&reference, &killed.join("reports/tiny"));
}
