//! The small enums and records of the UI state: filters, sort keys, panes,
//! agreement metrics, the job's status and the status line.

use crate::progress::JobKind;

/// Explanation methods in display order (engine names).
pub const METHODS: [&str; 3] = ["gradcam", "deeplift", "ig"];

/// Human-readable name of an explanation method.
pub fn method_title(method: &str) -> &str {
    match method {
        "gradcam" => "GradCAM",
        "deeplift" => "DeepLIFT",
        "ig" => "Integrated Gradients",
        other => other,
    }
}

/// Which rows the sample list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    All,
    Misclassified,
    /// Calibrated probability within `uncertain_band` of 0.5, or (for an
    /// ensemble) predictive entropy of at least
    /// [`crate::verdict::uncertainty::UNCERTAIN_ENTROPY_NATS`].
    Uncertain,
    /// Agreement score below `agreement_threshold`.
    LowAgreement,
    /// A conformal prediction set of two classes or more: ambiguous at the
    /// promised coverage, so referred.
    SetOfTwo,
}

impl Filter {
    pub fn next(self) -> Self {
        match self {
            Filter::All => Filter::Misclassified,
            Filter::Misclassified => Filter::Uncertain,
            Filter::Uncertain => Filter::LowAgreement,
            Filter::LowAgreement => Filter::SetOfTwo,
            Filter::SetOfTwo => Filter::All,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Filter::All => "all",
            Filter::Misclassified => "misclassified",
            Filter::Uncertain => "uncertain",
            Filter::LowAgreement => "low agreement",
            Filter::SetOfTwo => "set of two",
        }
    }
}

/// Sort order of the sample list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Name,
    /// Calibrated probability, highest first; unpredicted rows last.
    Probability,
    /// Agreement score, lowest first (the interesting ones); unknown last.
    Agreement,
    /// Predictive entropy of the members' probabilities, highest first
    /// (the cases to refer first); unknown last.
    Uncertainty,
}

impl SortKey {
    pub fn next(self) -> Self {
        match self {
            SortKey::Name => SortKey::Probability,
            SortKey::Probability => SortKey::Agreement,
            SortKey::Agreement => SortKey::Uncertainty,
            SortKey::Uncertainty => SortKey::Name,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SortKey::Name => "name",
            SortKey::Probability => "probability",
            SortKey::Agreement => "agreement",
            SortKey::Uncertainty => "uncertainty",
        }
    }
}

/// The panes, in focus (Tab) order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pane {
    Samples,
    Images,
    Training,
    Calibration,
    Agreement,
}

impl Pane {
    pub const ALL: [Pane; 5] = [
        Pane::Samples,
        Pane::Images,
        Pane::Training,
        Pane::Calibration,
        Pane::Agreement,
    ];

    pub fn next(self) -> Self {
        let i = Self::ALL.iter().position(|p| *p == self).unwrap_or(0);
        Self::ALL[(i + 1) % Self::ALL.len()]
    }

    pub fn prev(self) -> Self {
        let i = Self::ALL.iter().position(|p| *p == self).unwrap_or(0);
        Self::ALL[(i + Self::ALL.len() - 1) % Self::ALL.len()]
    }

    pub fn title(self) -> &'static str {
        match self {
            Pane::Samples => "Samples",
            Pane::Images => "Image & explanations",
            Pane::Training => "Training",
            Pane::Calibration => "Calibration",
            Pane::Agreement => "Agreement",
        }
    }

    /// Parses `samples`, `images`, `training`, `calibration`, `agreement`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "samples" | "list" => Some(Pane::Samples),
            "images" | "image" | "heatmaps" => Some(Pane::Images),
            "training" | "train" => Some(Pane::Training),
            "calibration" => Some(Pane::Calibration),
            "agreement" | "matrix" => Some(Pane::Agreement),
            _ => None,
        }
    }

    /// Whether the pane shares the bottom-right tab slot.
    pub fn is_tabbed(self) -> bool {
        matches!(self, Pane::Training | Pane::Calibration | Pane::Agreement)
    }
}

/// Similarity metric shown in the agreement matrix (the pipeline's own;
/// the pane cycles through `Metric::SHOWN`).
pub use crate::compare::Metric;

/// Progress of the current stage of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub stage: String,
    pub done: u64,
    pub total: u64,
    pub eta_seconds: Option<f64>,
}

impl Progress {
    pub fn ratio(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            (self.done as f64 / self.total as f64).clamp(0.0, 1.0)
        }
    }
}

/// The one status of "the job" (the engine runs one job at a time).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum JobStatus {
    #[default]
    Idle,
    Running {
        kind: JobKind,
        description: String,
        progress: Option<Progress>,
    },
    Done(String),
    Failed(String),
}

impl JobStatus {
    pub fn is_running(&self) -> bool {
        matches!(self, JobStatus::Running { .. })
    }
}

/// Severity of a status line message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StatusMessage {
    pub level: Level,
    pub text: String,
}

/// What the keyboard is typing into, if anything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum InputMode {
    #[default]
    Normal,
    /// Typing a search query (applied live).
    Search(String),
    /// Typing the note of the selected sample.
    Note(String),
}
