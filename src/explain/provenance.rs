//! What produced an explanation map: the key under which a stored map may be
//! reused. A map is a function of the model's weights, the method, the
//! settings that method reads, and the exact input tensor; a map stored under
//! another key is stale and recomputed. Names (a checkpoint's metadata name,
//! a sample id) are not identity: two checkpoints may share a name, and an
//! image may be replaced under the same file name.

use serde_json::json;
use sha2::{Digest, Sha256};
use tch::{Device, Tensor};

use super::{ExplainConfig, Method};
use crate::error::Result;
use crate::model::Classifier;

fn hex(digest: impl AsRef<[u8]>) -> String {
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Feeds a tensor's kind, shape and bytes (as laid out on the CPU) to `h`.
fn hash_tensor(h: &mut Sha256, t: &Tensor) -> Result<()> {
    let t = t.to_device(Device::Cpu).contiguous();
    let kind = t.f_kind()?;
    h.update(format!("{kind:?}{:?}", t.size()).as_bytes());
    let numel = t.numel();
    let mut bytes = vec![0u8; numel * kind.elt_size_in_bytes()];
    t.f_copy_data_u8(&mut bytes, numel)?;
    h.update(&bytes);
    Ok(())
}

/// SHA-256 of the model's content: every variable (by name, in name order)
/// and the metadata that shapes its input (architecture, input size,
/// normalisation). Hashed from memory rather than taken from the checkpoint
/// manifest, so a model trained or changed in memory is keyed by what it is
/// now, and two checkpoints with one metadata name stay apart.
pub fn model_digest(model: &Classifier) -> Result<String> {
    let mut h = Sha256::new();
    let meta = &model.meta;
    let shape = json!({
        "model": meta.model,
        "input_size": meta.input_size,
        "normalisation": meta.normalisation,
    });
    h.update(shape.to_string().as_bytes());
    let mut vars: Vec<(String, Tensor)> = model.vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, t) in &vars {
        h.update(name.as_bytes());
        hash_tensor(&mut h, t)?;
    }
    Ok(hex(h.finalize()))
}

/// SHA-256 of an input tensor (the preprocessed image the method sees): a
/// changed image, resize or normalisation gives another digest.
pub fn input_digest(x: &Tensor) -> Result<String> {
    let mut h = Sha256::new();
    hash_tensor(&mut h, x)?;
    Ok(hex(h.finalize()))
}

/// The settings `method` reads, as JSON (others do not change its map, so
/// changing IG's steps keeps the GradCAM maps).
pub fn settings(method: Method, cfg: &ExplainConfig) -> serde_json::Value {
    let mut s = json!({ "method": method.key(), "target": cfg.target });
    let extra = match method {
        Method::GradCam | Method::GradCamPlusPlus => json!({ "cam_layer": cfg.cam_layer }),
        Method::IntegratedGradients => json!({
            "steps": cfg.steps,
            "integration": cfg.integration,
            "internal_batch": cfg.internal_batch,
            "baseline": cfg.baseline,
            "seed": cfg.seed,
        }),
        Method::DeepLift => json!({ "baseline": cfg.baseline, "seed": cfg.seed }),
    };
    if let (Some(s), Some(extra)) = (s.as_object_mut(), extra.as_object()) {
        s.extend(extra.clone());
    }
    s
}

/// The key of one map: model digest, method settings and input digest.
pub fn map_key(model: &str, method: Method, cfg: &ExplainConfig, input: &str) -> String {
    let mut h = Sha256::new();
    h.update(model.as_bytes());
    h.update(b"\n");
    h.update(settings(method, cfg).to_string().as_bytes());
    h.update(b"\n");
    h.update(input.as_bytes());
    hex(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_a_method_does_not_read_leave_its_key_alone() {
        let base = ExplainConfig::default();
        let more_steps = ExplainConfig {
            steps: base.steps + 1,
            ..base.clone()
        };
        let other_layer = ExplainConfig {
            cam_layer: "blocks.3".into(),
            ..base.clone()
        };
        let key = |m, c: &ExplainConfig| map_key("m", m, c, "x");
        assert_eq!(
            key(Method::GradCam, &base),
            key(Method::GradCam, &more_steps)
        );
        assert_ne!(
            key(Method::IntegratedGradients, &base),
            key(Method::IntegratedGradients, &more_steps)
        );
        assert_ne!(
            key(Method::GradCam, &base),
            key(Method::GradCam, &other_layer)
        );
        assert_ne!(
            key(Method::GradCam, &base),
            key(Method::GradCamPlusPlus, &base)
        );
        assert_ne!(
            map_key("a", Method::DeepLift, &base, "x"),
            map_key("b", Method::DeepLift, &base, "x")
        );
        assert_ne!(
            map_key("a", Method::DeepLift, &base, "x"),
            map_key("a", Method::DeepLift, &base, "y")
        );
    }

    #[test]
    fn inputs_differing_in_one_value_differ() {
        let a = Tensor::zeros([3, 4, 4], (tch::Kind::Float, Device::Cpu));
        let b = a.copy();
        let _ = b.get(1).get(2).get(3).fill_(1e-6);
        assert_eq!(input_digest(&a).unwrap(), input_digest(&a.copy()).unwrap());
        assert_ne!(input_digest(&a).unwrap(), input_digest(&b).unwrap());
    }
}
