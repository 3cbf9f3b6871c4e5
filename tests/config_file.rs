//! The shipped config.toml parses into every section's settings (a typo in an
//! option name or value there would otherwise surface only mid-run).

mod common;

use melxai::batch::BatchConfig;
use melxai::config::Config;
use melxai::explain::{ExplainConfig, Integration};
use melxai::train::TrainConfig;

#[test]
fn shipped_config_parses_into_every_section() {
    let config = Config::load(&common::root().join("config.toml"), true).expect("config.toml");
    assert_eq!(config.data.positive_class, "melanoma");
    let train = TrainConfig::from_table(&config.train).expect("[train]");
    assert_eq!(train.seed, 42);
    assert!((train.test_fraction - 0.15).abs() < 1e-12);
    let explain: ExplainConfig = toml::Value::Table(config.explain.clone())
        .try_into()
        .expect("[explain]");
    assert_eq!(explain.integration, Integration::GaussLegendre);
    assert_eq!(explain.cam_layer, "_conv_head");
    let batch: BatchConfig = toml::Value::Table(config.batch.clone())
        .try_into()
        .expect("[batch]");
    assert!(
        batch.models.len() >= 2,
        "the comparison mode needs two models"
    );
    let keys = config
        .tui
        .get("keys")
        .and_then(|k| k.as_table())
        .cloned()
        .unwrap_or_default();
    melxai::tui::KeyMap::default()
        .with_table(&keys)
        .expect("[tui.keys]");
}

#[test]
fn unknown_options_are_rejected_with_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.toml");
    std::fs::write(&p, "[train]\nepoch = 3\n").unwrap();
    let config = Config::load(&p, true).unwrap();
    let err = TrainConfig::from_table(&config.train)
        .unwrap_err()
        .to_string();
    assert!(err.contains("epoch"), "{err}");
    std::fs::write(&p, "[data]\nrooot = \"x\"\n").unwrap();
    let err = Config::load(&p, true).unwrap_err().to_string();
    assert!(err.contains("rooot"), "{err}");
}
