//! Figure adapters of the batch run: turn typed results into the plots of
//! [`crate::report::figures`] and the prediction CSVs, and the comparison
//! into the report's agreement section.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::calibrate::fit::CalibrationOutcome;
use crate::compare::run::ComparisonReport;
use crate::compare::Metric;
use crate::data::scan::Scan;
use crate::ensemble::Model;
use crate::error::{Error, Result};
use crate::explain::output::{map_path, MapFile};
use crate::metrics::roc_curve;
use crate::report::figures;
use crate::report::run::{AgreementReport, CrossAgreement, Figure, MembersReport};
use crate::verdict::EvalRow;

fn fig(e: figures::FigureError) -> Error {
    Error::Other(format!("figure: {e}"))
}

pub(super) fn training_figure(
    path: &Path,
    history: &[crate::progress::EpochSummary],
) -> Result<()> {
    let points: Vec<figures::EpochPoint> = history
        .iter()
        .map(|h| figures::EpochPoint {
            epoch: h.epoch,
            train_loss: h.train_loss,
            val_loss: h.val_loss,
            val_auroc: h.val_auroc,
            val_balanced_accuracy: h.val_balanced_accuracy,
            fold: h.fold.map(|f| f.0),
        })
        .collect();
    figures::training_curves(path, &points).map_err(fig)
}

pub(super) fn roc_figure(
    path: &Path,
    rows: &[EvalRow],
    positive: usize,
    label: &str,
) -> Result<()> {
    let labels: Vec<usize> = rows.iter().map(|r| r.label).collect();
    let scores: Vec<f64> = rows
        .iter()
        .map(|r| r.probabilities(1.0)[positive])
        .collect();
    let curve = roc_curve(&labels, &scores, positive).map_err(|e| Error::Other(e.to_string()))?;
    let auc = crate::metrics::auroc(&labels, &scores, positive).unwrap_or(f64::NAN);
    let series = figures::RocSeries {
        label: label.into(),
        points: curve.iter().map(|p| (p.0, p.1)).collect(),
        auc,
    };
    figures::roc_curve(path, &[series]).map_err(fig)
}

pub(super) fn confusion_figure(
    path: &Path,
    m: &crate::metrics::BinaryMetrics,
    classes: &[String],
    positive: usize,
    title: &str,
) -> Result<()> {
    let c = &m.confusion;
    let pos = classes
        .get(positive)
        .map(String::as_str)
        .unwrap_or("positive");
    let neg = classes
        .iter()
        .enumerate()
        .find(|(i, _)| *i != positive)
        .map(|(_, n)| n.as_str())
        .unwrap_or("negative");
    // Rows: actual [negative, positive]; columns: predicted [negative, positive].
    figures::confusion_matrix(
        path,
        [neg, pos],
        [[c.tn as u64, c.fp as u64], [c.fn_ as u64, c.tp as u64]],
        title,
    )
    .map_err(fig)
}

fn bins(report: &crate::calibrate::CalibrationReport) -> Vec<figures::Bin> {
    report
        .bins
        .iter()
        .map(|b| figures::Bin {
            lower: b.lower,
            upper: b.upper,
            mean_confidence: b.mean_confidence,
            accuracy: b.accuracy,
            count: b.count,
        })
        .collect()
}

pub(super) fn reliability_figure(path: &Path, c: &CalibrationOutcome) -> Result<()> {
    let r = &c.results[0];
    figures::reliability_diagram(
        path,
        &bins(&r.before),
        Some(&bins(&r.after)),
        r.before.ece,
        Some(r.after.ece),
    )
    .map_err(fig)
}

pub(super) fn write_predictions(
    path: &Path,
    rows: &[EvalRow],
    classes: &[String],
    positive: usize,
    temperature: f64,
) -> Result<()> {
    let mut out = String::from(
        "sample,label,predicted,probability_calibrated,probability_uncalibrated,correct,members,spread,predictive_entropy,expected_entropy,mutual_information\n",
    );
    for r in rows {
        let p = r.to_prediction(positive, temperature, "");
        // Uncertainty in nats from the members' probabilities (one member
        // for a single model: spread and mutual information 0).
        let u = p.uncertainty.map_or_else(
            || ",,,,".to_string(),
            |u| {
                format!(
                    "{},{:.6},{:.6},{:.6},{:.6}",
                    u.members,
                    u.spread,
                    u.predictive_entropy,
                    u.expected_entropy,
                    u.mutual_information
                )
            },
        );
        out.push_str(&format!(
            "{},{},{},{:.6},{:.6},{},{u}\n",
            r.id,
            classes.get(r.label).cloned().unwrap_or_default(),
            classes.get(p.predicted).cloned().unwrap_or_default(),
            p.probability,
            p.probability_uncalibrated,
            p.correct()
        ));
    }
    crate::files::write_bytes(path, out.as_bytes())
}

/// The risk–coverage curve of `rc` with the optimal ordering for its errors.
pub(super) fn risk_coverage_figure(
    path: &Path,
    rc: &crate::evaluate::selective::RiskCoverage,
    label: &str,
) -> Result<()> {
    let points: Vec<(f64, f64)> = rc.curve.iter().map(|p| (p.coverage, p.risk)).collect();
    let n = rc.n;
    let errors = (rc.risk_at_full_coverage * n as f64).round() as usize;
    let right = n - errors.min(n);
    let optimal: Vec<(f64, f64)> = (1..=n)
        .map(|k| {
            let wrong = k.saturating_sub(right);
            (k as f64 / n as f64, wrong as f64 / k as f64)
        })
        .collect();
    figures::risk_coverage(path, label, &points, rc.aurc, &optimal).map_err(fig)
}

/// The decision curve of `d` with its bootstrap band and operating point.
pub(super) fn decision_curve_figure(
    path: &Path,
    d: &crate::evaluate::decisions::Decisions,
    label: &str,
) -> Result<()> {
    let pts = &d.decision_curve.points;
    let model: Vec<(f64, f64, f64, f64)> = pts
        .iter()
        .map(|p| {
            let [lo, hi] = p.model_ci.unwrap_or([f64::NAN, f64::NAN]);
            (p.threshold, p.model, lo, hi)
        })
        .collect();
    let all: Vec<(f64, f64)> = pts.iter().map(|p| (p.threshold, p.treat_all)).collect();
    figures::decision_curve(path, label, &model, &all, d.operating_threshold).map_err(fig)
}

/// Writes the decision curve as CSV: one row per threshold probability.
pub(super) fn write_decision_curve(
    path: &Path,
    d: &crate::evaluate::decisions::Decisions,
) -> Result<()> {
    let mut out = String::from("threshold,net_benefit_model,model_low,model_high,net_benefit_refer_all,net_benefit_refer_none\n");
    for p in &d.decision_curve.points {
        let [lo, hi] = p.model_ci.unwrap_or([f64::NAN, f64::NAN]);
        out.push_str(&format!(
            "{:.2},{:.6},{:.6},{:.6},{:.6},0\n",
            p.threshold, p.model, lo, hi, p.treat_all
        ));
    }
    crate::files::write_bytes(path, out.as_bytes())
}

/// Writes each image's cross-conformal set of the out-of-fold ensemble:
/// `ids` in the evaluation's (id) order, labels from the repetitions.
pub(super) fn write_conformal_sets(
    path: &Path,
    ids: &[&str],
    reps: &[crate::evaluate::repeated_cv::Repetition],
    c: &crate::evaluate::conformal::ConformalEvaluation,
    classes: &[String],
    positive: usize,
) -> Result<()> {
    use crate::verdict::conformal::{set_label, set_refers};
    let label_of: std::collections::HashMap<&str, usize> = reps
        .iter()
        .flat_map(|r| r.folds.iter().flatten())
        .map(|row| (row.id.as_str(), row.label))
        .collect();
    let mut out = String::from("sample,label,set,set_size,covered,refer\n");
    for (id, set) in ids.iter().zip(&c.sets) {
        let label = label_of.get(id).copied().unwrap_or(usize::MAX);
        out.push_str(&format!(
            "{id},{},{},{},{},{}\n",
            classes.get(label).cloned().unwrap_or_default(),
            set_label(set, classes),
            set.len(),
            set.contains(&label),
            set_refers(set, positive)
        ));
    }
    crate::files::write_bytes(path, out.as_bytes())
}

/// The scorecard's CSV (one row per image and method, every score) and
/// figure (the headline scores, mean and 95 % interval per method).
pub(super) fn scores_report(
    dir: &Path,
    card: &crate::compare::scores::scorecard::Scorecard,
) -> Result<crate::report::run::ScoresReport> {
    let names = crate::compare::scores::scorecard::SCORE_INFO.map(|s| s.name);
    let mut out = format!("sample,method,{}\n", names.join(","));
    for (id, methods) in &card.per_image {
        for (method, s) in methods {
            let values: Vec<String> = names
                .iter()
                .map(|n| {
                    let v = s.get(n);
                    if v.is_nan() {
                        String::new()
                    } else {
                        format!("{v:.6}")
                    }
                })
                .collect();
            out.push_str(&format!("{id},{method},{}\n", values.join(",")));
        }
    }
    let model = &card.model;
    crate::files::write_bytes(&dir.join(format!("scores_{model}.csv")), out.as_bytes())?;
    // The headline scores, one panel each.
    let panels: Vec<figures::ScorePanel> = [
        "road_gap",
        "faithfulness_correlation",
        "pixel_flipping_auc",
        "random_logit",
        "sparseness",
        "max_sensitivity",
        "relevance_mass",
    ]
    .iter()
    .filter_map(|key| {
        let info = crate::compare::scores::scorecard::score_info(key)?;
        let title = format!("{} ({} is better)", info.label, info.better());
        let methods: Vec<(String, f64, f64, f64)> = card
            .summary
            .iter()
            .filter_map(|(m, s)| {
                s.get(*key)
                    .map(|v| (m.clone(), v.mean, v.ci.low, v.ci.high))
            })
            .collect();
        (!methods.is_empty()).then(|| figures::ScorePanel {
            title: title.to_string(),
            methods,
        })
    })
    .collect();
    let file = format!("scorecard_{model}.png");
    figures::scorecard(&dir.join(&file), &panels).map_err(fig)?;
    Ok(crate::report::run::ScoresReport {
        card: card.clone(),
        figures: vec![Figure::new(
            file,
            "Which explanation to trust: mean score per method with 95 % bootstrap intervals",
        )],
    })
}

/// Writes the risk–coverage curve as CSV: one row per distinct confidence.
pub(super) fn write_risk_coverage(
    path: &Path,
    rc: &crate::evaluate::selective::RiskCoverage,
) -> Result<()> {
    let mut out = String::from("coverage,risk,confidence_threshold\n");
    for p in &rc.curve {
        out.push_str(&format!(
            "{:.6},{:.6},{:.6}\n",
            p.coverage, p.risk, p.threshold
        ));
    }
    crate::files::write_bytes(path, out.as_bytes())
}

/// Writes `agreement_<model>_<metric>.png` for every model and metric;
/// returns those the report shows (SSIM and Jaccard).
pub(super) fn agreement_figures(dir: &Path, report: &ComparisonReport) -> Result<Vec<Figure>> {
    let mut shown = Vec::new();
    for m in &report.models {
        for metric in Metric::SHOWN.map(Metric::name) {
            let means: Vec<Vec<f64>> = m.within.overall[metric]
                .iter()
                .map(|row| row.iter().map(|s| s.mean).collect())
                .collect();
            let range = if metric == Metric::Jaccard.name() {
                (0.0, 1.0)
            } else {
                (-1.0, 1.0)
            };
            figures::similarity_heatmap(
                &dir.join(format!("agreement_{}_{metric}.png", m.model)),
                &method_keys(report),
                &means,
                &format!(
                    "{} — mean {metric} over {} images",
                    m.model,
                    m.within.per_sample.len()
                ),
                range,
            )
            .map_err(fig)?;
            if metric == Metric::Ssim.name() || metric == Metric::Jaccard.name() {
                shown.push(Figure::new(
                    format!("agreement_{}_{metric}.png", m.model),
                    format!("{}: mean {metric}", m.model),
                ));
            }
        }
    }
    Ok(shown)
}

/// Writes `explanations_<model>.png` (the first eight images, each method);
/// returns `(model, figure)` for each one written.
pub(super) fn grid_figures(
    dir: &Path,
    report: &ComparisonReport,
    data: &Scan,
    models: &[(PathBuf, Model)],
) -> Result<Vec<(String, Figure)>> {
    let mut written = Vec::new();
    for (_, model) in models {
        let name = &model.meta.name;
        let map_dir = dir.join("maps").join(name);
        let mut rows = Vec::new();
        for id in report.sample_ids.iter().take(8) {
            let Some(sample) = data.samples.iter().find(|s| &s.id == id) else {
                continue;
            };
            let img = crate::data::image::decode_rgb(&sample.path)?;
            let size = model.meta.input_size;
            let img = crate::data::image::resize(&img, size[0] as u32, size[1] as u32);
            let stem = crate::explain::split::stem(id);
            let mut maps = Vec::new();
            for method in &report.methods {
                let path = map_path(&map_dir, &stem, method.key(), MapFile::Heatmap);
                let (values, height, width) = crate::data::npy::read_map(&path)?;
                maps.push(figures::GridMap {
                    method: method.key().to_string(),
                    values,
                    width,
                    height,
                });
            }
            rows.push(figures::GridRow {
                title: id.clone(),
                image: img,
                maps,
            });
        }
        if !rows.is_empty() {
            let file = format!("explanations_{name}.png");
            figures::explanation_grid(&dir.join(&file), &rows).map_err(fig)?;
            written.push((
                name.clone(),
                Figure::new(file, "Explanations: image, then each method"),
            ));
        }
    }
    Ok(written)
}

/// The report's agreement section: mean/spread of each method pair within
/// each model, and each model against the reference.
pub(super) fn agreement_report(report: &ComparisonReport, figures: Vec<Figure>) -> AgreementReport {
    let keys = method_keys(report);
    let mut within = BTreeMap::new();
    for m in &report.models {
        let mut pairs = BTreeMap::new();
        for i in 0..report.methods.len() {
            for j in (i + 1)..report.methods.len() {
                let metrics = Metric::SHOWN
                    .iter()
                    .filter_map(|k| {
                        let s = m.within.overall.get(k.name())?.get(i)?.get(j)?;
                        Some((k.name().to_string(), s.clone()))
                    })
                    .collect();
                pairs.insert(format!("{}~{}", keys[i], keys[j]), metrics);
            }
        }
        within.insert(m.model.clone(), pairs);
    }
    let cross = report
        .cross
        .iter()
        .map(|c| CrossAgreement {
            models: [c.model_a.clone(), c.model_b.clone()],
            prediction_agreement: c.prediction_agreement,
            mean_abs_probability_difference: c.mean_abs_probability_difference,
            per_method: c
                .per_method
                .iter()
                .map(|(method, metrics)| (method.key().to_string(), metrics.clone()))
                .collect(),
        })
        .collect();
    let members = report
        .models
        .iter()
        .filter_map(|m| {
            let a = m.members.as_ref()?;
            let per_method = a
                .per_method
                .iter()
                .map(|(method, metrics)| (method.key().to_string(), metrics.clone()))
                .collect();
            Some((
                m.model.clone(),
                MembersReport {
                    members: a.members,
                    per_method,
                },
            ))
        })
        .collect();
    AgreementReport {
        images: report.sample_ids.len(),
        of_images: report.sample_ids.len(),
        methods: keys,
        within,
        cross,
        members,
        figures,
    }
}

/// The report's method names (`gradcam`, `ig`, ...), in report order.
fn method_keys(report: &ComparisonReport) -> Vec<String> {
    report.methods.iter().map(|m| m.key().to_string()).collect()
}
