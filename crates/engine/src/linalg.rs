//! Matrix products and the backend trait behind them.
//!
//! All buffers are row-major `[rows, cols]` f32 slices. Model code calls [`matmul`], which forwards to the active
//! [`Backend`]; a GPU backend would implement the same trait.

use gemm::Parallelism;

/// Whether an operand is used as stored or transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    N,
    T,
}

pub trait Backend: Send + Sync {
    fn name(&self) -> &'static str;
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
    );
}

/// The CPU backend: the `gemm` crate (AVX-512 kernels when the CPU has them, chosen at run time) on Rayon's pool.
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

impl Backend for Cpu {
    fn name(&self) -> &'static str {
        "cpu"
    }

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
        assert!(a.len() >= m * k, "matmul: lhs has {} elements, needs {}", a.len(), m * k);
        assert!(b.len() >= k * n, "matmul: rhs has {} elements, needs {}", b.len(), k * n);
        assert!(c.len() >= m * n, "matmul: dst has {} elements, needs {}", c.len(), m * n);
        if m == 0 || n == 0 {
            return;
        }
        if k == 0 {
            if !accumulate {
                c[..m * n].fill(0.0);
            }
            return;
        }
        let (a_cs, a_rs) = strides(op_a, m, k);
        let (b_cs, b_rs) = strides(op_b, k, n);
        let threads = rayon::current_num_threads();
        // Inside a Rayon task (e.g. chunked inference) the pool is already busy: nesting would only add overhead.
        let nested = rayon::current_thread_index().is_some();
        let parallelism = if threads > 1 && !nested && m * n * k >= PARALLEL_THRESHOLD {
            Parallelism::Rayon(threads)
        } else {
            Parallelism::None
        };
        // SAFETY: the asserts above keep every index the strides can reach inside the three slices, and `c` does
        // not alias `a` or `b` (it is borrowed mutably).
        unsafe {
            gemm::gemm(
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
                1.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
    }
}

static CPU: Cpu = Cpu;

pub fn backend() -> &'static dyn Backend {
    &CPU
}

/// `c = (accumulate ? c : 0) + op(a) * op(b)` on the active backend. See [`Backend::matmul`].
#[allow(clippy::too_many_arguments)]
pub fn matmul(m: usize, n: usize, k: usize, a: &[f32], op_a: Op, b: &[f32], op_b: Op, c: &mut [f32], accumulate: bool) {
    backend().matmul(m, n, k, a, op_a, b, op_b, c, accumulate)
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
}
