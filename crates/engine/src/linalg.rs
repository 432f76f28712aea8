//! Matrix products on the CPU.
//!
//! All buffers are row-major `[rows, cols]` f32 slices. Model code calls [`matmul`]. There is no backend trait here:
//! the whole engine (encodings, activations, loss, optimizer) runs on host slices, so a GPU backend would plug in at
//! the trainer, not at the products (docs/engine.md, "Where a GPU backend would go").

use crate::openblas::{self, Provider};
use gemm_common::Parallelism;

/// `dst = (read_dst ? dst : 0) + lhs rhs` through the f32 kernels of the `gemm` crates, as `gemm::gemm` calls them
/// for f32 (strides non-negative, as all of ours are).
#[allow(clippy::too_many_arguments)]
unsafe fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_cs: isize,
    dst_rs: isize,
    read_dst: bool,
    lhs: *const f32,
    lhs_cs: isize,
    lhs_rs: isize,
    rhs: *const f32,
    rhs_cs: isize,
    rhs_rs: isize,
    parallelism: Parallelism,
) {
    debug_assert!(dst_cs >= 0 && dst_rs >= 0 && lhs_cs >= 0 && lhs_rs >= 0 && rhs_cs >= 0 && rhs_rs >= 0);
    // The microkernels prefer a column-major destination: a row-major one is computed as its transpose,
    // dst^T = rhs^T lhs^T, exactly as `gemm::gemm` does.
    let (m, n, dst_cs, dst_rs, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs) = if dst_cs < dst_rs {
        (n, m, dst_rs, dst_cs, rhs, rhs_rs, rhs_cs, lhs, lhs_rs, lhs_cs)
    } else {
        (m, n, dst_cs, dst_rs, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs)
    };
    gemm_f32::gemm::f32::get_gemm_fn()(
        m,
        n,
        k,
        dst,
        dst_cs,
        dst_rs,
        read_dst,
        lhs,
        lhs_cs,
        lhs_rs,
        rhs,
        rhs_cs,
        rhs_rs,
        1.0,
        1.0,
        false,
        false,
        false,
        parallelism,
    )
}

/// Whether an operand is used as stored or transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    N,
    T,
}

/// Checks a product's operand sizes (panicking with `name` when one is too short: a bug in the caller) and does the
/// whole of a product with nothing to sum (`m`, `n` or `k` zero). Returns true when nothing is left to compute.
pub(crate) fn empty_product(
    name: &str,
    (m, n, k): (usize, usize, usize),
    (a_len, b_len): (usize, usize),
    c: &mut [f32],
    accumulate: bool,
) -> bool {
    assert!(a_len >= m * k, "{name}: lhs has {a_len} elements, needs {}", m * k);
    assert!(b_len >= k * n, "{name}: rhs has {b_len} elements, needs {}", k * n);
    assert!(c.len() >= m * n, "{name}: dst has {} elements, needs {}", c.len(), m * n);
    if m == 0 || n == 0 {
        return true;
    }
    if k == 0 {
        if !accumulate {
            c[..m * n].fill(0.0);
        }
        return true;
    }
    false
}

/// The CPU backend: the `gemm` crate (AVX-512 kernels when the CPU has them, chosen at run time), or OpenBLAS where
/// it is faster and installed (see [`crate::openblas`]), on Rayon's pool.
///
/// Parallel products are cut into a fixed number of single-threaded gemm calls per thread (by rows, or by depth
/// with partial results added in a fixed order), so a result depends only on the number of threads.
pub struct Cpu;

/// Below this many multiply-adds a product runs on one thread: waking the pool costs more than it saves.
const PARALLEL_THRESHOLD: usize = 1 << 18;

fn strides(op: Op, rows: usize, cols: usize) -> (isize, isize) {
    // (column stride, row stride) of the logical [rows, cols] operand.
    match op {
        Op::N => (1, cols as isize),
        Op::T => (rows as isize, 1),
    }
}

impl Cpu {
    /// `c[m, n] = (accumulate ? c : 0) + op(a)[m, k] * op(b)[k, n]`.
    /// `a` is stored `[m, k]` for `Op::N` and `[k, m]` for `Op::T`; likewise `b` is `[k, n]` or `[n, k]`.
    #[allow(clippy::too_many_arguments)]
    fn matmul(
        &self,
        m: usize,
        n: usize,
        k: usize,
        a: &[f32],
        op_a: Op,
        b: &[f32],
        op_b: Op,
        c: &mut [f32],
        accumulate: bool,
    ) {
        if empty_product("matmul", (m, n, k), (a.len(), b.len()), c, accumulate) {
            return;
        }
        let threads = rayon::current_num_threads();
        // Inside a Rayon task (e.g. chunked inference) the pool is already busy: nesting would only add overhead.
        let nested = rayon::current_thread_index().is_some();
        if threads == 1 || nested || m * n * k < PARALLEL_THRESHOLD {
            // SAFETY: the asserts above keep every index inside the slices; `c` does not alias `a` or `b`.
            unsafe { gemm_serial(m, n, k, a.as_ptr(), op_a, b.as_ptr(), op_b, c.as_mut_ptr(), n, accumulate) };
            return;
        }
        let parts = threads * PARTS_PER_THREAD;
        // Tall products (forward X W^T, input gradients G W) split by rows; deep ones with a small result (weight
        // gradients G^T X, k = batch) split by depth, which gemm's own threading handles poorly.
        if m >= parts * MIN_ROWS_PER_PART && m >= k {
            split_rows(m, n, k, a, op_a, b, op_b, c, accumulate, parts);
            return;
        }
        if k >= parts * MIN_DEPTH_PER_PART && k >= 4 * m.max(n) {
            split_depth(m, n, k, a, op_a, b, op_b, c, accumulate, parts);
            return;
        }
        let (a_cs, a_rs) = strides(op_a, m, k);
        let (b_cs, b_rs) = strides(op_b, k, n);
        // SAFETY: as above.
        unsafe {
            sgemm(
                m,
                n,
                k,
                c.as_mut_ptr(),
                1,
                n as isize,
                accumulate,
                a.as_ptr(),
                a_cs,
                a_rs,
                b.as_ptr(),
                b_cs,
                b_rs,
                Parallelism::Rayon(threads),
            );
        }
    }
}

/// Parallel products are cut into this many independent single-threaded pieces per thread: a few more pieces than
/// threads let Rayon balance the load when another process takes a core, and there is no barrier inside a piece.
const PARTS_PER_THREAD: usize = 2;
/// Smallest row block of a row-split product.
const MIN_ROWS_PER_PART: usize = 128;
/// Smallest depth block of a depth-split product.
const MIN_DEPTH_PER_PART: usize = 256;

/// Send-able raw pointer for handing disjoint pieces of one buffer to Rayon tasks.
#[derive(Clone, Copy)]
struct SendPtr<T>(T);
// SAFETY: used only for pieces that the tasks access disjointly (writes) or read-only.
unsafe impl<T> Send for SendPtr<T> {}
unsafe impl<T> Sync for SendPtr<T> {}

/// `c[m, n] (row stride ldc) = (acc ? c : 0) + op(a) op(b)` on the calling thread.
///
/// # Safety
/// The pointers must cover the operands as laid out by `op_a`, `op_b` with leading dimensions `m`/`k`/`n` of the
/// full matrices they belong to (see the callers), and `c` must not alias them.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_strided(
    m: usize,
    n: usize,
    k: usize,
    a: *const f32,
    a_cs: isize,
    a_rs: isize,
    b: *const f32,
    b_cs: isize,
    b_rs: isize,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    if let Provider::OpenBlas(blas) = openblas::provider() {
        if blas.sgemm((m, n, k), (a, a_cs, a_rs), (b, b_cs, b_rs), c, ldc, accumulate) {
            return;
        }
    }
    sgemm(m, n, k, c, 1, ldc as isize, accumulate, a, a_cs, a_rs, b, b_cs, b_rs, Parallelism::None);
}

/// A whole product on the calling thread.
///
/// # Safety
/// As [`gemm_strided`] with the operands' own sizes.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_serial(
    m: usize,
    n: usize,
    k: usize,
    a: *const f32,
    op_a: Op,
    b: *const f32,
    op_b: Op,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    let (a_cs, a_rs) = strides(op_a, m, k);
    let (b_cs, b_rs) = strides(op_b, k, n);
    gemm_strided(m, n, k, a, a_cs, a_rs, b, b_cs, b_rs, c, ldc, accumulate);
}

/// Splits the rows of `c` (and of `op(a)`) into `parts` blocks computed independently on Rayon's pool.
#[allow(clippy::too_many_arguments)]
fn split_rows(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    op_a: Op,
    b: &[f32],
    op_b: Op,
    c: &mut [f32],
    accumulate: bool,
    parts: usize,
) {
    use rayon::prelude::*;
    let rows = m.div_ceil(parts).next_multiple_of(16);
    let (a_cs, a_rs) = strides(op_a, m, k);
    let (b_cs, b_rs) = strides(op_b, k, n);
    let (ap, bp) = (SendPtr(a.as_ptr()), SendPtr(b.as_ptr()));
    c[..m * n].par_chunks_mut(rows * n).enumerate().for_each(|(i, cc)| {
        let (ap, bp) = (ap, bp);
        let r0 = i * rows;
        let mr = cc.len() / n;
        // SAFETY: row r0 of op(a) starts at offset r0 * a_rs; the block stays inside `a` (m rows) and `cc` is this
        // task's own rows of `c`.
        unsafe {
            gemm_strided(
                mr,
                n,
                k,
                ap.0.offset(r0 as isize * a_rs),
                a_cs,
                a_rs,
                bp.0,
                b_cs,
                b_rs,
                cc.as_mut_ptr(),
                n,
                accumulate,
            )
        };
    });
}

/// `dst[cols, rows] = src[rows, cols]^T`, in square tiles so that both sides stay in L1 while a tile is copied.
pub fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    const TILE: usize = 16;
    assert!(src.len() >= rows * cols && dst.len() >= rows * cols, "transpose: buffers shorter than {rows}x{cols}");
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                for c in c0..(c0 + TILE).min(cols) {
                    dst[c * rows + r] = src[r * cols + c];
                }
            }
        }
    }
}

/// Runs `f` with this thread's reusable buffer from `key`, taken out of it for the duration. While `f` waits on
/// Rayon, work stealing may run another task on this thread that wants the same buffer; that task gets an empty one
/// (and allocates) instead of a second borrow of the cell, which would panic. The larger buffer is kept afterwards.
pub(crate) fn with_scratch<T, R>(
    key: &'static std::thread::LocalKey<std::cell::RefCell<Vec<T>>>,
    f: impl FnOnce(&mut Vec<T>) -> R,
) -> R {
    let mut buf = key.take();
    let result = f(&mut buf);
    key.with_borrow_mut(|slot| {
        if slot.capacity() < buf.capacity() {
            *slot = buf;
        }
    });
    result
}

thread_local! {
    /// Partial products of depth-split products: grown once to the largest size needed, then reused.
    static PARTIALS: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Splits the depth `k` into `parts` blocks: block 0 goes straight into `c`, the others into partial buffers that
/// are then added to `c` in block order, so the result depends only on `parts`.
#[allow(clippy::too_many_arguments)]
fn split_depth(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    op_a: Op,
    b: &[f32],
    op_b: Op,
    c: &mut [f32],
    accumulate: bool,
    parts: usize,
) {
    use rayon::prelude::*;
    let depth = k.div_ceil(parts).next_multiple_of(16);
    let parts = k.div_ceil(depth);
    let (a_cs, a_rs) = strides(op_a, m, k);
    let (b_cs, b_rs) = strides(op_b, k, n);
    let (ap, bp) = (SendPtr(a.as_ptr()), SendPtr(b.as_ptr()));
    let mn = m * n;
    with_scratch(&PARTIALS, |partials| {
        if partials.len() < (parts - 1) * mn {
            partials.resize((parts - 1) * mn, 0.0);
        }
        let cp = SendPtr(c.as_mut_ptr());
        let pp = SendPtr(partials.as_mut_ptr());
        (0..parts).into_par_iter().for_each(|p| {
            let (ap, bp, cp, pp) = (ap, bp, cp, pp);
            let k0 = p * depth;
            let kp = depth.min(k - k0);
            let (dst, acc) = if p == 0 { (cp.0, accumulate) } else { (unsafe { pp.0.add((p - 1) * mn) }, false) };
            // SAFETY: depth p0 of op(a) is column k0 (offset k0 * a_cs), of op(b) row k0 (offset k0 * b_rs); each
            // block writes its own destination.
            unsafe {
                gemm_strided(
                    m,
                    n,
                    kp,
                    ap.0.offset(k0 as isize * a_cs),
                    a_cs,
                    a_rs,
                    bp.0.offset(k0 as isize * b_rs),
                    b_cs,
                    b_rs,
                    dst,
                    n,
                    acc,
                )
            };
        });
        const CHUNK: usize = 1 << 12;
        let partials = &partials[..(parts - 1) * mn];
        c[..mn].par_chunks_mut(CHUNK).enumerate().for_each(|(i, cc)| {
            let off = i * CHUNK;
            for p in 0..parts - 1 {
                let src = &partials[p * mn + off..p * mn + off + cc.len()];
                for (x, y) in cc.iter_mut().zip(src) {
                    *x += y;
                }
            }
        });
    });
}

/// `c[m, n] = (accumulate ? c : 0) + op(a)[m, k] * op(b)[k, n]`, with `a` stored `[m, k]` for `Op::N` and `[k, m]`
/// for `Op::T` (likewise `b`).
#[allow(clippy::too_many_arguments)]
pub fn matmul(m: usize, n: usize, k: usize, a: &[f32], op_a: Op, b: &[f32], op_b: Op, c: &mut [f32], accumulate: bool) {
    Cpu.matmul(m, n, k, a, op_a, b, op_b, c, accumulate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: &[f32], op_a: Op, b: &[f32], op_b: Op) -> Vec<f32> {
        let at = |i: usize, p: usize| if op_a == Op::N { a[i * k + p] } else { a[p * m + i] };
        let bt = |p: usize, j: usize| if op_b == Op::N { b[p * n + j] } else { b[j * k + p] };
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| at(i, p) as f64 * bt(p, j) as f64).sum::<f64>() as f32;
            }
        }
        c
    }

    #[test]
    fn a_scratch_buffer_in_use_is_not_borrowed_twice() {
        thread_local! {
            static BUF: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        with_scratch(&BUF, |outer| {
            outer.resize(10, 1.0);
            // What work stealing does: another task on this thread wants the buffer while it is in use.
            with_scratch(&BUF, |inner| {
                assert!(inner.is_empty(), "the nested task gets a buffer of its own");
                inner.resize(100, 2.0);
            });
            assert_eq!(outer.len(), 10);
        });
        BUF.with_borrow(|b| assert!(b.capacity() >= 100, "the larger buffer is kept for next time"));
    }

    #[test]
    fn matmul_matches_naive_for_every_transpose() {
        let (m, n, k) = (37, 29, 53);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 97) as f32 / 97.0 - 0.5).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 104729) % 89) as f32 / 89.0 - 0.5).collect();
        for op_a in [Op::N, Op::T] {
            for op_b in [Op::N, Op::T] {
                let want = naive(m, n, k, &a, op_a, &b, op_b);
                let mut c = vec![1.0; m * n];
                matmul(m, n, k, &a, op_a, &b, op_b, &mut c, false);
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - y).abs() < 1e-4, "{op_a:?}{op_b:?}: {x} vs {y}");
                }
                let mut acc = vec![1.0; m * n];
                matmul(m, n, k, &a, op_a, &b, op_b, &mut acc, true);
                for (x, y) in acc.iter().zip(&want) {
                    assert!((x - (y + 1.0)).abs() < 1e-4);
                }
            }
        }
    }

    #[test]
    fn openblas_matches_naive_for_every_layout_and_edge() {
        let blas = match openblas::OpenBlas::load() {
            Ok(blas) => blas,
            Err(e) => {
                eprintln!("skipped: {e}");
                return;
            }
        };
        // Single rows, columns and depths have strides that BLAS does not accept as given.
        for (m, n, k) in [(37, 29, 53), (1, 29, 53), (37, 1, 53), (37, 29, 1), (1, 1, 1), (300, 260, 258)] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 97) as f32 / 97.0 - 0.5).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 104729) % 89) as f32 / 89.0 - 0.5).collect();
            for op_a in [Op::N, Op::T] {
                for op_b in [Op::N, Op::T] {
                    let want = naive(m, n, k, &a, op_a, &b, op_b);
                    let (a_cs, a_rs) = strides(op_a, m, k);
                    let (b_cs, b_rs) = strides(op_b, k, n);
                    // Rows of c 3 floats apart beyond n, the padding left alone; NaN where c is overwritten.
                    let ldc = n + 3;
                    for accumulate in [false, true] {
                        let before = if accumulate { 1.0 } else { f32::NAN };
                        let mut c = vec![before; m * ldc];
                        // SAFETY: the operands are laid out as their strides say; c has m rows of ldc floats.
                        let done = unsafe {
                            blas.sgemm(
                                (m, n, k),
                                (a.as_ptr(), a_cs, a_rs),
                                (b.as_ptr(), b_cs, b_rs),
                                c.as_mut_ptr(),
                                ldc,
                                accumulate,
                            )
                        };
                        assert!(done, "{m}x{n}x{k} {op_a:?}{op_b:?}: every row-major layout has a BLAS equivalent");
                        for i in 0..m {
                            for j in 0..n {
                                let (x, y) = (c[i * ldc + j], want[i * n + j] + if accumulate { 1.0 } else { 0.0 });
                                let tol = 1e-4 * (1.0 + y.abs()) * (k as f32).sqrt();
                                assert!(
                                    (x - y).abs() < tol,
                                    "{m}x{n}x{k} {op_a:?}{op_b:?} acc {accumulate}: {x} vs {y}"
                                );
                            }
                            let pad = &c[i * ldc + n..(i + 1) * ldc];
                            assert!(
                                pad.iter().all(|v| v.to_bits() == before.to_bits()),
                                "row {i}'s padding was written"
                            );
                        }
                    }
                }
            }
        }
        // A layout with no unit stride is handed back to the caller.
        let (a, b, mut c) = (vec![1.0f32; 64], vec![1.0f32; 64], vec![0.0f32; 16]);
        assert!(!unsafe { blas.sgemm((4, 4, 4), (a.as_ptr(), 2, 8), (b.as_ptr(), 1, 4), c.as_mut_ptr(), 4, false) });
    }

    #[test]
    fn row_and_depth_split_products_match_naive_and_repeat_bitwise() {
        // Large enough to run in parallel: tall products split by rows, deep ones by depth.
        for (m, n, k) in [(1100, 21, 30), (9, 13, 9000), (1, 40, 9000), (700, 3, 200)] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 97) as f32 / 97.0 - 0.5).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 104729) % 89) as f32 / 89.0 - 0.5).collect();
            for op_a in [Op::N, Op::T] {
                for op_b in [Op::N, Op::T] {
                    let want = naive(m, n, k, &a, op_a, &b, op_b);
                    let mut c = vec![f32::NAN; m * n];
                    matmul(m, n, k, &a, op_a, &b, op_b, &mut c, false);
                    let mut acc = vec![1.0; m * n];
                    matmul(m, n, k, &a, op_a, &b, op_b, &mut acc, true);
                    let mut again = vec![0.0; m * n];
                    matmul(m, n, k, &a, op_a, &b, op_b, &mut again, false);
                    for ((x, s), y) in c.iter().zip(&acc).zip(&want) {
                        let tol = 1e-4 * (1.0 + y.abs()) * (k as f32).sqrt();
                        assert!((x - y).abs() < tol, "{m}x{n}x{k} {op_a:?}{op_b:?}: {x} vs {y}");
                        assert!((s - (y + 1.0)).abs() < tol, "{m}x{n}x{k} {op_a:?}{op_b:?} accumulate: {s} vs {y}");
                    }
                    assert!(c.iter().zip(&again).all(|(x, y)| x.to_bits() == y.to_bits()));
                }
            }
        }
    }
}
