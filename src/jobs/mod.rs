//! The library jobs every face calls: train, evaluate, calibrate, explain a
//! split, compare. Each is one function taking a [`JobContext`] (where its
//! progress goes, what stops it, the device and the configuration) and a job
//! description, and returning a typed result. The TUI's engine, the CLI
//! subcommands and `--batch` differ only in how they watch and what they do
//! with the result.

pub mod calibrate;
pub mod compare;
pub mod evaluate;
pub mod explain;
pub mod score_store;
pub mod scores;
pub mod train;

use std::path::Path;

use tch::Device;

use crate::config::Config;
use crate::data::scan::Scan;
use crate::error::{Error, Result};
use crate::progress::{CancelToken, Event, EventSink, JobId};

/// What every job needs besides its own description.
pub struct JobContext<'a> {
    pub config: &'a Config,
    pub device: Device,
    pub sink: &'a mut dyn EventSink,
    pub cancel: &'a CancelToken,
    /// Id the job's events carry (0 where nobody tells jobs apart).
    pub job: JobId,
}

impl<'a> JobContext<'a> {
    /// A context for a one-off job (the CLI subcommands): the configured
    /// device, resolved and checked, and job id 0.
    pub fn for_config(
        config: &'a Config,
        sink: &'a mut dyn EventSink,
        cancel: &'a CancelToken,
    ) -> crate::Result<Self> {
        Ok(JobContext {
            config,
            device: crate::device::parse_device(&config.device)?,
            sink,
            cancel,
            job: 0,
        })
    }

    /// Sends a non-fatal problem to whoever watches.
    pub fn warn(&mut self, message: String) {
        self.sink.send(Event::Warning {
            job: self.job,
            message,
        });
    }
}

/// Index of the configured positive class (`[data] positive_class`) among
/// `classes`. Metrics, calibration and explanations all hinge on it, so a
/// name that is not there is an error, never a silent class 0.
pub fn positive_class(config: &Config, classes: &[String]) -> Result<usize> {
    let name = &config.data.positive_class;
    classes.iter().position(|c| c == name).ok_or_else(|| {
        Error::Config(format!(
            "[data] positive_class: '{name}' is not among the data set's classes {classes:?}"
        ))
    })
}

/// Refuses a checkpoint whose class names (in logit order) differ from the
/// data set's classes (in label order): labels index the data set's classes
/// and logits the checkpoint's, so another order would silently swap
/// classes in every metric, and other names mean another task.
pub fn check_classes(checkpoint: &Path, classes: &[String], data: &Scan) -> Result<()> {
    if classes == data.classes.as_slice() {
        return Ok(());
    }
    let mut same_set = classes.to_vec();
    let mut theirs = data.classes.clone();
    same_set.sort();
    theirs.sort();
    let hint = if same_set == theirs {
        "the same classes in another order; retrain on this data set, or rename the class folders to match"
    } else {
        "is this the data set it was trained on?"
    };
    Err(Error::Checkpoint {
        path: crate::model::checkpoint::meta_path(checkpoint),
        message: format!(
            "its classes {classes:?} (logit order) do not match the data set's {:?} ({}): {hint}",
            data.classes,
            data.root.display()
        ),
    })
}

/// Reads the data set `[data]` describes, reporting each skipped file as a
/// warning. Images are decoded up front to skip unreadable ones, except
/// with a store, which lists (and remembers) them as it decodes.
pub fn scan_data(ctx: &mut JobContext) -> Result<Scan> {
    let data = crate::data::load(&ctx.config.data, ctx.config.data.store.is_none())?;
    for k in &data.skipped {
        ctx.warn(format!("skipped {}: {}", k.path.display(), k.reason));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_positive_class_is_an_error_naming_the_key() {
        let mut config = Config::default();
        config.data.positive_class = "melanoma".into();
        let classes = vec!["melanoma".to_string(), "naevus".to_string()];
        assert_eq!(positive_class(&config, &classes).unwrap(), 0);
        config.data.positive_class = "melanom".into();
        let e = positive_class(&config, &classes).unwrap_err().to_string();
        assert!(
            e.contains("[data] positive_class") && e.contains("melanom"),
            "{e}"
        );
    }
}
