//! Encodings: fixed or trainable feature maps applied to the (already range-mapped) input before the network.
//!
//! Each encoding is one file with a spec type (its config, parsed from TOML or from the CLI's `name:arg:arg` form)
//! and a runtime type implementing [`Encoding`]. Adding one is that file (its spec's `FORM` gives the CLI form, the
//! help and the README's table) plus one line in `registry!` below.

use crate::error::{EngineError, Result};
use crate::parts::{self, Form, Part};
use serde::{Deserialize, Serialize};

pub mod fourier;
pub mod fourier_series;
pub mod gaussian;
pub mod hash_grid;
pub mod identity;
pub mod positional;
pub mod taylor;

/// What a spec gets to build its encoding.
#[derive(Clone, Debug)]
pub struct BuildContext {
    pub input_dims: usize,
    /// Seed for encodings with random but fixed parts (e.g. Gaussian feature matrices).
    pub seed: u64,
    /// Largest number of features a tensor-product encoding may produce before it refuses.
    pub max_features: usize,
}

/// A feature map `[batch, input_dims] -> [batch, output_dims]`, optionally with trainable parameters.
pub trait Encoding: Send + Sync + std::fmt::Debug {
    /// Human-readable description including its arguments, e.g. `fourier(64)`.
    fn describe(&self) -> String;
    fn input_dims(&self) -> usize;
    fn output_dims(&self) -> usize;
    fn n_params(&self) -> usize {
        0
    }
    /// Initialises this encoding's parameters (a slice of the model's flat parameter vector).
    fn init_params(&self, _params: &mut [f32], _rng: &mut crate::rng::Rng) {}
    /// Approximate floating-point operations per sample of the forward pass.
    fn flops_per_sample(&self) -> u64;
    /// `output[b, j]` for every row of `input`. Both buffers are row-major; the batch is `input.len() / input_dims`.
    fn forward(&self, params: &[f32], input: &[f32], output: &mut [f32]);
    /// Writes (overwrites, never accumulates) the gradient of the loss with respect to the parameters into
    /// `grad_params` and, when asked, with respect to the input into `grad_input`. In sparse mode (see
    /// [`Encoding::enable_sparse_gradients`]) it adds into `grad_params` on the rows it touches only.
    fn backward(
        &self,
        params: &[f32],
        input: &[f32],
        grad_output: &[f32],
        grad_params: &mut [f32],
        grad_input: Option<&mut [f32]>,
    );
    /// [`Encoding::forward`] from f64 coordinates (already range-mapped). An encoding whose features resolve finer
    /// than f32 can tell apart (the hash grid's finest levels, in a deep zoom) reads them as they are; the others get
    /// them rounded to f32.
    fn forward_f64(&self, params: &[f32], input: &[f64], output: &mut [f32]) {
        with_f32_copy(input, |x| self.forward(params, x, output))
    }
    /// [`Encoding::backward`] from f64 coordinates; see [`Encoding::forward_f64`].
    fn backward_f64(
        &self,
        params: &[f32],
        input: &[f64],
        grad_output: &[f32],
        grad_params: &mut [f32],
        grad_input: Option<&mut [f32]>,
    ) {
        with_f32_copy(input, |x| self.backward(params, x, grad_output, grad_params, grad_input))
    }
    /// Asks for sparse gradients, which pay off where a batch touches a small part of large tables (hash grids);
    /// returns whether this encoding has them. In sparse mode the backward adds its gradient into `grad_params`
    /// only on the rows of [`Encoding::sparse_row_width`] parameters it touches, and records them for
    /// [`Encoding::visit_touched_rows`]; the caller keeps `grad_params` zero elsewhere and calls
    /// [`Encoding::clear_touched_rows`] once it has used and zeroed them. The cost of a step then follows the rows
    /// a batch touches, not the table size.
    fn enable_sparse_gradients(&mut self) -> bool {
        false
    }
    /// Parameters per row of the sparse gradient (the features of one table entry).
    fn sparse_row_width(&self) -> usize {
        1
    }
    /// Sparse mode: calls `f` once with the rows the backwards since the last clear touched, as bitsets (rows
    /// numbered from this encoding's first parameter, in units of [`Encoding::sparse_row_width`]). A bitset rather
    /// than a list, so that the optimizer visits them in memory order.
    fn visit_touched_rows(&self, _f: &mut dyn FnMut(&[crate::optimizer::MarkedRows])) {}
    /// Sparse mode: forgets the touched rows.
    fn clear_touched_rows(&self) {}
    /// The parameters (a range of this encoding's) that live in hashed tables: entries shared by many vertices,
    /// each reached by few samples of a batch. [`crate::trainer::TrainConfig::table_sgd`] trains them apart.
    fn hashed_params(&self) -> std::ops::Range<usize> {
        0..0
    }
    /// The backward of a step that trains the hashed parameters ([`Encoding::hashed_params`]) by plain SGD: their
    /// step, `-rate` times their gradient, is added straight into `params` as the gradient is found, and
    /// `grad_params` is left as it was on them; every other parameter's gradient is written as by
    /// [`Encoding::backward`]. Plain SGD exactly (the backward of the parameters reads none of them), without a
    /// gradient the size of the tables to write, zero and sweep every step.
    fn backward_stepping_hashed(
        &self,
        params: &mut [f32],
        input: Mapped,
        grad_output: &[f32],
        grad_params: &mut [f32],
        rate: f32,
    ) {
        // No hashed parameters: nothing to step.
        debug_assert!(self.hashed_params().is_empty());
        let _ = rate;
        match input {
            Mapped::F32(x) => self.backward(params, x, grad_output, grad_params, None),
            Mapped::F64(x) => self.backward_f64(params, x, grad_output, grad_params, None),
        }
    }
}

/// A batch's coordinates mapped to the encoding's input range, in f32 or in f64 (see [`Encoding::forward_f64`]).
#[derive(Clone, Copy, Debug)]
pub enum Mapped<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
}

thread_local! {
    static F32_COPY: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Calls `f` with `input` rounded to f32, in a per-thread buffer kept between calls (taken out while in use, so a
/// nested call on the same thread, as Rayon's work stealing may make, gets a buffer of its own).
fn with_f32_copy<R>(input: &[f64], f: impl FnOnce(&[f32]) -> R) -> R {
    let mut buffer = F32_COPY.take();
    buffer.clear();
    buffer.extend(input.iter().map(|v| *v as f32));
    let result = f(&buffer);
    F32_COPY.set(buffer);
    result
}

/// A config type of one encoding.
pub trait EncodingSpec: Sized {
    /// Its command-line form: the name, the arguments, examples that parse, and what it is.
    const FORM: Form;
    /// Parses the arguments of the CLI form: `taylor:8` gives `["8"]`.
    fn from_args(args: &[&str]) -> Result<Self>;
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Encoding>>;
    /// The input range the data's domain is mapped to before this encoding.
    fn default_input_range(&self) -> (f32, f32) {
        (-1.0, 1.0)
    }
}

macro_rules! registry {
    ($($variant:ident($spec:ty)),* $(,)?) => {
        /// Every encoding, chosen by `type = "..."` in config or by `name:args` on the command line.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
        pub enum EncodingConfig {
            $($variant($spec)),*
        }

        impl Part for EncodingConfig {
            const KIND: &'static str = "encoding";
            const FORMS: &'static [Form] = &[$(<$spec as EncodingSpec>::FORM),*];

            fn from_form(form: &Form, args: &[&str]) -> Result<Self> {
                $(if form.name == <$spec as EncodingSpec>::FORM.name {
                    return Ok(EncodingConfig::$variant(<$spec as EncodingSpec>::from_args(args)?));
                })*
                Err(parts::unlisted::<Self>(form))
            }
        }

        impl EncodingConfig {
            /// Parses the CLI form `name[:arg[:arg...]]`.
            pub fn parse(spec: &str) -> Result<Self> {
                <Self as Part>::parse(spec)
            }

            pub fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Encoding>> {
                match self { $(EncodingConfig::$variant(s) => s.build(ctx)),* }
            }

            pub fn default_input_range(&self) -> (f32, f32) {
                match self { $(EncodingConfig::$variant(s) => s.default_input_range()),* }
            }
        }
    };
}

registry! {
    Identity(identity::IdentitySpec),
    Taylor(taylor::TaylorSpec),
    Fourier(fourier::FourierSpec),
    FourierSeries(fourier_series::FourierSeriesSpec),
    Gaussian(gaussian::GaussianSpec),
    Positional(positional::PositionalSpec),
    HashGrid(hash_grid::HashGridSpec),
}

impl Default for EncodingConfig {
    fn default() -> Self {
        EncodingConfig::Identity(identity::IdentitySpec {})
    }
}

/// Parses the CLI form of an encoding with exactly one count argument, such as `fourier:N` (`form` is `"N"`).
pub fn parse_count_arg(encoding: &str, what: &str, form: &str, args: &[&str]) -> Result<usize> {
    if args.len() > 1 {
        return Err(EngineError::config(
            format!("encoding {}", encoding.replace('-', "_")),
            format!("takes one argument ({encoding}:{form}), got {}", args.len()),
        ));
    }
    parse_arg(encoding, what, args, 0, None)
}

/// Parses one positional integer argument of a CLI spec, naming the encoding and argument in errors.
pub fn parse_arg<T: std::str::FromStr>(
    encoding: &str,
    what: &str,
    args: &[&str],
    index: usize,
    default: Option<T>,
) -> Result<T> {
    match args.get(index) {
        Some(s) => s.trim().parse().map_err(|_| {
            EngineError::config(format!("encoding {encoding}"), format!("{what} must be a number, got '{s}'"))
        }),
        None => default.ok_or_else(|| {
            EngineError::config(
                format!("encoding {encoding}"),
                format!("missing {what} (e.g. {encoding}:{what_example})", what_example = "8"),
            )
        }),
    }
}
