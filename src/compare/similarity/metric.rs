//! The agreement metrics by name: one list, one spelling, shared by the
//! comparison pipeline, its CSV/JSON output, the report and the TUI.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::compare_maps::resolve_k;
use super::{
    cosine, jaccard_top, pearson, spearman, ssim, top_k_intersection, CompareOptions, Map,
    SimilarityError, SimilarityReport,
};

/// One similarity metric of two heatmaps. The serde name is [`Metric::name`]
/// (the key in JSON, the column in CSV files, the word in file names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    Ssim,
    Pearson,
    Spearman,
    Cosine,
    Jaccard,
    #[serde(rename = "topk")]
    TopK,
}

impl Metric {
    /// Every metric, in report order.
    pub const ALL: [Metric; 6] = [
        Metric::Ssim,
        Metric::Pearson,
        Metric::Spearman,
        Metric::Cosine,
        Metric::Jaccard,
        Metric::TopK,
    ];

    /// The metrics drawn as agreement figures and cycled through in the TUI's
    /// agreement pane (the study's four).
    pub const SHOWN: [Metric; 4] = [
        Metric::Ssim,
        Metric::Pearson,
        Metric::Cosine,
        Metric::Jaccard,
    ];

    /// Machine name: JSON keys, CSV columns, file names.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Ssim => "ssim",
            Metric::Pearson => "pearson",
            Metric::Spearman => "spearman",
            Metric::Cosine => "cosine",
            Metric::Jaccard => "jaccard",
            Metric::TopK => "topk",
        }
    }

    /// Human-readable name for titles.
    pub fn title(self) -> &'static str {
        match self {
            Metric::Ssim => "SSIM",
            Metric::Pearson => "Pearson",
            Metric::Spearman => "Spearman",
            Metric::Cosine => "cosine",
            Metric::Jaccard => "Jaccard",
            Metric::TopK => "top-k",
        }
    }

    /// The next of [`Metric::SHOWN`] after this one (wrapping; a metric not
    /// shown goes to the first).
    pub fn next(self) -> Self {
        let i = Metric::SHOWN.iter().position(|m| *m == self);
        Metric::SHOWN[i.map_or(0, |i| (i + 1) % Metric::SHOWN.len())]
    }

    /// Case-insensitive name, also `jaccard_top` / `iou` and `top-k`;
    /// `None` if unknown.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "jaccard_top" | "iou" => Some(Metric::Jaccard),
            "top-k" | "topk_intersection" => Some(Metric::TopK),
            lower => Metric::ALL.into_iter().find(|m| m.name() == lower),
        }
    }

    /// This metric's value in a full report of one pair.
    pub fn of(self, r: &SimilarityReport) -> f64 {
        match self {
            Metric::Ssim => r.ssim,
            Metric::Pearson => r.pearson,
            Metric::Spearman => r.spearman,
            Metric::Cosine => r.cosine,
            Metric::Jaccard => r.jaccard,
            Metric::TopK => r.topk_intersection,
        }
    }

    /// This metric alone for one pair of maps, with the settings of `opts`
    /// (the same value [`super::compare_maps`] reports, without computing the
    /// others).
    pub fn between(
        self,
        a: Map<'_>,
        b: Map<'_>,
        opts: &CompareOptions,
    ) -> Result<f64, SimilarityError> {
        match self {
            Metric::Ssim => ssim(a, b, &opts.ssim),
            Metric::Pearson => pearson(a, b),
            Metric::Spearman => spearman(a, b),
            Metric::Cosine => cosine(a, b),
            Metric::Jaccard => jaccard_top(a, b, opts.percentile),
            Metric::TopK => top_k_intersection(a, b, resolve_k(opts, a.len())),
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for Metric {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Metric::parse(s).ok_or_else(|| {
            let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
            format!("unknown metric '{s}' (one of {})", names.join(", "))
        })
    }
}

/// Reading a metric's mean over an ensemble's member pairs lives with the
/// metric, so the explanations below it need not know the metrics.
impl crate::explain::split::MemberAgreement {
    /// The mean of `metric` over the pairs, NaN where it is undefined.
    pub fn get(&self, metric: Metric) -> f64 {
        self.metrics.get(metric.name()).copied().unwrap_or(f64::NAN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde_display_and_parse() {
        for m in Metric::ALL {
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.name()));
            assert_eq!(serde_json::from_str::<Metric>(&json).unwrap(), m);
            assert_eq!(m.to_string().parse::<Metric>(), Ok(m));
            assert_eq!(Metric::parse(&m.name().to_uppercase()), Some(m));
        }
        assert_eq!(Metric::parse("jaccard_top"), Some(Metric::Jaccard));
        assert!("psnr".parse::<Metric>().is_err());
    }

    #[test]
    fn next_cycles_through_the_shown_metrics() {
        let mut m = Metric::Ssim;
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(m);
            m = m.next();
        }
        assert_eq!(seen, Metric::SHOWN);
        assert_eq!(m, Metric::Ssim);
        assert_eq!(Metric::Spearman.next(), Metric::Ssim);
    }

    #[test]
    fn one_metric_equals_its_field_of_the_full_report() {
        let (h, w) = (12, 12);
        let a: Vec<f32> = (0..h * w).map(|i| ((i * 7) % 13) as f32 / 13.0).collect();
        let b: Vec<f32> = (0..h * w).map(|i| ((i * 5) % 11) as f32 / 11.0).collect();
        let (ma, mb) = (Map::new(&a, h, w).unwrap(), Map::new(&b, h, w).unwrap());
        let opts = CompareOptions::default();
        let full = super::super::compare_maps(ma, mb, &opts).unwrap();
        for m in Metric::ALL {
            assert_eq!(
                m.between(ma, mb, &opts).unwrap().to_bits(),
                m.of(&full).to_bits(),
                "{m}"
            );
        }
    }
}
