//! The agreement pane's scorecard: the selected image's scores per method
//! beside its agreement matrix, the best method per score highlighted.

mod tui_support;

use melxai::progress::Event;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use tui_support::*;

#[test]
fn selected_image_scores_sit_beside_its_agreement() {
    let mut s = full();
    let id = s.selected_id().unwrap().to_string();
    let scores = |gap: f64, rl: f64| {
        vec![
            ("road_gap".to_string(), gap),
            ("faithfulness_correlation".to_string(), 0.2),
            ("random_logit".to_string(), rl),
        ]
    };
    s.apply_event(Event::Scores {
        job: 9,
        sample_id: id.clone(),
        methods: vec![
            ("gradcam".into(), scores(0.335, 0.031)),
            ("ig".into(), scores(-0.010, 0.671)),
        ],
    });
    assert_eq!(s.scores_of(&id).unwrap().len(), 2);
    let area = Rect::new(0, 0, 130, 12);
    let mut buf = Buffer::empty(area);
    melxai::tui::panes::agreement::render(&s, area, &mut buf);
    let shown = text(&buf);
    assert!(shown.contains(&format!("scores · {id}")), "{shown}");
    let row = shown.lines().find(|l| l.contains("ROAD gap ↑")).unwrap();
    assert!(row.contains("0.335") && row.contains("-0.010"), "{row}");
    assert!(shown.contains("rand. logit ↓"), "{shown}");
    // The agreement matrix is still there on the left.
    assert!(shown.contains("SSIM"), "{shown}");
    // Another image without scores: the agreement view alone.
    let mut other = full();
    other.update(melxai::tui::keys::Action::MoveDown);
    let mut buf = Buffer::empty(area);
    melxai::tui::panes::agreement::render(&other, area, &mut buf);
    assert!(!text(&buf).contains("scores ·"));
}
