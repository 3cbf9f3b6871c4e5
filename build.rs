//! Embeds an rpath to libtorch's `lib/` so the binary, tests and benches run in a
//! new shell without LD_LIBRARY_PATH. LIBTORCH comes from `.cargo/config.toml`.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Ok(libtorch) = std::env::var("LIBTORCH") {
        let dir = PathBuf::from(libtorch);
        // Resolve the `.venv/libtorch` link so the rpath survives a moved link.
        let dir = dir.canonicalize().unwrap_or(dir);
        let lib = dir.join("lib");
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    }
}
