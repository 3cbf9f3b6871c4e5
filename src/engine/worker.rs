//! The worker thread: owns every model and tensor, runs one job at a time, and
//! reports through a tokio unbounded channel (faces poll it without blocking).
//!
//! A dispatcher thread sits between the face and the worker so `Cancel` takes
//! effect while a job runs: it flips the shared flag at once instead of
//! queueing behind the job. The worker stops when its request channel closes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use super::events::{Event, EventSink, HeatmapData, JobId, JobKind};
use super::requests::Request;
use crate::calibrate::fit::{fit_split, store_temperature};
use crate::config::Config;
use crate::data::cache::ImageCache;
use crate::data::scan::{scan, Scan};
use crate::error::{Error, Result};
use crate::eval::{predict_rows, EvalRow};
use crate::explain::heatmap::to_vec;
use crate::explain::{explain, ExplainConfig, Method};
use crate::model::checkpoint::{self, read_meta};
use crate::model::{parse_device, Arch, Classifier, EfficientNetConfig};
use crate::train::{train, TrainContext};

/// Batch events closer together than this are dropped (the epoch and final
/// events always go through).
const BATCH_EVENT_INTERVAL_MS: u64 = 100;

/// Predictions of every sample, each sample's split name, the temperature and the model name.
type ModelPredictions = (Vec<EvalRow>, HashMap<String, String>, f64, String);

/// Handles to a running engine.
pub struct Engine {
    pub requests: Sender<Request>,
    pub events: UnboundedReceiver<Event>,
    pub threads: Vec<JoinHandle<()>>,
}

/// Starts the dispatcher and worker threads.
pub fn spawn(config: Config) -> Engine {
    let (face_tx, face_rx) = channel::<Request>();
    let (work_tx, work_rx) = channel::<(JobId, Request)>();
    let (event_tx, event_rx) = unbounded_channel();
    let cancel = Arc::new(AtomicBool::new(false));
    let shutdown = Arc::new(AtomicBool::new(false));
    let (c, s) = (cancel.clone(), shutdown.clone());
    let dispatcher = std::thread::Builder::new()
        .name("melxai-dispatch".into())
        .spawn(move || dispatch(face_rx, work_tx, c, s))
        .ok();
    let worker = std::thread::Builder::new()
        .name("melxai-engine".into())
        .spawn(move || Worker::new(config, event_tx, cancel).run(work_rx, &shutdown))
        .ok();
    Engine {
        requests: face_tx,
        events: event_rx,
        threads: dispatcher.into_iter().chain(worker).collect(),
    }
}

fn dispatch(
    face: Receiver<Request>,
    work: Sender<(JobId, Request)>,
    cancel: Arc<AtomicBool>,
    shutdown: Arc<AtomicBool>,
) {
    let mut next: JobId = 1;
    while let Ok(req) = face.recv() {
        match req {
            Request::Cancel => cancel.store(true, Ordering::SeqCst),
            Request::Shutdown => {
                shutdown.store(true, Ordering::SeqCst);
                cancel.store(true, Ordering::SeqCst);
                let _ = work.send((0, Request::Shutdown));
                return;
            }
            other => {
                if work.send((next, other)).is_err() {
                    return;
                }
                next += 1;
            }
        }
    }
}

/// Forwards events to the face, throttling per-batch progress.
struct ChannelSink {
    tx: UnboundedSender<Event>,
    last_batch: Option<Instant>,
}

impl EventSink for ChannelSink {
    fn send(&mut self, event: Event) {
        if let Event::Batch { batch, batches, .. } = &event {
            let now = Instant::now();
            let recent = self.last_batch.is_some_and(|t| {
                now.duration_since(t) < Duration::from_millis(BATCH_EVENT_INTERVAL_MS)
            });
            if recent && batch != batches {
                return;
            }
            self.last_batch = Some(now);
        }
        let _ = self.tx.send(event);
    }
}

struct Worker {
    config: Config,
    sink: ChannelSink,
    cancel: Arc<AtomicBool>,
    data: Option<Scan>,
    caches: HashMap<[i64; 2], ImageCache>,
    models: HashMap<PathBuf, Classifier>,
}

impl Worker {
    fn new(config: Config, tx: UnboundedSender<Event>, cancel: Arc<AtomicBool>) -> Self {
        Worker {
            config,
            sink: ChannelSink {
                tx,
                last_batch: None,
            },
            cancel,
            data: None,
            caches: HashMap::new(),
            models: HashMap::new(),
        }
    }

    fn run(mut self, rx: Receiver<(JobId, Request)>, shutdown: &AtomicBool) {
        while let Ok((job, req)) = rx.recv() {
            // Jobs queued behind a shutdown are dropped, not run.
            if matches!(req, Request::Shutdown) || shutdown.load(Ordering::SeqCst) {
                return;
            }
            self.cancel.store(false, Ordering::SeqCst);
            let (kind, description) = describe(&req);
            self.sink.send(Event::Started {
                job,
                kind,
                description,
            });
            let result = self.handle(job, req);
            let event = match result {
                Ok(summary) => Event::Finished { job, summary },
                Err(Error::Cancelled) => Event::Cancelled { job },
                Err(e) => Event::Failed {
                    job,
                    error: e.to_string(),
                },
            };
            self.sink.send(event);
        }
    }

    fn handle(&mut self, job: JobId, req: Request) -> Result<String> {
        match req {
            Request::Train {
                name,
                epochs,
                excluded,
            } => self.train(job, name, epochs, excluded),
            Request::Evaluate { checkpoint } => self.evaluate(job, &checkpoint),
            Request::Calibrate { checkpoint } => self.calibrate(job, &checkpoint),
            Request::Explain {
                checkpoint,
                sample_ids,
                methods,
            } => self.explain(job, &checkpoint, &sample_ids, &methods),
            Request::Cancel | Request::Shutdown => Ok(String::new()),
        }
    }

    fn data(&mut self) -> Result<&Scan> {
        if self.data.is_none() {
            let s = scan(&self.config.data.root, true)?;
            for k in &s.skipped {
                self.sink.send(Event::Warning {
                    job: 0,
                    message: format!("skipped {}: {}", k.path.display(), k.reason),
                });
            }
            self.data = Some(s);
        }
        self.data
            .as_ref()
            .ok_or_else(|| Error::Other("data set".into()))
    }

    fn cache(&mut self, size: [i64; 2]) -> Result<&ImageCache> {
        if !self.caches.contains_key(&size) {
            let samples = self.data()?.samples.clone();
            let c = ImageCache::build(&samples, size)?;
            self.caches.insert(size, c);
        }
        self.caches
            .get(&size)
            .ok_or_else(|| Error::Other("cache".into()))
    }

    fn positive(&mut self) -> Result<usize> {
        let name = self.config.data.positive_class.clone();
        self.data()?.class_index(&name).ok_or_else(|| {
            Error::Config(format!(
                "positive class '{name}' not among the data set's classes"
            ))
        })
    }

    fn device(&self) -> Result<tch::Device> {
        parse_device(&self.config.device)
    }

    fn model(&mut self, path: &Path) -> Result<&Classifier> {
        let key = checkpoint::tensors_path(path);
        if !self.models.contains_key(&key) {
            let m = Classifier::from_checkpoint(path, self.device()?)?;
            self.models.insert(key.clone(), m);
        }
        self.models
            .get(&key)
            .ok_or_else(|| Error::Other("model".into()))
    }

    fn train(
        &mut self,
        job: JobId,
        name: Option<String>,
        epochs: Option<usize>,
        excluded: Vec<String>,
    ) -> Result<String> {
        let mut cfg = self.config.train.clone();
        if let Some(n) = name {
            cfg.name = n;
        }
        if let Some(e) = epochs {
            cfg.epochs = e;
        }
        let arch: Arch = cfg.arch.parse()?;
        let size = cfg
            .input_size
            .unwrap_or(EfficientNetConfig::new(arch, 2).resolution);
        let data = self.data()?.clone();
        let positive = self.positive()?;
        let samples: Vec<_> = data
            .samples
            .iter()
            .filter(|s| !excluded.contains(&s.id))
            .cloned()
            .collect();
        let cache = ImageCache::build(&samples, [size, size])?;
        let device = self.device()?;
        let mut ctx = TrainContext {
            cache: &cache,
            class_names: data.classes.clone(),
            positive,
            weights_dir: self.config.model.weights_dir.clone(),
            imagenet_dir: self.config.model.weights_dir.clone(),
            device,
            sink: &mut self.sink,
            cancel: &self.cancel,
            job,
            resume: true,
        };
        let outcome = train(&cfg, &mut ctx)?;
        // A retrained checkpoint replaces any cached copy.
        for s in &outcome.splits {
            self.models.remove(&s.checkpoint);
        }
        let s = &outcome.splits[0];
        let test = s
            .test_metrics
            .as_ref()
            .map(|m| {
                format!(
                    " test AUROC {:.3}, balanced accuracy {:.3}",
                    m.auroc, m.balanced_accuracy
                )
            })
            .unwrap_or_default();
        Ok(format!(
            "trained {} (best epoch {}){test}",
            s.checkpoint.display(),
            s.best_epoch
        ))
    }

    fn rows_for(&mut self, path: &Path) -> Result<ModelPredictions> {
        let meta = read_meta(path)?;
        let cache_size = meta.input_size;
        self.cache(cache_size)?;
        self.model(path)?;
        let key = checkpoint::tensors_path(path);
        let (Some(cache), Some(model)) = (self.caches.get(&cache_size), self.models.get(&key))
        else {
            return Err(Error::Other("engine state".into()));
        };
        let rows: Vec<usize> = (0..cache.len()).collect();
        let preds = predict_rows(model, cache, &rows, 32)?;
        let mut split_of = HashMap::new();
        if let Some(rec) = &meta.split {
            for (part, ids) in [
                ("train", &rec.train),
                ("val", &rec.val),
                ("test", &rec.test),
            ] {
                for id in ids {
                    split_of.insert(id.clone(), part.to_string());
                }
            }
        }
        Ok((preds, split_of, model.meta.temperature, meta.name))
    }

    fn evaluate(&mut self, job: JobId, path: &Path) -> Result<String> {
        let positive = self.positive()?;
        let (preds, split_of, temperature, name) = self.rows_for(path)?;
        let rows: Vec<_> = preds
            .iter()
            .map(|r| {
                r.to_prediction(
                    positive,
                    temperature,
                    split_of.get(&r.id).map(String::as_str).unwrap_or("unseen"),
                )
            })
            .collect();
        let n = rows.len();
        self.sink.send(Event::Predictions {
            job,
            model: name,
            rows,
        });
        Ok(format!("predicted {n} samples with {}", path.display()))
    }

    fn calibrate(&mut self, job: JobId, path: &Path) -> Result<String> {
        let positive = self.positive()?;
        let (preds, split_of, _, name) = self.rows_for(path)?;
        let pick = |part: &str| -> Vec<&EvalRow> {
            preds
                .iter()
                .filter(|r| split_of.get(&r.id).map(String::as_str) == Some(part))
                .collect()
        };
        let outcome = fit_split(&pick("val"), &pick("test"), positive)?;
        store_temperature(path, outcome.fit.temperature)?;
        if let Some(m) = self.models.get_mut(&checkpoint::tensors_path(path)) {
            m.meta.temperature = outcome.fit.temperature;
        }
        let shown = &outcome.results[0];
        let json = |r| serde_json::to_value(r).map_err(|e| Error::Other(e.to_string()));
        self.sink.send(Event::Calibration {
            job,
            model: name,
            temperature: outcome.fit.temperature,
            before: json(&shown.before)?,
            after: json(&shown.after)?,
        });
        Ok(format!(
            "temperature {:.3} fitted on {} validation images; {}: ECE {:.3} -> {:.3}",
            outcome.fit.temperature,
            outcome.fitted_n,
            shown.evaluated_on,
            shown.before.ece,
            shown.after.ece
        ))
    }

    fn explain(
        &mut self,
        job: JobId,
        path: &Path,
        ids: &[String],
        methods: &[String],
    ) -> Result<String> {
        let methods: Vec<Method> = methods.iter().map(|m| m.parse()).collect::<Result<_>>()?;
        let cfg: ExplainConfig = self.config.explain.clone();
        let meta = read_meta(path)?;
        let size = meta.input_size;
        self.cache(size)?;
        self.model(path)?;
        let name = meta.name.clone();
        let key = checkpoint::tensors_path(path);
        let total = (ids.len() * methods.len()) as u64;
        let mut done = 0u64;
        let started = Instant::now();
        for id in ids {
            let (Some(cache), Some(model)) = (self.caches.get(&size), self.models.get(&key)) else {
                return Err(Error::Other("engine state".into()));
            };
            let row = cache
                .index_of(id)
                .ok_or_else(|| Error::Dataset(format!("sample '{id}' not in the data set")))?;
            let x = crate::data::image::normalise(&cache.batch(&[row]), &model.meta.normalisation)
                .squeeze_dim(0);
            for &method in &methods {
                if self.cancel.load(Ordering::Relaxed) {
                    return Err(Error::Cancelled);
                }
                let e = explain(model, &x, method, &cfg)?;
                let s = e.heatmap.size();
                let map = HeatmapData {
                    sample_id: id.clone(),
                    method: method.key().to_string(),
                    height: s[0] as usize,
                    width: s[1] as usize,
                    values: to_vec(&e.heatmap)?,
                    target: e.target,
                    delta: e.delta,
                };
                self.sink.send(Event::Heatmap {
                    job,
                    model: name.clone(),
                    map,
                });
                done += 1;
                let eta = started.elapsed().as_secs_f64() / done as f64 * (total - done) as f64;
                self.sink.send(Event::Progress {
                    job,
                    stage: format!("explaining {id}"),
                    done,
                    total,
                    eta_seconds: Some(eta),
                });
            }
        }
        Ok(format!("{done} maps for {} samples", ids.len()))
    }
}

fn describe(req: &Request) -> (JobKind, String) {
    match req {
        Request::Train { name, .. } => (
            JobKind::Train,
            format!(
                "training {}",
                name.clone().unwrap_or_else(|| "(configured)".into())
            ),
        ),
        Request::Evaluate { checkpoint } => (
            JobKind::Evaluate,
            format!("evaluating {}", checkpoint.display()),
        ),
        Request::Calibrate { checkpoint } => (
            JobKind::Calibrate,
            format!("calibrating {}", checkpoint.display()),
        ),
        Request::Explain {
            sample_ids,
            methods,
            ..
        } => (
            JobKind::Explain,
            format!(
                "explaining {} sample(s) with {}",
                sample_ids.len(),
                methods.join(", ")
            ),
        ),
        Request::Cancel | Request::Shutdown => (JobKind::Evaluate, String::new()),
    }
}
