//! Engine events into the state: the one way results enter the UI.

use super::*;
use crate::progress::{EpochSummary, Event, JobKind, SamplePrediction};

impl AppState {
    /// The one place engine events change the state.
    pub fn apply_event(&mut self, ev: Event) {
        match ev {
            Event::Started {
                kind, description, ..
            } => self.on_started(kind, description),
            Event::Progress {
                stage,
                done,
                total,
                eta_seconds,
                ..
            } => self.on_progress(Progress {
                stage,
                done,
                total,
                eta_seconds,
            }),
            Event::Batch {
                epoch,
                batch,
                batches,
                loss,
                learning_rate,
                ..
            } => {
                let t = &mut self.training;
                t.active = true;
                t.epoch = epoch;
                t.batch = batch;
                t.batches = batches;
                t.last_loss = Some(loss);
                t.learning_rate = Some(learning_rate);
            }
            Event::Epoch { summary, .. } => self.on_epoch(summary),
            Event::Warning { message, .. } => self.warn(message),
            Event::Predictions { model, rows, .. } => self.on_predictions(&model, rows),
            Event::Calibration {
                model,
                temperature,
                before,
                after,
                ..
            } => {
                self.set_model(&model);
                self.calibration = Some(CalibrationState {
                    model,
                    temperature,
                    before: CalibrationMetrics::from_json(&before),
                    after: CalibrationMetrics::from_json(&after),
                });
            }
            Event::Heatmap { model, map, .. } => self.on_heatmap(&model, map),
            Event::Scores {
                sample_id, methods, ..
            } => {
                self.scores.insert(sample_id, methods);
            }
            Event::ModelWritten { path, .. } => self.on_model_written(path),
            Event::Units { run, units } => self.on_units(run, units),
            Event::Finished { summary, .. } => self.on_finished(summary),
            Event::Failed { error, .. } => self.on_ended("failed", error),
            Event::Cancelled { .. } => self.on_ended("cancelled", String::new()),
        }
    }

    fn on_started(&mut self, kind: JobKind, description: String) {
        if kind == JobKind::Train {
            self.training = TrainingState::default();
            self.training.active = true;
        }
        self.info(format!("started: {description}"));
        self.job = JobStatus::Running {
            kind,
            description,
            progress: None,
        };
    }

    fn on_progress(&mut self, progress: Progress) {
        if let JobStatus::Running {
            kind,
            progress: shown,
            ..
        } = &mut self.job
        {
            if *kind == JobKind::Train {
                self.training.eta_seconds = progress.eta_seconds;
                // The trainer reports (epochs done, epochs) from the start of
                // each epoch, before any batch event.
                if progress.total > 0 {
                    self.training.epochs = progress.total as usize;
                    self.training.active = true;
                }
            }
            *shown = Some(progress);
        }
    }

    /// A watched run's units: the list, and the training pane's charts
    /// follow one training unit (a running one first).
    fn on_units(&mut self, run: String, units: Vec<crate::progress::UnitLine>) {
        let trainings = || units.iter().filter(|u| !u.epochs.is_empty());
        let focus = trainings()
            .find(|u| u.state == "running")
            .or_else(|| trainings().next_back());
        if let Some(u) = focus {
            let last = u.epochs.last().cloned();
            let t = &mut self.training;
            t.active = u.state == "running";
            t.outcome = (!t.active).then_some("finished");
            t.history = u.epochs.clone();
            t.fold = last.as_ref().and_then(|e| e.fold);
            t.epoch = last.as_ref().map_or(0, |e| e.epoch);
            t.epochs = last.as_ref().map_or(0, |e| e.epochs);
            t.learning_rate = last.as_ref().map(|e| e.learning_rate);
            t.last_loss = last.as_ref().map(|e| e.train_loss);
            t.batch = u.done as usize;
            t.batches = u.total as usize;
            t.eta_seconds = u.eta_seconds;
        }
        let focus = focus.map(|u| u.id.clone());
        self.units = Some(WatchedRun { run, units, focus });
    }

    fn on_epoch(&mut self, summary: EpochSummary) {
        let t = &mut self.training;
        t.active = true;
        t.fold = summary.fold;
        t.epoch = summary.epoch;
        t.epochs = summary.epochs;
        t.learning_rate = Some(summary.learning_rate);
        // A new fold restarts the epoch count: keep only its history.
        if let Some(last) = t.history.last() {
            if last.fold != summary.fold {
                t.history.clear();
            }
        }
        t.history.push(summary);
    }

    fn on_predictions(&mut self, model: &str, rows: Vec<SamplePrediction>) {
        self.set_model(model);
        for row in &mut self.rows {
            row.prediction = None;
        }
        let n = rows.len();
        for p in rows {
            match self.rows.iter_mut().find(|r| r.id == p.id) {
                Some(row) => row.prediction = Some(p),
                None => self.rows.push(SampleRow {
                    id: p.id.clone(),
                    label: p.label,
                    prediction: Some(p),
                    agreement: None,
                }),
            }
        }
        self.info(format!("{n} predictions from {model}"));
        self.ensure_selection();
    }

    fn on_heatmap(&mut self, model: &str, map: HeatmapData) {
        self.set_model(model);
        if !self.rows.iter().any(|r| r.id == map.sample_id) {
            self.rows.push(SampleRow {
                id: map.sample_id.clone(),
                label: map.target,
                prediction: None,
                agreement: None,
            });
            self.ensure_selection();
        }
        self.heatmaps
            .insert((map.sample_id.clone(), map.method.clone()), map);
    }

    fn on_finished(&mut self, summary: String) {
        if let JobStatus::Running {
            kind: JobKind::Train,
            ..
        } = self.job
        {
            self.training.active = false;
            self.training.eta_seconds = None;
            self.training.outcome = Some("finished");
        }
        self.info(format!("done: {summary}"));
        self.job = JobStatus::Done(summary);
    }

    /// A job trained a model: it becomes the one `e` and `r` use and the
    /// header names, without a restart.
    fn on_model_written(&mut self, path: std::path::PathBuf) {
        let name = checkpoint_name(&path);
        self.set_checkpoint(path);
        self.info(format!("model: {name} (press r to evaluate it)"));
    }

    /// A job that failed (`error` its message) or was cancelled.
    fn on_ended(&mut self, outcome: &'static str, error: String) {
        if self.training.active {
            self.training.outcome = Some(outcome);
        }
        self.training.active = false;
        if outcome == "failed" {
            self.error(format!("failed: {error}"));
            self.job = JobStatus::Failed(error);
        } else {
            self.info("cancelled".to_string());
            self.job = JobStatus::Done("cancelled".to_string());
        }
    }

    /// Records the model a result came from; a bare name is taken as
    /// `<weights_dir>/<name>`, a path as is, and becomes the checkpoint that
    /// `e` (explain) and `r` (evaluate) use.
    fn set_model(&mut self, model: &str) {
        if model.is_empty() || model == "imagenet" {
            return;
        }
        self.model = Some(model.to_string());
        // Results name the model, not its file: an ensemble's name is its
        // manifest's without `.ensemble.toml`, so keep the checkpoint that
        // already is this model rather than guessing a file that may not exist.
        if self
            .checkpoint
            .as_deref()
            .is_some_and(|c| checkpoint_name(c) == model)
        {
            return;
        }
        let path = Path::new(model);
        self.checkpoint = Some(
            if path.components().count() > 1 || path.extension().is_some() {
                path.to_path_buf()
            } else {
                self.weights_dir.join(model)
            },
        );
    }
}
