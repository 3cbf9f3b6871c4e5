//! The run loop with `TestBackend`, a scripted key sequence and real channels.

mod tui_support;

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
use futures_util::stream;
use melxai::engine::requests::Request;
use melxai::tui::run::{run_loop, App, TuiOptions};
use melxai::tui::screenshot::buffer_to_text;
use melxai::tui::TriageMark;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use tui_support::*;

fn k(c: char) -> TermEvent {
    TermEvent::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

/// A scripted terminal: the key events, in order, then nothing.
fn script(
    events: Vec<TermEvent>,
) -> impl futures_util::Stream<Item = std::io::Result<TermEvent>> + Unpin {
    stream::iter(events.into_iter().map(Ok))
}

#[tokio::test]
async fn keys_drive_requests_triage_and_screenshots() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = TuiOptions::new(
        dir.path().join("reports/triage.toml"),
        dir.path().join("reports"),
    );
    opts.samples = samples();
    opts.class_names = class_names();
    opts.image_loader = Box::new(|id| id.starts_with("melanoma").then(photo));
    opts.similarity = Some(Box::new(|_m, a, b| {
        // Cosine similarity: enough to exercise the wiring.
        let dot: f32 = a.values.iter().zip(&b.values).map(|(x, y)| x * y).sum();
        let na: f32 = a.values.iter().map(|x| x * x).sum::<f32>().sqrt();
        let nb: f32 = b.values.iter().map(|x| x * x).sum::<f32>().sqrt();
        Some((dot / (na * nb)) as f64)
    }));
    let mut app = App::new(opts);
    assert!(
        app.state.photo("melanoma/m01.jpg").is_some(),
        "loaded for the first selection"
    );

    let (ev_tx, mut ev_rx) = tokio::sync::mpsc::unbounded_channel();
    let (req_tx, mut req_rx) = tokio::sync::mpsc::unbounded_channel();
    for ev in training_events().into_iter().chain(evaluation_events()) {
        ev_tx.send(ev).unwrap();
    }
    for ev in heatmap_events("melanoma/m01.jpg") {
        ev_tx.send(ev).unwrap();
    }
    let mut input = script(vec![
        k('x'),
        k('j'),
        k('m'),
        k('t'),
        k('p'),
        k('e'),
        TermEvent::Resize(70, 20),
        k('q'),
    ]);
    let mut terminal = Terminal::new(TestBackend::new(100, 30)).unwrap();
    run_loop(&mut terminal, &mut app, &mut ev_rx, &req_tx, &mut input)
        .await
        .unwrap();

    let mut reqs: Vec<Request> = Vec::new();
    while let Ok(r) = req_rx.try_recv() {
        reqs.push(r);
    }
    assert_eq!(
        reqs[0],
        Request::Train {
            name: None,
            epochs: None,
            excluded: vec!["melanoma/m01.jpg".into()]
        }
    );
    assert!(
        matches!(&reqs[1], Request::Explain { sample_ids, .. } if sample_ids == &["melanoma/m02.jpg"])
    );
    assert_eq!(reqs.last(), Some(&Request::Shutdown));

    let marks = melxai::tui::triage::load(&dir.path().join("reports/triage.toml")).unwrap();
    assert_eq!(marks["melanoma/m01.jpg"].mark, Some(TriageMark::Exclude));
    assert_eq!(marks["melanoma/m02.jpg"].mark, Some(TriageMark::Flag));

    let shots: Vec<_> = std::fs::read_dir(dir.path().join("reports/screens"))
        .unwrap()
        .collect();
    assert_eq!(shots.len(), 2, "svg + html");
    assert!(app
        .state
        .messages()
        .iter()
        .any(|m| m.text.starts_with("screenshot: ")));

    // Agreement computed from the heatmaps through the similarity callback.
    assert!(app.state.rows()[0].agreement.is_some());
    assert!(app.state.split_matrix().is_some());
    assert!(
        app.state.photo("melanoma/m02.jpg").is_some(),
        "loaded on selection change"
    );
    assert!(app.state.should_quit());
    let text = buffer_to_text(terminal.backend().buffer());
    assert!(text.contains("melxai"), "{text}");
}

#[tokio::test]
async fn engine_gone_is_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = TuiOptions::new(dir.path().join("t.toml"), dir.path().into());
    opts.device = Some("cuda:0 (Test GPU, 1.0 GiB)".into());
    let mut app = App::new(opts);
    let (ev_tx, mut ev_rx) = tokio::sync::mpsc::unbounded_channel();
    drop(ev_tx);
    let (req_tx, req_rx) = tokio::sync::mpsc::unbounded_channel();
    drop(req_rx);
    let mut input = script(vec![k('t'), k('q')]);
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    run_loop(&mut terminal, &mut app, &mut ev_rx, &req_tx, &mut input)
        .await
        .unwrap();
    assert!(app
        .state
        .messages()
        .iter()
        .any(|m| m.text.contains("engine stopped")));
    assert!(app
        .state
        .messages()
        .iter()
        .any(|m| m.text.contains("not running")));
    // The header names the device the jobs run on.
    let text = buffer_to_text(terminal.backend().buffer());
    assert!(
        text.lines()
            .next()
            .unwrap()
            .contains("device: cuda:0 (Test GPU, 1.0 GiB)"),
        "{text}"
    );
}

#[test]
fn refuses_without_a_terminal() {
    // Test harness stdout is captured, not a terminal.
    if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (req_tx, _req_rx) = tokio::sync::mpsc::unbounded_channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = runtime
        .block_on(melxai::tui::run_app(
            TuiOptions::new(dir.path().join("t.toml"), dir.path().into()),
            rx,
            req_tx,
        ))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "melxai needs a terminal; use `melxai --batch` for headless runs"
    );
}

/// A triage file that cannot be read (garbage bytes, or TOML of the wrong
/// shape) is reported on the status line until a key is pressed, even when
/// the graphics notice comes after it; it is never overwritten: the first new
/// mark moves it aside and says where.
#[test]
fn an_unreadable_triage_file_is_shown_until_a_key_and_moved_aside_before_the_first_mark() {
    use melxai::tui::GraphicsMode;
    let garbage: [&[u8]; 2] = [b"\x00\xffnot toml [[", b"[samples]\n\"a/b.jpg\" = 3\n"];
    for bytes in garbage {
        let dir = tempfile::tempdir().unwrap();
        let reports = dir.path().join("reports");
        let path = reports.join("triage.toml");
        std::fs::create_dir_all(&reports).unwrap();
        std::fs::write(&path, bytes).unwrap();
        let mut opts = TuiOptions::new(path.clone(), reports.clone());
        opts.samples = samples();
        opts.class_names = class_names();
        let mut app = App::new(opts);
        app.init_graphics(GraphicsMode::Halfblocks, None);
        let shown = app.state.last_message().unwrap().text.clone();
        assert!(
            shown.contains("could not read triage marks") && shown.contains("triage.toml"),
            "{shown}"
        );
        app.on_input(k('j'));
        let shown = app.state.last_message().map(|m| m.text.clone());
        assert!(
            !shown.unwrap_or_default().contains("could not read"),
            "a key press clears the pinned message"
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "untouched before a mark"
        );

        app.on_input(k('m'));
        let aside: Vec<_> = std::fs::read_dir(&reports)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("triage.toml.unreadable-"))
            })
            .collect();
        assert_eq!(aside.len(), 1, "moved aside once: {aside:?}");
        assert_eq!(
            std::fs::read(&aside[0]).unwrap(),
            bytes,
            "earlier marks kept"
        );
        let marks = melxai::tui::triage::load(&path).unwrap();
        assert_eq!(marks.len(), 1, "the new mark is saved");
        assert!(
            app.state
                .messages()
                .iter()
                .any(|m| m.text.contains("moved to") && m.text.contains("unreadable-")),
            "the move is announced"
        );
    }
}
