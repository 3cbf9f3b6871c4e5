//! Each figure is written to a temporary directory and decoded again: the PNG
//! must have the documented size and real content (not one flat colour).

use std::collections::HashSet;
use std::path::Path;

use image::{Rgb, RgbImage};
use melxai::report::figures::*;

fn load(path: &Path) -> RgbImage {
    image::open(path)
        .unwrap_or_else(|e| panic!("decode {}: {e}", path.display()))
        .to_rgb8()
}

fn assert_figure(path: &Path, size: (u32, u32)) -> RgbImage {
    let img = load(path);
    assert_eq!(img.dimensions(), size, "{}", path.display());
    let colours: HashSet<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    assert!(
        colours.len() > 10,
        "{} has only {} colours",
        path.display(),
        colours.len()
    );
    img
}

fn epochs(folds: &[Option<usize>]) -> Vec<EpochPoint> {
    let mut out = Vec::new();
    for (k, &fold) in folds.iter().enumerate() {
        for e in 1..=12 {
            let t = e as f64;
            out.push(EpochPoint {
                epoch: e,
                train_loss: 0.7 * (-t / 5.0).exp() + 0.05 * k as f64,
                val_loss: 0.75 * (-t / 6.0).exp() + 0.1,
                val_auroc: if e == 1 {
                    f64::NAN
                } else {
                    0.95 - 0.4 * (-t / 3.0).exp()
                },
                val_balanced_accuracy: 0.9 - 0.35 * (-t / 4.0).exp() - 0.02 * k as f64,
                fold,
            });
        }
    }
    out
}

fn bins(shift: f64) -> Vec<Bin> {
    (0..10)
        .map(|i| {
            let lower = i as f64 / 10.0;
            let upper = lower + 0.1;
            let count = if i < 5 { 0 } else { 5 + 8 * (i - 4) };
            let conf = (lower + upper) / 2.0;
            Bin {
                lower,
                upper,
                mean_confidence: (count > 0).then_some(conf),
                accuracy: (count > 0).then_some((conf - shift).clamp(0.0, 1.0)),
                count,
            }
        })
        .collect()
}

#[test]
fn training_curves_single_and_folds() {
    let dir = tempfile::tempdir().unwrap();
    let single = dir.path().join("nested/dir/curves.png");
    training_curves(&single, &epochs(&[None])).unwrap();
    assert_figure(&single, TRAINING_CURVES_SIZE);
    let folds = dir.path().join("curves_folds.png");
    training_curves(&folds, &epochs(&[Some(0), Some(1), Some(2)])).unwrap();
    assert_figure(&folds, TRAINING_CURVES_SIZE);
    assert!(training_curves(&folds, &[]).is_err());
}

#[test]
fn roc_curve_png() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("roc.png");
    let curves = vec![
        RocSeries {
            label: "fold 1".into(),
            points: vec![(0.0, 0.0), (0.1, 0.6), (0.3, 0.85), (1.0, 1.0)],
            auc: 0.87,
        },
        RocSeries {
            label: "pooled".into(),
            points: vec![(0.0, 0.0), (0.2, 0.7), (1.0, 1.0)],
            auc: f64::NAN,
        },
    ];
    roc_curve(&path, &curves).unwrap();
    assert_figure(&path, ROC_CURVE_SIZE);
}

#[test]
fn confusion_matrix_png_and_cell_colours() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cm.png");
    confusion_matrix(&path, ["nevus", "melanoma"], [[90, 10], [4, 96]], "Test").unwrap();
    let img = assert_figure(&path, CONFUSION_MATRIX_SIZE);
    // Sample just inside each cell's top-left corner, away from the text.
    let sample = |a, p| {
        let (x0, y0, _, _) = confusion_matrix_cell_rect(a, p);
        img.get_pixel(x0 + 10, y0 + 10).0
    };
    for (a, p) in [(0, 0), (1, 1)] {
        let [r, g, b] = sample(a, p);
        assert!(
            b > r + 60 && b > g && b < 200,
            "diagonal cell is dark blue: {r},{g},{b}"
        );
    }
    for (a, p) in [(0, 1), (1, 0)] {
        let [r, g, b] = sample(a, p);
        assert!(
            r > 190 && g > 200 && b >= r,
            "off-diagonal cell is pale blue: {r},{g},{b}"
        );
    }
}

#[test]
fn reliability_single_and_pair() {
    let dir = tempfile::tempdir().unwrap();
    let single = dir.path().join("rel.png");
    reliability_diagram(&single, &bins(0.12), None, 0.12, None).unwrap();
    assert_figure(&single, RELIABILITY_SIZE_SINGLE);
    let pair = dir.path().join("rel_pair.png");
    reliability_diagram(&pair, &bins(0.12), Some(&bins(0.02)), 0.12, Some(0.02)).unwrap();
    assert_figure(&pair, RELIABILITY_SIZE_PAIR);
    assert!(reliability_diagram(&pair, &[], None, 0.0, None).is_err());
}

#[test]
fn explanation_grid_png() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grid.png");
    let photo = RgbImage::from_fn(120, 90, |x, y| Rgb([(x * 2) as u8, (y * 2) as u8, 128]));
    let map = |method: &str, w: usize, h: usize| GridMap {
        method: method.into(),
        values: (0..w * h).map(|i| i as f32 / (w * h) as f32).collect(),
        width: w,
        height: h,
    };
    let rows: Vec<GridRow> = (0..2)
        .map(|i| GridRow {
            title: format!("image {i}: melanoma p = 0.9"),
            image: photo.clone(),
            maps: vec![map("GradCAM", 7, 7), map("Integrated Gradients", 90, 120)],
        })
        .collect();
    explanation_grid(&path, &rows).unwrap();
    assert_figure(&path, explanation_grid_size(2, 2));

    let mut bad = rows.clone();
    bad[1].maps[0].values.pop();
    assert!(explanation_grid(&path, &bad).is_err());
    let mut renamed = rows;
    renamed[1].maps[0].method = "other".into();
    assert!(explanation_grid(&path, &renamed).is_err());
}

#[test]
fn similarity_heatmap_png_with_nan() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim.png");
    let methods: Vec<String> = ["GradCAM", "DeepLIFT", "IG"].map(String::from).to_vec();
    let m = vec![
        vec![1.0, 0.42, f64::NAN],
        vec![0.42, 1.0, 0.8],
        vec![f64::NAN, 0.8, 1.0],
    ];
    similarity_heatmap(&path, &methods, &m, "Spearman", (-1.0, 1.0)).unwrap();
    let img = load(&path);
    assert!(img.width() > 400 && img.height() > 400);
    let colours: HashSet<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    assert!(colours.len() > 10);
    assert!(similarity_heatmap(&path, &methods, &m[..2], "x", (0.0, 1.0)).is_err());
    assert!(similarity_heatmap(&path, &methods, &m, "x", (1.0, 1.0)).is_err());
}

#[test]
fn deletion_insertion_png() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("di.png");
    let fractions: Vec<f64> = (0..=10).map(|i| i as f64 / 10.0).collect();
    let curves = vec![DeletionInsertionCurve {
        method: "GradCAM".into(),
        deletion: fractions.iter().map(|f| (1.0 - f) * 0.9).collect(),
        insertion: fractions.iter().map(|f| f * 0.9).collect(),
        fractions,
    }];
    deletion_insertion(&path, &curves).unwrap();
    assert_figure(&path, DELETION_INSERTION_SIZE);
    let mut bad = curves;
    bad[0].insertion.pop();
    assert!(deletion_insertion(&path, &bad).is_err());
}

#[test]
fn risk_coverage_has_its_size_and_refuses_no_points() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rc.png");
    let points: Vec<(f64, f64)> = (1..=40)
        .map(|k| (k as f64 / 40.0, 0.25 * (k as f64 / 40.0).powi(2)))
        .collect();
    let optimal: Vec<(f64, f64)> = (1..=40)
        .map(|k| {
            let wrong = (k - 36).max(0) as f64;
            (k as f64 / 40.0, wrong / k as f64)
        })
        .collect();
    risk_coverage(&path, "ensemble", &points, 0.08, &optimal).unwrap();
    assert_figure(&path, RISK_COVERAGE_SIZE);
    assert!(risk_coverage(&path, "x", &[], 0.0, &[]).is_err());
}
