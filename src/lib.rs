//! melxai: explainable melanoma classification.
//!
//! The pipeline (data, model, train, calibrate, explain, compare, report) is
//! this library; the terminal UI and `--batch` are thin faces over it.

pub mod allocator;
pub mod batch;
pub mod calibrate;
pub mod compare;
pub mod config;
pub mod data;
pub mod device;
pub mod doctor;
pub mod engine;
pub mod ensemble;
pub mod error;
pub mod eval;
pub mod explain;
pub mod files;
pub mod jobs;
pub mod metrics;
pub mod model;
pub mod operating_point;
pub mod predict;
pub mod progress;
pub mod repeated_cv;
pub mod report;
pub mod selective;
pub mod train;
pub mod tui;

pub use error::{Error, Result};
