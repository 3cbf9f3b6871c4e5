//! Scripted engine events and state shared by the TUI tests.
#![allow(dead_code)]

use image::{Rgb, RgbImage};
use melxai::progress::{EpochSummary, Event, HeatmapData, JobKind, SamplePrediction};
use melxai::tui::AppState;
use serde_json::json;

pub fn class_names() -> Vec<String> {
    vec!["naevus".into(), "melanoma".into()]
}

pub fn samples() -> Vec<(String, usize)> {
    vec![
        ("melanoma/m01.jpg".into(), 1),
        ("melanoma/m02.jpg".into(), 1),
        ("melanoma/m03.jpg".into(), 1),
        ("naevus/n01.jpg".into(), 0),
        ("naevus/n02.jpg".into(), 0),
        ("naevus/n03.jpg".into(), 0),
    ]
}

/// A state with samples and nothing from the engine.
pub fn fresh() -> AppState {
    AppState::new(samples(), class_names())
}

fn pred(id: &str, label: usize, p: f64) -> SamplePrediction {
    SamplePrediction {
        id: id.into(),
        label,
        predicted: usize::from(p >= 0.5),
        probability: p,
        probability_uncalibrated: (p * 1.2).min(1.0),
        split: "val".into(),
        uncertainty: None,
        decision: None,
        conformal_set: None,
    }
}

pub fn predictions() -> Vec<SamplePrediction> {
    vec![
        pred("melanoma/m01.jpg", 1, 0.93),
        pred("melanoma/m02.jpg", 1, 0.41), // missed melanoma, uncertain
        pred("melanoma/m03.jpg", 1, 0.77),
        pred("naevus/n01.jpg", 0, 0.08),
        pred("naevus/n02.jpg", 0, 0.62), // false alarm, uncertain
        pred("naevus/n03.jpg", 0, 0.21),
    ]
}

pub fn epoch(e: usize) -> EpochSummary {
    EpochSummary {
        fold: None,
        epoch: e,
        epochs: 5,
        train_loss: 0.7 / e as f64,
        val_loss: 0.8 / e as f64 + 0.05,
        val_balanced_accuracy: 0.6 + 0.06 * e as f64,
        val_auroc: 0.7 + 0.05 * e as f64,
        learning_rate: 3e-4 / e as f64,
        seconds: 12.0,
        images_per_second: 42.0,
    }
}

pub fn training_events() -> Vec<Event> {
    let mut evs = vec![Event::Started {
        job: 1,
        kind: JobKind::Train,
        description: "train lite0 (5 epochs)".into(),
    }];
    for e in 1..=3 {
        for b in 1..=4 {
            evs.push(Event::Batch {
                job: 1,
                epoch: e,
                batch: b,
                batches: 8,
                loss: 0.7 / e as f64,
                learning_rate: 3e-4 / e as f64,
            });
        }
        evs.push(Event::Epoch {
            job: 1,
            summary: epoch(e),
        });
    }
    evs.push(Event::Batch {
        job: 1,
        epoch: 4,
        batch: 4,
        batches: 8,
        loss: 0.16,
        learning_rate: 7.5e-5,
    });
    evs
}

fn bins(shift: f64) -> serde_json::Value {
    let bins: Vec<serde_json::Value> = (0..5)
        .map(|i| {
            let lo = i as f64 * 0.2;
            if i == 2 {
                json!({"lower": lo, "upper": lo + 0.2, "mean_confidence": null, "accuracy": null, "count": 0})
            } else {
                json!({"lower": lo, "upper": lo + 0.2, "mean_confidence": lo + 0.1,
                       "accuracy": (lo + 0.1 - shift).clamp(0.0, 1.0), "count": 10 + i})
            }
        })
        .collect();
    json!(bins)
}

pub fn evaluation_events() -> Vec<Event> {
    vec![
        Event::Finished {
            job: 1,
            summary: "trained lite0-run1".into(),
        },
        Event::Predictions {
            job: 2,
            model: "lite0-run1".into(),
            rows: predictions(),
        },
        Event::Calibration {
            job: 3,
            model: "lite0-run1".into(),
            temperature: 1.734,
            before: json!({"ece": 0.121, "adaptive_ece": 0.118, "mce": 0.31, "brier": 0.182, "nll": 0.55, "bins": bins(0.15),
                "ece_if_calibrated": {"expected": 0.094, "p_value": 0.31}}),
            after: json!({"ece": 0.043, "adaptive_ece": 0.05, "mce": 0.12, "brier": 0.161, "nll": 0.47, "bins": bins(0.03),
                "ece_if_calibrated": {"expected": 0.088, "p_value": 0.83}}),
        },
    ]
}

/// A 12x12 heatmap with a blob whose centre depends on the method.
pub fn heatmap(sample: &str, method: &str, cx: f32, cy: f32) -> HeatmapData {
    let (w, h) = (12usize, 12usize);
    let values = (0..h)
        .flat_map(|y| {
            (0..w).map(move |x| {
                let d2 = (x as f32 - cx).powi(2) + (y as f32 - cy).powi(2);
                (-d2 / 12.0).exp()
            })
        })
        .collect();
    HeatmapData {
        sample_id: sample.into(),
        method: method.into(),
        height: h,
        width: w,
        values,
        target: 1,
        delta: (method == "ig").then_some(0.0123),
    }
}

pub fn heatmap_events(sample: &str) -> Vec<Event> {
    vec![
        Event::Started {
            job: 4,
            kind: JobKind::Explain,
            description: format!("explain {sample}"),
        },
        Event::Heatmap {
            job: 4,
            model: "lite0-run1".into(),
            map: heatmap(sample, "gradcam", 5.0, 5.0),
        },
        Event::Heatmap {
            job: 4,
            model: "lite0-run1".into(),
            map: heatmap(sample, "deeplift", 6.0, 5.0),
        },
        Event::Heatmap {
            job: 4,
            model: "lite0-run1".into(),
            map: heatmap(sample, "ig", 4.0, 7.0),
        },
        Event::Finished {
            job: 4,
            summary: "3 heatmaps".into(),
        },
    ]
}

/// A synthetic "photo": a brown blob on skin tone.
pub fn photo() -> RgbImage {
    RgbImage::from_fn(64, 48, |x, y| {
        let d = ((x as f32 - 30.0).powi(2) + (y as f32 - 24.0).powi(2)).sqrt();
        if d < 14.0 {
            Rgb([90, 50, 30])
        } else {
            Rgb([230, 190, 160])
        }
    })
}

/// Everything: trained, evaluated, calibrated, first sample explained with matrices.
pub fn full() -> AppState {
    let mut s = fresh();
    for ev in training_events().into_iter().chain(evaluation_events()) {
        s.apply_event(ev);
    }
    let id = s.selected_id().unwrap().to_string();
    s.set_image(&id, photo());
    for ev in heatmap_events(&id) {
        s.apply_event(ev);
    }
    let methods = vec!["gradcam".to_string(), "deeplift".into(), "ig".into()];
    s.set_matrix(
        "ssim",
        methods.clone(),
        vec![
            vec![1.0, 0.82, 0.41],
            vec![0.82, 1.0, 0.37],
            vec![0.41, 0.37, 1.0],
        ],
    );
    s.set_split_matrix(
        "ssim",
        methods,
        vec![
            vec![1.0, 0.71, 0.45],
            vec![0.71, 1.0, 0.40],
            vec![0.45, 0.40, 1.0],
        ],
    );
    s.set_agreement(&id, 0.53);
    s.set_agreement("melanoma/m02.jpg", 0.21);
    s
}

/// The characters of a rendered buffer, one line per row.
pub fn text(buf: &ratatui::buffer::Buffer) -> String {
    let area = buf.area;
    (0..area.height)
        .map(|y| {
            (0..area.width)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}
