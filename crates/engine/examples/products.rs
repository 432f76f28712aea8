//! The per-block matrix products of the training step, measured alone against the FMA peak of this CPU measured in
//! the same run: where a step's time goes when 90 % of it is GEMM, and how much of that is the kernel and how much
//! is the cache state its operands arrive in.
//!
//!     cargo run --release -p approxlab-engine --example products [-- SECONDS_PER_ROW]
//!
//! `APPROXLAB_GEMM=gemm` or `=openblas` chooses the kernels (see `approxlab_engine::openblas`).
//!
//! Each product runs on one thread ("1 thread") and on two threads at once, each with its own operands ("2 at once",
//! GFLOP/s per thread). "hot" reuses one set of operands, as a product measured in a loop does; "cold" walks the
//! left-hand side and the result through 64 blocks (the 256-row blocks of a 16384-row batch), as the step's saved
//! activations do.

use approxlab_engine::linalg::{matmul, Op};
use std::time::Instant;

const BLOCKS: usize = 64;

struct Shape {
    name: &'static str,
    m: usize,
    n: usize,
    k: usize,
    op_a: Op,
    accumulate: bool,
}

const SHAPES: [Shape; 5] = [
    Shape { name: "W1 forward / dX  256x256x256 NN", m: 256, n: 256, k: 256, op_a: Op::N, accumulate: false },
    Shape { name: "W1 dW += Gt X    256x256x256 TN", m: 256, n: 256, k: 256, op_a: Op::T, accumulate: true },
    Shape { name: "W3 forward / dX  256x512x512 NN", m: 256, n: 512, k: 512, op_a: Op::N, accumulate: false },
    Shape { name: "W3 dW += Gt X    512x512x256 TN", m: 512, n: 512, k: 256, op_a: Op::T, accumulate: true },
    Shape { name: "sgemm piece     2048x256x256 NN", m: 2048, n: 256, k: 256, op_a: Op::N, accumulate: false },
];

/// GFLOP/s of `shape` on the calling thread for `seconds`.
fn product_rate(shape: &Shape, cold: bool, seconds: f64) -> f64 {
    let Shape { m, n, k, op_a, accumulate, .. } = *shape;
    let copies = if cold { BLOCKS } else { 1 };
    let values = |len: usize, scale: f32| -> Vec<f32> {
        (0..len).map(|i| ((i.wrapping_mul(2_654_435_761) % 1000) as f32 / 1000.0 - 0.5) * scale).collect()
    };
    let a = values(m * k * copies, 1.0);
    let b = values(k * n, 0.1);
    let mut c = vec![0.0f32; m * n * copies];
    let start = Instant::now();
    let mut calls = 0usize;
    while start.elapsed().as_secs_f64() < seconds {
        let i = calls % copies;
        matmul(
            m,
            n,
            k,
            &a[i * m * k..(i + 1) * m * k],
            op_a,
            &b,
            Op::N,
            &mut c[i * m * n..(i + 1) * m * n],
            accumulate,
        );
        calls += 1;
    }
    2.0 * (m * n * k * calls) as f64 / start.elapsed().as_secs_f64() / 1e9
}

/// GFLOP/s of independent fused multiply-adds on the calling thread: 10 chains of 8-wide FMAs hide the latency.
#[cfg(target_arch = "x86_64")]
fn fma_peak(seconds: f64) -> Option<f64> {
    if !(std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")) {
        return None;
    }
    #[target_feature(enable = "avx2,fma")]
    unsafe fn chains(rounds: usize) -> f32 {
        use std::arch::x86_64::*;
        let (x, y) = (_mm256_set1_ps(std::hint::black_box(0.999_999)), _mm256_set1_ps(std::hint::black_box(1e-7)));
        let mut acc = [_mm256_set1_ps(1.0); 10];
        for _ in 0..rounds {
            for a in acc.iter_mut() {
                *a = _mm256_fmadd_ps(*a, x, y);
            }
        }
        let mut sum = [0.0f32; 8];
        let total = acc.iter().fold(_mm256_setzero_ps(), |s, &a| _mm256_add_ps(s, a));
        _mm256_storeu_ps(sum.as_mut_ptr(), total);
        sum.iter().sum()
    }
    const ROUNDS: usize = 1 << 20;
    let start = Instant::now();
    let mut calls = 0usize;
    let mut sink = 0.0;
    while start.elapsed().as_secs_f64() < seconds {
        // SAFETY: the CPU has AVX2 and FMA (checked above).
        sink += unsafe { chains(std::hint::black_box(ROUNDS)) };
        calls += 1;
    }
    std::hint::black_box(sink);
    Some((calls * ROUNDS * 10 * 16) as f64 / start.elapsed().as_secs_f64() / 1e9)
}

#[cfg(not(target_arch = "x86_64"))]
fn fma_peak(_seconds: f64) -> Option<f64> {
    None
}

fn main() {
    let seconds: f64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0.5);
    // Pools of one and two threads: `matmul` called inside a pool's task runs on that thread alone.
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("thread pool");
    let two = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("thread pool");
    let both = |f: &(dyn Fn() -> f64 + Sync)| -> f64 {
        let (x, y) = two.install(|| rayon::join(f, f));
        (x + y) / 2.0
    };
    println!("matrix products: {}", approxlab_engine::openblas::provider().describe());
    let peak = one.install(|| fma_peak(seconds));
    let peak_both = peak.map(|_| both(&|| fma_peak(seconds).unwrap_or(f64::NAN)));
    match (peak, peak_both) {
        (Some(p), Some(q)) => println!("FMA peak (AVX2): {p:.1} GFLOP/s on 1 thread, {q:.1} per thread with 2 at once"),
        _ => println!("FMA peak: not measured (no AVX2 + FMA); percentages are left out"),
    }
    let percent = |rate: f64, reference: Option<f64>| match reference {
        Some(r) => format!("{rate:6.1} ({:3.0} %)", 100.0 * rate / r),
        None => format!("{rate:6.1}"),
    };
    println!(
        "{:34} {:>5} {:>16} {:>16}   GFLOP/s per thread (% of FMA peak)",
        "product", "data", "1 thread", "2 at once"
    );
    for shape in &SHAPES {
        for cold in [false, true] {
            let single = one.install(|| product_rate(shape, cold, seconds));
            let pair = both(&|| product_rate(shape, cold, seconds));
            let data = if cold { "cold" } else { "hot" };
            println!("{:34} {data:>5} {:>16} {:>16}", shape.name, percent(single, peak), percent(pair, peak_both));
        }
    }
}
