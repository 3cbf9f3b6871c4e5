//! `config.toml`: every option of the pipeline, with defaults that reproduce
//! the study on MED-NODE. CLI flags override file values.
//!
//! Every section is parsed into its settings struct when the file is loaded,
//! with unknown keys and bad enum values refused, and every number is checked
//! against its allowed range there too: a typo or a nonsense value is
//! reported with its file, section and key before any work starts, never
//! half-way through a run (or not at all).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::split::SplitName;
pub use crate::data::DataConfig;
use crate::error::{Error, Result};
pub use crate::evaluate::PredictConfig;
use crate::explain::{ExplainConfig, Method};
use crate::model::Arch;
pub use crate::model::ModelConfig;
use crate::train::TrainConfig;
use crate::validation::{check, OutOfRange};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    pub data: DataConfig,
    pub model: ModelConfig,
    /// `[train]`; its `arch` defaults to `[model] arch` (see [`Config::load`]).
    pub train: TrainConfig,
    pub explain: ExplainConfig,
    pub predict: PredictConfig,
    /// `[scores]`: which explanation to trust (faithfulness, complexity,
    /// randomisation, robustness and localisation scores of the maps).
    pub scores: crate::compare::scores::scorecard::ScoreSettings,
    pub tui: TuiConfig,
    pub batch: BatchConfig,
    /// `[slurm]`: the sbatch settings of `--batch --executor slurm`.
    pub slurm: SlurmConfig,
}

/// `[slurm]`: what every sbatch script of a run asks the cluster for. Empty
/// strings leave a setting to the cluster's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlurmConfig {
    pub partition: String,
    pub account: String,
    /// `--time`, e.g. "04:00:00" (per unit: one training, one shard).
    pub time: String,
    /// `--gres`, e.g. "gpu:1".
    pub gres: String,
    pub cpus_per_task: usize,
    /// `--mem`, e.g. "16G".
    pub mem: String,
    /// Most tasks of one array running at once (`--array=...%k`; 0 = no limit).
    pub array_parallelism: usize,
    /// More `#SBATCH` lines, written as given (e.g. "--qos=normal").
    pub extra: Vec<String>,
    /// The melxai binary the jobs run (empty: this one, by absolute path).
    pub melxai: String,
}

impl Default for SlurmConfig {
    fn default() -> Self {
        SlurmConfig {
            partition: String::new(),
            account: String::new(),
            time: String::new(),
            gres: String::new(),
            cpus_per_task: 1,
            mem: String::new(),
            array_parallelism: 0,
            extra: Vec::new(),
            melxai: String::new(),
        }
    }
}

/// `[tui]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TuiConfig {
    /// `[tui.keys]`: action = "key" or ["key", ...]. Action and key names are
    /// checked by `tui::KeyMap::with_table` when the TUI starts (the key
    /// grammar belongs to the TUI).
    pub keys: toml::Table,
    /// `auto` (ask the terminal for its background), `dark` or `light`.
    pub theme: ThemeChoice,
}

/// `[tui] theme`: which colours to use (the TUI builds its palette from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThemeChoice {
    /// Ask the terminal for its background (OSC 11) at start-up.
    #[default]
    Auto,
    Dark,
    Light,
}

/// One model of a `--batch` run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSpec {
    pub name: String,
    pub arch: String,
    pub seed: u64,
    /// Evaluate this checkpoint instead of training (`arch` is then read from
    /// its metadata; `seed` only draws a split when it records none).
    pub checkpoint: Option<PathBuf>,
}

impl Default for ModelSpec {
    fn default() -> Self {
        ModelSpec {
            name: "lite0".into(),
            arch: "lite0".into(),
            seed: 42,
            checkpoint: None,
        }
    }
}

/// Most repetitions of the cross-validation `[batch] cv_repeats` accepts
/// (each costs `folds` trainings).
pub const MAX_CV_REPEATS: usize = 20;

/// Most sizes `[batch] cv_extra_input_sizes` accepts (each multiplies the
/// repetitions' training).
pub const MAX_CV_EXTRA_INPUT_SIZES: usize = 3;

/// Repetitions `[batch] cv_repeats = "auto"` runs on a CUDA device: four
/// give the seed ensemble its seed-to-seed spread (two halves of two), at
/// about 20 s of training each on a data-centre GPU. On the CPU (about 5.5
/// min each on 2 cores) "auto" runs the cross-validation once.
pub const AUTO_CV_REPEATS_CUDA: usize = 4;

/// `[batch] cv_repeats`: a number of repetitions, or "auto" (chosen by the
/// device the run uses, see [`AUTO_CV_REPEATS_CUDA`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CvRepeats {
    Count(usize),
    Auto,
}

impl CvRepeats {
    /// The repetitions a run on `device` makes.
    pub fn resolve(self, device: tch::Device) -> usize {
        match self {
            CvRepeats::Count(n) => n,
            CvRepeats::Auto if device.is_cuda() => AUTO_CV_REPEATS_CUDA,
            CvRepeats::Auto => 1,
        }
    }
}

impl Serialize for CvRepeats {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            CvRepeats::Count(n) => s.serialize_u64(*n as u64),
            CvRepeats::Auto => s.serialize_str("auto"),
        }
    }
}

impl<'de> Deserialize<'de> for CvRepeats {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = CvRepeats;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(
                    f,
                    "a number of repetitions (1..={MAX_CV_REPEATS}) or \"auto\""
                )
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<CvRepeats, E> {
                usize::try_from(v)
                    .map(CvRepeats::Count)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<CvRepeats, E> {
                Ok(CvRepeats::Count(v as usize))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<CvRepeats, E> {
                match v {
                    "auto" => Ok(CvRepeats::Auto),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// Most bootstrap resamples `[batch] bootstrap_samples` accepts (time grows
/// linearly; 100 000 already resolves a percentile to the third decimal).
pub const MAX_BOOTSTRAP_SAMPLES: usize = 100_000;

/// `[batch]`: what `melxai --batch` runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchConfig {
    pub run_name: String,
    /// First = reference model; two or more enable cross-model comparison.
    pub models: Vec<ModelSpec>,
    /// k-fold cross-validation of the reference model (0 = skip).
    pub folds: usize,
    pub methods: Vec<Method>,
    /// Split of the reference model whose images are explained.
    pub split: SplitName,
    /// Pane screenshots (SVG) rendered headless.
    pub screenshots: bool,
    /// Repetitions of the k-fold cross-validation, each with its own seed
    /// (the reference model's seed + r); 1 = the cross-validation alone.
    /// Each repetition trains `folds` more models.
    pub cv_repeats: CvRepeats,
    /// Input sizes (pixels) every repetition is trained at as well, besides
    /// the recipe's own: the seed ensemble then mixes resolutions, whose
    /// errors differ more than seeds' do. Empty = the recipe's size only.
    pub cv_extra_input_sizes: Vec<i64>,
    /// Bootstrap resamples of every interval of the evaluation.
    pub bootstrap_samples: usize,
    /// Explain the cross-validation's fold ensemble too (its combined output)
    /// and measure how far its members' explanations agree.
    pub explain_ensemble: bool,
    /// How many images of `split` are explained: `"all"`, or N drawn
    /// stratified by class and by whether the reference model got them
    /// right (seeded by the reference model's seed).
    #[serde(skip_serializing_if = "is_all")]
    pub explain_images: crate::data::subset::ExplainImages,
    /// Explanation units per model when the run is split into units
    /// (`--workers`, `--executor slurm`): each explains one contiguous
    /// share of the images.
    pub explain_shards: usize,
    /// libtorch threads of every process of a CPU run (0: libtorch's
    /// default). Its CPU kernels sum in another order on another thread
    /// count, so the last bits of maps and trained weights depend on it: a
    /// run split over workers equals a single-process run when this is set.
    pub cpu_threads: usize,
}

fn is_all(e: &crate::data::subset::ExplainImages) -> bool {
    *e == crate::data::subset::ExplainImages::All
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            run_name: "mednode".into(),
            models: vec![
                ModelSpec {
                    name: "lite0-s42".into(),
                    arch: "lite0".into(),
                    seed: 42,
                    checkpoint: None,
                },
                ModelSpec {
                    name: "lite1-s42".into(),
                    arch: "lite1".into(),
                    seed: 42,
                    checkpoint: None,
                },
            ],
            folds: 5,
            methods: vec![
                Method::GradCam,
                Method::IntegratedGradients,
                Method::DeepLift,
            ],
            split: SplitName::Test,
            screenshots: true,
            cv_repeats: CvRepeats::Auto,
            cv_extra_input_sizes: Vec::new(),
            bootstrap_samples: 2000,
            explain_ensemble: true,
            explain_images: crate::data::subset::ExplainImages::All,
            explain_shards: 4,
            cpu_threads: 0,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            device: "auto".into(),
            data: DataConfig::default(),
            model: ModelConfig::default(),
            train: TrainConfig::default(),
            explain: ExplainConfig::default(),
            predict: PredictConfig::default(),
            scores: Default::default(),
            tui: TuiConfig::default(),
            batch: BatchConfig::default(),
            slurm: SlurmConfig::default(),
        }
    }
}

impl Config {
    /// Reads `path`; a missing file at the default location means defaults.
    /// Every section is parsed and range-checked here; errors name the file,
    /// the section and the key.
    pub fn load(path: &Path, required: bool) -> Result<Config> {
        match std::fs::read_to_string(path) {
            Ok(text) => Config::from_toml(&text)
                .map_err(|e| Error::Config(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                Ok(Config::default())
            }
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// The checkpoint the TUI opens: the first that exists of the `[train]
    /// name` run's k-fold ensemble and single checkpoint, then the `--batch`
    /// reference model's (`[batch] models[0]`: its fold ensemble
    /// `<name>-cv.ensemble.toml`, then its given checkpoint or
    /// `<name>.safetensors`), so a finished `--batch` opens in the TUI.
    pub fn default_checkpoint(&self) -> Option<PathBuf> {
        let dir = &self.model.weights_dir;
        let name = &self.train.name;
        let mut candidates = vec![
            crate::ensemble::ensemble_path(dir, name),
            dir.join(format!("{name}.safetensors")),
        ];
        if let Some(reference) = self.batch.models.first() {
            // As `--batch` names them under this recipe (the fold ensemble
            // with `-val0` when its folds hold no validation images), then
            // as it named them before weight averaging.
            let stems = [
                self.train.batch_stem(&reference.name, false),
                reference.name.clone(),
            ];
            let fold_stem = self.train.batch_stem(&reference.name, true);
            for stem in std::iter::once(&fold_stem).chain(&stems) {
                candidates.push(crate::ensemble::ensemble_path(dir, &format!("{stem}-cv")));
            }
            match &reference.checkpoint {
                Some(path) => candidates.push(path.clone()),
                None => {
                    for stem in &stems {
                        candidates.push(dir.join(format!("{stem}.safetensors")));
                    }
                }
            }
        }
        candidates.into_iter().find(|p| p.exists())
    }

    /// Parses and checks the text of a config file. The error is the bare
    /// description (`[batch] split: unknown variant ...`); [`Config::load`]
    /// puts the file name in front.
    pub fn from_toml(text: &str) -> std::result::Result<Config, String> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
        // `[train] arch` falls back to `[model] arch` only when absent, so a
        // model-wide default does not override an explicit training choice.
        let train_arch_given = table
            .get("train")
            .and_then(toml::Value::as_table)
            .is_some_and(|t| t.contains_key("arch"));
        let mut config: Config = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| {
                let path = e.path().to_string();
                format!("{}{}", key_of(&path), e.inner().message())
            })?;
        if !train_arch_given {
            config.train.arch = config.model.arch.clone();
        }
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }

    /// Range checks of every section (the parse has checked types and names).
    pub fn validate(&self) -> std::result::Result<(), OutOfRange> {
        if self.device.parse::<crate::device::DeviceSpec>().is_err() {
            return Err(OutOfRange::new(
                "device",
                format!("{:?}", self.device),
                "auto, cpu, cuda or cuda:N",
            ));
        }
        Arch::check("[model] arch", &self.model.arch)?;
        // `decode` only applies to the store: without one it would be ignored.
        if self.data.decode == crate::data::store::DecodeMode::Reduced && self.data.store.is_none()
        {
            return Err(OutOfRange::new(
                "decode",
                "\"reduced\"",
                "\"full\" unless [data] store is set (reduced decoding fills the store)",
            )
            .in_section("[data]"));
        }
        // The augmentation table first, so its errors name `[train.augment]`.
        self.train
            .augment
            .validate()
            .map_err(|e| e.in_section("[train.augment]"))?;
        self.train.validate().map_err(|e| e.in_section("[train]"))?;
        Arch::check("[train] arch", &self.train.arch)?;
        self.explain
            .validate()
            .map_err(|e| e.in_section("[explain]"))?;
        let conformal = &self.predict.conformal;
        let in_conformal = |e: OutOfRange| e.in_section("[predict.conformal]");
        if !(conformal.alpha > 0.0 && conformal.alpha < 1.0) {
            return Err(in_conformal(OutOfRange::new(
                "alpha",
                conformal.alpha,
                "a number in (0, 1)",
            )));
        }
        if !(conformal.lambda.is_finite() && conformal.lambda >= 0.0) {
            return Err(in_conformal(OutOfRange::new(
                "lambda",
                conformal.lambda,
                "a finite number >= 0",
            )));
        }
        self.batch.validate().map_err(|e| e.in_section("[batch]"))
    }
}

impl BatchConfig {
    /// Range checks of `[batch]`: a usable run name, models with unique,
    /// usable names and known architectures, and a method list. An empty
    /// model list is refused by `--batch` itself (other commands do not
    /// read it).
    pub fn validate(&self) -> std::result::Result<(), OutOfRange> {
        check::file_name("run_name", &self.run_name)?;
        for (i, m) in self.models.iter().enumerate() {
            check::file_name("models.name", &m.name)?;
            if m.checkpoint.is_none() {
                Arch::check("models.arch", &m.arch)?;
            }
            if self.models[..i].iter().any(|o| o.name == m.name) {
                return Err(OutOfRange::new(
                    "models.name",
                    format!("{:?}", m.name),
                    "a name not used by another model",
                ));
            }
        }
        if self.folds == 1 {
            return Err(OutOfRange::new("folds", 1, "0 (skip) or at least 2"));
        }
        if let CvRepeats::Count(n) = self.cv_repeats {
            check::within("cv_repeats", n, 1, MAX_CV_REPEATS)?;
        }
        let (lo, hi) = crate::train::config::INPUT_SIZE_RANGE;
        for (i, &size) in self.cv_extra_input_sizes.iter().enumerate() {
            check::within("cv_extra_input_sizes", size, lo, hi)?;
            if self.cv_extra_input_sizes[..i].contains(&size) {
                return Err(OutOfRange::new(
                    "cv_extra_input_sizes",
                    size,
                    "sizes listed once each",
                ));
            }
        }
        if self.cv_extra_input_sizes.len() > MAX_CV_EXTRA_INPUT_SIZES {
            return Err(OutOfRange::new(
                "cv_extra_input_sizes",
                format!("{} sizes", self.cv_extra_input_sizes.len()),
                &format!("at most {MAX_CV_EXTRA_INPUT_SIZES} sizes"),
            ));
        }
        check::within(
            "bootstrap_samples",
            self.bootstrap_samples,
            100,
            MAX_BOOTSTRAP_SAMPLES,
        )?;
        check::within("explain_shards", self.explain_shards, 1, 10_000)?;
        check::within("cpu_threads", self.cpu_threads, 0, 4096)?;
        if self.methods.is_empty() {
            return Err(OutOfRange::new("methods", "[]", "at least one method"));
        }
        Ok(())
    }
}

/// `"[section] key: "` for a serde path such as `batch.split`, or
/// `"[section]: "` when the error is about the section itself (an unknown
/// key, whose name the message carries).
fn key_of(path: &str) -> String {
    /// Tables of config.toml, longest first so `train.augment` wins over `train`.
    const SECTIONS: [&str; 12] = [
        "train.augment",
        "predict.conformal",
        "scores",
        "tui.keys",
        "data",
        "model",
        "train",
        "explain",
        "predict",
        "tui",
        "batch",
        "slurm",
    ];
    if path.is_empty() || path == "." {
        return String::new();
    }
    let Some(section) = SECTIONS
        .iter()
        .find(|s| path == **s || path.starts_with(&format!("{s}.")))
    else {
        return format!("{path}: ");
    };
    match path[section.len()..].trim_start_matches('.') {
        "" => format!("[{section}]: "),
        key => format!("[{section}] {key}: "),
    }
}
