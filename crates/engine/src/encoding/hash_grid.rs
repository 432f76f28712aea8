//! `hash_grid`: the multiresolution hash encoding of Instant-NGP (Müller et al. 2022, "Instant Neural Graphics
//! Primitives with a Multiresolution Hash Encoding"), for 1 to 6 input dimensions.
//!
//! Level `l` (of `L`) is a grid of resolution `N_l = floor(base * b^l)` cells per axis, `b = exp((ln finest - ln
//! base) / (L - 1))`, with a trainable feature vector of `F` values at every vertex. A level whose `(N_l + 1)^d`
//! vertices fit in the table (`T = 2^log2_table_size` entries) indexes them densely (`i_0 + V i_1 + V^2 i_2`,
//! `V = N_l + 1`); a finer one hashes them, `(i_0 * 1 ^ i_1 * 2654435761 ^ i_2 * 805459861) mod T`, and lets the
//! training sort out the collisions. A sample's feature at a level is the d-linear interpolation of its cell's `2^d`
//! corner vectors. Output: `L * F` values, level-major (`out[l * F + f]`).
//!
//! Inputs arrive in [0, 1] (the default input range) and are clamped to it; the input gradient is zero outside.
//! Vertex `i` of every level sits at `x = i / N_l`, so all levels share the vertices at 0 and 1 (Instant-NGP offsets
//! levels by half a cell; at these resolutions the difference is immaterial and this keeps the indexing obvious).
//!
//! Parameters: level `l` owns `min(T, (N_l + 1)^d) * F` consecutive values of the parameter vector (coarse dense
//! levels use only what they index), levels in order. They are the model's "encoding" parameter group
//! ([`HashGrid::PARAM_GROUP`]): the trainer gives them a larger learning rate than the network's weights, since
//! each table entry sees only the few samples that fall near its vertex.
//!
//! CLI: `hashgrid` (defaults) or `hashgrid:LEVELS:FEATURES:LOG2_TABLE:BASE_RES:FINEST_RES` (trailing ones may be
//! left out); defaults 16 levels, 2 features, 2^19 entries, base resolution 16, finest resolution 2048 (512 in 3-D).
//! TOML: `type = "hash_grid"` with `levels`, `features_per_level`, `log2_table_size`, `base_resolution`,
//! `finest_resolution`, each optional.

use super::{parse_arg, BuildContext, Encoding, EncodingSpec, Mapped};
use crate::error::{EngineError, Result};
use crate::optimizer::MarkedRows;
use crate::parts::Form;
use crate::rows;
use rand::Rng as _;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

fn default_levels() -> usize {
    16
}
fn default_features() -> usize {
    2
}
fn default_log2_table_size() -> u32 {
    19
}
fn default_base_resolution() -> usize {
    16
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HashGridSpec {
    #[serde(default = "default_levels")]
    pub levels: usize,
    #[serde(default = "default_features")]
    pub features_per_level: usize,
    #[serde(default = "default_log2_table_size")]
    pub log2_table_size: u32,
    #[serde(default = "default_base_resolution")]
    pub base_resolution: usize,
    /// `None`: 2048 for 1-D and 2-D, 512 for 3-D (a 3-D level has `N^3` cells, so memory runs out far sooner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finest_resolution: Option<usize>,
    /// Whether a fixed training set caps the finest resolution at about its own spacing
    /// ([`HashGridSpec::fitted_to_samples`]): cells finer than the samples hold vertices that no training point
    /// reaches, which is a fractal's need but makes a held-out point's prediction noise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub finest_from_data: bool,
}

/// With `finest_from_data`, the finest level has this many cells per training point along each axis.
pub const CELLS_PER_SAMPLE_SPACING: f64 = 1.5;

impl Default for HashGridSpec {
    fn default() -> Self {
        HashGridSpec {
            levels: default_levels(),
            features_per_level: default_features(),
            log2_table_size: default_log2_table_size(),
            base_resolution: default_base_resolution(),
            finest_resolution: None,
            finest_from_data: false,
        }
    }
}

const FIELD: &str = "encoding hash_grid";
/// Instant-NGP's hashing primes, one per dimension.
const PRIMES: [u32; MAX_DIMS] = [1, 2_654_435_761, 805_459_861, 3_674_653_429, 2_097_192_037, 1_434_869_437];
/// The most input dimensions: a cell has `2^d` corners, 64 at six, and each is a random table read per level.
pub const MAX_DIMS: usize = 6;
const MAX_LEVELS: usize = 32;
const MAX_FEATURES: usize = 16;
/// Tables of up to 2^26 rows (the challenge champion's 2^25 pay; the hash is 32 bits): what the machine cannot hold,
/// the memory check refuses before anything is allocated.
const MAX_LOG2_TABLE: u32 = 26;
/// Keeps `N_l * (clamped x)` and the dense index comfortably inside u32/f32 precision.
const MAX_RESOLUTION: usize = 1 << 20;

impl HashGridSpec {
    /// The spec a run of `points` training points in `dims` dimensions builds (`None`: drawn without end, as on
    /// the fly): with `finest_from_data`, the finest resolution becomes at most [`CELLS_PER_SAMPLE_SPACING`]
    /// cells per training point along an axis, `1.5 * points^(1/d)` (and the base no finer than that), and the
    /// flag is spent, so the run's saved config says what it trained.
    pub fn fitted_to_samples(&self, dims: usize, points: Option<usize>) -> HashGridSpec {
        let mut spec = self.clone();
        if !self.finest_from_data {
            return spec;
        }
        spec.finest_from_data = false;
        if let Some(n) = points {
            let cap = ((n.max(1) as f64).powf(1.0 / dims.max(1) as f64) * CELLS_PER_SAMPLE_SPACING).ceil() as usize;
            let finest = self.finest_for(dims).min(cap);
            spec.finest_resolution = Some(finest);
            spec.base_resolution = spec.base_resolution.min(finest);
        }
        spec
    }

    fn finest_for(&self, dims: usize) -> usize {
        self.finest_resolution.unwrap_or(if dims >= 3 { 512 } else { 2048 })
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(EngineError::config(FIELD, m));
        if !(1..=MAX_LEVELS).contains(&self.levels) {
            return bad(format!("levels must be in 1..={MAX_LEVELS}, got {}", self.levels));
        }
        if !(1..=MAX_FEATURES).contains(&self.features_per_level) {
            return bad(format!("features_per_level must be in 1..={MAX_FEATURES}, got {}", self.features_per_level));
        }
        if !(1..=MAX_LOG2_TABLE).contains(&self.log2_table_size) {
            return bad(format!("log2_table_size must be in 1..={MAX_LOG2_TABLE}, got {}", self.log2_table_size));
        }
        if !(1..=MAX_RESOLUTION).contains(&self.base_resolution) {
            return bad(format!("base_resolution must be in 1..={MAX_RESOLUTION}, got {}", self.base_resolution));
        }
        if let Some(f) = self.finest_resolution {
            if f < self.base_resolution || f > MAX_RESOLUTION {
                return bad(format!(
                    "finest_resolution must be in base_resolution ({})..={MAX_RESOLUTION}, got {f}",
                    self.base_resolution
                ));
            }
        }
        Ok(())
    }
}

impl EncodingSpec for HashGridSpec {
    const FORM: Form = Form::new(
        "hashgrid",
        "hashgrid[:LEVELS:FEATURES:LOG2_TABLE:BASE:FINEST]",
        &["hashgrid", "hashgrid:16:2:19:16:2048"],
        "Instant-NGP, 1 to 6 inputs",
    )
    .aliases(&["hash-grid"]);

    fn from_args(args: &[&str]) -> Result<Self> {
        if args.len() > 5 {
            return Err(EngineError::config(
                FIELD,
                format!(
                    "takes at most 5 arguments (hashgrid:LEVELS:FEATURES:LOG2_TABLE:BASE_RES:FINEST_RES), got {}",
                    args.len()
                ),
            ));
        }
        let d = HashGridSpec::default();
        let finest: Option<usize> = match args.get(4) {
            Some(_) => Some(parse_arg("hashgrid", "finest resolution", args, 4, None)?),
            None => None,
        };
        let spec = HashGridSpec {
            levels: parse_arg("hashgrid", "levels", args, 0, Some(d.levels))?,
            features_per_level: parse_arg("hashgrid", "features per level", args, 1, Some(d.features_per_level))?,
            log2_table_size: parse_arg("hashgrid", "log2 table size", args, 2, Some(d.log2_table_size))?,
            base_resolution: parse_arg("hashgrid", "base resolution", args, 3, Some(d.base_resolution))?,
            finest_resolution: finest,
            finest_from_data: false,
        };
        spec.validate()?;
        Ok(spec)
    }

    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Encoding>> {
        Ok(Box::new(HashGrid::new(self, ctx)?))
    }

    fn default_input_range(&self) -> (f32, f32) {
        (0.0, 1.0)
    }
}

/// One resolution level's layout, fixed at build time.
#[derive(Clone, Debug, PartialEq)]
pub struct Level {
    /// Cells per axis `N_l`.
    pub resolution: u32,
    /// Whether vertices are indexed densely (else hashed).
    pub dense: bool,
    /// Table entries this level uses: `min(T, (N_l + 1)^d)`.
    pub entries: usize,
    /// Start of this level's table in the encoding's parameters.
    pub offset: usize,
}

#[derive(Debug)]
pub struct HashGrid {
    dims: usize,
    features: usize,
    log2_table_size: u32,
    base: usize,
    finest: usize,
    levels: Vec<Level>,
    n_params: usize,
    /// Sparse gradients: per level, the rows its backwards touched since the last clear (`None`: dense mode).
    touched: Option<Vec<std::sync::Mutex<Touched>>>,
}

/// One level's touched rows: a bit per table entry.
#[derive(Debug, Default)]
struct Touched {
    marks: Vec<u64>,
}

impl Touched {
    fn mark(&mut self, entry: usize) {
        self.marks[entry / 64] |= 1u64 << (entry % 64);
    }
}

/// A coordinate the grid can read: f32, or f64 for positions finer than f32 resolves at the finest levels (a
/// resolution of 65536 leaves an f32 coordinate near 0.5 only 8 bits for the position within a cell).
trait Coord: Copy + Send + Sync {
    /// The cell of resolution `n` this coordinate falls in, its position within it (0 to 1), and whether it was
    /// inside [0, 1] (else clamped).
    fn locate(self, n: u32) -> (u32, f32, bool);
}

impl Coord for f32 {
    fn locate(self, n: u32) -> (u32, f32, bool) {
        let pos = self.clamp(0.0, 1.0) * n as f32;
        // x = 1 lands in the last cell at fraction 1 rather than in a cell past the grid. `pos >= 0`, so the
        // truncating cast is the floor (without a call into libm where the target lacks a rounding instruction; a
        // NaN input becomes cell 0).
        let i = (pos as u32).min(n - 1);
        (i, pos - i as f32, (0.0..=1.0).contains(&self))
    }
}

impl Coord for f64 {
    fn locate(self, n: u32) -> (u32, f32, bool) {
        let pos = self.clamp(0.0, 1.0) * n as f64;
        let i = (pos as u32).min(n - 1);
        (i, (pos - i as f64) as f32, (0.0..=1.0).contains(&self))
    }
}

/// One level's view of a sample in `D` dimensions: the `C = 2^D` corner table indices and interpolation weights,
/// plus what the input gradient needs. Sized exactly, so the corner loops have constant trip counts and unroll.
#[derive(Clone, Copy)]
struct Cell<const D: usize, const C: usize> {
    index: [usize; C],
    weight: [f32; C],
    /// Per dimension: position within the cell and whether the input was inside [0, 1] (else clamped, gradient 0).
    frac: [f32; D],
    inside: [bool; D],
}

impl<const D: usize, const C: usize> Cell<D, C> {
    const EMPTY: Self = Cell { index: [0; C], weight: [0.0; C], frac: [0.0; D], inside: [false; D] };
}

/// Rows of a batch whose cells are located, and their table rows asked of memory, before any of them is read or
/// added to: a table larger than the cache costs a miss per corner, and a block's misses then overlap instead of
/// following one another (the tables' gathers and scatters are most of a step; see `docs/challenge.md`).
const PREFETCH_ROWS: usize = 8;

/// Asks for the cache line at `p` ahead of its use. Only a hint: it cannot fault, whatever the address.
#[inline(always)]
fn prefetch(p: *const f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` has no architectural effect beyond the cache; SSE is part of x86-64.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

impl HashGrid {
    /// The parameter group the trainer puts these parameters in (it gives it a larger learning rate).
    pub const PARAM_GROUP: &'static str = "encoding";

    /// The cells of up to [`PREFETCH_ROWS`] rows `x` at `level`, with their corners' rows of `table` prefetched.
    fn cells_ahead<const D: usize, const C: usize, T: Coord>(
        &self,
        level: &Level,
        x: &[T],
        table: &[f32],
    ) -> [Cell<D, C>; PREFETCH_ROWS] {
        let mut cells = [Cell::EMPTY; PREFETCH_ROWS];
        for (cell, x) in cells.iter_mut().zip(x.chunks_exact(D)) {
            *cell = self.cell::<D, C, T>(level, x);
            for &i in &cell.index {
                prefetch(table.as_ptr().wrapping_add(i * self.features));
            }
        }
        cells
    }

    /// Adds `scale` times level `l`'s share of `grad_output` to `table` (its gradient, or with `-rate` its
    /// parameters), marking the rows touched in lazy mode.
    fn scatter<const D: usize, const C: usize, const F: usize, T: Coord>(
        &self,
        l: usize,
        input: &[T],
        grad_output: &[f32],
        table: &mut [f32],
        scale: f32,
        mut touched: Option<&mut Touched>,
    ) {
        let (d, f, width) = (D, row_width::<F>(self.features), self.output_dims());
        let level = &self.levels[l];
        for (x, g) in input.chunks(PREFETCH_ROWS * d).zip(grad_output.chunks(PREFETCH_ROWS * width)) {
            let cells = self.cells_ahead::<D, C, T>(level, x, table);
            for (g, cell) in g.chunks_exact(width).zip(&cells) {
                let g = &g[l * f..(l + 1) * f];
                for c in 0..C {
                    // `1.0 * w` is `w` to the bit: the gradient's sums do not change for the scale.
                    let w = scale * cell.weight[c];
                    if let Some(t) = touched.as_deref_mut() {
                        t.mark(cell.index[c]);
                    }
                    let i = cell.index[c] * f;
                    add_scaled::<F>(&mut table[i..i + f], w, g);
                }
            }
        }
    }

    pub fn new(spec: &HashGridSpec, ctx: &BuildContext) -> Result<Self> {
        spec.validate()?;
        let dims = ctx.input_dims;
        if !(1..=MAX_DIMS).contains(&dims) {
            return Err(EngineError::config(
                FIELD,
                format!(
                    "hash_grid supports 1 to {MAX_DIMS} input dimensions, got {dims}; use fourier or identity instead"
                ),
            ));
        }
        let finest = spec.finest_for(dims);
        if finest < spec.base_resolution {
            return Err(EngineError::config(
                FIELD,
                format!("finest_resolution ({finest}) is below base_resolution ({})", spec.base_resolution),
            ));
        }
        let table = 1usize << spec.log2_table_size;
        let ln_b = if spec.levels > 1 {
            ((finest as f64).ln() - (spec.base_resolution as f64).ln()) / (spec.levels - 1) as f64
        } else {
            0.0
        };
        let mut levels = Vec::with_capacity(spec.levels);
        let mut offset = 0usize;
        for l in 0..spec.levels {
            // The small nudge keeps exact products like 16 * 2^3 from flooring to 127 through rounding.
            let res = ((spec.base_resolution as f64 * (l as f64 * ln_b).exp()) * (1.0 + 1e-9)).floor() as u32;
            let vertices = (res as u64 + 1).checked_pow(dims as u32).unwrap_or(u64::MAX);
            let dense = vertices <= table as u64;
            let entries = if dense { vertices as usize } else { table };
            levels.push(Level { resolution: res, dense, entries, offset });
            offset += entries * spec.features_per_level;
        }
        Ok(HashGrid {
            dims,
            features: spec.features_per_level,
            log2_table_size: spec.log2_table_size,
            base: spec.base_resolution,
            finest,
            levels,
            n_params: offset,
            touched: None,
        })
    }

    pub fn levels(&self) -> &[Level] {
        &self.levels
    }

    fn cell<const D: usize, const C: usize, T: Coord>(&self, level: &Level, x: &[T]) -> Cell<D, C> {
        debug_assert_eq!(C, 1 << D);
        let n = level.resolution;
        let mut base = [0u32; D];
        let mut frac = [0.0f32; D];
        let mut inside = [false; D];
        for k in 0..D {
            (base[k], frac[k], inside[k]) = x[k].locate(n);
        }
        let mut cell = Cell { index: [0; C], weight: [0.0; C], frac, inside };
        let v = n as usize + 1;
        let mask = (1usize << self.log2_table_size) - 1;
        for c in 0..C {
            let mut w = 1.0f32;
            let mut dense_index = 0usize;
            let mut stride = 1usize;
            let mut hash = 0u32;
            for k in 0..D {
                let bit = (c >> k) & 1;
                let coord = base[k] + bit as u32;
                w *= if bit == 1 { frac[k] } else { 1.0 - frac[k] };
                dense_index += coord as usize * stride;
                stride *= v;
                hash ^= coord.wrapping_mul(PRIMES[k]);
            }
            cell.index[c] = if level.dense { dense_index } else { hash as usize & mask };
            cell.weight[c] = w;
        }
        cell
    }

    /// `d weight_c / d frac_k` for corner `c`.
    fn weight_derivative<const D: usize, const C: usize>(cell: &Cell<D, C>, c: usize, k: usize) -> f32 {
        let mut w = if (c >> k) & 1 == 1 { 1.0 } else { -1.0 };
        for j in 0..D {
            if j != k {
                w *= if (c >> j) & 1 == 1 { cell.frac[j] } else { 1.0 - cell.frac[j] };
            }
        }
        w
    }

    fn forward_impl<const D: usize, const C: usize, const F: usize, T: Coord>(
        &self,
        params: &[f32],
        input: &[T],
        output: &mut [f32],
    ) {
        let (d, f) = (D, row_width::<F>(self.features));
        let width = self.output_dims();
        let batch = input.len() / d;
        assert!(params.len() >= self.n_params, "hash_grid forward: {} params, needs {}", params.len(), self.n_params);
        output[..batch * width]
            .par_chunks_mut(rows::ROWS_PER_TASK * width)
            .zip(input.par_chunks(rows::ROWS_PER_TASK * d))
            .for_each(|(out, inp)| {
                // Level-outer: a chunk's lookups into one table run back to back while it is warm in cache.
                for (l, level) in self.levels.iter().enumerate() {
                    let table = &params[level.offset..level.offset + level.entries * f];
                    for (out, inp) in out.chunks_mut(PREFETCH_ROWS * width).zip(inp.chunks(PREFETCH_ROWS * d)) {
                        let cells = self.cells_ahead::<D, C, T>(level, inp, table);
                        for (o, cell) in out.chunks_exact_mut(width).zip(&cells) {
                            interpolate::<C, F, D>(cell, table, &mut o[l * f..(l + 1) * f]);
                        }
                    }
                }
            });
    }

    /// The parameters' half of the backward: every level's gradient into `grad_params`, or, for the hashed levels
    /// when `stepped` holds their parameters (`params[hashed_params()]`) and a rate, `-rate` times it into those.
    fn scatter_levels<const D: usize, const C: usize, const F: usize, T: Coord>(
        &self,
        input: &[T],
        grad_output: &[f32],
        grad_params: &mut [f32],
        stepped: Option<(&mut [f32], f32)>,
    ) {
        let f = row_width::<F>(self.features);
        let (mut hashed_params, rate) = match stepped {
            Some((p, rate)) => (Some(p), rate),
            None => (None, 0.0),
        };
        // One task per level: every level scatters into its own table, so no two threads write the same value and
        // each level adds its rows in order, making the sums independent of the thread count.
        rayon::scope(|s| {
            let mut rest = &mut grad_params[..];
            for (l, level) in self.levels.iter().enumerate() {
                let (grad_table, tail) = rest.split_at_mut(level.entries * f);
                rest = tail;
                if let Some(params) = hashed_params.take_if(|_| !level.dense) {
                    // Hashed levels are the last ones, so their parameters follow one another from here.
                    let (table, tail) = params.split_at_mut(level.entries * f);
                    hashed_params = Some(tail);
                    s.spawn(move |_| self.scatter::<D, C, F, T>(l, input, grad_output, table, -rate, None));
                    continue;
                }
                let touched = self.touched.as_ref().map(|t| &t[l]);
                s.spawn(move |_| {
                    let mut touched = touched.map(|t| t.lock().unwrap_or_else(|e| e.into_inner()));
                    if touched.is_none() {
                        grad_table.fill(0.0);
                    }
                    self.scatter::<D, C, F, T>(l, input, grad_output, grad_table, 1.0, touched.as_deref_mut());
                });
            }
            if self.touched.is_none() {
                rest.fill(0.0);
            }
        });
    }

    fn backward_impl<const D: usize, const C: usize, const F: usize, T: Coord>(
        &self,
        params: &[f32],
        input: &[T],
        grad_output: &[f32],
        grad_params: &mut [f32],
        grad_input: Option<&mut [f32]>,
    ) {
        self.scatter_levels::<D, C, F, T>(input, grad_output, grad_params, None);
        let Some(gx) = grad_input else { return };
        let (d, f) = (D, row_width::<F>(self.features));
        let width = self.output_dims();
        gx.par_chunks_mut(rows::ROWS_PER_TASK * d)
            .zip(input.par_chunks(rows::ROWS_PER_TASK * d))
            .zip(grad_output.par_chunks(rows::ROWS_PER_TASK * width))
            .for_each(|((gx, inp), go)| {
                for ((gx, x), go) in gx.chunks_exact_mut(d).zip(inp.chunks_exact(d)).zip(go.chunks_exact(width)) {
                    let mut acc = [0.0f32; D];
                    for (level, g) in self.levels.iter().zip(go.chunks_exact(f)) {
                        let table = &params[level.offset..level.offset + level.entries * f];
                        let cell = self.cell::<D, C, T>(level, x);
                        let scale = level.resolution as f32;
                        for c in 0..C {
                            let e = &table[cell.index[c] * f..(cell.index[c] + 1) * f];
                            // The corner's contribution to the loss per unit weight.
                            let ge: f32 = e.iter().zip(g).map(|(e, g)| e * g).sum();
                            for (k, a) in acc.iter_mut().enumerate().take(D) {
                                if cell.inside[k] {
                                    *a += scale * ge * Self::weight_derivative::<D, C>(&cell, c, k);
                                }
                            }
                        }
                    }
                    gx.copy_from_slice(&acc);
                }
            });
    }
}

/// `self.method::<D, C, F, T>(args)` for the grid's dimension `D`, its `C = 2^D` corners and its `F` features per
/// level: monomorphised per dimension so that the corner loops have constant trip counts and unroll, and for the
/// common widths of 2 and 4 features so that a row is a few vector lanes instead of a loop of unknown length (the
/// forward and the scatter then take about two thirds of the time; `F = 0` reads the width at run time).
macro_rules! by_dims {
    ($grid:ident.$method:ident::<$t:ty>($($arg:expr),*)) => {
        match $grid.features {
            2 => by_dims!(@dims $grid.$method::<2, $t>($($arg),*)),
            4 => by_dims!(@dims $grid.$method::<4, $t>($($arg),*)),
            _ => by_dims!(@dims $grid.$method::<0, $t>($($arg),*)),
        }
    };
    (@dims $grid:ident.$method:ident::<$f:literal, $t:ty>($($arg:expr),*)) => {
        match $grid.dims {
            1 => $grid.$method::<1, 2, $f, $t>($($arg),*),
            2 => $grid.$method::<2, 4, $f, $t>($($arg),*),
            3 => $grid.$method::<3, 8, $f, $t>($($arg),*),
            4 => $grid.$method::<4, 16, $f, $t>($($arg),*),
            5 => $grid.$method::<5, 32, $f, $t>($($arg),*),
            _ => $grid.$method::<6, 64, $f, $t>($($arg),*),
        }
    };
}

/// `out = sum_c weight_c row_c` over a cell's corners: a level's features for one sample. For `F > 0` the sum stays
/// in registers, a row being a vector's lanes; summed in `out` in place, the corners' sums go through memory (the
/// forward ran 45 % longer so).
#[inline(always)]
fn interpolate<const C: usize, const F: usize, const D: usize>(cell: &Cell<D, C>, table: &[f32], out: &mut [f32]) {
    if F > 0 {
        let mut sum = [0.0f32; F];
        for c in 0..C {
            let (w, i) = (cell.weight[c], cell.index[c] * F);
            let row: &[f32; F] = table[i..i + F].try_into().expect("a row of F values");
            for (s, e) in sum.iter_mut().zip(row) {
                *s += w * e;
            }
        }
        out.copy_from_slice(&sum);
    } else {
        let f = out.len();
        out.fill(0.0);
        for c in 0..C {
            let (w, i) = (cell.weight[c], cell.index[c] * f);
            for (o, e) in out.iter_mut().zip(&table[i..i + f]) {
                *o += w * e;
            }
        }
    }
}

/// `row += w g`, with `F > 0` as one vector of `F` lanes.
#[inline(always)]
fn add_scaled<const F: usize>(row: &mut [f32], w: f32, g: &[f32]) {
    if F > 0 {
        let row: &mut [f32; F] = row.try_into().expect("a row of F values");
        let g: &[f32; F] = g.try_into().expect("a gradient of F values");
        for (e, g) in row.iter_mut().zip(g) {
            *e += w * g;
        }
    } else {
        for (e, g) in row.iter_mut().zip(g) {
            *e += w * g;
        }
    }
}

/// The row width a kernel built for `F` features runs with: `F`, or the grid's own width for `F = 0`.
#[inline(always)]
const fn row_width<const F: usize>(features: usize) -> usize {
    if F == 0 {
        features
    } else {
        F
    }
}

impl Encoding for HashGrid {
    fn describe(&self) -> String {
        let dense = self.levels.iter().filter(|l| l.dense).count();
        format!(
            "hash_grid({} levels x {} features, table 2^{}, resolution {}..{}, {} dense + {} hashed levels, {} params)",
            self.levels.len(),
            self.features,
            self.log2_table_size,
            self.base,
            self.finest,
            dense,
            self.levels.len() - dense,
            self.n_params
        )
    }
    fn input_dims(&self) -> usize {
        self.dims
    }
    fn output_dims(&self) -> usize {
        self.levels.len() * self.features
    }
    fn n_params(&self) -> usize {
        self.n_params
    }
    fn init_params(&self, params: &mut [f32], rng: &mut crate::rng::Rng) {
        // Near-zero tables: the network starts from (almost) constant features and the grid grows detail as
        // gradients arrive, as in Instant-NGP.
        for p in params.iter_mut() {
            *p = rng.gen_range(-1e-4f32..1e-4);
        }
    }
    fn flops_per_sample(&self) -> u64 {
        let corners = 1u64 << self.dims;
        self.levels.len() as u64 * (corners * (self.dims as u64 * 3 + 2 * self.features as u64) + 4 * self.dims as u64)
    }

    fn forward(&self, params: &[f32], input: &[f32], output: &mut [f32]) {
        by_dims!(self.forward_impl::<f32>(params, input, output))
    }

    fn forward_f64(&self, params: &[f32], input: &[f64], output: &mut [f32]) {
        by_dims!(self.forward_impl::<f64>(params, input, output))
    }

    fn backward_f64(
        &self,
        params: &[f32],
        input: &[f64],
        grad_output: &[f32],
        grad_params: &mut [f32],
        grad_input: Option<&mut [f32]>,
    ) {
        by_dims!(self.backward_impl::<f64>(params, input, grad_output, grad_params, grad_input))
    }

    fn enable_sparse_gradients(&mut self) -> bool {
        let touched = self
            .levels
            .iter()
            .map(|l| std::sync::Mutex::new(Touched { marks: vec![0; l.entries.div_ceil(64)] }))
            .collect();
        self.touched = Some(touched);
        true
    }

    fn sparse_row_width(&self) -> usize {
        self.features
    }

    fn hashed_params(&self) -> std::ops::Range<usize> {
        // Levels are built coarse to fine and a level is hashed once its vertices outnumber the table, so the
        // hashed ones are the last.
        let first = self.levels.iter().find(|l| !l.dense).map_or(self.n_params, |l| l.offset);
        first..self.n_params
    }

    fn visit_touched_rows(&self, f: &mut dyn FnMut(&[MarkedRows])) {
        let Some(touched) = &self.touched else { return f(&[]) };
        let guards: [_; MAX_LEVELS] =
            std::array::from_fn(|l| touched.get(l).map(|t| t.lock().unwrap_or_else(|e| e.into_inner())));
        let mut sets = [MarkedRows { first_row: 0, marks: &[] }; MAX_LEVELS];
        for ((set, guard), level) in sets.iter_mut().zip(guards.iter().flatten()).zip(&self.levels) {
            *set = MarkedRows { first_row: level.offset / self.features, marks: &guard.marks };
        }
        f(&sets[..touched.len()]);
    }

    fn clear_touched_rows(&self) {
        for t in self.touched.iter().flatten() {
            t.lock().unwrap_or_else(|e| e.into_inner()).marks.fill(0);
        }
    }

    fn backward(
        &self,
        params: &[f32],
        input: &[f32],
        grad_output: &[f32],
        grad_params: &mut [f32],
        grad_input: Option<&mut [f32]>,
    ) {
        by_dims!(self.backward_impl::<f32>(params, input, grad_output, grad_params, grad_input))
    }

    fn backward_stepping_hashed(
        &self,
        params: &mut [f32],
        input: Mapped,
        grad_output: &[f32],
        grad_params: &mut [f32],
        rate: f32,
    ) {
        let hashed = &mut params[self.hashed_params()];
        match input {
            Mapped::F32(x) => by_dims!(self.scatter_levels::<f32>(x, grad_output, grad_params, Some((hashed, rate)))),
            Mapped::F64(x) => by_dims!(self.scatter_levels::<f64>(x, grad_output, grad_params, Some((hashed, rate)))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::EncodingConfig;
    use crate::gradcheck::{self, Tolerance};
    use crate::rng::seeded;

    fn small() -> HashGridSpec {
        HashGridSpec {
            levels: 4,
            features_per_level: 2,
            log2_table_size: 8,
            base_resolution: 4,
            finest_resolution: Some(32),
            finest_from_data: false,
        }
    }

    fn ctx(dims: usize) -> BuildContext {
        BuildContext { input_dims: dims, seed: 0, max_features: 1 << 20 }
    }

    /// Random inputs at least `margin` (in cells) from every cell boundary of every level, so that central
    /// differences never straddle a kink of the piecewise-linear interpolation.
    fn inputs_off_boundaries(grid: &HashGrid, rows: usize, margin: f32, seed: u64) -> Vec<f32> {
        let mut rng = seeded(seed);
        let mut out = Vec::with_capacity(rows * grid.dims);
        while out.len() < rows * grid.dims {
            let x: f32 = rng.gen_range(0.01..0.99);
            let ok = grid.levels.iter().all(|l| {
                let p = x * l.resolution as f32;
                let fr = p - p.floor();
                fr > margin && fr < 1.0 - margin
            });
            if ok {
                out.push(x);
            }
        }
        out
    }

    #[test]
    fn hash_grid_gradients_match_finite_differences() {
        // Widths 2 and 4 run the kernels built for them, 1 and 3 the width read at run time.
        for (dims, features_per_level) in (1..=MAX_DIMS).flat_map(|d| [1, 2, 3, 4].map(|f| (d, f))) {
            // The coarsest level (5^d vertices) dense, the finer ones hashed.
            let log2_table_size = (5f64.powi(dims as i32).log2().ceil() as u32).max(8);
            let spec = HashGridSpec { log2_table_size, features_per_level, ..small() };
            let grid = HashGrid::new(&spec, &ctx(dims)).unwrap();
            assert!(grid.levels.iter().any(|l| l.dense), "{dims}-D test config must have a dense level");
            if dims > 1 {
                assert!(grid.levels.iter().any(|l| !l.dense), "{dims}-D test config must exercise hashing");
            }
            let mut rng = seeded(dims as u64);
            let mut params = vec![0.0f32; grid.n_params()];
            grid.init_params(&mut params, &mut rng);
            for p in params.iter_mut() {
                *p += rng.gen_range(-0.5f32..0.5);
            }
            let input = inputs_off_boundaries(&grid, 40, 0.1, 10 + dims as u64);
            let tol = Tolerance { eps: 5e-4, rel: 1e-2, abs: 2e-3 };
            gradcheck::check_encoding_at(&grid, &params, &input, &tol)
                .unwrap_or_else(|e| panic!("{dims}-D, {features_per_level} features: {e}"));
        }
    }

    #[test]
    fn hash_grid_selects_dense_and_hashed_levels() {
        let layout = |dims| {
            let g = HashGrid::new(&small(), &ctx(dims)).unwrap();
            g.levels.iter().map(|l| (l.resolution, l.dense, l.entries)).collect::<Vec<_>>()
        };
        // b = (32 / 4)^(1/3) = 2; 2-D vertices: 25, 81, 289 > 256, 1089 > 256.
        assert_eq!(layout(2), vec![(4, true, 25), (8, true, 81), (16, false, 256), (32, false, 256)]);
        assert_eq!(layout(1), vec![(4, true, 5), (8, true, 9), (16, true, 17), (32, true, 33)]);
        assert_eq!(layout(3), vec![(4, true, 125), (8, false, 256), (16, false, 256), (32, false, 256)]);
        let g = HashGrid::new(&small(), &ctx(2)).unwrap();
        assert_eq!(g.n_params(), (25 + 81 + 256 + 256) * 2);
        assert_eq!(g.levels[1].offset, 50);
        assert_eq!(g.levels[3].offset, (25 + 81 + 256) * 2);
        assert_eq!(g.output_dims(), 8);
    }

    #[test]
    fn hash_grid_default_layout() {
        let g = HashGrid::new(&HashGridSpec::default(), &ctx(2)).unwrap();
        let res: Vec<u32> = g.levels.iter().map(|l| l.resolution).collect();
        assert_eq!(res.len(), 16);
        assert_eq!((res[0], res[15]), (16, 2048));
        assert!(res.windows(2).all(|w| w[0] < w[1]), "{res:?}");
        // (N + 1)^2 <= 2^19 exactly while N <= 723.
        for l in &g.levels {
            assert_eq!(l.dense, l.resolution <= 723, "{l:?}");
        }
        assert_eq!(g.output_dims(), 32);
        let g3 = HashGrid::new(&HashGridSpec::default(), &ctx(3)).unwrap();
        assert_eq!(g3.levels.last().unwrap().resolution, 512);
        assert!(g.describe().contains("16 levels"), "{}", g.describe());
    }

    #[test]
    fn hash_grid_interpolates_and_hashes_by_hand() {
        // One dense 1-D level of 4 cells, table value = vertex index: x = 0.3 is 1.2 cells in.
        let spec = HashGridSpec {
            levels: 1,
            features_per_level: 1,
            log2_table_size: 8,
            base_resolution: 4,
            finest_resolution: Some(4),
            finest_from_data: false,
        };
        let g = HashGrid::new(&spec, &ctx(1)).unwrap();
        let params: Vec<f32> = (0..g.n_params()).map(|i| i as f32).collect();
        let mut out = [0.0f32; 3];
        g.forward(&params, &[0.3, -0.5, 1.5], &mut out);
        assert!((out[0] - 1.2).abs() < 1e-6, "{}", out[0]);
        assert_eq!(out[1], 0.0, "clamped to 0");
        assert_eq!(out[2], 4.0, "clamped to 1");
        // One hashed 2-D level of 32 cells and 16 entries: vertex (3, 5) lands at 3 ^ (5 * 2654435761 mod 2^32) mod 16.
        let spec = HashGridSpec {
            levels: 1,
            features_per_level: 1,
            log2_table_size: 4,
            base_resolution: 32,
            finest_resolution: Some(32),
            finest_from_data: false,
        };
        let g = HashGrid::new(&spec, &ctx(2)).unwrap();
        assert!(!g.levels[0].dense);
        let params: Vec<f32> = (0..16).map(|i| i as f32).collect();
        let mut out = [0.0f32; 1];
        g.forward(&params, &[3.0 / 32.0, 5.0 / 32.0], &mut out);
        assert_eq!((3u32 ^ 5u32.wrapping_mul(2_654_435_761)) % 16, 6);
        assert_eq!(out[0], 6.0);
    }

    #[test]
    fn a_dense_level_in_up_to_six_dimensions_interpolates_a_linear_table_exactly() {
        // Table value at vertex (i_0, .., i_{d-1}) = sum_k (k + 1) i_k: d-linear interpolation of a linear function
        // is the function, so the feature at x is sum_k (k + 1) N x_k.
        for dims in 4..=MAX_DIMS {
            let spec = HashGridSpec {
                levels: 1,
                features_per_level: 1,
                log2_table_size: 14,
                base_resolution: 4,
                finest_resolution: Some(4),
                finest_from_data: false,
            };
            let g = HashGrid::new(&spec, &ctx(dims)).unwrap();
            assert!(g.levels[0].dense && g.n_params() == 5usize.pow(dims as u32), "{dims}-D");
            let params: Vec<f32> = (0..g.n_params())
                .map(|mut v| {
                    (0..dims).fold(0.0, |sum, k| {
                        let i = v % 5;
                        v /= 5;
                        sum + (k + 1) as f32 * i as f32
                    })
                })
                .collect();
            let x: Vec<f32> = (0..dims).map(|k| 0.07 + 0.13 * k as f32).collect();
            let mut out = [0.0f32; 1];
            g.forward(&params, &x, &mut out);
            let expected: f32 = x.iter().enumerate().map(|(k, x)| (k + 1) as f32 * 4.0 * x).sum();
            assert!((out[0] - expected).abs() < 1e-4, "{dims}-D: {} against {expected}", out[0]);
        }
    }

    #[test]
    fn hash_grid_input_gradient_is_zero_outside_the_unit_box() {
        let g = HashGrid::new(&small(), &ctx(2)).unwrap();
        let params: Vec<f32> = (0..g.n_params()).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut gp = vec![f32::NAN; g.n_params()];
        let mut gx = [f32::NAN; 2];
        g.backward(&params, &[-0.2, 0.43], &[1.0; 8], &mut gp, Some(&mut gx));
        assert_eq!(gx[0], 0.0);
        assert_ne!(gx[1], 0.0);
        assert!(gp.iter().all(|v| v.is_finite()), "every grad_params value is overwritten");
    }

    #[test]
    fn hash_grid_backward_does_not_depend_on_thread_count() {
        let g = HashGrid::new(&small(), &ctx(2)).unwrap();
        let mut rng = seeded(3);
        let params: Vec<f32> = (0..g.n_params()).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let input: Vec<f32> = (0..2 * 500).map(|_| rng.gen_range(0.0..1.0)).collect();
        let go: Vec<f32> = (0..8 * 500).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let mut gp = vec![f32::NAN; g.n_params()];
                let mut gx = vec![f32::NAN; input.len()];
                g.backward(&params, &input, &go, &mut gp, Some(&mut gx));
                (gp, gx)
            })
        };
        assert_eq!(run(1), run(3));
    }

    #[test]
    fn rows_of_several_features_interpolate_and_scatter_as_one_grid_per_feature() {
        // A grid of F features per level is F grids of one feature on the same cells, each holding one lane of
        // every row: the kernels built for 2 and 4 features must give, to the bit, what the width read at run time
        // gives lane by lane, forward and backward, on dense and hashed levels.
        for (dims, features) in [(2, 2), (2, 4), (3, 2), (3, 4)] {
            let wide = HashGrid::new(&HashGridSpec { features_per_level: features, ..small() }, &ctx(dims)).unwrap();
            let narrow = HashGrid::new(&HashGridSpec { features_per_level: 1, ..small() }, &ctx(dims)).unwrap();
            assert!(wide.levels.iter().any(|l| l.dense) && wide.levels.iter().any(|l| !l.dense));
            let mut rng = seeded(11);
            let rows = 200 + PREFETCH_ROWS / 2;
            let params: Vec<f32> = (0..wide.n_params()).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let input: Vec<f32> = (0..dims * rows).map(|_| rng.gen_range(0.0..1.0)).collect();
            let go: Vec<f32> = (0..wide.output_dims() * rows).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let mut out = vec![f32::NAN; go.len()];
            wide.forward(&params, &input, &mut out);
            let mut grad = vec![f32::NAN; wide.n_params()];
            wide.backward(&params, &input, &go, &mut grad, None);
            let levels = wide.levels.len();
            for lane in 0..features {
                let plane = |v: &[f32]| -> Vec<f32> { v.iter().skip(lane).step_by(features).copied().collect() };
                let lane_params = plane(&params);
                let mut lane_out = vec![f32::NAN; levels * rows];
                narrow.forward(&lane_params, &input, &mut lane_out);
                assert_eq!(lane_out, plane(&out), "{dims}-D, {features} features, lane {lane}: forward");
                let lane_go = plane(&go);
                let mut lane_grad = vec![f32::NAN; narrow.n_params()];
                narrow.backward(&lane_params, &input, &lane_go, &mut lane_grad, None);
                assert_eq!(lane_grad, plane(&grad), "{dims}-D, {features} features, lane {lane}: backward");
            }
        }
    }

    #[test]
    fn stepping_the_hashed_levels_in_the_backward_is_plain_sgd_on_their_gradient() {
        // 2-D small(): levels of 25 and 81 dense vertices, then two hashed tables of 256.
        let g = HashGrid::new(&small(), &ctx(2)).unwrap();
        let hashed = g.hashed_params();
        assert_eq!(hashed, (25 + 81) * 2..g.n_params());
        let mut rng = seeded(5);
        let params: Vec<f32> = (0..g.n_params()).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let input: Vec<f32> = (0..2 * 300).map(|_| rng.gen_range(0.0..1.0)).collect();
        let go: Vec<f32> = (0..8 * 300).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let mut grad = vec![f32::NAN; g.n_params()];
        g.backward(&params, &input, &go, &mut grad, None);
        let rate = 0.25;
        let input64: Vec<f64> = input.iter().map(|&x| x as f64).collect();
        for mapped in [Mapped::F32(&input), Mapped::F64(&input64)] {
            let mut stepped = params.clone();
            // A marker the stepped levels must leave alone: their gradient is never written.
            let mut stepped_grad = vec![7.0f32; g.n_params()];
            g.backward_stepping_hashed(&mut stepped, mapped, &go, &mut stepped_grad, rate);
            assert_eq!(stepped_grad[..hashed.start], grad[..hashed.start], "{mapped:?}: the dense levels' gradient");
            assert!(stepped_grad[hashed.clone()].iter().all(|&v| v == 7.0), "{mapped:?}: hashed gradient untouched");
            assert_eq!(stepped[..hashed.start], params[..hashed.start], "{mapped:?}: dense levels not stepped");
            let mut moved = 0;
            for i in hashed.clone() {
                let want = params[i] - rate * grad[i];
                assert!((stepped[i] - want).abs() <= 1e-5, "{mapped:?}: param {i}: {} against {want}", stepped[i]);
                moved += usize::from(stepped[i] != params[i]);
            }
            assert!(moved > 100, "{mapped:?}: {moved} hashed parameters moved");
        }
    }

    #[test]
    fn large_tables_scatter_every_corner_once_whatever_the_threads() {
        // Levels of 4,225 and about 122,000 dense rows and one of 2^17 hashed ones; a batch that ends in a partial
        // block of prefetched rows.
        let spec = HashGridSpec {
            levels: 3,
            features_per_level: 2,
            log2_table_size: 17,
            base_resolution: 64,
            finest_resolution: Some(1900),
            finest_from_data: false,
        };
        let g = HashGrid::new(&spec, &ctx(2)).unwrap();
        assert!(g.levels[1].dense && !g.levels[2].dense);
        let mut rng = seeded(5);
        let params: Vec<f32> = (0..g.n_params()).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let rows = 3000 + PREFETCH_ROWS / 2 + 1;
        let input: Vec<f32> = (0..2 * rows).map(|_| rng.gen_range(0.0..1.0)).collect();
        let go: Vec<f32> = (0..g.output_dims() * rows).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let mut gp = vec![f32::NAN; g.n_params()];
                g.backward(&params, &input, &go, &mut gp, None);
                gp
            })
        };
        let gp = run(1);
        assert_eq!(gp, run(2));
        assert_eq!(gp, run(3));
        // The encoding is linear in its parameters, so <go, forward(p)> = <backward(go), p>: every corner's
        // weighted gradient lands in its row exactly once, none lost at a block's edge nor added twice.
        let mut out = vec![0.0; go.len()];
        g.forward(&params, &input, &mut out);
        let lhs: f64 = go.iter().zip(&out).map(|(a, b)| *a as f64 * *b as f64).sum();
        let rhs: f64 = gp.iter().zip(&params).map(|(a, b)| *a as f64 * *b as f64).sum();
        assert!((lhs - rhs).abs() < 1e-4 * lhs.abs().max(1.0), "{lhs} vs {rhs}");
    }

    #[test]
    fn a_fixed_training_set_caps_the_finest_resolution_at_its_spacing() {
        let spec = HashGridSpec { finest_resolution: Some(32768), finest_from_data: true, ..Default::default() };
        // 131,072 points in 2-D: 362 per axis, 1.5 cells each.
        let image = spec.fitted_to_samples(2, Some(131_072));
        assert_eq!((image.finest_resolution, image.base_resolution, image.finest_from_data), (Some(544), 16, false));
        // 16,000 rows in five dimensions: 6.9 per axis, so 11 cells, and the base no finer.
        let table = spec.fitted_to_samples(5, Some(16_000));
        assert_eq!((table.finest_resolution, table.base_resolution), (Some(11), 11));
        assert!(HashGrid::new(&table, &ctx(5)).is_ok());
        // Drawn without end (on the fly), or more points than the configured finest needs: the configured value.
        assert_eq!(spec.fitted_to_samples(2, None).finest_resolution, Some(32768));
        assert_eq!(spec.fitted_to_samples(2, Some(1 << 40)).finest_resolution, Some(32768));
        // Without the flag nothing changes.
        let fixed = HashGridSpec { finest_from_data: false, ..spec.clone() };
        assert_eq!(fixed.fitted_to_samples(2, Some(100)), fixed);
        // The flag round-trips through TOML and is left out of configs that do not set it.
        let text = toml::to_string(&spec).unwrap();
        assert!(text.contains("finest_from_data = true"), "{text}");
        assert!(!toml::to_string(&fixed).unwrap().contains("finest_from_data"));
        assert_eq!(toml::from_str::<HashGridSpec>(&text).unwrap(), spec);
    }

    #[test]
    fn hash_grid_init_is_small_uniform() {
        let g = HashGrid::new(&small(), &ctx(2)).unwrap();
        let mut p = vec![1.0f32; g.n_params()];
        g.init_params(&mut p, &mut seeded(1));
        assert!(p.iter().all(|v| v.abs() < 1e-4));
        assert!(p.iter().any(|v| *v > 5e-5) && p.iter().any(|v| *v < -5e-5));
        assert_eq!(HashGrid::PARAM_GROUP, "encoding");
    }

    #[test]
    fn hash_grid_refuses_bad_config() {
        let e = HashGridSpec::default().build(&ctx(7)).unwrap_err().to_string();
        assert!(e.contains("1 to 6 input dimensions, got 7"), "{e}");
        assert!(HashGridSpec::default().build(&ctx(0)).is_err());
        let e = EncodingConfig::parse("hashgrid:0").unwrap_err().to_string();
        assert!(e.contains("levels must be in 1..=32, got 0"), "{e}");
        let e = EncodingConfig::parse("hashgrid:abc").unwrap_err().to_string();
        assert!(e.contains("'abc'"), "{e}");
        assert!(EncodingConfig::parse("hashgrid:16:2:19:64:32").unwrap_err().to_string().contains("finest_resolution"));
        assert!(EncodingConfig::parse("hashgrid:16:2:40").is_err());
        assert!(EncodingConfig::parse("hashgrid:1:2:3:4:5:6").is_err());
        // The 3-D default finest (512) is below an explicit base of 1024.
        let spec = HashGridSpec { base_resolution: 1024, ..HashGridSpec::default() };
        assert!(spec.build(&ctx(3)).unwrap_err().to_string().contains("below base_resolution"));
    }

    #[test]
    fn hash_grid_parses_cli_and_round_trips_toml() {
        assert_eq!(EncodingConfig::parse("hashgrid").unwrap(), EncodingConfig::HashGrid(HashGridSpec::default()));
        let full = EncodingConfig::parse("hashgrid:8:4:16:8:512").unwrap();
        let want = HashGridSpec {
            levels: 8,
            features_per_level: 4,
            log2_table_size: 16,
            base_resolution: 8,
            finest_resolution: Some(512),
            finest_from_data: false,
        };
        assert_eq!(full, EncodingConfig::HashGrid(want));
        assert_eq!(
            EncodingConfig::parse("hashgrid:12").unwrap(),
            EncodingConfig::HashGrid(HashGridSpec { levels: 12, ..HashGridSpec::default() })
        );
        assert_eq!(EncodingConfig::parse("hashgrid").unwrap().default_input_range(), (0.0, 1.0));
        for c in [full, EncodingConfig::HashGrid(HashGridSpec::default())] {
            let text = toml::to_string(&c).unwrap();
            assert!(text.contains("type = \"hash_grid\""), "{text}");
            assert_eq!(toml::from_str::<EncodingConfig>(&text).unwrap(), c);
        }
        let parsed: EncodingConfig = toml::from_str("type = \"hash_grid\"\nlevels = 8").unwrap();
        assert_eq!(parsed, EncodingConfig::HashGrid(HashGridSpec { levels: 8, ..HashGridSpec::default() }));
        assert!(toml::from_str::<EncodingConfig>("type = \"hash_grid\"\nlevel = 8").is_err());
    }

    /// Timing of the default 2-D grid: `cargo test --release hash_grid_speed -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn hash_grid_speed() {
        let g = HashGrid::new(&HashGridSpec::default(), &ctx(2)).unwrap();
        let batch = 8192;
        let mut rng = seeded(1);
        let mut params = vec![0.0f32; g.n_params()];
        g.init_params(&mut params, &mut rng);
        let input: Vec<f32> = (0..2 * batch).map(|_| rng.gen_range(0.0..1.0)).collect();
        let mut out = vec![0.0f32; batch * g.output_dims()];
        let mut gp = vec![0.0f32; g.n_params()];
        let mut gx = vec![0.0f32; 2 * batch];
        let t = std::time::Instant::now();
        for _ in 0..10 {
            g.forward(&params, &input, &mut out);
        }
        let f = t.elapsed() / 10;
        let t = std::time::Instant::now();
        for _ in 0..10 {
            g.backward(&params, &input, &out, &mut gp, None);
        }
        let b = t.elapsed() / 10;
        let t = std::time::Instant::now();
        for _ in 0..10 {
            g.backward(&params, &input, &out, &mut gp, Some(&mut gx));
        }
        println!("{}: forward {f:?}, backward {b:?}, with input grad {:?}", g.describe(), t.elapsed() / 10);
    }
}
