//! Engine events on a terminal: bars with ETA on a TTY, one plain line per
//! epoch and step otherwise. Everything goes to stderr; results go to stdout.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use melxai::progress::{CancelToken, Event, EventSink};

pub struct CliProgress {
    bar: Option<ProgressBar>,
    tty: bool,
}

impl CliProgress {
    pub fn new() -> Self {
        CliProgress {
            bar: None,
            tty: std::io::stderr().is_terminal(),
        }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(b) => b.println(text),
            None => eprintln!("{text}"),
        }
    }
}

impl EventSink for CliProgress {
    fn send(&mut self, event: Event) {
        match event {
            Event::Batch {
                epoch,
                batch,
                batches,
                loss,
                learning_rate,
                ..
            } if self.tty => {
                let bar = self.bar.get_or_insert_with(|| {
                    let b = ProgressBar::new(batches as u64);
                    b.set_style(
                        ProgressStyle::with_template(
                            "{prefix} [{bar:30}] {pos}/{len} {msg} (eta {eta})",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    b
                });
                bar.set_length(batches as u64);
                bar.set_prefix(format!("epoch {epoch}"));
                bar.set_position(batch as u64);
                bar.set_message(format!("loss {loss:.4} lr {learning_rate:.2e}"));
            }
            Event::Epoch { summary, .. } => {
                let fold = summary
                    .fold
                    .map(|(f, k)| format!("fold {}/{k} ", f + 1))
                    .unwrap_or_default();
                let val = if summary.val_loss.is_nan() {
                    "no validation images".to_string()
                } else {
                    format!(
                        "val loss {:.4}  val bal.acc {:.3}  val AUROC {:.3}",
                        summary.val_loss, summary.val_balanced_accuracy, summary.val_auroc
                    )
                };
                self.line(&format!(
                    "{fold}epoch {:>3}/{}  train loss {:.4}  {val}  lr {:.2e}  {:.1}s ({:.1} img/s)",
                    summary.epoch,
                    summary.epochs,
                    summary.train_loss,
                    summary.learning_rate,
                    summary.seconds,
                    summary.images_per_second
                ));
            }
            Event::Progress {
                stage, eta_seconds, ..
            } if !self.tty => {
                let eta = eta_seconds
                    .map(|s| format!(" (eta {s:.0}s)"))
                    .unwrap_or_default();
                eprintln!("{stage}{eta}");
            }
            Event::Warning { message, .. } => self.line(&format!("note: {message}")),
            Event::Failed { error, .. } => self.line(&format!("failed: {error}")),
            Event::Finished { summary, .. } => {
                if let Some(b) = self.bar.take() {
                    b.finish_and_clear();
                }
                self.line(&summary);
            }
            _ => {}
        }
    }
}

/// A token cancelled by the first Ctrl-C, so the job stops at its next step
/// boundary and keeps what it finished; a second Ctrl-C exits at once (130).
/// `what` says where it stops, e.g. "the next batch boundary".
pub fn cancel_on_ctrl_c(what: &'static str) -> CancelToken {
    let token = CancelToken::new();
    let handler_token = token.clone();
    let _ = ctrlc::set_handler(move || {
        if handler_token.is_cancelled() {
            std::process::exit(130);
        }
        handler_token.cancel();
        eprintln!("\ncancelling at {what} (Ctrl-C again to abort)");
    });
    token
}
