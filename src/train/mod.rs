//! Fine-tuning: class-weighted cross-entropy, AdamW, schedules, early stopping or
//! weight averaging, gradient clipping, k-fold cross-validation, cancellation and exact resume.

pub mod config;
mod epoch;
pub mod optimizer;
mod outcome;
mod resume_point;
pub mod schedule;
pub mod trainer;
mod weight_average;

pub use config::{Monitor, Sampler, TrainConfig};
pub use trainer::{train, CrossValidation, RunOutcome, SplitOutcome, TrainContext};
