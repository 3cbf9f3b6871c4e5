//! The engine: runs jobs for the TUI as tokio tasks and reports typed events,
//! so the UI thread never blocks on libtorch.
//!
//! One task serves the face's requests: it queues jobs, runs them one at a
//! time with `spawn_blocking` (libtorch work must not sit on the async
//! runtime), and answers every job with `Started` then exactly one of
//! `Finished`, `Failed` or `Cancelled`. A job that panics is caught
//! ([`isolate`]) and ends as `Failed` with its message; the engine and the
//! face carry on. `Cancel` stops the running job at its next step boundary
//! and every job queued before it; jobs submitted afterwards run normally.
//!
//! What a job does is up to a [`JobRunner`]: [`runner::PipelineRunner`] runs
//! the library jobs, tests use a fake one (no libtorch needed).

pub mod isolate;
pub mod requests;
pub mod runner;
pub mod sink;

use std::collections::VecDeque;

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::task::JoinHandle;

use crate::progress::CancelToken;
pub use crate::progress::{Event, EventSink, JobId, JobKind};
use crate::Result;
pub use requests::Request;
use sink::ChannelSink;

/// Requests that steer the engine rather than run as jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Stop the running job and the queued ones.
    Cancel,
    /// Cancel everything, drop the queue, and end the engine.
    Shutdown,
}

/// A request the engine can queue: says whether it is a control and, if it
/// is a job, what kind and how to describe it.
pub trait EngineJob: Send + 'static {
    fn control(&self) -> Option<Control>;
    fn describe(&self) -> (JobKind, String);
}

/// Does the work of jobs. Owned by the engine, lent to one blocking task at a
/// time, so it may keep caches (data set scans, models) between jobs.
pub trait JobRunner: Send + 'static {
    type Job: EngineJob;

    /// Runs one job to completion; `Ok` carries the one-line summary.
    /// Returns `Err(Error::Cancelled)` when it saw the token.
    fn run(
        &mut self,
        id: JobId,
        job: Self::Job,
        sink: &mut dyn EventSink,
        cancel: &CancelToken,
    ) -> Result<String>;

    /// Called after a job panicked: caches may be half-updated, drop them.
    fn recover(&mut self) {}
}

/// Handles to a running engine.
pub struct Engine<J> {
    pub requests: UnboundedSender<J>,
    pub events: UnboundedReceiver<Event>,
    /// Ends after `Shutdown` (or when every request sender is dropped) once
    /// the running job has returned.
    pub task: JoinHandle<()>,
}

/// Starts the engine task on the current tokio runtime.
pub fn spawn<R: JobRunner>(runner: R) -> Engine<R::Job> {
    let (req_tx, req_rx) = unbounded_channel();
    let (ev_tx, ev_rx) = unbounded_channel();
    let task = tokio::spawn(serve(runner, req_rx, ev_tx));
    Engine {
        requests: req_tx,
        events: ev_rx,
        task,
    }
}

/// The pipeline engine for the TUI.
pub fn spawn_pipeline(config: crate::config::Config) -> Engine<Request> {
    spawn(runner::PipelineRunner::new(config))
}

type Running<R> = JoinHandle<(R, std::result::Result<Result<String>, String>)>;

async fn serve<R: JobRunner>(
    runner: R,
    mut requests: UnboundedReceiver<R::Job>,
    events: UnboundedSender<Event>,
) {
    let mut idle_runner = Some(runner);
    let mut queue: VecDeque<(JobId, R::Job, CancelToken)> = VecDeque::new();
    let mut token = CancelToken::new();
    let mut running: Option<(JobId, Running<R>)> = None;
    let mut next_id: JobId = 1;
    let mut open = true;
    loop {
        if running.is_none() {
            if let Some((id, job, job_token)) = queue.pop_front() {
                if job_token.is_cancelled() {
                    let _ = events.send(Event::Cancelled { job: id });
                    continue;
                }
                let Some(mut runner) = idle_runner.take() else {
                    return;
                };
                let (kind, description) = job.describe();
                let _ = events.send(Event::Started {
                    job: id,
                    kind,
                    description,
                });
                let tx = events.clone();
                let handle = tokio::task::spawn_blocking(move || {
                    let mut sink = ChannelSink::new(tx);
                    let outcome =
                        isolate::run_isolated(|| runner.run(id, job, &mut sink, &job_token));
                    if outcome.is_err() {
                        runner.recover();
                    }
                    (runner, outcome)
                });
                running = Some((id, handle));
                continue;
            }
        }
        if !open && running.is_none() {
            return;
        }
        tokio::select! {
            request = requests.recv(), if open => match request {
                None => {
                    open = false;
                    token.cancel();
                    queue.clear();
                }
                Some(request) => match request.control() {
                    Some(Control::Cancel) => {
                        token.cancel();
                        token = CancelToken::new();
                    }
                    Some(Control::Shutdown) => {
                        open = false;
                        token.cancel();
                        queue.clear();
                    }
                    None => {
                        queue.push_back((next_id, request, token.clone()));
                        next_id += 1;
                    }
                },
            },
            joined = async {
                match running.as_mut() {
                    Some((_, handle)) => handle.await,
                    None => std::future::pending().await,
                }
            }, if running.is_some() => {
                let Some((id, _)) = running.take() else { return };
                let event = match joined {
                    Ok((runner, outcome)) => {
                        idle_runner = Some(runner);
                        finished(id, outcome)
                    }
                    // The blocking task itself died (runtime shutting down):
                    // the runner is gone, so the engine ends after reporting.
                    Err(e) => {
                        open = false;
                        Event::Failed { job: id, error: format!("job task ended: {e}") }
                    }
                };
                let _ = events.send(event);
                if idle_runner.is_none() {
                    for (id, ..) in queue.drain(..) {
                        let _ = events.send(Event::Cancelled { job: id });
                    }
                    return;
                }
            }
        }
    }
}

fn finished(job: JobId, outcome: std::result::Result<Result<String>, String>) -> Event {
    match outcome {
        Ok(Ok(summary)) => Event::Finished { job, summary },
        Ok(Err(crate::Error::Cancelled)) => Event::Cancelled { job },
        Ok(Err(e)) => Event::Failed {
            job,
            error: e.to_string(),
        },
        Err(panic) => Event::Failed { job, error: panic },
    }
}
