//! The calibration pane's other views (`b`): the KxK confusion of a
//! K-class model's held-out predictions and the results by subgroup of the
//! data set's attribute columns.

mod tui_support;

use melxai::progress::{Event, SamplePrediction};
use melxai::tui::keys::Action;
use melxai::tui::state::CalibrationView;
use melxai::tui::AppState;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use tui_support::text;

fn pred(id: &str, label: usize, predicted: usize, p_mel: f64, split: &str) -> SamplePrediction {
    SamplePrediction {
        id: id.into(),
        label,
        predicted,
        probability: p_mel,
        probability_uncalibrated: p_mel,
        split: split.into(),
        uncertainty: None,
        decision: None,
        conformal_set: None,
    }
}

/// Three classes (bcc, melanoma, nv); melanoma is class 1. Six held-out
/// predictions and one training image (left out of every view).
fn three_classes() -> AppState {
    let classes = vec!["bcc".to_string(), "melanoma".to_string(), "nv".to_string()];
    let rows = vec![
        pred("b1", 0, 0, 0.10, "test"),
        pred("b2", 0, 2, 0.20, "test"),
        pred("m1", 1, 1, 0.90, "test"),
        pred("m2", 1, 1, 0.80, "test"),
        pred("n1", 2, 2, 0.05, "test"),
        pred("n2", 2, 1, 0.60, "test"),
        pred("t1", 2, 0, 0.01, "train"),
    ];
    let samples = rows.iter().map(|r| (r.id.clone(), r.label)).collect();
    let mut s = AppState::new(samples, classes);
    let sex = |id: &str| {
        let v = if id.ends_with('1') { "female" } else { "male" };
        (id.to_string(), vec![("sex".to_string(), v.to_string())])
    };
    s.set_attributes(
        vec!["sex".into()],
        ["b1", "b2", "m1", "m2", "n1", "n2", "t1"]
            .map(sex)
            .into_iter()
            .collect(),
    );
    s.apply_event(Event::Predictions {
        job: 1,
        model: "m".into(),
        rows,
    });
    s
}

fn rendered(s: &AppState) -> String {
    let area = Rect::new(0, 0, 90, 14);
    let mut buf = Buffer::empty(area);
    melxai::tui::panes::calibration::render(s, area, &mut buf);
    text(&buf)
}

#[test]
fn b_cycles_the_calibration_pane_through_every_class_and_subgroups() {
    let mut s = three_classes();
    assert_eq!(s.calibration_view(), CalibrationView::Calibration);
    s.update(Action::CycleCalibrationView);
    assert_eq!(s.calibration_view(), CalibrationView::Classes);
    let shown = rendered(&s);
    assert!(shown.contains("Every class: 6 held-out images"), "{shown}");
    let cells = |name: &str| -> Vec<String> {
        let l = shown
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap();
        l.split_whitespace().map(String::from).collect()
    };
    // Actual bcc: one right, one taken for nv; recall 0.50, precision 1.00.
    let bcc = cells("bcc");
    assert_eq!(bcc[1..], ["1", "0", "1", "0.50", "1.00"], "{shown}");
    let mel = cells("melanoma");
    assert_eq!(mel[1..], ["0", "2", "0", "1.00", "0.67"], "{shown}");
    // Balanced accuracy = mean recall (0.5 + 1 + 0.5) / 3.
    assert!(shown.contains("balanced accuracy 0.667"), "{shown}");

    s.update(Action::CycleCalibrationView);
    assert_eq!(s.calibration_view(), CalibrationView::Subgroups);
    let shown = rendered(&s);
    assert!(shown.contains("By subgroup: 6 held-out images"), "{shown}");
    // female: b1, m1, n1 (one melanoma), male: b2, m2, n2; all small.
    assert!(shown.contains("female †"), "{shown}");
    let male = shown
        .lines()
        .find(|l| l.contains("male †") && !l.contains("female"))
        .unwrap();
    assert!(male.contains("3 (1)"), "{shown}");

    s.update(Action::CycleCalibrationView);
    assert_eq!(s.calibration_view(), CalibrationView::Calibration);
}

#[test]
fn without_attribute_columns_the_subgroup_view_says_how_to_get_them() {
    let mut s = three_classes();
    s.set_attributes(Vec::new(), Default::default());
    s.update(Action::CycleCalibrationView);
    s.update(Action::CycleCalibrationView);
    let shown = rendered(&s);
    assert!(shown.contains("[data] attribute_columns"), "{shown}");
}
