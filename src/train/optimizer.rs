//! AdamW written out over tensors, so its state (moments, step) can be saved
//! in a checkpoint and an interrupted run resumes bit-for-bit.
//!
//! Weight decay is decoupled (Loshchilov & Hutter) and skipped for 1-D tensors
//! (biases, batch-norm scales), the usual practice for fine-tuning.

use tch::{Kind, Tensor};

use crate::error::Result;

pub struct AdamW {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub step: i64,
    params: Vec<(String, Tensor)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
}

impl AdamW {
    /// `params` are the trainable variables by name (sorted for stable state names).
    pub fn new(mut params: Vec<(String, Tensor)>, lr: f64, weight_decay: f64) -> Self {
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let m = params.iter().map(|(_, p)| p.zeros_like()).collect();
        let v = params.iter().map(|(_, p)| p.zeros_like()).collect();
        AdamW {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
            step: 0,
            params,
            m,
            v,
        }
    }

    pub fn zero_grad(&mut self) {
        for (_, p) in &mut self.params {
            p.zero_grad();
        }
    }

    /// Scales gradients so their global L2 norm is at most `max`; returns the norm before.
    pub fn clip_grad_norm(&mut self, max: f64) -> f64 {
        tch::no_grad(|| {
            let grads: Vec<Tensor> = self
                .params
                .iter()
                .map(|(_, p)| p.grad())
                .filter(|g| g.defined())
                .collect();
            if grads.is_empty() {
                return 0.0;
            }
            // One read-back for all tensors (each read is a device sync on CUDA).
            let squares: Vec<Tensor> = grads
                .iter()
                .map(|g| g.pow_tensor_scalar(2).sum(Kind::Double))
                .collect();
            let total = Tensor::stack(&squares, 0)
                .sum(Kind::Double)
                .sqrt()
                .double_value(&[]);
            if total > max && total > 0.0 {
                let scale = max / (total + 1e-6);
                for mut g in grads {
                    let _ = g.f_mul_(&Tensor::from(scale));
                }
            }
            total
        })
    }

    pub fn step(&mut self) {
        self.step += 1;
        let t = self.step as f64;
        let bc1 = 1.0 - self.beta1.powf(t);
        let bc2 = 1.0 - self.beta2.powf(t);
        tch::no_grad(|| {
            for (i, (_, p)) in self.params.iter_mut().enumerate() {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                if self.weight_decay > 0.0 && p.dim() > 1 {
                    let _ = p.f_mul_(&Tensor::from(1.0 - self.lr * self.weight_decay));
                }
                let m = &mut self.m[i];
                let _ = m.f_mul_(&Tensor::from(self.beta1));
                let _ = m.f_add_(&(&g * (1.0 - self.beta1)));
                let v = &mut self.v[i];
                let _ = v.f_mul_(&Tensor::from(self.beta2));
                let _ = v.f_add_(&(&g * &g * (1.0 - self.beta2)));
                let denom = (&*v / bc2).sqrt() + self.eps;
                let update = (&*m / bc1) / denom * self.lr;
                let _ = p.f_sub_(&update);
            }
        });
    }

    /// Moments and step as named tensors for a checkpoint.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![("adamw.step".to_string(), Tensor::from(self.step))];
        for (i, (name, _)) in self.params.iter().enumerate() {
            out.push((
                format!("adamw.m.{name}"),
                self.m[i].to_device(tch::Device::Cpu),
            ));
            out.push((
                format!("adamw.v.{name}"),
                self.v[i].to_device(tch::Device::Cpu),
            ));
        }
        out
    }

    /// Restores [`AdamW::state`]; moments missing from `state` stay at zero.
    pub fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        let find = |n: &str| state.iter().find(|(k, _)| k == n).map(|(_, t)| t);
        if let Some(s) = find("adamw.step") {
            self.step = s.int64_value(&[]);
        }
        tch::no_grad(|| -> Result<()> {
            for (i, (name, p)) in self.params.iter().enumerate() {
                if let Some(m) = find(&format!("adamw.m.{name}")) {
                    self.m[i].f_copy_(&m.to_device(p.device()))?;
                }
                if let Some(v) = find(&format!("adamw.v.{name}")) {
                    self.v[i].f_copy_(&v.to_device(p.device()))?;
                }
            }
            Ok(())
        })
    }
}
