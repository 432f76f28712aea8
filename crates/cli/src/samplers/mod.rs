//! Samplers: where each batch of a run comes from. A sampler fills the batch before a step and may look at what
//! the model predicted for it before the update (its feedback), so that error-driven sampling is an ordinary
//! sampler. Adding one is a file here and a line in [`SamplerSpec`] and [`build`].

mod epoch;
mod error_field;

use anyhow::{bail, Result};
use approxlab_data::Dataset;
use approxlab_engine::error::EngineError;
use approxlab_engine::parts::{self, Form, Part};
use approxlab_engine::rng::Rng;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub use epoch::EpochSampler;
pub use error_field::ErrorFieldSampler;

/// Fills each step's batch, and may learn from the model's predictions on it.
pub trait Sampler: Send {
    /// One line for the run's start, e.g. `error field 256x256, 90% of each batch`.
    fn describe(&self) -> String;
    /// Fills the batch of 0-based step `step`. `rng` is the run's data stream (part of the checkpoint). Coordinates
    /// are f64, so that data sets defined at every real point (the Mandelbrot set) keep their precision in deep
    /// zooms.
    fn fill(&mut self, step: u64, rng: &mut Rng, inputs: &mut [f64], targets: &mut [f32]);
    /// The model's predictions on the batch just filled (before the update), row by row with its inputs and
    /// targets.
    fn feedback(&mut self, _inputs: &[f64], _targets: &[f32], _predictions: &[f32]) {}
}

/// `[sampler]` in a config, `--sampler` on the command line.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SamplerSpec {
    /// Shuffled epochs over a fixed training set; fresh uniform draws from a data set sampled on the fly.
    #[default]
    Uniform,
    /// A share of each batch drawn where the model's recent error is largest: see [`ErrorFieldSampler`].
    ErrorField {
        /// Fraction of each batch drawn from the error field, in [0, 1); the rest is uniform.
        #[serde(default = "default_share")]
        share: f64,
        /// Cells per input dimension of the error field.
        #[serde(default = "default_grid")]
        grid: usize,
        /// A cell's weight is its mean squared error to this power: 1 draws in proportion to the squared error,
        /// 0.5 to its root (the size of the gradients the cell's points bring), 0 evenly over the cells.
        #[serde(default = "default_power")]
        power: f64,
    },
}

fn default_share() -> f64 {
    0.9
}
fn default_grid() -> usize {
    256
}
fn default_power() -> f64 {
    1.0
}

/// Most cells an error field may have (4M: 32 MB of state).
pub const MAX_FIELD_CELLS: usize = 1 << 22;

/// Cells per dimension of an error field asked for `grid` over `dims` inputs: `grid`, or the most that keeps the
/// field within [`MAX_FIELD_CELLS`] (161 in 3-D, 45 in 4-D, 2 from 12-D, 1 from 23-D on, where the field is one
/// cell and every draw is uniform). So the sampler takes data of any dimensionality, coarser as it grows.
pub fn field_grid(grid: usize, dims: usize) -> usize {
    let fits = |g: usize| g.checked_pow(dims as u32).is_some_and(|cells| cells <= MAX_FIELD_CELLS);
    let mut g = grid.min((MAX_FIELD_CELLS as f64).powf(1.0 / dims.max(1) as f64).floor() as usize + 1).max(1);
    while g > 1 && !fits(g) {
        g -= 1;
    }
    g
}

impl Part for SamplerSpec {
    const KIND: &'static str = "sampler";
    const FORMS: &'static [Form] = &[
        Form::new("uniform", "uniform", &["uniform"], "shuffled epochs, or fresh draws on the fly"),
        Form::new(
            "error_field",
            "error_field[:SHARE[:GRID]]",
            &["error_field", "error_field:0.5:128"],
            "SHARE of each batch where the recent error is largest, from a GRID-per-dimension field; default 0.9 and 256",
        ),
    ];

    fn from_form(form: &Form, args: &[&str]) -> approxlab_engine::error::Result<SamplerSpec> {
        let written = || form.written(args);
        let number = |i: usize, what: &str, default: f64| match args.get(i) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                EngineError::config(Self::KIND, format!("'{}': {what} must be a number, got '{v}'", written()))
            }),
        };
        match (form.name, args.len()) {
            ("uniform", _) => parts::no_args::<Self>(form, args).map(|_| SamplerSpec::Uniform),
            ("error_field", 0..=2) => {
                let grid = number(1, "GRID", default_grid() as f64)?;
                if grid.fract() != 0.0 || grid < 1.0 {
                    return Err(EngineError::config(
                        Self::KIND,
                        format!("'{}': GRID must be a whole number of cells >= 1, got {grid}", written()),
                    ));
                }
                Ok(SamplerSpec::ErrorField {
                    share: number(0, "SHARE", default_share())?,
                    grid: grid as usize,
                    power: default_power(),
                })
            }
            ("error_field", n) => Err(EngineError::config(
                "sampler error_field",
                format!("takes at most SHARE and GRID (error_field:SHARE:GRID), got {n} arguments"),
            )),
            _ => Err(parts::unlisted::<Self>(form)),
        }
    }
}

impl SamplerSpec {
    /// Checks the values.
    pub fn validate(&self) -> Result<()> {
        if let SamplerSpec::ErrorField { share, grid, power } = *self {
            if !(0.0..1.0).contains(&share) {
                bail!("sampler error_field share: must be in [0, 1) (a uniform part keeps the field current), got {share}");
            }
            if grid == 0 {
                bail!("sampler error_field grid: must be at least 1, got 0");
            }
            if !(0.0..=4.0).contains(&power) {
                bail!("sampler error_field power: must be in [0, 4] (1 draws in proportion to the squared error), got {power}");
            }
        }
        Ok(())
    }

    pub fn is_uniform(&self) -> bool {
        *self == SamplerSpec::Uniform
    }
}

/// The sampler a run's config asks for, over its data set.
pub fn build(spec: &SamplerSpec, data: Arc<dyn Dataset>, seed: u64, batch: usize) -> Result<Box<dyn Sampler>> {
    spec.validate()?;
    Ok(match *spec {
        SamplerSpec::Uniform => Box::new(Uniform::new(data, seed)),
        SamplerSpec::ErrorField { share, grid, power } => {
            let grid = field_grid(grid, data.input_dims());
            Box::new(ErrorFieldSampler::new(data, seed, batch, share, grid)?.with_power(power))
        }
    })
}

/// The default: shuffled epochs where there is a fixed training set, the data set's own uniform draws otherwise.
struct Uniform {
    data: Arc<dyn Dataset>,
    epochs: Option<EpochSampler>,
}

impl Uniform {
    fn new(data: Arc<dyn Dataset>, seed: u64) -> Uniform {
        let epochs = match (data.len(), data.training_points()) {
            (Some(n), Some(_)) => Some(EpochSampler::new(seed, n)),
            _ => None,
        };
        Uniform { data, epochs }
    }
}

impl Sampler for Uniform {
    fn describe(&self) -> String {
        match &self.epochs {
            Some(_) => "shuffled epochs over the training set".into(),
            None => "uniform draws".into(),
        }
    }

    fn fill(&mut self, step: u64, rng: &mut Rng, inputs: &mut [f64], targets: &mut [f32]) {
        let rows = inputs.len() / self.data.input_dims();
        match (&mut self.epochs, self.data.training_points()) {
            (Some(s), Some((xs, ys))) => s.fill(step * rows as u64, xs, ys, inputs, targets),
            _ => self.data.fill_batch_f64(rng, inputs, targets),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampler_forms_parse_and_bad_ones_say_what_is_wrong() {
        let parse = |s: &str| <SamplerSpec as Part>::parse(s);
        assert_eq!(parse("uniform").unwrap(), SamplerSpec::Uniform);
        assert_eq!(
            parse("Error-Field:0.5:128").unwrap(),
            SamplerSpec::ErrorField { share: 0.5, grid: 128, power: 1.0 }
        );
        assert_eq!(parse("error_field").unwrap(), SamplerSpec::ErrorField { share: 0.9, grid: 256, power: 1.0 });
        for (bad, needle) in [
            ("uniform:3", "takes no arguments"),
            ("error_field:x", "SHARE must be a number, got 'x'"),
            ("error_field:0.5:0", "GRID must be a whole number"),
            ("error_field:1:2:3", "at most SHARE and GRID"),
            ("lottery", "expected one of: uniform or error_field[:SHARE[:GRID]]"),
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn the_field_coarsens_with_the_dimension_and_never_exceeds_its_cells() {
        assert_eq!(field_grid(512, 1), 512);
        assert_eq!(field_grid(512, 2), 512);
        assert_eq!(field_grid(512, 3), 161);
        assert_eq!(field_grid(512, 4), 45);
        assert_eq!(field_grid(8, 4), 8);
        assert_eq!(field_grid(512, 22), 2);
        assert_eq!(field_grid(512, 23), 1);
        assert_eq!(field_grid(512, 784), 1);
        for dims in 1..=40 {
            let g = field_grid(512, dims);
            assert!(g.pow(dims as u32) <= MAX_FIELD_CELLS, "{dims}-D: {g}");
            assert!(g == 512 || (g + 1).checked_pow(dims as u32).is_none_or(|c| c > MAX_FIELD_CELLS), "{dims}-D: {g}");
        }
    }
}
