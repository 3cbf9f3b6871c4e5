//! Terminal set-up and teardown.
//!
//! A TUI that dies without leaving raw mode and the alternate screen leaves
//! the user's SSH session unusable, so the terminal is restored on every way
//! out: normal exit and errors (the guard's `Drop`), panics (a panic hook
//! that restores before the message is printed, so it stays readable; not
//! for a panic the engine catches inside a job), and
//! Ctrl-C (in raw mode it arrives as a key and quits through the normal path).

use std::io::{self, IsTerminal, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

use crate::tui::error::{Result, TuiError};

static ACTIVE: AtomicBool = AtomicBool::new(false);
static HOOK: Once = Once::new();

/// Whether stdout is an interactive terminal.
pub fn stdout_is_terminal() -> bool {
    io::stdout().is_terminal()
}

/// Leaves raw mode and the alternate screen (idempotent, errors ignored:
/// this runs on the way out, where nothing better can be done).
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        crate::progress::set_terminal_owned(false);
        let _ = disable_raw_mode();
        let _ = execute!(
            io::stdout(),
            DisableMouseCapture,
            LeaveAlternateScreen,
            crossterm::cursor::Show
        );
    }
}

fn install_panic_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // A panic inside an engine job is caught and reported as a failed
            // job; the UI keeps running, so its terminal stays as it is.
            if !crate::engine::isolate::in_isolated_job() {
                restore();
            }
            previous(info);
        }));
    });
}

/// The terminal in TUI mode; restored when dropped.
pub struct TerminalGuard {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl TerminalGuard {
    /// Refuses when stdout is not a terminal, else enters raw mode, the
    /// alternate screen and mouse capture.
    pub fn enter() -> Result<Self> {
        if !stdout_is_terminal() {
            return Err(TuiError::NotATerminal);
        }
        install_panic_hook();
        enable_raw_mode()?;
        ACTIVE.store(true, Ordering::SeqCst);
        crate::progress::set_terminal_owned(true);
        let entered = execute!(io::stdout(), EnterAlternateScreen, EnableMouseCapture)
            .map_err(TuiError::from)
            .and_then(|_| {
                Terminal::new(CrosstermBackend::new(io::stdout())).map_err(TuiError::from)
            });
        match entered {
            Ok(mut terminal) => {
                let _ = terminal.hide_cursor();
                let _ = terminal.clear();
                Ok(TerminalGuard { terminal })
            }
            Err(e) => {
                restore();
                Err(e)
            }
        }
    }

    pub fn terminal(&mut self) -> &mut Terminal<CrosstermBackend<Stdout>> {
        &mut self.terminal
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}
