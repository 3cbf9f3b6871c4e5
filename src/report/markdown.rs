//! `report.md`: the numbers of the run report in prose and tables, with the
//! PNG figures each section lists embedded where they belong.

use std::fmt::Write as _;
use std::path::Path;

use super::run::{
    AgreementReport, CrossAgreement, CrossValidationReport, DataSummary, Figure, ModelReport,
    RunReport, StepRecord,
};
use crate::calibrate::fit::CalibrationOutcome;
use crate::error::Result;

/// A number with three decimals; NaN (undefined on this data) as "—".
fn num(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3}")
    } else {
        "—".into()
    }
}

fn figures(md: &mut String, figures: &[Figure]) {
    for f in figures {
        let _ = writeln!(md, "\n![{}]({})\n", f.caption, f.file);
    }
}

/// Writes `dir/report.md` for `report`.
pub fn write(dir: &Path, report: &RunReport) -> Result<()> {
    let path = dir.join("report.md");
    crate::files::write_bytes(&path, render(report).as_bytes())
}

/// The whole `report.md` text.
pub fn render(report: &RunReport) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# melxai report: {}\n", report.run);
    let _ = writeln!(
        md,
        "melxai {} · libtorch {} · device {}\n",
        report.melxai_version, report.libtorch, report.device
    );
    let m = &report.metrics;
    if let Some(data) = &m.data {
        data_section(&mut md, data);
    }
    steps_section(&mut md, &report.steps);
    if let Some(cv) = &m.cross_validation {
        cross_validation_section(&mut md, cv);
    }
    for (name, model) in &m.models {
        model_section(&mut md, name, model);
    }
    if let Some(ag) = &m.agreement {
        agreement_section(&mut md, ag);
    }
    if !report.screens.is_empty() {
        let _ = writeln!(
            md,
            "\n## Terminal panes\n\nRendered headless from the run's results."
        );
        figures(&mut md, &report.screens);
    }
    md
}

fn data_section(md: &mut String, data: &DataSummary) {
    let _ = writeln!(
        md,
        "## Data\n\n`{}`: classes {:?} with {:?} images each.",
        data.root.display(),
        data.classes,
        data.counts
    );
    if !data.skipped.is_empty() {
        let _ = writeln!(md, "\nSkipped files ({}):\n", data.skipped.len());
        for s in &data.skipped {
            let _ = writeln!(md, "- `{}`: {}", s.path.display(), s.reason);
        }
    }
}

fn steps_section(md: &mut String, steps: &[StepRecord]) {
    let _ = writeln!(
        md,
        "\n## Steps\n\n| step | result | seconds |\n|---|---|---|"
    );
    for s in steps {
        let result = if s.ok {
            "ok".to_string()
        } else {
            format!("**failed**: {}", s.error.as_deref().unwrap_or(""))
        };
        let _ = writeln!(md, "| {} | {} | {:.1} |", s.step, result, s.seconds);
    }
}

/// "ECE a → b, Brier a → b, NLL a → b" of the first evaluation of `c`.
fn calibration_change(c: &CalibrationOutcome) -> String {
    let Some(r) = c.results.first() else {
        return "no evaluation".into();
    };
    format!(
        "ECE {} → {}, Brier {} → {}, NLL {} → {}",
        num(r.before.ece),
        num(r.after.ece),
        num(r.before.brier),
        num(r.after.brier),
        num(r.before.nll),
        num(r.after.nll)
    )
}

fn cross_validation_section(md: &mut String, cv: &CrossValidationReport) {
    let p = &cv.pooled;
    let _ = writeln!(
        md,
        "\n## Cross-validation ({} folds, model {})\n",
        cv.folds, cv.model
    );
    let _ = writeln!(
        md,
        "Pooled out-of-fold predictions over all {} images (each predicted by the fold model that never saw it): \
         AUROC **{}** (95 % CI {}–{}), balanced accuracy **{}** (95 % CI {}–{}), sensitivity {}, specificity {}, F1 {}.\n",
        p.n, num(p.auroc), num(cv.pooled_auroc_ci95[0]), num(cv.pooled_auroc_ci95[1]),
        num(p.balanced_accuracy), num(cv.pooled_balanced_accuracy_ci95[0]), num(cv.pooled_balanced_accuracy_ci95[1]),
        num(p.recall), num(p.specificity), num(p.f1)
    );
    let s = &cv.summary;
    let _ = writeln!(
        md,
        "Per fold: AUROC {} ± {}, balanced accuracy {} ± {}.",
        num(s.auroc.mean),
        num(s.auroc.std),
        num(s.balanced_accuracy.mean),
        num(s.balanced_accuracy.std)
    );
    let _ = writeln!(
        md,
        "\nCalibration (temperature {}, cross-fitted on out-of-fold predictions): {}.",
        num(cv.calibration.fit.temperature),
        calibration_change(&cv.calibration)
    );
    figures(md, &cv.figures);
}

fn model_section(md: &mut String, name: &str, m: &ModelReport) {
    let t = &m.test;
    let _ = writeln!(md, "\n## Model {name}\n");
    let _ = writeln!(
        md,
        "Checkpoint `{}`, best epoch {}. Test split ({} images — small: see the intervals in metrics.json): \
         AUROC {}, balanced accuracy {}, sensitivity {}, specificity {}, precision {}, F1 {}.",
        m.checkpoint.display(), m.best_epoch, t.n, num(t.auroc), num(t.balanced_accuracy),
        num(t.recall), num(t.specificity), num(t.precision), num(t.f1)
    );
    let c = &m.calibration;
    let on = c.results.first().map_or("", |r| r.evaluated_on.as_str());
    let _ = writeln!(
        md,
        "\nTemperature {} (fitted on {} validation images); on {on}: {}.",
        num(c.fit.temperature),
        c.fitted_n,
        calibration_change(c)
    );
    figures(md, &m.figures);
}

fn agreement_section(md: &mut String, ag: &AgreementReport) {
    let _ = writeln!(
        md,
        "\n## Agreement between explanations ({} images)\n",
        ag.images
    );
    let _ = writeln!(md, "Mean over images (± standard deviation). Per-image values: `maps/within_*.csv`, `maps/cross_*.csv`.\n");
    let _ = writeln!(md, "| model | methods | SSIM | Pearson | cosine | Jaccard (top 10 %) |\n|---|---|---|---|---|---|");
    for (model, pairs) in &ag.within {
        for (pair, m) in pairs {
            let cell = |k: &str| {
                m.get(k).map_or("—".into(), |s| {
                    format!("{} ± {}", num(s.mean), num(s.std))
                })
            };
            let _ = writeln!(
                md,
                "| {model} | {} | {} | {} | {} | {} |",
                pair.replace('~', " vs "),
                cell("ssim"),
                cell("pearson"),
                cell("cosine"),
                cell("jaccard")
            );
        }
    }
    figures(md, &ag.figures);
    for c in &ag.cross {
        cross_section(md, c);
    }
}

fn cross_section(md: &mut String, c: &CrossAgreement) {
    let _ = writeln!(
        md,
        "\n### {} vs {}\n\nPredictions agree on {:.1} % of images; mean |Δp| (calibrated) {}.\n\n| method | SSIM | Pearson | cosine | Jaccard |\n|---|---|---|---|---|",
        c.models[0],
        c.models[1],
        100.0 * c.prediction_agreement,
        num(c.mean_abs_probability_difference)
    );
    for (method, m) in &c.per_method {
        let mean = |k: &str| m.get(k).map_or("—".into(), |s| num(s.mean));
        let _ = writeln!(
            md,
            "| {method} | {} | {} | {} | {} |",
            mean("ssim"),
            mean("pearson"),
            mean("cosine"),
            mean("jaccard")
        );
    }
}
