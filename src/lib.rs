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
pub mod evaluate;
pub mod explain;
pub mod files;
pub mod jobs;
pub mod metrics;
pub mod model;
pub mod progress;
pub mod report;
pub mod train;
pub mod tui;
pub mod validation;
pub mod verdict;

pub use error::{Error, Result};
