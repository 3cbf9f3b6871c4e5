//! GradCAM (Selvaraju et al. 2017) and GradCAM++ (Chattopadhay et al. 2018) on
//! any captured layer, following pytorch-grad-cam's definitions: channel
//! weights from the target logit's gradients, weighted sum of the activations,
//! ReLU, bilinear upsampling to the input size, min-max to [0, 1].

use tch::{Kind, Tensor};

use super::{Explanation, Method};
use crate::error::{Error, Result};
use crate::model::efficientnet::{Capture, ForwardMode};
use crate::model::Classifier;

/// `x` is `(1,3,H,W)` on the model's device.
pub fn explain(
    model: &Classifier,
    x: &Tensor,
    target: usize,
    layer: &str,
    plus_plus: bool,
) -> Result<Explanation> {
    let x = x.detach().set_requires_grad(true);
    let mut capture = Capture::new(layer);
    let logits = model
        .net
        .forward_with(&x, false, ForwardMode::Standard, Some(&mut capture));
    let activation = capture.activation.ok_or_else(|| {
        Error::Config(format!(
            "GradCAM layer '{layer}' not found; valid layers: {}",
            model.net.layer_names().join(", ")
        ))
    })?;
    let score = logits.get(0).get(target as i64);
    let output = score.double_value(&[]);
    let grads = Tensor::f_run_backward(&[&score], &[&activation], false, false)?;
    let (a, g) = (activation.detach(), grads[0].detach());
    let weights = if plus_plus {
        let g2 = g.pow_tensor_scalar(2);
        let g3 = &g2 * &g;
        let sum_a = a.sum_dim_intlist([2, 3].as_slice(), true, Kind::Float);
        let aij = &g2 / (&g2 * 2.0 + sum_a * g3 + 1e-7);
        let aij = aij.where_self(&g.ne(0.0), &aij.zeros_like());
        (g.relu() * aij).sum_dim_intlist([2, 3].as_slice(), true, Kind::Float)
    } else {
        g.mean_dim([2, 3].as_slice(), true, Kind::Float)
    };
    let cam = (weights * &a)
        .sum_dim_intlist([1].as_slice(), true, Kind::Float)
        .relu();
    let size = x.size();
    let up = cam
        .upsample_bilinear2d([size[2], size[3]], false, None, None)
        .squeeze_dim(0);
    let heatmap = super::heatmap::min_max(&up.squeeze_dim(0));
    Ok(Explanation {
        method: if plus_plus {
            Method::GradCamPlusPlus
        } else {
            Method::GradCam
        },
        target,
        output,
        attribution: up.to_device(tch::Device::Cpu),
        heatmap: heatmap.to_device(tch::Device::Cpu),
        delta: None,
        baseline_output: None,
        seconds: 0.0,
    })
}
