//! The public sets' layouts end to end: generated look-alikes of HAM10000,
//! ISIC 2019, ISIC 2020 and PAD-UFES-20 (exact file layouts and column
//! names) and an ImageFolder set train, evaluate, calibrate and explain
//! through the CLI and report through `--batch`; the decode-once store
//! streams batches without changing what is learned.

mod common;

use std::path::{Path, PathBuf};

use common::cli::{run, text};
use melxai::data::lookalike::{self, Layout, LookalikeSpec};

/// A project folder holding a look-alike of `layout`, the Lite0 weights and
/// a `config.toml` of the look-alike's `[data]`, a tiny `[train]` and `extra`.
fn project(layout: Layout, images: usize, extra: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let spec = LookalikeSpec {
        images,
        width: 48,
        height: 40,
        seed: 7,
        corrupt: 1,
        missing: if layout == Layout::ImageFolder { 0 } else { 1 },
        ..LookalikeSpec::default()
    };
    let set = lookalike::write(layout, &root.join("set"), &spec).unwrap();
    let weights = root.join("weights");
    std::fs::create_dir_all(&weights).unwrap();
    let f = "efficientnet-lite0-imagenet.safetensors";
    std::os::unix::fs::symlink(common::weights_dir().join(f), weights.join(f)).unwrap();
    let config = format!(
        "device = \"cpu\"\n{}\n[model]\nweights_dir = \"{}\"\n[train]\nname = \"m\"\nepochs = 2\nbatch_size = 8\ninput_size = 32\nswa_epochs = 0\n{extra}",
        set.data_toml,
        weights.display()
    );
    std::fs::write(root.join("config.toml"), config).unwrap();
    let checkpoint = weights.join("m.safetensors");
    (dir, checkpoint)
}

fn ok(o: &std::process::Output) -> String {
    let t = text(o);
    assert!(o.status.success(), "failed:\n{t}");
    t
}

fn json(o: &std::process::Output) -> serde_json::Value {
    ok(o);
    serde_json::from_slice(&o.stdout).expect("JSON on stdout")
}

/// (layout, classes after its `[data] label_map`)
const LAYOUTS: [(Layout, usize); 5] = [
    (Layout::ImageFolder, 2),
    (Layout::Ham10000, 7),
    (Layout::Isic2019, 8),
    (Layout::Isic2020, 2),
    (Layout::PadUfes20, 6),
];

#[test]
fn every_layout_trains_evaluates_calibrates_and_explains_through_the_cli() {
    for (layout, classes) in LAYOUTS {
        let (dir, checkpoint) = project(layout, 48, "");
        let root = dir.path();
        let trained = ok(&run(root, &["train"]));
        // The corrupt file and the row without a file are listed, not fatal.
        let listed = trained.matches("skipped /").count();
        assert_eq!(
            listed,
            if layout == Layout::ImageFolder { 1 } else { 2 },
            "{layout}: {trained}"
        );
        if layout != Layout::ImageFolder {
            assert!(trained.contains("not found"), "{layout}: {trained}");
        }
        let ck = checkpoint.to_str().unwrap();
        let eval = json(&run(
            root,
            &["eval", "--checkpoint", ck, "--split", "all", "--json"],
        ));
        let n = eval["predictions"].as_array().unwrap().len();
        assert_eq!(
            n,
            48 - 1 - usize::from(layout != Layout::ImageFolder),
            "{layout}"
        );
        let every = &eval["multiclass"];
        if classes > 2 {
            assert_eq!(
                every["per_class"].as_array().unwrap().len(),
                classes,
                "{layout}"
            );
            let cm = every["confusion"].as_array().unwrap();
            let total: u64 = cm
                .iter()
                .flat_map(|r| r.as_array().unwrap())
                .map(|v| v.as_u64().unwrap())
                .sum();
            assert_eq!(total as usize, n, "{layout}");
        } else {
            assert!(
                every.is_null(),
                "{layout}: binary models keep the binary view"
            );
        }
        ok(&run(root, &["calibrate", "--checkpoint", ck]));
        let image = first_image(root);
        let out = root.join("maps");
        let explained = ok(&run(
            root,
            &[
                "explain",
                image.to_str().unwrap(),
                "--checkpoint",
                ck,
                "--method",
                "gradcam",
                "--target",
                "melanoma",
                "--out",
                out.to_str().unwrap(),
            ],
        ));
        assert!(explained.contains("(melanoma)"), "{layout}: {explained}");
        let refused = run(
            root,
            &[
                "explain",
                image.to_str().unwrap(),
                "--checkpoint",
                ck,
                "--target",
                "no-such-class",
            ],
        );
        assert!(!refused.status.success());
        assert!(
            text(&refused).contains("not a class of the model"),
            "{}",
            text(&refused)
        );
    }
}

/// Some readable image of the look-alike (the largest file: never the
/// truncated one).
fn first_image(root: &Path) -> PathBuf {
    let mut files = Vec::new();
    let mut stack = vec![root.join("set")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(p.extension().and_then(|e| e.to_str()), Some("jpg" | "png")) {
                files.push((std::fs::metadata(&p).unwrap().len(), p));
            }
        }
    }
    files.sort();
    files.pop().unwrap().1
}

const BATCH: &str = r#"
[batch]
run_name = "set"
folds = 2
cv_repeats = 1
bootstrap_samples = 100
methods = ["gradcam"]
explain_images = 4
models = [{ name = "a", arch = "lite0", seed = 1 }]
[scores]
enabled = false
"#;

#[test]
fn every_table_layout_reports_through_batch_with_classes_groups_and_subgroups() {
    for (layout, classes) in LAYOUTS.into_iter().skip(1) {
        let (dir, _) = project(layout, 64, BATCH);
        let root = dir.path();
        ok(&run(root, &["--batch"]));
        let report = root.join("reports/set");
        let metrics: serde_json::Value =
            serde_json::from_slice(&std::fs::read(report.join("metrics.json")).unwrap()).unwrap();
        let m = &metrics["metrics"];
        assert_eq!(
            m["data"]["classes"].as_array().unwrap().len(),
            classes,
            "{layout}"
        );
        assert_eq!(
            m["data"]["skipped"].as_array().unwrap().len(),
            2,
            "{layout}"
        );
        let groups = m["data"]["groups"]
            .as_u64()
            .expect("the groups are counted");
        assert!(groups > 1 && groups < 62, "{layout}: {groups}");
        let b = &m["ensemble"]["breakdown"];
        assert_eq!(
            b["groups"].as_u64().map(|g| g <= groups),
            Some(true),
            "{layout}"
        );
        assert!(
            b["positive"]["auprc"]["point"].as_f64().is_some(),
            "{layout}"
        );
        let every = b["multiclass"]["per_class"].as_array().map_or(0, Vec::len);
        assert_eq!(every, if classes > 2 { classes } else { 0 }, "{layout}");
        let rows = b["subgroups"]["rows"].as_array().unwrap();
        let columns: std::collections::BTreeSet<&str> =
            rows.iter().map(|r| r["column"].as_str().unwrap()).collect();
        assert_eq!(
            columns.len(),
            if layout == Layout::PadUfes20 { 4 } else { 3 },
            "{layout}"
        );
        let first = rows[0]["column"].as_str().unwrap();
        let n: u64 = rows
            .iter()
            .filter(|r| r["column"] == first)
            .map(|r| r["n"].as_u64().unwrap())
            .sum();
        assert_eq!(
            n,
            b["images"].as_u64().unwrap(),
            "{layout}: every image in one group of {first}"
        );
        assert_eq!(m["agreement"]["images"], 4, "{layout}: explain_images = 4");
        for f in [
            "subgroups_a_ensemble.png",
            "subgroups_a_ensemble.csv",
            "screens/calibration.svg",
        ] {
            assert!(report.join(f).exists(), "{layout}: {f}");
        }
        assert_eq!(
            report.join("confusion_classes_a_ensemble.png").exists(),
            classes > 2,
            "{layout}"
        );
        // The TUI's views of the run, rendered headless.
        assert!(report.join("screens/subgroups.svg").exists(), "{layout}");
        assert_eq!(
            report.join("screens/classes.svg").exists(),
            classes > 2,
            "{layout}"
        );
        let md = std::fs::read_to_string(report.join("report.md")).unwrap();
        let sp = &m["model:a"]["split"];
        let parts: u64 = ["train", "val", "test"]
            .iter()
            .map(|p| sp[p]["images"].as_u64().unwrap())
            .sum();
        assert_eq!(
            parts,
            m["data"]["counts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_u64().unwrap())
                .sum::<u64>(),
            "{layout}"
        );
        for needle in [
            "patient/lesion groups",
            "### By subgroup",
            "AUPRC",
            "4 of the split's",
            "no group on two sides",
        ] {
            assert!(md.contains(needle), "{layout}: report.md lacks {needle}");
        }
        if classes > 2 {
            assert!(md.contains("### Every class"), "{layout}");
        }
    }
}

#[test]
fn a_store_streams_batches_and_learns_exactly_what_memory_does() {
    let (dir, checkpoint) = project(Layout::ImageFolder, 24, "");
    let root = dir.path();
    ok(&run(root, &["train"]));
    let ck = checkpoint.to_str().unwrap();
    let in_memory = json(&run(
        root,
        &["eval", "--checkpoint", ck, "--split", "all", "--json"],
    ));
    // The same run through a store, over its memory budget: every batch
    // is read from the store file.
    let config = std::fs::read_to_string(root.join("config.toml")).unwrap();
    let store = root.join("store");
    let streamed_config = config.replace(
        "[data]\n",
        &format!(
            "[data]\nstore = \"{}\"\nmemory_budget_mb = 0\n",
            store.display()
        ),
    );
    std::fs::write(root.join("config.toml"), streamed_config).unwrap();
    ok(&run(root, &["train", "--name", "s"]));
    let streamed_ck = root.join("weights/s.safetensors");
    let streamed = json(&run(
        root,
        &[
            "eval",
            "--checkpoint",
            streamed_ck.to_str().unwrap(),
            "--split",
            "all",
            "--json",
        ],
    ));
    assert_eq!(in_memory["predictions"], streamed["predictions"]);
    assert!(
        std::fs::read_dir(&store).unwrap().next().is_some(),
        "store written"
    );
}

#[test]
fn a_broken_table_is_refused_naming_file_row_and_column() {
    let (dir, _) = project(Layout::Isic2019, 24, "");
    let root = dir.path();
    let truth = root.join("set/ISIC_2019_Training_GroundTruth.csv");
    let text = std::fs::read_to_string(&truth).unwrap();
    // Row 3 (spreadsheet numbering) gets a second label: MEL and NV both set.
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut cells: Vec<String> = lines[2].split(',').map(String::from).collect();
    cells[1] = "1.0".into();
    cells[2] = "1.0".into();
    lines[2] = cells.join(",");
    std::fs::write(&truth, lines.join("\n") + "\n").unwrap();
    let o = run(root, &["train"]);
    common::cli::assert_refused(
        &o,
        &["ISIC_2019_Training_GroundTruth.csv", "row 3", "MEL", "NV"],
    );
    // A label_map key that is no class of the table.
    std::fs::write(&truth, text).unwrap();
    let config = std::fs::read_to_string(root.join("config.toml")).unwrap();
    std::fs::write(
        root.join("config.toml"),
        config.replace("MEL = \"melanoma\"", "MELANOMA = \"melanoma\""),
    )
    .unwrap();
    let o = run(root, &["train"]);
    common::cli::assert_refused(&o, &["label_map", "MELANOMA"]);
}
