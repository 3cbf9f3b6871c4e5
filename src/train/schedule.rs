//! Learning-rate schedules, evaluated per optimiser step.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    Constant,
    /// Linear decay to zero after warm-up (the original study's option).
    Linear,
    /// Cosine decay to zero after warm-up.
    Cosine,
}

impl std::str::FromStr for Schedule {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "constant" => Ok(Schedule::Constant),
            "linear" => Ok(Schedule::Linear),
            "cosine" => Ok(Schedule::Cosine),
            _ => Err(crate::Error::Config(format!(
                "unknown schedule '{s}' (constant, linear, cosine)"
            ))),
        }
    }
}

/// Learning rate at `step` (0-based) of `total` steps, with `warmup` linear warm-up steps.
pub fn learning_rate(
    schedule: Schedule,
    base: f64,
    step: usize,
    total: usize,
    warmup: usize,
) -> f64 {
    if step < warmup {
        return base * (step + 1) as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup).max(1) as f64;
    let progress = ((step - warmup) as f64 / span).clamp(0.0, 1.0);
    match schedule {
        Schedule::Constant => base,
        Schedule::Linear => base * (1.0 - progress),
        Schedule::Cosine => base * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_decay() {
        assert!((learning_rate(Schedule::Cosine, 1.0, 0, 100, 10) - 0.1).abs() < 1e-12);
        assert!((learning_rate(Schedule::Cosine, 1.0, 9, 100, 10) - 1.0).abs() < 1e-12);
        assert!((learning_rate(Schedule::Cosine, 1.0, 10, 100, 10) - 1.0).abs() < 1e-12);
        assert!(learning_rate(Schedule::Cosine, 1.0, 99, 100, 10) < 0.001);
        assert!((learning_rate(Schedule::Linear, 1.0, 55, 100, 10) - 0.5).abs() < 1e-12);
        assert_eq!(learning_rate(Schedule::Constant, 0.3, 80, 100, 0), 0.3);
    }
}
