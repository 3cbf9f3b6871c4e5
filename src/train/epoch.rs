//! One epoch of a split's training (the shuffled batches, validation, the
//! checkpoint the epoch earns, the `-last` resume point), and the context,
//! plan and state it works on.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Reduction, Tensor};

use super::config::{Monitor, Sampler, TrainConfig};
use super::optimizer::AdamW;
use super::resume_point::{save_last, BackgroundSave};
use super::schedule::learning_rate;
use super::weight_average::WeightAverage;
use crate::data::augment::augment;
use crate::data::cache::ImageCache;
use crate::data::image::normalise;
use crate::data::split::Split;
use crate::error::Result;
use crate::evaluate::{metrics, predict_rows, weighted_cross_entropy};
use crate::model::checkpoint::TrainingProgress;
use crate::model::precision::LossScaler;
use crate::model::Classifier;
use crate::progress::{CancelToken, EpochSummary, Event, EventSink, JobId};

/// Everything a training run needs from its caller.
pub struct TrainContext<'a> {
    pub cache: &'a ImageCache,
    pub class_names: Vec<String>,
    pub positive: usize,
    /// Where checkpoints are written.
    pub weights_dir: PathBuf,
    /// Where the shipped ImageNet weights are read from.
    pub imagenet_dir: PathBuf,
    pub device: Device,
    pub sink: &'a mut dyn EventSink,
    pub cancel: &'a CancelToken,
    pub job: JobId,
    /// Continue an interrupted run from its `-last` checkpoint.
    pub resume: bool,
    /// The config file the run was started with when not the default
    /// `config.toml`, so advice to start it over names it.
    pub config_file: Option<PathBuf>,
}

/// Checkpoint path stems for a run name.
pub(super) fn best_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// Checkpoint metric: how many epochs a weight-averaged checkpoint's mean holds.
pub(super) const EPOCHS_AVERAGED: &str = "swa_epochs_averaged";

/// A finished batch whose loss has not been read back yet.
struct BatchLoss {
    batch: usize,
    loss: Tensor,
    size: usize,
    learning_rate: f64,
}

/// What a split's epochs read and never change, so the helpers share one argument.
pub(super) struct SplitPlan<'a> {
    pub(super) cfg: &'a TrainConfig,
    pub(super) name: &'a str,
    pub(super) dir: PathBuf,
    pub(super) split: Split,
    pub(super) fold: Option<(usize, usize)>,
    pub(super) class_weights: Vec<f64>,
    pub(super) weights_t: Tensor,
    pub(super) batches_per_epoch: usize,
    pub(super) total_steps: usize,
    pub(super) warmup_steps: usize,
}

/// What training changes from epoch to epoch; the `-last` resume point saves
/// all of it but the loss scaler.
pub(super) struct SplitState {
    pub(super) last_commit: BackgroundSave,
    pub(super) history: Vec<EpochSummary>,
    pub(super) progress: TrainingProgress,
    pub(super) average: Option<WeightAverage>,
    pub(super) scaler: Option<LossScaler>,
    pub(super) opt: AdamW,
    pub(super) model: Classifier,
}

impl SplitState {
    /// Commits the `-last` resume point on the background writer.
    pub(super) fn save_last(&mut self, plan: &SplitPlan) -> Result<()> {
        save_last(
            &self.model,
            resume_state(&self.opt, &self.average),
            &self.progress,
            &self.history,
            &plan.dir,
            plan.name,
            &mut self.last_commit,
        )
    }
}

/// This invocation's epoch timing (for ETAs) and early-stopping count,
/// which a resume recomputes rather than reads back.
pub(super) struct EpochClock {
    pub(super) started: Instant,
    pub(super) epochs_run: usize,
    pub(super) since_best: usize,
}

/// One epoch's draw from the (seed, epoch) stream: the shuffled training
/// rows (on the host and on the device) and the generator that goes on to
/// drive augmentation.
struct EpochDraw {
    epoch: usize,
    rng: ChaCha8Rng,
    order: Vec<usize>,
    order_t: Tensor,
}

/// As many rows as `train` holds, drawn with replacement: a class chosen
/// uniformly among those present, then a row of it uniformly, so a 1.8 %
/// class is seen as often as the rest.
pub(super) fn class_balanced_draw(
    train: &[usize],
    labels: &[usize],
    rng: &mut ChaCha8Rng,
) -> Vec<usize> {
    let mut by_class: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for &r in train {
        by_class.entry(labels[r]).or_default().push(r);
    }
    let classes: Vec<&Vec<usize>> = by_class.values().collect();
    (0..train.len())
        .map(|_| {
            let rows = classes[rng.gen_range(0..classes.len())];
            rows[rng.gen_range(0..rows.len())]
        })
        .collect()
}

/// One epoch, reseeded from (seed, epoch) so a resumed run repeats it
/// exactly: trains, validates, keeps what it earns, commits the resume point.
pub(super) fn run_epoch(
    plan: &SplitPlan,
    ctx: &mut TrainContext,
    state: &mut SplitState,
    clock: &mut EpochClock,
    images: &Tensor,
    labels: &Tensor,
) -> Result<()> {
    let (cfg, name) = (plan.cfg, plan.name);
    let epoch = state.progress.epochs_done + 1;
    let t0 = Instant::now();
    tch::manual_seed(
        (cfg.seed as i64)
            .wrapping_mul(1000)
            .wrapping_add(epoch as i64),
    );
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed.wrapping_mul(7919).wrapping_add(epoch as u64));
    let order = match cfg.sampler {
        Sampler::Shuffle => {
            let mut order = plan.split.train.clone();
            order.shuffle(&mut rng);
            order
        }
        Sampler::ClassBalanced => {
            class_balanced_draw(&plan.split.train, &ctx.cache.labels, &mut rng)
        }
    };
    ctx.sink.send(Event::Progress {
        job: ctx.job,
        stage: format!("{name} epoch {epoch}/{}", cfg.epochs),
        done: (epoch - 1) as u64,
        total: cfg.epochs as u64,
        eta_seconds: (clock.epochs_run > 0).then(|| {
            clock.started.elapsed().as_secs_f64() / clock.epochs_run as f64
                * (cfg.epochs - epoch + 1) as f64
        }),
    });
    // The epoch's order goes to the device once; each batch is a slice of it.
    let order_t = Tensor::from_slice(&order.iter().map(|&r| r as i64).collect::<Vec<_>>())
        .to_device(ctx.device);
    let mut draw = EpochDraw {
        epoch,
        rng,
        order,
        order_t,
    };
    let (loss_sum, seen, lr) = train_batches(plan, ctx, state, &mut draw, images, labels)?;
    let train_seconds = t0.elapsed().as_secs_f64();
    let summary = validated(
        &state.model,
        ctx,
        &plan.split.val,
        &plan.class_weights,
        EpochSummary {
            fold: plan.fold,
            epoch,
            epochs: cfg.epochs,
            train_loss: loss_sum / seen.max(1) as f64,
            val_loss: f64::NAN,
            val_balanced_accuracy: f64::NAN,
            val_auroc: f64::NAN,
            learning_rate: lr,
            seconds: t0.elapsed().as_secs_f64(),
            images_per_second: seen as f64 / train_seconds.max(1e-9),
        },
    )?;
    state.progress.epochs_done = epoch;
    clock.epochs_run += 1;
    keep_checkpoint(plan, ctx, state, clock, &summary, epoch)?;
    close_epoch(plan, ctx, state, clock, summary, epoch)
}

/// The epoch's optimiser steps, one per batch, each batch's loss reported
/// as an event; returns the loss sum, images seen and last learning rate.
fn train_batches(
    plan: &SplitPlan,
    ctx: &mut TrainContext,
    state: &mut SplitState,
    draw: &mut EpochDraw,
    images: &Tensor,
    labels: &Tensor,
) -> Result<(f64, usize, f64)> {
    let cfg = plan.cfg;
    let (epoch, batches_per_epoch) = (draw.epoch, plan.batches_per_epoch);
    let (mut loss_sum, mut seen) = (0.0, 0usize);
    let mut lr = cfg.learning_rate;
    // On a GPU a batch's loss is read one step late, once the next step
    // is queued, so the host never waits on the device mid-epoch; on the
    // CPU the value is there already and the event goes out at once.
    let read_late = ctx.device != Device::Cpu;
    let mut pending: Option<BatchLoss> = None;
    let mut report = |p: BatchLoss| {
        let l = p.loss.double_value(&[]);
        loss_sum += l * p.size as f64;
        seen += p.size;
        ctx.sink.send(Event::Batch {
            job: ctx.job,
            epoch,
            batch: p.batch,
            batches: batches_per_epoch,
            loss: l,
            learning_rate: p.learning_rate,
        });
    };
    for (b, rows) in draw.order.chunks(cfg.batch_size.max(1)).enumerate() {
        ctx.cancel.check()?;
        let step = (epoch - 1) * batches_per_epoch + b;
        lr = learning_rate(
            cfg.schedule,
            cfg.learning_rate,
            step,
            plan.total_steps,
            plan.warmup_steps,
        );
        state.opt.lr = lr;
        let idx = draw
            .order_t
            .narrow(0, (b * cfg.batch_size.max(1)) as i64, rows.len() as i64);
        let x = if ctx.cache.streamed.is_some() {
            ctx.cache.batch(rows).to_device(ctx.device)
        } else {
            ImageCache::gather(images, &idx)
        };
        let x = augment(&x, &cfg.augment, &mut draw.rng);
        let x = normalise(&x, &state.model.meta.normalisation);
        let y = labels.index_select(0, &idx);
        let loss = cfg.precision.run(ctx.device, || {
            state
                .model
                .net
                .forward_t(&x, !cfg.freeze_backbone)
                .to_kind(Kind::Float)
                .cross_entropy_loss::<Tensor>(
                    &y,
                    Some(plan.weights_t.shallow_clone()),
                    Reduction::Mean,
                    -100,
                    0.0,
                )
        });
        let finite = match state.scaler.as_mut() {
            None => {
                state.opt.backward(&loss);
                true
            }
            Some(s) => {
                state.opt.backward(&(&loss * s.scale));
                let finite = state.opt.unscale_grads(s.scale);
                s.update(finite);
                finite
            }
        };
        if finite {
            if cfg.grad_clip > 0.0 {
                let _ = state.opt.clip_grad_norm(cfg.grad_clip);
            }
            state.opt.step();
        }
        let done = BatchLoss {
            batch: b + 1,
            loss: loss.detach(),
            size: rows.len(),
            learning_rate: lr,
        };
        if !read_late {
            report(done);
        } else if let Some(p) = pending.replace(done) {
            report(p);
        }
    }
    if let Some(p) = pending.take() {
        report(p);
    }
    Ok((loss_sum, seen, lr))
}

/// Keeps the checkpoint the epoch earns: under weight averaging the mean
/// after the last epoch, otherwise the epoch itself when it scores best.
fn keep_checkpoint(
    plan: &SplitPlan,
    ctx: &mut TrainContext,
    state: &mut SplitState,
    clock: &mut EpochClock,
    summary: &EpochSummary,
    epoch: usize,
) -> Result<()> {
    let (cfg, name, dir) = (plan.cfg, plan.name, &plan.dir);
    let s = score(cfg.monitor, summary);
    if let Some(avg) = state.average.as_mut() {
        if avg.covers(epoch) {
            avg.add(&state.model)?;
        }
        // After the last epoch the mean is the run's checkpoint, scored
        // on the validation split like a best epoch. Until then the
        // `-last` resume point carries it: no checkpoint write per epoch
        // (on a GPU an epoch takes about as long as one).
        if epoch == cfg.epochs {
            let averaged = (EPOCHS_AVERAGED, avg.count() as f64);
            let progress = &mut state.progress;
            avg.with_mean(&mut state.model, |m| {
                let mean = validated(
                    m,
                    ctx,
                    &plan.split.val,
                    &plan.class_weights,
                    summary.clone(),
                )?;
                progress.best_score = score(cfg.monitor, &mean);
                progress.best_epoch = epoch;
                save_best(m, &mean, progress, Some(averaged), &best_path(dir, name))
            })?;
        }
    } else if s > state.progress.best_score || state.progress.best_epoch == 0 {
        state.progress.best_score = s;
        state.progress.best_epoch = epoch;
        clock.since_best = 0;
        save_best(
            &mut state.model,
            summary,
            &state.progress,
            None,
            &best_path(dir, name),
        )?;
    } else {
        clock.since_best += 1;
    }
    Ok(())
}

/// Records the epoch (history and events), stops early once patience runs
/// out, and commits the resume point the next epoch or a resume starts from.
fn close_epoch(
    plan: &SplitPlan,
    ctx: &mut TrainContext,
    state: &mut SplitState,
    clock: &EpochClock,
    summary: EpochSummary,
    epoch: usize,
) -> Result<()> {
    let (cfg, name) = (plan.cfg, plan.name);
    state.history.push(summary.clone());
    let eta = clock.started.elapsed().as_secs_f64() / clock.epochs_run as f64
        * (cfg.epochs - epoch) as f64;
    ctx.sink.send(Event::Epoch {
        job: ctx.job,
        summary,
    });
    ctx.sink.send(Event::Progress {
        job: ctx.job,
        stage: format!("{name} epoch {epoch}/{}", cfg.epochs),
        done: epoch as u64,
        total: cfg.epochs as u64,
        eta_seconds: Some(eta),
    });
    if cfg.patience > 0 && clock.since_best >= cfg.patience {
        ctx.sink.send(Event::Warning {
            job: ctx.job,
            message: format!(
                "{name}: early stop after epoch {epoch} (best epoch {})",
                state.progress.best_epoch
            ),
        });
        state.progress.finished = true;
    }
    if epoch == cfg.epochs {
        state.progress.finished = true;
    }
    state.save_last(plan)
}

fn score(monitor: Monitor, s: &EpochSummary) -> f64 {
    // Higher is better for every monitored quantity.
    match monitor {
        Monitor::ValLoss => -s.val_loss,
        Monitor::ValAuroc => s.val_auroc,
        Monitor::ValBalancedAccuracy => s.val_balanced_accuracy,
    }
}

/// What the `-last` resume point keeps beside the weights: the optimiser's
/// state and the running weight average (none when averaging is off or has
/// not started).
fn resume_state(opt: &AdamW, average: &Option<WeightAverage>) -> Vec<(String, Tensor)> {
    let mut state = opt.state();
    state.extend(
        average
            .as_ref()
            .map(WeightAverage::state)
            .unwrap_or_default(),
    );
    state
}

/// `summary` with the validation loss, balanced accuracy and AUROC of
/// `model` on the `rows` of the validation split (left NaN when there are
/// none: a fold trained without validation under weight averaging).
fn validated(
    model: &Classifier,
    ctx: &TrainContext,
    rows: &[usize],
    class_weights: &[f64],
    summary: EpochSummary,
) -> Result<EpochSummary> {
    if rows.is_empty() {
        return Ok(summary);
    }
    let val = predict_rows(model, ctx.cache, rows, 32, false)?;
    let m = metrics(&val, ctx.positive, 1.0)?;
    Ok(EpochSummary {
        val_loss: weighted_cross_entropy(&val, class_weights),
        val_balanced_accuracy: m.balanced_accuracy,
        val_auroc: m.auroc,
        ..summary
    })
}

/// Writes `model` as the run's checkpoint, with the validation figures of
/// `summary` (and `extra`, e.g. how many epochs a mean holds) and `progress`
/// in its metadata.
fn save_best(
    model: &mut Classifier,
    summary: &EpochSummary,
    progress: &TrainingProgress,
    extra: Option<(&str, f64)>,
    path: &Path,
) -> Result<()> {
    model.meta.metrics = epoch_metrics(summary);
    if let Some((key, value)) = extra {
        model.meta.metrics.insert(key.into(), value);
    }
    model.meta.progress = Some(progress.clone());
    model.save(path).map(|_| ())
}

fn epoch_metrics(s: &EpochSummary) -> std::collections::BTreeMap<String, f64> {
    [
        ("epoch", s.epoch as f64),
        ("val_loss", s.val_loss),
        ("val_auroc", s.val_auroc),
        ("val_balanced_accuracy", s.val_balanced_accuracy),
    ]
    .into_iter()
    .filter(|(_, v)| v.is_finite())
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_class_balanced_draw_sees_a_rare_class_as_often_as_the_rest() {
        // 4 melanomas among 200 images, as at ISIC 2020's prevalence.
        let labels: Vec<usize> = (0..200).map(|i| usize::from(i % 50 == 0)).collect();
        let train: Vec<usize> = (0..200).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let order = class_balanced_draw(&train, &labels, &mut rng);
        assert_eq!(order.len(), 200);
        let rare = order.iter().filter(|&&r| labels[r] == 1).count();
        assert!((80..=120).contains(&rare), "{rare} of 200 draws");
        let mut again = ChaCha8Rng::seed_from_u64(3);
        assert_eq!(order, class_balanced_draw(&train, &labels, &mut again));
    }
}
