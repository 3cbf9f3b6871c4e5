//! Deletion and insertion curves (Petsiuk et al. 2018): remove (or add) pixels
//! in the order a heatmap ranks them and watch the target probability. A
//! faithful map makes the deletion curve fall fast (low AUC) and the insertion
//! curve rise fast (high AUC).

use serde::Serialize;
use tch::{Kind, Tensor};

use crate::error::Result;
use crate::model::Classifier;

#[derive(Debug, Clone, Serialize)]
pub struct Curve {
    /// Fraction of pixels removed (deletion) or inserted (insertion).
    pub fractions: Vec<f64>,
    /// Target-class probability at each fraction.
    pub probabilities: Vec<f64>,
    /// Trapezoidal area under the curve over [0, 1].
    pub auc: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Faithfulness {
    pub deletion: Curve,
    pub insertion: Curve,
}

pub fn trapezoid(x: &[f64], y: &[f64]) -> f64 {
    x.windows(2)
        .zip(y.windows(2))
        .map(|(x, y)| (x[1] - x[0]) * (y[0] + y[1]) / 2.0)
        .sum()
}

/// `x`, `baseline`: `(1,3,H,W)`; `heatmap`: `(H,W)`. `steps` + 1 points per curve.
pub fn curves(
    model: &Classifier,
    x: &Tensor,
    baseline: &Tensor,
    heatmap: &Tensor,
    target: usize,
    steps: usize,
) -> Result<Faithfulness> {
    let device = model.device();
    let (x, baseline) = (x.to_device(device), baseline.to_device(device));
    let size = heatmap.size();
    let n = size[0] * size[1];
    // rank[p] = position of pixel p in descending heatmap order (ties by index).
    let order = heatmap
        .reshape([-1])
        .to_device(device)
        .argsort_stable(true, 0, true);
    let rank = Tensor::empty([n], (Kind::Int64, device)).scatter(
        0,
        &order,
        &Tensor::arange(n, (Kind::Int64, device)),
    );
    let steps = steps.max(1);
    let fractions: Vec<f64> = (0..=steps).map(|k| k as f64 / steps as f64).collect();
    let probs = |remove: bool| -> Result<Vec<f64>> {
        let mut out = Vec::new();
        for chunk in fractions.chunks(8) {
            let imgs: Vec<Tensor> = chunk
                .iter()
                .map(|f| {
                    let k = (f * n as f64).round() as i64;
                    let top = rank
                        .lt(k)
                        .view([1, 1, size[0], size[1]])
                        .to_kind(Kind::Float);
                    if remove {
                        &x * (1.0 - &top) + &baseline * &top
                    } else {
                        &baseline * (1.0 - &top) + &x * &top
                    }
                })
                .collect();
            let batch = Tensor::cat(&imgs, 0);
            let p = model
                .logits_fp32(&batch)
                .softmax(-1, Kind::Double)
                .select(1, target as i64);
            out.extend(Vec::<f64>::try_from(p.to_device(tch::Device::Cpu))?);
        }
        Ok(out)
    };
    let del = probs(true)?;
    let ins = probs(false)?;
    Ok(Faithfulness {
        deletion: Curve {
            auc: trapezoid(&fractions, &del),
            fractions: fractions.clone(),
            probabilities: del,
        },
        insertion: Curve {
            auc: trapezoid(&fractions, &ins),
            fractions,
            probabilities: ins,
        },
    })
}
