//! Data: decoding inputs, scanning the data set, splits, caching, augmentation.

pub mod augment;
pub mod cache;
pub mod ids;
pub mod image;
pub mod jpeg;
pub mod npy;
pub mod scan;
pub mod split;
