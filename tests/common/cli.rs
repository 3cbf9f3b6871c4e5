//! Running the real binary in a project folder, and reading its refusals.

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// `melxai` in `dir`, without colours or a stdin.
pub fn melxai(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_melxai"));
    c.current_dir(dir).env("NO_COLOR", "1").stdin(Stdio::null());
    c
}

pub fn run(dir: &Path, args: &[&str]) -> Output {
    melxai(dir).args(args).output().expect("melxai runs")
}

/// stdout then stderr.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Exit 2 (bad input), no panic, and every needle in the message.
pub fn assert_refused(o: &Output, needles: &[&str]) {
    let t = text(o);
    assert_eq!(o.status.code(), Some(2), "expected exit 2:\n{t}");
    assert!(!t.contains("panicked"), "panic:\n{t}");
    for n in needles {
        assert!(t.contains(n), "message lacks '{n}':\n{t}");
    }
}
