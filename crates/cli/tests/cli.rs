//! Command-line tests of `approxlab`: every data kind on a tiny budget, budgets, configs, resume (exact, and after a
//! real SIGINT), eval / render / truth, one-line errors, divergence, and the example configs.
//!
//! Budgets are a few steps of tiny networks with `--threads 1`, so the whole file runs in seconds on 2 cores.

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tempfile::TempDir;

fn approxlab() -> Command {
    let mut cmd = Command::cargo_bin("approxlab").expect("the approxlab binary is built");
    // Errors must stay one line even when a user asks for backtraces.
    cmd.env("RUST_BACKTRACE", "1");
    cmd
}

/// `train` flags of a tiny, fast run named `name` under `out`: `extra`, then the defaults (1 thread, batch 64, a 2x16
/// network) that `extra` does not set.
fn tiny(out: &Path, name: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["train", "--quiet", "--out", out.to_str().unwrap(), "--name", name]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect();
    for (flag, value) in [("--threads", "1"), ("--batch", "64"), ("--network", "mlp:2x16")] {
        if !extra.contains(&flag) {
            args.extend([flag.to_string(), value.to_string()]);
        }
    }
    args
}

/// Runs `approxlab train` with the tiny flags plus `extra`, expects success and returns the run directory.
fn train_ok(out: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let output = approxlab().args(tiny(out, name, extra)).output().unwrap();
    assert!(
        output.status.success(),
        "train {extra:?} failed with {:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let dir = out.join(name);
    assert!(dir.is_dir(), "{} was not created", dir.display());
    dir
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON ({e}): {text}", path.display()))
}

fn summary(dir: &Path) -> Value {
    read_json(&dir.join("summary.json"))
}

/// Every line of `metrics.jsonl`, each parsed.
fn metrics(dir: &Path) -> Vec<Value> {
    let path = dir.join("metrics.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("metrics.jsonl line '{l}' is not JSON: {e}")))
        .collect()
}

fn decode_png(path: &Path) -> image::DynamicImage {
    image::open(path).unwrap_or_else(|e| panic!("{}: does not decode: {e}", path.display()))
}

/// Checks everything a finished run directory must hold; returns the summary.
fn check_run(dir: &Path, steps: u64, psnr: bool) -> Value {
    for f in ["config.toml", "metrics.jsonl", "checkpoints/latest.safetensors", "summary.json", "learned.png"] {
        assert!(dir.join(f).is_file(), "{} is missing", dir.join(f).display());
    }
    let lines = metrics(dir);
    let training: Vec<&Value> = lines.iter().filter(|l| l.get("loss").is_some()).collect();
    assert!(!training.is_empty(), "metrics.jsonl has no training line: {lines:?}");
    for l in &training {
        assert!(l["step"].as_u64().is_some(), "{l}");
        assert!(l["loss"].as_f64().is_some_and(f64::is_finite), "{l}");
        assert!(l["lr"].as_f64().is_some_and(|v| v > 0.0), "{l}");
    }
    let last_eval = lines.iter().rev().find(|l| l.get("eval").is_some()).expect("a final eval line");
    assert_eq!(last_eval["step"].as_u64(), Some(steps), "{last_eval}");

    let s = summary(dir);
    assert_eq!(s["status"], "finished", "{s}");
    assert!(s["params"].as_u64().is_some_and(|p| p > 0), "{s}");
    assert_eq!(s["steps"].as_u64(), Some(steps), "{s}");
    assert!(s["wall_s"].as_f64().is_some_and(|w| w >= 0.0), "{s}");
    assert!(s["samples_per_s"].as_f64().is_some_and(|v| v > 0.0), "{s}");
    assert!(s["train_loss"].as_f64().is_some_and(f64::is_finite), "{s}");
    assert!(s["eval"]["mse"].as_f64().is_some_and(|m| m.is_finite() && m >= 0.0), "{s}");
    if psnr {
        assert!(s["eval"]["psnr"].as_f64().is_some_and(f64::is_finite), "{s}");
    }
    let img = decode_png(&dir.join("learned.png"));
    assert!(img.width() > 0 && img.height() > 0);
    s
}

/// Runs a command that must fail on bad input: exit code 2, one stderr line `error: ...` naming `needle`, and no
/// panic or backtrace.
fn expect_error(args: &[&str], needle: &str) -> String {
    expect_error_with_env(args, &[], needle)
}

/// [`expect_error`] with environment variables set for the command.
fn expect_error_with_env(args: &[&str], env: &[(&str, &str)], needle: &str) -> String {
    let output = approxlab().args(args).envs(env.iter().copied()).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{args:?}: expected exit code 2, stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: expected one stderr line, got: {stderr}");
    assert!(lines[0].starts_with("error:"), "{args:?}: {stderr}");
    assert!(stderr.contains(needle), "{args:?}: the error does not name '{needle}': {stderr}");
    for bad in ["panicked", "internal error", "backtrace", "Backtrace", "stack backtrace"] {
        assert!(!stderr.contains(bad), "{args:?}: {stderr}");
    }
    stderr
}

/// `train` with tiny flags plus `extra`, expected to fail as in [`expect_error`].
fn train_error(extra: &[&str], needle: &str) -> String {
    let tmp = TempDir::new().unwrap();
    let args = tiny(tmp.path(), "r", &[&["--steps", "2"], extra].concat());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let e = expect_error(&args, needle);
    assert!(!tmp.path().join("r").join("summary.json").exists(), "a failed run wrote a summary");
    e
}

fn write_gray_png(path: &Path, w: u32, h: u32) {
    image::GrayImage::from_fn(w, h, |x, y| image::Luma([((x * 255) / w.max(1) + y * 3) as u8])).save(path).unwrap();
}

fn write_rgb_png(path: &Path, w: u32, h: u32) {
    image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 10) as u8, (y * 15) as u8, ((x + y) * 5) as u8]))
        .save(path)
        .unwrap();
}

/// The tensors of a safetensors file (name -> dtype, shape, bytes) and its `__metadata__`, read by hand: an 8-byte
/// little-endian header length, a JSON header, then the data.
fn safetensors(path: &Path) -> (BTreeMap<String, (Value, Vec<u8>)>, Value) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let data = &bytes[8 + n..];
    let mut tensors = BTreeMap::new();
    let mut metadata = Value::Null;
    for (name, entry) in header.as_object().unwrap() {
        if name == "__metadata__" {
            metadata = entry.clone();
            continue;
        }
        let off = &entry["data_offsets"];
        let (a, b) = (off[0].as_u64().unwrap() as usize, off[1].as_u64().unwrap() as usize);
        let shape = serde_json::json!({"dtype": entry["dtype"], "shape": entry["shape"]});
        tensors.insert(name.clone(), (shape, data[a..b].to_vec()));
    }
    (tensors, metadata)
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

// ---------------------------------------------------------------------------------------------------------------
// train, one test per data kind

#[test]
fn train_mandelbrot_writes_a_complete_run() {
    let tmp = TempDir::new().unwrap();
    let dir = train_ok(
        tmp.path(),
        "m",
        &["--data", "mandelbrot", "--set", "data.samples=2000", "--steps", "20", "--batch", "256"],
    );
    let s = check_run(&dir, 20, true);
    assert!(s["data"].as_str().unwrap().contains("mandelbrot"), "{s}");
    assert!(s["data"].as_str().unwrap().contains("2000"), "{s}");
    // The saved config is the effective one.
    let config = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    assert!(config.contains("samples = 2000") && config.contains("steps = 20"), "{config}");
    assert!(dir.join("truth.png").is_file() && dir.join("compare.png").is_file());
    decode_png(&dir.join("compare.png"));
}

#[test]
fn train_named_curves() {
    let tmp = TempDir::new().unwrap();
    for (i, target) in ["sin(3x)", "2exp(-x^2)"].iter().enumerate() {
        let data = format!("curve:{target}");
        let dir = train_ok(tmp.path(), &format!("c{i}"), &["--data", &data, "--head", "linear", "--steps", "20"]);
        let s = check_run(&dir, 20, false);
        assert!(s["data"].as_str().unwrap().contains(target), "{s}");
        assert!(s["eval"]["psnr"].is_null(), "curves have no psnr: {s}");
    }
}

#[test]
fn train_expression_curve() {
    let tmp = TempDir::new().unwrap();
    let dir = train_ok(
        tmp.path(),
        "e",
        &["--data", "curve:x^2 - 0.5*cos(4*x)", "--head", "linear", "--steps", "20", "--set", "data.samples=100"],
    );
    let s = check_run(&dir, 20, false);
    assert!(s["data"].as_str().unwrap().contains("cos(4*x)"), "{s}");
}

#[test]
fn train_csv_curve() {
    let tmp = TempDir::new().unwrap();
    let csv = tmp.path().join("points.csv");
    let mut text = String::from("x,y\n");
    for i in 0..50 {
        let x = i as f64 / 10.0;
        text += &format!("{x},{}\n", (x * 2.0).sin());
    }
    std::fs::write(&csv, text).unwrap();
    let data = format!("curve:csv:{}", csv.display());
    let dir = train_ok(tmp.path(), "csv", &["--data", &data, "--head", "linear", "--steps", "20"]);
    let s = check_run(&dir, 20, false);
    assert!(s["data"].as_str().unwrap().contains("points.csv"), "{s}");
    let config = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    assert!(config.contains("points.csv"), "{config}");
}

#[test]
fn train_gray_and_rgb_images() {
    let tmp = TempDir::new().unwrap();
    let gray = tmp.path().join("gray.png");
    let rgb = tmp.path().join("rgb.png");
    write_gray_png(&gray, 24, 16);
    write_rgb_png(&rgb, 20, 12);
    for (name, path, w, h, mode) in [("g", &gray, 24, 16, "gray"), ("c", &rgb, 20, 12, "rgb")] {
        let data = format!("image:{}", path.display());
        let dir = train_ok(tmp.path(), name, &["--data", &data, "--steps", "20"]);
        let s = check_run(&dir, 20, true);
        let described = s["data"].as_str().unwrap();
        assert!(described.contains(mode) && described.contains(&format!("{w}x{h}")), "{s}");
        // The learned image is drawn at the image's own size.
        let img = decode_png(&dir.join("learned.png"));
        assert_eq!((img.width(), img.height()), (w, h));
        decode_png(&dir.join("compare.png"));
    }
}

#[test]
fn train_surfaces() {
    let tmp = TempDir::new().unwrap();
    for shape in ["sphere", "shell", "torus"] {
        let data = format!("surface:{shape}");
        let dir = train_ok(
            tmp.path(),
            shape,
            &["--data", &data, "--head", "linear", "--steps", "20", "--set", "data.samples=200"],
        );
        let s = check_run(&dir, 20, false);
        assert!(s["data"].as_str().unwrap().contains(shape), "{s}");
        assert!(s["eval"]["mean_sq_dist"].as_f64().is_some_and(f64::is_finite), "{s}");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// budgets and configs

#[test]
fn epochs_budget_is_epochs_times_batches_per_epoch() {
    let tmp = TempDir::new().unwrap();
    // 2000 samples in batches of 256: ceil(2000 / 256) = 8 steps per epoch.
    let dir = train_ok(
        tmp.path(),
        "m",
        &["--data", "mandelbrot", "--set", "data.samples=2000", "--batch", "256", "--epochs", "3"],
    );
    assert_eq!(summary(&dir)["steps"].as_u64(), Some(24));
    // 300 curve samples (the default) in batches of 64: 5 steps per epoch.
    let dir = train_ok(tmp.path(), "c", &["--data", "curve:sin(3x)", "--epochs", "2", "--head", "linear"]);
    assert_eq!(summary(&dir)["steps"].as_u64(), Some(10));
    // With both, the first limit reached ends the run.
    let dir =
        train_ok(tmp.path(), "both", &["--data", "curve:sin(3x)", "--epochs", "2", "--steps", "7", "--head", "linear"]);
    assert_eq!(summary(&dir)["steps"].as_u64(), Some(7));
    // On-the-fly data has no epochs.
    train_error(&["--data", "mandelbrot", "--set", "data.on_the_fly=true", "--epochs", "1"], "epochs");
}

#[test]
fn time_budget_stops_after_the_time() {
    let tmp = TempDir::new().unwrap();
    let start = Instant::now();
    let dir = train_ok(tmp.path(), "t", &["--data", "curve:sin(3x)", "--time", "1s", "--head", "linear"]);
    let elapsed = start.elapsed();
    let s = summary(&dir);
    assert_eq!(s["status"], "finished", "{s}");
    let wall = s["wall_s"].as_f64().unwrap();
    assert!((0.95..10.0).contains(&wall), "wall_s {wall}");
    assert!(elapsed < Duration::from_secs(30), "a 1 s budget took {elapsed:?}");
    // A time budget alone sets no step limit (not the default 1000 steps); a tiny network does far more in 1 s.
    assert!(s["steps"].as_u64().unwrap() > 1000, "{s}");
    let config = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    assert!(config.contains("time = \"1s\"") && !config.contains("steps ="), "{config}");
}

fn print_config(args: &[&str]) -> String {
    let output = approxlab().arg("train").args(args).arg("--print-config").output().unwrap();
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn print_config_reads_back_to_itself() {
    let tmp = TempDir::new().unwrap();
    let flag_sets: [&[&str]; 4] = [
        &[],
        &["--data", "mandelbrot:periodic", "--encoding", "fourier:16", "--network", "skip:3x32", "--steps", "9"],
        &["--data", "curve:2exp(-x^2)", "--encoding", "taylor:8", "--network", "linear", "--head", "linear"],
        &[
            "--data",
            "surface:torus",
            "--encoding",
            "fourier-series:4",
            "--schedule",
            "step:100:0.5",
            "--optimizer",
            "adamw:0.01",
            "--loss",
            "huber:0.5",
            "--time",
            "2m",
            "--epochs",
            "3",
            "--input-range",
            "-2,2",
            "--frame-every",
            "10",
            "--frame-size",
            "64x48",
            "--colormap",
            "viridis",
            "--name",
            "n",
            "--seed",
            "5",
        ],
    ];
    for (i, flags) in flag_sets.iter().enumerate() {
        let printed = print_config(flags);
        let file = tmp.path().join(format!("c{i}.toml"));
        std::fs::write(&file, &printed).unwrap();
        let again = print_config(&["--config", file.to_str().unwrap()]);
        assert_eq!(printed, again, "{flags:?}");
    }
}

#[test]
fn flags_override_the_config_file_and_set_reaches_any_key() {
    let tmp = TempDir::new().unwrap();
    let file = tmp.path().join("c.toml");
    std::fs::write(
        &file,
        "seed = 3\n[data]\nkind = \"mandelbrot\"\ndepth = 30\n[train]\nlr = 0.5\nbatch = 64\n[budget]\nsteps = 11\n",
    )
    .unwrap();
    let printed = print_config(&["--config", file.to_str().unwrap()]);
    for line in ["seed = 3", "depth = 30", "lr = 0.5", "batch = 64", "steps = 11"] {
        assert!(printed.lines().any(|l| l == line), "'{line}' missing from\n{printed}");
    }
    let printed = print_config(&[
        "--config",
        file.to_str().unwrap(),
        "--lr",
        "0.25",
        "--steps",
        "5",
        "--set",
        "data.depth=77",
        "--set",
        "data.target=periodic",
        "--set",
        "output.log_every=3",
    ]);
    for line in
        ["seed = 3", "depth = 77", "target = \"periodic\"", "lr = 0.25", "batch = 64", "steps = 5", "log_every = 3"]
    {
        assert!(printed.lines().any(|l| l == line), "'{line}' missing from\n{printed}");
    }
    assert!(!printed.contains("depth = 30") && !printed.contains("lr = 0.5"), "{printed}");
    // --set wins over a flag for the same key.
    let printed = print_config(&["--config", file.to_str().unwrap(), "--lr", "0.25", "--set", "train.lr=0.125"]);
    assert!(printed.lines().any(|l| l == "lr = 0.125"), "{printed}");

    // And the overridden config is the one that trains.
    let dir = train_ok(tmp.path(), "r", &["--config", file.to_str().unwrap(), "--set", "data.samples=500"]);
    let s = summary(&dir);
    assert_eq!(s["steps"].as_u64(), Some(11), "{s}");
    assert!(s["data"].as_str().unwrap().contains("depth 30"), "{s}");
    assert_eq!(s["lr"].as_f64(), Some(0.5), "{s}");
}

// ---------------------------------------------------------------------------------------------------------------
// resume

#[test]
fn resume_continues_exactly_like_an_uninterrupted_run() {
    let tmp = TempDir::new().unwrap();
    let common = [
        "--data",
        "mandelbrot",
        "--set",
        "data.samples=3000",
        "--batch",
        "128",
        "--encoding",
        "fourier:4",
        "--schedule",
        "constant",
        "--seed",
        "7",
        "--threads",
        "2",
    ];
    let a = train_ok(tmp.path(), "a", &[&common[..], &["--steps", "20"]].concat());
    assert_eq!(summary(&a)["steps"].as_u64(), Some(20));
    approxlab().args(["resume", a.to_str().unwrap(), "--steps", "40", "--quiet"]).assert().success();
    let b = train_ok(tmp.path(), "b", &[&common[..], &["--steps", "40"]].concat());
    check_run(&a, 40, true);
    check_run(&b, 40, true);

    // Parameters, optimizer state and RNG are bitwise identical.
    let (ta, ma) = safetensors(&a.join("checkpoints/latest.safetensors"));
    let (tb, mb) = safetensors(&b.join("checkpoints/latest.safetensors"));
    assert!(ta.keys().any(|k| k.starts_with("network.")), "{:?}", ta.keys());
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    for (name, (shape, bytes)) in &ta {
        assert_eq!(shape, &tb[name].0, "{name}");
        assert!(bytes == &tb[name].1, "tensor {name} differs between the resumed and the uninterrupted run");
    }
    let state = |m: &Value| -> Value {
        let mut v: Value = serde_json::from_str(m["approxlab"].as_str().expect("approxlab metadata")).unwrap();
        v.as_object_mut().unwrap().remove("extra"); // wall_s
        v
    };
    assert_eq!(state(&ma), state(&mb));

    // So evaluation, the summary and the pictures agree exactly.
    let eval = |dir: &Path| -> String {
        let out = approxlab().arg("eval").arg(dir).output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(eval(&a), eval(&b));
    let (sa, sb) = (summary(&a), summary(&b));
    assert_eq!(sa["eval"], sb["eval"]);
    // The training loss is the mean over the last log window, so resuming does not change it.
    assert!(sa["train_loss"].as_f64().is_some_and(f64::is_finite), "{sa}");
    assert_eq!(sa["train_loss"], sb["train_loss"]);
    assert_eq!(sa["train_loss_steps"], sb["train_loss_steps"]);
    // Throughput: samples trained over training seconds, and a steady rate beside it.
    for s in [&sa, &sb] {
        assert_eq!(s["samples"].as_u64(), Some(40 * 128));
        let rate = s["samples"].as_f64().unwrap() / s["wall_s"].as_f64().unwrap();
        assert!((s["samples_per_s"].as_f64().unwrap() - rate).abs() <= 1e-6 * rate, "{s}");
        assert!(s["steady_samples_per_s"].as_f64().is_some_and(|r| r > 0.0), "{s}");
    }
    assert_eq!(sa["eval"]["mse"].as_f64(), sb["eval"]["mse"].as_f64());
    assert!(std::fs::read(a.join("learned.png")).unwrap() == std::fs::read(b.join("learned.png")).unwrap());
    // The resumed config records the new budget.
    let config = std::fs::read_to_string(a.join("config.toml")).unwrap();
    assert!(config.lines().any(|l| l == "steps = 40"), "{config}");
    // The metrics log continues: the same training lines as the uninterrupted run.
    let losses = |dir: &Path| -> Vec<(u64, String)> {
        metrics(dir)
            .iter()
            .filter(|l| l.get("loss").is_some())
            .map(|l| (l["step"].as_u64().unwrap(), l["loss"].to_string()))
            .collect()
    };
    assert_eq!(losses(&a), losses(&b));
}

#[cfg(unix)]
#[test]
fn sigint_saves_an_interrupted_run_that_resume_finishes() {
    signal_saves_an_interrupted_run_that_resume_finishes("INT", 130);
}

#[test]
fn sigterm_saves_like_ctrl_c_and_exits_143() {
    signal_saves_an_interrupted_run_that_resume_finishes("TERM", 143);
}

#[test]
fn sighup_saves_like_ctrl_c_and_exits_129() {
    signal_saves_an_interrupted_run_that_resume_finishes("HUP", 129);
}

/// `kill -SIGNAL` in the middle of a run: a checkpoint at the step it stopped, a summary, exit 128 + the signal.
fn signal_saves_an_interrupted_run_that_resume_finishes(signal: &str, code: i32) {
    let tmp = TempDir::new().unwrap();
    let out = tmp.path();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("approxlab"))
        .args(tiny(
            out,
            "i",
            &["--data", "curve:sin(3x)", "--head", "linear", "--steps", "1000000000", "--time", "60s"],
        ))
        .args(["--checkpoint-every", "50"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let dir = out.join("i");
    let deadline = Instant::now() + Duration::from_secs(30);
    // Wait for progress: a checkpoint and a logged training step.
    loop {
        let progressed = dir.join("checkpoints/latest.safetensors").is_file()
            && std::fs::read_to_string(dir.join("metrics.jsonl")).is_ok_and(|t| t.contains("\"loss\""));
        if progressed {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("train exited early with {status}");
        }
        assert!(Instant::now() < deadline, "no progress within 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = child.id().to_string();
    let killed = std::process::Command::new("kill").args([&format!("-{signal}"), &pid]).status().unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("approxlab resume"), "{stdout}");
    let s = summary(&dir);
    assert_eq!(s["status"], "interrupted", "{s}");
    let steps = s["steps"].as_u64().unwrap();
    assert!(steps > 0 && steps < 1_000_000_000, "{s}");
    assert!(s["eval"]["mse"].as_f64().is_some_and(f64::is_finite), "{s}");
    // The checkpoint holds the interrupted step: eval reads it.
    let out = approxlab().arg("eval").arg(&dir).output().unwrap();
    assert!(out.status.success());
    let e: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(e["step"].as_u64(), Some(steps), "{e}");

    let target = (steps + 20).to_string();
    approxlab()
        .args(["resume", dir.to_str().unwrap(), "--steps", &target, "--quiet"])
        .assert()
        .success()
        .stdout(predicate::str::contains("finished"));
    let s = summary(&dir);
    assert_eq!(s["status"], "finished", "{s}");
    assert_eq!(s["steps"].as_u64(), Some(steps + 20), "{s}");
}

// ---------------------------------------------------------------------------------------------------------------
// eval, render, truth

#[test]
fn eval_prints_json_and_writes_eval_json() {
    let tmp = TempDir::new().unwrap();
    let dir = train_ok(tmp.path(), "m", &["--data", "mandelbrot", "--set", "data.samples=1000", "--steps", "5"]);
    let out = approxlab().arg("eval").arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["step"].as_u64(), Some(5), "{printed}");
    assert!(printed["eval"]["mse"].as_f64().is_some_and(f64::is_finite), "{printed}");
    assert!(printed["eval"]["psnr"].as_f64().is_some_and(f64::is_finite), "{printed}");
    assert_eq!(read_json(&dir.join("eval.json")), printed);
    // The checkpoint's eval is the summary's.
    assert_eq!(printed["eval"]["mse"], summary(&dir)["eval"]["mse"]);
}

#[test]
fn render_writes_the_requested_size_and_window() {
    let tmp = TempDir::new().unwrap();
    let dir = train_ok(tmp.path(), "m", &["--data", "mandelbrot", "--set", "data.samples=1000", "--steps", "5"]);
    let png = tmp.path().join("f.png");
    approxlab()
        .args(["render", dir.to_str().unwrap(), "--size", "64x48", "--out", png.to_str().unwrap()])
        .assert()
        .success();
    let img = decode_png(&png);
    assert_eq!((img.width(), img.height()), (64, 48));

    let zoom = tmp.path().join("zoom.png");
    approxlab()
        .args(["render", dir.to_str().unwrap(), "--size", "40x30", "--window", "-0.8,-0.7,0.05,0.15"])
        .args(["--colormap", "gray", "--out", zoom.to_str().unwrap()])
        .assert()
        .success();
    let img = decode_png(&zoom).to_rgb8();
    assert_eq!(img.dimensions(), (40, 30));
    assert!(img.pixels().all(|p| p[0] == p[1] && p[1] == p[2]), "gray colormap gives gray pixels");
    // A different window is a different picture.
    let whole = tmp.path().join("whole.png");
    approxlab()
        .args(["render", dir.to_str().unwrap(), "--size", "40x30", "--colormap", "gray", "--out"])
        .arg(&whole)
        .assert()
        .success();
    assert_ne!(decode_png(&whole).to_rgb8().into_raw(), img.into_raw());

    // --window is for 2-D scalar data only.
    let curve = train_ok(tmp.path(), "c", &["--data", "curve:sin(3x)", "--head", "linear", "--steps", "5"]);
    let bad = tmp.path().join("bad.png");
    expect_error(
        &["render", curve.to_str().unwrap(), "--window", "0,1,0,1", "--out", bad.to_str().unwrap()],
        "--window",
    );
    assert!(!bad.exists());
    // A curve renders as a plot of the requested size.
    let plot = tmp.path().join("plot.png");
    approxlab()
        .args(["render", curve.to_str().unwrap(), "--size", "120x80", "--out", plot.to_str().unwrap()])
        .assert()
        .success();
    let img = decode_png(&plot);
    assert_eq!((img.width(), img.height()), (120, 80));
}

/// The gray level `truth` draws for one pixel centred on `(cx, cy)`.
fn truth_gray(data: &str, depth: u32, cx: f64, cy: f64) -> u8 {
    let tmp = TempDir::new().unwrap();
    let png = tmp.path().join("p.png");
    let h = 1e-7;
    let window = format!("{},{},{},{}", cx - h, cx + h, cy - h, cy + h);
    approxlab()
        .args(["truth", data, "--size", "1x1", "--colormap", "gray", "--set", &format!("depth={depth}")])
        .arg(format!("--window={window}"))
        .args(["--out", png.to_str().unwrap()])
        .assert()
        .success()
        .stdout(predicate::str::contains("wrote"));
    let img = decode_png(&png).to_rgb8();
    assert_eq!(img.dimensions(), (1, 1));
    let p = img.get_pixel(0, 0);
    assert!(p[0] == p[1] && p[1] == p[2], "{p:?}");
    p[0]
}

#[test]
fn truth_draws_known_mandelbrot_values() {
    for (data, depth, cx, cy, value) in [
        ("mandelbrot", 50, 0.5, 0.0, 0.074074),
        ("mandelbrot:periodic", 200, 0.5, 0.0, 0.192720),
        ("mandelbrot:periodic", 200, -0.75, 0.1, 0.144441),
    ] {
        let gray = truth_gray(data, depth, cx, cy) as f64;
        let expected = 255.0 * value;
        assert!(
            (gray - expected).abs() <= 1.0,
            "{data} depth {depth} at ({cx}, {cy}): gray {gray}, expected {expected:.2}"
        );
    }
    // A window given with a leading minus as a separate argument.
    let tmp = TempDir::new().unwrap();
    let png = tmp.path().join("w.png");
    approxlab()
        .args(["truth", "mandelbrot", "--size", "8x6", "--window", "-0.8,-0.7,0.05,0.15", "--out"])
        .arg(&png)
        .assert()
        .success();
    assert_eq!(decode_png(&png).width(), 8);
}

// ---------------------------------------------------------------------------------------------------------------
// bad input: exit code 2, one line

#[test]
#[cfg(unix)]
fn output_into_a_closed_pipe_ends_quietly() {
    use std::process::Stdio;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_approxlab"))
        .args(["train", "--data", "mandelbrot", "--print-config"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the reading end before the program gets to print (`approxlab ... | head` with head already gone).
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("internal error") && !stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_bad_kernel_choice_is_a_one_line_error_naming_the_variable() {
    let e = expect_error_with_env(&["bench", "--seconds", "0"], &[("APPROXLAB_GEMM", "mkl")], "APPROXLAB_GEMM");
    assert!(e.contains("'mkl'") && e.contains("auto, gemm or openblas"), "{e}");
    let missing = [("APPROXLAB_GEMM", "openblas"), ("APPROXLAB_OPENBLAS", "/nonexistent/libopenblas.so")];
    let e = expect_error_with_env(&["bench", "--seconds", "0"], &missing, "APPROXLAB_GEMM=openblas");
    assert!(e.contains("/nonexistent/libopenblas.so") && e.contains("APPROXLAB_GEMM=gemm"), "{e}");
}

#[test]
fn error_missing_image_file() {
    let tmp = TempDir::new().unwrap();
    let path = tmp.path().join("nope.png");
    train_error(&["--data", &format!("image:{}", path.display())], "nope.png");
}

#[test]
fn error_non_image_file_as_image() {
    let tmp = TempDir::new().unwrap();
    let path = tmp.path().join("fake.png");
    std::fs::write(&path, "this is not a picture\n").unwrap();
    train_error(&["--data", &format!("image:{}", path.display())], "fake.png");
}

#[test]
fn error_empty_csv() {
    let tmp = TempDir::new().unwrap();
    let path = tmp.path().join("empty.csv");
    std::fs::write(&path, "").unwrap();
    train_error(&["--data", &format!("curve:csv:{}", path.display())], "empty.csv");
    std::fs::write(&path, "x,y\n").unwrap();
    train_error(&["--data", &format!("curve:csv:{}", path.display())], "empty.csv");
}

#[test]
fn error_inverted_mandelbrot_window() {
    train_error(&["--data", "mandelbrot", "--set", "data.window=[1.0,-2.0,-1.0,1.0]"], "window");
}

#[test]
fn error_depth_zero() {
    train_error(&["--data", "mandelbrot", "--set", "data.depth=0"], "depth");
    let tmp = TempDir::new().unwrap();
    let png = tmp.path().join("t.png");
    expect_error(&["truth", "mandelbrot", "--set", "depth=0", "--out", png.to_str().unwrap()], "depth");
}

#[test]
fn error_unknown_names() {
    train_error(&["--encoding", "bogusenc:3"], "bogusenc");
    train_error(&["--network", "bogusnet:2x3"], "bogusnet");
    train_error(&["--network", "mlp:2x8:bogusact"], "bogusact");
    train_error(&["--colormap", "boguscm"], "boguscm");
    train_error(&["--data", "bogusdata"], "bogusdata");
    train_error(&["--data", "surface:bogussurf"], "bogussurf");
    train_error(&["--head", "bogushead"], "bogushead");
    train_error(&["--schedule", "bogussched"], "bogussched");
    train_error(&["--data", "curve:sin(3*"], "sin(3*");
    let tmp = TempDir::new().unwrap();
    let png = tmp.path().join("t.png");
    expect_error(&["truth", "mandelbrot", "--colormap", "boguscm", "--out", png.to_str().unwrap()], "boguscm");
}

#[test]
fn error_config_typo_names_file_line_and_column() {
    let tmp = TempDir::new().unwrap();
    let path = tmp.path().join("typo.toml");
    std::fs::write(&path, "seed = 1\n[train]\nlr = 0.1\nbacth = 3\n").unwrap();
    let e = train_error(&["--config", path.to_str().unwrap()], "bacth");
    assert!(e.contains(&format!("{}:4:1", path.display())), "{e}");
}

#[test]
fn error_zero_width_network() {
    train_error(&["--network", "mlp:2x0"], "width");
}

#[test]
fn error_fourier_series_on_one_dimensional_data() {
    train_error(&["--data", "curve:sin(3x)", "--encoding", "fourier-series:8"], "fourier_series");
}

#[test]
fn error_nan_learning_rate() {
    train_error(&["--lr", "NaN"], "--lr");
    train_error(&["--lr", "inf"], "--lr");
    train_error(&["--set", "train.lr=nan"], "lr");
}

#[test]
fn error_bad_budgets() {
    train_error(&["--time", "soon"], "soon");
    train_error(&["--set", "budget.steps=0"], "steps");
}

#[test]
fn error_run_name_taken() {
    let tmp = TempDir::new().unwrap();
    let dir = train_ok(tmp.path(), "r", &["--data", "curve:sin(3x)", "--head", "linear", "--steps", "2"]);
    let before = std::fs::read(dir.join("summary.json")).unwrap();
    let args = tiny(tmp.path(), "r", &["--data", "curve:sin(3x)", "--steps", "3"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    expect_error(&args, "already exists");
    assert_eq!(std::fs::read(dir.join("summary.json")).unwrap(), before, "the old run was touched");
}

#[test]
fn error_resume_of_a_directory_that_is_not_a_run() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("notarun");
    std::fs::create_dir(&dir).unwrap();
    expect_error(&["resume", dir.to_str().unwrap()], "notarun");
    expect_error(&["resume", tmp.path().join("missing").to_str().unwrap()], "missing");
    expect_error(&["eval", dir.to_str().unwrap()], "notarun");
    expect_error(&["render", dir.to_str().unwrap(), "--out", tmp.path().join("x.png").to_str().unwrap()], "notarun");
}

#[test]
fn error_render_zero_size() {
    let tmp = TempDir::new().unwrap();
    let dir = train_ok(tmp.path(), "c", &["--data", "curve:sin(3x)", "--head", "linear", "--steps", "2"]);
    let png = tmp.path().join("x.png");
    expect_error(&["render", dir.to_str().unwrap(), "--size", "0x5", "--out", png.to_str().unwrap()], "0x5");
    assert!(!png.exists());
}

#[test]
fn error_missing_config_file() {
    let tmp = TempDir::new().unwrap();
    let path = tmp.path().join("missing.toml");
    train_error(&["--config", path.to_str().unwrap()], "missing.toml");
}

// ---------------------------------------------------------------------------------------------------------------
// divergence

fn diverge(out: &Path) -> (PathBuf, std::process::Output) {
    let output = approxlab()
        .args(tiny(out, "d", &["--data", "curve:sin(3x)", "--head", "linear", "--lr", "1e30", "--steps", "50"]))
        .args(["--checkpoint-every", "1"])
        .output()
        .unwrap();
    (out.join("d"), output)
}

#[test]
fn divergence_exits_1_and_keeps_the_last_checkpoint() {
    let tmp = TempDir::new().unwrap();
    let (dir, output) = diverge(tmp.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("diverged at step"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let s = summary(&dir);
    assert_eq!(s["status"], "diverged", "{s}");
    let steps = s["steps"].as_u64().unwrap();
    assert!(steps < 50, "{s}");
    // The latest checkpoint holds parameters from before the divergence whose loss was finite: a numbered
    // checkpoint of an earlier step, never overwritten by the diverged state.
    let out = approxlab().arg("eval").arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let e: Value = serde_json::from_slice(&out.stdout).unwrap();
    let kept = e["step"].as_u64().unwrap();
    assert!(kept < steps, "kept step {kept}, diverged at {steps}");
    assert!(e["eval"]["mse"].as_f64().is_some_and(f64::is_finite), "{e}");
    let latest = dir.join("checkpoints/latest.safetensors");
    let numbered = dir.join(format!("checkpoints/step-{kept:08}.safetensors"));
    assert!(latest.is_file() && numbered.is_file());
    let ((tl, ml), (tn, mn)) = (safetensors(&latest), safetensors(&numbered));
    assert!(tl == tn && ml == mn, "latest.safetensors differs from the numbered checkpoint of step {kept}");
    for (name, (_, bytes)) in &tl {
        let floats = bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap()));
        assert!(floats.clone().all(f32::is_finite), "tensor {name} of the kept checkpoint is not finite");
    }
    assert!(!dir.join("learned.png").exists(), "a diverged run renders nothing");
}

#[test]
fn divergence_names_a_checkpoint_that_evaluates_to_a_finite_loss() {
    let tmp = TempDir::new().unwrap();
    let (dir, output) = diverge(tmp.path());
    assert_eq!(output.status.code(), Some(1));
    let out = approxlab().arg("eval").arg(&dir).output().unwrap();
    assert!(out.status.success());
    let e: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(e["eval"]["mse"].as_f64().is_some_and(f64::is_finite), "the 'last good checkpoint' evaluates to {e}");
}

#[test]
fn default_head_can_fit_a_curve_with_negative_values() {
    let tmp = TempDir::new().unwrap();
    // sin(3x) takes values in [-1, 1]; a head confined to [0, 1] cannot do better than mse 0.25.
    let dir = train_ok(tmp.path(), "c", &["--data", "curve:sin(3x)", "--steps", "2000", "--batch", "300"]);
    let s = summary(&dir);
    assert!(s["eval"]["mse"].as_f64().is_some_and(|m| m < 0.05), "{s}");
}

// ---------------------------------------------------------------------------------------------------------------
// demo and examples

#[test]
fn demo_help() {
    approxlab()
        .args(["demo", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Mandelbrot").and(predicate::str::contains("--out")));
    approxlab().arg("--help").assert().success().stdout(predicate::str::contains("train"));
}

fn example_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_example_config_loads() {
    let root = repo_root();
    let files = example_files();
    let names: Vec<String> = files.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for expected in [
        "demo.toml",
        "curve.toml",
        "image-tanh01.toml",
        "image-sigmoid.toml",
        "sphere.toml",
        "shell.toml",
        "mandelbrot-plain.toml",
        "taylor-linear.toml",
        "taylor-deep.toml",
        "fourier-curve.toml",
        "fourier-image.toml",
        "fourier-mandelbrot.toml",
        "fourier-shell.toml",
    ] {
        assert!(names.iter().any(|n| n == expected), "examples/{expected} is missing");
    }
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(text.starts_with('#'), "{} should open with a comment saying what it shows", file.display());
        let out = approxlab()
            .current_dir(&root)
            .args(["train", "--config", file.to_str().unwrap(), "--print-config"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
        let printed = String::from_utf8(out.stdout).unwrap();
        assert!(
            printed.contains("[budget]\nsteps = ")
                || printed.contains("time = ")
                || printed.contains("[budget]\nepochs = "),
            "{}: no budget",
            file.display()
        );
    }
    // The two image examples differ only in the head.
    let print = |name: &str| -> String {
        let out = approxlab()
            .current_dir(&root)
            .args(["train", "--config", &format!("examples/{name}"), "--print-config"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let (tanh, sigmoid) = (print("image-tanh01.toml"), print("image-sigmoid.toml"));
    assert!(tanh.contains("head = \"tanh01\"") && sigmoid.contains("head = \"sigmoid\""));
    assert_eq!(tanh.replace("head = \"tanh01\"", "head = \"sigmoid\""), sigmoid);
    // The Taylor examples share features and data, and differ in the network.
    let (lin, deep) = (print("taylor-linear.toml"), print("taylor-deep.toml"));
    for text in [&lin, &deep] {
        assert!(text.contains("type = \"taylor\"\norder = 8") && text.contains("kind = \"curve\""), "{text}");
    }
    assert!(lin.contains("[model.network]\ntype = \"linear\"") && deep.contains("[model.network]\ntype = \"mlp\""));
}

/// Each example trains for two steps on a shrunken data set and network (images are skipped when ../shared is
/// absent): the data, encoding and network of every example fit together.
#[test]
fn every_example_trains_briefly() {
    let root = repo_root();
    let tmp = TempDir::new().unwrap();
    for file in example_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        let mut cmd = approxlab();
        cmd.current_dir(&root)
            .args(["train", "--config", file.to_str().unwrap(), "--quiet", "--threads", "1", "--steps", "2"])
            .args(["--batch", "16", "--frame-every", "0", "--out", tmp.path().to_str().unwrap(), "--name", &stem]);
        if text.contains("kind = \"image\"") {
            let path = text.lines().find_map(|l| l.strip_prefix("path = ")).unwrap().trim_matches('"');
            if !root.join(path).is_file() {
                eprintln!("skipping {stem}: {path} is absent");
                continue;
            }
            cmd.args(["--set", "data.max_size=16"]);
        } else if text.contains("kind = \"mandelbrot\"") {
            cmd.args(["--set", "data.samples=500", "--set", "data.depth=50"]);
        } else if text.contains("kind = \"mnist\"") {
            if !root.join("../shared/data/mnist").is_dir() {
                eprintln!("skipping {stem}: ../shared/data/mnist is absent");
                continue;
            }
            cmd.args(["--set", "data.limit=200", "--set", "data.validation=50", "--set", "data.test_limit=100"]);
        } else {
            cmd.args(["--set", "data.samples=50"]);
        }
        if text.contains("width = ") {
            // Keep the network's type, depth and features; only make it cheap to train and render.
            cmd.args(["--set", "model.network.width=8"]);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{stem}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(summary(&tmp.path().join(&stem))["steps"].as_u64(), Some(2), "{stem}");
    }
}

#[test]
fn precision_is_chosen_recorded_and_changed_on_resume() {
    let tmp = TempDir::new().unwrap();
    // A network wide enough for bf16 products (16 units or more).
    let wide = ["--network", "mlp:2x32", "--encoding", "fourier:8", "--steps", "4"];
    let f32_run = train_ok(tmp.path(), "f32", &[&wide[..], &["--precision", "f32"]].concat());
    let s = summary(&f32_run);
    assert_eq!(s["precision"], "f32", "{s}");
    assert!(s["products"].as_str().unwrap().starts_with("f32 products"), "{s}");
    let asked = train_ok(tmp.path(), "bf16", &[&wide[..], &["--precision", "bf16"]].concat());
    let s = summary(&asked);
    // bf16 where this machine can run it; elsewhere the run trains in f32 and says why.
    let can = approxlab_engine::precision::PrecisionSetting::Bf16.resolve().precision.to_string();
    assert_eq!(s["precision"], can.as_str(), "{s}");
    if can == "f32" {
        assert!(s["products"].as_str().unwrap().contains("f32 products ("), "{s}");
    }
    assert!(std::fs::read_to_string(asked.join("config.toml")).unwrap().contains("precision = \"bf16\""));
    // Resume the bf16 run in f32: the checkpoint is f32 either way.
    let output =
        approxlab().args(["resume", asked.to_str().unwrap(), "--steps", "6", "--precision", "f32"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("products f32 products"));
    let s = summary(&asked);
    assert_eq!((s["precision"].as_str(), s["steps"].as_u64()), (Some("f32"), Some(6)), "{s}");
    assert!(std::fs::read_to_string(asked.join("config.toml")).unwrap().contains("precision = \"f32\""));
    let e = train_error(&["--precision", "fp8"], "--precision");
    assert!(e.contains("'fp8'") && e.contains("auto, f32 or bf16"), "{e}");
    let e = expect_error(&["resume", asked.to_str().unwrap(), "--precision", "half"], "--precision");
    assert!(e.contains("'half'"), "{e}");
}

#[test]
fn bf16_without_onednn_trains_in_f32_with_a_one_line_notice() {
    let tmp = TempDir::new().unwrap();
    let args = tiny(tmp.path(), "r", &["--network", "mlp:2x32", "--steps", "3", "--precision", "bf16"]);
    let output = approxlab().args(&args).env("APPROXLAB_ONEDNN", "/nonexistent/libdnnl.so.2").output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let notices: Vec<&str> = stderr.lines().filter(|l| l.starts_with("notice:")).collect();
    assert_eq!(notices.len(), 1, "{stderr}");
    assert!(
        notices[0].contains("precision bf16 is not available") && notices[0].contains("training in f32"),
        "{stderr}"
    );
    let s = summary(&tmp.path().join("r"));
    assert_eq!(s["precision"], "f32", "{s}");
}

#[test]
fn only_the_newest_numbered_checkpoints_are_kept() {
    let tmp = TempDir::new().unwrap();
    let numbered = |dir: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir.join("checkpoints"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("step-"))
            .collect();
        names.sort();
        names
    };
    let args = ["--data", "curve:sin(3x)", "--steps", "40", "--checkpoint-every", "5"];
    let kept = train_ok(tmp.path(), "kept", &[&args[..], &["--set", "output.keep_checkpoints=3"]].concat());
    assert_eq!(
        numbered(&kept),
        ["step-00000030.safetensors", "step-00000035.safetensors", "step-00000040.safetensors"]
    );
    assert!(kept.join("checkpoints/latest.safetensors").is_file());
    // Resumed, the run prunes what this session writes and leaves the earlier sessions' checkpoints alone.
    approxlab().args(["resume", kept.to_str().unwrap(), "--steps", "60", "--quiet"]).assert().success();
    assert_eq!(
        numbered(&kept),
        ["step-00000030", "step-00000035", "step-00000050", "step-00000055", "step-00000060"]
            .map(|s| format!("{s}.safetensors"))
    );
    let default = train_ok(tmp.path(), "default", &args);
    assert_eq!(numbered(&default).len(), 5, "five by default");
    let all = train_ok(tmp.path(), "all", &[&args[..], &["--set", "output.keep_checkpoints=0"]].concat());
    assert_eq!(numbered(&all).len(), 9, "0 keeps every one: steps 0, 5, ..., 40");
}
