//! The engine with a fake job (no libtorch): dispatch in order, cancel of the
//! running and the queued jobs, failures and panics as `Failed` events, and
//! throttled batch events.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use melxai::engine::{self, Control, Engine, EngineJob, JobRunner};
use melxai::progress::{CancelToken, Event, EventSink, JobId, JobKind};

#[derive(Debug)]
enum FakeJob {
    /// `n` steps of `ms` milliseconds, checking the token before each.
    Steps(usize, u64),
    Fail(&'static str),
    Panic(&'static str),
    /// `n` batch events as fast as possible.
    Batches(usize),
    Cancel,
    Shutdown,
}

impl EngineJob for FakeJob {
    fn control(&self) -> Option<Control> {
        match self {
            FakeJob::Cancel => Some(Control::Cancel),
            FakeJob::Shutdown => Some(Control::Shutdown),
            _ => None,
        }
    }

    fn describe(&self) -> (JobKind, String) {
        (JobKind::Train, format!("{self:?}"))
    }
}

#[derive(Default)]
struct FakeRunner {
    recovered: Arc<AtomicUsize>,
}

impl JobRunner for FakeRunner {
    type Job = FakeJob;

    fn run(
        &mut self,
        id: JobId,
        job: FakeJob,
        sink: &mut dyn EventSink,
        cancel: &CancelToken,
    ) -> melxai::Result<String> {
        match job {
            FakeJob::Steps(n, ms) => {
                for i in 0..n {
                    cancel.check()?;
                    std::thread::sleep(Duration::from_millis(ms));
                    sink.send(Event::Progress {
                        job: id,
                        stage: "step".into(),
                        done: i as u64 + 1,
                        total: n as u64,
                        eta_seconds: None,
                    });
                }
                Ok(format!("{n} steps"))
            }
            FakeJob::Fail(msg) => Err(melxai::Error::Other(msg.into())),
            FakeJob::Panic(msg) => panic!("{msg}"),
            FakeJob::Batches(n) => {
                for b in 1..=n {
                    sink.send(Event::Batch {
                        job: id,
                        epoch: 1,
                        batch: b,
                        batches: n,
                        loss: 0.5,
                        learning_rate: 1e-5,
                    });
                }
                Ok("batches".into())
            }
            FakeJob::Cancel | FakeJob::Shutdown => Ok(String::new()),
        }
    }

    fn recover(&mut self) {
        self.recovered.fetch_add(1, Ordering::SeqCst);
    }
}

/// Events until (and including) the end event of job `id`.
async fn until_end(engine: &mut Engine<FakeJob>, id: JobId) -> Vec<Event> {
    let mut out = Vec::new();
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), engine.events.recv())
            .await
            .expect("engine answered within 10 s")
            .expect("engine alive");
        let end = matches!(
            &ev,
            Event::Finished { job, .. } | Event::Failed { job, .. } | Event::Cancelled { job }
                if *job == id
        );
        out.push(ev);
        if end {
            return out;
        }
    }
}

fn ends(events: &[Event]) -> Vec<(JobId, &'static str)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Started { job, .. } => Some((*job, "started")),
            Event::Finished { job, .. } => Some((*job, "finished")),
            Event::Failed { job, .. } => Some((*job, "failed")),
            Event::Cancelled { job } => Some((*job, "cancelled")),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn jobs_run_in_order_one_at_a_time() {
    let mut engine = engine::spawn(FakeRunner::default());
    engine.requests.send(FakeJob::Steps(3, 5)).unwrap();
    engine.requests.send(FakeJob::Steps(2, 0)).unwrap();
    let events = until_end(&mut engine, 2).await;
    assert_eq!(
        ends(&events),
        [
            (1, "started"),
            (1, "finished"),
            (2, "started"),
            (2, "finished")
        ]
    );
    let progress: Vec<(JobId, u64)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Progress { job, done, .. } => Some((*job, *done)),
            _ => None,
        })
        .collect();
    assert_eq!(progress, [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2)]);
    assert!(matches!(&events[4], Event::Finished { summary, .. } if summary == "3 steps"));
}

#[tokio::test]
async fn cancel_reaches_the_running_and_the_queued_jobs_only() {
    let mut engine = engine::spawn(FakeRunner::default());
    engine.requests.send(FakeJob::Steps(10_000, 2)).unwrap();
    engine.requests.send(FakeJob::Steps(1, 0)).unwrap();
    // Wait until job 1 is really running.
    loop {
        match engine.events.recv().await.unwrap() {
            Event::Progress { job: 1, .. } => break,
            _ => continue,
        }
    }
    engine.requests.send(FakeJob::Cancel).unwrap();
    engine.requests.send(FakeJob::Steps(1, 0)).unwrap();
    let events = until_end(&mut engine, 3).await;
    assert_eq!(
        ends(&events),
        [
            (1, "cancelled"),
            (2, "cancelled"),
            (3, "started"),
            (3, "finished")
        ],
        "the queued job never starts; the one sent after Cancel runs"
    );
}

#[tokio::test]
async fn failure_and_panic_end_as_failed_and_the_engine_goes_on() {
    let runner = FakeRunner::default();
    let recovered = runner.recovered.clone();
    let mut engine = engine::spawn(runner);
    engine
        .requests
        .send(FakeJob::Fail("no such checkpoint"))
        .unwrap();
    engine
        .requests
        .send(FakeJob::Panic("CUDA out of memory"))
        .unwrap();
    engine.requests.send(FakeJob::Steps(1, 0)).unwrap();
    let events = until_end(&mut engine, 3).await;
    let failures: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::Failed { error, .. } => Some(error.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(failures.len(), 2, "{events:?}");
    assert!(
        failures[0].contains("no such checkpoint"),
        "{}",
        failures[0]
    );
    assert!(
        failures[1].starts_with("panicked: CUDA out of memory"),
        "{}",
        failures[1]
    );
    assert!(matches!(
        events.last(),
        Some(Event::Finished { job: 3, .. })
    ));
    assert_eq!(
        recovered.load(Ordering::SeqCst),
        1,
        "caches dropped after the panic"
    );
}

#[tokio::test]
async fn batch_events_are_throttled_but_the_last_goes_through() {
    let mut engine = engine::spawn(FakeRunner::default());
    engine.requests.send(FakeJob::Batches(5_000)).unwrap();
    let events = until_end(&mut engine, 1).await;
    let batches: Vec<usize> = events
        .iter()
        .filter_map(|e| match e {
            Event::Batch { batch, .. } => Some(*batch),
            _ => None,
        })
        .collect();
    assert!(
        !batches.is_empty() && batches.len() < 100,
        "{} of 5000 batch events passed",
        batches.len()
    );
    assert_eq!(batches.first(), Some(&1));
    assert_eq!(batches.last(), Some(&5_000));
}

#[tokio::test]
async fn shutdown_stops_the_running_job_drops_the_queue_and_ends_the_task() {
    let mut engine = engine::spawn(FakeRunner::default());
    engine.requests.send(FakeJob::Steps(10_000, 2)).unwrap();
    engine.requests.send(FakeJob::Steps(1, 0)).unwrap();
    loop {
        if let Event::Progress { job: 1, .. } = engine.events.recv().await.unwrap() {
            break;
        }
    }
    engine.requests.send(FakeJob::Shutdown).unwrap();
    tokio::time::timeout(Duration::from_secs(10), &mut engine.task)
        .await
        .expect("engine ended")
        .unwrap();
    let mut rest = Vec::new();
    while let Some(ev) = engine.events.recv().await {
        rest.push(ev);
    }
    assert_eq!(ends(&rest), [(1, "cancelled")]);
    assert!(engine.requests.send(FakeJob::Steps(1, 0)).is_err());
}
