//! Data: decoding inputs, scanning the data set, splits and augmentation.

pub mod image;
pub mod npy;
pub mod scan;
