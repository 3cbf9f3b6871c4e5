//! The run loop: engine events and keys in, frames and requests out.
//!
//! The loop awaits, with `tokio::select!`, whichever comes first: engine
//! events (all queued ones are drained, then one frame is drawn, so a burst
//! of batch events costs one frame and the newest is on screen within one
//! frame), a terminal event from crossterm's `EventStream`, or a frame tick
//! that only runs while a job does (the spinner). Idle, nothing wakes it, so
//! the UI costs no CPU. The loop is generic over the ratatui backend and the
//! input stream, which makes it testable with `TestBackend` and a scripted
//! stream of key events.

use std::path::PathBuf;
use std::time::Duration;

use crossterm::event::{Event as TermEvent, KeyEventKind, MouseButton, MouseEventKind};
use futures_util::{Stream, StreamExt};
use image::RgbImage;
use ratatui::backend::Backend;
use ratatui::layout::{Position, Rect};
use ratatui::Terminal;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use crate::engine::requests::Request;
use crate::progress::{Event, HeatmapData};
use crate::tui::error::Result;
use crate::tui::graphics::{GraphicsMode, ProtocolRenderer};
use crate::tui::keys::{Action, KeyMap};
use crate::tui::panes::{samples, ImageRegion};
use crate::tui::screenshot::{self, RenderedFrame};
use crate::tui::state::{AppState, Metric};
use crate::tui::terminal::{self, TerminalGuard};
use crate::tui::theme::{Theme, ThemeChoice};
use crate::tui::{probe, triage, ui};

/// Loads the photo of a sample id (`<class>/<file>`); `None` when it cannot.
pub type ImageLoader = Box<dyn Fn(&str) -> Option<RgbImage> + Send>;

/// Similarity of two heatmaps under a metric (the engine's `compare`
/// functions); `None` when it cannot be computed.
pub type SimilarityFn = Box<dyn Fn(Metric, &HeatmapData, &HeatmapData) -> Option<f64> + Send>;

/// Redraw period while a job runs (spinner and elapsed time).
const FRAME_INTERVAL_MS: u64 = 100;

/// What the UI needs from its caller.
pub struct TuiOptions {
    /// Triage marks file (loaded at start, written on every change).
    pub triage_path: PathBuf,
    /// Screenshots go to `<report_dir>/screens/`.
    pub report_dir: PathBuf,
    pub graphics: GraphicsMode,
    /// `[tui] theme`; `auto` asks the terminal for its background.
    pub theme: ThemeChoice,
    pub keys: KeyMap,
    /// Samples known before any prediction: `(id, label)`.
    pub samples: Vec<(String, usize)>,
    /// Class names in label order.
    pub class_names: Vec<String>,
    /// `[data] attribute_columns` and each sample's values (subgroup view).
    pub attribute_columns: Vec<String>,
    pub attributes: std::collections::HashMap<String, Vec<(String, String)>>,
    /// Checkpoint for explain/evaluate until the engine reports another.
    pub checkpoint: Option<PathBuf>,
    /// Directory bare model names in events resolve against.
    pub weights_dir: PathBuf,
    /// The compute device the engine's jobs run on, in `doctor`'s words
    /// (shown in the header: on a GPU server it matters which one).
    pub device: Option<String>,
    pub image_loader: ImageLoader,
    /// When set, agreement matrices are computed as heatmaps arrive.
    pub similarity: Option<SimilarityFn>,
}

impl TuiOptions {
    /// Options with defaults: auto graphics, default keys, no samples, no
    /// images, `weights/` for checkpoints.
    pub fn new(triage_path: PathBuf, report_dir: PathBuf) -> Self {
        TuiOptions {
            triage_path,
            report_dir,
            graphics: GraphicsMode::Auto,
            theme: ThemeChoice::Auto,
            keys: KeyMap::default(),
            samples: Vec::new(),
            class_names: Vec::new(),
            attribute_columns: Vec::new(),
            attributes: Default::default(),
            checkpoint: None,
            weights_dir: PathBuf::from("weights"),
            device: None,
            image_loader: Box::new(|_| None),
            similarity: None,
        }
    }
}

/// The state plus what the loop needs around it (files, callbacks, graphics).
pub struct App {
    pub state: AppState,
    pub keys: KeyMap,
    triage_path: PathBuf,
    /// The triage file could not be read at start: it is never overwritten,
    /// only moved aside before the first new mark is saved.
    triage_unreadable: bool,
    report_dir: PathBuf,
    image_loader: ImageLoader,
    similarity: Option<SimilarityFn>,
    renderer: Option<ProtocolRenderer>,
    /// Last frame size, for screenshots and mouse hit-testing.
    size: Rect,
}

impl App {
    /// Builds the app and loads the triage file (a broken file is reported on
    /// the status line and left untouched until the next mark).
    pub fn new(options: TuiOptions) -> Self {
        let mut state = AppState::new(options.samples, options.class_names);
        state.set_attributes(options.attribute_columns, options.attributes);
        state.set_weights_dir(options.weights_dir);
        state.device = options.device;
        if let Some(cp) = options.checkpoint {
            state.set_checkpoint(cp);
        }
        let triage_unreadable = match triage::load(&options.triage_path) {
            Ok(entries) => {
                state.set_triage(entries);
                false
            }
            Err(e) => {
                state.pin_error(format!(
                    "could not read triage marks: {e}. The file is kept; it is moved aside before your first new mark"
                ));
                true
            }
        };
        let mut app = App {
            state,
            keys: options.keys,
            triage_path: options.triage_path,
            triage_unreadable,
            report_dir: options.report_dir,
            image_loader: options.image_loader,
            similarity: options.similarity,
            renderer: None,
            size: Rect::default(),
        };
        app.load_selected_image();
        app
    }

    /// Starts a graphics protocol (call with the terminal in TUI mode).
    /// `version` is the terminal's XTVERSION reply, if it gave one.
    pub fn init_graphics(&mut self, mode: GraphicsMode, version: Option<&str>) {
        let (renderer, message) = ProtocolRenderer::detect(mode, version);
        self.renderer = renderer;
        self.state.info(message);
    }

    /// One engine event.
    pub fn on_engine_event(&mut self, ev: Event) {
        let heatmap_sample = match &ev {
            Event::Heatmap { map, .. } => Some(map.sample_id.clone()),
            _ => None,
        };
        self.state.apply_event(ev);
        if let Some(id) = heatmap_sample {
            if let Some(r) = &mut self.renderer {
                r.forget_sample(&id);
            }
            self.compute_agreement(&id);
        }
        self.load_selected_image();
    }

    /// Matrices of every metric for a sample, its score, and the mean matrix.
    fn compute_agreement(&mut self, sample_id: &str) {
        let Some(sim) = &self.similarity else {
            return;
        };
        let maps: Vec<HeatmapData> = self
            .state
            .heatmaps_of(sample_id)
            .into_iter()
            .cloned()
            .collect();
        if maps.len() < 2 {
            return;
        }
        let methods: Vec<String> = maps.iter().map(|m| m.method.clone()).collect();
        for metric in Metric::SHOWN {
            let values: Vec<Vec<f64>> = maps
                .iter()
                .map(|a| {
                    maps.iter()
                        .map(|b| {
                            if std::ptr::eq(a, b) {
                                1.0
                            } else {
                                sim(metric, a, b).unwrap_or(f64::NAN)
                            }
                        })
                        .collect()
                })
                .collect();
            self.state
                .set_sample_matrix(sample_id, metric.name(), methods.clone(), values);
        }
        self.refresh_agreement();
    }

    /// Scores and the all-samples mean matrix for the current metric.
    fn refresh_agreement(&mut self) {
        if self.similarity.is_none() {
            return;
        }
        let metric = self.state.metric();
        let mut scores = Vec::new();
        let mut sum: Option<(Vec<String>, Vec<Vec<f64>>, usize)> = None;
        for ((id, m), matrix) in &self.state.sample_matrices {
            if *m != metric {
                continue;
            }
            if let Some(s) = matrix.mean_off_diagonal() {
                scores.push((id.clone(), s));
            }
            match &mut sum {
                None => sum = Some((matrix.methods.clone(), matrix.values.clone(), 1)),
                Some((methods, acc, n)) if *methods == matrix.methods => {
                    for (ra, rb) in acc.iter_mut().zip(&matrix.values) {
                        for (a, b) in ra.iter_mut().zip(rb) {
                            *a += b;
                        }
                    }
                    *n += 1;
                }
                Some(_) => {}
            }
        }
        for (id, s) in scores {
            self.state.set_agreement(&id, s);
        }
        if let Some((methods, acc, n)) = sum {
            let mean = acc
                .into_iter()
                .map(|r| r.into_iter().map(|v| v / n as f64).collect())
                .collect();
            self.state.set_split_matrix(metric.name(), methods, mean);
        }
    }

    fn load_selected_image(&mut self) {
        let Some(id) = self.state.selected_id().map(str::to_string) else {
            return;
        };
        if self.state.needs_image(&id) {
            match (self.image_loader)(&id) {
                Some(img) => self.state.set_image(&id, img),
                None => self.state.set_image_missing(&id),
            }
        }
    }

    /// One terminal input event; returns the requests for the engine.
    pub fn on_input(&mut self, ev: TermEvent) -> Vec<Request> {
        let action = match ev {
            TermEvent::Key(k) if k.kind != KeyEventKind::Release => {
                self.keys.action_for(self.state.input(), &k)
            }
            TermEvent::Mouse(m) => self.mouse_action(m.kind, m.column, m.row),
            _ => None,
        };
        match action {
            Some(a) => self.perform(a),
            None => Vec::new(),
        }
    }

    fn mouse_action(&self, kind: MouseEventKind, column: u16, row: u16) -> Option<Action> {
        let layout = ui::layout(&self.state, self.size);
        let list = layout.samples?;
        let inside = list.contains(Position::new(column, row));
        match kind {
            MouseEventKind::ScrollDown if inside => Some(Action::MoveDown),
            MouseEventKind::ScrollUp if inside => Some(Action::MoveUp),
            MouseEventKind::Down(MouseButton::Left) if inside => {
                // Border + header row above the first data row.
                let first = list.y + 2;
                if row < first || row >= list.bottom().saturating_sub(1) {
                    return None;
                }
                let visible = self.state.visible();
                let height = list.height.saturating_sub(3) as usize;
                let selected = self.state.selected_position(&visible).unwrap_or(0);
                let offset = samples::scroll_offset(selected, visible.len(), height);
                Some(Action::SelectRow(offset + (row - first) as usize))
            }
            _ => None,
        }
    }

    /// Performs an action: the state's `update`, plus what needs files.
    pub fn perform(&mut self, action: Action) -> Vec<Request> {
        if action == Action::Screenshot {
            self.screenshot();
            return Vec::new();
        }
        self.state.unpin();
        let metric = self.state.metric();
        let requests = self.state.update(action);
        if self.state.metric() != metric {
            self.refresh_agreement();
        }
        if self.state.take_triage_dirty() {
            self.save_triage();
        }
        self.load_selected_image();
        requests
    }

    /// Saves the marks; an unreadable file found at start is first moved
    /// aside (`triage.toml.unreadable-<unix time>`), never overwritten.
    fn save_triage(&mut self) {
        if self.triage_unreadable {
            match triage::move_aside(&self.triage_path) {
                Ok(None) => self.triage_unreadable = false,
                Ok(Some(aside)) => {
                    self.triage_unreadable = false;
                    self.state.info(format!(
                        "the unreadable triage file was moved to {}; new marks go to {}",
                        aside.display(),
                        self.triage_path.display()
                    ));
                }
                Err(e) => {
                    self.state.pin_error(format!(
                        "mark not saved: the unreadable triage file could not be moved aside: {e}"
                    ));
                    return;
                }
            }
        }
        if let Err(e) = triage::save(&self.triage_path, self.state.triage()) {
            self.state
                .error(format!("could not save triage marks: {e}"));
        }
    }

    fn screenshot(&mut self) {
        let size = if self.size.width == 0 {
            Rect::new(0, 0, 120, 40)
        } else {
            self.size
        };
        let frame: RenderedFrame =
            screenshot::render_frame(&self.state, &self.keys, None, size.width, size.height);
        match screenshot::save_screenshot(&self.state, &frame, &self.report_dir) {
            Ok((svg, html)) => self.state.info(format!(
                "screenshot: {} and {}",
                svg.display(),
                html.display()
            )),
            Err(e) => self.state.error(format!("screenshot failed: {e}")),
        }
    }

    /// Draws one frame.
    pub fn draw<B: Backend>(&mut self, terminal: &mut Terminal<B>) -> Result<()> {
        let state = &self.state;
        let keys = &self.keys;
        let renderer = &mut self.renderer;
        let mut size = Rect::default();
        terminal.draw(|f| {
            size = f.area();
            let regions: Vec<ImageRegion> = ui::render(state, keys, size, f.buffer_mut());
            if let Some(r) = renderer {
                r.draw(state, &regions, f.buffer_mut());
            }
        })?;
        if size != self.size {
            self.size = size;
            if let Some(list) = ui::layout(&self.state, size).samples {
                self.state
                    .set_page_size(list.height.saturating_sub(3) as usize);
            }
        }
        Ok(())
    }
}

/// The loop, for any backend and input stream. Returns when the user quits
/// (or the input ends); cancels a running job and sends `Request::Shutdown`
/// on the way out.
pub async fn run_loop<B, I>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    events_rx: &mut UnboundedReceiver<Event>,
    requests_tx: &UnboundedSender<Request>,
    input: &mut I,
) -> Result<()>
where
    B: Backend,
    I: Stream<Item = std::io::Result<TermEvent>> + Unpin,
{
    let mut engine_alive = true;
    let mut frame = tokio::time::interval(Duration::from_millis(FRAME_INTERVAL_MS));
    frame.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    app.draw(terminal)?;
    while !app.state.should_quit() {
        let running = app.state.job().is_running();
        tokio::select! {
            // Engine events first: their results are what the user waits for.
            biased;
            event = events_rx.recv(), if engine_alive => {
                let alive = match event {
                    Some(event) => {
                        app.on_engine_event(event);
                        drain_events(app, events_rx)
                    }
                    None => false,
                };
                if !alive {
                    engine_alive = false;
                    app.state
                        .warn("the engine stopped; results will not update".into());
                }
            }
            term = input.next() => match term {
                Some(term) => on_terminal_event(terminal, app, requests_tx, term?)?,
                None => break,
            },
            _ = frame.tick(), if running => app.state.tick(),
        }
        app.draw(terminal)?;
    }
    if app.state.job().is_running() {
        let _ = requests_tx.send(Request::Cancel);
    }
    let _ = requests_tx.send(Request::Shutdown);
    Ok(())
}

/// Applies every event already queued; `false` once the engine is gone.
fn drain_events(app: &mut App, events_rx: &mut UnboundedReceiver<Event>) -> bool {
    loop {
        match events_rx.try_recv() {
            Ok(event) => app.on_engine_event(event),
            Err(TryRecvError::Empty) => return true,
            Err(TryRecvError::Disconnected) => return false,
        }
    }
}

fn on_terminal_event<B: Backend>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    requests_tx: &UnboundedSender<Request>,
    event: TermEvent,
) -> Result<()> {
    if let TermEvent::Resize(..) = event {
        terminal.autoresize()?;
    }
    for request in app.on_input(event) {
        if requests_tx.send(request).is_err() {
            app.state.error("the engine is not running".into());
        }
    }
    Ok(())
}

/// Runs the terminal UI until the user quits. Refuses politely when stdout
/// is not a terminal.
pub async fn run_app(
    options: TuiOptions,
    mut events_rx: UnboundedReceiver<Event>,
    requests_tx: UnboundedSender<Request>,
) -> Result<()> {
    if !terminal::stdout_is_terminal() {
        return Err(crate::tui::TuiError::NotATerminal);
    }
    let graphics = options.graphics;
    let theme = options.theme;
    let mut app = App::new(options);
    let mut guard = TerminalGuard::enter()?;
    // Before anything reads input: the replies arrive on stdin.
    let replies = probe::query_terminal(Duration::from_millis(probe::PROBE_TIMEOUT_MS));
    app.state
        .set_theme(Theme::resolve(theme, replies.background));
    app.init_graphics(graphics, replies.version.as_deref());
    let mut input = crossterm::event::EventStream::new();
    let result = run_loop(
        guard.terminal(),
        &mut app,
        &mut events_rx,
        &requests_tx,
        &mut input,
    )
    .await;
    drop(guard);
    result
}
