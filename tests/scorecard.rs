//! The scorecard tells a faithful map from a random one: on a linear model
//! whose decision rests on one block of pixels, the map of its true
//! relevance (grad × input) beats a random map on ROAD, faithfulness
//! correlation and pixel flipping, and the paired comparison says so with
//! intervals; a lesion mask on that block gives it the localisation.

use std::collections::BTreeMap;

use melxai::compare::scores::scorecard::{score_map, scorecard, MapScores, ScoreSettings};
use melxai::compare::scores::{rows_of, Image};
use melxai::metrics::BootstrapOptions;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

const SIDE: usize = 16;

fn block(p: usize) -> bool {
    let (r, c) = (p / SIDE, p % SIDE);
    (4..10).contains(&r) && (5..11).contains(&c)
}

#[test]
fn a_faithful_map_beats_a_random_one_with_intervals() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let hw = SIDE * SIDE;
    // Class 1's logit reads the block (all channels); class 0 is flat.
    let mut w = vec![0.0f32; 2 * 3 * hw];
    for c in 0..3 {
        for p in (0..hw).filter(|&p| block(p)) {
            w[3 * hw + c * hw + p] = 0.25;
        }
    }
    let weights = Tensor::from_slice(&w).view([2, (3 * hw) as i64]);
    let bias = Tensor::from_slice(&[2.0f32, -2.0]);
    let model = move |x: &Tensor| -> melxai::Result<Tensor> {
        let n = x.size()[0];
        Ok((x.view([n, -1]).matmul(&weights.tr()) + &bias).softmax(-1, Kind::Float))
    };
    let settings = ScoreSettings {
        road_fractions: vec![0.1, 0.3, 0.5],
        correlation_runs: 12,
        correlation_subset: 0.1,
        flipping_steps: 8,
        ..Default::default()
    };
    let mask: Vec<bool> = (0..hw).map(block).collect();
    let mut per_image: BTreeMap<String, BTreeMap<String, MapScores>> = BTreeMap::new();
    for i in 0..12 {
        let data: Vec<f32> = (0..3 * hw).map(|_| rng.gen_range(0.0..1.0)).collect();
        let x = Image {
            data: data.clone(),
            channels: 3,
            height: SIDE,
            width: SIDE,
        };
        let p = rows_of(&model(&x.tensor()).unwrap()).unwrap();
        assert!(p[0][1] > 0.5, "the block makes class 1 likely");
        let faithful: Vec<f64> = (0..hw)
            .map(|q| {
                (0..3)
                    .map(|c| f64::from(w[3 * hw + c * hw + q] * data[c * hw + q]))
                    .sum()
            })
            .collect();
        let random: Vec<f64> = (0..hw).map(|_| rng.gen_range(0.0..1.0)).collect();
        let mut methods = BTreeMap::new();
        for (name, map) in [("faithful", &faithful), ("random", &random)] {
            let s = score_map(&model, &x, map, 1, Some(&mask), &settings).unwrap();
            methods.insert(name.to_string(), s);
        }
        per_image.insert(format!("img{i:02}"), methods);
    }
    let card = scorecard("linear", per_image, &BootstrapOptions::new(500, 3)).unwrap();
    assert_eq!(card.images, 12);
    let better = |score: &str| {
        card.paired
            .iter()
            .find(|p| p.score == score)
            .unwrap_or_else(|| panic!("{score}"))
            .better
            .clone()
    };
    assert_eq!(
        better("road_gap").as_deref(),
        Some("faithful"),
        "{:?}",
        card.paired
    );
    assert_eq!(
        better("faithfulness_correlation").as_deref(),
        Some("faithful")
    );
    assert_eq!(better("pixel_flipping_auc").as_deref(), Some("faithful"));
    assert_eq!(better("relevance_mass").as_deref(), Some("faithful"));
    let f = &card.summary["faithful"];
    assert!(f["relevance_rank"].mean > 0.99, "{:?}", f["relevance_rank"]);
    assert!(f["road_gap"].ci.low > 0.0);
    // Scores a map has no value for stay out of the summary.
    assert!(!f.contains_key("completeness_gap"));
    assert!(!f.contains_key("parameter_randomisation"));
    let r = &card.summary["random"]["road_gap"];
    assert!(r.ci.low <= 0.02 && r.mean.abs() < 0.1, "{r:?}");
}
