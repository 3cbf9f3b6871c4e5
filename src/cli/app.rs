//! `melxai` with no subcommand: the terminal UI over the engine.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Result;
use melxai::compare::similarity::{CompareOptions, Map};
use melxai::config::Config;
use melxai::data::image::decode_rgb;
use melxai::engine::Request;
use melxai::progress::HeatmapData;
use melxai::tui::{run_app, GraphicsMode, KeyMap, Metric, TuiOptions};

/// Similarity of two heatmaps for the agreement pane.
fn similarity(metric: Metric, a: &HeatmapData, b: &HeatmapData) -> Option<f64> {
    let ma = Map::new(&a.values, a.height, a.width).ok()?;
    let mb = Map::new(&b.values, b.height, b.width).ok()?;
    metric.between(ma, mb, &CompareOptions::default()).ok()
}

/// `watch`: a run whose units other processes execute (`--watch RUN`); its
/// unit files are read about once a second into the training pane.
pub fn run(config: Config, graphics: &str, watch: Option<String>) -> Result<i32> {
    if !std::io::stdout().is_terminal() {
        eprintln!(
            "melxai needs a terminal for its interface; use `melxai --batch` for headless runs."
        );
        return Ok(2);
    }
    let graphics: GraphicsMode = graphics
        .parse()
        .map_err(|e| anyhow::anyhow!("--graphics: {e}"))?;
    let data = melxai::data::load(&config.data, false)?;
    let report_dir = PathBuf::from("reports");
    let mut options = TuiOptions::new(report_dir.join("triage.toml"), report_dir);
    options.graphics = graphics;
    options.theme = config.tui.theme;
    options.keys = KeyMap::default()
        .with_table(&config.tui.keys)
        .map_err(|e| anyhow::anyhow!("[tui.keys]: {e}"))?;
    options.samples = data
        .samples
        .iter()
        .map(|s| (s.id.clone(), s.label))
        .collect();
    options.class_names = data.classes.clone();
    options.attribute_columns = config.data.attribute_columns.clone();
    options.attributes = data
        .samples
        .iter()
        .filter(|s| !s.attributes.is_empty())
        .map(|s| (s.id.clone(), s.attributes.clone()))
        .collect();
    options.weights_dir = config.model.weights_dir.clone();
    // Resolved before the screen is taken over: an unusable device is a clear
    // error here, and the header names the one the jobs will use.
    let spec: melxai::device::DeviceSpec = config.device.parse()?;
    let device = melxai::device::resolve(spec)?;
    if let Some(line) = melxai::device::auto_choice(spec, device) {
        eprintln!("{line}");
    }
    options.device = Some(melxai::device::describe(device));
    options.checkpoint = config.default_checkpoint();
    let default_checkpoint = options.checkpoint.clone();
    let paths: std::collections::HashMap<String, PathBuf> = data
        .samples
        .iter()
        .map(|s| (s.id.clone(), s.path.clone()))
        .collect();
    options.image_loader = Box::new(move |id: &str| paths.get(id).and_then(|p| decode_rgb(p).ok()));
    options.similarity = Some(Box::new(similarity));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let engine = melxai::engine::spawn_pipeline(config);
        if let Some(checkpoint) = default_checkpoint {
            let _ = engine.requests.send(Request::Evaluate { checkpoint });
        }
        let events = match watch {
            None => engine.events,
            Some(run) => watched(engine.events, run),
        };
        let result = run_app(options, events, engine.requests.clone()).await;
        let _ = engine.requests.send(Request::Shutdown);
        let code = match &result {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("error: {e}");
                1
            }
        };
        stop_engine(engine.task, code).await;
        Ok(code)
    })
}

/// The engine's events merged with the watched run's unit lines.
fn watched(
    mut engine_events: tokio::sync::mpsc::UnboundedReceiver<melxai::progress::Event>,
    run: String,
) -> tokio::sync::mpsc::UnboundedReceiver<melxai::progress::Event> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let forward = tx.clone();
    tokio::spawn(async move {
        while let Some(ev) = engine_events.recv().await {
            if forward.send(ev).is_err() {
                break;
            }
        }
    });
    std::thread::spawn(move || melxai::batch::units::watch::watch(&run, |ev| tx.send(ev).is_ok()));
    rx
}

/// Waits for the engine to finish its current step. A job still inside
/// libtorch (loading a model, say) must not race the process's exit:
/// libtorch's global destructors would run under it and crash, and dropping
/// the runtime would wait for it without bound. If the wait runs out, leave
/// without running destructors.
async fn stop_engine(task: tokio::task::JoinHandle<()>, code: i32) {
    const ENGINE_STOP_WAIT_MS: u64 = 5000;
    let wait = std::time::Duration::from_millis(ENGINE_STOP_WAIT_MS);
    if tokio::time::timeout(wait, task).await.is_err() {
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        // SAFETY: _exit ends the process at once; nothing after it runs.
        unsafe { libc::_exit(code) };
    }
}
