//! The operating point: a threshold on the calibrated probability of the
//! positive class (melanoma), chosen for a target sensitivity on out-of-fold
//! predictions ([`crate::evaluate::operating_point`]), and what it kept.
//! Here it is stored, validated and applied: at or above the threshold a
//! case is "refer", below it "likely benign". An ensemble manifest carries
//! it as is.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatingPoint {
    /// Calibrated positive-class probability at or above which a case is referred.
    pub threshold: f64,
    /// Sensitivity the threshold was chosen for.
    pub target_sensitivity: f64,
    /// Sensitivity and specificity it had on the predictions it was chosen on.
    pub sensitivity: f64,
    pub specificity: f64,
    /// 95 % bootstrap intervals, when the chooser computed them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitivity_ci: Option<[f64; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub specificity_ci: Option<[f64; 2]>,
}

/// What the operating point says about one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Refer,
    LikelyBenign,
}

impl Decision {
    pub fn label(self) -> &'static str {
        match self {
            Decision::Refer => "refer",
            Decision::LikelyBenign => "likely benign",
        }
    }
}

impl OperatingPoint {
    /// The decision for a calibrated positive-class probability.
    pub fn decide(&self, probability: f64) -> Decision {
        if probability >= self.threshold {
            Decision::Refer
        } else {
            Decision::LikelyBenign
        }
    }

    /// Each value is a probability or a rate in [0, 1]; the message names the key.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let unit = |key: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(format!("{key} = {v} is outside [0, 1]"))
            }
        };
        unit("threshold", self.threshold)?;
        unit("target_sensitivity", self.target_sensitivity)?;
        unit("sensitivity", self.sensitivity)?;
        unit("specificity", self.specificity)?;
        for (key, ci) in [
            ("sensitivity_ci", self.sensitivity_ci),
            ("specificity_ci", self.specificity_ci),
        ] {
            if let Some([lo, hi]) = ci {
                unit(key, lo)?;
                unit(key, hi)?;
                if lo > hi {
                    return Err(format!("{key} = [{lo}, {hi}] has low > high"));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_is_inclusive() {
        let op = OperatingPoint {
            threshold: 0.3,
            target_sensitivity: 0.95,
            sensitivity: 0.96,
            specificity: 0.5,
            sensitivity_ci: None,
            specificity_ci: None,
        };
        assert_eq!(op.decide(0.3), Decision::Refer);
        assert_eq!(op.decide(0.29), Decision::LikelyBenign);
        assert_eq!(op.decide(0.9).label(), "refer");
    }
}
