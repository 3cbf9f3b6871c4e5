//! Screenshot export: text of the panes in the SVG/HTML, and each image
//! rectangle embedded as a PNG.

mod tui_support;

use melxai::tui::screenshot::{export_pane, render_frame, save_screenshot, to_svg};
use melxai::tui::state::ImageKind;
use melxai::tui::{KeyMap, Pane};
use tui_support::*;

#[test]
fn svg_has_text_runs_and_embedded_pngs() {
    let s = full();
    let frame = render_frame(&s, &KeyMap::default(), None, 120, 36);
    // The photo and three heatmaps were drawn and recorded.
    assert_eq!(frame.regions.len(), 4, "{:?}", frame.regions);
    assert!(frame.regions.iter().any(|r| r.key.kind == ImageKind::Photo));
    assert!(frame
        .regions
        .iter()
        .any(|r| r.key.kind == ImageKind::Heatmap("ig".into())));
    let svg = to_svg(&s, &frame);
    assert!(svg.starts_with("<svg"));
    assert!(
        svg.contains(">melxai</text>") || svg.contains("> melxai </text>"),
        "header text"
    );
    assert!(svg.contains("m02.jpg"));
    assert!(svg.contains("Samples 6/6"));
    assert_eq!(svg.matches("<image ").count(), 4);
    assert!(
        svg.contains("href=\"data:image/png;base64,iVBORw0KGgo"),
        "PNG magic in base64"
    );
    // The first image sits at its region's cell rectangle.
    let r = frame.regions[0].rect;
    let want = format!(
        r#"<image x="{}" y="{}""#,
        r.x as f64 * 9.0,
        r.y as f64 * 18.0
    );
    assert!(svg.contains(&want), "{want}");
    // Image cells carry no text (the half blocks are replaced by the PNG).
    assert!(!svg.contains('▀'));
}

#[test]
fn save_writes_svg_and_html_under_screens() {
    let dir = tempfile::tempdir().unwrap();
    let s = full();
    let frame = render_frame(&s, &KeyMap::default(), None, 100, 30);
    let (svg, html) = save_screenshot(&s, &frame, dir.path()).unwrap();
    assert_eq!(svg.parent().unwrap(), dir.path().join("screens"));
    let name = svg.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("melxai-") && name.ends_with("Z.svg"),
        "{name}"
    );
    let html_text = std::fs::read_to_string(&html).unwrap();
    assert!(html_text.contains("<pre>"));
    assert!(html_text.contains("Calibration") || html_text.contains("Training"));
    assert!(html_text.contains("<img style=\"left:"));
    // A second one in the same second does not overwrite the first.
    let (svg2, _) = save_screenshot(&s, &frame, dir.path()).unwrap();
    assert_ne!(svg, svg2);
}

#[test]
fn export_single_pane_headless() {
    let dir = tempfile::tempdir().unwrap();
    let s = full();
    let path = dir.path().join("calibration.svg");
    export_pane(&s, Pane::Calibration, 90, 16, &path).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.contains("ECE"));
    assert!(svg.contains("T = 1.734"));
    let path = dir.path().join("images.html");
    export_pane(&s, Pane::Images, 96, 16, &path).unwrap();
    let html = std::fs::read_to_string(&path).unwrap();
    assert_eq!(html.matches("data:image/png;base64,").count(), 4);
}
