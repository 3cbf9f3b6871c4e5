//! The engine's event sink: forwards a job's events to the face's channel,
//! thinning per-batch events so a fast trainer cannot flood the UI.

use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use crate::progress::{Event, EventSink};

/// Batch events closer together than this are dropped (the last batch of an
/// epoch, and every other kind of event, always go through).
pub const BATCH_EVENT_INTERVAL_MS: u64 = 100;

/// Forwards events to the face, throttling per-batch progress to about ten a
/// second. A face that has gone away is not an error: events are dropped.
pub struct ChannelSink {
    tx: UnboundedSender<Event>,
    last_batch: Option<Instant>,
}

impl ChannelSink {
    pub fn new(tx: UnboundedSender<Event>) -> Self {
        ChannelSink {
            tx,
            last_batch: None,
        }
    }
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
