//! `approxlab challenge`: a short entry trains, is scored on small grids and writes a normal run directory with its
//! score and pictures; `--score` scores any run of the target, the same way each time; `--record` appends to the
//! leaderboard on the protocol's grids only.

use assert_cmd::Command;
use serde_json::Value;
use std::path::Path;
use tempfile::TempDir;

fn approxlab() -> Command {
    let mut cmd = Command::cargo_bin("approxlab").expect("the approxlab binary is built");
    cmd.env("RUST_BACKTRACE", "1");
    cmd
}

fn score(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("score.json")).unwrap()).unwrap()
}

fn png_size(path: &Path) -> (u32, u32) {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (img.width(), img.height())
}

const SMALL: [&str; 4] = ["--grid", "64x40", "--zoom-grid", "32x18"];

#[test]
fn a_short_challenge_trains_scores_and_writes_its_run() {
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("runs");
    let args = ["challenge", "--time", "3s", "--out", out.to_str().unwrap(), "--name", "quick", "-q"];
    let small_batch = ["--set", "train.batch=4096", "--set", "model.encoding.log2_table_size=14"];
    let stdout = approxlab().args(args).args(SMALL).args(small_batch).assert().success().get_output().stdout.clone();
    let stdout = String::from_utf8(stdout).unwrap();
    assert!(stdout.contains("score    quick: PSNR"), "{stdout}");
    let dir = out.join("quick");
    let s = score(&dir);
    let psnr = s["psnr"].as_f64().unwrap();
    assert!(psnr > 5.0 && psnr <= 100.0, "{s}");
    assert!((psnr - 10.0 * (1.0 / s["mse"].as_f64().unwrap()).log10()).abs() < 1e-9);
    assert!(s["boundary_mse"].as_f64().is_some_and(|b| b > 0.0));
    assert!(s["steps"].as_u64().unwrap() >= 1 && s["samples"].as_u64() == Some(s["steps"].as_u64().unwrap() * 4096));
    assert_eq!(s["protocol_grids"], false);
    assert_eq!(s["budget"], "3s");
    let zooms = s["zooms"].as_array().unwrap();
    assert_eq!(zooms.len(), 6, "the public windows");
    assert!(zooms.iter().any(|z| z["width"] == 1e-4));
    for z in zooms {
        let name = z["name"].as_str().unwrap();
        let (w, h) = png_size(&dir.join(format!("zoom-{name}.png")));
        assert_eq!(w, 3 * 32 + 2 * 8, "{name}: learned | truth | error");
        assert!(h > 18, "{name}: the panels under a label bar");
    }
    assert_eq!(png_size(&dir.join("full.png")), (64, 40));
    assert_eq!(png_size(&dir.join("error.png")), (64, 40));
    assert!(s["machine"]["cpu"].as_str().is_some_and(|c| !c.is_empty()));
    assert!(s["config"].as_str().unwrap().contains("error_field"), "the champion's sampler");
    // A normal run directory: the config is the protocol's target, and render works on it.
    let config = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    assert!(config.contains("target = \"periodic\"") && config.contains("on_the_fly = true"), "{config}");
    let png = tmp.path().join("r.png");
    approxlab()
        .args(["render", dir.to_str().unwrap(), "--size", "40x30", "--out", png.to_str().unwrap()])
        .assert()
        .success();
    // Scoring the same checkpoint again gives the same figures.
    approxlab().args(["challenge", "--score", dir.to_str().unwrap(), "-q"]).args(SMALL).assert().success();
    let again = score(&dir);
    assert_eq!(again["psnr"], s["psnr"]);
    assert_eq!(again["zooms"], s["zooms"]);
}

/// A plain `train` run of the target is scored on the protocol's grids and recorded twice: the leaderboard is
/// made by the command, a row per record.
#[test]
fn score_records_a_plain_train_run_on_the_leaderboard() {
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("runs");
    let train = [
        "train",
        "--data",
        "mandelbrot:periodic",
        "--set",
        "data.samples=2000",
        "--network",
        "mlp:1x8",
        "--batch",
        "256",
        "--steps",
        "20",
        "-q",
        "--name",
        "plain",
        "--out",
    ];
    approxlab().args(train).arg(&out).assert().success();
    let run = out.join("plain");
    let board = tmp.path().join("docs/leaderboard.md");
    for _ in 0..2 {
        approxlab()
            .args(["challenge", "--score", run.to_str().unwrap(), "--record", "--leaderboard", board.to_str().unwrap()])
            .args(["--zoom", "-0.75,0.1,0.05"])
            .assert()
            .success();
    }
    let s = score(&run);
    assert_eq!(s["protocol_grids"], true);
    assert_eq!(s["grid"], serde_json::json!([3840, 2425]));
    assert_eq!(s["zooms"].as_array().unwrap().len(), 7, "the public windows and the one asked for");
    assert_eq!(png_size(&run.join("full.png")), (3840, 2425));
    let text = std::fs::read_to_string(&board).unwrap();
    assert!(text.starts_with("# Mandelbrot challenge leaderboard"), "{text}");
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("| plain |")).collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(rows[0].contains(&format!("{:.2}", s["psnr"].as_f64().unwrap())), "{}", rows[0]);
}

/// The universality rule: the champion's config, with only `--data` (and a short budget, smaller tables), learns a
/// table of five inputs. Its hash grid then works in 5-D and its error field coarsens to 5-D cells.
#[test]
fn the_champion_learns_a_five_input_table_unchanged() {
    let tmp = TempDir::new().unwrap();
    let mut csv = String::from("a,b,c,d,e,y\n");
    let mut state = 12345u64;
    let mut next = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    };
    for _ in 0..4000 {
        let x: Vec<f64> = (0..5).map(|_| next()).collect();
        let y = (2.0 * x[0]).sin() + x[1] * x[2] - 0.5 * x[3] * x[3] + 0.3 * x[4];
        csv += &format!("{},{},{},{},{},{y}\n", x[0], x[1], x[2], x[3], x[4]);
    }
    let path = tmp.path().join("five.csv");
    std::fs::write(&path, csv).unwrap();
    let out = tmp.path().join("runs");
    let output = approxlab()
        .args(["train", "--config", "examples/challenge/champion.toml", "--data"])
        .arg(format!("csv:{}", path.display()))
        .args(["--steps", "40", "--set", "model.encoding.log2_table_size=16"])
        .args(["--out", out.to_str().unwrap(), "--name", "five"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("error field of 21x21x21x21x21 cells"), "{stderr}");
    let s: Value = serde_json::from_slice(&std::fs::read(out.join("five/summary.json")).unwrap()).unwrap();
    assert_eq!(s["steps"], 40);
    assert!(s["parts"].to_string().contains("hash_grid"), "{s}");
    // The targets' variance is about 0.6: a model that learned nothing stays there. (It learns the training rows;
    // what it makes of rows it never saw is another matter, measured in docs/challenge.md.)
    let loss = s["train_loss"].as_f64().unwrap();
    assert!(loss < 0.1, "training loss {loss}: {s}");
    // On a fixed set the finest level follows the rows' spacing (1.5 cells per row along an axis: 3,200 training
    // rows give 5 per axis, so 8 cells), and the run's saved config says so.
    let saved = std::fs::read_to_string(out.join("five/config.toml")).unwrap();
    assert!(saved.contains("finest_resolution = 8\n"), "{saved}");
    assert!(saved.contains("base_resolution = 8\n") && !saved.contains("finest_from_data"), "{saved}");
}
