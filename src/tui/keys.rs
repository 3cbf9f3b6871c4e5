//! Keys to actions.
//!
//! Key handling is a pure function from (input mode, key event) to an
//! [`Action`], so bindings are testable without a terminal and remappable
//! from the `[tui.keys]` table of the config file:
//!
//! ```toml
//! [tui.keys]
//! train = "F5"
//! quit = ["q", "ctrl-q"]
//! ```
//!
//! A remapped action loses its default keys, and a key taken by a remapped
//! action is removed from any other action. Ctrl-C always quits.

use std::collections::HashMap;
use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::tui::error::{Result, TuiError};
use crate::tui::state::InputMode;
use crate::tui::triage::TriageMark;

/// Everything a user can ask the UI to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Quit,
    MoveDown,
    MoveUp,
    PageDown,
    PageUp,
    Top,
    Bottom,
    NextPane,
    PrevPane,
    ToggleZoom,
    CycleFilter,
    CycleSort,
    StartSearch,
    Mark(TriageMark),
    EditNote,
    StartTraining,
    /// Evaluate and calibrate the current checkpoint.
    Evaluate,
    /// Cancel the running job, or close the help / search / note / zoom first.
    Cancel,
    Explain,
    ToggleHelp,
    Screenshot,
    CycleMetric,
    /// Show heatmaps blended over the photo instead of beside it.
    ToggleOverlay,
    /// Overlay opacity up / down by one step.
    OverlayStronger,
    OverlayWeaker,
    /// Show one split (train / val / test / out-of-fold) or all.
    CycleSplit,
    /// The calibration pane: calibration / every class / subgroups.
    CycleCalibrationView,
    /// A character typed into the search or note field.
    Input(char),
    Backspace,
    /// Enter in the search or note field.
    Submit,
    /// Mouse click on the n-th visible row of the sample list.
    SelectRow(usize),
}

impl Action {
    /// Remappable actions with their config names, in help order.
    pub const NAMED: [(&'static str, Action); 29] = [
        ("move_down", Action::MoveDown),
        ("move_up", Action::MoveUp),
        ("page_down", Action::PageDown),
        ("page_up", Action::PageUp),
        ("top", Action::Top),
        ("bottom", Action::Bottom),
        ("next_pane", Action::NextPane),
        ("prev_pane", Action::PrevPane),
        ("toggle_zoom", Action::ToggleZoom),
        ("cycle_filter", Action::CycleFilter),
        ("cycle_split", Action::CycleSplit),
        ("cycle_calibration_view", Action::CycleCalibrationView),
        ("cycle_sort", Action::CycleSort),
        ("search", Action::StartSearch),
        ("flag", Action::Mark(TriageMark::Flag)),
        ("confirm", Action::Mark(TriageMark::Confirmed)),
        ("exclude", Action::Mark(TriageMark::Exclude)),
        ("note", Action::EditNote),
        ("train", Action::StartTraining),
        ("evaluate", Action::Evaluate),
        ("explain", Action::Explain),
        ("cancel", Action::Cancel),
        ("cycle_metric", Action::CycleMetric),
        ("overlay", Action::ToggleOverlay),
        ("overlay_more", Action::OverlayStronger),
        ("overlay_less", Action::OverlayWeaker),
        ("screenshot", Action::Screenshot),
        ("help", Action::ToggleHelp),
        ("quit", Action::Quit),
    ];

    pub fn from_name(name: &str) -> Option<Action> {
        let name = name.trim().to_ascii_lowercase().replace('-', "_");
        Self::NAMED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| *a)
    }

    pub fn name(self) -> Option<&'static str> {
        Self::NAMED
            .iter()
            .find(|(_, a)| *a == self)
            .map(|(n, _)| *n)
    }

    /// One-line description for the help overlay.
    pub fn describe(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::MoveDown => "next sample",
            Action::MoveUp => "previous sample",
            Action::PageDown => "page down",
            Action::PageUp => "page up",
            Action::Top => "first sample",
            Action::Bottom => "last sample",
            Action::NextPane => "focus next pane",
            Action::PrevPane => "focus previous pane",
            Action::ToggleZoom => "zoom the focused pane",
            Action::CycleFilter => {
                "filter: all / misclassified / uncertain / low agreement / set of two"
            }
            Action::CycleSort => "sort: name / probability / agreement",
            Action::StartSearch => "search by name",
            Action::Mark(TriageMark::Flag) => "flag for review",
            Action::Mark(TriageMark::Confirmed) => "mark confirmed",
            Action::Mark(TriageMark::Exclude) => "exclude from training",
            Action::EditNote => "edit note",
            Action::StartTraining => "train",
            Action::Evaluate => "evaluate + calibrate checkpoint",
            Action::Cancel => "close overlay / search, else cancel job",
            Action::Explain => "explain selected sample",
            Action::ToggleHelp => "this help",
            Action::Screenshot => "screenshot (SVG + HTML)",
            Action::CycleMetric => "agreement metric: SSIM / Pearson / cosine / Jaccard",
            Action::ToggleOverlay => "heatmaps over the photo / beside it",
            Action::OverlayStronger => "overlay opacity up",
            Action::OverlayWeaker => "overlay opacity down",
            Action::CycleSplit => "split: all / train / val / test / out-of-fold",
            Action::CycleCalibrationView => {
                "calibration pane: calibration / every class / subgroups"
            }
            Action::Input(_) | Action::Backspace | Action::Submit | Action::SelectRow(_) => "",
        }
    }
}

/// A key with the modifiers that matter (Ctrl, Alt; Shift only for
/// non-character keys, since `G` already says shift).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

impl Key {
    pub fn new(code: KeyCode, mods: KeyModifiers) -> Self {
        let mut mods = mods & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
        let code = match code {
            KeyCode::Char(c) => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::Char(c)
            }
            KeyCode::BackTab => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            KeyCode::Tab if mods.contains(KeyModifiers::SHIFT) => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            other => other,
        };
        Key { code, mods }
    }

    pub fn plain(code: KeyCode) -> Self {
        Key::new(code, KeyModifiers::NONE)
    }

    pub fn from_event(ev: &KeyEvent) -> Self {
        Key::new(ev.code, ev.modifiers)
    }

    /// Parses `x`, `G`, `?`, `ctrl-s`, `alt-x`, `shift-up`, `F5`, `esc`,
    /// `enter`, `tab`, `backtab`, `space`, `up`, `pgdn`, `home`, ...
    pub fn parse(s: &str) -> Result<Key> {
        let err = || TuiError::KeyMap(format!("unknown key {s:?}"));
        if s.is_empty() {
            return Err(err());
        }
        let mut mods = KeyModifiers::NONE;
        let mut rest = s;
        // A single character is the key itself, even '-' or '+'.
        while rest.chars().count() > 1 {
            let lower = rest.to_ascii_lowercase();
            let (prefix_len, m) = if lower.starts_with("ctrl-") || lower.starts_with("ctrl+") {
                (5, KeyModifiers::CONTROL)
            } else if lower.starts_with("c-") {
                (2, KeyModifiers::CONTROL)
            } else if lower.starts_with("alt-") || lower.starts_with("alt+") {
                (4, KeyModifiers::ALT)
            } else if lower.starts_with("shift-") || lower.starts_with("shift+") {
                (6, KeyModifiers::SHIFT)
            } else {
                break;
            };
            mods |= m;
            rest = &rest[prefix_len..];
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) => {
                if mods.contains(KeyModifiers::SHIFT) {
                    KeyCode::Char(c.to_ascii_uppercase())
                } else {
                    KeyCode::Char(c)
                }
            }
            _ => match rest.to_ascii_lowercase().as_str() {
                "esc" | "escape" => KeyCode::Esc,
                "enter" | "return" => KeyCode::Enter,
                "tab" => KeyCode::Tab,
                "backtab" => KeyCode::BackTab,
                "space" => KeyCode::Char(' '),
                "backspace" | "bs" => KeyCode::Backspace,
                "delete" | "del" => KeyCode::Delete,
                "insert" | "ins" => KeyCode::Insert,
                "up" => KeyCode::Up,
                "down" => KeyCode::Down,
                "left" => KeyCode::Left,
                "right" => KeyCode::Right,
                "home" => KeyCode::Home,
                "end" => KeyCode::End,
                "pgup" | "pageup" => KeyCode::PageUp,
                "pgdn" | "pgdown" | "pagedown" => KeyCode::PageDown,
                f if f.starts_with('f') => {
                    let n: u8 = f[1..].parse().map_err(|_| err())?;
                    if !(1..=24).contains(&n) {
                        return Err(err());
                    }
                    KeyCode::F(n)
                }
                _ => return Err(err()),
            },
        };
        Ok(Key::new(code, mods))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mods.contains(KeyModifiers::CONTROL) {
            f.write_str("ctrl-")?;
        }
        if self.mods.contains(KeyModifiers::ALT) {
            f.write_str("alt-")?;
        }
        if self.mods.contains(KeyModifiers::SHIFT) {
            f.write_str("shift-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::F(n) => write!(f, "F{n}"),
            KeyCode::Esc => f.write_str("Esc"),
            KeyCode::Enter => f.write_str("Enter"),
            KeyCode::Tab => f.write_str("Tab"),
            KeyCode::BackTab => f.write_str("S-Tab"),
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            KeyCode::PageUp => f.write_str("PgUp"),
            KeyCode::PageDown => f.write_str("PgDn"),
            KeyCode::Home => f.write_str("Home"),
            KeyCode::End => f.write_str("End"),
            KeyCode::Backspace => f.write_str("Backspace"),
            KeyCode::Delete => f.write_str("Del"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// Bindings from keys to actions.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyMap {
    bindings: HashMap<Key, Action>,
}

impl Default for KeyMap {
    fn default() -> Self {
        use KeyCode::*;
        let c = |ch| Key::plain(Char(ch));
        let pairs = [
            (c('q'), Action::Quit),
            (c('j'), Action::MoveDown),
            (Key::plain(Down), Action::MoveDown),
            (c('k'), Action::MoveUp),
            (Key::plain(Up), Action::MoveUp),
            (Key::plain(PageDown), Action::PageDown),
            (Key::plain(PageUp), Action::PageUp),
            (c('g'), Action::Top),
            (Key::plain(Home), Action::Top),
            (c('G'), Action::Bottom),
            (Key::plain(End), Action::Bottom),
            (Key::plain(Tab), Action::NextPane),
            (Key::plain(BackTab), Action::PrevPane),
            (c('z'), Action::ToggleZoom),
            (c('f'), Action::CycleFilter),
            (c('s'), Action::CycleSort),
            (c('/'), Action::StartSearch),
            (c('m'), Action::Mark(TriageMark::Flag)),
            (c('c'), Action::Mark(TriageMark::Confirmed)),
            (c('x'), Action::Mark(TriageMark::Exclude)),
            (c('n'), Action::EditNote),
            (c('t'), Action::StartTraining),
            (c('r'), Action::Evaluate),
            (c('e'), Action::Explain),
            (Key::plain(Esc), Action::Cancel),
            (c('?'), Action::ToggleHelp),
            (c('p'), Action::Screenshot),
            (c('M'), Action::CycleMetric),
            (c('o'), Action::ToggleOverlay),
            (c(']'), Action::OverlayStronger),
            (c('['), Action::OverlayWeaker),
            (c('v'), Action::CycleSplit),
            (c('b'), Action::CycleCalibrationView),
        ];
        KeyMap {
            bindings: pairs.into_iter().collect(),
        }
    }
}

impl KeyMap {
    /// Default bindings with the `[tui.keys]` table of a config file applied.
    /// A config without that table gives the defaults.
    pub fn from_config_toml(text: &str) -> Result<KeyMap> {
        let value: toml::Table =
            toml::from_str(text).map_err(|e| TuiError::KeyMap(e.to_string()))?;
        match value.get("tui").and_then(|t| t.get("keys")) {
            Some(toml::Value::Table(keys)) => KeyMap::default().with_table(keys),
            Some(_) => Err(TuiError::KeyMap("[tui.keys] must be a table".into())),
            None => Ok(KeyMap::default()),
        }
    }

    /// Applies a table of `action name = "key"` or `action name = ["key", ...]`.
    pub fn with_table(self, table: &toml::Table) -> Result<KeyMap> {
        let mut overrides = Vec::new();
        for (name, value) in table {
            let keys: Vec<String> = match value {
                toml::Value::String(s) => vec![s.clone()],
                toml::Value::Array(items) => items
                    .iter()
                    .map(|v| {
                        v.as_str().map(str::to_string).ok_or_else(|| {
                            TuiError::KeyMap(format!("{name}: keys must be strings"))
                        })
                    })
                    .collect::<Result<_>>()?,
                _ => return Err(TuiError::KeyMap(format!("{name}: expected a key string"))),
            };
            overrides.push((name.clone(), keys));
        }
        self.with_overrides(overrides)
    }

    /// Applies `(action name, keys)` overrides.
    pub fn with_overrides(mut self, overrides: Vec<(String, Vec<String>)>) -> Result<KeyMap> {
        for (name, keys) in overrides {
            let action = Action::from_name(&name).ok_or_else(|| {
                let known: Vec<&str> = Action::NAMED.iter().map(|(n, _)| *n).collect();
                TuiError::KeyMap(format!(
                    "unknown action {name:?} (known: {})",
                    known.join(", ")
                ))
            })?;
            self.bindings.retain(|_, a| *a != action);
            for k in keys {
                let key = Key::parse(&k)?;
                self.bindings.insert(key, action);
            }
        }
        Ok(self)
    }

    /// Keys bound to an action, sorted for display.
    pub fn keys_for(&self, action: Action) -> Vec<Key> {
        let mut keys: Vec<Key> = self
            .bindings
            .iter()
            .filter(|(_, a)| **a == action)
            .map(|(k, _)| *k)
            .collect();
        keys.sort_by_key(|k| k.to_string());
        keys
    }

    /// The action for a key press in the given input mode.
    pub fn action_for(&self, mode: &InputMode, ev: &KeyEvent) -> Option<Action> {
        if ev.kind == KeyEventKind::Release {
            return None;
        }
        if ev.code == KeyCode::Char('c') && ev.modifiers.contains(KeyModifiers::CONTROL) {
            return Some(Action::Quit);
        }
        match mode {
            InputMode::Normal => self.bindings.get(&Key::from_event(ev)).copied(),
            InputMode::Search(_) | InputMode::Note(_) => match ev.code {
                KeyCode::Esc => Some(Action::Cancel),
                KeyCode::Enter => Some(Action::Submit),
                KeyCode::Backspace => Some(Action::Backspace),
                KeyCode::Char(c)
                    if !ev
                        .modifiers
                        .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) =>
                {
                    Some(Action::Input(c))
                }
                _ => None,
            },
        }
    }
}
