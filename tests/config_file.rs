//! The shipped config.toml parses into every section's settings, and a typo
//! in an option name, an unknown enum value or an out-of-range number is
//! refused at load with the file, section and key named (it would otherwise
//! surface only mid-run, or never).

mod common;

use melxai::config::Config;
use melxai::data::split::SplitName;
use melxai::explain::{Integration, Method};

#[test]
fn shipped_config_parses_into_every_section() {
    let config = Config::load(&common::root().join("config.toml"), true).expect("config.toml");
    assert_eq!(config.data.positive_class, "melanoma");
    assert_eq!(config.train.seed, 42);
    assert!((config.train.test_fraction - 0.15).abs() < 1e-12);
    // No `arch` in [train]: it comes from [model].
    assert_eq!(config.train.arch, config.model.arch);
    assert_eq!(config.explain.integration, Integration::GaussLegendre);
    assert_eq!(config.explain.cam_layer, "_conv_head");
    assert_eq!(config.batch.split, SplitName::Test);
    assert_eq!(
        config.batch.methods,
        [
            Method::GradCam,
            Method::IntegratedGradients,
            Method::DeepLift
        ]
    );
    assert!(
        config.batch.models.len() >= 2,
        "the comparison mode needs two models"
    );
    assert!((config.train.target_sensitivity - 0.95).abs() < 1e-12);
    // "auto": 4 repetitions on a GPU, 1 on the CPU (the 20-min CPU budget).
    assert_eq!(config.batch.cv_repeats, melxai::config::CvRepeats::Auto);
    assert_eq!(config.batch.cv_repeats.resolve(tch::Device::Cpu), 1);
    assert_eq!(config.batch.cv_repeats.resolve(tch::Device::Cuda(0)), 4);
    assert_eq!(config.batch.bootstrap_samples, 2000);
    // TTA: held-out predictions with it on a GPU; predictions as the model's
    // temperature was fitted.
    use melxai::ensemble::tta::TtaSetting;
    assert_eq!(config.train.tta, TtaSetting::Auto);
    assert!(config.train.tta.for_training(tch::Device::Cuda(0)));
    assert!(!config.train.tta.for_training(tch::Device::Cpu));
    assert_eq!(config.predict.tta, TtaSetting::Auto);
    assert!(config.predict.tta.for_model(true) && !config.predict.tta.for_model(false));
    // Fold ensembles average their members' probabilities.
    assert_eq!(
        config.train.combine,
        melxai::ensemble::manifest::CombineRule::MeanProbabilities
    );
    // Weight averaging, with folds trained on all their non-test images.
    assert_eq!(config.train.swa_epochs, 10);
    assert_eq!(config.train.fold_val_fraction(), 0.0);
    assert!(
        config.train.val_fraction > 0.0,
        "single models calibrate on it"
    );
    melxai::tui::KeyMap::default()
        .with_table(&config.tui.keys)
        .expect("[tui.keys]");
}

/// Loads `text` as a config file; the error message, or panics if it loads.
fn rejection(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, text).unwrap();
    let err = Config::load(&path, true)
        .expect_err(&format!("accepted:\n{text}"))
        .to_string();
    assert!(err.contains("c.toml"), "no file name in: {err}");
    err
}

fn assert_mentions(err: &str, parts: &[&str]) {
    for p in parts {
        assert!(err.contains(p), "{p:?} not in: {err}");
    }
}

#[test]
fn unknown_keys_are_rejected_in_every_section() {
    for (text, section, key) in [
        ("devise = \"cpu\"\n", "", "devise"),
        ("[data]\nrooot = \"x\"\n", "[data]", "rooot"),
        (
            "[model]\narchitecture = \"lite0\"\n",
            "[model]",
            "architecture",
        ),
        ("[train]\nepoch = 3\n", "[train]", "epoch"),
        (
            "[train.augment]\nflips = true\n",
            "[train.augment]",
            "flips",
        ),
        ("[explain]\nstep = 3\n", "[explain]", "step"),
        ("[batch]\nsplits = \"val\"\n", "[batch]", "splits"),
        (
            "[batch]\nmodels = [{ name = \"a\", seeds = 1 }]\n",
            "[batch] models[0]",
            "seeds",
        ),
        ("[tui]\nkey = {}\n", "[tui]", "key"),
        // Sections that configure nothing are not accepted either.
        ("[calibrate]\nbins = 15\n", "", "calibrate"),
        ("[compare]\npercentile = 90\n", "", "compare"),
        ("[report]\nformat = \"md\"\n", "", "report"),
    ] {
        let err = rejection(text);
        assert_mentions(&err, &[section, key, "unknown field"]);
    }
}

#[test]
fn bad_enum_values_are_rejected_with_their_key_and_choices() {
    let err = rejection("[batch]\nsplit = \"tset\"\n");
    assert_mentions(
        &err,
        &["[batch] split", "tset", "test", "val", "train", "all"],
    );
    let err = rejection("[batch]\nmethods = [\"gradcam\", \"lime\"]\n");
    assert_mentions(&err, &["[batch] methods", "lime", "deeplift"]);
    let err = rejection("[train]\nschedule = \"cosin\"\n");
    assert_mentions(&err, &["[train] schedule", "cosin", "cosine"]);
    let err = rejection("[train]\nmonitor = \"auroc\"\n");
    assert_mentions(&err, &["[train] monitor", "auroc", "val_auroc"]);
    let err = rejection("[explain]\nbaseline = \"grey\"\n");
    assert_mentions(&err, &["[explain] baseline", "grey", "zero"]);
    let err = rejection("[explain]\nintegration = \"simpson\"\n");
    assert_mentions(&err, &["[explain] integration", "simpson"]);
    let err = rejection("[model]\narch = \"resnet50\"\n");
    assert_mentions(&err, &["[model] arch", "resnet50", "lite0"]);
    let err = rejection("[train]\narch = \"b9\"\n");
    assert_mentions(&err, &["[train] arch", "b9", "b7"]);
    let err = rejection("[train]\nepochs = \"ten\"\n");
    assert_mentions(&err, &["[train] epochs", "ten"]);
    let err = rejection("[tui]\ntheme = \"solarized\"\n");
    assert_mentions(&err, &["[tui] theme", "solarized", "auto", "dark", "light"]);
    // The data-set keys of issue 27.
    let err = rejection("[data]\ndecode = \"half\"\n");
    assert_mentions(&err, &["[data] decode", "half", "reduced"]);
    let err = rejection("[data]\ndecode = \"reduced\"\n");
    assert_mentions(&err, &["[data] decode", "[data] store"]);
    let err = rejection("[batch]\nexplain_images = \"some\"\n");
    assert_mentions(&err, &["explain_images", "some"]);
    let err = rejection("[train]\nsampler = \"oversample\"\n");
    assert_mentions(&err, &["[train] sampler", "oversample", "class_balanced"]);
}

#[test]
fn out_of_range_numbers_are_rejected_with_their_key_and_range() {
    for (text, parts) in [
        ("device = \"banana\"\n", &["device", "banana", "cuda:N"][..]),
        (
            "[train]\nlearning_rate = -1.0\n",
            &["[train] learning_rate", "-1", "> 0"],
        ),
        (
            "[train]\nlearning_rate = 0.0\n",
            &["[train] learning_rate", "> 0"],
        ),
        (
            "[train]\nlearning_rate = nan\n",
            &["[train] learning_rate", "NaN"],
        ),
        (
            "[train]\nlearning_rate = inf\n",
            &["[train] learning_rate", "finite"],
        ),
        ("[train]\nbatch_size = 0\n", &["[train] batch_size", ">= 1"]),
        (
            "[train]\nepochs = 0\nwarmup_epochs = 0\n",
            &["[train] epochs", ">= 1"],
        ),
        (
            "[train]\ninput_size = 0\n",
            &["[train] input_size", "32..=1024"],
        ),
        (
            "[train]\ninput_size = -224\n",
            &["[train] input_size", "32..=1024"],
        ),
        (
            "[train]\ninput_size = 100000\n",
            &["[train] input_size", "32..=1024"],
        ),
        (
            "[train]\nepochs = 3\nwarmup_epochs = 4\n",
            &["[train] warmup_epochs", "<= epochs (3)"],
        ),
        (
            "[train]\nswa_epochs = 5\n",
            &["[train] patience", "8", "0 when swa_epochs is set"],
        ),
        (
            "[train]\nfold_val_fraction = 0.0\n",
            &["[train] fold_val_fraction", "above 0 when swa_epochs is 0"],
        ),
        (
            "[train]\nfold_val_fraction = 1.0\n",
            &["[train] fold_val_fraction", "[0, 1)"],
        ),
        (
            "[train]\ngrad_clip = -1.0\n",
            &["[train] grad_clip", ">= 0"],
        ),
        (
            "[train]\nweight_decay = -0.1\n",
            &["[train] weight_decay", ">= 0"],
        ),
        (
            "[train]\ntest_fraction = 0.0\n",
            &["[train] test_fraction", "(0, 1)"],
        ),
        (
            "[train]\nval_fraction = 1.0\n",
            &["[train] val_fraction", "(0, 1)"],
        ),
        ("[train]\nname = \"\"\n", &["[train] name", "file name"]),
        (
            "[train]\nname = \"../x\"\n",
            &["[train] name", "separators"],
        ),
        (
            "[train.augment]\ncrop_min_scale = 1.5\n",
            &["[train.augment] crop_min_scale", "(0, 1]"],
        ),
        (
            "[train.augment]\ncolour_jitter = 1.0\n",
            &["[train.augment] colour_jitter", "[0, 1)"],
        ),
        ("[train]\nseed = -1\n", &["[train] seed"]),
        ("[explain]\nsteps = 0\n", &["[explain] steps", "1..="]),
        (
            "[explain]\ninternal_batch = 0\n",
            &["[explain] internal_batch", "1..="],
        ),
        (
            "[batch]\nmethods = []\n",
            &["[batch] methods", "at least one"],
        ),
        ("[batch]\nfolds = 1\n", &["[batch] folds", "at least 2"]),
        ("[train]\nfolds = 1\n", &["[train] folds", "at least 2"]),
        ("[batch]\nrun_name = \"\"\n", &["[batch] run_name"]),
        (
            "[batch]\nmodels = [{ name = \"a\" }, { name = \"a\" }]\n",
            &["[batch] models.name", "\"a\""],
        ),
        (
            "[batch]\nmodels = [{ name = \"a\", arch = \"lite9\" }]\n",
            &["[batch] models.arch", "lite9"],
        ),
        (
            "[train]\ntarget_sensitivity = 0.0\n",
            &["[train] target_sensitivity", "(0, 1]"],
        ),
        (
            "[train]\ntarget_sensitivity = 1.01\n",
            &["[train] target_sensitivity", "1.01", "(0, 1]"],
        ),
        (
            "[batch]\ncv_repeats = 0\n",
            &["[batch] cv_repeats", "1..=20"],
        ),
        ("[batch]\ncv_repeats = 21\n", &["[batch] cv_repeats", "21"]),
        (
            "[batch]\ncv_repeats = \"many\"\n",
            &["[batch] cv_repeats", "\"auto\"", "many"],
        ),
        (
            "[batch]\ncv_repeats = -2\n",
            &["[batch] cv_repeats", "\"auto\""],
        ),
        (
            "[train]\ntta = \"yes\"\n",
            &["[train] tta", "\"auto\"", "yes"],
        ),
        ("[predict]\ntta = 1\n", &["[predict] tta", "true, false"]),
        (
            "[train]\ncombine = \"median\"\n",
            &["[train] combine", "median", "mean_probabilities"],
        ),
        (
            "[batch]\ncv_extra_input_sizes = [16]\n",
            &["[batch] cv_extra_input_sizes", "16", "32..=1024"],
        ),
        (
            "[batch]\ncv_extra_input_sizes = [320, 320]\n",
            &["[batch] cv_extra_input_sizes", "320", "once"],
        ),
        (
            "[batch]\ncv_extra_input_sizes = [256, 288, 320, 384]\n",
            &["[batch] cv_extra_input_sizes", "4 sizes", "at most 3"],
        ),
        (
            "[batch]\nbootstrap_samples = 10\n",
            &["[batch] bootstrap_samples", "100..=100000"],
        ),
    ] {
        let err = rejection(text);
        assert_mentions(&err, parts);
    }
}

#[test]
fn values_in_range_and_aliases_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "[model]\narch = \"lite1\"\n[train]\narch = \"lite2\"\nepochs = 1\nwarmup_epochs = 1\n\
         grad_clip = 0.0\ninput_size = 32\n[batch]\nsplit = \"train\"\n\
         methods = [\"gradcam++\", \"IG\", \"deeplift\"]\n",
    )
    .unwrap();
    // Method names are case-sensitive in the file (serde), so "IG" is refused...
    let err = Config::load(&path, true).unwrap_err().to_string();
    assert!(err.contains("[batch] methods"), "{err}");
    // ...and accepted in its canonical spelling, with `gradcam++` as an alias.
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"IG\"", "\"ig\"");
    std::fs::write(&path, text).unwrap();
    let config = Config::load(&path, true).unwrap();
    assert_eq!(config.model.arch, "lite1");
    assert_eq!(config.train.arch, "lite2", "an explicit [train] arch wins");
    assert_eq!(config.train.input_size, Some(32));
    assert_eq!(config.batch.split, SplitName::Train);
    assert_eq!(
        config.batch.methods,
        [
            Method::GradCamPlusPlus,
            Method::IntegratedGradients,
            Method::DeepLift
        ]
    );
}

/// CLI flags override the file and are held to the same ranges: exit code 2
/// and the flag named, before any work starts.
#[test]
fn out_of_range_flags_are_refused_with_the_flag_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), "device = \"cpu\"\n").unwrap();
    for (args, flag) in [
        (&["train", "--lr=-1"][..], "--lr"),
        (&["train", "--lr", "nan"], "--lr"),
        (&["train", "--epochs", "0"], "--epochs"),
        (&["train", "--folds", "1"], "--folds"),
        (&["train", "--batch-size", "0"], "--batch-size"),
        (&["train", "--input-size", "4096"], "--input-size"),
        (&["train", "--name", ""], "--name"),
        (&["train", "--arch", "lite9"], "--arch"),
        (&["--batch", "--name", "a/b"], "--name"),
        (
            &["explain", "--imagenet", "x.png", "--steps", "0"],
            "--steps",
        ),
        (
            &["explain", "--imagenet", "x.png", "--internal-batch", "0"],
            "--internal-batch",
        ),
        (
            &["compare", "--checkpoint", "x", "--split", "tset"],
            "--split",
        ),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_melxai"))
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
    }
}

#[test]
fn tui_theme_is_typed() {
    use melxai::tui::ThemeChoice;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "[tui]\ntheme = \"light\"\n").unwrap();
    assert_eq!(
        Config::load(&path, true).unwrap().tui.theme,
        ThemeChoice::Light
    );
    std::fs::write(&path, "[tui]\n").unwrap();
    assert_eq!(
        Config::load(&path, true).unwrap().tui.theme,
        ThemeChoice::Auto
    );
}

/// The TUI's checkpoint: the `[train] name` run first (ensemble, then
/// single), then the `--batch` reference model's fold ensemble and single
/// checkpoint; none when nothing exists.
#[test]
fn default_checkpoint_prefers_the_train_run_then_the_batch_reference() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path();
    let mut config = Config::default();
    config.model.weights_dir = w.to_path_buf();
    config.train.name = "run".into();
    config.batch.models[0].name = "ref".into();
    assert_eq!(config.default_checkpoint(), None);
    // Files appear one by one, each preferred to all before it; then go.
    let preferred_in_order = |config: &Config, order: &[&str]| {
        for file in order {
            std::fs::write(w.join(file), "").unwrap();
            assert_eq!(config.default_checkpoint(), Some(w.join(file)), "{file}");
        }
        for file in order {
            std::fs::remove_file(w.join(file)).unwrap();
        }
    };
    preferred_in_order(
        &config,
        &[
            "ref.safetensors",
            "ref-cv.ensemble.toml",
            "run.safetensors",
            "run.ensemble.toml",
        ],
    );
    // Under weight averaging `--batch` names the reference `ref-swa10`; its
    // files come first, then those of an older best-epoch run.
    config.train.swa_epochs = 10;
    config.train.patience = 0;
    preferred_in_order(
        &config,
        &[
            "ref.safetensors",
            "ref-swa10.safetensors",
            "ref-cv.ensemble.toml",
            "ref-swa10-cv.ensemble.toml",
            "run.safetensors",
        ],
    );
    // Folds trained without validation images: `ref-swa10-val0-cv`, before
    // the fold ensemble of a run with validation (the single model keeps
    // its name: `fold_val_fraction` changes only the folds).
    config.train.fold_val_fraction = Some(0.0);
    preferred_in_order(
        &config,
        &[
            "ref-swa10.safetensors",
            "ref-swa10-cv.ensemble.toml",
            "ref-swa10-val0-cv.ensemble.toml",
            "run.safetensors",
        ],
    );
    assert_eq!(config.train.batch_stem("ref", false), "ref-swa10");
    assert_eq!(config.train.batch_stem("ref", true), "ref-swa10-val0");
    // A reference model given as a checkpoint is opened from its path.
    let given = w.join("elsewhere.safetensors");
    std::fs::write(&given, "").unwrap();
    config.batch.models[0].checkpoint = Some(given.clone());
    assert_eq!(config.default_checkpoint(), Some(given));
}
