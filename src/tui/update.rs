//! What an [`Action`] does to the state, and which engine requests it sends.
//!
//! Kept apart from key handling (what key means what) and from the run loop
//! (channels, files, terminal) so that the behaviour of every key can be
//! tested as "state before, action, state after + requests".

use crate::engine::requests::Request;
use crate::tui::keys::Action;
use crate::tui::state::{
    AppState, InputMode, JobStatus, Pane, METHODS, OVERLAY_RANGE, OVERLAY_STEP,
};
use crate::tui::triage::TriageMark;

impl AppState {
    /// Applies a user action; returns the requests to send to the engine.
    ///
    /// `Screenshot` is a no-op here: it needs the terminal size and a file
    /// system, so the run loop handles it.
    pub fn update(&mut self, action: Action) -> Vec<Request> {
        let mut out = Vec::new();
        match action {
            Action::Quit => self.should_quit = true,
            Action::MoveDown => self.move_selection(1),
            Action::MoveUp => self.move_selection(-1),
            Action::PageDown => self.move_selection(self.page_size as isize),
            Action::PageUp => self.move_selection(-(self.page_size as isize)),
            Action::Top => self.move_selection(isize::MIN / 2),
            Action::Bottom => self.move_selection(isize::MAX / 2),
            Action::SelectRow(n) => {
                self.focus = Pane::Samples;
                self.select_visible(n);
            }
            Action::NextPane => self.set_focus(self.focus.next()),
            Action::PrevPane => self.set_focus(self.focus.prev()),
            Action::ToggleZoom => {
                self.zoomed = match self.zoomed {
                    Some(_) => None,
                    None => Some(self.focus),
                }
            }
            Action::CycleFilter => {
                self.filter = self.filter.next();
                self.ensure_selection();
                let n = self.visible().len();
                self.info(format!("filter: {} ({n} samples)", self.filter.label()));
            }
            Action::CycleSort => {
                self.sort = self.sort.next();
                self.info(format!("sort: {}", self.sort.label()));
            }
            Action::StartSearch => self.input = InputMode::Search(self.query.clone()),
            Action::EditNote => match self.selected.clone() {
                Some(id) => {
                    let note = self
                        .triage
                        .get(&id)
                        .and_then(|e| e.note.clone())
                        .unwrap_or_default();
                    self.input = InputMode::Note(note);
                }
                None => self.warn("no sample selected".into()),
            },
            Action::Input(c) => self.edit_input(|s| s.push(c)),
            Action::Backspace => self.edit_input(|s| {
                s.pop();
            }),
            Action::Submit => self.submit_input(),
            Action::Mark(mark) => self.toggle_mark(mark),
            Action::StartTraining | Action::Evaluate | Action::Explain => {
                out = self.job_request(action)
            }
            Action::Cancel => out = self.cancel_or_close(),
            Action::ToggleHelp => self.show_help = !self.show_help,
            Action::CycleMetric => {
                self.metric = self.metric.next();
                self.info(format!("agreement metric: {}", self.metric.title()));
            }
            Action::CycleCalibrationView => {
                self.calibration_view = self.calibration_view.next();
                self.info(format!(
                    "calibration pane: {}",
                    self.calibration_view.title()
                ));
            }
            Action::Screenshot => {}
            Action::ToggleOverlay => {
                self.overlay = !self.overlay;
                self.info(if self.overlay {
                    format!(
                        "heatmaps over the photo at {}% ([ ] opacity)",
                        self.overlay_opacity
                    )
                } else {
                    "heatmaps beside the photo".into()
                });
            }
            Action::OverlayStronger | Action::OverlayWeaker => {
                let (lo, hi) = OVERLAY_RANGE;
                self.overlay_opacity = if action == Action::OverlayStronger {
                    self.overlay_opacity.saturating_add(OVERLAY_STEP).min(hi)
                } else {
                    self.overlay_opacity.saturating_sub(OVERLAY_STEP).max(lo)
                };
                self.overlay = true;
                self.info(format!("overlay opacity {}%", self.overlay_opacity));
            }
            Action::CycleSplit => {
                self.split_filter = self.next_split(self.split_filter.as_deref());
                self.ensure_selection();
                let n = self.visible().len();
                let name = self.split_filter.as_deref().unwrap_or("all splits");
                self.info(format!("split: {name} ({n} samples)"));
            }
        }
        out
    }

    /// `t`, `r` and `e`: a job request, unless a job runs or nothing is
    /// there to work on (then a warning says why).
    fn job_request(&mut self, action: Action) -> Vec<Request> {
        let mut out = Vec::new();
        match action {
            Action::StartTraining => {
                if self.job.is_running() {
                    self.warn("a job is already running (Esc cancels it)".into());
                } else {
                    let excluded = self.excluded_ids();
                    if !excluded.is_empty() {
                        self.info(format!(
                            "training without {} excluded samples",
                            excluded.len()
                        ));
                    }
                    self.tab = Pane::Training;
                    out.push(Request::Train {
                        name: None,
                        epochs: None,
                        excluded,
                    });
                }
            }
            Action::Evaluate => match (self.job.is_running(), self.checkpoint.clone()) {
                (true, _) => self.warn("a job is already running (Esc cancels it)".into()),
                (false, None) => self.warn("No checkpoint yet — press t to train".into()),
                (false, Some(checkpoint)) => {
                    self.tab = Pane::Calibration;
                    out.push(Request::Evaluate {
                        checkpoint: checkpoint.clone(),
                    });
                    out.push(Request::Calibrate { checkpoint });
                }
            },
            Action::Explain => {
                match (
                    self.job.is_running(),
                    self.checkpoint.clone(),
                    self.selected.clone(),
                ) {
                    (true, _, _) => self.warn("a job is already running (Esc cancels it)".into()),
                    (false, None, _) => self.warn("No checkpoint yet — press t to train".into()),
                    (false, _, None) => self.warn("no sample selected".into()),
                    (false, Some(checkpoint), Some(id)) => out.push(Request::Explain {
                        checkpoint,
                        sample_ids: vec![id],
                        methods: METHODS.iter().map(|m| m.to_string()).collect(),
                    }),
                }
            }
            _ => {}
        }
        out
    }

    /// Esc: closes what is open (help, an input, a search, a zoom) before it
    /// cancels the running job.
    fn cancel_or_close(&mut self) -> Vec<Request> {
        if self.show_help {
            self.show_help = false;
        } else if self.input != InputMode::Normal {
            if matches!(self.input, InputMode::Search(_)) {
                self.query.clear();
                self.ensure_selection();
            }
            self.input = InputMode::Normal;
        } else if !self.query.is_empty() {
            self.query.clear();
            self.ensure_selection();
        } else if self.zoomed.is_some() {
            self.zoomed = None;
        } else if self.job.is_running() {
            self.info("cancelling…".into());
            return vec![Request::Cancel];
        }
        Vec::new()
    }

    fn set_focus(&mut self, pane: Pane) {
        self.focus = pane;
        if pane.is_tabbed() {
            self.tab = pane;
        }
        if self.zoomed.is_some() {
            self.zoomed = Some(pane);
        }
    }

    fn edit_input(&mut self, f: impl FnOnce(&mut String)) {
        match &mut self.input {
            InputMode::Search(q) => {
                f(q);
                self.query = q.clone();
                self.ensure_selection();
            }
            InputMode::Note(n) => f(n),
            InputMode::Normal => {}
        }
    }

    fn submit_input(&mut self) {
        match std::mem::take(&mut self.input) {
            InputMode::Search(q) => {
                self.query = q;
                self.ensure_selection();
            }
            InputMode::Note(note) => {
                if let Some(id) = self.selected.clone() {
                    let entry = self.triage.entry(id).or_default();
                    let note = note.trim().to_string();
                    entry.note = (!note.is_empty()).then_some(note);
                    self.triage_dirty = true;
                    self.info("note saved".into());
                }
            }
            InputMode::Normal => {}
        }
    }

    /// Sets the mark, or clears it when the sample already has that mark.
    fn toggle_mark(&mut self, mark: TriageMark) {
        let Some(id) = self.selected.clone() else {
            self.warn("no sample selected".into());
            return;
        };
        let entry = self.triage.entry(id.clone()).or_default();
        if entry.mark == Some(mark) {
            entry.mark = None;
            self.info(format!("{id}: mark cleared"));
        } else {
            entry.mark = Some(mark);
            self.info(format!("{id}: {}", mark.label()));
        }
        self.triage_dirty = true;
    }

    /// Whether the job status is a running training job.
    pub fn is_training(&self) -> bool {
        matches!(
            self.job,
            JobStatus::Running {
                kind: crate::progress::JobKind::Train,
                ..
            }
        )
    }
}
