//! Calibration before and after temperature scaling: the scalar metrics
//! (ECE, adaptive ECE, MCE, Brier, NLL) and a reliability view, so one can
//! see whether the probabilities shown in the list can be taken at face value;
//! below it, when there is room, the risk–coverage curve of the held-out
//! predicted images and its AURC (how well the model's confidence ranks its own errors:
//! what error rate remains when the least certain cases are referred), and
//! beside it the decision curve of the same predictions (net benefit of
//! referring by the calibrated melanoma probability against referring
//! everyone or no one, the operating point marked).
//!
//! The reliability view is a bar per confidence bin with its sample count,
//! not a line: with a few dozen test images most of 15 bins are empty or hold
//! one image, and a line through them zig-zags between 0 and 1 while saying
//! nothing. Five bins over [0.5, 1] (a binary classifier's top-label
//! confidence is never below 0.5), counts beside each bar, and the
//! out-of-fold predictions of a cross-validation when there are any (every
//! image, each predicted by a model that never saw it) make it readable.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Cell, Chart, Dataset, GraphType, Paragraph, Row, Table, Widget,
};

use super::{empty_message, fmt3, held_out_predictions, positive_class};
use crate::evaluate::decision_curve::{decision_curve, default_thresholds, DecisionCurve};
use crate::evaluate::selective::{risk_coverage, RiskCoverage};
use crate::tui::state::{AppState, CalibrationMetrics, CalibrationView};
use crate::tui::theme::{Theme, ThemeKind};
use crate::verdict::Decision;

/// Rows the diagram area needs before the risk–coverage chart gets half.
const RISK_COVERAGE_MIN_HEIGHT: u16 = 16;

/// The risk–coverage curve of the images predicted by a model that did not
/// train on them (confidence = calibrated top-label probability), or `None`
/// without such predictions. Training images would make the curve and its
/// AURC in-sample: a fold ensemble's members trained on nearly every image,
/// and its 170 "predictions" scored AURC 0.002 against 0.044 out of fold.
fn predicted_risk_coverage(state: &AppState) -> Option<RiskCoverage> {
    let (confidence, correct): (Vec<f64>, Vec<bool>) = held_out_predictions(state)
        .into_iter()
        .map(|p| (p.probability.max(1.0 - p.probability), p.correct()))
        .unzip();
    risk_coverage(&confidence, &correct).ok()
}

/// Bins of the reliability view, equal width over [0.5, 1].
pub const RELIABILITY_BINS: usize = 5;

/// Split name of out-of-fold predictions in `SamplePrediction::split`.
pub const OUT_OF_FOLD: &str = "out-of-fold";

/// One bar of the reliability view.
#[derive(Debug, Clone, PartialEq)]
pub struct BarBin {
    pub lower: f64,
    pub upper: f64,
    pub count: u64,
    /// Fraction correct; `None` when empty.
    pub accuracy: Option<f64>,
    /// Mean top-label confidence; `None` when empty.
    pub confidence: Option<f64>,
}

/// Bin index in [0, RELIABILITY_BINS) of a confidence in [0.5, 1]; bins are
/// `[0.5, 0.6], (0.6, 0.7], …` (values below 0.5 or above 1 are clamped).
fn bin_of(confidence: f64) -> usize {
    let x = ((confidence - 0.5) * 2.0 * RELIABILITY_BINS as f64).ceil() as isize - 1;
    x.clamp(0, RELIABILITY_BINS as isize - 1) as usize
}

fn empty_bins() -> Vec<BarBin> {
    (0..RELIABILITY_BINS)
        .map(|i| BarBin {
            lower: 0.5 + 0.5 * i as f64 / RELIABILITY_BINS as f64,
            upper: 0.5 + 0.5 * (i + 1) as f64 / RELIABILITY_BINS as f64,
            count: 0,
            accuracy: None,
            confidence: None,
        })
        .collect()
}

/// Accumulates `(confidence, weight, correct weight)` per bin.
fn finish(sums: Vec<(f64, f64, f64)>) -> Vec<BarBin> {
    let mut bins = empty_bins();
    for (b, (conf, n, ok)) in bins.iter_mut().zip(sums) {
        if n > 0.0 {
            b.count = n.round() as u64;
            b.accuracy = Some(ok / n);
            b.confidence = Some(conf / n);
        }
    }
    bins
}

/// Bars from `(probability of the positive class, correct)` pairs.
pub fn bins_from_predictions(preds: &[(f64, bool)]) -> Vec<BarBin> {
    let mut sums = vec![(0.0, 0.0, 0.0); RELIABILITY_BINS];
    for &(p, correct) in preds {
        if !p.is_finite() {
            continue;
        }
        let conf = p.max(1.0 - p).clamp(0.5, 1.0);
        let s = &mut sums[bin_of(conf)];
        s.0 += conf;
        s.1 += 1.0;
        s.2 += f64::from(u8::from(correct));
    }
    finish(sums)
}

/// Bars from the calibration report's finer bins, each moved whole into the
/// bar that holds its mean confidence (counts and sums are kept exactly).
pub fn bins_from_report(m: &CalibrationMetrics) -> Vec<BarBin> {
    let mut sums = vec![(0.0, 0.0, 0.0); RELIABILITY_BINS];
    for b in &m.bins {
        let (Some(conf), Some(acc)) = (b.mean_confidence, b.accuracy) else {
            continue;
        };
        if b.count == 0 {
            continue;
        }
        let n = b.count as f64;
        let s = &mut sums[bin_of(conf)];
        s.0 += conf * n;
        s.1 += n;
        s.2 += acc * n;
    }
    finish(sums)
}

/// What the reliability view shows: out-of-fold predictions from the list
/// when there are any, else the held-out bins of the last calibration.
pub fn reliability_source(state: &AppState) -> Option<(String, Vec<BarBin>)> {
    let oof: Vec<(f64, bool)> = state
        .rows()
        .iter()
        .filter_map(|r| r.prediction.as_ref())
        .filter(|p| p.split == OUT_OF_FOLD)
        .map(|p| (p.probability, p.correct()))
        .collect();
    if !oof.is_empty() {
        return Some((
            format!("out-of-fold, n={}", oof.len()),
            bins_from_predictions(&oof),
        ));
    }
    let cal = state.calibration()?;
    let bins = bins_from_report(&cal.after);
    let n: u64 = bins.iter().map(|b| b.count).sum();
    (n > 0).then(|| (format!("held-out, after scaling, n={n}"), bins))
}

pub fn render(state: &AppState, area: Rect, buf: &mut Buffer) {
    match state.calibration_view() {
        CalibrationView::Classes => return super::breakdown::render_classes(state, area, buf),
        CalibrationView::Subgroups => return super::breakdown::render_subgroups(state, area, buf),
        CalibrationView::Calibration => {}
    }
    let theme = state.theme();
    let source = reliability_source(state);
    let Some(cal) = state.calibration() else {
        match source {
            Some((title, bins)) => render_reliability(theme, &title, &bins, area, buf),
            None => {
                let text = if state.checkpoint().is_none() {
                    "No checkpoint yet — press t to train"
                } else {
                    "No calibration yet — press r to evaluate and calibrate"
                };
                empty_message(theme, area, buf, text);
            }
        }
        return;
    };
    let [numbers, diagram] =
        Layout::horizontal([Constraint::Length(30), Constraint::Min(0)]).areas(area);
    let row = |name: &str, b: Option<f64>, a: Option<f64>| {
        let better = matches!((b, a), (Some(b), Some(a)) if a < b);
        Row::new(vec![
            Cell::from(Span::styled(name.to_string(), theme.text)),
            Cell::from(Span::styled(fmt3(b), theme.text)),
            Cell::from(Span::styled(
                fmt3(a),
                if better { theme.good } else { theme.text },
            )),
        ])
    };
    // Reference numbers: lower is not better, so no highlight.
    let plain_row = |name: &str, b: Option<f64>, a: Option<f64>| {
        Row::new(
            [name.to_string(), fmt3(b), fmt3(a)].map(|t| Cell::from(Span::styled(t, theme.text))),
        )
    };
    let (b, a) = (&cal.before, &cal.after);
    let mut rows = vec![
        row("ECE", b.ece, a.ece),
        plain_row("ECE if ideal", b.ece_if_calibrated, a.ece_if_calibrated),
        plain_row("  p (ECE)", b.ece_p_value, a.ece_p_value),
        row("adaptive ECE", b.adaptive_ece, a.adaptive_ece),
        row("MCE", b.mce, a.mce),
        row("Brier", b.brier, a.brier),
        row("NLL", b.nll, a.nll),
    ];
    // The evidence that holds at small n (reports that carry it): a test,
    // and the recalibration pair (slope 1 and intercept 0 when calibrated).
    if [a.spiegelhalter_p, a.slope, a.intercept]
        .iter()
        .any(Option::is_some)
    {
        rows.extend([
            plain_row("p (Spiegel.)", b.spiegelhalter_p, a.spiegelhalter_p),
            plain_row("slope", b.slope, a.slope),
            plain_row("intercept", b.intercept, a.intercept),
        ]);
        let says = |m: &CalibrationMetrics| match m.consistent() {
            Some(true) => Span::styled("yes", theme.good),
            Some(false) => Span::styled("no", theme.bad),
            None => Span::styled("—", theme.text),
        };
        rows.push(Row::new(vec![
            Cell::from(Span::styled("calibrated?", theme.text)),
            Cell::from(says(b)),
            Cell::from(says(a)),
        ]));
    }
    Table::new(
        rows,
        [
            Constraint::Length(12),
            Constraint::Length(7),
            Constraint::Length(7),
        ],
    )
    .header(Row::new(vec!["", "before", "after"]).style(theme.accent.add_modifier(Modifier::BOLD)))
    .block(Block::default().title(Line::styled(
        format!("T = {:.3}", cal.temperature),
        theme.text,
    )))
    .render(numbers, buf);

    let rc = predicted_risk_coverage(state);
    // The calibration's own held-out (or out-of-fold) curve first: a fold
    // ensemble's list rows are all training images.
    let dc = cal
        .after
        .decision_curve
        .clone()
        .map(|curve| PanelDecisionCurve {
            curve,
            operating_threshold: cal.after.operating_threshold,
        })
        .or_else(|| predicted_decision_curve(state));
    let diagram = if diagram.height >= RISK_COVERAGE_MIN_HEIGHT && (rc.is_some() || dc.is_some()) {
        lower_charts(theme, rc.as_ref(), dc.as_ref(), diagram, buf)
    } else {
        diagram
    };
    if let Some((title, bins)) = source {
        render_reliability(theme, &title, &bins, diagram, buf);
    }
}

/// Draws the risk–coverage and decision curves under the reliability view
/// (side by side when wide, stacked when tall, else risk–coverage alone)
/// and returns the area left for the reliability view.
fn lower_charts(
    theme: &Theme,
    rc: Option<&RiskCoverage>,
    dc: Option<&PanelDecisionCurve>,
    diagram: Rect,
    buf: &mut Buffer,
) -> Rect {
    let both = rc.is_some() && dc.is_some();
    let stacked = diagram.height >= DECISION_CURVE_STACKED_HEIGHT;
    let wide = diagram.width >= DECISION_CURVE_MIN_WIDTH;
    let share = if both && stacked && !wide { 40 } else { 55 };
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(share), Constraint::Min(0)]).areas(diagram);
    match (rc, dc) {
        (Some(rc), Some(dc)) if wide => {
            let [left, right] =
                Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                    .areas(bottom);
            risk_coverage_chart(theme, rc, left, buf);
            decision_curve_chart(theme, dc, right, buf);
        }
        (Some(rc), Some(dc)) if stacked => {
            let [upper, lower] =
                Layout::vertical([Constraint::Percentage(50), Constraint::Min(0)]).areas(bottom);
            risk_coverage_chart(theme, rc, upper, buf);
            decision_curve_chart(theme, dc, lower, buf);
        }
        (Some(rc), _) => risk_coverage_chart(theme, rc, bottom, buf),
        (None, Some(dc)) => decision_curve_chart(theme, dc, bottom, buf),
        (None, None) => {}
    }
    top
}

/// Columns the lower charts need to sit side by side, titles whole.
pub const DECISION_CURVE_MIN_WIDTH: u16 = 100;

/// Rows the diagram area needs to stack the decision curve under the
/// risk–coverage curve when they cannot sit side by side (below both, the
/// decision curve is left out).
pub const DECISION_CURVE_STACKED_HEIGHT: u16 = 30;

/// The decision curve of the non-training predictions, with the operating
/// point's threshold when the rows carry its decisions.
pub struct PanelDecisionCurve {
    pub curve: DecisionCurve,
    /// The lowest probability the operating point refers.
    pub operating_threshold: Option<f64>,
}

/// Net benefit over 1–60 % of referring by the calibrated positive-class
/// probability, on the images predicted by a model that did not train on
/// them (as the risk–coverage curve); `None` without both classes.
pub fn predicted_decision_curve(state: &AppState) -> Option<PanelDecisionCurve> {
    let preds = held_out_predictions(state);
    let positive = positive_class(&preds)?;
    let p: Vec<f64> = preds.iter().map(|r| r.probability).collect();
    let y: Vec<usize> = preds
        .iter()
        .map(|r| usize::from(r.label == positive))
        .collect();
    if !y.contains(&0) || !y.contains(&1) {
        return None;
    }
    let curve = decision_curve(&p, &y, &default_thresholds(), None).ok()?;
    let operating_threshold = preds
        .iter()
        .filter(|r| r.decision == Some(Decision::Refer))
        .map(|r| r.probability)
        .reduce(f64::min);
    Some(PanelDecisionCurve {
        curve,
        operating_threshold,
    })
}

/// Net benefit against the threshold probability: the model, refer all and
/// refer none (0); the title gives them at t = 20 % and the operating point.
fn decision_curve_chart(theme: &Theme, dc: &PanelDecisionCurve, area: Rect, buf: &mut Buffer) {
    let pts = &dc.curve.points;
    let model: Vec<(f64, f64)> = pts.iter().map(|p| (p.threshold, p.model)).collect();
    let all: Vec<(f64, f64)> = pts.iter().map(|p| (p.threshold, p.treat_all)).collect();
    let none = [(0.0, 0.0), (0.6, 0.0)];
    let top = dc.curve.prevalence.max(0.05);
    // Net benefit falls without bound as t grows; the view stops a quarter
    // of the prevalence below zero.
    let floor = -(0.05_f64.max(top * 0.25).min(0.25));
    let clip = |v: &[(f64, f64)]| -> Vec<(f64, f64)> {
        v.iter().map(|&(x, y)| (x, y.max(floor))).collect()
    };
    let (model, all) = (clip(&model), clip(&all));
    let op: Vec<(f64, f64)> = dc
        .operating_threshold
        .filter(|t| *t <= 0.6)
        .map(|t| vec![(t, floor), (t, top)])
        .unwrap_or_default();
    let at = |t: f64| pts.iter().find(|p| (p.threshold - t).abs() < 1e-9);
    let title = match at(0.2) {
        Some(p) => format!(
            "decision curve · NB at 20 %: model {} · all {} · n {}",
            fmt3(Some(p.model)),
            fmt3(Some(p.treat_all)),
            dc.curve.n
        ),
        None => format!("decision curve · n {}", dc.curve.n),
    };
    let mut sets = vec![
        line("model", &model, Style::default().fg(theme.series[0])),
        line("refer all", &all, Style::default().fg(theme.series[1])),
        line("none", &none, theme.dim),
    ];
    if !op.is_empty() {
        sets.push(line("op", &op, theme.warn));
    }
    Chart::new(sets)
        .block(Block::default().title(Line::styled(title, theme.text)))
        .x_axis(
            Axis::default()
                .bounds([0.0, 0.6])
                .labels(vec![Span::raw("0"), Span::raw("t 0.6")])
                .style(theme.dim),
        )
        .y_axis(
            Axis::default()
                .bounds([floor, top])
                .labels(vec![
                    Span::raw(format!("{floor:.2}")),
                    Span::raw(format!("{top:.2}")),
                ])
                .style(theme.dim),
        )
        .render(area, buf);
}

/// One named line of a chart.
fn line<'a>(name: &'static str, data: &'a [(f64, f64)], style: Style) -> Dataset<'a> {
    Dataset::default()
        .name(name)
        .marker(Marker::Braille)
        .graph_type(GraphType::Line)
        .style(style)
        .data(data)
}

/// Risk (error rate of the decided images) against coverage, most confident
/// decided first; the title carries the AURC and the overall error rate.
fn risk_coverage_chart(theme: &Theme, rc: &RiskCoverage, area: Rect, buf: &mut Buffer) {
    let points: Vec<(f64, f64)> = std::iter::once((0.0, rc.curve.first().map_or(0.0, |p| p.risk)))
        .chain(rc.curve.iter().map(|p| (p.coverage, p.risk)))
        .collect();
    let top = points.iter().map(|p| p.1).fold(0.1_f64, f64::max).min(1.0);
    Chart::new(vec![Dataset::default()
        .marker(Marker::Braille)
        .graph_type(GraphType::Line)
        .style(Style::default().fg(theme.series[0]))
        .data(&points)])
    .block(Block::default().title(Line::styled(
        format!(
            "risk–coverage · AURC {} (best {}) · n {}",
            fmt3(Some(rc.aurc)),
            fmt3(Some(rc.optimal_aurc)),
            rc.n
        ),
        theme.text,
    )))
    .x_axis(
        Axis::default()
            .bounds([0.0, 1.0])
            .labels(vec![Span::raw("0"), Span::raw("coverage 1")])
            .style(theme.dim),
    )
    .y_axis(
        Axis::default()
            .bounds([0.0, top])
            .labels(vec![Span::raw("0"), Span::raw(format!("{top:.2}"))])
            .style(theme.dim),
    )
    .render(area, buf);
}

/// The bars: per bin, accuracy as a filled bar, mean confidence as a tick on
/// it (a calibrated model has the tick at the bar's end), then the numbers.
pub fn render_reliability(
    theme: &Theme,
    title: &str,
    bins: &[BarBin],
    area: Rect,
    buf: &mut Buffer,
) {
    if area.width < 30 || area.height < 3 {
        return;
    }
    // "0.5–0.6 " + bar + " 0.40 / 0.55 n=123"
    const LABEL_W: u16 = 8;
    const NUMBERS_W: u16 = 19;
    let bar_w = (area.width - LABEL_W - NUMBERS_W).clamp(5, 40) as usize;
    let mut lines = vec![
        Line::styled(format!("reliability · {title}"), theme.text),
        Line::from(vec![
            Span::styled(format!("{:<w$}", "conf.", w = LABEL_W as usize), theme.dim),
            Span::styled("█", bar_style(theme)),
            Span::styled(" accuracy ", theme.dim),
            Span::styled("┃", theme.warn),
            Span::styled(" confidence", theme.dim),
        ]),
    ];
    for b in bins {
        let mut spans = vec![Span::styled(
            format!("{:.1}–{:.1} ", b.lower, b.upper),
            theme.text,
        )];
        match (b.accuracy, b.confidence) {
            (Some(acc), Some(conf)) => {
                let filled = (acc * bar_w as f64).round() as usize;
                let tick = ((conf * bar_w as f64).round() as usize).clamp(1, bar_w) - 1;
                for i in 0..bar_w {
                    let (sym, style) = if i == tick {
                        ("┃", theme.warn)
                    } else if i < filled {
                        ("█", bar_style(theme))
                    } else {
                        ("░", theme.dim)
                    };
                    spans.push(Span::styled(sym, style));
                }
                spans.push(Span::styled(
                    format!(" {acc:.2} / {conf:.2} n={}", b.count),
                    theme.text,
                ));
            }
            _ => {
                spans.push(Span::styled("·".repeat(bar_w), theme.dim));
                spans.push(Span::styled(" empty      n=0", theme.dim));
            }
        }
        lines.push(Line::from(spans));
    }
    Paragraph::new(lines).render(area, buf);
}

/// Accuracy bars: the theme's "good" colour, or plain text colour when the
/// theme has none (unknown background).
fn bar_style(theme: &Theme) -> Style {
    match theme.kind {
        ThemeKind::TerminalDefault => theme.text,
        _ => theme.good,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::state::ReliabilityBin;

    #[test]
    fn bins_cover_half_to_one() {
        assert_eq!(bin_of(0.5), 0);
        assert_eq!(bin_of(0.6), 0);
        assert_eq!(bin_of(0.61), 1);
        assert_eq!(bin_of(0.95), 4);
        assert_eq!(bin_of(1.0), 4);
        assert_eq!(bin_of(0.2), 0);
    }

    #[test]
    fn predictions_are_binned_by_top_label_confidence() {
        // p=0.1 is a confident "negative" (confidence 0.9).
        let bins =
            bins_from_predictions(&[(0.1, true), (0.95, false), (0.55, true), (0.58, false)]);
        assert_eq!(bins.len(), RELIABILITY_BINS);
        assert_eq!(bins[0].count, 2);
        assert_eq!(bins[0].accuracy, Some(0.5));
        assert!((bins[0].confidence.unwrap() - 0.565).abs() < 1e-9);
        assert_eq!(bins[3].count, 1);
        assert_eq!(bins[3].accuracy, Some(1.0));
        assert_eq!(bins[4].count, 1);
        assert_eq!(bins[4].accuracy, Some(0.0));
        assert_eq!(bins[1].count, 0);
        assert_eq!(bins[1].accuracy, None);
    }

    #[test]
    fn report_bins_are_merged_with_their_counts() {
        let bin = |c: f64, a: f64, n: u64| ReliabilityBin {
            lower: 0.0,
            upper: 0.0,
            mean_confidence: Some(c),
            accuracy: Some(a),
            count: n,
        };
        let m = CalibrationMetrics {
            bins: vec![bin(0.92, 1.0, 3), bin(0.97, 0.0, 1), bin(0.65, 0.5, 2)],
            ..Default::default()
        };
        let bars = bins_from_report(&m);
        assert_eq!(bars[4].count, 4);
        assert_eq!(bars[4].accuracy, Some(0.75));
        assert_eq!(bars[1].count, 2);
        assert_eq!(bars.iter().map(|b| b.count).sum::<u64>(), 6);
    }
}
