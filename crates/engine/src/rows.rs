//! How row-parallel work over row-major `[batch, width]` buffers is split into Rayon tasks.
//!
//! Every split is a fixed number of rows, never a function of the thread count, so that reductions (parameter
//! gradients summed over tasks) add in the same order and a run's results are the same on any pool.

/// Element-wise passes (bias and activation, forward and backward) and the per-dimension encodings: tens to a few
/// hundred values per row, so 64 rows make a task worth scheduling.
pub const ROWS_PER_TASK: usize = 64;

/// The full Fourier series: hundreds to thousands of features per row, so fewer rows already fill a task.
pub const SERIES_ROWS_PER_TASK: usize = 16;

/// The head: one to a few outputs per row, so a task needs more rows.
pub const HEAD_ROWS_PER_TASK: usize = 256;
