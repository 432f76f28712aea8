//! Videos, zooms and comparisons from the command line, on tiny budgets.

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

fn approxlab() -> Command {
    let mut c = Command::cargo_bin("approxlab").unwrap();
    c.env("RUST_BACKTRACE", "1");
    c
}

/// Trains a tiny Mandelbrot run with frames and returns its directory.
fn mandelbrot_run(out: &Path, name: &str, extra: &[&str]) -> PathBuf {
    approxlab()
        .args(["train", "--quiet", "--threads", "2", "--out"])
        .arg(out)
        .args(["--name", name, "--data", "mandelbrot", "--set", "data.samples=2000", "--encoding", "fourier:4"])
        .args([
            "--network",
            "mlp:2x16",
            "--batch",
            "256",
            "--steps",
            "40",
            "--frame-every",
            "10",
            "--frame-size",
            "65x33",
        ])
        .args(extra)
        .assert()
        .success();
    out.join(name)
}

/// Top-level ISO BMFF boxes of an MP4 file: (type, size).
fn mp4_boxes(bytes: &[u8]) -> Vec<(String, usize)> {
    let mut boxes = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        boxes.push((String::from_utf8_lossy(&bytes[at + 4..at + 8]).into_owned(), size));
        if size < 8 {
            break;
        }
        at += size;
    }
    boxes
}

fn gif_frames(path: &Path) -> (usize, (u16, u16)) {
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::RGBA);
    let mut decoder = options.read_info(std::fs::File::open(path).unwrap()).unwrap();
    let size = (decoder.width(), decoder.height());
    let mut n = 0;
    while decoder.read_next_frame().unwrap().is_some() {
        n += 1;
    }
    (n, size)
}

fn error_line(output: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error:") && !stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn train_with_video_writes_an_mp4_of_every_frame() {
    let tmp = TempDir::new().unwrap();
    let dir = mandelbrot_run(tmp.path(), "v", &["--video"]);
    let frames = std::fs::read_dir(dir.join("frames")).unwrap().count();
    assert_eq!(frames, 5, "frames at steps 0, 10, 20, 30, 40");
    let bytes = std::fs::read(dir.join("video.mp4")).unwrap();
    let names: Vec<String> = mp4_boxes(&bytes).into_iter().map(|(n, _)| n).collect();
    for b in ["ftyp", "moov", "mdat"] {
        assert!(names.iter().any(|n| n == b), "no {b} box in {names:?}");
    }
    // The frame count and duration live in the moov box; the view crate's tests parse them in depth.
    assert_eq!(mp4_boxes(&bytes).iter().map(|(_, s)| s).sum::<usize>(), bytes.len());
}

#[test]
fn video_command_makes_a_gif_and_a_high_resolution_final_frame() {
    let tmp = TempDir::new().unwrap();
    let dir = mandelbrot_run(tmp.path(), "g", &[]);
    approxlab().args(["video"]).arg(&dir).args(["--format", "gif", "--fps", "10"]).assert().success();
    let (n, size) = gif_frames(&dir.join("video.gif"));
    assert_eq!(n, 5);
    // 65x33 frames plus the caption bar, as rendered.
    let first = image::open(dir.join("frames/step-00000000.png")).unwrap();
    assert_eq!((size.0 as u32, size.1 as u32), (first.width(), first.height()));
    let hires = image::open(dir.join("final.png")).unwrap();
    assert_eq!(hires.width(), 1920);
}

#[test]
fn video_of_a_run_without_frames_is_a_clear_error() {
    let tmp = TempDir::new().unwrap();
    let out = tmp.path();
    approxlab()
        .args(["train", "--quiet", "--out"])
        .arg(out)
        .args(["--name", "n", "--data", "curve:sin(3x)", "--network", "mlp:1x8", "--steps", "5", "--batch", "32"])
        .assert()
        .success();
    let e = error_line(&approxlab().args(["video"]).arg(out.join("n")).output().unwrap());
    assert!(e.contains("has no frames") && e.contains("--frame-every"), "{e}");
    let e = error_line(&approxlab().args(["video"]).arg(out.join("n")).args(["--format", "avi"]).output().unwrap());
    assert!(e.contains("avi") && e.contains("mp4"), "{e}");
    // `--video` alone picks a cadence: about 60 frames over the budget, denser at the start.
    approxlab()
        .args(["train", "--video", "--data", "curve", "--steps", "300", "--threads", "1", "--name", "auto", "-q"])
        .arg("--out")
        .arg(out)
        .assert()
        .success();
    let mut steps: Vec<u64> = std::fs::read_dir(out.join("auto/frames"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("step-")?.strip_suffix(".png")?.parse().ok())
        .collect();
    steps.sort();
    assert!((50..=62).contains(&steps.len()), "{} frames: {steps:?}", steps.len());
    assert!(out.join("auto/video.mp4").is_file());
    let (first_half, last) = (steps.iter().filter(|s| **s < 150).count(), *steps.last().unwrap());
    assert!(first_half > 2 * (steps.len() - first_half), "denser at the start: {steps:?}");
    assert!(last >= 290, "the last frame near the end of the budget: {steps:?}");
}

#[test]
fn zoom_renders_learned_truth_and_error_for_each_frame() {
    let tmp = TempDir::new().unwrap();
    let dir = mandelbrot_run(tmp.path(), "z", &[]);
    let out = tmp.path().join("zoom.gif");
    approxlab()
        .args(["zoom"])
        .arg(&dir)
        .args(["--center", "-0.745,0.113", "--to-width", "0.01", "--frames", "6", "--size", "65x33", "--error"])
        .args(["--format", "gif", "--out"])
        .arg(&out)
        .assert()
        .success();
    let (n, (w, _)) = gif_frames(&out);
    assert_eq!(n, 6);
    assert!(w >= 3 * 65, "three panels side by side, got width {w}");
    let e = error_line(
        &approxlab().args(["zoom"]).arg(&dir).args(["--center", "x", "--to-width", "0.1"]).output().unwrap(),
    );
    assert!(e.contains("--center"), "{e}");
    let e = error_line(
        &approxlab()
            .args(["zoom"])
            .arg(&dir)
            .args(["--center", "0,0", "--to-width", "0.1", "--colormap", "jet"])
            .output()
            .unwrap(),
    );
    assert!(e.contains("jet") && e.contains("inferno"), "{e}");
}

fn write_config(dir: &Path, name: &str, encoding: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let text = format!(
        "[data]\nkind = \"curve\"\ntarget = \"sin(3x)\"\n\n[model]\nencoding = {encoding}\n\
         network = {{ type = \"mlp\", depth = 2, width = 16 }}\n\n[train]\nbatch = 64\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn compare_trains_every_model_on_the_same_budget_and_size() {
    let tmp = TempDir::new().unwrap();
    let a = write_config(tmp.path(), "plain", "{ type = \"identity\" }");
    let b = write_config(tmp.path(), "fourier", "{ type = \"fourier\", order = 8 }");
    approxlab()
        .args(["compare"])
        .args([&a, &b])
        .args(["--steps", "30", "--match-params", "600", "--frames", "3", "--quiet", "--threads", "1", "--out"])
        .arg(tmp.path())
        .args(["--name", "c"])
        .assert()
        .success();
    let dir = tmp.path().join("c");
    let rows: Vec<Value> = serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(rows.len(), 2);
    for (row, name) in rows.iter().zip(["plain", "fourier"]) {
        assert_eq!(row["model"], name);
        assert_eq!(row["steps"], 30, "{row}");
        let params = row["params"].as_u64().unwrap() as f64;
        assert!((params - 600.0).abs() / 600.0 < 0.15, "{row}");
        assert!(row["eval_mse"].as_f64().is_some_and(f64::is_finite), "{row}");
    }
    let md = std::fs::read_to_string(dir.join("results.md")).unwrap();
    assert_eq!(md.lines().count(), 4, "{md}");
    assert!(image::open(dir.join("loss.png")).is_ok());
    let bytes = std::fs::read(dir.join("grid.mp4")).unwrap();
    assert!(mp4_boxes(&bytes).iter().any(|(n, _)| n == "moov"));
    let grid = image::open(dir.join("grid.png")).unwrap();
    let tile = image::open(dir.join("plain/frames/step-00000000.png")).unwrap();
    assert!(grid.width() >= 2 * tile.width(), "two tiles side by side");
}

#[test]
fn compare_with_a_time_budget_gives_each_model_the_same_time() {
    let tmp = TempDir::new().unwrap();
    let a = write_config(tmp.path(), "a", "{ type = \"identity\" }");
    let b = write_config(tmp.path(), "b", "{ type = \"taylor\", order = 4 }");
    approxlab()
        .args(["compare"])
        .args([&a, &b])
        .args(["--time", "1s", "--frames", "2", "--quiet", "--out"])
        .arg(tmp.path())
        .args(["--name", "t"])
        .assert()
        .success();
    let rows: Vec<Value> = serde_json::from_slice(&std::fs::read(tmp.path().join("t/results.json")).unwrap()).unwrap();
    for row in &rows {
        let wall = row["wall_s"].as_f64().unwrap();
        assert!((0.95..5.0).contains(&wall), "{row}");
    }
    let e = error_line(&approxlab().args(["compare"]).arg(&a).args(["--out"]).arg(tmp.path()).output().unwrap());
    assert!(e.contains("--steps") && e.contains("--time"), "{e}");
}

/// `output.frame_panels = ["neurons"]`: every frame carries the neurons beside the learned function, the tiles
/// change as it learns, and data with more than two inputs is refused before training.
#[test]
fn the_neurons_panel_is_in_every_frame_and_changes_while_learning() {
    let tmp = TempDir::new().unwrap();
    let dir = mandelbrot_run(tmp.path(), "n", &["--set", "output.frame_panels=[\"neurons\"]"]);
    let plain = mandelbrot_run(tmp.path(), "p", &[]);
    let (first, last) = (dir.join("frames/step-00000000.png"), dir.join("frames/step-00000040.png"));
    let (a, b) = (image::open(&first).unwrap().to_rgb8(), image::open(&last).unwrap().to_rgb8());
    let bare = image::open(plain.join("frames/step-00000000.png")).unwrap();
    // fourier:4 features (18) and two layers of 16: three blocks of tiles to the right of the 65 px picture.
    assert!(a.width() > bare.width() + 3 * 100, "{} vs {} without neurons", a.width(), bare.width());
    let x0 = bare.width() + 6;
    let region = |img: &image::RgbImage| -> Vec<u8> {
        (x0..img.width()).flat_map(|x| (0..img.height()).flat_map(move |y| img.get_pixel(x, y).0)).collect()
    };
    assert_ne!(region(&a), region(&b), "the neurons did not change between steps 0 and 40");
    let blue_or_orange = (x0..a.width())
        .flat_map(|x| (0..a.height()).map(move |y| (x, y)))
        .filter(|&(x, y)| matches!(a.get_pixel(x, y).0, [33, 102, 172] | [230, 126, 34]))
        .count();
    assert!(blue_or_orange > 10, "no unit at its extreme value: {blue_or_orange} pixels");
    let csv = tmp.path().join("three.csv");
    std::fs::write(&csv, "a,b,c,y\n0,1,2,3\n1,2,3,4\n2,3,4,5\n5,1,2,0\n").unwrap();
    let out = approxlab()
        .args(["train", "--quiet", "--out"])
        .arg(tmp.path())
        .arg("--data")
        .arg(format!("csv:{}", csv.display()))
        .args(["--steps", "5", "--frame-every", "5"])
        .args(["--set", "output.frame_panels=[\"neurons\"]"])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success() && e.contains("neurons view needs 1-D or 2-D inputs"), "{e}");
    assert!(!e.contains("panicked"), "{e}");
}
