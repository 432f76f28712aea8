//! `approxlab bench`: training-step throughput of the reference workloads W1-W3, an sgemm peak measured in the same
//! run, and W1 inference speed.
//!
//! Timing on a shared machine: after a few warm-up steps the benchmark runs many short windows (~0.5 s) and keeps
//! only the "clean" ones, in which other processes used at most 5 % of the machine's CPU time (total non-idle
//! jiffies from /proc/stat minus this process's own utime + stime from /proc/self/stat). It reports the median over
//! the clean windows, or over all windows, flagged, when none was clean.

use anyhow::{bail, Context};
use approxlab_engine::encoding::EncodingConfig;
use approxlab_engine::head::Head;
use approxlab_engine::linalg::{self, Op};
use approxlab_engine::network::NetworkConfig;
use approxlab_engine::precision::PrecisionSetting;
use approxlab_engine::{Model, ModelConfig, TrainConfig, Trainer};
use rand::{Rng as _, SeedableRng as _};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Which workload: W1 (fourier:64 -> mlp:4x256 -> tanh01, batch 8192), W2 (mlp:8x128:gelu, batch 4096),
    /// W3 (258 inputs -> mlp:3x512 -> 3 linear outputs, batch 16384), all (these three), or mandelbrot (the
    /// challenge's target on one core: escape iterations in SIMD lanes against the scalar loop).
    #[arg(long, default_value = "all")]
    pub workload: String,
    /// Seconds of timed windows per workload.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Precision of the products: auto (bf16 where the CPU has bf16 dot products and oneDNN is installed), f32, bf16
    #[arg(long, default_value = "auto")]
    pub precision: String,
}

/// Length of one timing window.
const WINDOW: Duration = Duration::from_millis(500);
/// A window is clean when other processes used at most this fraction of the machine's CPU time during it.
const MAX_FOREIGN_FRACTION: f64 = 0.05;
/// Linux reports /proc CPU times in USER_HZ ticks, 100 per second on every architecture.
const TICKS_PER_SECOND: f64 = 100.0;
const WARMUP_STEPS: usize = 3;
const INFER_POINTS: usize = 65_536;

struct Workload {
    name: &'static str,
    inputs: usize,
    encoding: &'static str,
    network: &'static str,
    head: &'static str,
    outputs: usize,
    batch: usize,
}

const WORKLOADS: [Workload; 3] = [
    Workload {
        name: "W1",
        inputs: 2,
        encoding: "fourier:64",
        network: "mlp:4x256:leaky_relu",
        head: "tanh01",
        outputs: 1,
        batch: 8192,
    },
    Workload {
        name: "W2",
        inputs: 2,
        encoding: "identity",
        network: "mlp:8x128:gelu",
        head: "tanh01",
        outputs: 1,
        batch: 4096,
    },
    Workload {
        name: "W3",
        inputs: 258,
        encoding: "identity",
        network: "mlp:3x512:leaky_relu",
        head: "linear",
        outputs: 3,
        batch: 16384,
    },
];

/// FLOPs of one training step: forward, input-gradient and weight-gradient GEMMs of every dense layer (3x the
/// forward GEMM FLOPs), less the first layer's input gradient when the encoding has no parameters to train (it is
/// not computed then). `layers` are (inputs, outputs) per dense layer; element-wise work is not counted.
pub fn step_flops(layers: &[(usize, usize)], batch: usize, encoding_has_params: bool) -> f64 {
    let gemm = |&(i, o): &(usize, usize)| 2.0 * i as f64 * o as f64 * batch as f64;
    let forward: f64 = layers.iter().map(gemm).sum();
    let skipped = match layers.first() {
        Some(first) if !encoding_has_params => gemm(first),
        _ => 0.0,
    };
    3.0 * forward - skipped
}

/// Whether a window is clean: CPU time used by other processes (`foreign_ticks`, in USER_HZ ticks) is at most 5 %
/// of the CPU time the machine had (`wall_s` times `cores`).
pub fn window_is_clean(foreign_ticks: f64, wall_s: f64, cores: usize) -> bool {
    foreign_ticks / TICKS_PER_SECOND <= MAX_FOREIGN_FRACTION * wall_s * cores as f64
}

pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// (total non-idle ticks of the machine, number of CPUs) from /proc/stat.
fn machine_ticks() -> Option<(u64, usize)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let mut busy = None;
    let mut cpus = 0;
    for line in text.lines() {
        let mut f = line.split_whitespace();
        match f.next() {
            Some("cpu") => {
                let v: Vec<u64> = f.filter_map(|x| x.parse().ok()).collect();
                // user nice system idle iowait irq softirq steal (guest time is already inside user and nice).
                let get = |i: usize| v.get(i).copied().unwrap_or(0);
                busy = Some(get(0) + get(1) + get(2) + get(5) + get(6) + get(7));
            }
            Some(name) if name.starts_with("cpu") => cpus += 1,
            _ => {}
        }
    }
    Some((busy?, cpus.max(1)))
}

/// utime + stime of this process, in ticks, from /proc/self/stat.
fn own_ticks() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start at field 3 (state); utime and stime are
    // fields 14 and 15.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// What the windows of one measurement gave.
#[derive(Debug)]
struct Timing {
    /// Median rate (units per second) over the clean windows, or over all when none was clean.
    rate: f64,
    clean: usize,
    windows: usize,
}

/// One window of about [`WINDOW`]: the rate of `work` (units per second) and whether the window was clean.
fn window(work: &mut impl FnMut() -> anyhow::Result<usize>) -> anyhow::Result<(f64, bool)> {
    let m0 = machine_ticks();
    let o0 = own_ticks();
    let t0 = Instant::now();
    let mut units = 0;
    while units == 0 || t0.elapsed() < WINDOW {
        units += work()?;
    }
    let wall = t0.elapsed().as_secs_f64();
    let clean = match (m0, o0, machine_ticks(), own_ticks()) {
        (Some((m0, cores)), Some(o0), Some((m1, _)), Some(o1)) => {
            let foreign = m1.saturating_sub(m0) as f64 - o1.saturating_sub(o0) as f64;
            window_is_clean(foreign.max(0.0), wall, cores)
        }
        _ => false,
    };
    Ok((units as f64 / wall, clean))
}

fn timing(clean: &[f64], all: &[f64]) -> Timing {
    let rate = if clean.is_empty() { median(all) } else { median(clean) };
    Timing { rate, clean: clean.len(), windows: all.len() }
}

/// Runs `work` (which does some units of work and returns how many) in windows of about [`WINDOW`] for about
/// `seconds`, and returns the median rate over clean windows.
fn measure(seconds: f64, mut work: impl FnMut() -> anyhow::Result<usize>) -> anyhow::Result<Timing> {
    let start = Instant::now();
    let (mut clean, mut all) = (Vec::new(), Vec::new());
    while all.is_empty() || start.elapsed().as_secs_f64() < seconds {
        let (rate, ok) = window(&mut work)?;
        all.push(rate);
        if ok {
            clean.push(rate);
        }
    }
    Ok(timing(&clean, &all))
}

/// Like [`measure`], with a window of `reference` before each window of `work`: the machine's speed drifts by tens
/// of percent here from one minute to the next, so a workload is compared with the reference measured moments
/// before it. Returns both timings and the median of the per-pair ratios work / reference (pairs where both
/// windows were clean, else all pairs).
fn measure_paired(
    seconds: f64,
    mut work: impl FnMut() -> anyhow::Result<usize>,
    mut reference: impl FnMut() -> anyhow::Result<usize>,
) -> anyhow::Result<(Timing, Timing, f64)> {
    let start = Instant::now();
    let (mut w_clean, mut w_all, mut r_clean, mut r_all) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut ratios_clean, mut ratios_all) = (Vec::new(), Vec::new());
    while w_all.is_empty() || start.elapsed().as_secs_f64() < seconds {
        let (r_rate, r_ok) = window(&mut reference)?;
        let (w_rate, w_ok) = window(&mut work)?;
        r_all.push(r_rate);
        w_all.push(w_rate);
        ratios_all.push(w_rate / r_rate);
        if r_ok {
            r_clean.push(r_rate);
        }
        if w_ok {
            w_clean.push(w_rate);
        }
        if r_ok && w_ok {
            ratios_clean.push(w_rate / r_rate);
        }
    }
    let ratio = if ratios_clean.is_empty() { median(&ratios_all) } else { median(&ratios_clean) };
    Ok((timing(&w_clean, &w_all), timing(&r_clean, &r_all), ratio))
}

fn build_model(w: &Workload) -> anyhow::Result<Model> {
    let config = ModelConfig {
        encoding: EncodingConfig::parse(w.encoding)?,
        network: NetworkConfig::parse(w.network)?,
        head: Head::parse(w.head)?,
        ..Default::default()
    };
    let domain = vec![(-1.0, 1.0); w.inputs];
    Ok(Model::new(config, &domain, w.outputs, 1)?)
}

/// (inputs, outputs) of every dense layer, from the network's weight tensors.
fn dense_layers(model: &Model) -> Vec<(usize, usize)> {
    model.network().param_tensors().iter().filter(|t| t.shape.len() == 2).map(|t| (t.shape[1], t.shape[0])).collect()
}

struct Report {
    workload: &'static str,
    steps_per_s: f64,
    gflops: f64,
    timing: Timing,
    /// The sgemm measured between this workload's windows, GFLOP/s.
    peak_gflops: f64,
    /// Median over window pairs of the workload's GFLOP/s over the sgemm's just before.
    fraction_of_peak: f64,
}

fn bench_training(
    w: &Workload,
    seconds: f64,
    precision: PrecisionSetting,
    sgemm: &mut Sgemm,
) -> anyhow::Result<(Report, Model)> {
    let model = build_model(w)?;
    let flops = step_flops(&dense_layers(&model), w.batch, model.encoding().n_params() > 0);
    let mut rng = rand_pcg::Pcg64::seed_from_u64(42);
    let x: Vec<f32> = (0..w.batch * w.inputs).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
    let y: Vec<f32> = (0..w.batch * w.outputs).map(|_| rng.gen_range(0.0f32..1.0)).collect();
    let mut trainer = Trainer::new(model, TrainConfig { lr: 1e-3, batch: w.batch, precision, ..Default::default() })?;
    for _ in 0..WARMUP_STEPS {
        trainer.step(&x, &y).with_context(|| format!("{}: warm-up step", w.name))?;
    }
    let (timing, peak, ratio) = measure_paired(
        seconds,
        || {
            trainer.step(&x, &y).with_context(|| format!("{}: training step", w.name))?;
            Ok(1)
        },
        || {
            sgemm.run();
            Ok(1)
        },
    )?;
    let steps_per_s = timing.rate;
    let (gflops, fraction_of_peak) = (steps_per_s * flops / 1e9, ratio * flops / sgemm.flops());
    let peak_gflops = peak.rate * sgemm.flops() / 1e9;
    Ok((Report { workload: w.name, steps_per_s, gflops, timing, peak_gflops, fraction_of_peak }, trainer.into_model()))
}

/// The reference product: 8192x256 @ 256x256 in f32, the size of W1's hidden layers.
struct Sgemm {
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
}

impl Sgemm {
    const M: usize = 8192;
    const K: usize = 256;
    const N: usize = 256;

    fn new() -> Sgemm {
        let (m, k, n) = (Self::M, Self::K, Self::N);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 104_729) % 1000) as f32 * 1e-3 - 0.5).collect();
        let mut s = Sgemm { a, b, c: vec![0.0f32; m * n] };
        for _ in 0..5 {
            s.run();
        }
        s
    }

    fn run(&mut self) {
        linalg::matmul(Self::M, Self::N, Self::K, &self.a, Op::N, &self.b, Op::N, &mut self.c, false);
    }

    fn flops(&self) -> f64 {
        2.0 * (Self::M * Self::K * Self::N) as f64
    }
}

fn bench_sgemm(seconds: f64, sgemm: &mut Sgemm) -> anyhow::Result<(f64, Timing)> {
    let timing = measure(seconds, || {
        sgemm.run();
        Ok(1)
    })?;
    Ok((timing.rate * sgemm.flops() / 1e9, timing))
}

fn bench_inference(model: &Model, seconds: f64) -> anyhow::Result<(f64, Timing)> {
    let d = model.input_dims();
    let mut rng = rand_pcg::Pcg64::seed_from_u64(7);
    let x: Vec<f32> = (0..INFER_POINTS * d).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
    let mut out = vec![0.0f32; INFER_POINTS * model.output_dims()];
    model.predict(&x, &mut out)?;
    let timing = measure(seconds, || {
        model.predict(&x, &mut out)?;
        Ok(INFER_POINTS)
    })?;
    Ok((timing.rate, timing))
}

fn median_of(t: &Timing) -> &'static str {
    if t.clean > 0 {
        "clean"
    } else {
        "all"
    }
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if !(args.seconds.is_finite() && args.seconds > 0.0) {
        bail!("bench: --seconds must be a positive number, got {}", args.seconds);
    }
    if args.workload.eq_ignore_ascii_case("mandelbrot") {
        return bench_mandelbrot(args.seconds, args.json);
    }
    let selected = selected_workloads(&args.workload)?;
    if let Some(n) = args.threads {
        if n == 0 {
            bail!("bench: --threads must be at least 1");
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .context("bench: could not build the thread pool")?;
    }
    let precision: PrecisionSetting = args.precision.parse().map_err(|e| anyhow::anyhow!("bench: --precision: {e}"))?;
    let resolved = precision.resolve();
    if let Some(notice) = &resolved.notice {
        eprintln!("notice: {notice}");
    }
    let out = Printer { json: args.json, threads: rayon::current_num_threads(), resolved };
    // The sgemm reference and inference take a few seconds whatever the workloads' time.
    let side = args.seconds.clamp(1.0, 5.0);
    let mut sgemm = Sgemm::new();
    let (peak, peak_t) = bench_sgemm(side, &mut sgemm)?;
    out.sgemm(peak, &peak_t, args.seconds);
    let mut w1_model = None;
    for w in selected {
        let (r, model) = bench_training(w, args.seconds, precision, &mut sgemm)?;
        out.training(&r);
        if w.name == "W1" {
            w1_model = Some(model);
        }
    }
    if let Some(model) = w1_model {
        let (pps, t) = bench_inference(&model, side)?;
        out.inference(pps, &t);
    }
    Ok(())
}

/// Points per timed call of the Mandelbrot benchmark.
const MANDELBROT_POINTS: usize = 16_384;

/// The challenge's target (`mandelbrot:periodic`, depth 200) on one core, in SIMD lanes
/// ([`approxlab_data::periodic_rows`]) against the scalar loop on the same points, paired window by window: over
/// the whole window (a sixth of the points inside, settled by the cardioid test in both) and over seahorse valley
/// (width 0.1, where the error-driven sampler draws most: long orbits that escape at different iterations).
fn bench_mandelbrot(seconds: f64, json: bool) -> anyhow::Result<()> {
    use approxlab_data::{mandelbrot_periodic, periodic_rows};
    const DEPTH: u32 = 200;
    let sets: [(&str, [f64; 4]); 2] =
        [("window", [-2.65, 1.15, -1.2, 1.2]), ("seahorse-valley", [-0.7953, -0.6953, 0.0846, 0.1408])];
    if !json {
        println!("approxlab bench mandelbrot: periodic target, depth 200, one core, {MANDELBROT_POINTS} points a call");
        println!("{:<16} {:>16} {:>16} {:>7}", "points", "lanes points/s", "scalar points/s", "ratio");
    }
    for (name, [x0, x1, y0, y1]) in sets {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(7);
        let mut pts: Vec<[f64; 2]> = (0..MANDELBROT_POINTS)
            .map(|_| [x0 + (x1 - x0) * rng.gen::<f64>(), y0 + (y1 - y0) * rng.gen::<f64>()])
            .collect();
        // In cells of a 512 x 512 grid over the box, in cell order, as the error-driven sampler sends them.
        let cell = |p: &[f64; 2]| {
            let (i, j) = (((p[0] - x0) / (x1 - x0) * 512.0) as usize, ((p[1] - y0) / (y1 - y0) * 512.0) as usize);
            j * 512 + i
        };
        pts.sort_by_key(cell);
        let points: Vec<f64> = pts.concat();
        let (mut lanes_out, mut scalar_out) = (vec![0.0f32; MANDELBROT_POINTS], vec![0.0f32; MANDELBROT_POINTS]);
        let (lanes, scalar, ratio) = measure_paired(
            seconds / 2.0,
            || {
                periodic_rows(&points, DEPTH, &mut lanes_out);
                Ok(MANDELBROT_POINTS)
            },
            || {
                for (p, o) in points.chunks_exact(2).zip(scalar_out.iter_mut()) {
                    *o = mandelbrot_periodic(p[0], p[1], DEPTH) as f32;
                }
                Ok(MANDELBROT_POINTS)
            },
        )?;
        if lanes_out != scalar_out {
            bail!("bench mandelbrot: the lanes and the scalar loop disagree on the {name} points");
        }
        if json {
            println!(
                "{}",
                serde_json::json!({"impl": "approxlab", "workload": format!("mandelbrot-{name}"),
                    "points_per_s": lanes.rate, "scalar_points_per_s": scalar.rate, "ratio": ratio,
                    "clean_windows": lanes.clean, "windows": lanes.windows, "threads": 1})
            );
        } else {
            println!("{:<16} {:>16.0} {:>16.0} {:>6.2}x{}", name, lanes.rate, scalar.rate, ratio, dirty(&lanes));
        }
    }
    Ok(())
}

fn selected_workloads(name: &str) -> anyhow::Result<Vec<&'static Workload>> {
    match name.to_ascii_uppercase().as_str() {
        "ALL" => Ok(WORKLOADS.iter().collect()),
        upper => match WORKLOADS.iter().find(|w| w.name == upper) {
            Some(w) => Ok(vec![w]),
            None => bail!("bench: unknown workload '{name}', expected W1, W2, W3, all or mandelbrot"),
        },
    }
}

/// Prints each measurement as a table row, or as one JSON object per line with `--json`.
struct Printer {
    json: bool,
    threads: usize,
    resolved: approxlab_engine::precision::Resolved,
}

fn dirty(t: &Timing) -> &'static str {
    if t.clean == 0 {
        " (no clean window: median of all)"
    } else {
        ""
    }
}

impl Printer {
    fn sgemm(&self, peak: f64, t: &Timing, seconds: f64) {
        let (threads, resolved) = (self.threads, &self.resolved);
        if self.json {
            println!(
                "{}",
                serde_json::json!({"impl": "approxlab", "workload": "sgemm", "gflops": peak,
                    "clean_windows": t.clean, "windows": t.windows, "median_of": median_of(t),
                    "threads": threads, "gemm": approxlab_engine::openblas::provider().describe(),
                    // The reference product is f32 whatever the workloads run in; `products` says what they run in.
                    "precision": "f32", "products": resolved.describe})
            );
            return;
        }
        println!("approxlab bench, {threads} threads, {seconds:.1} s per workload");
        println!("matrix products: {}", approxlab_engine::openblas::provider().describe());
        println!("precision: {}", resolved.describe);
        println!("sgemm 8192x256 @ 256x256: {peak:.1} GFLOP/s, {}/{} clean windows{}", t.clean, t.windows, dirty(t));
        println!();
        println!("{:<8} {:>10} {:>9} {:>8} {:>14}", "workload", "steps/s", "GFLOP/s", "% peak", "clean/windows");
    }

    fn training(&self, r: &Report) {
        let pct = 100.0 * r.fraction_of_peak;
        if self.json {
            println!(
                "{}",
                serde_json::json!({"impl": "approxlab", "workload": r.workload, "steps_per_s": r.steps_per_s,
                    "gflops": r.gflops, "peak_gflops": r.peak_gflops, "pct_peak": pct, "clean_windows": r.timing.clean,
                    "windows": r.timing.windows, "median_of": median_of(&r.timing), "threads": self.threads,
                    "precision": self.resolved.precision.to_string()})
            );
        } else {
            println!(
                "{:<8} {:>10.2} {:>9.1} {:>7.1}% {:>14}{}",
                r.workload,
                r.steps_per_s,
                r.gflops,
                pct,
                format!("{}/{}", r.timing.clean, r.timing.windows),
                dirty(&r.timing)
            );
        }
    }

    fn inference(&self, points_per_s: f64, t: &Timing) {
        if self.json {
            println!(
                "{}",
                serde_json::json!({"impl": "approxlab", "workload": "W1-infer", "points_per_s": points_per_s,
                    "clean_windows": t.clean, "windows": t.windows, "median_of": median_of(t),
                    "threads": self.threads, "precision": self.resolved.precision.to_string()})
            );
        } else {
            println!();
            println!(
                "W1 inference ({INFER_POINTS} points per call): {:.3} M points/s, {}/{} clean windows{}",
                points_per_s / 1e6,
                t.clean,
                t.windows,
                dirty(t)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_flops_counts_three_gemms_per_layer_less_the_unused_input_gradient() {
        // W1: 258 -> 256 x4 -> 1, no encoding parameters.
        let w1 = [(258, 256), (256, 256), (256, 256), (256, 256), (256, 1)];
        let fwd = 2.0 * (258.0 * 256.0 + 3.0 * 256.0 * 256.0 + 256.0) * 8192.0;
        let first = 2.0 * 258.0 * 256.0 * 8192.0;
        assert_eq!(step_flops(&w1, 8192, false), 3.0 * fwd - first);
        assert_eq!(step_flops(&w1, 8192, true), 3.0 * fwd);
        // One 2 -> 3 layer, batch 5: forward 60, weight gradient 60, no input gradient.
        assert_eq!(step_flops(&[(2, 3)], 5, false), 120.0);
        assert_eq!(step_flops(&[], 5, false), 0.0);
    }

    #[test]
    fn windows_are_clean_up_to_five_percent_foreign_cpu() {
        // 0.5 s on 2 cores is 100 ticks of machine time: 5 ticks of others are allowed, 6 are not.
        assert!(window_is_clean(0.0, 0.5, 2));
        assert!(window_is_clean(5.0, 0.5, 2));
        assert!(!window_is_clean(6.0, 0.5, 2));
        assert!(!window_is_clean(50.0, 0.5, 2));
        assert!(window_is_clean(10.0, 0.5, 4));
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn workloads_have_the_documented_shapes() {
        let sizes: Vec<Vec<(usize, usize)>> =
            WORKLOADS.iter().map(|w| dense_layers(&build_model(w).unwrap())).collect();
        assert_eq!(sizes[0], vec![(258, 256), (256, 256), (256, 256), (256, 256), (256, 1)]);
        assert_eq!(sizes[1].len(), 9);
        assert_eq!(sizes[1][0], (2, 128));
        assert_eq!(sizes[2], vec![(258, 512), (512, 512), (512, 512), (512, 3)]);
    }
}
