//! The combine rules of an ensemble (see [`super::manifest::CombineRule`]).
//! One place, so predict, evaluate, TTA and explanations cannot drift apart.
//!
//! Both rules return a vector that plays the role of logits: softmax of it
//! (after the temperature) is the ensemble's prediction.
//! - mean of logits: the mean of the members' logit vectors;
//! - mean of probabilities: `ln` of the mean of the members' softmax
//!   probabilities (log-probabilities are valid logits), floored at the
//!   smallest positive float so it stays finite.

use tch::Tensor;

use super::manifest::CombineRule;

/// Combined output `(N, classes)` of member logits, each `(N, classes)`.
/// One member gives its own prediction under either rule (as is, or its
/// log-softmax: the same softmax at any temperature).
/// `members` is never empty: a [`super::Model`] has at least one network.
pub fn combine(rule: CombineRule, members: &[Tensor]) -> Tensor {
    match rule {
        CombineRule::MeanLogits => mean_logits(members),
        CombineRule::MeanProbabilities => log_mean_probabilities(members),
    }
}

/// Mean of member logits, each `(N, classes)`; returns `(N, classes)`.
pub fn mean_logits(members: &[Tensor]) -> Tensor {
    match members {
        [one] => one.shallow_clone(),
        _ => Tensor::stack(members, 0).mean_dim(0, false, None),
    }
}

/// `ln` of the mean of the members' softmax probabilities, `(N, classes)`.
/// Computed as `logsumexp_m(log_softmax(l_m)) − ln k`, stable for large
/// logits and differentiable (explanations take its gradient).
pub fn log_mean_probabilities(members: &[Tensor]) -> Tensor {
    let k = members.len() as f64;
    let logp: Vec<Tensor> = members
        .iter()
        .map(|l| l.log_softmax(-1, l.kind()))
        .collect();
    let floor = f64::from(f32::MIN_POSITIVE).ln();
    (Tensor::stack(&logp, 0).logsumexp([0].as_slice(), false) - k.ln()).clamp_min(floor)
}

/// Mean of logits on plain numbers.
pub fn mean_logits_f64(members: &[Vec<f64>]) -> Vec<f64> {
    let Some(first) = members.first() else {
        return Vec::new();
    };
    let k = members.len() as f64;
    (0..first.len())
        .map(|c| members.iter().map(|m| m[c]).sum::<f64>() / k)
        .collect()
}

/// `ln` of the mean of probabilities on plain numbers.
pub fn log_mean_probabilities_f64(members: &[Vec<f64>]) -> Vec<f64> {
    let Some(first) = members.first() else {
        return Vec::new();
    };
    let k = members.len() as f64;
    let logp: Vec<Vec<f64>> = members.iter().map(|l| log_softmax(l, 1.0)).collect();
    (0..first.len())
        .map(|c| {
            let m = logp.iter().map(|l| l[c]).fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = logp.iter().map(|l| (l[c] - m).exp()).sum();
            (m + s.ln() - k.ln()).max(f64::MIN_POSITIVE.ln())
        })
        .collect()
}

/// Log-softmax of `z / t` on plain numbers (numerically stable).
pub fn log_softmax(z: &[f64], t: f64) -> Vec<f64> {
    let max = z.iter().map(|v| v / t).fold(f64::NEG_INFINITY, f64::max);
    let lse = max + z.iter().map(|v| (v / t - max).exp()).sum::<f64>().ln();
    z.iter().map(|v| v / t - lse).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(rows: &[f64]) -> Tensor {
        Tensor::from_slice(rows).view([1, rows.len() as i64])
    }

    fn v(t: &Tensor) -> Vec<f64> {
        Vec::<f64>::try_from(&t.view([-1])).unwrap()
    }

    #[test]
    fn tensor_and_number_forms_agree() {
        let a = vec![1.0, -2.0];
        let b = vec![3.0, 0.5];
        let got = mean_logits_f64(&[a.clone(), b.clone()]);
        assert_eq!(got, vec![2.0, -0.75]);
        assert_eq!(v(&mean_logits(&[t(&a), t(&b)])), got);
        let got = log_mean_probabilities_f64(&[a.clone(), b.clone()]);
        let tensor = v(&log_mean_probabilities(&[t(&a), t(&b)]));
        for (x, y) in got.iter().zip(&tensor) {
            assert!((x - y).abs() < 1e-12, "{got:?} vs {tensor:?}");
        }
    }

    #[test]
    fn mean_of_probabilities_is_what_it_says() {
        let a = [2.0, -1.0];
        let b = [-3.0, 4.0];
        let p = |z: &[f64]| {
            let e: Vec<f64> = z.iter().map(|v| v.exp()).collect();
            let s: f64 = e.iter().sum();
            e.into_iter().map(|x| x / s).collect::<Vec<_>>()
        };
        let (pa, pb) = (p(&a), p(&b));
        let got = log_mean_probabilities_f64(&[a.to_vec(), b.to_vec()]);
        for c in 0..2 {
            let want = ((pa[c] + pb[c]) / 2.0).ln();
            assert!((got[c] - want).abs() < 1e-12);
        }
        // The combined probabilities sum to one: softmax leaves them as they are.
        let total: f64 = got.iter().map(|v| v.exp()).sum();
        assert!((total - 1.0).abs() < 1e-12);
        // One confident member does not outvote the others as it does under
        // the mean of logits: here the logit mean says class 0, the
        // probability mean class 1.
        let loud = [[30.0, 0.0], [0.0, 2.0], [0.0, 2.0]].map(|r| r.to_vec());
        let ml = mean_logits_f64(&loud);
        let mp = log_mean_probabilities_f64(&loud);
        assert!(ml[0] > ml[1] && mp[1] > mp[0], "{ml:?} {mp:?}");
    }

    #[test]
    fn one_member_predicts_as_itself_under_either_rule() {
        let a = vec![0.7, -1.3];
        let l = log_mean_probabilities_f64(std::slice::from_ref(&a));
        // log-softmax: same differences, so the same softmax at any temperature.
        assert!(((l[0] - l[1]) - (a[0] - a[1])).abs() < 1e-12);
        assert_eq!(mean_logits_f64(std::slice::from_ref(&a)), a);
    }

    #[test]
    fn extreme_logits_stay_finite() {
        let l = log_mean_probabilities_f64(&[vec![1000.0, -1000.0], vec![900.0, -900.0]]);
        assert!(l.iter().all(|v| v.is_finite()), "{l:?}");
        let tl = v(&log_mean_probabilities(&[
            t(&[1000.0, -1000.0]),
            t(&[900.0, -900.0]),
        ]));
        assert!(tl.iter().all(|v| v.is_finite()), "{tl:?}");
    }
}
