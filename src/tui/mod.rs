//! The terminal UI: a face over the engine for researchers in SSH sessions.
//!
//! Data flows one way: engine [`Event`](crate::progress::Event)s →
//! [`AppState::apply_event`] → panes; keys → [`keys::Action`] →
//! [`AppState::update`] → [`Request`](crate::engine::requests::Request)s to
//! the worker. State, key handling, panes, screenshots, triage storage and
//! the terminal are separate modules so that everything but `terminal.rs`
//! is testable headless.

pub mod colormap;
pub mod error;
pub mod graphics;
pub mod halfblock;
pub mod keys;
pub mod panes;
pub mod probe;
pub mod report_screens;
pub mod run;
pub mod screenshot;
pub mod state;
pub mod terminal;
pub mod theme;
pub mod triage;
pub mod ui;
pub mod update;

pub use error::{Result, TuiError};
pub use graphics::GraphicsMode;
pub use keys::{Action, KeyMap};
pub use run::{run_app, run_loop, App, ImageLoader, SimilarityFn, TuiOptions};
pub use state::{AppState, Metric, Pane};
pub use theme::{Theme, ThemeChoice};
pub use triage::{TriageEntry, TriageMark};
