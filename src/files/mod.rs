//! Writing user-visible files safely: atomic replacement and run locks.
//!
//! Every file melxai writes goes through [`atomic`]: a reader (or a run killed
//! half-way) sees either the old file or the new one, never a truncated mix.
//! Writers that must not overlap (two trainings of the same name) take a
//! [`lock`].

pub mod atomic;
pub mod lock;

pub use atomic::{clean_stale_temps, write_all_or_nothing, write_bytes, write_with_path};
pub use lock::RunLock;
