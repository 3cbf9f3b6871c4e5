//! Errors of the terminal UI, kept apart from the engine's so the UI can be
//! built and tested without it.

use std::path::{Path, PathBuf};

/// What can go wrong in the UI layer.
#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    /// Stdout is not a terminal (piped, redirected, or run from CI).
    #[error("melxai needs a terminal; use `melxai --batch` for headless runs")]
    NotATerminal,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
    #[error("triage file: {0}")]
    Triage(String),
    #[error("key map: {0}")]
    KeyMap(String),
    #[error("graphics mode: {0}")]
    Graphics(String),
    #[error("screenshot: {0}")]
    Screenshot(String),
}

impl TuiError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        TuiError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

pub type Result<T, E = TuiError> = std::result::Result<T, E>;
