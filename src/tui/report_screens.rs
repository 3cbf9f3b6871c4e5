//! Pane screenshots of a `--batch` run, rendered from its typed results.
//!
//! The state is built the way the live UI builds it, through engine events:
//! the training pane at its final epoch (finished), the samples pane with
//! every image predicted out of fold (or, without cross-validation, the
//! reference model's validation and test rows), the calibration pane on
//! those same predictions, and the images pane on one explained test image
//! (its photo and each method's heatmap, embedded in the SVG) with the
//! agreement matrices of the reference model.

use std::path::Path;

use crate::data::image::decode_rgb;
use crate::data::npy::read_map;
use crate::error::{Error, Result};
use crate::explain::output::{map_path, MapFile};
use crate::explain::split::stem;
use crate::progress::{Event, HeatmapData, JobKind, SamplePrediction};
use crate::report::run::{Figure, RunResults};
use crate::tui::keys::Action;
use crate::tui::screenshot::export_pane;
use crate::tui::state::{AppState, CalibrationView, Metric, Pane};

/// Terminal size of each exported pane, in cells.
const SCREEN_COLUMNS: u16 = 120;
const SCREEN_ROWS: u16 = 36;

/// Writes `screens/<pane>.svg` for every pane into the run folder.
pub fn render_run_screens(results: &RunResults) -> Result<Vec<Figure>> {
    let data = results.data;
    let mut state = AppState::new(
        data.samples
            .iter()
            .map(|s| (s.id.clone(), s.label))
            .collect(),
        data.classes.clone(),
    );
    replay_training(&mut state, results);
    replay_predictions(&mut state, results);
    if let Some(id) = replay_explanations(&mut state, results)? {
        if let Some(pos) = state
            .visible()
            .iter()
            .position(|&i| state.rows()[i].id == id)
        {
            state.update(Action::SelectRow(pos));
        }
    }
    let mut figures = Vec::new();
    for pane in Pane::ALL {
        let name = format!("{pane:?}").to_lowercase();
        let file = format!("screens/{name}.svg");
        export_pane(
            &state,
            pane,
            SCREEN_COLUMNS,
            SCREEN_ROWS,
            &results.dir.join(&file),
        )
        .map_err(|e| Error::Other(format!("screenshot {name}: {e}")))?;
        figures.push(Figure::new(file, format!("{} pane", pane.title())));
    }
    figures.extend(breakdown_screens(&mut state, results)?);
    Ok(figures)
}

/// The calibration pane's "every class" (K > 2) and "subgroups" (a table
/// with attributes) views, as `screens/classes.svg` and `screens/subgroups.svg`.
fn breakdown_screens(state: &mut AppState, results: &RunResults) -> Result<Vec<Figure>> {
    let data = results.data;
    let columns: Vec<String> = data
        .samples
        .first()
        .map(|s| s.attributes.iter().map(|(c, _)| c.clone()).collect())
        .unwrap_or_default();
    let values = data
        .samples
        .iter()
        .map(|s| (s.id.clone(), s.attributes.clone()))
        .collect();
    state.set_attributes(columns.clone(), values);
    let wanted = [
        (CalibrationView::Classes, "classes", data.classes.len() > 2),
        (CalibrationView::Subgroups, "subgroups", !columns.is_empty()),
    ];
    let mut figures = Vec::new();
    for (view, name, show) in wanted {
        while state.calibration_view() != view {
            state.update(Action::CycleCalibrationView);
        }
        if !show {
            continue;
        }
        let file = format!("screens/{name}.svg");
        export_pane(
            state,
            Pane::Calibration,
            SCREEN_COLUMNS,
            SCREEN_ROWS,
            &results.dir.join(&file),
        )
        .map_err(|e| Error::Other(format!("screenshot {name}: {e}")))?;
        figures.push(Figure::new(
            file,
            format!("Calibration pane, {} view (b)", view.title()),
        ));
    }
    Ok(figures)
}

/// The reference model's training (or, for a given checkpoint, the folds of
/// the cross-validation), ending as a finished job.
fn replay_training(state: &mut AppState, results: &RunResults) {
    let trained = results
        .reference
        .filter(|o| o.splits.iter().any(|s| !s.history.is_empty()))
        .or(results.cross_validation);
    let Some(o) = trained else {
        return;
    };
    state.apply_event(Event::Started {
        job: 1,
        kind: JobKind::Train,
        description: format!("training {}", o.name),
    });
    for summary in o.splits.iter().flat_map(|s| s.history.clone()) {
        state.apply_event(Event::Epoch { job: 1, summary });
    }
    let epochs = o
        .splits
        .first()
        .map_or_else(|| "best epoch 0".into(), |s| s.checkpoint_epochs());
    state.apply_event(Event::Finished {
        job: 1,
        summary: format!("trained {} ({epochs})", o.name),
    });
}

/// Every image predicted out of fold, calibrated with the cross-fitted
/// temperature; without cross-validation, the reference model's own
/// validation and test rows with its temperature.
fn replay_predictions(state: &mut AppState, results: &RunResults) {
    let m = results.metrics;
    let positive = results.positive;
    let (model, rows, calibration) = match (results.cross_validation, &m.cross_validation) {
        (Some(o), Some(report)) => {
            let Some(cv) = &o.cross_validation else {
                return;
            };
            let t = report.calibration.fit.temperature;
            let rows: Vec<SamplePrediction> = cv
                .out_of_fold
                .iter()
                .map(|r| r.to_prediction(positive, t, "out-of-fold"))
                .collect();
            (o.name.clone(), rows, &report.calibration)
        }
        _ => {
            let Some(o) = results.reference else {
                return;
            };
            let Some(report) = m.models.get(&o.name) else {
                return;
            };
            let t = report.calibration.fit.temperature;
            let split = &o.splits[0];
            let rows = (split
                .val
                .iter()
                .map(|r| r.to_prediction(positive, t, "val")))
            .chain(
                split
                    .test
                    .iter()
                    .map(|r| r.to_prediction(positive, t, "test")),
            )
            .collect();
            (o.name.clone(), rows, &report.calibration)
        }
    };
    state.apply_event(Event::Predictions {
        job: 2,
        model: model.clone(),
        rows,
    });
    if let Some(shown) = calibration.results.first() {
        state.apply_event(Event::Calibration {
            job: 3,
            model,
            temperature: calibration.fit.temperature,
            before: shown.side_json(false).unwrap_or_default(),
            after: shown.side_json(true).unwrap_or_default(),
        });
    }
}

/// The reference model's maps of one explained image (the first of the
/// positive class, else the first) and the agreement matrices; returns the
/// image's id.
fn replay_explanations(state: &mut AppState, results: &RunResults) -> Result<Option<String>> {
    let Some(c) = results.comparison else {
        return Ok(None);
    };
    let Some(reference) = c.models.first() else {
        return Ok(None);
    };
    let data = results.data;
    let label_of = |id: &str| data.samples.iter().find(|s| s.id == id).map(|s| s.label);
    let Some(chosen) = c
        .sample_ids
        .iter()
        .find(|id| label_of(id) == Some(results.positive))
        .or(c.sample_ids.first())
    else {
        return Ok(None);
    };
    let maps_dir = results.dir.join("maps").join(&reference.model);
    let methods: Vec<String> = c.methods.iter().map(|m| m.key().to_string()).collect();
    for &method in &c.methods {
        let record = reference
            .maps
            .iter()
            .find(|r| &r.id == chosen && r.method == method);
        let file = map_path(&maps_dir, &stem(chosen), method.key(), MapFile::Heatmap);
        let (values, height, width) = read_map(&file)?;
        state.apply_event(Event::Heatmap {
            job: 4,
            model: reference.model.clone(),
            map: HeatmapData {
                sample_id: chosen.clone(),
                method: method.key().to_string(),
                height,
                width,
                values,
                target: record.map_or(results.positive, |r| r.target),
                delta: record.and_then(|r| r.delta),
            },
        });
    }
    if let Some(sample) = data.samples.iter().find(|s| &s.id == chosen) {
        set_photo(state, chosen, &sample.path);
    }
    for metric in Metric::SHOWN {
        let key = metric.name();
        if let Some(overall) = reference.within.overall.get(key) {
            let means = overall
                .iter()
                .map(|row| row.iter().map(|s| s.mean).collect())
                .collect();
            state.set_split_matrix(key, methods.clone(), means);
        }
        for s in &reference.within.per_sample {
            if let Some(values) = s.matrices.get(key) {
                state.set_sample_matrix(&s.id, key, methods.clone(), values.clone());
            }
        }
    }
    for s in &reference.within.per_sample {
        if let Some(score) = state
            .sample_matrix(&s.id)
            .and_then(|m| m.mean_off_diagonal())
        {
            state.set_agreement(&s.id, score);
        }
    }
    Ok(Some(chosen.clone()))
}

fn set_photo(state: &mut AppState, id: &str, path: &Path) {
    match decode_rgb(path) {
        Ok(img) => state.set_image(id, img),
        Err(_) => state.set_image_missing(id),
    }
}
