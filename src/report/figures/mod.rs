//! PNG figures for reports: training curves, ROC curves, confusion matrices,
//! reliability diagrams, explanation grids, method-similarity heatmaps and
//! deletion/insertion curves.
//!
//! Why this module exists: the terminal UI shows results live, but a study
//! needs figures that can go into a paper or a README and be compared across
//! runs. Every function here takes plain data (numbers, strings, an
//! [`RgbImage`]) rather than tensors, so figures can be produced from saved
//! JSON reports without loading a model or libtorch, and so they can be
//! tested cheaply.
//!
//! Rendering uses `plotters`' bitmap backend with a font embedded in the
//! binary (DejaVu Sans, `assets/DejaVuSans.ttf`, Bitstream Vera licence in
//! `assets/DejaVuSans-LICENSE.txt`), so no system font libraries
//! (fontconfig/freetype) are needed and output is identical on every machine.
//! Text is laid out with `ab_glyph` by a thin backend wrapper rather than by
//! plotters' own `ab_glyph` path, whose glyph placement is visibly off (see
//! `FigBackend`). PNG encoding goes through `image` 0.25 (the crate's own
//! image dependency) instead of plotters' `bitmap_encoder`, which would pull
//! in a second, older `image`.
//!
//! Every function writes one PNG to `path`, creating missing parent
//! directories, and sizes its canvas for readability at about 1000 px wide.
//! The sizes are fixed per figure (the grid and heatmap grow with their
//! content) and documented on each function.

use std::path::PathBuf;

use plotters::prelude::DrawingAreaErrorKind;

mod backend;
mod confusion;
mod confusion_k;
mod decision_curve;
mod deletion_insertion;
mod draw;
mod grid;
mod heatmap;
mod reliability;
mod risk_coverage;
mod roc;
mod scorecard;
mod subgroups;
mod training;

pub use crate::explain::colormap::viridis;
pub use confusion::{confusion_matrix, confusion_matrix_cell_rect, CONFUSION_MATRIX_SIZE};
pub use confusion_k::{confusion_matrix_k, CONFUSION_K_SIZE};
pub use decision_curve::{decision_curve, DECISION_CURVE_SIZE};
pub use deletion_insertion::{deletion_insertion, DeletionInsertionCurve, DELETION_INSERTION_SIZE};
pub use grid::{explanation_grid, explanation_grid_size, GridMap, GridRow};
pub use heatmap::similarity_heatmap;
pub use reliability::{reliability_diagram, Bin, RELIABILITY_SIZE_PAIR, RELIABILITY_SIZE_SINGLE};
pub use risk_coverage::{risk_coverage, RISK_COVERAGE_SIZE};
pub use roc::{roc_curve, RocSeries, ROC_CURVE_SIZE};
pub use scorecard::{scorecard, ScorePanel, SCORECARD_WIDTH};
pub use subgroups::{subgroup_forest, subgroup_forest_size};
pub use training::{training_curves, EpochPoint, TRAINING_CURVES_SIZE};

/// Errors from drawing or writing a figure.
#[derive(Debug, thiserror::Error)]
pub enum FigureError {
    /// The data handed in cannot be drawn (empty, mismatched lengths, ...).
    #[error("invalid figure input: {0}")]
    InvalidInput(String),
    /// The output's parent directory could not be created.
    #[error("could not create directory {path}: {source}")]
    CreateDir {
        /// Directory that could not be created.
        path: PathBuf,
        /// Underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Plotting failed (backend or layout error).
    #[error("drawing failed: {0}")]
    Draw(String),
    /// The PNG could not be encoded or written.
    #[error("could not write PNG {path}: {source}")]
    Write {
        /// Output path.
        path: PathBuf,
        /// Underlying image error.
        #[source]
        source: image::ImageError,
    },
    /// The embedded font could not be registered with plotters.
    #[error("the embedded font could not be loaded")]
    Font,
}

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for FigureError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        FigureError::Draw(e.to_string())
    }
}
