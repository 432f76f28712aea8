//! Row-parallel helpers over row-major `[batch, width]` buffers.

use rayon::prelude::*;

/// Rows per Rayon task: fixed, so results never depend on the number of threads.
pub const ROWS_PER_TASK: usize = 128;

/// Copies every row of `src` (`src_width` wide) into columns `col..col + src_width` of `dst` (`dst_width` wide).
pub fn copy_into_columns(dst: &mut [f32], dst_width: usize, col: usize, src: &[f32], src_width: usize) {
    if src_width == 0 {
        return;
    }
    dst.par_chunks_mut(ROWS_PER_TASK * dst_width).zip(src.par_chunks(ROWS_PER_TASK * src_width)).for_each(|(d, s)| {
        for (dr, sr) in d.chunks_exact_mut(dst_width).zip(s.chunks_exact(src_width)) {
            dr[col..col + src_width].copy_from_slice(sr);
        }
    });
}

/// Adds (or with `overwrite`, stores) columns `col..col + dst_width` of every row of `src` into `dst`.
pub fn take_columns(dst: &mut [f32], dst_width: usize, src: &[f32], src_width: usize, col: usize, overwrite: bool) {
    if dst_width == 0 {
        return;
    }
    dst.par_chunks_mut(ROWS_PER_TASK * dst_width).zip(src.par_chunks(ROWS_PER_TASK * src_width)).for_each(|(d, s)| {
        for (dr, sr) in d.chunks_exact_mut(dst_width).zip(s.chunks_exact(src_width)) {
            let sr = &sr[col..col + dst_width];
            if overwrite {
                dr.copy_from_slice(sr);
            } else {
                for (a, b) in dr.iter_mut().zip(sr) {
                    *a += b;
                }
            }
        }
    });
}
