//! report.md's "Every class" and "By subgroup" sections: what a K-class
//! model does on each class, and how the melanoma view holds up per skin
//! type, site, sex and age.

use std::fmt::Write as _;

use super::run::{Breakdown, Figure};
use crate::evaluate::multiclass::MulticlassMetrics;
use crate::metrics::Interval;

fn num(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3}")
    } else {
        "n/a".into()
    }
}

fn with_ci(i: &Interval) -> String {
    if i.low.is_finite() && i.high.is_finite() {
        format!("{} [{}, {}]", num(i.point), num(i.low), num(i.high))
    } else {
        num(i.point)
    }
}

/// The positive class's AUPRC, then every class and every subgroup, for one
/// set of held-out predictions (`what`: "ensemble out of fold", "test split").
pub(super) fn breakdown_sections(md: &mut String, what: &str, b: &Breakdown) {
    if b.is_empty() {
        return;
    }
    if let Some(p) = &b.positive {
        let _ = writeln!(
            md,
            "\n{} ({what}): AUPRC {} at a prevalence of {} (a coin's AUPRC).",
            p.class,
            with_ci(&p.auprc),
            num(p.prevalence)
        );
    }
    let groups = b.groups.map_or(String::new(), |g| {
        format!(" from {g} patient/lesion groups (intervals resample groups)")
    });
    if let Some(m) = &b.multiclass {
        let _ = writeln!(
            md,
            "\n### Every class ({what}, {} images{groups})\n",
            b.images
        );
        multiclass_text(md, m);
    }
    if let Some(s) = &b.subgroups {
        let _ = writeln!(
            md,
            "\n### By subgroup ({what}, {} images{groups}; threshold {})\n",
            b.images,
            num(s.threshold)
        );
        md.push_str(&crate::evaluate::subgroups::markdown_table(s));
    }
    figure_lines(md, &b.figures);
}

fn figure_lines(md: &mut String, figures: &[Figure]) {
    for f in figures {
        let _ = writeln!(md, "\n![{}]({})", f.caption, f.file);
    }
}

/// Macro figures, the per-class table and the row-normalised confusion.
fn multiclass_text(md: &mut String, m: &MulticlassMetrics) {
    let macro_auroc = m.macro_auroc.as_ref().map_or("n/a".into(), with_ci);
    let _ = writeln!(
        md,
        "Macro AUROC (one vs rest) {macro_auroc}; balanced accuracy (mean recall) {}; accuracy {}. \
         Top-label ECE {}, class-wise ECE {} ({} bins), Brier {}, NLL {}.\n",
        with_ci(&m.balanced_accuracy),
        num(m.accuracy),
        num(m.top_label_ece),
        num(m.classwise_ece),
        m.n_bins,
        num(m.brier),
        num(m.nll)
    );
    let _ = writeln!(
        md,
        "| class | n | AUROC (one vs rest) [95% CI] | recall | precision | ECE |\n|---|--:|---|--:|--:|--:|"
    );
    for c in &m.per_class {
        let auroc = c.auroc.as_ref().map_or("n/a".into(), with_ci);
        let _ = writeln!(
            md,
            "| {} | {} | {auroc} | {} | {} | {} |",
            c.name,
            c.n,
            num(c.recall),
            num(c.precision),
            num(c.ece)
        );
    }
    let _ = write!(md, "\nConfusion, share of each actual class (rows) predicted as (columns):\n\n| actual \\ predicted |");
    for c in &m.classes {
        let _ = write!(md, " {c} |");
    }
    let _ = write!(md, "\n|---|");
    for _ in &m.classes {
        md.push_str("--:|");
    }
    md.push('\n');
    for (name, row) in m.classes.iter().zip(&m.confusion_normalised) {
        let _ = write!(md, "| {name} |");
        for v in row {
            let _ = write!(md, " {:.2} |", v);
        }
        md.push('\n');
    }
}
