//! The evaluate job: eval-mode logits for samples of an image cache, in
//! batches, with progress and a cancel check between batches.

use super::JobContext;
use crate::data::cache::ImageCache;
use crate::ensemble::tta::DIHEDRAL_TRANSFORMS;
use crate::ensemble::Model;
use crate::error::Result;
use crate::evaluate::predict_model_rows;
use crate::progress::Event;
use crate::verdict::EvalRow;

/// Images per forward pass.
pub const EVAL_BATCH_SIZE: usize = 32;

pub struct EvaluateJob<'a> {
    /// One checkpoint or an ensemble (with TTA when it is on).
    pub model: &'a Model,
    pub cache: &'a ImageCache,
    /// Rows of the cache to predict, in output order.
    pub rows: &'a [usize],
}

/// Smallest number of images between two cancel checks on the CPU.
pub const MIN_CPU_CHUNK: usize = 4;

/// Images predicted between two cancel checks (and progress events).
///
/// Why: one chunk costs its images × the model's forward passes per image
/// (members, × 8 under TTA). An ensemble of five with TTA spent about 6 s
/// on a chunk of 32 on 2 CPU cores, and quitting the TUI waits for the
/// chunk in flight. On the CPU the chunk shrinks with that cost, to
/// [`MIN_CPU_CHUNK`]; on CUDA a chunk takes milliseconds and the batch
/// size drives throughput, so it stays [`EVAL_BATCH_SIZE`].
pub fn chunk_size(model: &Model, device: tch::Device) -> usize {
    if device.is_cuda() {
        return EVAL_BATCH_SIZE;
    }
    let passes = model.members().len().max(1) * if model.tta { DIHEDRAL_TRANSFORMS } else { 1 };
    (EVAL_BATCH_SIZE / passes).clamp(MIN_CPU_CHUNK, EVAL_BATCH_SIZE)
}

/// One [`EvalRow`] per requested row (raw logits: temperature is applied by
/// whoever reads them).
pub fn evaluate(ctx: &mut JobContext, job: EvaluateJob) -> Result<Vec<EvalRow>> {
    let total = job.rows.len() as u64;
    let mut out = Vec::with_capacity(job.rows.len());
    let chunk_size = chunk_size(job.model, job.model.device());
    for chunk in job.rows.chunks(chunk_size) {
        ctx.cancel.check()?;
        out.extend(predict_model_rows(job.model, job.cache, chunk, chunk_size)?);
        ctx.sink.send(Event::Progress {
            job: ctx.job,
            stage: format!("predicting with {}", job.model.meta.name),
            done: out.len() as u64,
            total,
            eta_seconds: None,
        });
    }
    Ok(out)
}

/// Every row of `cache` with `model`'s evaluation of it: what explaining a
/// split needs (the predicted class, the probability shown).
pub fn evaluate_all(
    ctx: &mut JobContext,
    model: &Model,
    cache: &crate::data::cache::ImageCache,
) -> Result<Vec<(usize, EvalRow)>> {
    let rows: Vec<usize> = (0..cache.len()).collect();
    let preds = evaluate(
        ctx,
        EvaluateJob {
            model,
            cache,
            rows: &rows,
        },
    )?;
    Ok(rows.into_iter().zip(preds).collect())
}
