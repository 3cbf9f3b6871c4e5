//! `melxai --watch RUN`: the units of a run that workers or a cluster
//! execute, read from their files about once a second and sent as
//! [`Event::Units`], so the TUI's training pane can follow them.

use std::time::Duration;

use super::progress_file::read_progress;
use super::state::{unit_states, UnitFiles, UnitState};
use super::PlanFile;
use crate::progress::{Event, UnitLine};

/// The lines of every unit of `run` now; `None` while it has no plan.
pub fn unit_lines(run: &str) -> Option<Vec<UnitLine>> {
    let file = PlanFile::read(run).ok()?;
    // Started elsewhere (another host, a cluster node) and not finished:
    // taken as running; `batch status` asks the queue.
    let states = unit_states(&file.plan, &|_| true);
    Some(
        states
            .into_iter()
            .map(|s| {
                let progress = read_progress(&UnitFiles::new(run, &s.id).progress_path());
                let state = match s.state {
                    UnitState::Done => "done",
                    UnitState::Running => "running",
                    UnitState::Failed => "failed",
                    UnitState::Ready => "ready",
                    UnitState::Waiting => "waiting",
                };
                let p = progress.unwrap_or_default();
                UnitLine {
                    id: s.id,
                    state: state.into(),
                    stage: p.stage,
                    done: p.done,
                    total: p.total,
                    eta_seconds: p.eta_seconds,
                    detail: s.detail,
                    epochs: p.epochs,
                }
            })
            .collect(),
    )
}

/// Sends the run's unit lines through `send` about once a second, while it
/// accepts them (`false`: the watcher is gone).
pub fn watch(run: &str, mut send: impl FnMut(Event) -> bool) {
    let mut last: Option<Vec<UnitLine>> = None;
    loop {
        let lines = unit_lines(run).unwrap_or_default();
        if last.as_ref() != Some(&lines) {
            let event = Event::Units {
                run: run.to_string(),
                units: lines.clone(),
            };
            if !send(event) {
                return;
            }
            last = Some(lines);
        }
        std::thread::sleep(Duration::from_millis(1000));
    }
}
