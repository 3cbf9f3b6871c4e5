//! The subgroup forest plot: per attribute and group, AUROC, sensitivity and
//! specificity with their bootstrap intervals on a shared 0..1 scale, so a
//! group the model fails is seen at a glance and small groups are marked
//! rather than hidden (the figure of [`crate::evaluate::subgroups`]).

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::draw::*;
use super::FigureError;
use crate::evaluate::subgroups::{SubgroupReport, SubgroupRow, MIN_CLASS_COUNT};
use crate::metrics::Interval;

const WIDTH: u32 = 1100;
/// Top of the first row (title, subtitle and column headers above it).
const TOP: i32 = 112;
const ROW_H: i32 = 26;
/// Below the rows: the panels' axes with tick labels, then the footnotes.
const AXIS_H: i32 = 40;
const FOOT_H: i32 = 56;
const HEADER_X: i32 = 16;
const GROUP_X: i32 = 30;
/// Right edge of the "n (pos)" column.
const COUNT_RIGHT: i32 = 300;
const PANEL_LEFT: i32 = 320;
const PANEL_W: i32 = 226;
const PANEL_GAP: i32 = 36;
const DOT_R: i32 = 5;
const DOT: RGBColor = PALETTE[0];
const HEADER_BAND: RGBColor = RGBColor(244, 244, 244);
const GRID_LINE: RGBColor = RGBColor(228, 228, 228);
const PANELS: [&str; 3] = ["AUROC", "Sensitivity", "Specificity"];
const TICKS: [f64; 5] = [0.0, 0.25, 0.5, 0.75, 1.0];

/// One line of the plot: an attribute's header or one of its groups.
#[derive(Debug, Clone, Copy)]
enum Line<'a> {
    Header(&'a str),
    Group(&'a SubgroupRow),
}

/// The report's rows in order, a header before each run of one column's
/// groups (taken from the rows, so a column without groups takes no space).
fn layout(report: &SubgroupReport) -> Vec<Line<'_>> {
    let mut lines = Vec::with_capacity(report.rows.len() + report.columns.len());
    let mut current: Option<&str> = None;
    for row in &report.rows {
        if current != Some(row.column.as_str()) {
            current = Some(row.column.as_str());
            lines.push(Line::Header(&row.column));
        }
        lines.push(Line::Group(row));
    }
    lines
}

/// Vertical centre of line `i` of [`layout`].
fn line_centre(i: usize) -> i32 {
    TOP + ROW_H * i as i32 + ROW_H / 2
}

/// Left edge of panel `p` (0 = AUROC, 1 = sensitivity, 2 = specificity).
fn panel_left(p: usize) -> i32 {
    PANEL_LEFT + (PANEL_W + PANEL_GAP) * p as i32
}

/// Pixel column of `value` (clamped to 0..1) in panel `p`.
fn panel_x(p: usize, value: f64) -> i32 {
    panel_left(p) + (value.clamp(0.0, 1.0) * f64::from(PANEL_W)).round() as i32
}

/// Canvas size of [`subgroup_forest`]: 1100 wide, one 26 px line per group
/// and per attribute header.
pub fn subgroup_forest_size(report: &SubgroupReport) -> (u32, u32) {
    let lines = layout(report).len() as i32;
    (WIDTH, (TOP + ROW_H * lines + AXIS_H + FOOT_H) as u32)
}

/// Forest plot of a subgroup report: per group its size and positives, then
/// AUROC, sensitivity and specificity (at the report's threshold) as dots
/// with interval whiskers on 0..1 axes. Small groups are grey with a dagger;
/// undefined values read "n/a". Size [`subgroup_forest_size`].
pub fn subgroup_forest(
    path: &Path,
    report: &SubgroupReport,
    title: &str,
) -> Result<(), FigureError> {
    if report.rows.is_empty() {
        return Err(invalid("subgroup_forest: the report has no groups"));
    }
    let lines = layout(report);
    let bottom = TOP + ROW_H * lines.len() as i32;
    render(path, subgroup_forest_size(report), |root| {
        draw_titles(root, report, title)?;
        draw_grid(root, &lines, bottom)?;
        for (i, line) in lines.iter().enumerate() {
            match line {
                Line::Header(column) => draw_header(root, column, line_centre(i))?,
                Line::Group(row) => draw_group(root, row, line_centre(i))?,
            }
        }
        draw_footnotes(root, report, bottom + AXIS_H)
    })
}

/// Title, subtitle (threshold and interval level) and column headings.
fn draw_titles(root: &Area<'_>, report: &SubgroupReport, title: &str) -> Result<(), FigureError> {
    let centre = WIDTH as i32 / 2;
    let big = text_style(21.0, BLACK, HPos::Center, VPos::Center);
    root.draw_text(title, &big, (centre, 26))?;
    let level = report.rows.first().map_or(0.95, |r| r.auroc.level);
    let subtitle = format!(
        "Sensitivity and specificity at threshold {} (refer when score ≥ threshold); \
         dots: estimates, whiskers: {}% bootstrap intervals",
        trim_number(report.threshold),
        trim_number(level * 100.0)
    );
    let small = text_style(14.0, GREY, HPos::Center, VPos::Center);
    root.draw_text(&subtitle, &small, (centre, 54))?;
    let y = TOP - 18;
    let head = |h| text_style(15.0, BLACK, h, VPos::Center);
    root.draw_text("group", &head(HPos::Left), (GROUP_X, y))?;
    root.draw_text("n (pos)", &head(HPos::Right), (COUNT_RIGHT, y))?;
    for (p, name) in PANELS.iter().enumerate() {
        let cx = panel_left(p) + PANEL_W / 2;
        draw_bold(root, name, &head(HPos::Center), (cx, y))?;
    }
    Ok(())
}

/// Header bands, the panels' vertical grid lines and their 0..1 axes.
fn draw_grid(root: &Area<'_>, lines: &[Line<'_>], bottom: i32) -> Result<(), FigureError> {
    for (i, line) in lines.iter().enumerate() {
        if let Line::Header(_) = line {
            let y0 = TOP + ROW_H * i as i32;
            let band = [(HEADER_X - 8, y0 + 1), (WIDTH as i32 - 10, y0 + ROW_H - 1)];
            root.draw(&Rectangle::new(band, HEADER_BAND.filled()))?;
        }
    }
    let axis_y = bottom + 4;
    let tick_style = text_style(12.0, BLACK, HPos::Center, VPos::Top);
    for p in 0..PANELS.len() {
        for t in TICKS {
            let x = panel_x(p, t);
            root.draw(&PathElement::new(vec![(x, TOP), (x, axis_y)], GRID_LINE))?;
            root.draw(&PathElement::new(vec![(x, axis_y), (x, axis_y + 5)], BLACK))?;
            root.draw_text(&trim_number(t), &tick_style, (x, axis_y + 8))?;
        }
        let axis = vec![(panel_x(p, 0.0), axis_y), (panel_x(p, 1.0), axis_y)];
        root.draw(&PathElement::new(axis, BLACK))?;
    }
    Ok(())
}

/// An attribute's name, bold, at the left of its header band.
fn draw_header(root: &Area<'_>, column: &str, y: i32) -> Result<(), FigureError> {
    let style = text_style(15.0, BLACK, HPos::Left, VPos::Center);
    let name = fit(root, column, &style, (PANEL_LEFT - HEADER_X - 10) as u32);
    draw_bold(root, &name, &style, (HEADER_X, y))
}

/// One group: name (with † when small), counts, and its three intervals.
fn draw_group(root: &Area<'_>, row: &SubgroupRow, y: i32) -> Result<(), FigureError> {
    let (ink, dot) = if row.small {
        (GREY, GREY)
    } else {
        (BLACK, DOT)
    };
    let style = text_style(14.0, ink, HPos::Left, VPos::Center);
    let dagger = if row.small { " †" } else { "" };
    let room = (COUNT_RIGHT - GROUP_X - 90) as u32;
    let name = format!("{}{dagger}", fit(root, &row.group, &style, room));
    root.draw_text(&name, &style, (GROUP_X, y))?;
    let counts = format!("{} ({})", row.n, row.positives);
    let right = text_style(14.0, ink, HPos::Right, VPos::Center);
    root.draw_text(&counts, &right, (COUNT_RIGHT, y))?;
    let intervals = [&row.auroc, &row.sensitivity, &row.specificity];
    for (p, interval) in intervals.into_iter().enumerate() {
        draw_interval(root, p, interval, y, dot)?;
    }
    Ok(())
}

/// A whisker from low to high (with end caps) under a dot at the point;
/// "n/a" in the panel's middle when the point is undefined. A defined point
/// without a usable interval gets the dot alone.
fn draw_interval(
    root: &Area<'_>,
    p: usize,
    interval: &Interval,
    y: i32,
    colour: RGBColor,
) -> Result<(), FigureError> {
    if !interval.point.is_finite() {
        let style = text_style(13.0, GREY, HPos::Center, VPos::Center);
        return Ok(root.draw_text("n/a", &style, (panel_x(p, 0.5), y))?);
    }
    if interval.low.is_finite() && interval.high.is_finite() {
        let (x0, x1) = (panel_x(p, interval.low), panel_x(p, interval.high));
        let stroke = colour.stroke_width(2);
        root.draw(&PathElement::new(vec![(x0, y), (x1, y)], stroke))?;
        for x in [x0, x1] {
            root.draw(&PathElement::new(vec![(x, y - 4), (x, y + 4)], stroke))?;
        }
    }
    let centre = (panel_x(p, interval.point), y);
    root.draw(&Circle::new(centre, DOT_R, colour.filled()))?;
    Ok(())
}

/// The small-group footnote and the meaning of "n/a", each only when used.
fn draw_footnotes(root: &Area<'_>, report: &SubgroupReport, top: i32) -> Result<(), FigureError> {
    let style = text_style(13.0, GREY, HPos::Left, VPos::Center);
    let mut y = top + 12;
    if report.rows.iter().any(|r| r.small) {
        let note = format!(
            "† fewer than {} images or fewer than {MIN_CLASS_COUNT} of a class: wide intervals",
            report.min_group
        );
        root.draw_text(&note, &style, (HEADER_X, y))?;
        y += 20;
    }
    let undefined = |r: &SubgroupRow| {
        [&r.auroc, &r.sensitivity, &r.specificity]
            .iter()
            .any(|i| !i.point.is_finite())
    };
    if report.rows.iter().any(undefined) {
        let note = "n/a: undefined in the group (only one class present)";
        root.draw_text(note, &style, (HEADER_X, y))?;
    }
    Ok(())
}

/// Bold by overstriking one pixel to the right: the embedded font has only
/// its regular weight, and the backend draws every style with it.
fn draw_bold(
    root: &Area<'_>,
    text: &str,
    style: &TextStyle<'_>,
    (x, y): (i32, i32),
) -> Result<(), FigureError> {
    root.draw_text(text, style, (x, y))?;
    root.draw_text(text, style, (x + 1, y))?;
    Ok(())
}

/// `text`, cut with an ellipsis to at most `max_w` pixels, so a long group
/// name cannot run into the counts or the panels.
fn fit(root: &Area<'_>, text: &str, style: &TextStyle<'_>, max_w: u32) -> String {
    let width = |s: &str| root.estimate_text_size(s, style).map_or(0, |(w, _)| w);
    if width(text) <= max_w {
        return text.to_string();
    }
    let mut chars: Vec<char> = text.chars().collect();
    while !chars.is_empty() {
        chars.pop();
        let cut = format!("{}…", chars.iter().collect::<String>().trim_end());
        if width(&cut) <= max_w {
            return cut;
        }
    }
    "…".to_string()
}

/// A number with at most four decimals and no trailing zeros ("0.5", "95").
fn trim_number(x: f64) -> String {
    let s = format!("{x:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(point: f64, low: f64, high: f64) -> Interval {
        let n_valid = if low.is_finite() { 1000 } else { 0 };
        Interval {
            point,
            low,
            high,
            level: 0.95,
            n_valid,
            n_drawn: 1000,
        }
    }

    fn row(column: &str, group: &str, n: usize, auroc: f64, small: bool) -> SubgroupRow {
        SubgroupRow {
            column: column.to_string(),
            group: group.to_string(),
            n,
            positives: n / 4,
            auroc: interval(auroc, auroc - 0.08, (auroc + 0.06).min(1.0)),
            sensitivity: interval(0.7, 0.55, 0.82),
            specificity: interval(0.9, 0.85, 0.94),
            ece: 0.04,
            small,
        }
    }

    /// Two columns of three groups: one small, one with an undefined AUROC.
    fn report() -> SubgroupReport {
        let mut rows = vec![
            row("sex", "female", 400, 0.86, false),
            row("sex", "male", 380, 0.84, false),
            row("sex", "missing", 12, 0.7, true),
            row("age", "30-39", 120, 0.81, false),
            row("age", "40-49", 150, 0.88, false),
            row("age", "80-89", 40, f64::NAN, false),
        ];
        rows[5].auroc = interval(f64::NAN, f64::NAN, f64::NAN);
        SubgroupReport {
            columns: vec!["sex".to_string(), "age".to_string()],
            rows,
            min_group: 30,
            threshold: 0.42,
            bin_width: 10.0,
        }
    }

    fn draw(report: &SubgroupReport) -> image::RgbImage {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("figs").join("subgroups.png");
        subgroup_forest(&path, report, "Melanoma by subgroup").unwrap();
        image::open(&path).unwrap().to_rgb8()
    }

    /// Line index of the group called `name` in [`layout`].
    fn line_of(report: &SubgroupReport, name: &str) -> usize {
        let is = |l: &Line<'_>| matches!(l, Line::Group(r) if r.group == name);
        layout(report).iter().position(is).unwrap()
    }

    #[test]
    fn two_columns_render_at_the_size_the_size_function_gives() {
        let report = report();
        let img = draw(&report);
        // 2 headers + 6 groups.
        let expected = (WIDTH, (TOP + 8 * ROW_H + AXIS_H + FOOT_H) as u32);
        assert_eq!(subgroup_forest_size(&report), expected);
        assert_eq!(img.dimensions(), expected);
        let mut fewer = report.clone();
        fewer.rows.truncate(3);
        assert_eq!(
            subgroup_forest_size(&fewer).1,
            expected.1 - 4 * ROW_H as u32
        );
        assert_eq!(line_of(&report, "30-39"), 5);
    }

    #[test]
    fn an_empty_report_is_invalid_input() {
        let mut empty = report();
        empty.rows.clear();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.png");
        let err = subgroup_forest(&path, &empty, "x").unwrap_err();
        assert!(matches!(err, FigureError::InvalidInput(_)), "{err}");
        assert!(!path.exists());
    }

    #[test]
    fn a_small_group_is_grey_and_a_normal_one_blue() {
        let report = report();
        let img = draw(&report);
        let pixel = |group: &str, p: usize, value: f64| {
            let y = line_centre(line_of(&report, group));
            img.get_pixel(panel_x(p, value) as u32, y as u32).0
        };
        assert_eq!(pixel("missing", 0, 0.7), [GREY.0, GREY.1, GREY.2]);
        assert_eq!(pixel("missing", 2, 0.9), [GREY.0, GREY.1, GREY.2]);
        assert_eq!(pixel("female", 0, 0.86), [DOT.0, DOT.1, DOT.2]);
        // The whisker of a normal group is blue between its bounds, not grey.
        assert_eq!(pixel("male", 1, 0.6), [DOT.0, DOT.1, DOT.2]);
    }

    #[test]
    fn an_undefined_auroc_writes_text_instead_of_a_dot() {
        let report = report();
        let img = draw(&report);
        let y = line_centre(line_of(&report, "80-89"));
        let (x0, x1) = (panel_left(0), panel_left(0) + PANEL_W);
        let mut blue = 0;
        let mut ink = 0;
        for x in x0..=x1 {
            for y in (y - ROW_H / 2 + 1)..(y + ROW_H / 2) {
                let [r, g, b] = img.get_pixel(x as u32, y as u32).0;
                blue += usize::from([r, g, b] == [DOT.0, DOT.1, DOT.2]);
                ink += usize::from(r < 180 && r == g && g == b);
            }
        }
        assert_eq!(blue, 0, "no dot or whisker in the AUROC panel");
        assert!(ink > 10, "the panel says n/a ({ink} dark pixels)");
        // Its sensitivity is defined: a blue dot there.
        let dot = img.get_pixel(panel_x(1, 0.7) as u32, y as u32).0;
        assert_eq!(dot, [DOT.0, DOT.1, DOT.2]);
    }

    #[test]
    fn long_names_are_cut_and_numbers_trimmed() {
        let mut report = report();
        report.rows[0].group = "a very long anatomical site name indeed, longer".repeat(3);
        let img = draw(&report);
        assert_eq!(img.dimensions(), subgroup_forest_size(&report));
        // Between the cut name and the counts the row stays white.
        let y = line_centre(line_of(&report, &report.rows[0].group));
        let gap = (COUNT_RIGHT - 86)..(COUNT_RIGHT - 72);
        for x in gap.clone() {
            for y in (y - 8)..(y + 8) {
                assert_eq!(img.get_pixel(x as u32, y as u32).0, [255; 3], "({x}, {y})");
            }
        }
        // ... and the name itself reaches close to that gap.
        let inked =
            |x: i32| (y - 8..y + 8).any(|y| img.get_pixel(x as u32, y as u32).0 != [255; 3]);
        assert!((gap.start - 30..gap.start).any(inked));
        assert_eq!(trim_number(0.42), "0.42");
        assert_eq!(trim_number(95.0), "95");
        assert_eq!(trim_number(0.0), "0");
        assert_eq!(trim_number(0.123456), "0.1235");
    }
}
