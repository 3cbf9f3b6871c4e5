//! Heap tuning for libtorch's CPU tensors.
//!
//! glibc serves every allocation above its mmap threshold (at most 32 MB)
//! with a fresh `mmap`, and returns it with `munmap` on free. A batch-16
//! EfficientNet pass allocates and frees dozens of such activations (one
//! 96x112x112 map is 77 MB), so each one is faulted in page by page again:
//! about a million minor faults per second, half of the forward time.
//! Keeping large blocks on the heap and never trimming it lets freed
//! activations be reused at once. Measured here (Lite0, 16 images at 224 px,
//! 2 threads): forward 390 -> 200 ms, minor faults 1.1 M -> 0.13 M, peak RSS
//! unchanged within noise. Only glibc has these knobs; elsewhere it is a no-op.

/// Call once, first thing in `main`, before tensors are allocated.
/// `MELXAI_SYSTEM_MALLOC=1` keeps the C library's defaults (for comparisons).
pub fn tune_for_tensors() {
    if std::env::var_os("MELXAI_SYSTEM_MALLOC").is_some() {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before other threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}
