//! Pure application state of the terminal UI.
//!
//! Everything the panes draw lives here, and nothing here touches a terminal,
//! a file or a clock: the state can be built in a test from a scripted list of
//! engine [`Event`]s and rendered into a `TestBackend` deterministically.
//! Engine events enter through [`AppState::apply_event`] only; user intent
//! enters through `AppState::update` (see `update.rs`).

mod events;
mod kinds;
mod list;
mod panes;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use image::RgbImage;

pub use self::kinds::*;
pub use self::panes::*;
use crate::progress::HeatmapData;
use crate::tui::theme::Theme;
use crate::tui::triage::{TriageEntry, TriageMark};

/// Largest side kept for a photo: the terminal never needs more, and it bounds
/// the cost of re-encoding for graphics protocols.
const MAX_PHOTO_SIDE: u32 = 512;
/// Photos kept in memory (least recently set are dropped first).
const MAX_PHOTOS: usize = 64;
/// Heatmap opacity over the photo, in percent, and its step and range.
pub const DEFAULT_OVERLAY_OPACITY: u8 = 50;
pub const OVERLAY_STEP: u8 = 10;
pub const OVERLAY_RANGE: (u8, u8) = (10, 90);
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
    /// Only rows predicted in this split (`SamplePrediction::split`).
    pub(crate) split_filter: Option<String>,
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
    /// The units of a run being watched (`melxai --watch RUN`).
    pub(crate) units: Option<WatchedRun>,
    pub(crate) calibration: Option<CalibrationState>,
    pub(crate) heatmaps: HashMap<(String, String), HeatmapData>,
    /// Per sample: each method's scores (which explanation to trust).
    pub(crate) scores: HashMap<String, Vec<crate::progress::MethodScores>>,
    pub(crate) photos: HashMap<String, RgbImage>,
    photo_order: Vec<String>,
    pub(crate) missing_photos: std::collections::HashSet<String>,
    pub(crate) sample_matrices: HashMap<(String, Metric), AgreementMatrix>,
    pub(crate) split_matrices: HashMap<Metric, AgreementMatrix>,
    pub(crate) metric: Metric,
    pub(crate) job: JobStatus,
    pub(crate) messages: Vec<StatusMessage>,
    /// A message that stays on the status line over newer ones until a key
    /// is pressed (a problem the user must see, e.g. unreadable triage marks).
    pub(crate) pinned: Option<StatusMessage>,
    pub(crate) focus: Pane,
    /// The pane shown in the shared bottom-right slot.
    pub(crate) tab: Pane,
    pub(crate) zoomed: Option<Pane>,
    pub(crate) show_help: bool,
    pub(crate) should_quit: bool,
    pub(crate) model: Option<String>,
    pub(crate) checkpoint: Option<PathBuf>,
    pub(crate) weights_dir: PathBuf,
    /// The jobs' compute device, for the header.
    pub(crate) device: Option<String>,
    /// Animation counter advanced by the run loop's tick.
    pub(crate) tick: u64,
    /// Colours for the terminal's background (set once at start-up).
    pub(crate) theme: Theme,
    /// Heatmaps drawn over the photo, at `overlay_opacity` percent.
    pub(crate) overlay: bool,
    pub(crate) overlay_opacity: u8,
    /// What the calibration pane shows (`b` cycles).
    pub(crate) calibration_view: CalibrationView,
    /// `[data] attribute_columns` and each sample's values, for subgroups.
    pub(crate) attribute_columns: Vec<String>,
    pub(crate) attributes: HashMap<String, Vec<(String, String)>>,
}

/// The calibration pane's three views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CalibrationView {
    #[default]
    Calibration,
    /// The KxK confusion with per-class recall and precision.
    Classes,
    /// Results by attribute subgroup.
    Subgroups,
}

impl CalibrationView {
    pub fn next(self) -> Self {
        match self {
            CalibrationView::Calibration => CalibrationView::Classes,
            CalibrationView::Classes => CalibrationView::Subgroups,
            CalibrationView::Subgroups => CalibrationView::Calibration,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            CalibrationView::Calibration => "calibration",
            CalibrationView::Classes => "every class",
            CalibrationView::Subgroups => "subgroups",
        }
    }
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
            split_filter: None,
            sort: SortKey::Name,
            query: String::new(),
            input: InputMode::Normal,
            uncertain_band: 0.15,
            agreement_threshold: 0.5,
            page_size: 10,
            triage: BTreeMap::new(),
            triage_dirty: false,
            training: TrainingState::default(),
            units: None,
            calibration: None,
            heatmaps: HashMap::new(),
            scores: HashMap::new(),
            photos: HashMap::new(),
            photo_order: Vec::new(),
            missing_photos: Default::default(),
            sample_matrices: HashMap::new(),
            split_matrices: HashMap::new(),
            metric: Metric::Ssim,
            job: JobStatus::Idle,
            messages: Vec::new(),
            pinned: None,
            focus: Pane::Samples,
            tab: Pane::Training,
            zoomed: None,
            show_help: false,
            should_quit: false,
            model: None,
            checkpoint: None,
            weights_dir: PathBuf::from("weights"),
            device: None,
            tick: 0,
            theme: Theme::default(),
            overlay: false,
            overlay_opacity: DEFAULT_OVERLAY_OPACITY,
            calibration_view: CalibrationView::Calibration,
            attribute_columns: Vec::new(),
            attributes: HashMap::new(),
        };
        state.ensure_selection();
        state
    }

    // ----- setters for the engine glue ------------------------------------

    /// Sets the checkpoint used by explain/evaluate (e.g. the newest one on disk at start).
    pub fn set_checkpoint(&mut self, path: PathBuf) {
        self.model = Some(checkpoint_name(&path));
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

    /// An error that stays on the status line until a key is pressed.
    pub fn pin_error(&mut self, text: String) {
        self.error(text.clone());
        self.pinned = Some(StatusMessage {
            level: Level::Error,
            text,
        });
    }

    /// A key was pressed: the pinned message (if any) has been seen.
    pub fn unpin(&mut self) {
        self.pinned = None;
    }

    fn push_message(&mut self, level: Level, text: String) {
        self.messages.push(StatusMessage { level, text });
        if self.messages.len() > MAX_MESSAGES {
            self.messages.remove(0);
        }
    }

    /// The colours every pane draws with.
    pub fn set_theme(&mut self, theme: Theme) {
        self.theme = theme;
    }

    /// Advances the animation counter (spinner).
    pub fn tick(&mut self) {
        self.tick = self.tick.wrapping_add(1);
    }

    // ----- getters ---------------------------------------------------------

    pub fn rows(&self) -> &[SampleRow] {
        &self.rows
    }

    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    pub fn calibration_view(&self) -> CalibrationView {
        self.calibration_view
    }

    /// The data set's attribute columns and each sample's values (from its
    /// metadata table), so the calibration pane can break results down.
    pub fn set_attributes(
        &mut self,
        columns: Vec<String>,
        values: HashMap<String, Vec<(String, String)>>,
    ) {
        self.attribute_columns = columns;
        self.attributes = values;
    }

    pub fn attribute_columns(&self) -> &[String] {
        &self.attribute_columns
    }

    pub fn attributes_of(&self, id: &str) -> &[(String, String)] {
        self.attributes.get(id).map_or(&[], Vec::as_slice)
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

    pub fn split_filter(&self) -> Option<&str> {
        self.split_filter.as_deref()
    }

    /// Overlay opacity in percent when heatmaps are drawn over the photo.
    pub fn overlay(&self) -> Option<u8> {
        self.overlay.then_some(self.overlay_opacity)
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

    pub fn units(&self) -> Option<&WatchedRun> {
        self.units.as_ref()
    }

    pub fn calibration(&self) -> Option<&CalibrationState> {
        self.calibration.as_ref()
    }

    pub fn heatmap(&self, sample_id: &str, method: &str) -> Option<&HeatmapData> {
        self.heatmaps
            .get(&(sample_id.to_string(), method.to_string()))
    }

    /// All heatmaps of a sample, in [`METHODS`] order then any others by name.
    /// Each method's scores of `sample_id`'s maps, when they were computed.
    pub fn scores_of(&self, sample_id: &str) -> Option<&[crate::progress::MethodScores]> {
        self.scores.get(sample_id).map(Vec::as_slice)
    }

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

    /// What the status line shows: the pinned message, else the newest.
    pub fn last_message(&self) -> Option<&StatusMessage> {
        self.pinned.as_ref().or(self.messages.last())
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

    pub fn theme(&self) -> &Theme {
        &self.theme
    }

    pub fn tick_count(&self) -> u64 {
        self.tick
    }
}

/// The model name a checkpoint path stands for: `x` for `dir/x`,
/// `dir/x.safetensors`, `dir/x.toml` and `dir/x.ensemble.toml`.
pub(crate) fn checkpoint_name(path: &Path) -> String {
    if let Some(name) = crate::ensemble::manifest::name_of(path) {
        return name;
    }
    let file = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    file.strip_suffix(".safetensors")
        .or_else(|| file.strip_suffix(".toml"))
        .unwrap_or(file)
        .to_string()
}
