//! Reports: PNG figures and the `--batch` report folder.

pub mod figures;
pub mod markdown;
