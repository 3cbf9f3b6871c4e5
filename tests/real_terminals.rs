//! The real binary in real terminal emulators, checked from screenshots.
//!
//! tmux and `TestBackend` cannot show what a terminal does with image
//! escapes: xterm showed a strip of half blocks beside every sixel image and
//! kitty 0.26 drew a grid of placeholder glyphs. These tests start an X
//! server (Xvfb), open xterm (sixel) or kitty (Debian's 0.26) on it running
//! `melxai`, directly, over a real sshd on the loopback, and inside tmux,
//! drive it with xdotool, and read screenshots: the photo's colours must fill
//! one solid rectangle per quadrant, nothing photo-coloured or bar-like may
//! sit beside it, the image must be real pixels where a protocol is expected
//! (a gradient changes every pixel row) or half blocks where not (it changes
//! every half cell), and after moving to the next sample the old image must
//! be gone.
//!
//! Needs Xvfb, xterm, kitty, xdotool, ImageMagick's `import`, sshd and tmux
//! (`apt-get install -y xvfb xterm kitty xdotool imagemagick openssh-server
//! x11-apps tmux`; `.ci/run` installs them). A missing tool skips the test
//! and prints `SKIPPED: <tool> not installed` (`make test` ends with the
//! count of skipped ones), or fails it when `MELXAI_REQUIRE_REAL_TERMINALS`
//! is set (`make test-full` and CI set it). `MELXAI_SHOTS_DIR=dir` keeps the screenshots.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use image::{Rgb, RgbImage};

const BIN: &str = env!("CARGO_BIN_EXE_melxai");
/// One terminal at a time: these tests are timing-sensitive on small machines.
static SERIAL: Mutex<()> = Mutex::new(());

const RED: [u8; 3] = [215, 0, 0];
const GREEN: [u8; 3] = [0, 175, 0];
const BLUE: [u8; 3] = [0, 0, 215];
const ORANGE: [u8; 3] = [255, 135, 0];
/// The light theme's badge background (palette 25) and the dark one's (81).
const LIGHT_BADGE: [u8; 3] = [0, 95, 175];
const DARK_BADGE: [u8; 3] = [95, 215, 255];

// ----- tools ------------------------------------------------------------

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `Some(reason)` when a tool is missing; fails instead under CI.
fn missing(tools: &[&str]) -> Option<String> {
    let absent: Vec<&str> = tools.iter().copied().filter(|t| !have(t)).collect();
    if absent.is_empty() {
        return None;
    }
    let why = format!(
        "{} not installed (`make test-full` installs what is missing; or apt-get install -y xvfb xterm kitty \
         xdotool imagemagick openssh-server tmux)",
        absent.join(", ")
    );
    if std::env::var_os("MELXAI_REQUIRE_REAL_TERMINALS").is_some() {
        panic!("MELXAI_REQUIRE_REAL_TERMINALS is set but {why}");
    }
    Some(why)
}

macro_rules! skip_unless {
    ($name:expr, $($tool:expr),+) => {
        if let Some(why) = missing(&[$($tool),+]) {
            common::report_skip(&format!("real_terminals::{}", $name), &why);
            return;
        }
    };
}

/// A child process killed (and reaped) on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// ----- X server -----------------------------------------------------------

struct Xvfb {
    display: String,
    _proc: Proc,
}

impl Xvfb {
    fn start() -> Xvfb {
        let n = (90..400)
            .find(|n| {
                !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                    && !Path::new(&format!("/tmp/.X{n}-lock")).exists()
            })
            .expect("a free X display number");
        let display = format!(":{n}");
        let child = Command::new("Xvfb")
            .args([&display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting Xvfb");
        let proc = Proc(child);
        let socket = format!("/tmp/.X11-unix/X{n}");
        let t = Instant::now();
        while !Path::new(&socket).exists() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "Xvfb {display} did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Xvfb {
            display,
            _proc: proc,
        }
    }

    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("DISPLAY", &self.display);
        c
    }

    fn screenshot(&self, path: &Path) -> RgbImage {
        let out = self
            .cmd("import")
            .args(["-window", "root"])
            .arg(path)
            .output()
            .expect("running import");
        assert!(
            out.status.success(),
            "import: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        image::open(path).expect("reading the screenshot").to_rgb8()
    }

    /// Focuses the (only) terminal window and types keys into it.
    fn keys(&self, keys: &[&str]) {
        let out = self
            .cmd("xdotool")
            .args(["search", "--sync", "--onlyvisible", "--name", "."])
            .output()
            .expect("xdotool search");
        let window = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        assert!(!window.is_empty(), "no terminal window found");
        for k in keys {
            let st = self
                .cmd("xdotool")
                .args(["windowfocus", "--sync", &window, "key", k])
                .status()
                .expect("xdotool key");
            assert!(st.success(), "xdotool key {k}");
            std::thread::sleep(Duration::from_millis(150));
        }
    }
}

// ----- the app's files ------------------------------------------------------

/// A photo whose quadrants are red, green, blue and a vertical gradient
/// (colours of the xterm 256-colour cube, so quantising keeps them).
fn quad_photo() -> RgbImage {
    RgbImage::from_fn(240, 240, |x, y| match (x < 120, y < 120) {
        (true, true) => Rgb(RED),
        (false, true) => Rgb(GREEN),
        (true, false) => Rgb(BLUE),
        (false, false) => {
            let t = (y - 120) as f32 / 119.0;
            let mix = |a: f32, b: f32| (a + (b - a) * t).round() as u8;
            Rgb([mix(255.0, 95.0), mix(215.0, 0.0), mix(0.0, 135.0)])
        }
    })
}

fn setup(dir: &Path) {
    let data = dir.join("data");
    std::fs::create_dir_all(data.join("melanoma")).unwrap();
    std::fs::create_dir_all(data.join("naevus")).unwrap();
    std::fs::create_dir_all(dir.join("weights")).unwrap();
    quad_photo().save(data.join("melanoma/m_quad.png")).unwrap();
    RgbImage::from_pixel(200, 160, Rgb(ORANGE))
        .save(data.join("naevus/n_orange.png"))
        .unwrap();
    std::fs::write(
        dir.join("config.toml"),
        format!(
            "device = \"cpu\"\n[data]\nroot = \"{}\"\npositive_class = \"melanoma\"\n\
             [model]\narch = \"lite0\"\nweights_dir = \"{}\"\n",
            data.display(),
            dir.join("weights").display()
        ),
    )
    .unwrap();
}

/// The shell command that runs melxai and records its exit status.
fn app_command(dir: &Path) -> String {
    format!(
        "cd '{d}' && '{BIN}' --config config.toml 2>'{d}/stderr.log'; echo \"EXIT $?\" > '{d}/exit'",
        d = dir.display()
    )
}

// ----- sshd -----------------------------------------------------------------

/// An sshd on a free loopback port, as the current user, with throwaway keys.
struct Sshd {
    port: u16,
    key: PathBuf,
    user: String,
    _proc: Proc,
}

impl Sshd {
    fn start(dir: &Path) -> Sshd {
        let keygen = |path: &Path| {
            let st = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(path)
                .status()
                .expect("ssh-keygen");
            assert!(st.success(), "ssh-keygen failed");
        };
        let host = dir.join("host_key");
        let key = dir.join("client_key");
        keygen(&host);
        keygen(&key);
        std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nPidFile {dir}/sshd.pid\n\
                 AuthorizedKeysFile {dir}/authorized_keys\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPermitRootLogin yes\n",
                host = host.display(),
                dir = dir.display()
            ),
        )
        .unwrap();
        // Privilege separation needs this directory when sshd runs as root.
        let _ = std::fs::create_dir_all("/run/sshd");
        let sshd = ["/usr/sbin/sshd", "/usr/bin/sshd"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("sshd");
        let child = Command::new(sshd)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("sshd.log")).unwrap())
            .spawn()
            .expect("starting sshd");
        let proc = Proc(child);
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "sshd did not listen: {}",
                std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string();
        Sshd {
            port,
            key,
            user,
            _proc: proc,
        }
    }

    /// `ssh -tt` running `remote` (one shell word, quoted here).
    fn wrap(&self, remote: &str) -> String {
        format!(
            "ssh -tt -F /dev/null -i '{key}' -p {port} -o StrictHostKeyChecking=no \
             -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes {user}@127.0.0.1 {q}",
            key = self.key.display(),
            port = self.port,
            user = self.user,
            q = shell_quote(remote)
        )
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Kills the test's tmux server when dropped: on a failed run the terminal
/// is killed, but a tmux server (and melxai in it) would live on.
struct TmuxServer(PathBuf);

impl Drop for TmuxServer {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.0)
            .arg("kill-server")
            .env_remove("TMUX")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// tmux with its own socket and config around `inner`.
fn tmux_wrap(dir: &Path, passthrough: bool, inner: &str) -> String {
    let conf = dir.join("tmux.conf");
    std::fs::write(
        &conf,
        format!(
            "set -g status off\nset -g escape-time 0\nset -g default-terminal tmux-256color\n\
             set -g allow-passthrough {}\n",
            if passthrough { "on" } else { "off" }
        ),
    )
    .unwrap();
    format!(
        "env -u TMUX tmux -u -S '{}' -f '{}' new-session {}",
        dir.join("tmux.sock").display(),
        conf.display(),
        shell_quote(inner)
    )
}

// ----- terminals --------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Emulator {
    /// xterm as a VT340 with 256 sixel colour registers; black on white
    /// (its default) or, `dark`, white on black (`-rv`).
    Xterm { dark: bool },
    /// kitty; white on black (its default) or, `light`, black on white.
    Kitty { light: bool },
}

fn start_terminal(x: &Xvfb, emulator: Emulator, command: &str, dir: &Path) -> Proc {
    let mut c = match emulator {
        Emulator::Xterm { dark } => {
            let mut c = x.cmd("xterm");
            if dark {
                c.arg("-rv");
            }
            c.args([
                "-geometry",
                "120x36+0+0",
                "-xrm",
                "XTerm*decTerminalID: 340",
                "-xrm",
                "XTerm*numColorRegisters: 256",
                "-e",
                "sh",
                "-c",
                command,
            ]);
            c
        }
        Emulator::Kitty { light } => {
            let mut c = x.cmd("kitty");
            if light {
                c.args(["-o", "background=#ffffff", "-o", "foreground=#000000"]);
            }
            c.args([
                "--config",
                "NONE",
                "-o",
                "font_size=10",
                "-o",
                "initial_window_width=1000",
                "-o",
                "initial_window_height=600",
                "-o",
                "remember_window_size=no",
                "sh",
                "-c",
                command,
            ]);
            c
        }
    };
    c.env_remove("TMUX")
        .env_remove("KITTY_WINDOW_ID")
        .env("LANG", "C.UTF-8")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("terminal.log")).unwrap());
    Proc(c.spawn().expect("starting the terminal"))
}

// ----- reading screenshots ---------------------------------------------------

fn close(p: &Rgb<u8>, c: [u8; 3], tol: i32) -> bool {
    p.0.iter()
        .zip(c)
        .all(|(&a, b)| (a as i32 - b as i32).abs() <= tol)
}

/// "Photo-like": a saturated colour (UI text and backgrounds are grey here,
/// apart from small coloured labels).
fn saturated(p: &Rgb<u8>) -> bool {
    let (mx, mn) = (p.0.iter().max().unwrap(), p.0.iter().min().unwrap());
    (*mx as i32 - *mn as i32) > 60
}

#[derive(Debug, Clone, Copy)]
struct Blob {
    x0: u32,
    y0: u32,
    x1: u32,
    y1: u32,
    count: u32,
}

impl Blob {
    fn area(&self) -> u32 {
        (self.x1 - self.x0 + 1) * (self.y1 - self.y0 + 1)
    }
    /// Share of the bounding box in the colour: ~1 for a clean solid patch.
    fn fill(&self) -> f64 {
        self.count as f64 / self.area() as f64
    }
}

/// The bounding box of the largest run of rows holding `c`: found as the
/// bounding box of all matching pixels, which is what a clean image gives.
fn blob(img: &RgbImage, c: [u8; 3]) -> Option<Blob> {
    let mut b: Option<Blob> = None;
    for (x, y, p) in img.enumerate_pixels() {
        if close(p, c, 30) {
            let e = b.get_or_insert(Blob {
                x0: x,
                y0: y,
                x1: x,
                y1: y,
                count: 0,
            });
            e.x0 = e.x0.min(x);
            e.y0 = e.y0.min(y);
            e.x1 = e.x1.max(x);
            e.y1 = e.y1.max(y);
            e.count += 1;
        }
    }
    b
}

fn count(img: &RgbImage, c: [u8; 3]) -> u32 {
    img.pixels().filter(|p| close(p, c, 20)).count() as u32
}

/// Nothing photo-like and no bar in the pixel columns beside the image
/// (both sides) over its rows. A bar is three or more adjacent columns that
/// differ from the column farthest out (the tile's background); a one- or
/// two-pixel line is the tile's border, which narrow tiles put right next
/// to the image. The bars this guards against were a cell (6 px or more)
/// wide, so five columns are enough, and a wide image may leave no more.
fn assert_clean_sides(img: &RgbImage, x0: u32, x1: u32, y0: u32, y1: u32, what: &str) {
    const COLS: u32 = 5;
    let column_mean = |x: u32| {
        let mut s = [0u64; 3];
        for y in y0..=y1 {
            for (i, v) in img.get_pixel(x, y).0.iter().enumerate() {
                s[i] += *v as u64;
            }
        }
        let n = (y1 - y0 + 1) as u64;
        [s[0] / n, s[1] / n, s[2] / n]
    };
    let right: Vec<u32> = ((x1 + 2)..=(x1 + 1 + COLS).min(img.width() - 1)).collect();
    let left: Vec<u32> = (x0.saturating_sub(1 + COLS)..=x0.saturating_sub(2))
        .rev()
        .collect();
    for strip in [right, left] {
        let Some(&reference) = strip.last() else {
            continue;
        };
        let bg = column_mean(reference);
        let mut run = 0;
        for &x in &strip {
            let photo_like = (y0..=y1)
                .filter(|&y| saturated(img.get_pixel(x, y)))
                .count();
            assert!(
                photo_like * 100 <= (y1 - y0 + 1) as usize,
                "{what}: photo-coloured pixels in column {x} beside the image ({photo_like})"
            );
            let m = column_mean(x);
            let diff = (0..3)
                .map(|i| (m[i] as i64 - bg[i] as i64).abs())
                .max()
                .unwrap();
            run = if diff > 40 { run + 1 } else { 0 };
            assert!(
                run < 3,
                "{what}: columns up to {x} beside the image differ from the background \
                 ({m:?} vs {bg:?}): a bar"
            );
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Pixels {
    /// A graphics protocol drew the image.
    Real,
    /// Half blocks: two colours per cell.
    HalfBlocks,
}

/// Checks the quadrant photo; returns how it was drawn.
fn check_quad(img: &RgbImage, what: &str) -> Pixels {
    let (Some(r), Some(g), Some(b)) = (blob(img, RED), blob(img, GREEN), blob(img, BLUE)) else {
        panic!("{what}: the photo's red, green and blue quadrants are not all on screen");
    };
    for (name, q) in [("red", r), ("green", g), ("blue", b)] {
        assert!(q.count > 400, "{what}: {name} quadrant too small: {q:?}");
        assert!(
            q.fill() > 0.97,
            "{what}: {name} quadrant is not one solid rectangle (fill {:.3}, {q:?}): garbage over it",
            q.fill()
        );
    }
    // Quadrants adjacent: red | green on top, blue under red.
    assert!(
        g.x0.abs_diff(r.x1 + 1) <= 2 && g.y0.abs_diff(r.y0) <= 2,
        "{what}: {r:?} {g:?}"
    );
    assert!(
        b.y0.abs_diff(r.y1 + 1) <= 2 && b.x0.abs_diff(r.x0) <= 2,
        "{what}: {r:?} {b:?}"
    );
    let (x0, x1, y0, y1) = (r.x0, g.x1, r.y0, b.y1);
    // The gradient quadrant: saturated everywhere (no background, no bar).
    let grad: Vec<(u32, u32)> = (b.y0..=b.y1)
        .flat_map(|y| (g.x0..=g.x1).map(move |x| (x, y)))
        .collect();
    let sat = grad
        .iter()
        .filter(|(x, y)| saturated(img.get_pixel(*x, *y)))
        .count();
    assert!(
        sat * 100 >= grad.len() * 95,
        "{what}: gradient quadrant not filled ({sat} of {})",
        grad.len()
    );
    assert_clean_sides(img, x0, x1, y0, y1, what);
    // Rows of the gradient change every pixel when real, every half cell as
    // half blocks.
    let cx = (g.x0 + g.x1) / 2;
    let rows: Vec<&Rgb<u8>> = ((b.y0 + 2)..(b.y1 - 1))
        .map(|y| img.get_pixel(cx, y))
        .collect();
    let changes = rows
        .windows(2)
        .filter(|w| {
            w[0].0
                .iter()
                .zip(w[1].0)
                .any(|(a, b)| (*a as i32 - b as i32).abs() > 2)
        })
        .count();
    let ratio = changes as f64 / (rows.len() - 1) as f64;
    if ratio > 0.35 {
        Pixels::Real
    } else {
        Pixels::HalfBlocks
    }
}

fn wait_for_quad(x: &Xvfb, dir: &Path, shot: &Path, what: &str) -> RgbImage {
    let t = Instant::now();
    loop {
        let img = x.screenshot(shot);
        if blob(&img, RED).is_some_and(|b| b.count > 400)
            && blob(&img, BLUE).is_some_and(|b| b.count > 400)
        {
            // One more frame's time for the protocol image to settle.
            std::thread::sleep(Duration::from_millis(700));
            return x.screenshot(shot);
        }
        if t.elapsed() > Duration::from_secs(30) {
            panic!(
                "{what}: no photo on screen after 30 s (stderr: {}; terminal: {})",
                std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default(),
                std::fs::read_to_string(dir.join("terminal.log")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn keep(shot: &Path, name: &str) {
    if let Some(d) = std::env::var_os("MELXAI_SHOTS_DIR") {
        let d = PathBuf::from(d);
        let _ = std::fs::create_dir_all(&d);
        let _ = std::fs::copy(shot, d.join(format!("{name}.png")));
    }
}

enum Route {
    Direct,
    Ssh,
    Tmux { passthrough: bool },
    SshTmux { passthrough: bool },
}

/// Opens the app in `emulator` by `route`, checks the first photo, moves to
/// the second, checks it and that the first is gone, quits, checks the exit.
/// `badge`: the theme's badge colour expected on screen (`None` where the
/// terminal, like tmux, does not report its background and the terminal's
/// own colours are used).
fn scenario(name: &str, emulator: Emulator, route: Route, expect: Pixels, badge: Option<[u8; 3]>) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    setup(dir);
    let app = app_command(dir);
    let mut sshd = None;
    let _tmux = matches!(route, Route::Tmux { .. } | Route::SshTmux { .. })
        .then(|| TmuxServer(dir.join("tmux.sock")));
    let command = match route {
        Route::Direct => app,
        Route::Ssh => {
            let s = Sshd::start(dir);
            let c = s.wrap(&app);
            sshd = Some(s);
            c
        }
        Route::Tmux { passthrough } => tmux_wrap(dir, passthrough, &app),
        Route::SshTmux { passthrough } => {
            let s = Sshd::start(dir);
            let c = s.wrap(&tmux_wrap(dir, passthrough, &app));
            sshd = Some(s);
            c
        }
    };
    let x = Xvfb::start();
    let _term = start_terminal(&x, emulator, &command, dir);
    let shot = dir.join("shot.png");

    let img = wait_for_quad(&x, dir, &shot, name);
    keep(&shot, &format!("{name}-photo"));
    let pixels = check_quad(&img, name);
    assert_eq!(pixels, expect, "{name}: the photo was drawn as {pixels:?}");
    if let Some(badge) = badge {
        assert!(
            count(&img, badge) > 50,
            "{name}: the theme for this background (badge {badge:?}) is not on screen"
        );
    }

    // Next sample: the orange photo replaces the quadrants entirely.
    x.keys(&["j"]);
    let t = Instant::now();
    let img = loop {
        let img = x.screenshot(&shot);
        if blob(&img, ORANGE).is_some_and(|b| b.count > 400) && blob(&img, RED).is_none() {
            std::thread::sleep(Duration::from_millis(500));
            break x.screenshot(&shot);
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "{name}: after j the orange photo did not replace the first one"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    keep(&shot, &format!("{name}-next"));
    let o = blob(&img, ORANGE).unwrap();
    assert!(
        o.fill() > 0.97,
        "{name}: orange photo not solid: {o:?} fill {:.3}",
        o.fill()
    );
    for (c, n) in [(RED, "red"), (GREEN, "green"), (BLUE, "blue")] {
        assert!(
            count(&img, c) < 50,
            "{name}: {n} pixels of the previous photo remain"
        );
    }
    assert_clean_sides(&img, o.x0, o.x1, o.y0, o.y1, name);

    x.keys(&["q"]);
    let t = Instant::now();
    let exit = loop {
        if let Ok(s) = std::fs::read_to_string(dir.join("exit")) {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "{name}: melxai did not quit on q"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        exit.trim(),
        "EXIT 0",
        "{name}: {}",
        std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default()
    );
    drop(sshd);
    eprintln!(
        "{name}: {expect:?}, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

// ----- the runs --------------------------------------------------------------

#[test]
fn xterm_sixel_shows_clean_pixels() {
    skip_unless!("xterm_sixel", "Xvfb", "xterm", "xdotool", "import");
    // xterm's default background is white: the light theme.
    scenario(
        "xterm-sixel",
        Emulator::Xterm { dark: false },
        Route::Direct,
        Pixels::Real,
        Some(LIGHT_BADGE),
    );
}

#[test]
fn kitty_0_26_falls_back_to_clean_half_blocks() {
    skip_unless!("kitty", "Xvfb", "kitty", "xdotool", "import");
    scenario(
        "kitty",
        Emulator::Kitty { light: false },
        Route::Direct,
        kitty_expectation(),
        Some(DARK_BADGE),
    );
}

/// Half blocks for kitty before 0.28 (no Unicode placeholders), pixels after.
fn kitty_expectation() -> Pixels {
    let version = Command::new("kitty")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    let parts: Vec<u32> = version
        .split_whitespace()
        .nth(1)
        .unwrap_or("0")
        .split('.')
        .map(|p| p.parse().unwrap_or(0))
        .collect();
    if parts.as_slice() >= [0, 28].as_slice() {
        Pixels::Real
    } else {
        Pixels::HalfBlocks
    }
}

#[test]
fn xterm_over_ssh_shows_clean_pixels() {
    skip_unless!(
        "xterm_over_ssh",
        "Xvfb",
        "xterm",
        "xdotool",
        "import",
        "sshd",
        "ssh",
        "ssh-keygen"
    );
    scenario(
        "xterm-ssh",
        Emulator::Xterm { dark: false },
        Route::Ssh,
        Pixels::Real,
        Some(LIGHT_BADGE),
    );
}

#[test]
fn tmux_without_passthrough_uses_half_blocks() {
    skip_unless!(
        "tmux_without_passthrough",
        "Xvfb",
        "xterm",
        "xdotool",
        "import",
        "tmux"
    );
    scenario(
        "xterm-tmux-nopassthrough",
        Emulator::Xterm { dark: false },
        Route::Tmux { passthrough: false },
        Pixels::HalfBlocks,
        // tmux 3.3 does not answer OSC 11: the terminal's own colours.
        None,
    );
}

#[test]
fn tmux_over_ssh_with_passthrough() {
    skip_unless!(
        "tmux_over_ssh",
        "Xvfb",
        "xterm",
        "xdotool",
        "import",
        "tmux",
        "sshd",
        "ssh",
        "ssh-keygen"
    );
    // Sixel through tmux's passthrough is painted over by tmux (a blank tile
    // in xterm + tmux 3.3a), so even with passthrough on: clean half blocks.
    scenario(
        "xterm-ssh-tmux-passthrough",
        Emulator::Xterm { dark: false },
        Route::SshTmux { passthrough: true },
        Pixels::HalfBlocks,
        None,
    );
}

#[test]
fn xterm_dark_background_gets_the_dark_theme() {
    skip_unless!("xterm_dark", "Xvfb", "xterm", "xdotool", "import");
    scenario(
        "xterm-sixel-dark",
        Emulator::Xterm { dark: true },
        Route::Direct,
        Pixels::Real,
        Some(DARK_BADGE),
    );
}

#[test]
fn kitty_light_background_gets_the_light_theme() {
    skip_unless!("kitty_light", "Xvfb", "kitty", "xdotool", "import");
    scenario(
        "kitty-light",
        Emulator::Kitty { light: true },
        Route::Direct,
        kitty_expectation(),
        Some(LIGHT_BADGE),
    );
}

// ----- heatmaps and the overlay -------------------------------------------------

/// Runs of pixel columns, right of `from_x`, where at least 90 % of the rows
/// `y0..=y1` are image pixels; `(start, end)` inclusive. One- or two-pixel
/// runs (the tiles' border lines) are left out.
fn image_column_runs(
    img: &RgbImage,
    from_x: u32,
    y0: u32,
    y1: u32,
    image_pixel: &dyn Fn(&Rgb<u8>) -> bool,
) -> Vec<(u32, u32)> {
    let rows = (y1 - y0 + 1) as usize;
    let is_image = |x: u32| {
        let sat = (y0..=y1)
            .filter(|&y| image_pixel(img.get_pixel(x, y)))
            .count();
        sat * 10 >= rows * 9
    };
    let mut runs = Vec::new();
    let mut start = None;
    // The terminal's window ends at its last white (page) pixel on row y0;
    // the root window is black beyond it.
    let end = (0..img.width())
        .rev()
        .find(|&x| img.get_pixel(x, y0).0.iter().all(|&c| c > 240))
        .map_or(img.width(), |x| x + 1);
    for x in from_x..end {
        match (is_image(x), start) {
            (true, None) => start = Some(x),
            (false, Some(s)) => {
                runs.push((s, x - 1));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        runs.push((s, end - 1));
    }
    runs.retain(|(a, b)| b - a + 1 >= 3);
    runs
}

/// Heatmaps beside the photo: viridis and the quadrants are all saturated.
fn saturated_pixel(p: &Rgb<u8>) -> bool {
    saturated(p)
}

/// Overlays on a white page: a blend of green and dark viridis is barely
/// saturated, but far from white (and from the grey borders, a line thin
/// enough to be left out).
fn not_white(p: &Rgb<u8>) -> bool {
    p.0.iter().any(|&c| c < 200)
}

/// Photo plus three heatmaps: four image blocks (at least half the photo's width) in the
/// photo's rows, with nothing photo-like between or beside them.
fn check_tiles(
    img: &RgbImage,
    photo_x0: u32,
    photo_w: u32,
    y0: u32,
    y1: u32,
    image_pixel: &dyn Fn(&Rgb<u8>) -> bool,
    what: &str,
) {
    let runs = image_column_runs(img, photo_x0.saturating_sub(4), y0 + 2, y1 - 2, image_pixel);
    let wide: Vec<&(u32, u32)> = runs
        .iter()
        .filter(|(a, b)| b - a + 1 >= photo_w / 2)
        .collect();
    assert_eq!(
        wide.len(),
        4,
        "{what}: expected the photo and three heatmaps as four clean image blocks, got {runs:?}"
    );
    // Tiles differ in width, so do the images; each block is checked alone.
    for (a, b) in &wide {
        assert_clean_sides(img, *a, *b, y0 + 2, y1 - 2, what);
    }
    // Stray image columns (a strip beside an image) would be short runs.
    assert_eq!(runs.len(), 4, "{what}: stray image columns: {runs:?}");
}

#[test]
fn xterm_heatmaps_and_overlay_are_clean() {
    skip_unless!("xterm_heatmaps", "Xvfb", "xterm", "xdotool", "import");
    let name = "xterm-sixel-heatmaps";
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    setup(dir);
    // Enough images to train on for two epochs; the quadrant photo sorts first.
    std::fs::rename(
        dir.join("data/melanoma/m_quad.png"),
        dir.join("data/melanoma/a_quad.png"),
    )
    .unwrap();
    common::dataset::make(&dir.join("data"), 8, 40);
    let imagenet = "efficientnet-lite0-imagenet.safetensors";
    #[cfg(unix)]
    std::os::unix::fs::symlink(
        common::weights_dir().join(imagenet),
        dir.join("weights").join(imagenet),
    )
    .unwrap();
    #[cfg(not(unix))]
    std::fs::copy(
        common::weights_dir().join(imagenet),
        dir.join("weights").join(imagenet),
    )
    .unwrap();
    let mut config = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    config.push_str(
        "[train]\nname = \"rt\"\ninput_size = 32\nepochs = 2\nbatch_size = 8\npatience = 0\n",
    );
    std::fs::write(dir.join("config.toml"), config).unwrap();

    let x = Xvfb::start();
    let _term = start_terminal(&x, Emulator::Xterm { dark: false }, &app_command(dir), dir);
    let shot = dir.join("shot.png");
    wait_for_quad(&x, dir, &shot, name);

    x.keys(&["t"]);
    let checkpoint = dir.join("weights/rt.safetensors");
    let t = Instant::now();
    while !checkpoint.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "{name}: training did not finish in 60 s"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // The TUI does not adopt a checkpoint trained in the session (it stays
    // "no checkpoint"); a restart picks it up as `[train] name`.
    std::thread::sleep(Duration::from_millis(1000));
    x.keys(&["q"]);
    let t = Instant::now();
    while !dir.join("exit").exists() {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "{name}: melxai did not quit on q"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::remove_file(dir.join("exit")).unwrap();
    drop(_term);
    let _term = start_terminal(&x, Emulator::Xterm { dark: false }, &app_command(dir), dir);
    wait_for_quad(&x, dir, &shot, name);
    // `e` is refused while the start-up evaluation runs: press it again
    // every few seconds until heatmaps appear.
    let t = Instant::now();
    let mut pressed = Instant::now() - Duration::from_secs(60);
    let img = loop {
        if pressed.elapsed() > Duration::from_secs(6) {
            x.keys(&["e"]);
            pressed = Instant::now();
        }
        let img = x.screenshot(&shot);
        let quad = blob(&img, RED).zip(blob(&img, GREEN)).zip(blob(&img, BLUE));
        if let Some(((r2, g2), b2)) = quad {
            let (y0, y1, w) = (r2.y0, b2.y1, g2.x1 - r2.x0 + 1);
            let runs = image_column_runs(
                &img,
                r2.x0.saturating_sub(4),
                y0 + 2,
                y1 - 2,
                &saturated_pixel,
            );
            if runs.iter().filter(|(a, b)| b - a + 1 >= w / 2).count() >= 4 {
                std::thread::sleep(Duration::from_millis(700));
                break x.screenshot(&shot);
            }
        }
        if t.elapsed() > Duration::from_secs(45) {
            keep(&shot, &format!("{name}-timeout"));
            panic!("{name}: no heatmaps on screen 45 s after e");
        }
        std::thread::sleep(Duration::from_millis(400));
    };
    keep(&shot, &format!("{name}-beside"));
    let pixels = check_quad(&img, name);
    assert_eq!(pixels, Pixels::Real, "{name}");
    let (r, g, b) = (
        blob(&img, RED).unwrap(),
        blob(&img, GREEN).unwrap(),
        blob(&img, BLUE).unwrap(),
    );
    check_tiles(
        &img,
        r.x0,
        g.x1 - r.x0 + 1,
        r.y0,
        b.y1,
        &saturated_pixel,
        name,
    );

    // Overlay: each heatmap over the photo, same blocks, still clean.
    x.keys(&["o"]);
    std::thread::sleep(Duration::from_millis(1500));
    let img = x.screenshot(&shot);
    keep(&shot, &format!("{name}-overlay"));
    let (r, g, b) = (
        blob(&img, RED).unwrap(),
        blob(&img, GREEN).unwrap(),
        blob(&img, BLUE).unwrap(),
    );
    check_tiles(
        &img,
        r.x0,
        g.x1 - r.x0 + 1,
        r.y0,
        b.y1,
        &not_white,
        &format!("{name} overlay"),
    );

    x.keys(&["q"]);
    let t = Instant::now();
    while !dir.join("exit").exists() {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "{name}: melxai did not quit on q"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let exit = std::fs::read_to_string(dir.join("exit")).unwrap();
    assert_eq!(exit.trim(), "EXIT 0", "{name}");
    eprintln!("{name}: {:.1} s", started.elapsed().as_secs_f64());
}
