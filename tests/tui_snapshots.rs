//! Snapshots of every pane rendered through `TestBackend` from scripted
//! engine events, including the empty states and a too-small terminal.

mod tui_support;

use melxai::tui::keys::Action;
use melxai::tui::screenshot::{buffer_to_text, render_frame, render_with_test_backend};
use melxai::tui::{AppState, KeyMap, Pane};
use tui_support::*;

fn screen(state: &AppState, w: u16, h: u16) -> String {
    buffer_to_text(&render_with_test_backend(state, w, h).unwrap())
}

fn pane(state: &AppState, p: Pane, w: u16, h: u16) -> String {
    buffer_to_text(&render_frame(state, &KeyMap::default(), Some(p), w, h).buffer)
}

#[test]
fn fresh_start_empty_states() {
    let s = fresh();
    insta::assert_snapshot!("fresh_full_screen", screen(&s, 100, 30));
    let text = pane(&s, Pane::Training, 70, 12);
    assert!(text.contains("No checkpoint yet — press t to train"));
    insta::assert_snapshot!("fresh_training", text);
    insta::assert_snapshot!("fresh_calibration", pane(&s, Pane::Calibration, 70, 12));
}

#[test]
fn no_explanations_yet() {
    let mut s = fresh();
    for ev in training_events().into_iter().chain(evaluation_events()) {
        s.apply_event(ev);
    }
    let text = pane(&s, Pane::Images, 80, 14);
    assert!(text.contains("No explanations yet — press e"), "{text}");
    insta::assert_snapshot!("no_explanations_images", text);
    let text = pane(&s, Pane::Agreement, 80, 10);
    assert!(text.contains("No explanations yet — press e"), "{text}");
}

#[test]
fn training_in_progress() {
    let mut s = fresh();
    for ev in training_events() {
        s.apply_event(ev);
    }
    insta::assert_snapshot!("training_pane", pane(&s, Pane::Training, 90, 20));
    insta::assert_snapshot!("training_full_screen", screen(&s, 100, 30));
}

#[test]
fn everything_loaded() {
    let s = full();
    insta::assert_snapshot!("full_screen", screen(&s, 120, 36));
    insta::assert_snapshot!("samples_pane", pane(&s, Pane::Samples, 56, 12));
    insta::assert_snapshot!("images_pane", pane(&s, Pane::Images, 96, 16));
    insta::assert_snapshot!("calibration_pane", pane(&s, Pane::Calibration, 90, 16));
    insta::assert_snapshot!("agreement_pane", pane(&s, Pane::Agreement, 90, 10));
}

#[test]
fn filter_search_marks_and_help() {
    let mut s = full();
    s.update(Action::Mark(melxai::tui::TriageMark::Flag));
    s.update(Action::CycleFilter);
    s.update(Action::Mark(melxai::tui::TriageMark::Exclude));
    insta::assert_snapshot!("misclassified_filter", pane(&s, Pane::Samples, 56, 8));
    // Through uncertain, low agreement and set of two back to all.
    for _ in 0..4 {
        s.update(Action::CycleFilter);
    }
    assert_eq!(s.filter(), melxai::tui::state::Filter::All);
    s.update(Action::StartSearch);
    for c in "n0".chars() {
        s.update(Action::Input(c));
    }
    insta::assert_snapshot!("search_typing", screen(&s, 90, 20));
    s.update(Action::Submit);
    s.update(Action::ToggleHelp);
    insta::assert_snapshot!("help_overlay", screen(&s, 90, 32));
}

#[test]
fn zoomed_pane() {
    let mut s = full();
    s.update(Action::NextPane);
    s.update(Action::NextPane);
    s.update(Action::NextPane);
    s.update(Action::ToggleZoom);
    insta::assert_snapshot!("zoomed_calibration", screen(&s, 80, 20));
}

#[test]
fn tiny_terminal() {
    let s = full();
    let text = screen(&s, 50, 12);
    assert!(text.contains("window too small"));
    assert!(text.contains("need 60x16"));
    insta::assert_snapshot!("tiny_terminal", text);
    // The minimum itself renders the layout.
    assert!(!screen(&s, 60, 16).contains("window too small"));
}

#[test]
fn heatmap_cells_use_viridis() {
    use melxai::explain::colormap::VIRIDIS;
    use melxai::tui::state::ImageKind;
    use ratatui::style::Color;
    let s = full();
    let frame = render_frame(&s, &KeyMap::default(), Some(Pane::Images), 96, 16);
    let region = frame
        .regions
        .iter()
        .find(|r| r.key.kind == ImageKind::Heatmap("gradcam".into()))
        .expect("gradcam drawn");
    let mut brightest = (0usize, (0u16, 0u16));
    for y in region.rect.top()..region.rect.bottom() {
        for x in region.rect.left()..region.rect.right() {
            let cell = frame.buffer.cell((x, y)).unwrap();
            assert_eq!(cell.symbol(), "▀");
            for c in [cell.fg, cell.bg] {
                let Color::Rgb(r, g, b) = c else {
                    panic!("{c:?}")
                };
                let i = VIRIDIS
                    .iter()
                    .position(|v| *v == [r, g, b])
                    .expect("a viridis colour");
                if i > brightest.0 {
                    brightest = (i, (x - region.rect.x, y - region.rect.y));
                }
            }
        }
    }
    // The blob peaks at (5, 5) of a 12x12 map: left-of-centre, upper half.
    let (w, h) = (region.rect.width, region.rect.height);
    assert!(brightest.0 > 200, "{brightest:?}");
    let (bx, by) = brightest.1;
    assert!(bx < w / 2 + 2 && by < h / 2 + 1, "{brightest:?} in {w}x{h}");
}

/// The frame with its colours: one line per run of same-styled cells, so a
/// change of any colour shows in the snapshot (the text snapshots above do
/// not see colours).
fn styled(state: &AppState, w: u16, h: u16) -> String {
    use std::fmt::Write;
    let buf = render_with_test_backend(state, w, h).unwrap();
    let mut out = buffer_to_text(&buf);
    for y in 0..h {
        let mut x = 0;
        while x < w {
            let style = buf.cell((x, y)).unwrap().style();
            let start = x;
            let mut text = String::new();
            while x < w && buf.cell((x, y)).unwrap().style() == style {
                text.push_str(buf.cell((x, y)).unwrap().symbol());
                x += 1;
            }
            // Image cells carry per-pixel colours; summarise them.
            if text.chars().all(|c| c == '▀') {
                text = format!("▀×{}", x - start);
            }
            if style != ratatui::style::Style::default() || !text.trim().is_empty() {
                let _ = writeln!(
                    out,
                    "{y:>2}:{start:<3} fg={:?} bg={:?} mod={:?} {:?}",
                    style.fg,
                    style.bg,
                    style.add_modifier,
                    text.trim_end()
                );
            }
        }
    }
    out
}

/// Every cell outside the images must be readable on `page`: a colour from
/// the fixed palette with WCAG contrast ≥ 3 against its background (≥ 4.5
/// for letters), or the terminal's default.
fn assert_readable(state: &AppState, page: [u8; 3]) {
    use melxai::tui::theme::{contrast, rgb_of};
    let frame = render_frame(state, &KeyMap::default(), None, 120, 36);
    for y in 0..36u16 {
        for x in 0..120u16 {
            if frame.regions.iter().any(|r| r.rect.contains((x, y).into())) {
                continue;
            }
            let cell = frame.buffer.cell((x, y)).unwrap();
            let sym = cell.symbol();
            // Blank cells, and half-block pixels (still under a help overlay).
            if sym.trim().is_empty() || sym == "▀" {
                continue;
            }
            let Some(fg) = rgb_of(cell.fg) else {
                assert_eq!(cell.fg, ratatui::style::Color::Reset, "({x},{y}) {sym:?}");
                continue;
            };
            let bg = rgb_of(cell.bg).unwrap_or(page);
            let letter = sym.chars().any(char::is_alphanumeric);
            let need = if letter { 4.5 } else { 3.0 };
            let c = contrast(fg, bg);
            assert!(
                c >= need,
                "({x},{y}) {sym:?} {:?} on {:?}: {c:.2}",
                cell.fg,
                cell.bg
            );
        }
    }
}

#[test]
fn dark_and_light_themes() {
    use melxai::tui::Theme;
    let mut s = full();
    s.update(Action::NextPane);
    s.update(Action::NextPane);
    s.update(Action::NextPane); // Calibration tab shown with the reliability bars.
    s.set_theme(Theme::dark());
    insta::assert_snapshot!("dark_theme", styled(&s, 100, 30));
    assert_readable(&s, [0, 0, 0]);
    s.set_theme(Theme::light());
    insta::assert_snapshot!("light_theme", styled(&s, 100, 30));
    assert_readable(&s, [255, 255, 255]);
    // Unknown background: no fixed colour on text at all, only modifiers.
    s.set_theme(Theme::terminal_default());
    insta::assert_snapshot!("terminal_default_theme", styled(&s, 100, 30));
}

#[test]
fn light_theme_help_is_readable() {
    let mut s = full();
    s.set_theme(melxai::tui::Theme::light());
    s.update(Action::ToggleHelp);
    assert_readable(&s, [255, 255, 255]);
}

/// Predictions from a 5-fold run: every image predicted out of fold, with
/// the training split of the reference model on some.
fn with_splits() -> AppState {
    use melxai::progress::{Event, SamplePrediction};
    let mut s = full();
    let rows = predictions()
        .into_iter()
        .enumerate()
        .map(|(i, p)| SamplePrediction {
            split: [
                "train",
                "val",
                "test",
                "out-of-fold",
                "out-of-fold",
                "out-of-fold",
            ][i]
                .into(),
            ..p
        })
        .collect::<Vec<_>>();
    s.apply_event(Event::Predictions {
        job: 9,
        model: "lite0-run1".into(),
        rows,
    });
    s
}

#[test]
fn split_column_and_filter() {
    let mut s = with_splits();
    let text = pane(&s, Pane::Samples, 56, 10);
    assert!(text.contains(" set"), "{text}");
    assert!(
        text.contains("trn") && text.contains("oof") && text.contains("test"),
        "{text}"
    );
    insta::assert_snapshot!("samples_with_splits", text);
    let mut seen = Vec::new();
    for _ in 0..5 {
        s.update(Action::CycleSplit);
        seen.push((s.split_filter().map(str::to_string), s.visible().len()));
    }
    assert_eq!(
        seen,
        vec![
            (Some("train".into()), 1),
            (Some("val".into()), 1),
            (Some("test".into()), 1),
            (Some("out-of-fold".into()), 3),
            (None, 6),
        ]
    );
    s.update(Action::CycleSplit);
    assert!(pane(&s, Pane::Samples, 56, 10).contains("· train"));
}

#[test]
fn reliability_bars_use_out_of_fold_predictions() {
    let s = with_splits();
    let text = pane(&s, Pane::Calibration, 100, 12);
    assert!(text.contains("reliability · out-of-fold, n=3"), "{text}");
    insta::assert_snapshot!("reliability_out_of_fold", text);
    // Without out-of-fold rows: the calibration's held-out bins, counts kept.
    let text = pane(&full(), Pane::Calibration, 100, 12);
    assert!(text.contains("held-out, after scaling, n=48"), "{text}");
    insta::assert_snapshot!("reliability_held_out", text);
}

#[test]
fn overlay_blends_heatmap_over_photo() {
    use melxai::tui::state::ImageKind;
    use ratatui::style::Color;
    let mut s = full();
    s.update(Action::ToggleOverlay);
    assert_eq!(s.overlay(), Some(50));
    let frame = render_frame(&s, &KeyMap::default(), Some(Pane::Images), 96, 16);
    let text = buffer_to_text(&frame.buffer);
    assert!(text.contains("GradCAM on photo 50%"), "{text}");
    let overlay = frame
        .regions
        .iter()
        .find(|r| {
            r.key.kind
                == ImageKind::Overlay {
                    method: "gradcam".into(),
                    opacity: 50,
                }
        })
        .expect("overlay drawn");
    let photo = frame
        .regions
        .iter()
        .find(|r| r.key.kind == ImageKind::Photo)
        .expect("photo drawn");
    // Same size as the photo; its corner (skin, far from the blob) is the
    // mean of the skin colour and the map's low viridis end.
    let aspect = |r: ratatui::layout::Rect| r.width as f32 / (2.0 * r.height as f32);
    assert!(
        (aspect(overlay.rect) - aspect(photo.rect)).abs() < 0.25,
        "{overlay:?} {photo:?}"
    );
    let corner = frame
        .buffer
        .cell((overlay.rect.x, overlay.rect.y))
        .unwrap()
        .fg;
    let Color::Rgb(r, g, b) = corner else {
        panic!("{corner:?}")
    };
    let low = melxai::explain::colormap::VIRIDIS[0];
    let mix = |p: u8, v: u8| ((p as f32 + v as f32) / 2.0).round() as i32;
    assert!((r as i32 - mix(230, low[0])).abs() <= 6, "{corner:?}");
    assert!((g as i32 - mix(190, low[1])).abs() <= 6, "{corner:?}");
    assert!((b as i32 - mix(160, low[2])).abs() <= 6, "{corner:?}");
    s.update(Action::OverlayStronger);
    s.update(Action::OverlayStronger);
    assert_eq!(s.overlay(), Some(70));
    for _ in 0..10 {
        s.update(Action::OverlayWeaker);
    }
    assert_eq!(s.overlay(), Some(10));
    s.update(Action::ToggleOverlay);
    assert_eq!(s.overlay(), None);
    let frame = render_frame(&s, &KeyMap::default(), Some(Pane::Images), 96, 16);
    assert!(frame
        .regions
        .iter()
        .any(|r| r.key.kind == ImageKind::Heatmap("gradcam".into())));
}

#[test]
fn risk_coverage_leaves_out_images_the_model_trained_on() {
    let mut s = fresh();
    for ev in evaluation_events() {
        s.apply_event(ev);
    }
    let text = pane(&s, Pane::Calibration, 100, 40);
    assert!(text.contains("risk–coverage · AURC"), "{text}");
    assert!(text.contains("n 6"), "{text}");
    // The same predictions, every image a training image (a fold ensemble's
    // members trained on nearly all): no in-sample curve.
    let rows = predictions()
        .into_iter()
        .map(|mut p| {
            p.split = "train".into();
            p
        })
        .collect();
    s.apply_event(melxai::progress::Event::Predictions {
        job: 4,
        model: "lite0-run1".into(),
        rows,
    });
    let text = pane(&s, Pane::Calibration, 100, 40);
    assert!(!text.contains("risk–coverage"), "{text}");
}

#[test]
fn header_hint_never_overlaps_long_job_text() {
    use melxai::progress::{Event, JobKind};
    let mut s = fresh();
    s.apply_event(Event::Started {
        job: 1,
        kind: JobKind::Train,
        description: format!(
            "training {} on 170 images",
            "a-very-long-model-name-".repeat(6)
        ),
    });
    // Job text too long for the line: the hint yields, the text ends in "…".
    let text = screen(&s, 100, 30);
    let header = text.lines().next().unwrap();
    assert!(
        !header.contains("? help"),
        "hint drawn over job text: {header}"
    );
    assert!(header.trim_end().ends_with('…'), "{header}");
    assert!(header.contains("Train: training a-very-long"), "{header}");
    // Short job text: both, apart.
    s.apply_event(Event::Started {
        job: 2,
        kind: JobKind::Train,
        description: "training lite0".into(),
    });
    let text = screen(&s, 100, 30);
    let header = text.lines().next().unwrap();
    assert!(header.contains("Train: training lite0"), "{header}");
    assert!(header.ends_with("? help  q quit"), "{header}");
}

#[test]
fn trained_model_becomes_the_checkpoint_without_restart() {
    use melxai::progress::Event;
    let mut s = fresh();
    assert!(screen(&s, 100, 30).contains("model: no checkpoint"));
    s.apply_event(Event::ModelWritten {
        job: 1,
        path: std::path::PathBuf::from("weights/mednode-cv.ensemble.toml"),
    });
    assert_eq!(
        s.checkpoint(),
        Some(std::path::Path::new("weights/mednode-cv.ensemble.toml"))
    );
    let text = screen(&s, 100, 30);
    assert!(text.contains("model: mednode-cv "), "{text}");
}

#[test]
fn calibration_pane_shows_the_small_sample_evidence_when_reported() {
    use melxai::progress::Event;
    use serde_json::json;
    let mut s = fresh();
    let side = |p: f64, slope: f64, intercept: f64| {
        json!({"ece": 0.05, "adaptive_ece": 0.05, "mce": 0.1, "brier": 0.16, "nll": 0.47,
            "bins": [], "spiegelhalter": {"z": 0.4, "p_value": p},
            "recalibration": {"slope": slope, "slope_se": 0.2, "intercept": intercept, "intercept_se": 0.2}})
    };
    s.apply_event(Event::Calibration {
        job: 1,
        model: "m".into(),
        temperature: 1.5,
        before: side(0.012, 0.61, 0.31),
        after: side(0.734, 0.97, -0.02),
    });
    let text = pane(&s, Pane::Calibration, 90, 16);
    for needle in [
        "p (Spiegel.)",
        "0.012",
        "0.734",
        "slope",
        "0.610",
        "0.970",
        "intercept",
        "-0.020",
    ] {
        assert!(text.contains(needle), "{needle}:\n{text}");
    }
    // The statement: before, p = 0.012 and slope 0.61 (2 SE from 1): no;
    // after, p = 0.73, slope 0.97, intercept −0.02: yes.
    let line = text
        .lines()
        .find(|l| l.contains("calibrated?"))
        .unwrap_or_else(|| panic!("{text}"));
    let (no, yes) = (line.find("no").unwrap(), line.find("yes").unwrap());
    assert!(no < yes, "{line}");
}
