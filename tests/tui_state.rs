//! Keys → actions, actions → state + requests, filters/sorts/search, triage.

mod tui_support;

use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use melxai::engine::requests::Request;
use melxai::progress::{Event, JobKind};
use melxai::tui::keys::{Action, Key, KeyMap};
use melxai::tui::state::{Filter, InputMode, JobStatus, Pane, SortKey};
use melxai::tui::{triage, GraphicsMode, TriageEntry, TriageMark};
use tui_support::*;

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn ch(c: char) -> KeyEvent {
    key(KeyCode::Char(c))
}

fn visible_ids(s: &melxai::tui::AppState) -> Vec<String> {
    s.visible()
        .into_iter()
        .map(|i| s.rows()[i].id.clone())
        .collect()
}

#[test]
fn default_bindings() {
    let k = KeyMap::default();
    let n = InputMode::Normal;
    let cases = [
        (ch('j'), Action::MoveDown),
        (key(KeyCode::Down), Action::MoveDown),
        (ch('k'), Action::MoveUp),
        (key(KeyCode::Up), Action::MoveUp),
        (key(KeyCode::PageDown), Action::PageDown),
        (key(KeyCode::PageUp), Action::PageUp),
        (ch('g'), Action::Top),
        (
            KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT),
            Action::Bottom,
        ),
        (key(KeyCode::Tab), Action::NextPane),
        (
            KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT),
            Action::PrevPane,
        ),
        (ch('z'), Action::ToggleZoom),
        (ch('f'), Action::CycleFilter),
        (ch('s'), Action::CycleSort),
        (ch('/'), Action::StartSearch),
        (ch('m'), Action::Mark(TriageMark::Flag)),
        (ch('c'), Action::Mark(TriageMark::Confirmed)),
        (ch('x'), Action::Mark(TriageMark::Exclude)),
        (ch('n'), Action::EditNote),
        (ch('t'), Action::StartTraining),
        (ch('e'), Action::Explain),
        (key(KeyCode::Esc), Action::Cancel),
        (ch('?'), Action::ToggleHelp),
        (ch('p'), Action::Screenshot),
        (
            KeyEvent::new(KeyCode::Char('M'), KeyModifiers::SHIFT),
            Action::CycleMetric,
        ),
        (ch('q'), Action::Quit),
        (
            KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
            Action::Quit,
        ),
    ];
    for (ev, want) in cases {
        assert_eq!(k.action_for(&n, &ev), Some(want), "{ev:?}");
    }
    assert_eq!(k.action_for(&n, &ch('Q')), None);
}

#[test]
fn text_input_mode_types_characters() {
    let k = KeyMap::default();
    let m = InputMode::Search(String::new());
    assert_eq!(k.action_for(&m, &ch('q')), Some(Action::Input('q')));
    assert_eq!(k.action_for(&m, &ch('j')), Some(Action::Input('j')));
    assert_eq!(k.action_for(&m, &key(KeyCode::Enter)), Some(Action::Submit));
    assert_eq!(
        k.action_for(&m, &key(KeyCode::Backspace)),
        Some(Action::Backspace)
    );
    assert_eq!(k.action_for(&m, &key(KeyCode::Esc)), Some(Action::Cancel));
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(k.action_for(&m, &ctrl_c), Some(Action::Quit));
}

#[test]
fn key_strings_parse() {
    assert_eq!(Key::parse("x").unwrap(), Key::plain(KeyCode::Char('x')));
    assert_eq!(Key::parse("G").unwrap(), Key::plain(KeyCode::Char('G')));
    assert_eq!(Key::parse("-").unwrap(), Key::plain(KeyCode::Char('-')));
    assert_eq!(
        Key::parse("ctrl-s").unwrap(),
        Key::new(KeyCode::Char('s'), KeyModifiers::CONTROL)
    );
    assert_eq!(Key::parse("F5").unwrap(), Key::plain(KeyCode::F(5)));
    assert_eq!(Key::parse("esc").unwrap(), Key::plain(KeyCode::Esc));
    assert_eq!(
        Key::parse("shift-tab").unwrap(),
        Key::plain(KeyCode::BackTab)
    );
    assert_eq!(Key::parse("pgdn").unwrap(), Key::plain(KeyCode::PageDown));
    assert!(Key::parse("F99").is_err());
    assert!(Key::parse("hyper-x").is_err());
    assert!(Key::parse("").is_err());
}

#[test]
fn keys_remap_from_toml() {
    let cfg = r#"
        [model]
        arch = "lite0"
        [tui.keys]
        train = "F5"
        quit = ["ctrl-q", "Q"]
        flag = "t"
    "#;
    let k = KeyMap::from_config_toml(cfg).unwrap();
    let n = InputMode::Normal;
    assert_eq!(
        k.action_for(&n, &key(KeyCode::F(5))),
        Some(Action::StartTraining)
    );
    // `t` was taken by flag; `m` no longer flags; `q` no longer quits.
    assert_eq!(
        k.action_for(&n, &ch('t')),
        Some(Action::Mark(TriageMark::Flag))
    );
    assert_eq!(k.action_for(&n, &ch('m')), None);
    assert_eq!(k.action_for(&n, &ch('q')), None);
    assert_eq!(
        k.action_for(
            &n,
            &KeyEvent::new(KeyCode::Char('q'), KeyModifiers::CONTROL)
        ),
        Some(Action::Quit)
    );
    assert_eq!(k.action_for(&n, &ch('Q')), Some(Action::Quit));
    assert!(KeyMap::from_config_toml("[tui.keys]\nfly = \"x\"").is_err());
    assert!(KeyMap::from_config_toml("[tui.keys]\nquit = 3").is_err());
    assert_eq!(KeyMap::from_config_toml("").unwrap(), KeyMap::default());
}

#[test]
fn graphics_mode_parses() {
    for (s, m) in [
        ("auto", GraphicsMode::Auto),
        ("kitty", GraphicsMode::Kitty),
        ("SIXEL", GraphicsMode::Sixel),
        ("iterm2", GraphicsMode::Iterm2),
        ("halfblocks", GraphicsMode::Halfblocks),
    ] {
        assert_eq!(s.parse::<GraphicsMode>().unwrap(), m);
    }
    assert!("vga".parse::<GraphicsMode>().is_err());
}

#[test]
fn navigation_clamps_and_pages() {
    let mut s = fresh();
    assert_eq!(s.selected_id(), Some("melanoma/m01.jpg"));
    s.update(Action::MoveUp);
    assert_eq!(s.selected_id(), Some("melanoma/m01.jpg"));
    s.update(Action::MoveDown);
    assert_eq!(s.selected_id(), Some("melanoma/m02.jpg"));
    s.update(Action::Bottom);
    assert_eq!(s.selected_id(), Some("naevus/n03.jpg"));
    s.update(Action::MoveDown);
    assert_eq!(s.selected_id(), Some("naevus/n03.jpg"));
    s.update(Action::Top);
    assert_eq!(s.selected_id(), Some("melanoma/m01.jpg"));
    s.set_page_size(4);
    s.update(Action::PageDown);
    assert_eq!(s.selected_id(), Some("naevus/n02.jpg"));
    s.update(Action::PageUp);
    assert_eq!(s.selected_id(), Some("melanoma/m01.jpg"));
    s.update(Action::SelectRow(2));
    assert_eq!(s.selected_id(), Some("melanoma/m03.jpg"));
}

#[test]
fn filters() {
    let mut s = full();
    assert_eq!(s.filter(), Filter::All);
    assert_eq!(s.visible().len(), 6);
    s.update(Action::CycleFilter);
    assert_eq!(s.filter(), Filter::Misclassified);
    assert_eq!(visible_ids(&s), ["melanoma/m02.jpg", "naevus/n02.jpg"]);
    // The selection moved onto a visible row.
    assert_eq!(s.selected_id(), Some("melanoma/m02.jpg"));
    s.update(Action::CycleFilter);
    assert_eq!(s.filter(), Filter::Uncertain);
    assert_eq!(visible_ids(&s), ["melanoma/m02.jpg", "naevus/n02.jpg"]);
    s.uncertain_band = 0.3;
    assert_eq!(
        visible_ids(&s),
        [
            "melanoma/m02.jpg",
            "melanoma/m03.jpg",
            "naevus/n02.jpg",
            "naevus/n03.jpg"
        ]
    );
    s.update(Action::CycleFilter);
    assert_eq!(s.filter(), Filter::LowAgreement);
    assert_eq!(visible_ids(&s), ["melanoma/m02.jpg"]);
    s.agreement_threshold = 0.6;
    assert_eq!(visible_ids(&s), ["melanoma/m01.jpg", "melanoma/m02.jpg"]);
    s.update(Action::CycleFilter);
    assert_eq!(s.filter(), Filter::SetOfTwo);
    // No model with conformal thresholds yet: no set, nothing shown.
    assert!(visible_ids(&s).is_empty());
    s.update(Action::CycleFilter);
    assert_eq!(s.filter(), Filter::All);
}

#[test]
fn sorts() {
    let mut s = full();
    assert_eq!(s.sort(), SortKey::Name);
    s.update(Action::CycleSort);
    assert_eq!(s.sort(), SortKey::Probability);
    assert_eq!(
        visible_ids(&s),
        [
            "melanoma/m01.jpg",
            "melanoma/m03.jpg",
            "naevus/n02.jpg",
            "melanoma/m02.jpg",
            "naevus/n03.jpg",
            "naevus/n01.jpg"
        ]
    );
    s.update(Action::CycleSort);
    assert_eq!(s.sort(), SortKey::Agreement);
    let ids = visible_ids(&s);
    assert_eq!(&ids[..2], ["melanoma/m02.jpg", "melanoma/m01.jpg"]);
    // Unknown agreement last, by name.
    assert_eq!(
        &ids[2..],
        [
            "melanoma/m03.jpg",
            "naevus/n01.jpg",
            "naevus/n02.jpg",
            "naevus/n03.jpg"
        ]
    );
}

#[test]
fn search_live_and_cancel() {
    let mut s = fresh();
    s.update(Action::StartSearch);
    assert!(matches!(s.input(), InputMode::Search(_)));
    for c in "N0".chars() {
        s.update(Action::Input(c));
    }
    assert_eq!(s.visible().len(), 3, "case-insensitive, live");
    assert_eq!(s.selected_id(), Some("naevus/n01.jpg"));
    s.update(Action::Input('2'));
    assert_eq!(visible_ids(&s), ["naevus/n02.jpg"]);
    s.update(Action::Backspace);
    s.update(Action::Submit);
    assert_eq!(s.input(), &InputMode::Normal);
    assert_eq!(s.query(), "N0");
    assert_eq!(s.visible().len(), 3);
    // Esc clears a kept query before anything else.
    let reqs = s.update(Action::Cancel);
    assert!(reqs.is_empty());
    assert_eq!(s.query(), "");
    assert_eq!(s.visible().len(), 6);
    // Esc while typing drops the search.
    s.update(Action::StartSearch);
    s.update(Action::Input('z'));
    assert_eq!(s.visible().len(), 0);
    s.update(Action::Cancel);
    assert_eq!(s.visible().len(), 6);
}

#[test]
fn marks_and_notes() {
    let mut s = fresh();
    s.update(Action::Mark(TriageMark::Flag));
    assert_eq!(s.mark_of("melanoma/m01.jpg"), Some(TriageMark::Flag));
    assert!(s.take_triage_dirty());
    assert!(!s.take_triage_dirty());
    s.update(Action::Mark(TriageMark::Flag));
    assert_eq!(s.mark_of("melanoma/m01.jpg"), None, "same mark toggles off");
    s.update(Action::Mark(TriageMark::Exclude));
    s.update(Action::MoveDown);
    s.update(Action::Mark(TriageMark::Exclude));
    s.update(Action::Mark(TriageMark::Confirmed));
    assert_eq!(s.excluded_ids(), ["melanoma/m01.jpg"]);
    s.update(Action::EditNote);
    for c in "hair artefact".chars() {
        s.update(Action::Input(c));
    }
    s.update(Action::Submit);
    assert_eq!(
        s.triage().get("melanoma/m02.jpg"),
        Some(&TriageEntry {
            mark: Some(TriageMark::Confirmed),
            note: Some("hair artefact".into())
        })
    );
}

#[test]
fn train_sends_exclusions_and_refuses_while_running() {
    let mut s = fresh();
    s.update(Action::Mark(TriageMark::Exclude));
    let reqs = s.update(Action::StartTraining);
    assert_eq!(
        reqs,
        [Request::Train {
            name: None,
            epochs: None,
            excluded: vec!["melanoma/m01.jpg".into()]
        }]
    );
    s.apply_event(Event::Started {
        job: 1,
        kind: JobKind::Train,
        description: "train".into(),
    });
    assert!(s.is_training());
    // The epoch count is known from the first progress event, before any batch.
    s.apply_event(Event::Progress {
        job: 1,
        stage: "epoch 1/15".into(),
        done: 0,
        total: 15,
        eta_seconds: None,
    });
    assert_eq!(s.training().epochs, 15);
    assert!(s.training().active);
    assert!(s.update(Action::StartTraining).is_empty());
    assert!(s.update(Action::Explain).is_empty());
    assert_eq!(s.update(Action::Cancel), [Request::Cancel]);
    s.apply_event(Event::Cancelled { job: 1 });
    assert_eq!(s.job(), &JobStatus::Done("cancelled".into()));
    assert!(s.update(Action::Cancel).is_empty());
}

#[test]
fn explain_and_evaluate_need_a_checkpoint() {
    let mut s = fresh();
    assert!(s.update(Action::Explain).is_empty());
    assert!(s.last_message().unwrap().text.contains("No checkpoint yet"));
    assert!(s.update(Action::Evaluate).is_empty());
    for ev in evaluation_events() {
        s.apply_event(ev);
    }
    let cp = PathBuf::from("weights/lite0-run1");
    assert_eq!(s.checkpoint(), Some(cp.as_path()));
    s.update(Action::MoveDown);
    assert_eq!(
        s.update(Action::Explain),
        [Request::Explain {
            checkpoint: cp.clone(),
            sample_ids: vec!["melanoma/m02.jpg".into()],
            methods: vec!["gradcam".into(), "deeplift".into(), "ig".into()],
        }]
    );
    assert_eq!(
        s.update(Action::Evaluate),
        [
            Request::Evaluate {
                checkpoint: cp.clone()
            },
            Request::Calibrate { checkpoint: cp }
        ]
    );
}

#[test]
fn esc_closes_overlays_before_cancelling() {
    let mut s = fresh();
    s.apply_event(Event::Started {
        job: 9,
        kind: JobKind::Evaluate,
        description: "eval".into(),
    });
    s.update(Action::ToggleHelp);
    s.update(Action::ToggleZoom);
    assert!(s.show_help());
    assert!(s.update(Action::Cancel).is_empty());
    assert!(!s.show_help());
    assert_eq!(s.zoomed(), Some(Pane::Samples));
    assert!(s.update(Action::Cancel).is_empty());
    assert_eq!(s.zoomed(), None);
    assert_eq!(s.update(Action::Cancel), [Request::Cancel]);
}

#[test]
fn panes_cycle_and_zoom_follows_focus() {
    let mut s = fresh();
    s.update(Action::NextPane);
    assert_eq!(s.focus(), Pane::Images);
    s.update(Action::NextPane);
    assert_eq!((s.focus(), s.tab()), (Pane::Training, Pane::Training));
    s.update(Action::NextPane);
    assert_eq!((s.focus(), s.tab()), (Pane::Calibration, Pane::Calibration));
    s.update(Action::ToggleZoom);
    assert_eq!(s.zoomed(), Some(Pane::Calibration));
    s.update(Action::NextPane);
    assert_eq!(s.zoomed(), Some(Pane::Agreement));
    s.update(Action::NextPane);
    assert_eq!(s.focus(), Pane::Samples);
    s.update(Action::PrevPane);
    assert_eq!(s.focus(), Pane::Agreement);
    s.update(Action::ToggleZoom);
    assert_eq!(s.zoomed(), None);
}

#[test]
fn events_update_training_and_job() {
    let mut s = fresh();
    for ev in training_events() {
        s.apply_event(ev);
    }
    let t = s.training();
    assert_eq!(t.history.len(), 3);
    assert_eq!((t.epoch, t.batch, t.batches), (4, 4, 8));
    // 2 epochs left minus half of the current one, 12 s each.
    assert!((t.eta().unwrap() - 18.0).abs() < 1e-9, "{:?}", t.eta());
    assert!(matches!(
        s.job(),
        JobStatus::Running {
            kind: JobKind::Train,
            ..
        }
    ));
    s.apply_event(Event::Progress {
        job: 1,
        stage: "epoch 4".into(),
        done: 4,
        total: 8,
        eta_seconds: Some(30.0),
    });
    assert_eq!(s.training().eta(), Some(30.0));
    for ev in evaluation_events() {
        s.apply_event(ev);
    }
    assert_eq!(s.job(), &JobStatus::Done("trained lite0-run1".into()));
    let cal = s.calibration().unwrap();
    assert_eq!(cal.before.ece, Some(0.121));
    assert_eq!(cal.after.bins.len(), 5);
    assert_eq!(cal.after.bins[2].accuracy, None);
    s.apply_event(Event::Failed {
        job: 5,
        error: "out of memory".into(),
    });
    assert_eq!(s.job(), &JobStatus::Failed("out of memory".into()));
}

#[test]
fn predictions_merge_with_known_samples() {
    let mut s = fresh();
    let mut rows = predictions();
    rows.push(melxai::progress::SamplePrediction {
        id: "naevus/new.jpg".into(),
        label: 0,
        predicted: 0,
        probability: 0.1,
        probability_uncalibrated: 0.1,
        split: "test".into(),
        uncertainty: None,
        decision: None,
        conformal_set: None,
    });
    s.apply_event(Event::Predictions {
        job: 1,
        model: "weights/x.safetensors".into(),
        rows,
    });
    assert_eq!(s.rows().len(), 7);
    assert!(s.rows().iter().all(|r| r.prediction.is_some()));
    assert_eq!(
        s.checkpoint(),
        Some(std::path::Path::new("weights/x.safetensors"))
    );
}

#[test]
fn matrices_validate() {
    let mut s = fresh();
    assert!(!s.set_matrix("ssim", vec!["a".into()], vec![vec![1.0, 2.0]]));
    assert!(!s.set_matrix("psnr", vec!["a".into()], vec![vec![1.0]]));
    assert!(s.set_matrix("Pearson", vec!["a".into()], vec![vec![1.0]]));
    assert!(
        s.sample_matrix("melanoma/m01.jpg").is_none(),
        "shown metric is SSIM"
    );
    s.update(Action::CycleMetric);
    assert!(s.sample_matrix("melanoma/m01.jpg").is_some());
}

#[test]
fn triage_round_trip_toml_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = fresh();
    s.update(Action::Mark(TriageMark::Flag));
    s.update(Action::MoveDown);
    s.update(Action::Mark(TriageMark::Exclude));
    s.update(Action::EditNote);
    for c in "label \"wrong\"?".chars() {
        s.update(Action::Input(c));
    }
    s.update(Action::Submit);
    for name in ["reports/triage.toml", "reports/triage.json"] {
        let path = dir.path().join(name);
        assert!(
            triage::load(&path).unwrap().is_empty(),
            "missing file = empty"
        );
        triage::save(&path, s.triage()).unwrap();
        let back = triage::load(&path).unwrap();
        assert_eq!(&back, s.triage());
        assert_eq!(triage::excluded_ids(&back), ["melanoma/m02.jpg"]);
        // No temporary file left behind.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            names.iter().all(|n| !n.to_string_lossy().contains(".tmp")),
            "{names:?}"
        );
    }
    let text = std::fs::read_to_string(dir.path().join("reports/triage.toml")).unwrap();
    assert!(text.contains("[samples.\"melanoma/m01.jpg\"]"), "{text}");
    assert!(text.contains("mark = \"flag\""), "{text}");
    std::fs::write(dir.path().join("bad.toml"), "samples = 3").unwrap();
    assert!(triage::load(&dir.path().join("bad.toml")).is_err());
}

#[test]
fn results_of_an_ensemble_keep_its_manifest_as_the_checkpoint() {
    let mut s = fresh();
    s.set_weights_dir(PathBuf::from("weights"));
    let manifest = PathBuf::from("weights/e-cv.ensemble.toml");
    s.set_checkpoint(manifest.clone());
    assert_eq!(s.model(), Some("e-cv"));
    // Predictions name the model, not the file: `r` and `e` must still use
    // the manifest, not a `weights/e-cv` checkpoint that does not exist.
    s.apply_event(Event::Predictions {
        job: 1,
        model: "e-cv".into(),
        rows: Vec::new(),
    });
    assert_eq!(s.checkpoint(), Some(manifest.as_path()));
    assert_eq!(
        s.update(Action::Evaluate),
        [
            Request::Evaluate {
                checkpoint: manifest.clone()
            },
            Request::Calibrate {
                checkpoint: manifest
            }
        ]
    );
    // Another model's results move to it.
    s.apply_event(Event::Finished {
        job: 1,
        summary: String::new(),
    });
    s.apply_event(Event::Predictions {
        job: 2,
        model: "lite0-new".into(),
        rows: Vec::new(),
    });
    assert_eq!(
        s.checkpoint(),
        Some(PathBuf::from("weights/lite0-new").as_path())
    );
}
