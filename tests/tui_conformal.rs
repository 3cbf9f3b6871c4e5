//! Conformal prediction sets in the TUI: the "CP" column of the sample list,
//! the "set of two" filter and the set on the selected image's line; the
//! decision curve in the calibration pane.

mod tui_support;

use melxai::progress::Event;
use melxai::tui::keys::Action;
use melxai::tui::state::Filter;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use tui_support::*;

/// The shared predictions with sets: m02 and n02 (the uncertain ones) get
/// both classes, n01 the empty set, the rest one class.
fn with_sets() -> melxai::tui::AppState {
    let mut s = fresh();
    let sets: [&[usize]; 6] = [&[1], &[0, 1], &[1], &[], &[0, 1], &[0]];
    let mut rows = predictions();
    for (r, set) in rows.iter_mut().zip(sets) {
        r.conformal_set = Some(set.to_vec());
    }
    s.apply_event(Event::Predictions {
        job: 1,
        model: "weights/e.ensemble.toml".into(),
        rows,
    });
    s
}

#[test]
fn set_of_two_filter_shows_the_ambiguous_cases() {
    let mut s = with_sets();
    while s.filter() != Filter::SetOfTwo {
        s.update(Action::CycleFilter);
    }
    assert_eq!(s.filter().label(), "set of two");
    let ids: Vec<String> = s
        .visible()
        .into_iter()
        .map(|i| s.rows()[i].id.clone())
        .collect();
    assert_eq!(ids, ["melanoma/m02.jpg", "naevus/n02.jpg"]);
}

#[test]
fn set_column_and_image_line_show_each_set() {
    let s = with_sets();
    let area = Rect::new(0, 0, 60, 8);
    let mut buf = Buffer::empty(area);
    melxai::tui::panes::samples::render(&s, area, &mut buf);
    let shown = text(&buf);
    let header = shown.lines().next().unwrap();
    assert!(header.contains("CP"), "{shown}");
    let line = |id: &str| {
        let file = id.split('/').nth(1).unwrap();
        shown
            .lines()
            .find(|l| l.contains(file))
            .unwrap()
            .to_string()
    };
    assert!(line("melanoma/m01.jpg").contains("melan"), "{shown}");
    assert!(line("melanoma/m02.jpg").contains("both"), "{shown}");
    assert!(line("naevus/n01.jpg").contains('∅'), "{shown}");
    assert!(line("naevus/n03.jpg").contains("naevu"), "{shown}");

    // Without sets the column is not drawn.
    let mut plain = fresh();
    plain.apply_event(Event::Predictions {
        job: 1,
        model: "m".into(),
        rows: predictions(),
    });
    let mut buf = Buffer::empty(area);
    melxai::tui::panes::samples::render(&plain, area, &mut buf);
    assert!(!text(&buf).lines().next().unwrap().contains("CP"));

    // The selected image's line names the set's classes.
    let mut s = with_sets();
    while s.selected_id() != Some("melanoma/m02.jpg") {
        s.update(Action::MoveDown);
    }
    let area = Rect::new(0, 0, 160, 6);
    let mut buf = Buffer::empty(area);
    let mut regions = Vec::new();
    melxai::tui::panes::images::render(&s, area, &mut buf, &mut regions);
    let shown = text(&buf);
    assert!(shown.contains("set {naevus, melanoma}"), "{shown}");
}

#[test]
fn calibration_pane_draws_the_decision_curve_beside_risk_coverage() {
    let s = full();
    let dc = melxai::tui::panes::calibration::predicted_decision_curve(&s).unwrap();
    // p = .93 .41 .77 (melanoma) and .08 .62 .21 (naevus); at t = 0.2 the
    // five at or above it are referred: TP 3, FP 2.
    let at = |t: f64| {
        dc.curve
            .points
            .iter()
            .find(|p| (p.threshold - t).abs() < 1e-9)
            .unwrap()
            .clone()
    };
    assert!((at(0.2).model - (3.0 - 2.0 * 0.25) / 6.0).abs() < 1e-12);
    assert!((at(0.2).treat_all - (0.5 - 0.5 * 0.25)).abs() < 1e-12);
    assert_eq!(dc.curve.n, 6);
    // Side by side when wide, stacked when tall, left out when neither.
    for (w, h) in [(140, 24), (100, 34)] {
        let area = Rect::new(0, 0, w, h);
        let mut buf = Buffer::empty(area);
        melxai::tui::panes::calibration::render(&s, area, &mut buf);
        let shown = text(&buf);
        assert!(shown.contains("decision curve · NB at 20 %"), "{shown}");
        assert!(shown.contains("risk–coverage · AURC"), "{shown}");
    }
    let area = Rect::new(0, 0, 100, 24);
    let mut buf = Buffer::empty(area);
    melxai::tui::panes::calibration::render(&s, area, &mut buf);
    assert!(!text(&buf).contains("decision curve"));
}

#[test]
fn a_fold_ensembles_out_of_fold_curve_comes_with_its_calibration() {
    use melxai::evaluate::decision_curve::{decision_curve, default_thresholds};
    // Every row a training image (a fold ensemble): no curve from the list.
    let mut s = fresh();
    let rows = predictions()
        .into_iter()
        .map(|mut p| {
            p.split = "train".into();
            p
        })
        .collect();
    s.apply_event(Event::Predictions {
        job: 1,
        model: "weights/e.ensemble.toml".into(),
        rows,
    });
    assert!(melxai::tui::panes::calibration::predicted_decision_curve(&s).is_none());
    // The calibration reports its out-of-fold curve and the operating point.
    let curve = decision_curve(
        &[0.9, 0.8, 0.3, 0.2, 0.1, 0.6],
        &[1, 1, 1, 0, 0, 0],
        &default_thresholds(),
        None,
    )
    .unwrap();
    let mut after = serde_json::json!({"ece": 0.05, "bins": []});
    after["decision_curve"] = serde_json::to_value(&curve).unwrap();
    after["operating_threshold"] = 0.25.into();
    s.apply_event(Event::Calibration {
        job: 2,
        model: "e".into(),
        temperature: 1.2,
        before: serde_json::json!({"ece": 0.1, "bins": []}),
        after,
    });
    let cal = s.calibration().unwrap();
    assert_eq!(cal.after.decision_curve.as_ref(), Some(&curve));
    assert_eq!(cal.after.operating_threshold, Some(0.25));
    let area = Rect::new(0, 0, 120, 30);
    let mut buf = Buffer::empty(area);
    melxai::tui::panes::calibration::render(&s, area, &mut buf);
    let shown = text(&buf);
    assert!(shown.contains("decision curve · NB at 20 %"), "{shown}");
    assert!(!shown.contains("risk–coverage"), "{shown}");
}
