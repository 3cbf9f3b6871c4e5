//! The repetitions of `--batch`'s cross-validation: which seeds and input
//! sizes, in which order, under which names and recipes.

use super::models::cv_recipe;
use super::ModelSpec;
use crate::error::{Error, Result};
use crate::train::TrainConfig;

/// One k-fold run of the repeated cross-validation: the `seed_index`-th seed
/// at one input size.
pub(super) struct RepetitionPlan {
    pub(super) seed_index: usize,
    pub(super) seed: u64,
    /// `None`: the recipe's own size.
    pub(super) extra_size: Option<i64>,
}

impl RepetitionPlan {
    /// Model name stem (train_spec appends `-cv`): `<name>`, `<name>-r<i>`,
    /// with `-<size>px` for an extra size, so that a later run never reuses
    /// another size's checkpoints by name.
    pub(super) fn name(&self, model: &str) -> String {
        let mut name = model.to_string();
        if self.seed_index > 0 {
            name.push_str(&format!("-r{}", self.seed_index));
        }
        if let Some(size) = self.extra_size {
            name.push_str(&format!("-{size}px"));
        }
        name
    }

    /// The model and recipe this repetition trains: the reference model's
    /// cross-validation recipe at this seed and input size.
    pub(super) fn recipe(
        &self,
        spec0: &ModelSpec,
        base: &TrainConfig,
    ) -> Result<(ModelSpec, TrainConfig)> {
        let (spec, mut recipe) = cv_recipe(spec0, base)?;
        if let Some(size) = self.extra_size {
            if size == recipe.resolved_input_size()? {
                return Err(Error::Config(format!(
                    "[batch] cv_extra_input_sizes: {size} is the recipe's own input size"
                )));
            }
            recipe.input_size = Some(size);
        }
        let spec = ModelSpec {
            name: self.name(&spec.name),
            seed: self.seed,
            ..spec
        };
        Ok((spec, recipe))
    }
}

/// Every repetition in evaluation order: seed-major, the recipe's size
/// first, so the first half of the list holds the first half of the seeds
/// at every size (the seed-to-seed spread compares mixed ensembles).
pub(super) fn repetition_plans(
    repeats: usize,
    base_seed: u64,
    extra_sizes: &[i64],
) -> Vec<RepetitionPlan> {
    let sizes: Vec<Option<i64>> = std::iter::once(None)
        .chain(extra_sizes.iter().copied().map(Some))
        .collect();
    (0..repeats)
        .flat_map(|i| {
            sizes.iter().map(move |&extra_size| RepetitionPlan {
                seed_index: i,
                seed: base_seed.wrapping_add(i as u64),
                extra_size,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repetitions_are_seed_major_and_names_carry_extra_sizes() {
        let plans = repetition_plans(3, 42, &[320]);
        let got: Vec<(String, u64)> = plans.iter().map(|p| (p.name("m"), p.seed)).collect();
        let want = [
            ("m", 42),
            ("m-320px", 42),
            ("m-r1", 43),
            ("m-r1-320px", 43),
            ("m-r2", 44),
            ("m-r2-320px", 44),
        ];
        let want: Vec<(String, u64)> = want.iter().map(|&(n, s)| (n.to_string(), s)).collect();
        assert_eq!(got, want);
        // Without extra sizes: the names and seeds runs before this option had.
        let plain: Vec<String> = repetition_plans(2, 7, &[])
            .iter()
            .map(|p| p.name("m"))
            .collect();
        assert_eq!(plain, ["m", "m-r1"]);
    }
}
