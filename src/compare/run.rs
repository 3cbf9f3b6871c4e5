//! The comparison's result and its files: within-model and cross-model
//! agreement of one split's explanations (the job that produces it is
//! [`crate::jobs::compare`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::agreement::{CrossModel, MembersAgreement, WithinModel};
use super::similarity::Metric;
use crate::error::{Error, Result};
use crate::explain::split::{MapRecord, MemberAgreement};
use crate::explain::Method;

#[derive(Debug, Clone, Serialize)]
pub struct ModelAgreement {
    pub model: String,
    pub checkpoint: PathBuf,
    pub within: WithinModel,
    /// For an ensemble: how far its members' explanations agree.
    pub members: Option<MembersAgreement>,
    pub maps: Vec<MapRecord>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ComparisonReport {
    pub split: String,
    pub sample_ids: Vec<String>,
    pub methods: Vec<Method>,
    pub models: Vec<ModelAgreement>,
    pub cross: Vec<CrossModel>,
    /// The models' maps scored (`[scores]`): the reference, or every model
    /// with `all_models`.
    pub scores: Vec<crate::compare::scores::scorecard::Scorecard>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

/// CSV rows are collected in memory and written atomically when complete.
fn csv_file(_path: &Path) -> Result<Vec<u8>> {
    Ok(Vec::new())
}

/// `agreement.json`, `within_<model>.csv` (one row per image, metric and method
/// pair), `cross_<a>_vs_<b>.csv` (one row per image and method) and, for an
/// ensemble, `members_<model>.csv` (one row per image and method: the
/// metrics averaged over member pairs).
pub fn write(report: &ComparisonReport, out_dir: &Path) -> Result<()> {
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let json = out_dir.join("agreement.json");
    let text = serde_json::to_string_pretty(report).map_err(|e| Error::Other(e.to_string()))?;
    crate::files::write_bytes(&json, text.as_bytes())?;
    for m in &report.models {
        let path = out_dir.join(format!("within_{}.csv", m.model));
        let mut f = csv_file(&path)?;
        writeln!(f, "sample,label,correct,metric,method_a,method_b,value").map_err(io(&path))?;
        for s in &m.within.per_sample {
            for metric in Metric::ALL {
                let mat = &s.matrices[metric.name()];
                for (i, row) in mat.iter().enumerate() {
                    for (j, value) in row.iter().enumerate().skip(i + 1) {
                        let (a, b) = (&report.methods[i], &report.methods[j]);
                        writeln!(
                            f,
                            "{},{},{},{metric},{a},{b},{value}",
                            s.id, s.label, s.correct
                        )
                        .map_err(io(&path))?;
                    }
                }
            }
        }
        crate::files::write_bytes(&path, &f)?;
    }
    for m in &report.models {
        let rows: Vec<(&str, &Method, &MemberAgreement)> = m
            .maps
            .iter()
            // maps.json may also record images of an earlier, wider split.
            .filter(|r| report.sample_ids.contains(&r.id))
            .filter_map(|r| Some((r.id.as_str(), &r.method, r.members.as_ref()?)))
            .collect();
        if rows.is_empty() {
            continue;
        }
        let path = out_dir.join(format!("members_{}.csv", m.model));
        let mut f = csv_file(&path)?;
        let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        writeln!(f, "sample,method,members,pairs,{}", names.join(",")).map_err(io(&path))?;
        for (id, method, a) in rows {
            let values: Vec<String> = Metric::ALL.iter().map(|k| a.get(*k).to_string()).collect();
            writeln!(
                f,
                "{id},{method},{},{},{}",
                a.members,
                a.pairs,
                values.join(",")
            )
            .map_err(io(&path))?;
        }
        crate::files::write_bytes(&path, &f)?;
    }
    for c in &report.cross {
        let path = out_dir.join(format!("cross_{}_vs_{}.csv", c.model_a, c.model_b));
        let mut f = csv_file(&path)?;
        let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        writeln!(f, "sample,method,{}", names.join(",")).map_err(io(&path))?;
        for s in &c.per_sample {
            let values: Vec<String> = names.iter().map(|k| s.metrics[*k].to_string()).collect();
            writeln!(f, "{},{},{}", s.id, s.method, values.join(",")).map_err(io(&path))?;
        }
        crate::files::write_bytes(&path, &f)?;
    }
    Ok(())
}
