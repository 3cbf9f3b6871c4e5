//! Range types and checks every settings section uses: a value outside its
//! allowed range is reported with its key, the value given and what is
//! allowed. Ground floor, so each module validates its own section.

use std::fmt;

use crate::error::Error;

/// A setting outside its allowed range: the key, the value given and what
/// is allowed. The key is the config key (`learning_rate`) until a caller
/// places it (`[train] learning_rate`, or a CLI flag such as `--lr`).
#[derive(Debug, Clone, PartialEq)]
pub struct OutOfRange {
    pub key: String,
    pub value: String,
    pub allowed: String,
}

impl OutOfRange {
    pub fn new(key: impl Into<String>, value: impl fmt::Display, allowed: &str) -> Self {
        OutOfRange {
            key: key.into(),
            value: value.to_string(),
            allowed: allowed.to_string(),
        }
    }

    /// The same error with `section` in front of the key.
    pub fn in_section(mut self, section: &str) -> Self {
        self.key = format!("{section} {}", self.key);
        self
    }

    /// The same error named after the CLI flag that set the value, when the
    /// key is one of `flags` (`(key, flag)` pairs), else placed in `section`.
    pub fn for_flags(self, flags: &[(&str, &str)], section: &str) -> Self {
        match flags.iter().find(|(key, _)| *key == self.key) {
            Some((_, flag)) => OutOfRange {
                key: (*flag).to_string(),
                ..self
            },
            None => self.in_section(section),
        }
    }
}

impl fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {}: must be {}", self.key, self.value, self.allowed)
    }
}

impl std::error::Error for OutOfRange {}

impl From<OutOfRange> for Error {
    fn from(e: OutOfRange) -> Self {
        Error::Config(e.to_string())
    }
}

/// Range checks shared by the settings structs.
pub mod check {
    use super::OutOfRange;

    pub type Checked = std::result::Result<(), OutOfRange>;

    /// Finite and strictly positive (learning rates, temperatures).
    pub fn positive(key: &str, v: f64) -> Checked {
        if v.is_finite() && v > 0.0 {
            Ok(())
        } else {
            Err(OutOfRange::new(key, v, "finite and > 0"))
        }
    }

    /// Finite and zero or positive (weight decay, gradient clipping).
    pub fn non_negative(key: &str, v: f64) -> Checked {
        if v.is_finite() && v >= 0.0 {
            Ok(())
        } else {
            Err(OutOfRange::new(key, v, "finite and >= 0"))
        }
    }

    /// A fraction strictly between 0 and 1.
    pub fn open_fraction(key: &str, v: f64) -> Checked {
        if v.is_finite() && v > 0.0 && v < 1.0 {
            Ok(())
        } else {
            Err(OutOfRange::new(key, v, "in (0, 1)"))
        }
    }

    /// A fraction in (0, 1] (a target rate that may be 100 %).
    pub fn half_open_fraction(key: &str, v: f64) -> Checked {
        if v.is_finite() && v > 0.0 && v <= 1.0 {
            Ok(())
        } else {
            Err(OutOfRange::new(key, v, "in (0, 1]"))
        }
    }

    /// A whole number in `lo..=hi`.
    pub fn within<T>(key: &str, v: T, lo: T, hi: T) -> Checked
    where
        T: PartialOrd + std::fmt::Display,
    {
        if v >= lo && v <= hi {
            Ok(())
        } else {
            Err(OutOfRange::new(key, v, &format!("in {lo}..={hi}")))
        }
    }

    /// A whole number of at least `lo`.
    pub fn at_least(key: &str, v: usize, lo: usize) -> Checked {
        if v >= lo {
            Ok(())
        } else {
            Err(OutOfRange::new(key, v, &format!(">= {lo}")))
        }
    }

    /// A name that becomes one file or folder name: not empty, no path
    /// separators, not `.` or `..`.
    pub fn file_name(key: &str, name: &str) -> Checked {
        let bad = name.is_empty()
            || name == "."
            || name == ".."
            || name.contains(['/', '\\'])
            || name.chars().any(char::is_control);
        if bad {
            Err(OutOfRange::new(
                key,
                format!("{name:?}"),
                "a non-empty file name without path separators",
            ))
        } else {
            Ok(())
        }
    }
}
