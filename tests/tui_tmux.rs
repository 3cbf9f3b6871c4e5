//! End-to-end: the real `melxai` binary driven through tmux, as a person
//! would use it. Browse samples, train, keep using keys while training runs,
//! flag a sample, cancel, quit, restart and find the flag again.
//!
//! Needs `tmux` on the PATH (CI: `apt-get install -y tmux`). The test fails,
//! rather than skipping, when tmux is missing, so a CI image without it is
//! noticed. Every tmux server it starts uses its own socket in a temporary
//! directory and is killed on drop, on success and on failure alike.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_melxai");
const WIDTH: u16 = 160;
const HEIGHT: u16 = 45;
const EPOCHS: usize = 30;

/// Fails with a clear message when tmux is not installed.
fn require_tmux() {
    match Command::new("tmux").arg("-V").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "`tmux -V` failed ({}): {}; this test needs a working tmux \
             (install it: `apt-get install -y tmux`)",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "tmux is not installed ({e}); the TUI end-to-end test drives the real \
             binary in tmux. Install it (`apt-get install -y tmux`, `brew install tmux`) \
             and rerun."
        ),
    }
}

/// One private tmux server (own socket, own config) holding one session.
/// Dropping it kills the server and with it the binary in the pane.
struct Tmux {
    socket: PathBuf,
    conf: PathBuf,
    session: String,
}

impl Tmux {
    /// Starts `command` in a new detached session of a fresh server.
    fn start(dir: &Path, tag: &str, command: &str) -> Tmux {
        let unique = format!(
            "melxai-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let socket = dir.join(format!("tmux-{tag}.sock"));
        let conf = dir.join("tmux.conf");
        // remain-on-exit keeps the pane after the binary exits, so the test
        // can tell "quit" from "crashed" by the exit status.
        std::fs::write(
            &conf,
            "set -g remain-on-exit on\n\
             set -g escape-time 0\n\
             set -g status off\n\
             set -g history-limit 0\n",
        )
        .unwrap();
        let tmux = Tmux {
            socket,
            conf,
            session: unique,
        };
        let width = WIDTH.to_string();
        let height = HEIGHT.to_string();
        let out = tmux.cmd(&[
            "new-session",
            "-d",
            "-s",
            &tmux.session,
            "-x",
            &width,
            "-y",
            &height,
            "-c",
            dir.to_str().unwrap(),
            command,
        ]);
        assert!(
            out.status.success(),
            "tmux new-session failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tmux
    }

    fn cmd(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            // -u: UTF-8 output whatever the locale, so ⚑ and box drawing survive.
            .arg("-u")
            .arg("-S")
            .arg(&self.socket)
            .arg("-f")
            .arg(&self.conf)
            .args(args)
            .env("LANG", "C.UTF-8")
            .env_remove("TMUX")
            .output()
            .expect("running tmux")
    }

    fn target(&self) -> String {
        format!("{}:0.0", self.session)
    }

    /// Sends keys (tmux key names: `j`, `Escape`, ...), one at a time.
    fn keys(&self, keys: &[&str]) {
        for k in keys {
            let out = self.cmd(&["send-keys", "-t", &self.target(), k]);
            assert!(
                out.status.success(),
                "send-keys {k}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(60));
        }
    }

    /// The visible screen as text (or with escape sequences when `escapes`).
    fn capture_with(&self, escapes: bool) -> String {
        let mut args = vec!["capture-pane", "-p", "-t"];
        let target = self.target();
        args.push(&target);
        if escapes {
            args.push("-e");
        }
        let out = self.cmd(&args);
        assert!(
            out.status.success(),
            "capture-pane: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn capture(&self) -> String {
        self.capture_with(false)
    }

    fn pane_field(&self, field: &str) -> String {
        let out = self.cmd(&["list-panes", "-t", &self.target(), "-F", field]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Checks that the dead pane's process exited with status 0 (tmux
    /// leaves `pane_dead_status` empty and sets `pane_dead_signal` when a
    /// signal killed it).
    fn assert_clean_exit(&self, when: &str) {
        // tmux can mark the pane dead (pty closed) a moment before it has
        // reaped the process and recorded how it ended.
        let t = Instant::now();
        let (mut status, mut signal) = (String::new(), String::new());
        while t.elapsed() < Duration::from_secs(3) {
            status = self.pane_field("#{pane_dead_status}");
            signal = self.pane_field("#{pane_dead_signal}");
            if !status.is_empty() || !signal.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // About one run in eight here, tmux marks the pane dead but never records
        // how the process ended (neither field set). Only a recorded non-zero
        // status or a signal (a crash) is a failure.
        assert!(
            signal.is_empty() && (status == "0" || status.is_empty()),
            "melxai did not exit cleanly {when}: exit status {status:?}, signal {signal:?}; \
             screen:\n{}",
            self.capture()
        );
    }

    fn pane_dead(&self) -> bool {
        self.pane_field("#{pane_dead}") == "1"
    }

    /// Polls the screen until `pred` holds; panics with the last screen.
    fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.capture();
            if pred(&screen) {
                return screen;
            }
            if self.pane_dead() {
                panic!(
                    "melxai exited (status {:?}, signal {:?}) while waiting for {what}; \
                     last screen:\n{screen}",
                    self.pane_field("#{pane_dead_status}"),
                    self.pane_field("#{pane_dead_signal}")
                );
            }
            if start.elapsed() > timeout {
                panic!("timed out after {timeout:?} waiting for {what}; last screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Prints a screen when MELXAI_TMUX_DEBUG is set (with --nocapture).
fn debug(what: &str, screen: &str) {
    if std::env::var_os("MELXAI_TMUX_DEBUG").is_some() {
        eprintln!("=== {what} ===\n{screen}");
    }
}

/// Line `n` of the screen (0 = header).
fn line(screen: &str, n: usize) -> &str {
    screen.lines().nth(n).unwrap_or("")
}

/// The status line (last row).
fn status_line(screen: &str) -> &str {
    line(screen, HEIGHT as usize - 1)
}

/// The sample-list row that shows `file`, if on screen.
fn list_row<'a>(screen: &'a str, file: &str) -> Option<&'a str> {
    screen.lines().find(|l| {
        // The list is the left pane; the image pane's info line starts with
        // the full id, so match the bare file name in the left 60 columns.
        let left: String = l.chars().take(60).collect();
        left.contains(file) && !left.contains(&format!("/{file}"))
    })
}

/// The selected sample according to the image pane's info line.
fn selected_id(screen: &str) -> Option<String> {
    screen.lines().find_map(|l| {
        let i = l.find("  true: ")?;
        let head = &l[..i];
        let id = head.rsplit(['│', '┃', ' ']).next()?;
        id.contains('/').then(|| id.to_string())
    })
}

/// `(epoch, batch)` from the training pane's gauges.
fn training_counters(screen: &str) -> Option<(String, String)> {
    let grab = |key: &str| {
        screen.lines().find_map(|l| {
            let i = l.find(key)?;
            let rest = &l[i + key.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '/' || c == '?'))
                .unwrap_or(rest.len());
            let v = &rest[..end];
            v.contains('/').then(|| v.to_string())
        })
    };
    Some((grab("epoch ")?, grab("batch ")?))
}

fn epoch_done(counter: &str) -> usize {
    counter.split('/').next().unwrap().parse().unwrap_or(0)
}

fn setup(dir: &Path) {
    setup_with_epochs(dir, EPOCHS);
}

fn setup_with_epochs(dir: &Path, epochs: usize) {
    common::dataset::make(&dir.join("data"), 10, 48);
    let weights = dir.join("weights");
    std::fs::create_dir_all(&weights).unwrap();
    let name = "efficientnet-lite0-imagenet.safetensors";
    let src = common::weights_dir().join(name);
    #[cfg(unix)]
    std::os::unix::fs::symlink(&src, weights.join(name)).unwrap();
    #[cfg(not(unix))]
    std::fs::copy(&src, weights.join(name)).unwrap();
    let config = format!(
        "device = \"cpu\"\n\
         [data]\nroot = \"{data}\"\npositive_class = \"melanoma\"\n\
         [model]\narch = \"lite0\"\nweights_dir = \"{weights}\"\n\
         [train]\nname = \"tui-test\"\ninput_size = 32\nepochs = {epochs}\n\
         batch_size = 8\npatience = 0\n",
        data = dir.join("data").display(),
        weights = weights.display(),
    );
    std::fs::write(dir.join("config.toml"), config).unwrap();
}

fn command() -> String {
    format!("'{BIN}' --graphics halfblocks")
}

#[test]
fn tui_in_tmux_browse_train_flag_quit_restart() {
    require_tmux();
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    setup(dir);

    // --- First run ------------------------------------------------------
    let tmux = Tmux::start(dir, "a", &command());
    let screen = tmux.wait_for("the sample list", Duration::from_secs(20), |s| {
        s.contains("Samples 20/20") && s.contains("melanoma_00.png")
    });
    debug("start", &screen);
    assert!(
        line(&screen, 0).contains("melxai"),
        "header missing:\n{screen}"
    );
    assert_eq!(
        selected_id(&screen).as_deref(),
        Some("melanoma/melanoma_00.png"),
        "first sample should start selected:\n{screen}"
    );

    // Colours reach the terminal (SGR escape sequences in the pane).
    let coloured = tmux.capture_with(true);
    assert!(
        coloured.contains("\x1b[") && coloured.matches("\x1b[").count() > 20,
        "no colour escape sequences in the pane:\n{coloured:?}"
    );

    // j j j moves the selection three rows down.
    tmux.keys(&["j", "j", "j"]);
    tmux.wait_for("selection on melanoma_03", Duration::from_secs(5), |s| {
        selected_id(s).as_deref() == Some("melanoma/melanoma_03.jpg")
    });
    tmux.keys(&["k"]);
    tmux.wait_for(
        "selection back on melanoma_02",
        Duration::from_secs(5),
        |s| selected_id(s).as_deref() == Some("melanoma/melanoma_02.png"),
    );

    // t starts training; the training pane shows gauges.
    tmux.keys(&["t"]);
    let first = tmux.wait_for("training progress", Duration::from_secs(30), |s| {
        s.contains("Train:") && training_counters(s).is_some()
    });
    debug("training started", &first);
    let (epoch0, batch0) = training_counters(&first).unwrap();

    // Progress moves: the epoch/batch text changes between captures.
    let mut last;
    let moved = Instant::now();
    let progressed = loop {
        std::thread::sleep(Duration::from_millis(500));
        last = tmux.capture();
        match training_counters(&last) {
            Some((e, b)) if (e.as_str(), b.as_str()) != (epoch0.as_str(), batch0.as_str()) => {
                break Some((e, b))
            }
            _ => {}
        }
        if moved.elapsed() > Duration::from_secs(20) {
            break None;
        }
    };
    let (epoch1, _batch1) = progressed.unwrap_or_else(|| {
        panic!(
            "training progress did not change in 20 s (epoch {epoch0}, batch {batch0}); \
             last screen:\n{last}"
        )
    });
    debug("training moved", &last);
    assert!(
        epoch_done(&epoch1) >= epoch_done(&epoch0),
        "epoch went backwards: {epoch0} -> {epoch1}"
    );
    let still_training = last.contains("Train:");
    assert!(
        still_training,
        "training ({EPOCHS} epochs) finished before the key checks; screen:\n{last}"
    );

    // Keys respond while training: j moves the selection.
    let pressed = Instant::now();
    tmux.keys(&["j"]);
    let moved_screen = tmux.wait_for(
        "selection to move during training",
        Duration::from_secs(3),
        |s| selected_id(s).as_deref() == Some("melanoma/melanoma_03.jpg"),
    );
    assert!(
        line(&moved_screen, 0).contains("Train:"),
        "training stopped before j was seen, so responsiveness during training \
         went untested; raise [train] epochs. Screen:\n{moved_screen}"
    );
    debug(
        &format!("j during training ({:?})", pressed.elapsed()),
        &moved_screen,
    );

    // m flags the selected sample: status line and list row say so.
    tmux.keys(&["m"]);
    let flagged = tmux.wait_for("flag confirmation", Duration::from_secs(3), |s| {
        status_line(s).contains("melanoma/melanoma_03.jpg: flagged")
    });
    debug("flagged", &flagged);
    let row = list_row(&flagged, "melanoma_03.jpg")
        .unwrap_or_else(|| panic!("row of melanoma_03.jpg not on screen:\n{flagged}"));
    assert!(row.contains('⚑'), "flag symbol missing from row {row:?}");
    assert!(
        dir.join("reports/triage.toml").exists(),
        "triage file not written on mark"
    );

    // Esc cancels the running job; the header leaves the running state.
    let running = tmux.capture().contains("Train:");
    tmux.keys(&["Escape"]);
    let stopped = tmux.wait_for("training to stop", Duration::from_secs(20), |s| {
        !line(s, 0).contains("Train:")
    });
    debug("after Esc", &stopped);
    if running {
        // Training may finish on its own in the instant between the check
        // and the key; either way the job must no longer run.
        assert!(
            line(&stopped, 0).contains("✓ cancelled") || line(&stopped, 0).contains("✓ trained"),
            "expected a cancelled (or finished) job in the header:\n{stopped}"
        );
    }

    // q quits: the pane's process exits with status 0.
    tmux.keys(&["q"]);
    let t = Instant::now();
    while !tmux.pane_dead() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "melxai did not exit within 10 s of q; screen:\n{}",
            tmux.capture()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    tmux.assert_clean_exit("after q");
    drop(tmux);

    // --- Triage file ------------------------------------------------------
    let triage = std::fs::read_to_string(dir.join("reports/triage.toml")).unwrap();
    let parsed: toml::Table = toml::from_str(&triage).unwrap();
    let mark = parsed
        .get("samples")
        .and_then(|s| s.get("melanoma/melanoma_03.jpg"))
        .and_then(|e| e.get("mark"))
        .and_then(|m| m.as_str());
    assert_eq!(mark, Some("flag"), "triage.toml:\n{triage}");

    // --- Second run: the flag is back ----------------------------------------
    let tmux = Tmux::start(dir, "b", &command());
    let screen = tmux.wait_for("the sample list again", Duration::from_secs(20), |s| {
        s.contains("Samples 20/20") && s.contains("melanoma_03.jpg")
    });
    debug("restarted", &screen);
    let row = list_row(&screen, "melanoma_03.jpg")
        .unwrap_or_else(|| panic!("row of melanoma_03.jpg not on screen:\n{screen}"));
    assert!(
        row.contains('⚑'),
        "flag not restored after restart; row {row:?}; screen:\n{screen}"
    );
    let others_flagged = screen
        .lines()
        .filter(|l| l.chars().take(60).any(|c| c == '⚑'))
        .count();
    assert_eq!(others_flagged, 1, "exactly one row is flagged:\n{screen}");
    tmux.keys(&["q"]);
    let t = Instant::now();
    while !tmux.pane_dead() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "melxai did not exit after q on the second run"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    tmux.assert_clean_exit("after q on the second run");
    drop(tmux);

    assert!(
        started.elapsed() < Duration::from_secs(90),
        "the tmux test took {:?}; keep it under 90 s",
        started.elapsed()
    );
}

#[test]
fn tui_in_tmux_uses_a_checkpoint_trained_inside_it_without_restart() {
    require_tmux();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    setup_with_epochs(dir, 2);
    let tmux = Tmux::start(dir, "c", &command());
    let screen = tmux.wait_for("the sample list", Duration::from_secs(20), |s| {
        s.contains("Samples 20/20")
    });
    assert!(
        line(&screen, 0).contains("model: no checkpoint"),
        "a fresh weights folder has no model:\n{screen}"
    );
    tmux.keys(&["t"]);
    let trained = tmux.wait_for("training to finish", Duration::from_secs(120), |s| {
        line(s, 0).contains("✓ trained")
    });
    debug("trained", &trained);
    assert!(
        line(&trained, 0).contains("model: tui-test "),
        "the header should name the model just trained:\n{trained}"
    );
    // r evaluates it at once: no "No checkpoint yet" warning.
    tmux.keys(&["r"]);
    let evaluated = tmux.wait_for(
        "predictions of the new model",
        Duration::from_secs(60),
        |s| s.contains("predictions from tui-test") || s.contains("done: "),
    );
    debug("evaluated", &evaluated);
    assert!(
        !evaluated.contains("No checkpoint yet"),
        "r did not see the trained model:\n{evaluated}"
    );
    tmux.keys(&["q"]);
    let t = Instant::now();
    while !tmux.pane_dead() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "melxai did not exit after q"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    tmux.assert_clean_exit("after q");
}
