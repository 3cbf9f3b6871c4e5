//! Pure application state of the terminal UI.
//!
//! Everything the panes draw lives here, and nothing here touches a terminal,
//! a file or a clock: the state can be built in a test from a scripted list of
//! engine [`Event`]s and rendered into a `TestBackend` deterministically.
//! Engine events enter through [`AppState::apply_event`] only; user intent
//! enters through `AppState::update` (see `update.rs`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use image::RgbImage;
use serde_json::Value;

use crate::engine::events::{EpochSummary, Event, HeatmapData, JobKind, SamplePrediction};
use crate::tui::triage::{TriageEntry, TriageMark};

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
    /// Calibrated probability within `uncertain_band` of 0.5.
    Uncertain,
    /// Agreement score below `agreement_threshold`.
    LowAgreement,
}

impl Filter {
    pub fn next(self) -> Self {
        match self {
            Filter::All => Filter::Misclassified,
            Filter::Misclassified => Filter::Uncertain,
            Filter::Uncertain => Filter::LowAgreement,
            Filter::LowAgreement => Filter::All,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Filter::All => "all",
            Filter::Misclassified => "misclassified",
            Filter::Uncertain => "uncertain",
            Filter::LowAgreement => "low agreement",
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
}

impl SortKey {
    pub fn next(self) -> Self {
        match self {
            SortKey::Name => SortKey::Probability,
            SortKey::Probability => SortKey::Agreement,
            SortKey::Agreement => SortKey::Name,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SortKey::Name => "name",
            SortKey::Probability => "probability",
            SortKey::Agreement => "agreement",
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

/// One row of the data set list.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRow {
    pub id: String,
    pub label: usize,
    pub prediction: Option<SamplePrediction>,
    pub agreement: Option<f64>,
}

impl SampleRow {
    /// File name part of the id (`<class>/<file>`).
    pub fn file_name(&self) -> &str {
        self.id.rsplit('/').next().unwrap_or(&self.id)
    }
}

/// Training progress as reported by `Batch` and `Epoch` events.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrainingState {
    pub active: bool,
    pub fold: Option<(usize, usize)>,
    pub epoch: usize,
    pub epochs: usize,
    pub batch: usize,
    pub batches: usize,
    pub last_loss: Option<f64>,
    pub learning_rate: Option<f64>,
    pub history: Vec<EpochSummary>,
    /// Latest estimate from a `Progress` event, if the engine sent one.
    pub eta_seconds: Option<f64>,
    /// How the last run ended ("finished", "cancelled", "failed"); None while running.
    pub outcome: Option<&'static str>,
}

impl TrainingState {
    /// Seconds left: the engine's estimate when there is one, else the mean
    /// epoch time times the epochs left (the current one pro rata).
    pub fn eta(&self) -> Option<f64> {
        if let Some(eta) = self.eta_seconds {
            return Some(eta);
        }
        if self.history.is_empty() || self.epochs == 0 {
            return None;
        }
        let mean = self.history.iter().map(|e| e.seconds).sum::<f64>() / self.history.len() as f64;
        let done_epochs = self.history.last().map(|e| e.epoch).unwrap_or(0);
        let current = if self.batches > 0 && self.epoch > done_epochs {
            self.batch as f64 / self.batches as f64
        } else {
            0.0
        };
        let left = (self.epochs.saturating_sub(done_epochs)) as f64 - current;
        Some((left.max(0.0)) * mean)
    }
}

/// One reliability-diagram bin.
#[derive(Debug, Clone, PartialEq)]
pub struct ReliabilityBin {
    pub lower: f64,
    pub upper: f64,
    pub mean_confidence: Option<f64>,
    pub accuracy: Option<f64>,
    pub count: u64,
}

/// Scalar calibration metrics and bins of one side (before or after).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CalibrationMetrics {
    pub ece: Option<f64>,
    pub adaptive_ece: Option<f64>,
    pub mce: Option<f64>,
    pub brier: Option<f64>,
    pub nll: Option<f64>,
    pub bins: Vec<ReliabilityBin>,
}

impl CalibrationMetrics {
    /// Reads the engine's report JSON leniently: missing or null fields stay `None`.
    pub fn from_json(v: &Value) -> Self {
        let num = |k: &str| v.get(k).and_then(Value::as_f64);
        let bins = v
            .get("bins")
            .and_then(Value::as_array)
            .map(|bins| {
                bins.iter()
                    .map(|b| ReliabilityBin {
                        lower: b.get("lower").and_then(Value::as_f64).unwrap_or(0.0),
                        upper: b.get("upper").and_then(Value::as_f64).unwrap_or(0.0),
                        mean_confidence: b.get("mean_confidence").and_then(Value::as_f64),
                        accuracy: b.get("accuracy").and_then(Value::as_f64),
                        count: b.get("count").and_then(Value::as_u64).unwrap_or(0),
                    })
                    .collect()
            })
            .unwrap_or_default();
        CalibrationMetrics {
            ece: num("ece"),
            adaptive_ece: num("adaptive_ece"),
            mce: num("mce"),
            brier: num("brier"),
            nll: num("nll"),
            bins,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CalibrationState {
    pub model: String,
    pub temperature: f64,
    pub before: CalibrationMetrics,
    pub after: CalibrationMetrics,
}

/// A square method × method similarity matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct AgreementMatrix {
    pub methods: Vec<String>,
    pub values: Vec<Vec<f64>>,
}

impl AgreementMatrix {
    /// Mean of the off-diagonal entries (the per-sample agreement score).
    pub fn mean_off_diagonal(&self) -> Option<f64> {
        let mut sum = 0.0;
        let mut n = 0usize;
        for (i, row) in self.values.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                if i != j && v.is_finite() {
                    sum += v;
                    n += 1;
                }
            }
        }
        (n > 0).then(|| sum / n as f64)
    }
}

/// Which image an on-screen rectangle shows (for graphics protocols and screenshots).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ImageKind {
    Photo,
    Heatmap(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageKey {
    pub sample_id: String,
    pub kind: ImageKind,
}

/// Largest side kept for a photo: the terminal never needs more, and it bounds
/// the cost of re-encoding for graphics protocols.
const MAX_PHOTO_SIDE: u32 = 512;
/// Photos kept in memory (least recently set are dropped first).
const MAX_PHOTOS: usize = 64;
/// Status messages kept.
const MAX_MESSAGES: usize = 50;

/// The whole state of the terminal UI.
#[derive(Debug, Clone)]
pub struct AppState {
    pub(crate) rows: Vec<SampleRow>,
    pub(crate) class_names: Vec<String>,
    /// Id of the selected sample (stable across re-sorting and filtering).
    pub(crate) selected: Option<String>,
    pub(crate) filter: Filter,
    pub(crate) sort: SortKey,
    pub(crate) query: String,
    pub(crate) input: InputMode,
    /// Half-width of the "uncertain" band around 0.5.
    pub uncertain_band: f64,
    /// Agreement scores below this count as low agreement.
    pub agreement_threshold: f64,
    pub(crate) page_size: usize,
    pub(crate) triage: BTreeMap<String, TriageEntry>,
    pub(crate) triage_dirty: bool,
    pub(crate) training: TrainingState,
    pub(crate) calibration: Option<CalibrationState>,
    pub(crate) heatmaps: HashMap<(String, String), HeatmapData>,
    pub(crate) photos: HashMap<String, RgbImage>,
    photo_order: Vec<String>,
    pub(crate) missing_photos: std::collections::HashSet<String>,
    pub(crate) sample_matrices: HashMap<(String, Metric), AgreementMatrix>,
    pub(crate) split_matrices: HashMap<Metric, AgreementMatrix>,
    pub(crate) metric: Metric,
    pub(crate) job: JobStatus,
    pub(crate) messages: Vec<StatusMessage>,
    pub(crate) focus: Pane,
    /// The pane shown in the shared bottom-right slot.
    pub(crate) tab: Pane,
    pub(crate) zoomed: Option<Pane>,
    pub(crate) show_help: bool,
    pub(crate) should_quit: bool,
    pub(crate) model: Option<String>,
    pub(crate) checkpoint: Option<PathBuf>,
    pub(crate) weights_dir: PathBuf,
    /// Animation counter advanced by the run loop's tick.
    pub(crate) tick: u64,
}

impl Default for AppState {
    fn default() -> Self {
        Self::new(Vec::new(), Vec::new())
    }
}

impl AppState {
    /// State for the samples known before any prediction: `(id, label)` pairs
    /// and the class names in label order.
    pub fn new(samples: Vec<(String, usize)>, class_names: Vec<String>) -> Self {
        let rows = samples
            .into_iter()
            .map(|(id, label)| SampleRow {
                id,
                label,
                prediction: None,
                agreement: None,
            })
            .collect();
        let mut state = AppState {
            rows,
            class_names,
            selected: None,
            filter: Filter::All,
            sort: SortKey::Name,
            query: String::new(),
            input: InputMode::Normal,
            uncertain_band: 0.15,
            agreement_threshold: 0.5,
            page_size: 10,
            triage: BTreeMap::new(),
            triage_dirty: false,
            training: TrainingState::default(),
            calibration: None,
            heatmaps: HashMap::new(),
            photos: HashMap::new(),
            photo_order: Vec::new(),
            missing_photos: Default::default(),
            sample_matrices: HashMap::new(),
            split_matrices: HashMap::new(),
            metric: Metric::Ssim,
            job: JobStatus::Idle,
            messages: Vec::new(),
            focus: Pane::Samples,
            tab: Pane::Training,
            zoomed: None,
            show_help: false,
            should_quit: false,
            model: None,
            checkpoint: None,
            weights_dir: PathBuf::from("weights"),
            tick: 0,
        };
        state.ensure_selection();
        state
    }

    // ----- engine events ---------------------------------------------------

    /// The one place engine events change the state.
    pub fn apply_event(&mut self, ev: Event) {
        match ev {
            Event::Started {
                kind, description, ..
            } => {
                if kind == JobKind::Train {
                    let history_kept = TrainingState::default();
                    self.training = history_kept;
                    self.training.active = true;
                }
                self.info(format!("started: {description}"));
                self.job = JobStatus::Running {
                    kind,
                    description,
                    progress: None,
                };
            }
            Event::Progress {
                stage,
                done,
                total,
                eta_seconds,
                ..
            } => {
                if let JobStatus::Running { kind, progress, .. } = &mut self.job {
                    if *kind == JobKind::Train {
                        self.training.eta_seconds = eta_seconds;
                        // The trainer reports (epochs done, epochs) from the
                        // start of each epoch, before any batch event.
                        if total > 0 {
                            self.training.epochs = total as usize;
                            self.training.active = true;
                        }
                    }
                    *progress = Some(Progress {
                        stage,
                        done,
                        total,
                        eta_seconds,
                    });
                }
            }
            Event::Batch {
                epoch,
                batch,
                batches,
                loss,
                learning_rate,
                ..
            } => {
                let t = &mut self.training;
                t.active = true;
                t.epoch = epoch;
                t.batch = batch;
                t.batches = batches;
                t.last_loss = Some(loss);
                t.learning_rate = Some(learning_rate);
            }
            Event::Epoch { summary, .. } => {
                let t = &mut self.training;
                t.active = true;
                t.fold = summary.fold;
                t.epoch = summary.epoch;
                t.epochs = summary.epochs;
                t.learning_rate = Some(summary.learning_rate);
                // A new fold restarts the epoch count: keep only its history.
                if let Some(last) = t.history.last() {
                    if last.fold != summary.fold {
                        t.history.clear();
                    }
                }
                t.history.push(summary);
            }
            Event::Warning { message, .. } => self.warn(message),
            Event::Predictions { model, rows, .. } => {
                self.set_model(&model);
                for row in &mut self.rows {
                    row.prediction = None;
                }
                let n = rows.len();
                for p in rows {
                    match self.rows.iter_mut().find(|r| r.id == p.id) {
                        Some(row) => row.prediction = Some(p),
                        None => self.rows.push(SampleRow {
                            id: p.id.clone(),
                            label: p.label,
                            prediction: Some(p),
                            agreement: None,
                        }),
                    }
                }
                self.info(format!("{n} predictions from {model}"));
                self.ensure_selection();
            }
            Event::Calibration {
                model,
                temperature,
                before,
                after,
                ..
            } => {
                self.set_model(&model);
                self.calibration = Some(CalibrationState {
                    model,
                    temperature,
                    before: CalibrationMetrics::from_json(&before),
                    after: CalibrationMetrics::from_json(&after),
                });
            }
            Event::Heatmap { model, map, .. } => {
                self.set_model(&model);
                if !self.rows.iter().any(|r| r.id == map.sample_id) {
                    self.rows.push(SampleRow {
                        id: map.sample_id.clone(),
                        label: map.target,
                        prediction: None,
                        agreement: None,
                    });
                    self.ensure_selection();
                }
                self.heatmaps
                    .insert((map.sample_id.clone(), map.method.clone()), map);
            }
            Event::Finished { summary, .. } => {
                if let JobStatus::Running {
                    kind: JobKind::Train,
                    ..
                } = self.job
                {
                    self.training.active = false;
                    self.training.eta_seconds = None;
                    self.training.outcome = Some("finished");
                }
                self.info(format!("done: {summary}"));
                self.job = JobStatus::Done(summary);
            }
            Event::Failed { error, .. } => {
                if self.training.active {
                    self.training.outcome = Some("failed");
                }
                self.training.active = false;
                self.error(format!("failed: {error}"));
                self.job = JobStatus::Failed(error);
            }
            Event::Cancelled { .. } => {
                if self.training.active {
                    self.training.outcome = Some("cancelled");
                }
                self.training.active = false;
                self.info("cancelled".to_string());
                self.job = JobStatus::Done("cancelled".to_string());
            }
        }
    }

    /// Records the model a result came from; a bare name is taken as
    /// `<weights_dir>/<name>`, a path as is, and becomes the checkpoint that
    /// `e` (explain) and `r` (evaluate) use.
    fn set_model(&mut self, model: &str) {
        if model.is_empty() || model == "imagenet" {
            return;
        }
        self.model = Some(model.to_string());
        let path = Path::new(model);
        self.checkpoint = Some(
            if path.components().count() > 1 || path.extension().is_some() {
                path.to_path_buf()
            } else {
                self.weights_dir.join(model)
            },
        );
    }

    // ----- setters for the engine glue ------------------------------------

    /// Sets the checkpoint used by explain/evaluate (e.g. the newest one on disk at start).
    pub fn set_checkpoint(&mut self, path: PathBuf) {
        self.model = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .or(self.model.take());
        self.checkpoint = Some(path);
    }

    /// Directory that bare model names in events are resolved against.
    pub fn set_weights_dir(&mut self, dir: PathBuf) {
        self.weights_dir = dir;
    }

    /// Per-sample agreement score (used by the LowAgreement filter and sort).
    pub fn set_agreement(&mut self, sample_id: &str, score: f64) {
        if let Some(row) = self.rows.iter_mut().find(|r| r.id == sample_id) {
            row.agreement = Some(score);
        }
    }

    /// Agreement matrix of the selected sample for `metric_name`
    /// (`ssim`/`pearson`/`cosine`/`jaccard`). Returns false for an unknown
    /// metric, a non-square matrix or when nothing is selected.
    pub fn set_matrix(
        &mut self,
        metric_name: &str,
        methods: Vec<String>,
        values: Vec<Vec<f64>>,
    ) -> bool {
        match self.selected.clone() {
            Some(id) => self.set_sample_matrix(&id, metric_name, methods, values),
            None => false,
        }
    }

    /// Like [`AppState::set_matrix`] for a named sample (results may arrive late).
    pub fn set_sample_matrix(
        &mut self,
        sample_id: &str,
        metric_name: &str,
        methods: Vec<String>,
        values: Vec<Vec<f64>>,
    ) -> bool {
        let (Some(metric), Some(m)) = (Metric::parse(metric_name), square(methods, values)) else {
            return false;
        };
        self.sample_matrices
            .insert((sample_id.to_string(), metric), m);
        true
    }

    /// Agreement matrix over the whole split (mean of per-sample matrices).
    pub fn set_split_matrix(
        &mut self,
        metric_name: &str,
        methods: Vec<String>,
        values: Vec<Vec<f64>>,
    ) -> bool {
        let (Some(metric), Some(m)) = (Metric::parse(metric_name), square(methods, values)) else {
            return false;
        };
        self.split_matrices.insert(metric, m);
        true
    }

    /// The photo of a sample (downscaled to at most 512 px a side).
    pub fn set_image(&mut self, sample_id: &str, image: RgbImage) {
        let image = if image.width().max(image.height()) > MAX_PHOTO_SIDE {
            let (w, h) = (image.width() as f64, image.height() as f64);
            let s = MAX_PHOTO_SIDE as f64 / w.max(h);
            let (nw, nh) = (
                ((w * s).round() as u32).max(1),
                ((h * s).round() as u32).max(1),
            );
            image::imageops::thumbnail(&image, nw, nh)
        } else {
            image
        };
        self.missing_photos.remove(sample_id);
        self.photo_order.retain(|id| id != sample_id);
        self.photo_order.push(sample_id.to_string());
        self.photos.insert(sample_id.to_string(), image);
        while self.photo_order.len() > MAX_PHOTOS {
            let old = self.photo_order.remove(0);
            self.photos.remove(&old);
        }
    }

    /// Records that the photo of a sample could not be loaded (not retried).
    pub fn set_image_missing(&mut self, sample_id: &str) {
        self.missing_photos.insert(sample_id.to_string());
    }

    /// Whether a photo load should be attempted for this sample.
    pub fn needs_image(&self, sample_id: &str) -> bool {
        !self.photos.contains_key(sample_id) && !self.missing_photos.contains(sample_id)
    }

    /// Replaces all triage marks (e.g. loaded from the triage file at start).
    pub fn set_triage(&mut self, entries: BTreeMap<String, TriageEntry>) {
        self.triage = entries;
        self.triage_dirty = false;
    }

    /// Rows per page for PgUp/PgDn (the run loop sets it from the layout).
    pub fn set_page_size(&mut self, rows: usize) {
        self.page_size = rows.max(1);
    }

    /// Adds a status line message.
    pub fn info(&mut self, text: String) {
        self.push_message(Level::Info, text);
    }

    pub fn warn(&mut self, text: String) {
        self.push_message(Level::Warning, text);
    }

    pub fn error(&mut self, text: String) {
        self.push_message(Level::Error, text);
    }

    fn push_message(&mut self, level: Level, text: String) {
        self.messages.push(StatusMessage { level, text });
        if self.messages.len() > MAX_MESSAGES {
            self.messages.remove(0);
        }
    }

    /// Advances the animation counter (spinner).
    pub fn tick(&mut self) {
        self.tick = self.tick.wrapping_add(1);
    }

    // ----- getters ---------------------------------------------------------

    pub fn rows(&self) -> &[SampleRow] {
        &self.rows
    }

    pub fn class_name(&self, label: usize) -> String {
        self.class_names
            .get(label)
            .cloned()
            .unwrap_or_else(|| format!("class {label}"))
    }

    pub fn selected_id(&self) -> Option<&str> {
        self.selected.as_deref()
    }

    pub fn selected_row(&self) -> Option<&SampleRow> {
        let id = self.selected.as_deref()?;
        self.rows.iter().find(|r| r.id == id)
    }

    pub fn filter(&self) -> Filter {
        self.filter
    }

    pub fn sort(&self) -> SortKey {
        self.sort
    }

    pub fn query(&self) -> &str {
        &self.query
    }

    pub fn input(&self) -> &InputMode {
        &self.input
    }

    pub fn triage(&self) -> &BTreeMap<String, TriageEntry> {
        &self.triage
    }

    /// Whether marks changed since the last [`AppState::take_triage_dirty`].
    pub fn take_triage_dirty(&mut self) -> bool {
        std::mem::take(&mut self.triage_dirty)
    }

    pub fn mark_of(&self, id: &str) -> Option<TriageMark> {
        self.triage.get(id).and_then(|e| e.mark)
    }

    /// Samples marked "exclude from training".
    pub fn excluded_ids(&self) -> Vec<String> {
        crate::tui::triage::excluded_ids(&self.triage)
    }

    pub fn training(&self) -> &TrainingState {
        &self.training
    }

    pub fn calibration(&self) -> Option<&CalibrationState> {
        self.calibration.as_ref()
    }

    pub fn heatmap(&self, sample_id: &str, method: &str) -> Option<&HeatmapData> {
        self.heatmaps
            .get(&(sample_id.to_string(), method.to_string()))
    }

    /// All heatmaps of a sample, in [`METHODS`] order then any others by name.
    pub fn heatmaps_of(&self, sample_id: &str) -> Vec<&HeatmapData> {
        let mut maps: Vec<&HeatmapData> = self
            .heatmaps
            .iter()
            .filter(|((s, _), _)| s == sample_id)
            .map(|(_, m)| m)
            .collect();
        maps.sort_by_key(|m| {
            (
                METHODS
                    .iter()
                    .position(|k| *k == m.method)
                    .unwrap_or(METHODS.len()),
                m.method.clone(),
            )
        });
        maps
    }

    pub fn photo(&self, sample_id: &str) -> Option<&RgbImage> {
        self.photos.get(sample_id)
    }

    pub fn metric(&self) -> Metric {
        self.metric
    }

    pub fn sample_matrix(&self, sample_id: &str) -> Option<&AgreementMatrix> {
        self.sample_matrices
            .get(&(sample_id.to_string(), self.metric))
    }

    pub fn split_matrix(&self) -> Option<&AgreementMatrix> {
        self.split_matrices.get(&self.metric)
    }

    pub fn job(&self) -> &JobStatus {
        &self.job
    }

    pub fn last_message(&self) -> Option<&StatusMessage> {
        self.messages.last()
    }

    pub fn messages(&self) -> &[StatusMessage] {
        &self.messages
    }

    pub fn focus(&self) -> Pane {
        self.focus
    }

    pub fn tab(&self) -> Pane {
        self.tab
    }

    pub fn zoomed(&self) -> Option<Pane> {
        self.zoomed
    }

    pub fn show_help(&self) -> bool {
        self.show_help
    }

    pub fn should_quit(&self) -> bool {
        self.should_quit
    }

    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    pub fn checkpoint(&self) -> Option<&Path> {
        self.checkpoint.as_deref()
    }

    pub fn tick_count(&self) -> u64 {
        self.tick
    }

    // ----- the list --------------------------------------------------------

    /// Whether a row passes the current filter and search.
    pub fn is_visible(&self, row: &SampleRow) -> bool {
        let passes = match self.filter {
            Filter::All => true,
            Filter::Misclassified => row.prediction.as_ref().is_some_and(|p| !p.correct()),
            Filter::Uncertain => row
                .prediction
                .as_ref()
                .is_some_and(|p| (p.probability - 0.5).abs() <= self.uncertain_band),
            Filter::LowAgreement => row.agreement.is_some_and(|a| a < self.agreement_threshold),
        };
        passes
            && (self.query.is_empty() || row.id.to_lowercase().contains(&self.query.to_lowercase()))
    }

    /// Indices into [`AppState::rows`] of the visible rows, in display order.
    pub fn visible(&self) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.rows.len())
            .filter(|&i| self.is_visible(&self.rows[i]))
            .collect();
        let rows = &self.rows;
        match self.sort {
            SortKey::Name => idx.sort_by(|&a, &b| rows[a].id.cmp(&rows[b].id)),
            SortKey::Probability => idx.sort_by(|&a, &b| {
                let pa = rows[a].prediction.as_ref().map(|p| p.probability);
                let pb = rows[b].prediction.as_ref().map(|p| p.probability);
                none_last(pa, pb, true).then_with(|| rows[a].id.cmp(&rows[b].id))
            }),
            SortKey::Agreement => idx.sort_by(|&a, &b| {
                none_last(rows[a].agreement, rows[b].agreement, false)
                    .then_with(|| rows[a].id.cmp(&rows[b].id))
            }),
        }
        idx
    }

    /// Position of the selection within [`AppState::visible`].
    pub fn selected_position(&self, visible: &[usize]) -> Option<usize> {
        let id = self.selected.as_deref()?;
        visible.iter().position(|&i| self.rows[i].id == id)
    }

    /// Keeps the selection on a visible row (the first one if it was hidden).
    pub(crate) fn ensure_selection(&mut self) {
        let visible = self.visible();
        if self.selected_position(&visible).is_none() {
            self.selected = visible.first().map(|&i| self.rows[i].id.clone());
        }
    }

    /// Moves the selection by `delta` visible rows (clamped).
    pub(crate) fn move_selection(&mut self, delta: isize) {
        let visible = self.visible();
        if visible.is_empty() {
            self.selected = None;
            return;
        }
        let pos = self.selected_position(&visible).unwrap_or(0) as isize;
        let new = (pos + delta).clamp(0, visible.len() as isize - 1) as usize;
        self.selected = Some(self.rows[visible[new]].id.clone());
    }

    /// Selects the `n`-th visible row (mouse click).
    pub(crate) fn select_visible(&mut self, n: usize) {
        let visible = self.visible();
        if let Some(&i) = visible.get(n) {
            self.selected = Some(self.rows[i].id.clone());
        }
    }
}

fn square(methods: Vec<String>, values: Vec<Vec<f64>>) -> Option<AgreementMatrix> {
    let n = methods.len();
    (n > 0 && values.len() == n && values.iter().all(|r| r.len() == n))
        .then_some(AgreementMatrix { methods, values })
}

/// Orders present values (ascending, or descending when `descending`)
/// before missing ones.
fn none_last(a: Option<f64>, b: Option<f64>, descending: bool) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (a, b) {
        (Some(x), Some(y)) if descending => y.partial_cmp(&x).unwrap_or(Equal),
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Equal),
        (Some(_), None) => Less,
        (None, Some(_)) => Greater,
        (None, None) => Equal,
    }
}
