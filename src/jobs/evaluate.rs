//! The evaluate job: eval-mode logits for samples of an image cache, in
//! batches, with progress and a cancel check between batches.

use super::JobContext;
use crate::data::cache::ImageCache;
use crate::ensemble::Model;
use crate::error::Result;
use crate::eval::{predict_model_rows, EvalRow};
use crate::progress::Event;

/// Images per forward pass.
pub const EVAL_BATCH_SIZE: usize = 32;

pub struct EvaluateJob<'a> {
    /// One checkpoint or an ensemble (with TTA when it is on).
    pub model: &'a Model,
    pub cache: &'a ImageCache,
    /// Rows of the cache to predict, in output order.
    pub rows: &'a [usize],
}

/// One [`EvalRow`] per requested row (raw logits: temperature is applied by
/// whoever reads them).
pub fn evaluate(ctx: &mut JobContext, job: EvaluateJob) -> Result<Vec<EvalRow>> {
    let total = job.rows.len() as u64;
    let mut out = Vec::with_capacity(job.rows.len());
    for chunk in job.rows.chunks(EVAL_BATCH_SIZE) {
        ctx.cancel.check()?;
        out.extend(predict_model_rows(
            job.model,
            job.cache,
            chunk,
            EVAL_BATCH_SIZE,
        )?);
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
