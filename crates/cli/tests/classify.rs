//! Classification and tables from the command line: MNIST (when the developers' copy is present) and CSV files.

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

fn approxlab() -> Command {
    let mut c = Command::cargo_bin("approxlab").unwrap();
    c.env("RUST_BACKTRACE", "1");
    c
}

fn mnist_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/mnist");
    if dir.join("train-images-idx3-ubyte.gz").is_file() {
        Some(dir)
    } else {
        eprintln!("skipping: {} is absent", dir.display());
        None
    }
}

fn summary(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap()
}

fn error_line(output: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error:") && !stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn mnist_subset_reaches_over_90_percent_test_accuracy() {
    let Some(mnist) = mnist_dir() else { return };
    let tmp = TempDir::new().unwrap();
    approxlab()
        .args(["train", "--quiet", "--threads", "2", "--data"])
        .arg(format!("mnist:{}", mnist.display()))
        .args(["--set", "data.limit=12000", "--set", "data.validation=2000", "--network", "mlp:2x128"])
        .args(["--batch", "128", "--epochs", "3", "--frame-every", "94", "--out"])
        .arg(tmp.path())
        .args(["--name", "m"])
        .assert()
        .success();
    let dir = tmp.path().join("m");
    let s = summary(&dir);
    let test = s["test"]["accuracy"].as_f64().unwrap();
    assert!(test > 0.90, "test accuracy {test}");
    // Softmax and cross-entropy are the defaults for classification data.
    let config = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    assert!(config.contains("head = \"softmax\"") && config.contains("type = \"cross_entropy\""), "{config}");
    // The confusion matrix is of the 10,000 test images.
    let cm = s["confusion_matrix"].as_array().unwrap();
    assert_eq!(cm.len(), 10);
    let total: u64 = cm.iter().flat_map(|r| r.as_array().unwrap()).map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(total, 10_000);
    // One metrics line per epoch with training and validation accuracy and loss.
    let metrics = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    let epochs: Vec<Value> = metrics
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v.get("epoch").is_some())
        .collect();
    assert_eq!(epochs.len(), 3, "{metrics}");
    for e in &epochs {
        for split in ["train", "val", "test"] {
            assert!(e[split]["accuracy"].as_f64().is_some_and(|a| (0.0..=1.0).contains(&a)), "{e}");
            assert!(e[split]["loss"].as_f64().is_some_and(f64::is_finite), "{e}");
        }
    }
    // Frames show digits, the confusion matrix and the accuracy curves; the final one is kept too.
    let frame = image::open(dir.join("frames/step-00000094.png")).unwrap().to_rgb8();
    assert!(frame.width() > 800, "three panels side by side");
    assert!(image::open(dir.join("classification.png")).is_ok());
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn csv_classification_and_regression_with_column_flags() {
    let tmp = TempDir::new().unwrap();
    // Two well separated blobs labelled by name, plus a column to ignore.
    let mut text = String::from("a,b,noise,label\n");
    for i in 0..200 {
        let t = i as f64 * 0.37;
        let (cx, label) = if i % 2 == 0 { (-2.0, "left") } else { (2.0, "right") };
        text += &format!("{},{},{},{label}\n", cx + t.sin() * 0.5, t.cos() * 0.5, (t * 7.0).sin());
    }
    let csv = write(tmp.path(), "blobs.csv", &text);
    approxlab()
        .args(["train", "--quiet", "--data"])
        .arg(format!("csv:{}", csv.display()))
        .args(["--inputs", "a,b", "--targets", "label", "--task", "classification", "--network", "mlp:1x16"])
        .args(["--steps", "150", "--batch", "32", "--lr", "0.01", "--out"])
        .arg(tmp.path())
        .args(["--name", "c"])
        .assert()
        .success();
    let s = summary(&tmp.path().join("c"));
    assert!(s["eval"]["accuracy"].as_f64().unwrap() > 0.95, "{s}");
    assert_eq!(s["class_names"], serde_json::json!(["left", "right"]));
    assert_eq!(s["confusion_matrix"].as_array().unwrap().len(), 2);
    assert_eq!(s["parts"][0]["outputs"], 2, "two inputs were chosen: {s}");

    // Regression on a linear function of three columns.
    let mut text = String::new();
    for i in 0..300 {
        let (x, y, z) = ((i as f64 * 0.13).sin(), (i as f64 * 0.29).cos(), (i % 7) as f64 / 7.0);
        text += &format!("{x},{y},{z},{}\n", 2.0 * x - y + 0.5 * z);
    }
    let csv = write(tmp.path(), "lin.csv", &text);
    approxlab()
        .args(["train", "--quiet", "--data"])
        .arg(format!("csv:{}", csv.display()))
        .args(["--network", "linear", "--steps", "400", "--batch", "64", "--lr", "0.05", "--out"])
        .arg(tmp.path())
        .args(["--name", "r"])
        .assert()
        .success();
    let s = summary(&tmp.path().join("r"));
    assert!(s["eval"]["mse"].as_f64().unwrap() < 1e-3, "{s}");
    assert!(s["eval"]["accuracy"].is_null());
}

#[test]
fn bad_tables_and_mnist_dirs_give_one_line_errors() {
    let tmp = TempDir::new().unwrap();
    let run = |data: String, extra: &[&str]| {
        approxlab()
            .args(["train", "--quiet", "--steps", "1", "--data"])
            .arg(data)
            .args(extra)
            .arg("--out")
            .arg(tmp.path())
            .output()
            .unwrap()
    };
    let ragged = write(tmp.path(), "ragged.csv", "1,2,3\n4,5\n");
    let e = error_line(&run(format!("csv:{}", ragged.display()), &[]));
    assert!(e.contains("ragged.csv") && e.contains("line 2"), "{e}");
    let words = write(tmp.path(), "words.csv", "x,y\n1,2\nthree,4\n");
    let e = error_line(&run(format!("csv:{}", words.display()), &[]));
    assert!(e.contains("words.csv") && e.contains("three"), "{e}");
    let nan = write(tmp.path(), "nan.csv", "x,y\n1,2\nNaN,4\n");
    let e = error_line(&run(format!("csv:{}", nan.display()), &[]));
    assert!(e.contains("nan.csv"), "{e}");
    let ok = write(tmp.path(), "ok.csv", "x,y\n1,2\n3,4\n5,6\n");
    let e = error_line(&run(format!("csv:{}", ok.display()), &["--inputs", "z"]));
    assert!(e.contains("'z'") || e.contains("z"), "{e}");
    let e = error_line(&run(format!("mnist:{}", tmp.path().join("nowhere").display()), &[]));
    assert!(e.contains("mnist") && e.contains("nowhere"), "{e}");
    let bad = tmp.path().join("badmnist");
    std::fs::create_dir_all(&bad).unwrap();
    for name in
        ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    {
        std::fs::write(bad.join(name), [0u8, 0, 8, 1, 0, 0, 0, 0]).unwrap();
    }
    let e = error_line(&run(format!("mnist:{}", bad.display()), &[]));
    assert!(e.contains("magic"), "{e}");
}
