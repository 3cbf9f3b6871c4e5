//! Agreement of explanations: method × method matrices within one model, and
//! method-by-method agreement between models, per image and aggregated over a
//! split (mean, standard deviation, bootstrap 95 % interval), broken down by
//! true class and by correct/incorrect prediction.

use std::collections::BTreeMap;

use serde::Serialize;

use super::similarity::{compare_maps, CompareOptions, Map, Metric, SimilarityReport};
use crate::explain::Method;
use crate::metrics::{bootstrap_mean_ci, mean_std, BootstrapOptions};

// Explained samples are made by `explain`; agreement only reads them.
pub use crate::explain::split::{ExplainedSample, Heatmap};

/// Mean, spread and bootstrap interval of one number over images.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub mean: f64,
    pub std: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub n: usize,
}

pub fn summarise(values: &[f64], seed: u64) -> Summary {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let ms = mean_std(&finite);
    let ci = bootstrap_mean_ci(&finite, &BootstrapOptions::new(1000, seed)).ok();
    Summary {
        mean: ms.mean,
        std: ms.std,
        ci_low: ci.as_ref().map_or(f64::NAN, |c| c.low),
        ci_high: ci.as_ref().map_or(f64::NAN, |c| c.high),
        n: finite.len(),
    }
}

fn pair(a: &Heatmap, b: &Heatmap, opts: &CompareOptions) -> Option<SimilarityReport> {
    // Models with different input sizes (Lite0 224 px vs Lite1 240 px) give
    // maps of different shapes: `b` is resampled onto `a`'s grid first.
    let resized;
    let b = if (a.height, a.width) == (b.height, b.width) {
        b
    } else {
        resized = resize_bilinear(b, a.height, a.width);
        &resized
    };
    let ma = Map::new(&a.values, a.height, a.width).ok()?;
    let mb = Map::new(&b.values, b.height, b.width).ok()?;
    compare_maps(ma, mb, opts).ok()
}

/// Bilinear resampling with half-pixel centres (as `align_corners=False`).
pub fn resize_bilinear(m: &Heatmap, height: usize, width: usize) -> Heatmap {
    let sample = |src: usize, dst: usize, i: usize| -> (usize, usize, f32) {
        let x = ((i as f64 + 0.5) * src as f64 / dst as f64 - 0.5).clamp(0.0, (src - 1) as f64);
        let lo = x.floor() as usize;
        (lo, (lo + 1).min(src - 1), (x - lo as f64) as f32)
    };
    let mut values = Vec::with_capacity(height * width);
    for i in 0..height {
        let (y0, y1, fy) = sample(m.height, height, i);
        for j in 0..width {
            let (x0, x1, fx) = sample(m.width, width, j);
            let at = |y: usize, x: usize| m.values[y * m.width + x];
            let top = at(y0, x0) * (1.0 - fx) + at(y0, x1) * fx;
            let bottom = at(y1, x0) * (1.0 - fx) + at(y1, x1) * fx;
            values.push(top * (1.0 - fy) + bottom * fy);
        }
    }
    Heatmap {
        values,
        height,
        width,
    }
}

/// Per-image method × method matrices, one per metric.
#[derive(Debug, Clone, Serialize)]
pub struct SampleMatrices {
    pub id: String,
    pub label: usize,
    pub correct: bool,
    /// metric -> matrix[i][j] for methods i, j.
    pub matrices: BTreeMap<String, Vec<Vec<f64>>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WithinModel {
    pub methods: Vec<Method>,
    pub per_sample: Vec<SampleMatrices>,
    /// metric -> matrix of summaries over all images.
    pub overall: BTreeMap<String, Vec<Vec<Summary>>>,
    /// group ("class=<c>", "correct", "incorrect") -> metric -> matrix of means.
    pub by_group: BTreeMap<String, BTreeMap<String, Vec<Vec<f64>>>>,
}

/// Method × method agreement within one model.
pub fn within_model(
    samples: &[ExplainedSample],
    methods: &[Method],
    class_names: &[String],
    opts: &CompareOptions,
) -> WithinModel {
    let k = methods.len();
    let mut per_sample = Vec::new();
    for s in samples {
        let mut matrices: BTreeMap<String, Vec<Vec<f64>>> = Metric::ALL
            .iter()
            .map(|m| (m.name().to_string(), vec![vec![f64::NAN; k]; k]))
            .collect();
        for i in 0..k {
            for j in i..k {
                let (Some(a), Some(b)) = (s.maps.get(&methods[i]), s.maps.get(&methods[j])) else {
                    continue;
                };
                let Some(r) = pair(a, b, opts) else { continue };
                for m in Metric::ALL {
                    let v = m.of(&r);
                    if let Some(mat) = matrices.get_mut(m.name()) {
                        mat[i][j] = v;
                        mat[j][i] = v;
                    }
                }
            }
        }
        per_sample.push(SampleMatrices {
            id: s.id.clone(),
            label: s.label,
            correct: s.label == s.predicted,
            matrices,
        });
    }
    let cell_values = |rows: &[&SampleMatrices], m: Metric, i: usize, j: usize| -> Vec<f64> {
        rows.iter().map(|r| r.matrices[m.name()][i][j]).collect()
    };
    let all: Vec<&SampleMatrices> = per_sample.iter().collect();
    let overall = Metric::ALL
        .into_iter()
        .map(|m| {
            let mat = (0..k)
                .map(|i| {
                    (0..k)
                        .map(|j| summarise(&cell_values(&all, m, i, j), 42))
                        .collect()
                })
                .collect();
            (m.name().to_string(), mat)
        })
        .collect();
    let mut groups: Vec<(String, Vec<&SampleMatrices>)> = class_names
        .iter()
        .enumerate()
        .map(|(c, name)| {
            (
                format!("class={name}"),
                per_sample.iter().filter(|s| s.label == c).collect(),
            )
        })
        .collect();
    groups.push((
        "correct".into(),
        per_sample.iter().filter(|s| s.correct).collect(),
    ));
    groups.push((
        "incorrect".into(),
        per_sample.iter().filter(|s| !s.correct).collect(),
    ));
    let by_group = groups
        .into_iter()
        .map(|(g, rows)| {
            let mats = Metric::ALL
                .into_iter()
                .map(|m| {
                    let mat = (0..k)
                        .map(|i| {
                            (0..k)
                                .map(|j| mean_std(&cell_values(&rows, m, i, j)).mean)
                                .collect()
                        })
                        .collect();
                    (m.name().to_string(), mat)
                })
                .collect();
            (g, mats)
        })
        .collect();
    WithinModel {
        methods: methods.to_vec(),
        per_sample,
        overall,
        by_group,
    }
}

/// One image's agreement between two models for one method.
#[derive(Debug, Clone, Serialize)]
pub struct CrossSample {
    pub id: String,
    pub method: Method,
    pub metrics: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CrossModel {
    pub model_a: String,
    pub model_b: String,
    pub per_sample: Vec<CrossSample>,
    /// method -> metric -> summary over images.
    pub per_method: BTreeMap<Method, BTreeMap<String, Summary>>,
    /// Fraction of images where both models predict the same class.
    pub prediction_agreement: f64,
    /// Mean |p_a − p_b| of the calibrated positive-class probability.
    pub mean_abs_probability_difference: f64,
    pub images: usize,
}

/// Agreement between two models' explanations of the same images (matched by id).
pub fn cross_model(
    a_name: &str,
    a: &[ExplainedSample],
    b_name: &str,
    b: &[ExplainedSample],
    methods: &[Method],
    opts: &CompareOptions,
) -> CrossModel {
    let mut per_sample = Vec::new();
    let (mut same, mut diff, mut n) = (0usize, 0.0, 0usize);
    for sa in a {
        let Some(sb) = b.iter().find(|s| s.id == sa.id) else {
            continue;
        };
        n += 1;
        same += usize::from(sa.predicted == sb.predicted);
        diff += (sa.probability - sb.probability).abs();
        for m in methods {
            let (Some(ma), Some(mb)) = (sa.maps.get(m), sb.maps.get(m)) else {
                continue;
            };
            let Some(r) = pair(ma, mb, opts) else {
                continue;
            };
            per_sample.push(CrossSample {
                id: sa.id.clone(),
                method: *m,
                metrics: Metric::ALL
                    .iter()
                    .map(|k| (k.name().to_string(), k.of(&r)))
                    .collect(),
            });
        }
    }
    let per_method = methods
        .iter()
        .map(|m| {
            let rows: Vec<&CrossSample> = per_sample.iter().filter(|c| c.method == *m).collect();
            let sums = Metric::ALL
                .iter()
                .map(|k| {
                    let values: Vec<f64> = rows.iter().map(|r| r.metrics[k.name()]).collect();
                    (k.name().to_string(), summarise(&values, 7))
                })
                .collect();
            (*m, sums)
        })
        .collect();
    CrossModel {
        model_a: a_name.into(),
        model_b: b_name.into(),
        per_sample,
        per_method,
        prediction_agreement: if n > 0 {
            same as f64 / n as f64
        } else {
            f64::NAN
        },
        mean_abs_probability_difference: if n > 0 { diff / n as f64 } else { f64::NAN },
        images: n,
    }
}

/// How far an ensemble's members' explanations agree over a split.
#[derive(Debug, Clone, Serialize)]
pub struct MembersAgreement {
    pub members: usize,
    /// method -> metric -> summary over images of the per-image mean over
    /// member pairs.
    pub per_method: BTreeMap<Method, BTreeMap<String, Summary>>,
}

/// The members' agreement of `samples` (`None` when no image carries one:
/// a single checkpoint).
pub fn members_agreement(
    samples: &[ExplainedSample],
    methods: &[Method],
) -> Option<MembersAgreement> {
    let members = samples
        .iter()
        .flat_map(|s| s.members.values())
        .map(|a| a.members)
        .max()?;
    let per_method = methods
        .iter()
        .map(|m| {
            let of_method: Vec<_> = samples.iter().filter_map(|s| s.members.get(m)).collect();
            let sums = Metric::ALL
                .iter()
                .map(|k| {
                    let values: Vec<f64> = of_method.iter().map(|a| a.get(*k)).collect();
                    (k.name().to_string(), summarise(&values, 7))
                })
                .collect();
            (*m, sums)
        })
        .collect();
    Some(MembersAgreement {
        members,
        per_method,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(f: impl Fn(usize, usize) -> f32) -> Heatmap {
        let (h, w) = (16, 16);
        Heatmap {
            values: (0..h * w).map(|p| f(p / w, p % w)).collect(),
            height: h,
            width: w,
        }
    }

    fn sample(id: &str, label: usize, predicted: usize, flip: bool) -> ExplainedSample {
        let mut maps = BTreeMap::new();
        maps.insert(Method::GradCam, map(|i, j| (i + j) as f32 / 30.0));
        maps.insert(
            Method::IntegratedGradients,
            map(|i, j| {
                if flip {
                    (30 - i - j) as f32 / 30.0
                } else {
                    (i + j) as f32 / 30.0
                }
            }),
        );
        ExplainedSample {
            id: id.into(),
            label,
            predicted,
            probability: 0.7,
            deltas: BTreeMap::new(),
            maps,
            members: BTreeMap::new(),
        }
    }

    #[test]
    fn within_model_matrices_are_symmetric_with_unit_diagonal() {
        let methods = vec![Method::GradCam, Method::IntegratedGradients];
        let samples = vec![sample("a", 0, 0, false), sample("b", 1, 0, true)];
        let w = within_model(
            &samples,
            &methods,
            &["mel".into(), "nae".into()],
            &CompareOptions::default(),
        );
        let p = &w.per_sample[0].matrices["pearson"];
        assert!((p[0][0] - 1.0).abs() < 1e-9 && (p[0][1] - 1.0).abs() < 1e-9);
        let p = &w.per_sample[1].matrices["pearson"];
        assert!((p[0][1] + 1.0).abs() < 1e-9 && p[0][1] == p[1][0]);
        let overall = &w.overall["pearson"][0][1];
        assert!(overall.mean.abs() < 1e-9 && overall.n == 2);
        assert!((w.by_group["correct"]["pearson"][0][1] - 1.0).abs() < 1e-9);
        assert!((w.by_group["incorrect"]["pearson"][0][1] + 1.0).abs() < 1e-9);
    }

    #[test]
    fn maps_of_different_sizes_are_resampled_before_comparison() {
        let small = map(|i, j| (i + j) as f32 / 30.0);
        let big = resize_bilinear(&small, 20, 24);
        assert_eq!((big.height, big.width, big.values.len()), (20, 24, 480));
        let r = pair(&small, &big, &CompareOptions::default()).expect("compared");
        assert!(r.pearson > 0.99, "{}", r.pearson);
        // Identity resampling keeps values.
        assert_eq!(resize_bilinear(&small, 16, 16).values, small.values);
    }

    #[test]
    fn cross_model_matches_by_id_and_counts_prediction_agreement() {
        let methods = vec![Method::GradCam, Method::IntegratedGradients];
        let a = vec![sample("a", 0, 0, false), sample("b", 1, 1, false)];
        let b = vec![
            sample("b", 1, 0, true),
            sample("a", 0, 0, false),
            sample("zz", 0, 0, false),
        ];
        let c = cross_model("A", &a, "B", &b, &methods, &CompareOptions::default());
        assert_eq!(c.images, 2);
        assert!((c.prediction_agreement - 0.5).abs() < 1e-12);
        assert!((c.per_method[&Method::GradCam]["pearson"].mean - 1.0).abs() < 1e-9);
        assert!(
            c.per_method[&Method::IntegratedGradients]["pearson"]
                .mean
                .abs()
                < 1e-9
        );
    }

    #[test]
    fn members_agreement_summarises_per_method_and_skips_single_models() {
        use crate::explain::split::MemberAgreement;
        let methods = vec![Method::GradCam, Method::IntegratedGradients];
        let mut samples = vec![sample("a", 0, 0, false), sample("b", 1, 1, false)];
        assert!(members_agreement(&samples, &methods).is_none());
        for (s, ssim) in samples.iter_mut().zip([0.2, 0.6]) {
            let a = MemberAgreement {
                members: 5,
                pairs: 10,
                metrics: [("ssim".to_string(), ssim)].into_iter().collect(),
            };
            s.members.insert(Method::GradCam, a);
        }
        let m = members_agreement(&samples, &methods).unwrap();
        assert_eq!(m.members, 5);
        let ssim = &m.per_method[&Method::GradCam]["ssim"];
        assert!((ssim.mean - 0.4).abs() < 1e-12 && ssim.n == 2);
        // A metric no pair defined, and a method without member maps: no values.
        assert_eq!(m.per_method[&Method::GradCam]["pearson"].n, 0);
        assert_eq!(m.per_method[&Method::IntegratedGradients]["ssim"].n, 0);
    }
}
