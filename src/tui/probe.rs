//! What the terminal says about itself: background colour and name/version.
//!
//! Three queries go out at once, before the UI reads any input: OSC 11 (the
//! background colour, for the theme), XTVERSION (`CSI > 0 q`, the terminal's
//! name and version, since kitty's Unicode placeholders exist only from 0.28)
//! and DA1 (`CSI c`), which every terminal answers, so its reply ends the
//! wait without running into the timeout when the other two go unanswered.
//! The replies are parsed by pure functions, tested without a terminal.

use std::io::Write;
use std::time::{Duration, Instant};

/// How long to wait for the replies. Every terminal answers DA1, which ends
/// the wait after one round trip, so this is paid only by a terminal that
/// answers nothing; it is long because a reply arriving after the UI reads
/// input would be taken for key presses (`kitty(0.26.5)` holds `k` and `t`).
pub const PROBE_TIMEOUT_MS: u64 = 1000;

/// The queries: OSC 11, XTVERSION, DA1.
const QUERY: &[u8] = b"\x1b]11;?\x1b\\\x1b[>0q\x1b[c";

/// What the terminal answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TerminalReplies {
    /// Background colour (8 bits a channel).
    pub background: Option<[u8; 3]>,
    /// The XTVERSION string, e.g. `kitty(0.26.5)` or `XTerm(379)`.
    pub version: Option<String>,
    /// Whether the DA1 reply (the end marker) was seen.
    pub complete: bool,
}

/// Sends the queries and reads the replies from stdin (raw mode must be on).
/// Gives up after `timeout`; never fails, an unanswered query is `None`.
#[cfg(unix)]
pub fn query_terminal(timeout: Duration) -> TerminalReplies {
    let mut out = std::io::stdout();
    if out.write_all(QUERY).and_then(|_| out.flush()).is_err() {
        return TerminalReplies::default();
    }
    let start = Instant::now();
    let mut bytes = Vec::new();
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            break;
        }
        let mut pfd = libc::pollfd {
            fd: libc::STDIN_FILENO,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, count 1.
        let ready = unsafe { libc::poll(&mut pfd, 1, left.as_millis().max(1) as libc::c_int) };
        if ready <= 0 {
            break;
        }
        let mut chunk = [0u8; 256];
        // SAFETY: reads at most chunk.len() bytes into chunk.
        let n = unsafe { libc::read(libc::STDIN_FILENO, chunk.as_mut_ptr().cast(), chunk.len()) };
        if n <= 0 {
            break;
        }
        bytes.extend_from_slice(&chunk[..n as usize]);
        if parse_replies(&bytes).complete {
            break;
        }
    }
    parse_replies(&bytes)
}

#[cfg(not(unix))]
pub fn query_terminal(_timeout: Duration) -> TerminalReplies {
    TerminalReplies::default()
}

/// Parses whatever part of the three replies is in `bytes`.
pub fn parse_replies(bytes: &[u8]) -> TerminalReplies {
    let text = String::from_utf8_lossy(bytes);
    let mut out = TerminalReplies::default();
    // OSC 11 ; rgb:RRRR/GGGG/BBBB (ST or BEL).
    if let Some(i) = text.find("\x1b]11;") {
        let rest = &text[i + 5..];
        let end = rest.find(['\x07', '\x1b']).unwrap_or(rest.len());
        out.background = parse_colour(&rest[..end]);
    }
    // DCS > | text ST.
    if let Some(i) = text.find("\x1bP>|") {
        let rest = &text[i + 4..];
        if let Some(end) = rest.find('\x1b') {
            out.version = Some(rest[..end].to_string());
        }
    }
    // CSI ? ... c
    if let Some(i) = text.find("\x1b[?") {
        let rest = &text[i + 3..];
        out.complete = rest
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_digit() || *c == ';'))
            .is_some_and(|(_, c)| c == 'c');
    }
    out
}

/// `rgb:R/G/B` with 1–4 hex digits a channel (X11 colour syntax).
fn parse_colour(s: &str) -> Option<[u8; 3]> {
    let s = s.strip_prefix("rgba:").or_else(|| s.strip_prefix("rgb:"))?;
    let mut parts = s.split('/');
    let mut rgb = [0u8; 3];
    for c in &mut rgb {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 4 {
            return None;
        }
        let v = u32::from_str_radix(p, 16).ok()?;
        let max = (1u32 << (4 * p.len())) - 1;
        *c = ((v * 255 + max / 2) / max) as u8;
    }
    Some(rgb)
}

/// Terminal name and version from an XTVERSION string: `kitty(0.26.5)` →
/// ("kitty", [0, 26, 5]); `tmux 3.3a` → ("tmux", [3, 3]).
pub fn name_and_version(xtversion: &str) -> (String, Vec<u32>) {
    let s = xtversion.trim();
    let split = s.find(['(', ' ']).unwrap_or(s.len());
    let name = s[..split].to_string();
    let version = s[split..]
        .trim_matches(|c: char| c == '(' || c == ')' || c.is_whitespace())
        .split('.')
        .map_while(|p| {
            let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect();
    (name, version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kitty_replies() {
        let r =
            parse_replies(b"\x1b]11;rgb:ffff/ffff/ffff\x1b\\\x1bP>|kitty(0.26.5)\x1b\\\x1b[?62;c");
        assert_eq!(r.background, Some([255, 255, 255]));
        assert_eq!(r.version.as_deref(), Some("kitty(0.26.5)"));
        assert!(r.complete);
    }

    #[test]
    fn parses_xterm_replies_with_bel_and_two_digit_channels() {
        let r = parse_replies(
            b"\x1b]11;rgb:00/2b/36\x07\x1bP>|XTerm(379)\x1b\\\x1b[?64;1;2;4;6;9;15;18;21;22c",
        );
        assert_eq!(r.background, Some([0, 43, 54]));
        assert_eq!(r.version.as_deref(), Some("XTerm(379)"));
        assert!(r.complete);
    }

    #[test]
    fn partial_or_missing_replies() {
        // Only DA1: a terminal that ignores OSC 11 and XTVERSION.
        let r = parse_replies(b"\x1b[?1;2c");
        assert_eq!(
            r,
            TerminalReplies {
                background: None,
                version: None,
                complete: true
            }
        );
        // Cut off mid-reply: nothing invented.
        let r = parse_replies(b"\x1b]11;rgb:ff");
        assert_eq!(r.background, None);
        assert!(!r.complete);
        assert_eq!(parse_replies(b""), TerminalReplies::default());
        assert_eq!(parse_colour("rgb:zz/00/00"), None);
    }

    #[test]
    fn versions() {
        assert_eq!(
            name_and_version("kitty(0.26.5)"),
            ("kitty".into(), vec![0, 26, 5])
        );
        assert_eq!(
            name_and_version("kitty(0.32.2)"),
            ("kitty".into(), vec![0, 32, 2])
        );
        assert_eq!(name_and_version("tmux 3.3a"), ("tmux".into(), vec![3, 3]));
        assert_eq!(name_and_version("XTerm(379)"), ("XTerm".into(), vec![379]));
        assert_eq!(
            name_and_version("WezTerm 20240203-110809-5046fc22"),
            ("WezTerm".into(), vec![20240203])
        );
    }
}
