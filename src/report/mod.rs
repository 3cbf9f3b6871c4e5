//! Reports: PNG figures and the `--batch` report folder (typed run report,
//! `metrics.json`, `report.md`).

pub mod figures;
pub mod markdown;
mod markdown_breakdown;
pub mod run;
