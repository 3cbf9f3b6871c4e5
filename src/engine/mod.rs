//! The engine: jobs run on a worker thread and report typed events, so the
//! TUI and `--batch` consume the same pipeline without knowing each other.

pub mod events;
pub mod requests;
pub mod worker;

pub use events::{Event, EventSink, JobId, JobKind};
pub use requests::Request;
