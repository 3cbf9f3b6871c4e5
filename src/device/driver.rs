//! What the CUDA stack on this machine says about itself, read straight from
//! the shared libraries (`dlopen`), so `doctor` can name what is missing even
//! when libtorch only answers "CUDA not available".

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};

/// One GPU as the driver reports it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Gpu {
    pub index: usize,
    pub name: String,
    pub memory_bytes: u64,
}

/// The driver's view: its CUDA version and devices.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Driver {
    /// Highest CUDA version the driver supports, e.g. (12, 8).
    pub cuda_version: (u32, u32),
    pub gpus: Vec<Gpu>,
}

/// A library opened with `dlopen`; closed on drop.
struct Library(*mut c_void);

impl Library {
    /// `no_load`: only find a library the process has already loaded.
    fn open(name: &str, no_load: bool) -> Option<Library> {
        let c = CString::new(name).ok()?;
        let flags =
            libc::RTLD_LAZY | libc::RTLD_LOCAL | if no_load { libc::RTLD_NOLOAD } else { 0 };
        // SAFETY: a valid C string; dlopen has no other preconditions.
        let handle = unsafe { libc::dlopen(c.as_ptr(), flags) };
        if handle.is_null() {
            None
        } else {
            Some(Library(handle))
        }
    }

    /// The symbol `name` as a function pointer of type `F`.
    ///
    /// # Safety
    /// `F` must be the symbol's real C signature.
    unsafe fn symbol<F: Copy>(&self, name: &str) -> Option<F> {
        let c = CString::new(name).ok()?;
        let ptr = libc::dlsym(self.0, c.as_ptr());
        if ptr.is_null() {
            return None;
        }
        debug_assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<*mut c_void>());
        Some(std::mem::transmute_copy::<*mut c_void, F>(&ptr))
    }
}

impl Drop for Library {
    fn drop(&mut self) {
        // SAFETY: the handle came from dlopen and is closed once.
        unsafe {
            libc::dlclose(self.0);
        }
    }
}

type CuInit = unsafe extern "C" fn(c_uint) -> c_int;
type CuIntOut = unsafe extern "C" fn(*mut c_int) -> c_int;
type CuDeviceGet = unsafe extern "C" fn(*mut c_int, c_int) -> c_int;
type CuDeviceGetName = unsafe extern "C" fn(*mut c_char, c_int, c_int) -> c_int;
type CuDeviceTotalMem = unsafe extern "C" fn(*mut usize, c_int) -> c_int;
type CuGetErrorString = unsafe extern "C" fn(c_int, *mut *const c_char) -> c_int;

/// Asks the NVIDIA driver (`libcuda.so.1`) for its version and GPUs.
/// `Err` says why there is no usable driver, in words a user can act on.
pub fn probe_driver() -> Result<Driver, String> {
    let lib = Library::open("libcuda.so.1", false)
        .ok_or("no NVIDIA driver: libcuda.so.1 cannot be loaded (is the driver installed, and visible inside this container?)")?;
    // SAFETY: the signatures are those of the CUDA driver API (cuda.h).
    unsafe {
        let init: CuInit = lib.symbol("cuInit").ok_or("libcuda.so.1 has no cuInit")?;
        let version: CuIntOut = lib
            .symbol("cuDriverGetVersion")
            .ok_or("libcuda.so.1 has no cuDriverGetVersion")?;
        let count: CuIntOut = lib
            .symbol("cuDeviceGetCount")
            .ok_or("libcuda.so.1 has no cuDeviceGetCount")?;
        let get: CuDeviceGet = lib
            .symbol("cuDeviceGet")
            .ok_or("libcuda.so.1 has no cuDeviceGet")?;
        let name: CuDeviceGetName = lib
            .symbol("cuDeviceGetName")
            .ok_or("libcuda.so.1 has no cuDeviceGetName")?;
        let mem: Option<CuDeviceTotalMem> = lib.symbol("cuDeviceTotalMem_v2");
        let describe = |code: c_int| -> String {
            let mut msg: *const c_char = std::ptr::null();
            match lib.symbol::<CuGetErrorString>("cuGetErrorString") {
                Some(f) if f(code, &mut msg) == 0 && !msg.is_null() => {
                    format!(
                        "{} (CUresult {code})",
                        CStr::from_ptr(msg).to_string_lossy()
                    )
                }
                _ => format!("CUresult {code}"),
            }
        };
        let mut v: c_int = 0;
        let rc = version(&mut v);
        if rc != 0 {
            return Err(format!("cuDriverGetVersion failed: {}", describe(rc)));
        }
        let cuda_version = (v as u32 / 1000, (v as u32 % 1000) / 10);
        let rc = init(0);
        if rc != 0 {
            return Err(format!(
                "the NVIDIA driver (CUDA {}.{}) did not initialise: {}",
                cuda_version.0,
                cuda_version.1,
                describe(rc)
            ));
        }
        let mut n: c_int = 0;
        let rc = count(&mut n);
        if rc != 0 {
            return Err(format!("cuDeviceGetCount failed: {}", describe(rc)));
        }
        let mut gpus = Vec::new();
        for index in 0..n.max(0) {
            let mut dev: c_int = 0;
            if get(&mut dev, index) != 0 {
                continue;
            }
            let mut buf = [0 as c_char; 256];
            let gpu_name = if name(buf.as_mut_ptr(), buf.len() as c_int, dev) == 0 {
                CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned()
            } else {
                "unknown".into()
            };
            let mut bytes: usize = 0;
            let memory_bytes = match mem {
                Some(f) if f(&mut bytes, dev) == 0 => bytes as u64,
                _ => 0,
            };
            gpus.push(Gpu {
                index: index as usize,
                name: gpu_name,
                memory_bytes,
            });
        }
        Ok(Driver { cuda_version, gpus })
    }
}

/// cuDNN version of the cuDNN libtorch loaded, e.g. "9.10.2"; `None` without one.
pub fn cudnn_version() -> Option<String> {
    let lib = ["libcudnn.so.9", "libcudnn.so.8", "libcudnn.so"]
        .iter()
        .find_map(|n| Library::open(n, true))?;
    // SAFETY: `size_t cudnnGetVersion(void)` (cudnn.h).
    let v = unsafe { lib.symbol::<unsafe extern "C" fn() -> usize>("cudnnGetVersion")?() };
    Some(if v >= 90000 {
        format!("{}.{}.{}", v / 10000, (v % 10000) / 100, v % 100)
    } else {
        format!("{}.{}.{}", v / 1000, (v % 1000) / 100, v % 100)
    })
}

/// CUDA runtime version of the loaded `libcudart`, e.g. (13, 0).
pub fn runtime_version(major_hint: Option<u32>) -> Option<(u32, u32)> {
    let names: Vec<String> = major_hint
        .map(|m| vec![format!("libcudart.so.{m}")])
        .unwrap_or_default()
        .into_iter()
        .chain(["libcudart.so".to_string()])
        .collect();
    let lib = names.iter().find_map(|n| Library::open(n, true))?;
    let mut v: c_int = 0;
    // SAFETY: `cudaError_t cudaRuntimeGetVersion(int*)` (cuda_runtime_api.h).
    let rc = unsafe { lib.symbol::<CuIntOut>("cudaRuntimeGetVersion")?(&mut v) };
    (rc == 0).then_some((v as u32 / 1000, (v as u32 % 1000) / 10))
}
