//! Link-time set-up for libtorch.
//!
//! 1. An rpath to libtorch's `lib/`, so the binary, tests and benches run in a
//!    new shell without LD_LIBRARY_PATH.
//! 2. When that libtorch has CUDA (`libtorch_cuda.so`), link it for real:
//!    rustc passes `--as-needed` and nothing in our code references a
//!    `torch_cuda` symbol (CUDA kernels register themselves from static
//!    initialisers), so the linker would drop it and `--device cuda` could
//!    never work (tch-rs issue 980).
//! 3. The libtorch version and its CUDA runtime, for `melxai doctor`.
//! 4. `src/model/autocast.cpp`: libtorch's per-device autocast switches
//!    (bf16 / fp16 mixed precision), which tch does not expose.
//!
//! The libtorch folder is `LIBTORCH` (set by `.cargo/config.toml` after
//! `make setup`), else the one torch-sys found (`DEP_TCH_LIBTORCH_LIB`, e.g.
//! with `LIBTORCH_USE_PYTORCH=1`).
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=src/model/autocast.cpp");
    cc::Build::new()
        .cpp(true)
        .flag_if_supported("-std=c++17")
        .warnings(false)
        .file("src/model/autocast.cpp")
        .compile("melxai_autocast");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let lib = std::env::var("LIBTORCH")
        .ok()
        .map(|dir| {
            let dir = PathBuf::from(dir);
            // Resolve the `.venv/libtorch` link so the rpath survives a moved link.
            dir.canonicalize().unwrap_or(dir).join("lib")
        })
        .or_else(|| {
            std::env::var("DEP_TCH_LIBTORCH_LIB")
                .ok()
                .map(PathBuf::from)
        });
    let Some(lib) = lib else {
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-L{}", lib.display());
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
        println!("cargo:rustc-env=MELXAI_LIBTORCH_CUDA_LINKED=1");
    }
    let (version, cuda) = libtorch_version(lib.parent().unwrap_or(&lib));
    println!("cargo:rustc-env=MELXAI_LIBTORCH_VERSION={version}");
    println!("cargo:rustc-env=MELXAI_LIBTORCH_CUDA={cuda}");
}

/// (`2.13.0+cu130`, `13.0`) from the wheel's `version.py` or a standalone
/// libtorch's `build-version`; "unknown" / "" when neither says.
fn libtorch_version(torch_dir: &Path) -> (String, String) {
    let py = torch_dir.join("version.py");
    println!("cargo:rerun-if-changed={}", py.display());
    if let Ok(text) = std::fs::read_to_string(&py) {
        let field = |key: &str| {
            text.lines()
                .find(|l| l.trim_start().starts_with(key))
                .and_then(|l| l.split('\'').nth(1))
                .map(str::to_string)
        };
        return (
            field("__version__").unwrap_or_else(|| "unknown".into()),
            field("cuda:").unwrap_or_default(),
        );
    }
    let version = std::fs::read_to_string(torch_dir.join("build-version"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    // Standalone builds name the runtime in the version: 2.13.0+cu130.
    let cuda = version
        .split_once("+cu")
        .map(|(_, c)| match c.len() {
            3 => format!("{}.{}", &c[..2], &c[2..]),
            _ => c.to_string(),
        })
        .unwrap_or_default();
    (version, cuda)
}
