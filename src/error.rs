//! The library's one error type. `anyhow` appears only in the binary.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("checkpoint {path}: {message}")]
    Checkpoint { path: PathBuf, message: String },

    /// The tensors of a file do not fit the model; `report` lists what is
    /// missing, unexpected and misshapen (`model::weights::LoadError` keeps
    /// it as data).
    #[error("checkpoint {path} does not fit the model:\n{report}")]
    WeightsMismatch { path: PathBuf, report: String },

    #[error("shape mismatch: expected {expected:?}, got {got:?}")]
    Shape { expected: Vec<i64>, got: Vec<i64> },

    #[error("image {path}: {message}")]
    Image { path: PathBuf, message: String },

    #[error("data set: {0}")]
    Dataset(String),

    #[error("config: {0}")]
    Config(String),

    #[error("device: {0}")]
    Device(String),

    /// Another run holds the lock on the same files.
    #[error("{0}")]
    Locked(String),

    /// A file that melxai reads is malformed (wrong header, size, values).
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },

    #[error("cancelled")]
    Cancelled,

    #[error("{0}")]
    Other(String),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
