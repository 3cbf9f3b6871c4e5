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
    s.update(Action::CycleFilter);
    s.update(Action::CycleFilter);
    s.update(Action::CycleFilter);
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
