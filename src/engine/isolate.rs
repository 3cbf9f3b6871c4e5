//! Running one job so that a panic inside it (a libtorch error such as CUDA
//! out of memory surfaces as a Rust panic) ends that job, not the face.
//!
//! The panic is caught with `catch_unwind`; its message and location become
//! the job's error. While a job runs isolated, the panic hook records the
//! message instead of printing it (stderr is the TUI's screen) and the TUI's
//! hook leaves the terminal in TUI mode ([`in_isolated_job`]).

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    static ISOLATED: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// Whether the current thread is inside [`run_isolated`]: panic hooks that
/// would tear down shared state (the terminal) must leave it alone.
pub fn in_isolated_job() -> bool {
    ISOLATED.with(Cell::get)
}

/// Wraps the process's panic hook once: inside an isolated job the message
/// (with its location) is kept for the job's error instead of printed.
fn install_hook() {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if in_isolated_job() {
                let at = info
                    .location()
                    .map(|l| format!(" (at {}:{})", l.file(), l.line()))
                    .unwrap_or_default();
                let message = payload_message(info.payload());
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{message}{at}")));
            } else {
                previous(info);
            }
        }));
    });
}

fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// Runs `f`, turning a panic into `Err("panicked: <message> (at file:line)")`.
pub fn run_isolated<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_hook();
    let was = ISOLATED.with(|c| c.replace(true));
    LAST_PANIC.with(|p| p.borrow_mut().take());
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    ISOLATED.with(|c| c.set(was));
    result.map_err(|payload| {
        let message = LAST_PANIC
            .with(|p| p.borrow_mut().take())
            .unwrap_or_else(|| payload_message(payload.as_ref()));
        format!("panicked: {message}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_with_its_message() {
        let r: Result<(), String> = run_isolated(|| panic!("CUDA out of memory"));
        let e = r.unwrap_err();
        assert!(e.starts_with("panicked: CUDA out of memory"), "{e}");
        assert!(e.contains("isolate.rs"), "location kept: {e}");
        assert!(!in_isolated_job(), "flag reset after the job");
        assert_eq!(run_isolated(|| 7), Ok(7));
    }
}
