//! The pipeline runner's calibrate request (the TUI's `r`) on the fold
//! ensemble of a cross-validation: its recorded split holds no image every
//! member left out, so the temperature is cross-fitted on the members'
//! out-of-fold predictions, as at training, and stored in the manifest;
//! evaluating and then calibrating predicts once.

mod common;

use melxai::config::Config;
use melxai::engine::runner::PipelineRunner;
use melxai::engine::{JobRunner, Request};
use melxai::progress::{CancelToken, Event};

#[test]
fn calibrating_a_fold_ensemble_refits_on_its_out_of_fold_predictions() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    common::dataset::make(&root.join("data"), 10, 40);
    let weights = root.join("weights");
    std::fs::create_dir_all(&weights).unwrap();
    let f = "efficientnet-lite0-imagenet.safetensors";
    std::os::unix::fs::symlink(common::weights_dir().join(f), weights.join(f)).unwrap();
    let config_path = root.join("config.toml");
    std::fs::write(
        &config_path,
        format!(
            "device = \"cpu\"\n[data]\nroot = \"{}\"\n[model]\nweights_dir = \"{}\"\n\
             [train]\nname = \"e\"\nepochs = 1\nbatch_size = 8\ninput_size = 32\npatience = 0\n\
             folds = 2\ntta = false\n[predict]\ntta = false\n",
            root.join("data").display(),
            weights.display()
        ),
    )
    .unwrap();
    let config = Config::load(&config_path, true).unwrap();
    let mut runner = PipelineRunner::new(config);
    let cancel = CancelToken::new();
    // One request through the runner: its summary and the events it sent.
    let mut run = |job, request| {
        let mut events = Vec::new();
        let summary = runner
            .run(job, request, &mut |e| events.push(e), &cancel)
            .unwrap();
        (summary, events)
    };
    run(
        1,
        Request::Train {
            name: None,
            epochs: None,
            excluded: Vec::new(),
        },
    );
    let manifest_path = weights.join("e.ensemble.toml");
    let trained = melxai::ensemble::manifest::read(&manifest_path).unwrap();
    assert_eq!(
        trained.temperature_fitted_on,
        "out_of_fold (20 images, pooled)"
    );
    let calibrate = || Request::Calibrate {
        checkpoint: manifest_path.clone(),
    };
    let evaluate = || Request::Evaluate {
        checkpoint: manifest_path.clone(),
    };

    // Forget the fitted temperature: calibrating must find it again.
    melxai::ensemble::manifest::store_temperature(&manifest_path, 1.0, "nothing").unwrap();
    let (summary, events) = run(2, calibrate());
    assert!(
        summary.contains("fitted on 20 out-of-fold predictions"),
        "{summary}"
    );
    let refit = melxai::ensemble::manifest::read(&manifest_path).unwrap();
    assert_eq!(
        refit.temperature_fitted_on,
        "out_of_fold (20 images, pooled)"
    );
    // Same members, same images, no TTA: the same fit up to batch numerics.
    assert!(
        (refit.temperature - trained.temperature).abs() < 1e-4 * trained.temperature,
        "{} vs {}",
        refit.temperature,
        trained.temperature
    );
    let after = events
        .iter()
        .find_map(|e| match e {
            Event::Calibration { after, .. } => Some(after.clone()),
            _ => None,
        })
        .expect("a Calibration event");
    assert!(after["ece_if_calibrated"]["expected"].as_f64().unwrap() > 0.0);
    assert_eq!(after["n"], 20);

    // `r` = evaluate, then calibrate: the second predicts nothing again.
    // The calibration above rewrote the manifest, so evaluating predicts anew.
    let predicted = |events: &[Event]| {
        events
            .iter()
            .filter(
                |e| matches!(e, Event::Progress { stage, .. } if stage.starts_with("predicting")),
            )
            .count()
    };
    let (_, events) = run(3, evaluate());
    assert!(
        predicted(&events) > 0,
        "evaluating after a calibration predicts"
    );
    let (_, events) = run(4, calibrate());
    assert_eq!(
        predicted(&events),
        0,
        "the evaluation's predictions are reused"
    );
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Calibration { .. })));
    // The refit equals the stored temperature: the manifest is left as it
    // was, so evaluating again reuses the predictions.
    let (_, events) = run(5, evaluate());
    assert_eq!(predicted(&events), 0, "an unchanged manifest was rewritten");
    // The manifest changed: nothing stale is served.
    melxai::ensemble::manifest::store_temperature(&manifest_path, 2.0, "elsewhere").unwrap();
    let (_, events) = run(6, evaluate());
    assert!(predicted(&events) > 0);
}
