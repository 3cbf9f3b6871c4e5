//! `--batch` as units on this machine: the plan, a unit's refusals, and
//! `--workers 2` writing the report a single process writes.

mod common;

use common::runs::{assert_all_done, assert_same_report, melxai, ok, tiny_project};
use serde_json::Value;

#[test]
fn the_plan_lists_every_training_shard_and_the_report_with_their_dependencies() {
    let dir = tempfile::tempdir().unwrap();
    tiny_project(dir.path());
    let out = melxai(dir.path(), &["batch", "plan", "--json"], &[]);
    ok(&out, "batch plan");
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let units = plan["units"].as_array().unwrap();
    let ids: Vec<&str> = units.iter().map(|u| u["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "train-a",
            "train-b",
            "evaluate-a",
            "evaluate-b",
            "train-a-cv-fold0",
            "train-a-cv-fold1",
            "train-a-r1-cv-fold0",
            "train-a-r1-cv-fold1",
            "ensemble-a-cv",
            "explain-a-1of2",
            "explain-a-2of2",
            "explain-b-1of2",
            "explain-b-2of2",
            "explain-a-cv-1of2",
            "explain-a-cv-2of2",
            "report",
        ]
    );
    let unit = |id: &str| units.iter().find(|u| u["id"] == id).unwrap();
    assert_eq!(
        unit("ensemble-a-cv")["deps"],
        serde_json::json!(["train-a-cv-fold0", "train-a-cv-fold1"])
    );
    assert_eq!(
        unit("explain-b-2of2")["deps"],
        serde_json::json!(["evaluate-a", "evaluate-b"])
    );
    assert_eq!(unit("explain-a-cv-1of2")["stage"], 2);
    assert_eq!(unit("evaluate-b")["deps"], serde_json::json!(["train-b"]));
    assert_eq!(unit("report")["deps"].as_array().unwrap().len(), 15);
    // Keys are stable, and a changed section changes them downstream only.
    let again: Value =
        serde_json::from_slice(&melxai(dir.path(), &["batch", "plan", "--json"], &[]).stdout)
            .unwrap();
    assert_eq!(plan, again);
    let config = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        config.replace("steps = 8", "steps = 16"),
    )
    .unwrap();
    let changed: Value =
        serde_json::from_slice(&melxai(dir.path(), &["batch", "plan", "--json"], &[]).stdout)
            .unwrap();
    let key = |p: &Value, id: &str| {
        p["units"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["id"] == id)
            .unwrap()["key"]
            .clone()
    };
    assert_eq!(
        key(&plan, "train-a"),
        key(&changed, "train-a"),
        "[explain] does not touch training"
    );
    assert_ne!(
        key(&plan, "explain-a-1of2"),
        key(&changed, "explain-a-1of2")
    );
    assert_ne!(key(&plan, "report"), key(&changed, "report"));
}

#[test]
fn a_unit_whose_dependencies_are_not_done_is_refused_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    tiny_project(dir.path());
    let out = melxai(dir.path(), &["batch", "run-unit", "explain-b-1of2"], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("dependency 'evaluate-a' is not done"), "{err}");
    let out = melxai(dir.path(), &["batch", "run-unit", "no-such-unit"], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("has no unit 'no-such-unit'") && err.contains("train-a-cv-fold0"),
        "{err}"
    );
}

#[test]
fn two_workers_write_the_report_one_process_writes_and_a_rerun_skips_every_unit() {
    let single = tempfile::tempdir().unwrap();
    let split = tempfile::tempdir().unwrap();
    tiny_project(single.path());
    tiny_project(split.path());
    ok(&melxai(single.path(), &["--batch"], &[]), "--batch");
    ok(
        &melxai(split.path(), &["--batch", "--workers", "2"], &[]),
        "--batch --workers 2",
    );
    assert_same_report(
        &single.path().join("reports/tiny"),
        &split.path().join("reports/tiny"),
    );
    let units = split.path().join("reports/tiny/units");
    for id in ["train-a-cv-fold1", "explain-a-cv-2of2", "report"] {
        assert!(
            units.join(format!("{id}.done.json")).exists(),
            "{id} not done"
        );
        assert!(
            units.join(format!("logs/{id}.log")).exists(),
            "{id} has no log"
        );
    }
    // A training unit's progress file holds its epochs (what the TUI reads).
    let progress: Value = serde_json::from_str(
        &std::fs::read_to_string(units.join("train-a.progress.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(progress["epochs"].as_array().unwrap().len(), 5);
    // Status: everything done.
    let out = melxai(split.path(), &["batch", "status", "tiny", "--json"], &[]);
    ok(&out, "batch status");
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_all_done(&status);
    // A rerun finds every unit done under the same key: nothing runs.
    let out = melxai(split.path(), &["batch", "run-unit", "train-a"], &[]);
    ok(&out, "run-unit of a done unit");
    assert!(String::from_utf8_lossy(&out.stderr).contains("already done"));
}

#[test]
fn a_unit_another_process_holds_is_left_to_it_with_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    tiny_project(dir.path());
    let lock = dir.path().join("reports/tiny/units/locks/train-a.lock");
    let held = melxai::files::RunLock::acquire(&lock, "unit 'train-a'").unwrap();
    let out = melxai(dir.path(), &["batch", "run-unit", "train-a"], &[]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unit 'train-a'") && err.contains("already in use"),
        "{err}"
    );
    assert!(!dir
        .path()
        .join("reports/tiny/units/train-a.started.json")
        .exists());
    drop(held);
    ok(
        &melxai(dir.path(), &["batch", "run-unit", "train-a"], &[]),
        "run-unit once the lock is free",
    );
    assert!(dir
        .path()
        .join("reports/tiny/units/train-a.done.json")
        .exists());
}

#[test]
fn devices_pin_one_worker_each_and_must_match_the_worker_count() {
    let dir = tempfile::tempdir().unwrap();
    tiny_project(dir.path());
    let out = melxai(
        dir.path(),
        &["--batch", "--devices", "cpu,cpu", "--workers", "3"],
        &[],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--devices lists 2 devices for 3 workers"),
        "{err}"
    );
    ok(
        &melxai(dir.path(), &["--batch", "--devices", "cpu,cpu"], &[]),
        "--batch --devices cpu,cpu",
    );
    let units = dir.path().join("reports/tiny/units");
    let plan: Value =
        serde_json::from_str(&std::fs::read_to_string(units.join("plan.json")).unwrap()).unwrap();
    assert_eq!(plan["devices"], serde_json::json!(["cpu", "cpu"]));
    assert_eq!(plan["workers"], 2);
    for i in 0..2 {
        let log = std::fs::read_to_string(units.join(format!("logs/worker-{i}.log"))).unwrap();
        assert!(log.contains("worker finished"), "worker {i}: {log}");
    }
    assert!(units.join("report.done.json").exists());
}

#[test]
fn a_unit_killed_under_a_local_worker_is_named_and_resume_finishes_with_the_same_report() {
    let single = tempfile::tempdir().unwrap();
    let split = tempfile::tempdir().unwrap();
    tiny_project(single.path());
    tiny_project(split.path());
    ok(&melxai(single.path(), &["--batch"], &[]), "--batch");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_melxai"))
        .args(["--batch", "--workers", "1"])
        .current_dir(split.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Kill the training unit's process mid-run: after its first epoch.
    let units = split.path().join("reports/tiny/units");
    let victim = "train-a-cv-fold1";
    let t0 = std::time::Instant::now();
    let pid = loop {
        let epochs = std::fs::read_to_string(units.join(format!("{victim}.progress.json")))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v["epochs"].as_array().map(Vec::len))
            .unwrap_or(0);
        let started = std::fs::read_to_string(units.join(format!("{victim}.started.json")))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok());
        if let (true, Some(s)) = (epochs >= 1, started) {
            break s["pid"].as_i64().unwrap() as i32;
        }
        assert!(
            t0.elapsed().as_secs() < 300,
            "{victim} never finished an epoch"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    // SAFETY: kill(2) on the unit's own process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let out = run.wait_with_output().unwrap();
    assert!(
        !out.status.success(),
        "a run with a killed unit must not succeed"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(victim) && err.contains("melxai batch resume tiny"),
        "{err}"
    );
    assert!(
        !units.join(format!("{victim}.done.json")).exists(),
        "{victim} finished before the kill"
    );
    // The other units ran; the report waits for the killed one.
    let status = melxai(split.path(), &["batch", "status", "tiny"], &[]);
    assert_eq!(status.status.code(), Some(1));
    let text = String::from_utf8_lossy(&status.stdout);
    let line = text
        .lines()
        .find(|l| l.contains(victim))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains("failed") && line.contains("killed by a signal"),
        "{line}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("done") && l.contains("train-a-r1-cv-fold1")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("waiting") && l.contains("report")),
        "{text}"
    );
    ok(
        &melxai(split.path(), &["batch", "resume", "tiny"], &[]),
        "batch resume",
    );
    assert_same_report(
        &single.path().join("reports/tiny"),
        &split.path().join("reports/tiny"),
    );
}
