//! The samples list with an ensemble's uncertainty: the entropy column, the
//! "uncertain" filter and the sort by uncertainty; the refer / likely benign
//! verdict on the image line.

mod tui_support;

use melxai::progress::Event;
use melxai::tui::keys::Action;
use melxai::tui::state::{Filter, SortKey};
use melxai::verdict::{Decision, Uncertainty};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use tui_support::*;

fn unc(members: usize, h: f64) -> Option<Uncertainty> {
    Some(Uncertainty {
        members,
        spread: 0.1,
        predictive_entropy: h,
        expected_entropy: h / 2.0,
        mutual_information: h / 2.0,
    })
}

/// The shared predictions with ensemble uncertainty: m03 (p 0.77, outside
/// the 0.15 band) is uncertain only by its entropy; n01 has none recorded.
fn ensemble_state() -> melxai::tui::AppState {
    let mut s = fresh();
    let entropies = [0.20, 0.66, 0.58, f64::NAN, 0.40, 0.30];
    let mut rows = predictions();
    for (r, h) in rows.iter_mut().zip(entropies) {
        r.uncertainty = if h.is_nan() { None } else { unc(5, h) };
        r.decision = Some(if r.probability >= 0.3 {
            Decision::Refer
        } else {
            Decision::LikelyBenign
        });
    }
    s.apply_event(Event::Predictions {
        job: 1,
        model: "weights/e.ensemble.toml".into(),
        rows,
    });
    s
}

fn visible_ids(s: &melxai::tui::AppState) -> Vec<String> {
    s.visible()
        .into_iter()
        .map(|i| s.rows()[i].id.clone())
        .collect()
}

#[test]
fn uncertain_filter_takes_in_high_entropy_ensemble_rows() {
    let mut s = ensemble_state();
    while s.filter() != Filter::Uncertain {
        s.update(Action::CycleFilter);
    }
    assert_eq!(
        visible_ids(&s),
        ["melanoma/m02.jpg", "melanoma/m03.jpg", "naevus/n02.jpg"]
    );
    // One model's entropy is a function of p: the band alone decides.
    let mut single = fresh();
    let mut rows = predictions();
    for r in &mut rows {
        r.uncertainty = unc(1, 0.6);
    }
    single.apply_event(Event::Predictions {
        job: 1,
        model: "weights/x.safetensors".into(),
        rows,
    });
    while single.filter() != Filter::Uncertain {
        single.update(Action::CycleFilter);
    }
    assert_eq!(visible_ids(&single), ["melanoma/m02.jpg", "naevus/n02.jpg"]);
}

#[test]
fn sort_by_uncertainty_puts_the_least_certain_first() {
    let mut s = ensemble_state();
    while s.sort() != SortKey::Uncertainty {
        s.update(Action::CycleSort);
    }
    assert_eq!(
        visible_ids(&s),
        [
            "melanoma/m02.jpg",
            "melanoma/m03.jpg",
            "naevus/n02.jpg",
            "naevus/n03.jpg",
            "melanoma/m01.jpg",
            "naevus/n01.jpg"
        ]
    );
    s.update(Action::CycleSort);
    assert_eq!(s.sort(), SortKey::Name);
}

#[test]
fn entropy_column_and_referral_are_drawn_for_an_ensemble() {
    let s = ensemble_state();
    let area = Rect::new(0, 0, 48, 8);
    let mut buf = Buffer::empty(area);
    melxai::tui::panes::samples::render(&s, area, &mut buf);
    let shown = text(&buf);
    let header = shown.lines().next().unwrap();
    assert!(header.trim_end().ends_with('H'), "{shown}");
    assert!(shown.contains("0.66") && shown.contains("—"), "{shown}");
    // Without ensemble uncertainty there is no column.
    let mut plain = fresh();
    plain.apply_event(Event::Predictions {
        job: 1,
        model: "weights/x.safetensors".into(),
        rows: predictions(),
    });
    let mut buf = Buffer::empty(area);
    melxai::tui::panes::samples::render(&plain, area, &mut buf);
    assert!(!text(&buf).lines().next().unwrap().trim_end().ends_with('H'));
    // The image line of the selected sample says what the operating point says.
    let area = Rect::new(0, 0, 140, 6);
    let mut buf = Buffer::empty(area);
    let mut regions = Vec::new();
    melxai::tui::panes::images::render(&s, area, &mut buf, &mut regions);
    let shown = text(&buf);
    assert!(
        shown.contains("refer") && shown.contains("MI 0."),
        "{shown}"
    );
}
