//! Colours of the UI, chosen for the terminal's background.
//!
//! Literal ANSI colours such as `White` and `Gray` are readable on a black
//! background and invisible on a white one (xterm's and macOS Terminal's
//! defaults), so every pane takes its styles from one [`Theme`]. The dark and
//! light themes use 256-colour palette entries (indices 16–255 are the same
//! in every xterm-compatible terminal and survive tmux, unlike the 16 ANSI
//! colours a user may have re-themed), picked so that text reaches a WCAG
//! contrast of 4.5 against their background. When the background is unknown
//! (the terminal did not answer the OSC 11 query), [`Theme::terminal_default`]
//! keeps the terminal's own foreground and background and marks emphasis with
//! modifiers (bold, dim, reverse) instead of colours.

pub use crate::config::ThemeChoice;
use ratatui::style::{Color, Modifier, Style};

/// Which palette a [`Theme`] was built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThemeKind {
    Dark,
    Light,
    /// Background unknown: the terminal's default colours plus modifiers.
    TerminalDefault,
}

/// Every style the panes use.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub kind: ThemeKind,
    /// Ordinary text.
    pub text: Style,
    /// Secondary text: hints, the idle status line, empty-pane messages, axes.
    pub dim: Style,
    /// Table headers, key names, prompts.
    pub accent: Style,
    pub border: Style,
    pub border_focused: Style,
    pub tab_active: Style,
    pub tab_inactive: Style,
    /// The " melxai " badge at the top left.
    pub badge: Style,
    /// Correct predictions, improvements, finished jobs.
    pub good: Style,
    /// Wrong predictions, errors, failed jobs.
    pub bad: Style,
    /// Running jobs, warnings, triage marks.
    pub warn: Style,
    /// The selected row of the sample list (a background).
    pub selected: Style,
    /// Filled part of progress gauges (fg) on their track (bg).
    pub gauge: Style,
    /// Lines of charts and reliability bars, in order of use.
    pub series: [Color; 4],
}

impl Default for Theme {
    fn default() -> Self {
        Theme::terminal_default()
    }
}

impl Theme {
    /// For a dark background (checked against black).
    pub fn dark() -> Self {
        let fg = |i| Style::default().fg(Color::Indexed(i));
        Theme {
            kind: ThemeKind::Dark,
            text: fg(252),
            dim: fg(246),
            accent: fg(81),
            border: fg(243),
            border_focused: fg(81),
            tab_active: fg(81).add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
            tab_inactive: fg(246),
            badge: Style::default()
                .fg(Color::Indexed(16))
                .bg(Color::Indexed(81))
                .add_modifier(Modifier::BOLD),
            good: fg(114),
            bad: fg(210),
            warn: fg(221),
            selected: Style::default()
                .bg(Color::Indexed(236))
                .add_modifier(Modifier::BOLD),
            gauge: Style::default()
                .fg(Color::Indexed(81))
                .bg(Color::Indexed(236)),
            series: [
                Color::Indexed(221),
                Color::Indexed(213),
                Color::Indexed(114),
                Color::Indexed(81),
            ],
        }
    }

    /// For a light background (checked against white).
    pub fn light() -> Self {
        let fg = |i| Style::default().fg(Color::Indexed(i));
        Theme {
            kind: ThemeKind::Light,
            text: fg(235),
            dim: fg(242),
            accent: fg(25),
            border: fg(245),
            border_focused: fg(25),
            tab_active: fg(25).add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
            tab_inactive: fg(242),
            badge: Style::default()
                .fg(Color::Indexed(231))
                .bg(Color::Indexed(25))
                .add_modifier(Modifier::BOLD),
            good: fg(22),
            bad: fg(124),
            warn: fg(94),
            selected: Style::default()
                .bg(Color::Indexed(254))
                .add_modifier(Modifier::BOLD),
            gauge: Style::default()
                .fg(Color::Indexed(25))
                .bg(Color::Indexed(254)),
            series: [
                Color::Indexed(130),
                Color::Indexed(127),
                Color::Indexed(28),
                Color::Indexed(25),
            ],
        }
    }

    /// Background unknown: the terminal's own colours, emphasis by modifiers.
    /// Red and green keep their ANSI names (the terminal's palette is made to
    /// be read on its own background); verdicts also carry ✓/✗.
    pub fn terminal_default() -> Self {
        let m = |m| Style::default().add_modifier(m);
        Theme {
            kind: ThemeKind::TerminalDefault,
            text: Style::default(),
            dim: m(Modifier::DIM),
            accent: m(Modifier::BOLD),
            border: m(Modifier::DIM),
            border_focused: m(Modifier::BOLD),
            tab_active: m(Modifier::BOLD | Modifier::UNDERLINED | Modifier::REVERSED),
            tab_inactive: Style::default(),
            badge: m(Modifier::BOLD | Modifier::REVERSED),
            good: Style::default().fg(Color::Green),
            bad: Style::default().fg(Color::Red),
            warn: m(Modifier::BOLD),
            selected: m(Modifier::REVERSED),
            gauge: Style::default(),
            series: [Color::Yellow, Color::Magenta, Color::Green, Color::Cyan],
        }
    }

    /// The theme for a configured choice and what the terminal reported.
    pub fn resolve(choice: ThemeChoice, background: Option<[u8; 3]>) -> Self {
        match choice {
            ThemeChoice::Dark => Theme::dark(),
            ThemeChoice::Light => Theme::light(),
            ThemeChoice::Auto => match background {
                Some(bg) if relative_luminance(bg) > 0.4 => Theme::light(),
                Some(_) => Theme::dark(),
                None => Theme::terminal_default(),
            },
        }
    }

    /// Name for the status line.
    pub fn name(&self) -> &'static str {
        match self.kind {
            ThemeKind::Dark => "dark",
            ThemeKind::Light => "light",
            ThemeKind::TerminalDefault => "terminal colours",
        }
    }

    /// Every text style with its name (for contrast checks).
    pub fn text_styles(&self) -> [(&'static str, Style); 12] {
        [
            ("text", self.text),
            ("dim", self.dim),
            ("accent", self.accent),
            ("border_focused", self.border_focused),
            ("tab_active", self.tab_active),
            ("tab_inactive", self.tab_inactive),
            ("badge", self.badge),
            ("good", self.good),
            ("bad", self.bad),
            ("warn", self.warn),
            ("gauge", self.gauge),
            (
                "gauge label",
                Style::default()
                    .fg(self.gauge.bg.unwrap_or(Color::Reset))
                    .bg(self.gauge.fg.unwrap_or(Color::Reset)),
            ),
        ]
    }
}

/// sRGB of a palette colour (xterm's 256-colour cube and grey ramp, or
/// true colour); `None` for the 16 re-themable ANSI colours and `Reset`.
pub fn rgb_of(c: Color) -> Option<[u8; 3]> {
    match c {
        Color::Rgb(r, g, b) => Some([r, g, b]),
        Color::Indexed(i @ 16..=231) => {
            let i = i - 16;
            let level = |v: u8| if v == 0 { 0 } else { 55 + 40 * v };
            Some([level(i / 36), level((i / 6) % 6), level(i % 6)])
        }
        Color::Indexed(i @ 232..=255) => {
            let v = 8 + 10 * (i - 232);
            Some([v, v, v])
        }
        _ => None,
    }
}

/// WCAG relative luminance of an sRGB colour, in [0, 1].
pub fn relative_luminance(rgb: [u8; 3]) -> f64 {
    let lin = |c: u8| {
        let c = c as f64 / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * lin(rgb[0]) + 0.7152 * lin(rgb[1]) + 0.0722 * lin(rgb[2])
}

/// WCAG contrast ratio of two colours, in [1, 21].
pub fn contrast(a: [u8; 3], b: [u8; 3]) -> f64 {
    let (la, lb) = (relative_luminance(a), relative_luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lowest contrast of a style's foreground against its own background,
    /// or against `page` when it has none.
    fn style_contrast(s: Style, page: [u8; 3]) -> f64 {
        let fg = rgb_of(s.fg.expect("a foreground")).expect("a palette colour");
        let bg =
            s.bg.map(|c| rgb_of(c).expect("a palette colour"))
                .unwrap_or(page);
        contrast(fg, bg)
    }

    fn check(theme: &Theme, page: [u8; 3]) {
        for (name, style) in theme.text_styles() {
            let c = style_contrast(style, page);
            assert!(c >= 4.5, "{} {name}: contrast {c:.2}", theme.name());
        }
        // Text drawn on the selected row keeps its colour over the selection.
        let sel = rgb_of(theme.selected.bg.unwrap()).unwrap();
        for (name, style) in [
            ("text", theme.text),
            ("good", theme.good),
            ("bad", theme.bad),
            ("warn", theme.warn),
        ] {
            let c = contrast(rgb_of(style.fg.unwrap()).unwrap(), sel);
            assert!(c >= 4.5, "{} {name} on selection: {c:.2}", theme.name());
        }
        // Lines and borders are graphics: WCAG asks 3:1.
        for c in theme.series.iter().chain(theme.border.fg.iter()) {
            let r = contrast(rgb_of(*c).unwrap(), page);
            assert!(r >= 3.0, "{} {c:?}: {r:.2}", theme.name());
        }
    }

    #[test]
    fn light_theme_is_readable_on_white() {
        check(&Theme::light(), [255, 255, 255]);
    }

    #[test]
    fn dark_theme_is_readable_on_black() {
        check(&Theme::dark(), [0, 0, 0]);
    }

    #[test]
    fn contrast_matches_wcag_examples() {
        assert!((contrast([0, 0, 0], [255, 255, 255]) - 21.0).abs() < 1e-9);
        assert!((contrast([118, 118, 118], [255, 255, 255]) - 4.54).abs() < 0.01);
        assert_eq!(rgb_of(Color::Indexed(16)), Some([0, 0, 0]));
        assert_eq!(rgb_of(Color::Indexed(231)), Some([255, 255, 255]));
        assert_eq!(rgb_of(Color::Indexed(244)), Some([128, 128, 128]));
        assert_eq!(rgb_of(Color::White), None);
    }

    #[test]
    fn unknown_background_uses_no_fixed_text_colour() {
        let t = Theme::resolve(ThemeChoice::Auto, None);
        assert_eq!(t.kind, ThemeKind::TerminalDefault);
        for (name, style) in t.text_styles() {
            assert!(
                !matches!(
                    style.fg,
                    Some(Color::White | Color::Gray | Color::DarkGray | Color::Black)
                ),
                "{name}: {style:?}"
            );
        }
    }

    #[test]
    fn auto_follows_the_reported_background() {
        assert_eq!(
            Theme::resolve(ThemeChoice::Auto, Some([255, 255, 255])).kind,
            ThemeKind::Light
        );
        assert_eq!(
            Theme::resolve(ThemeChoice::Auto, Some([253, 246, 227])).kind,
            ThemeKind::Light
        );
        assert_eq!(
            Theme::resolve(ThemeChoice::Auto, Some([0, 0, 0])).kind,
            ThemeKind::Dark
        );
        assert_eq!(
            Theme::resolve(ThemeChoice::Auto, Some([0, 43, 54])).kind,
            ThemeKind::Dark
        );
        assert_eq!(
            Theme::resolve(ThemeChoice::Light, Some([0, 0, 0])).kind,
            ThemeKind::Light
        );
        assert_eq!(
            Theme::resolve(ThemeChoice::Dark, None).kind,
            ThemeKind::Dark
        );
    }
}
