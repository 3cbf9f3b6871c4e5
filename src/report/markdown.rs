//! `report.md`: the numbers of `metrics.json` in prose and tables, with every
//! PNG figure of the run folder embedded where it belongs.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::error::Result;

fn num(v: &Value) -> String {
    v.as_f64().map_or("—".into(), |x| format!("{x:.3}"))
}

fn figure(out: &mut String, dir: &Path, file: &str, caption: &str) {
    if dir.join(file).exists() {
        let _ = writeln!(out, "\n![{caption}]({file})\n");
    }
}

/// Writes `dir/report.md` from the run's `metrics.json` value.
pub fn write(dir: &Path, all: &Value) -> Result<()> {
    let mut md = String::new();
    let run = all["run"].as_str().unwrap_or("run");
    let _ = writeln!(md, "# melxai report: {run}\n");
    let _ = writeln!(
        md,
        "melxai {} · libtorch {}\n",
        all["melxai_version"].as_str().unwrap_or(""),
        all["libtorch"].as_str().unwrap_or("")
    );
    let data = &all["metrics"]["data"];
    if !data.is_null() {
        let _ = writeln!(
            md,
            "## Data\n\n`{}`: classes {} with {} images each.",
            data["root"].as_str().unwrap_or(""),
            data["classes"],
            data["counts"]
        );
        if let Some(skipped) = data["skipped"].as_array().filter(|s| !s.is_empty()) {
            let _ = writeln!(md, "\nSkipped files ({}):\n", skipped.len());
            for s in skipped {
                let _ = writeln!(
                    md,
                    "- `{}`: {}",
                    s["path"].as_str().unwrap_or(""),
                    s["reason"].as_str().unwrap_or("")
                );
            }
        }
    }
    let _ = writeln!(
        md,
        "\n## Steps\n\n| step | result | seconds |\n|---|---|---|"
    );
    for s in all["steps"].as_array().into_iter().flatten() {
        let result = if s["ok"].as_bool() == Some(true) {
            "ok".to_string()
        } else {
            format!("**failed**: {}", s["error"].as_str().unwrap_or(""))
        };
        let _ = writeln!(
            md,
            "| {} | {} | {:.1} |",
            s["step"].as_str().unwrap_or(""),
            result,
            s["seconds"].as_f64().unwrap_or(0.0)
        );
    }
    let cv = &all["metrics"]["cross_validation"];
    if !cv.is_null() {
        let p = &cv["pooled"];
        let _ = writeln!(
            md,
            "\n## Cross-validation ({} folds, model {})\n",
            cv["folds"],
            cv["model"].as_str().unwrap_or("")
        );
        let _ = writeln!(
            md,
            "Pooled out-of-fold predictions over all {} images (each predicted by the fold model that never saw it): \
             AUROC **{}** (95 % CI {}–{}), balanced accuracy **{}** (95 % CI {}–{}), sensitivity {}, specificity {}, F1 {}.\n",
            p["n"], num(&p["auroc"]), num(&cv["pooled_auroc_ci95"][0]), num(&cv["pooled_auroc_ci95"][1]),
            num(&p["balanced_accuracy"]), num(&cv["pooled_balanced_accuracy_ci95"][0]), num(&cv["pooled_balanced_accuracy_ci95"][1]),
            num(&p["recall"]), num(&p["specificity"]), num(&p["f1"])
        );
        let s = &cv["summary"];
        let _ = writeln!(
            md,
            "Per fold: AUROC {} ± {}, balanced accuracy {} ± {}.",
            num(&s["auroc"]["mean"]),
            num(&s["auroc"]["std"]),
            num(&s["balanced_accuracy"]["mean"]),
            num(&s["balanced_accuracy"]["std"])
        );
        let cal = &cv["calibration"]["results"][0];
        let _ = writeln!(
            md,
            "\nCalibration (temperature {}, cross-fitted on out-of-fold predictions): ECE {} → {}, Brier {} → {}, NLL {} → {}.",
            num(&cv["calibration"]["fit"]["temperature"]), num(&cal["before"]["ece"]), num(&cal["after"]["ece"]),
            num(&cal["before"]["brier"]), num(&cal["after"]["brier"]), num(&cal["before"]["nll"]), num(&cal["after"]["nll"])
        );
        let model = cv["model"].as_str().unwrap_or("");
        figure(
            &mut md,
            dir,
            &format!("roc_{model}_cv.png"),
            "ROC, pooled out-of-fold",
        );
        figure(
            &mut md,
            dir,
            &format!("confusion_{model}_cv.png"),
            "Confusion matrix, pooled out-of-fold",
        );
        figure(
            &mut md,
            dir,
            &format!("reliability_{model}_cv.png"),
            "Reliability before/after temperature scaling",
        );
        figure(
            &mut md,
            dir,
            &format!("training_{model}-cv.png"),
            "Training curves per fold",
        );
    }
    if let Some(obj) = all["metrics"].as_object() {
        for (key, m) in obj.iter().filter(|(k, _)| k.starts_with("model:")) {
            let name = key.trim_start_matches("model:");
            let t = &m["test"];
            let _ = writeln!(md, "\n## Model {name}\n");
            let _ = writeln!(
                md,
                "Checkpoint `{}`, best epoch {}. Test split ({} images — small: see the intervals in metrics.json): \
                 AUROC {}, balanced accuracy {}, sensitivity {}, specificity {}, precision {}, F1 {}.",
                m["checkpoint"].as_str().unwrap_or(""), m["best_epoch"], t["n"], num(&t["auroc"]), num(&t["balanced_accuracy"]),
                num(&t["recall"]), num(&t["specificity"]), num(&t["precision"]), num(&t["f1"])
            );
            let cal = &m["calibration"];
            let r = &cal["results"][0];
            let _ = writeln!(
                md,
                "\nTemperature {} (fitted on {} validation images); on {}: ECE {} → {}, Brier {} → {}, NLL {} → {}.",
                num(&cal["fit"]["temperature"]), cal["fitted_n"], r["evaluated_on"].as_str().unwrap_or(""),
                num(&r["before"]["ece"]), num(&r["after"]["ece"]), num(&r["before"]["brier"]), num(&r["after"]["brier"]),
                num(&r["before"]["nll"]), num(&r["after"]["nll"])
            );
            for (file, caption) in [
                (format!("training_{name}.png"), "Training curves"),
                (format!("roc_{name}.png"), "ROC (test split)"),
                (
                    format!("confusion_{name}.png"),
                    "Confusion matrix (test split)",
                ),
                (format!("reliability_{name}.png"), "Reliability diagram"),
                (
                    format!("explanations_{name}.png"),
                    "Explanations: image, then each method",
                ),
            ] {
                figure(&mut md, dir, &file, caption);
            }
        }
    }
    let ag = &all["metrics"]["agreement"];
    if !ag.is_null() {
        let _ = writeln!(
            md,
            "\n## Agreement between explanations ({} images)\n",
            ag["images"]
        );
        let _ = writeln!(md, "Mean over images (± standard deviation). Per-image values: `maps/within_*.csv`, `maps/cross_*.csv`.\n");
        let _ = writeln!(md, "| model | methods | SSIM | Pearson | cosine | Jaccard (top 10 %) |\n|---|---|---|---|---|---|");
        if let Some(within) = ag["within"].as_object() {
            for (model, pairs) in within {
                for (pair, m) in pairs.as_object().into_iter().flatten() {
                    let cell = |k: &str| format!("{} ± {}", num(&m[k]["mean"]), num(&m[k]["std"]));
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
                for metric in ["ssim", "jaccard"] {
                    figure(
                        &mut md,
                        dir,
                        &format!("agreement_{model}_{metric}.png"),
                        &format!("{model}: mean {metric}"),
                    );
                }
            }
        }
        for c in ag["cross"].as_array().into_iter().flatten() {
            let _ = writeln!(
                md,
                "\n### {} vs {}\n\nPredictions agree on {:.1} % of images; mean |Δp| (calibrated) {}.\n\n| method | SSIM | Pearson | cosine | Jaccard |\n|---|---|---|---|---|",
                c["models"][0].as_str().unwrap_or(""), c["models"][1].as_str().unwrap_or(""),
                100.0 * c["prediction_agreement"].as_f64().unwrap_or(f64::NAN), num(&c["mean_abs_probability_difference"])
            );
            for (method, m) in c["per_method"].as_object().into_iter().flatten() {
                let _ = writeln!(
                    md,
                    "| {method} | {} | {} | {} | {} |",
                    num(&m["ssim"]["mean"]),
                    num(&m["pearson"]["mean"]),
                    num(&m["cosine"]["mean"]),
                    num(&m["jaccard"]["mean"])
                );
            }
        }
    }
    if dir.join("screens").is_dir() {
        let _ = writeln!(
            md,
            "\n## Terminal panes\n\nRendered headless: `screens/*.svg`."
        );
    }
    let path = dir.join("report.md");
    crate::files::write_bytes(&path, md.as_bytes())
}
