//! The training pane watching a run that workers or a cluster execute
//! (`melxai --watch RUN`): the units' list, running and failed first, and
//! the charts of the running training unit.

mod tui_support;

use melxai::progress::{Event, UnitLine};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use tui_support::{epoch, fresh, text};

fn line(id: &str, state: &str, epochs: usize) -> UnitLine {
    UnitLine {
        id: id.into(),
        state: state.into(),
        stage: if state == "running" {
            "training, epoch 3".into()
        } else {
            String::new()
        },
        done: 4,
        total: 7,
        eta_seconds: (state == "running").then_some(75.0),
        detail: (state == "failed")
            .then(|| "killed: started on node7 (Slurm job 12_3), gone without finishing".into()),
        epochs: (1..=epochs).map(epoch).collect(),
    }
}

fn rendered(s: &melxai::tui::AppState) -> String {
    let area = Rect::new(0, 0, 120, 24);
    let mut buf = Buffer::empty(area);
    melxai::tui::panes::training::render(s, area, &mut buf);
    text(&buf)
}

#[test]
fn the_training_pane_lists_a_watched_runs_units_and_charts_the_running_training() {
    let mut s = fresh();
    s.apply_event(Event::Units {
        run: "isic".into(),
        units: vec![
            line("train-a", "done", 3),
            line("explain-a-1of2", "failed", 0),
            line("train-b-cv-fold1", "running", 2),
            line("report", "waiting", 0),
        ],
    });
    let shown = rendered(&s);
    assert!(
        shown.contains("run 'isic': 1/4 units done · 1 running · 1 failed · 1 waiting"),
        "{shown}"
    );
    let rows: Vec<&str> = shown
        .lines()
        .filter(|l| l.contains("train-") || l.contains("explain-") || l.contains("report"))
        .collect();
    // Running first (and followed by the charts), then failed, waiting, done.
    assert!(
        rows[0].contains("▸")
            && rows[0].contains("running")
            && rows[0].contains("train-b-cv-fold1"),
        "{shown}"
    );
    assert!(
        rows[0].contains("epoch 2/") && rows[0].contains("ETA 1m 15s"),
        "{shown}"
    );
    assert!(
        rows[1].contains("failed") && rows[1].contains("Slurm job 12_3"),
        "{shown}"
    );
    assert!(
        rows[2].contains("waiting") && rows[2].contains("report"),
        "{shown}"
    );
    assert!(
        rows[3].contains("done") && rows[3].contains("3 epochs"),
        "{shown}"
    );
    // The charts follow the running unit: its two epochs.
    assert_eq!(s.training().history.len(), 2);
    assert!(s.training().active);
    assert!(
        !shown.contains("charts appear after the first epoch"),
        "{shown}"
    );

    // It finished: the charts keep the last training, the list says done.
    s.apply_event(Event::Units {
        run: "isic".into(),
        units: vec![
            line("train-a", "done", 3),
            line("train-b-cv-fold1", "done", 5),
        ],
    });
    let shown = rendered(&s);
    assert!(shown.contains("2/2 units done"), "{shown}");
    assert_eq!(s.training().history.len(), 5);
    assert!(!s.training().active);
}

#[test]
fn a_watched_run_without_a_plan_says_where_it_looks() {
    let mut s = fresh();
    s.apply_event(Event::Units {
        run: "later".into(),
        units: Vec::new(),
    });
    let shown = rendered(&s);
    assert!(
        shown.contains("no unit plan yet (reports/later/units/plan.json)"),
        "{shown}"
    );
}
