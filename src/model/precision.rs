//! Mixed precision: fp32 everywhere by default; `bf16` or `fp16` runs the
//! forward passes of training and inference under libtorch's autocast
//! (convolutions and matrix products in half width, reductions and the loss
//! in fp32, weights and optimiser state kept in fp32). Explanations always
//! run in fp32: attributions are differences of small gradients.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tch::Device;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    Fp32,
    Bf16,
    Fp16,
}

impl FromStr for Precision {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fp32" | "float32" => Ok(Precision::Fp32),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            "fp16" | "float16" | "half" => Ok(Precision::Fp16),
            other => Err(Error::Config(format!(
                "precision: unknown value '{other}' (expected fp32, bf16 or fp16)"
            ))),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
            Precision::Fp16 => "fp16",
        })
    }
}

extern "C" {
    fn melxai_autocast_enter(device: i8, dtype: i8, was_enabled: *mut bool) -> i32;
    fn melxai_autocast_exit(device: i8, was_enabled: bool) -> i32;
}

/// c10 enum values (see autocast.cpp).
const CPU: i8 = 0;
const CUDA: i8 = 1;
const HALF: i8 = 5;
const BFLOAT16: i8 = 15;

impl Precision {
    /// Runs `f` under autocast for `device` at this precision (plain call for fp32).
    pub fn run<T>(self, device: Device, f: impl FnOnce() -> T) -> T {
        let dtype = match self {
            Precision::Fp32 => return f(),
            Precision::Bf16 => BFLOAT16,
            Precision::Fp16 => HALF,
        };
        let dev = match device {
            Device::Cuda(_) => CUDA,
            _ => CPU,
        };
        let mut was = false;
        // SAFETY: plain C calls into libtorch's thread-local autocast state.
        if unsafe { melxai_autocast_enter(dev, dtype, &mut was) } != 0 {
            return f();
        }
        struct Exit(i8, bool);
        impl Drop for Exit {
            fn drop(&mut self) {
                // SAFETY: as above; restores what enter saved, even on unwind.
                unsafe {
                    melxai_autocast_exit(self.0, self.1);
                }
            }
        }
        let _exit = Exit(dev, was);
        f()
    }

    /// fp16 gradients underflow without loss scaling; bf16 has fp32's range.
    pub fn needs_loss_scaling(self) -> bool {
        self == Precision::Fp16
    }
}

/// Dynamic loss scaling for fp16 training, as torch.cuda.amp.GradScaler:
/// start at 2^16, halve and skip the step on an overflow, double after 2000
/// clean steps.
#[derive(Debug, Clone)]
pub struct LossScaler {
    pub scale: f64,
    clean_steps: usize,
}

impl Default for LossScaler {
    fn default() -> Self {
        LossScaler {
            scale: 65536.0,
            clean_steps: 0,
        }
    }
}

impl LossScaler {
    const GROWTH_INTERVAL: usize = 2000;

    /// Records whether this step's unscaled gradients were finite.
    pub fn update(&mut self, finite: bool) {
        if finite {
            self.clean_steps += 1;
            if self.clean_steps >= Self::GROWTH_INTERVAL {
                self.scale *= 2.0;
                self.clean_steps = 0;
            }
        } else {
            self.scale = (self.scale / 2.0).max(1.0);
            self.clean_steps = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    #[test]
    fn parses_and_names_bad_values() {
        assert_eq!("BF16".parse::<Precision>().unwrap(), Precision::Bf16);
        assert_eq!("fp16".parse::<Precision>().unwrap(), Precision::Fp16);
        let e = "fp8".parse::<Precision>().unwrap_err().to_string();
        assert!(e.contains("expected fp32, bf16 or fp16"), "{e}");
    }

    #[test]
    fn bf16_autocast_runs_matmul_in_bf16_and_restores_state() {
        let a = Tensor::randn([8, 8], (Kind::Float, Device::Cpu));
        let inside = Precision::Bf16.run(Device::Cpu, || a.matmul(&a));
        assert_eq!(inside.kind(), Kind::BFloat16);
        let after = a.matmul(&a);
        assert_eq!(after.kind(), Kind::Float, "autocast left on");
        let close = (inside.to_kind(Kind::Float) - &after)
            .abs()
            .max()
            .double_value(&[]);
        let scale = after.abs().max().double_value(&[]);
        assert!(close <= 0.02 * scale, "{close} vs {scale}");
        assert_eq!(
            Precision::Fp32.run(Device::Cpu, || a.matmul(&a)).kind(),
            Kind::Float
        );
    }

    #[test]
    fn scaler_backs_off_on_overflow_and_grows_when_clean() {
        let mut s = LossScaler::default();
        s.update(false);
        assert_eq!(s.scale, 32768.0);
        for _ in 0..LossScaler::GROWTH_INTERVAL {
            s.update(true);
        }
        assert_eq!(s.scale, 65536.0);
    }
}
