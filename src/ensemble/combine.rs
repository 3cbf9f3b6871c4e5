//! The combine rule of an ensemble (see [`super::manifest::CombineRule`]):
//! the mean of the members' logits. One place, so predict, evaluate, TTA and
//! explanations cannot drift apart.

use tch::Tensor;

/// Mean of member logits, each `(N, classes)`; returns `(N, classes)`.
/// One member is returned as is. `members` is never empty: a [`super::Model`]
/// has at least one network (the manifest refuses an empty member list).
pub fn mean_logits(members: &[Tensor]) -> Tensor {
    match members {
        [one] => one.shallow_clone(),
        _ => Tensor::stack(members, 0).mean_dim(0, false, None),
    }
}

/// The same rule on plain numbers: `members[m][c]` → combined `[c]`.
pub fn mean_logits_f64(members: &[Vec<f64>]) -> Vec<f64> {
    let Some(first) = members.first() else {
        return Vec::new();
    };
    let k = members.len() as f64;
    (0..first.len())
        .map(|c| members.iter().map(|m| m[c]).sum::<f64>() / k)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_and_number_forms_agree() {
        let a = vec![1.0, -2.0];
        let b = vec![3.0, 0.5];
        let got = mean_logits_f64(&[a.clone(), b.clone()]);
        assert_eq!(got, vec![2.0, -0.75]);
        let t = mean_logits(&[
            Tensor::from_slice(&a).view([1, 2]),
            Tensor::from_slice(&b).view([1, 2]),
        ]);
        let t: Vec<f64> = Vec::<f64>::try_from(&t.view([-1])).unwrap();
        assert_eq!(t, got);
    }
}
