//! `report.md`: the numbers of the run report in prose and tables, with the
//! PNG figures each section lists embedded where they belong.

use std::fmt::Write as _;
use std::path::Path;

use super::run::{
    AgreementReport, CrossAgreement, CrossValidationReport, DataSummary, EnsembleReport, Figure,
    MembersReport, ModelReport, OperatingPointSummary, RunReport, StepRecord, WithoutTta,
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
    if let Some(e) = &m.ensemble {
        ensemble_section(&mut md, e);
        let classes = m.data.as_ref().map(|d| d.classes.as_slice());
        decisions_section(
            &mut md,
            &e.repeated_cv.ensemble.decisions,
            &e.decision_figure,
            classes.unwrap_or_default(),
        );
    }
    for (name, model) in &m.models {
        model_section(&mut md, name, model);
    }
    if let Some(ag) = &m.agreement {
        agreement_section(&mut md, ag);
    }
    for sc in &m.scores {
        scores_section(&mut md, sc);
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
    if let Some(g) = data.groups {
        let _ = writeln!(
            md,
            "\n{g} patient/lesion groups: every split keeps a group's images on one side, \
             and intervals resample groups."
        );
    }
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

/// "ECE a → b (perfectly calibrated: e, p = …), Brier a → b, NLL a → b" of
/// the first evaluation of `c`.
fn calibration_change(c: &CalibrationOutcome) -> String {
    let Some(r) = c.results.first() else {
        return "no evaluation".into();
    };
    format!(
        "ECE {} → {} (perfectly calibrated: {}, p = {:.2}), Brier {} → {}, NLL {} → {}",
        num(r.before.ece),
        num(r.after.ece),
        num(r.after_ci.ece_if_calibrated.expected),
        r.after_ci.ece_if_calibrated.p_value,
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

/// "a–b" of a `[low, high]` interval.
fn range(ci: [f64; 2]) -> String {
    format!("{}–{}", num(ci[0]), num(ci[1]))
}

fn ensemble_section(md: &mut String, e: &EnsembleReport) {
    ensemble_intro(md, e);
    ensemble_table(md, e);
    ensemble_notes(md, e);
    operating_point_text(md, &e.operating_point);
    figures(md, &e.figures);
    super::markdown_breakdown::breakdown_sections(md, "ensemble out of fold", &e.breakdown);
}

/// "Decisions": the calibration statement with its evidence, and what the
/// decision curve says at a few threshold probabilities.
fn decisions_section(
    md: &mut String,
    d: &crate::evaluate::decisions::Decisions,
    figure: &Option<Figure>,
    classes: &[String],
) {
    let c = &d.calibration;
    let ci = |i: &crate::metrics::Interval| format!("{:.3} [{:.3}, {:.3}]", i.point, i.low, i.high);
    let _ = writeln!(
        md,
        "\n## Decisions\n\nOut-of-fold predictions of the ensemble, melanoma probability after its temperature.\n\n\
         **Calibration:** {}.\n\n\
         | statistic | value [95 % bootstrap CI] |\n|---|---|\n\
         | Spiegelhalter Z (p-value) | {:.2} ({:.3}) |\n\
         | calibration slope (1 = right spread) | {} |\n\
         | calibration intercept (0 = right mean risk) | {} |\n\
         | adaptive ECE (15 equal-mass bins) | {} |\n\
         | ACE (netcal: equal-width bins, equal weights) | {} |\n\
         | debiased ECE (Kumar et al. 2019) | {} |\n\
         | class-wise ECE | {} |",
        c.statement,
        c.spiegelhalter.z,
        c.spiegelhalter.p_value,
        ci(&c.slope),
        ci(&c.intercept),
        ci(&c.adaptive_ece),
        ci(&c.average_ce),
        ci(&c.debiased_ece),
        ci(&c.classwise_ece),
    );
    let _ = writeln!(
        md,
        "\n**Decision curve** (refer when P(melanoma) ≥ t; net benefit = TP/n − FP/n · t/(1−t), \
         prevalence {:.3}):\n\n| t | model [95 % CI] | refer all | refer none |\n|---|---|---|---|",
        d.decision_curve.prevalence
    );
    for p in d.decision_curve.points.iter().filter(|p| {
        [0.05, 0.1, 0.2, 0.3, 0.5]
            .iter()
            .any(|t| (p.threshold - t).abs() < 1e-9)
    }) {
        let band = p
            .model_ci
            .map(|[lo, hi]| format!(" [{lo:.3}, {hi:.3}]"))
            .unwrap_or_default();
        let _ = writeln!(
            md,
            "| {:.2} | {:.3}{band} | {:.3} | 0 |",
            p.threshold, p.model, p.treat_all
        );
    }
    if let Some(t) = d.operating_threshold {
        let _ = writeln!(md, "\nThe operating point refers at t = {t:.3}.");
    }
    if let Some(f) = figure {
        figures(md, std::slice::from_ref(f));
    }
    if let Some(c) = &d.conformal {
        conformal_text(md, c, classes);
    }
}

/// The conformal sets' coverage against 1 − α: cross-conformal out of fold,
/// per class, per single model, and over repeated calibration/test halvings.
fn conformal_text(
    md: &mut String,
    c: &crate::evaluate::conformal::ConformalEvaluation,
    classes: &[String],
) {
    let e = &c.ensemble;
    let name = |k: usize| {
        classes
            .get(k)
            .cloned()
            .unwrap_or_else(|| format!("class {k}"))
    };
    let per_class: Vec<String> = e
        .class_coverage
        .iter()
        .enumerate()
        .filter_map(|(k, v)| v.map(|v| format!("{} {v:.3}", name(k))))
        .collect();
    let spread = |m: &crate::metrics::MeanStd, digits: usize| {
        if m.n >= 2 {
            format!("{:.digits$} ± {:.digits$}", m.mean, m.std)
        } else {
            format!("{:.digits$} (one repetition)", m.mean)
        }
    };
    let _ = writeln!(
        md,
        "\n**Conformal prediction sets** ({}; each image's set from thresholds calibrated on the other \
         folds' out-of-fold predictions). Promised coverage ≥ {:.2}; a set other than one benign class \
         means refer.\n\n\
         | | ensemble [95 % CI] | single models (mean ± sd over {} repetitions) |\n|---|---|---|\n\
         | coverage | {:.3} [{:.3}, {:.3}] | {} |\n\
         | mean set size | {:.2} [{:.2}, {:.2}] | {} |\n\n\
         Coverage per class: {}. Sets: {:.0} % one class, {:.0} % two or more, {:.0} % empty; \
         {:.0} % of images referred by their set.",
        c.settings.describe(),
        c.target,
        c.single_coverage.len(),
        e.coverage,
        c.coverage_ci.low,
        c.coverage_ci.high,
        spread(&c.single_coverage_spread, 3),
        e.mean_size,
        c.mean_size_ci.low,
        c.mean_size_ci.high,
        spread(&c.single_mean_size_spread, 2),
        per_class.join(", "),
        e.singletons * 100.0,
        e.two_or_more * 100.0,
        e.empty * 100.0,
        c.referral_rate * 100.0,
    );
    let _ = writeln!(
        md,
        "\nRepeated split conformal ({} random halvings of the out-of-fold predictions into \
         calibration and test):\n\n\
         | α | promised | mean coverage ± MC error (2 SE) | mean set size | holds |\n|---|---|---|---|---|",
        c.experiment.first().map_or(0, |x| x.splits)
    );
    for x in &c.experiment {
        let _ = writeln!(
            md,
            "| {:.2} | ≥ {:.2} | {:.3} ± {:.3} | {:.2} | {} |",
            x.alpha,
            1.0 - x.alpha,
            x.mean_coverage,
            x.monte_carlo_error,
            x.mean_size,
            if x.holds { "yes" } else { "**no**" }
        );
    }
}

/// The heading and the paragraph saying what was repeated and how the table
/// reads, apart so the table code stays short.
fn ensemble_intro(md: &mut String, e: &EnsembleReport) {
    let cv = &e.repeated_cv;
    let _ = writeln!(
        md,
        "\n## Single models vs ensemble ({} × {}-fold cross-validation, model {})\n",
        cv.repetitions, e.folds, e.model
    );
    let mixed = cv.input_sizes.windows(2).any(|w| w[0] != w[1]);
    let seeds: Vec<String> = if mixed {
        cv.seeds
            .iter()
            .zip(&cv.input_sizes)
            .map(|(seed, size)| format!("{seed} @ {size} px"))
            .collect()
    } else {
        cv.seeds.iter().map(u64::to_string).collect()
    };
    let resolution = match cv.input_sizes.first() {
        _ if mixed => {
            " (seed @ input size: each seed trained at every size, a mixed-resolution ensemble)"
                .into()
        }
        Some(size) => format!(", input {size} px"),
        None => String::new(),
    };
    let _ = writeln!(
        md,
        "Seeds {}{resolution}. Every image has one out-of-fold prediction per repetition, each from a model that never saw it; \
         the ensemble averages an image's {} probabilities (a seed ensemble, not the deployed ensemble of one run's fold models). \
         Temperatures are cross-fitted (fitted on the other folds' out-of-fold predictions). \
         ECE over 15 bins; AURC: area under the risk–coverage curve, least certain cases referred first (lower is better). \
         Intervals: 95 % percentile bootstrap over images (single models: of the mean over repetitions).\n",
        seeds.join(", "),
        e.members
    );
    if e.members < 2 {
        let _ = writeln!(
            md,
            "With one repetition (`[batch] cv_repeats = 1`, or \"auto\" on the CPU) the \"ensemble\" is one model per image: \
             the rows below are the same model. Set `cv_repeats` to 3 or more (\"auto\" runs 4 on a GPU) to measure what averaging buys.\n"
        );
    }
}

/// The single-model vs ensemble table, with the without-TTA rows when TTA was
/// measured on and off.
fn ensemble_table(md: &mut String, e: &EnsembleReport) {
    let cv = &e.repeated_cv;
    let s = &cv.single.spread;
    let p = &cv.single.pooled;
    let _ = writeln!(
        md,
        "| | AUROC | balanced accuracy | ECE | Brier | NLL | AURC |\n|---|---|---|---|---|---|---|"
    );
    let ms = |m: &crate::metrics::MeanStd| format!("{} ± {}", num(m.mean), num(m.std));
    let _ = writeln!(
        md,
        "| single model, mean ± sd over {} repetitions | {} | {} | {} | {} | {} | {} |",
        cv.repetitions,
        ms(&s.auroc),
        ms(&s.balanced_accuracy),
        ms(&s.ece),
        ms(&s.brier),
        ms(&s.nll),
        ms(&s.aurc)
    );
    let ci = |i: &crate::metrics::Interval| range([i.low, i.high]);
    let _ = writeln!(
        md,
        "| single model, 95 % CI | {} | {} | {} | {} | {} | {} |",
        ci(&p.auroc),
        ci(&p.balanced_accuracy),
        ci(&p.ece),
        ci(&p.brier),
        ci(&p.nll),
        ci(&p.aurc)
    );
    let _ = writeln!(
        md,
        "| **ensemble of {}** | **{}** ({}) | {} ({}) | **{}** ({}) | {} ({}) | {} ({}) | {} ({}) |",
        e.members,
        num(e.auroc),
        range(e.auroc_ci),
        num(e.balanced_accuracy),
        range(e.balanced_accuracy_ci),
        num(e.ece),
        range(e.ece_ci),
        num(e.brier),
        range(e.brier_ci),
        num(e.nll),
        range(e.nll_ci),
        num(e.aurc),
        range(e.aurc_ci)
    );
    if let Some(w) = &e.without_tta {
        without_tta_rows(md, e.members, w);
    }
}

/// The without-TTA rows and their note, only written when `[train] tta` ran
/// both ways.
fn without_tta_rows(md: &mut String, members: usize, w: &WithoutTta) {
    let row = |m: &crate::evaluate::repeated_cv::MetricSet| {
        format!(
            "{} | {} | {} | {} | {} | {}",
            num(m.auroc),
            num(m.balanced_accuracy),
            num(m.ece),
            num(m.brier),
            num(m.nll),
            num(m.aurc)
        )
    };
    let _ = writeln!(
        md,
        "| without TTA: single model, mean | {} |\n| without TTA: ensemble of {} | {} |",
        row(&w.single),
        members,
        row(&w.ensemble)
    );
    let _ = writeln!(
        md,
        "\nThe single-model and ensemble rows average each network's held-out logits over the 8 flips × 90° rotations (`[train] tta`); \
         the \"without TTA\" rows are the same models' plain predictions, evaluated the same way."
    );
}

/// The ECE-consistency and seed-to-seed |Δp| sentences that qualify the
/// table's calibration and stability figures.
fn ensemble_notes(md: &mut String, e: &EnsembleReport) {
    let c = &e.ece_if_calibrated;
    let _ = writeln!(
        md,
        "\nECE is biased upwards on few images: a perfectly calibrated ensemble with the same confidences would score {} \
         ({} % of {} draws in {}); {} % of those draws reach the observed {} (p = {}: {}).",
        num(c.expected),
        (c.level * 100.0).round(),
        c.resamples,
        range([c.low, c.high]),
        (c.p_value * 100.0).round(),
        num(c.observed),
        format_args!("{:.2}", c.p_value),
        if c.p_value < 0.05 {
            "miscalibration beyond sampling noise"
        } else {
            "not distinguishable from perfect calibration at this sample size"
        }
    );
    let opt = |v: Option<f64>, need: &str| v.map_or(format!("— (needs {need})"), num);
    let _ = writeln!(
        md,
        "\nSeed-to-seed mean |Δp| (calibrated melanoma probability, same images): single models {}; \
         ensembles of two halves of the repetitions that share no seed {}.",
        opt(e.seed_abs_diff_single, "2 repetitions"),
        opt(e.seed_abs_diff, "two members in each half")
    );
}

/// The operating-point subsection: the optimistic in-sample figures beside the
/// honest cross-fitted ones.
fn operating_point_text(md: &mut String, op: &OperatingPointSummary) {
    let _ = writeln!(
        md,
        "\n### Operating point (target sensitivity {})\n\n\
         Refer when the ensemble's calibrated melanoma probability is at least **{}**. \
         On the out-of-fold predictions it was chosen on: sensitivity {} (95 % CI {}), specificity **{}** (95 % CI {}) — \
         optimistic, the threshold was fitted to these images. \
         Cross-fitted (threshold chosen on the other folds, applied to the held-out fold): \
         sensitivity **{}** (95 % CI {}), specificity **{}** (95 % CI {}).",
        num(op.target_sensitivity),
        num(op.threshold),
        num(op.sensitivity),
        range(op.sensitivity_ci),
        num(op.specificity),
        range(op.specificity_ci),
        num(op.cross_fitted_sensitivity),
        range(op.cross_fitted_sensitivity_ci),
        num(op.cross_fitted_specificity),
        range(op.cross_fitted_specificity_ci)
    );
}

fn model_section(md: &mut String, name: &str, m: &ModelReport) {
    let t = &m.test;
    let _ = writeln!(md, "\n## Model {name}\n");
    let _ = writeln!(
        md,
        "Checkpoint `{}`, {}. Test split ({} images — small: see the intervals in metrics.json): \
         AUROC {}, balanced accuracy {}, sensitivity {}, specificity {}, precision {}, F1 {}.",
        m.checkpoint.display(),
        crate::train::trainer::checkpoint_epochs(m.best_epoch, m.averaged_from),
        t.n,
        num(t.auroc),
        num(t.balanced_accuracy),
        num(t.recall),
        num(t.specificity),
        num(t.precision),
        num(t.f1)
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
    if let Some(sp) = &m.split {
        let part = |p: &crate::data::groups::PartSummary| {
            format!("{} images ({} groups)", p.images, p.groups)
        };
        let _ = writeln!(
            md,
            "\nSplit, no group on two sides: train {}, validation {}, test {}.",
            part(&sp.train),
            part(&sp.val),
            part(&sp.test)
        );
    }
    figures(md, &m.figures);
    super::markdown_breakdown::breakdown_sections(md, "test split", &m.breakdown);
}

fn agreement_section(md: &mut String, ag: &AgreementReport) {
    let _ = writeln!(
        md,
        "\n## Agreement between explanations ({})\n",
        if ag.of_images > ag.images {
            format!(
                "{} of the split's {} images, stratified by class and correctness",
                ag.images, ag.of_images
            )
        } else {
            format!("{} images", ag.images)
        }
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
    for (model, m) in &ag.members {
        members_section(md, model, m);
    }
}

fn members_section(md: &mut String, model: &str, m: &MembersReport) {
    let _ = writeln!(
        md,
        "\n### Members of {model} ({} models)\n\nDo explanations stay consistent across models of similar performance? \
         Each image's maps from the {} members are compared pairwise and averaged; mean over images (± standard deviation). \
         The ensemble's own maps (attributions of its combined logit; GradCAM averaged over members) are in `maps/{model}/`, \
         per-image values in `maps/members_{model}.csv`.\n\n| method | SSIM | Pearson | cosine | Jaccard |\n|---|---|---|---|---|",
        m.members, m.members
    );
    for (method, metrics) in &m.per_method {
        let cell = |k: &str| {
            metrics.get(k).filter(|s| s.n > 0).map_or("—".into(), |s| {
                format!("{} ± {}", num(s.mean), num(s.std))
            })
        };
        let _ = writeln!(
            md,
            "| {method} | {} | {} | {} | {} |",
            cell("ssim"),
            cell("pearson"),
            cell("cosine"),
            cell("jaccard")
        );
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

/// "Which explanation to trust": each method's scores with intervals, the
/// paired comparisons, and a one-line verdict.
fn scores_section(md: &mut String, sc: &crate::report::run::ScoresReport) {
    let c = &sc.card;
    let methods: Vec<&String> = c.summary.keys().collect();
    let _ = writeln!(
        md,
        "\n## Which explanation to trust ({}, {} images)\n\n\
         Scores of each method's map (the heatmap shown), read on the calibrated probability of the \
         explained class; mean [95 % bootstrap CI] over images. Checked against Quantus 0.6 \
         ([verification](../../docs/verification.md)).\n",
        c.model, c.images
    );
    let _ = writeln!(
        md,
        "| score (better) | {} |\n|---|{}",
        methods
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join(" | "),
        "---|".repeat(methods.len())
    );
    for score in crate::compare::scores::scorecard::SCORE_INFO {
        let (key, label) = (score.name, format!("{} ({})", score.label, score.better()));
        let cells: Vec<String> = methods
            .iter()
            .map(|m| {
                c.summary[*m].get(key).map_or_else(
                    || "—".to_string(),
                    |v| format!("{:.3} [{:.3}, {:.3}]", v.mean, v.ci.low, v.ci.high),
                )
            })
            .collect();
        if cells.iter().all(|t| t == "—") {
            continue;
        }
        let _ = writeln!(md, "| {label} | {} |", cells.join(" | "));
    }
    if let Some(note) = &c.localisation_note {
        let _ = writeln!(md, "\nLocalisation: {note}.");
    }
    let _ = writeln!(
        md,
        "\n**Paired comparison** (bootstrap of the per-image difference a − b; the better method \
         when the interval excludes 0):\n\n| score | a − b | mean difference [95 % CI] | better |\n|---|---|---|---|"
    );
    let mut wins: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for p in &c.paired {
        if let Some(b) = &p.better {
            *wins.entry(b.as_str()).or_default() += 1;
        }
        let _ = writeln!(
            md,
            "| {} | {} − {} | {:+.3} [{:+.3}, {:+.3}] | {} |",
            p.score,
            p.a,
            p.b,
            p.mean_difference,
            p.ci.low,
            p.ci.high,
            p.better.as_deref().unwrap_or("no difference")
        );
    }
    let decided = c.paired.iter().filter(|p| p.better.is_some()).count();
    let ranking: Vec<String> = {
        let mut w: Vec<(&str, usize)> = wins.into_iter().collect();
        w.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        w.iter().map(|(m, n)| format!("{m} {n}")).collect()
    };
    let _ = writeln!(
        md,
        "\nOf {} paired comparisons, {} are decided; wins: {}.",
        c.paired.len(),
        decided,
        if ranking.is_empty() {
            "none".to_string()
        } else {
            ranking.join(", ")
        }
    );
    figures(md, &sc.figures);
}
