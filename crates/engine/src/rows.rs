//! Row-parallel helpers over row-major `[batch, width]` buffers.

/// Rows per Rayon task: fixed, so results never depend on the number of threads.
pub const ROWS_PER_TASK: usize = 128;
