//! `approxlab serve` and `approxlab train --serve` as a user runs them: a real process, real HTTP, Ctrl-C.

mod common;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Served {
    child: Child,
    addr: String,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary with `args` and reads the page's address from the first line that has one.
fn start(args: &[&str]) -> Served {
    start_with_env(args, &[])
}

fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_approxlab"))
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("approxlab starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let addr = common::read_address(&mut stdout);
    Served { child, addr, stdout }
}

fn http(addr: &str, method: &str, path: &str, body: Option<&str>) -> (u16, Vec<u8>) {
    common::http_as(addr, addr, method, path, body)
}

fn json(addr: &str, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let (status, bytes) = http(addr, method, path, body);
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn wait_for(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < Duration::from_secs(secs), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn interrupt(child: &Child) {
    signal(child, "INT");
}

fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill").args([&format!("-{name}"), &child.id().to_string()]).status().unwrap().success();
    assert!(ok, "kill -{name}");
}

fn wait_exit(child: &mut Child, secs: u64) -> std::process::ExitStatus {
    let t = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(t.elapsed() < Duration::from_secs(secs), "approxlab did not exit after Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serve_trains_runs_from_requests_refuses_paths_and_saves_on_ctrl_c() {
    let out = tempfile::tempdir().unwrap();
    let mut served = start(&["serve", "--port", "0", "--out", out.path().to_str().unwrap(), "--threads", "2"]);
    let addr = served.addr.clone();
    let (status, catalog) = json(&addr, "GET", "/api/catalog", None);
    assert_eq!(status, 200);
    assert!(catalog["data"].as_array().unwrap().iter().any(|d| d["value"] == "surface:shell"));

    let (status, d) = json(&addr, "POST", "/api/describe", Some(r#"{"data": "mandelbrot", "encoding": "fourier:16"}"#));
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["encoded_features"], 2 * (2 * 16 + 1), "fourier(16) of 2 inputs");

    refuses_requests_it_cannot_serve(&addr);
    trains_renders_and_continues_a_run(&addr, out.path());
    keeps_the_last_good_checkpoint_of_a_diverging_run(&addr);
    saves_a_long_run_on_sigterm(&mut served, out.path());
    lists_earlier_runs_after_a_restart(out.path());
}

/// Paths outside the page's reach, malformed fields and requests too big for the machine: 400, one line.
fn refuses_requests_it_cannot_serve(addr: &str) {
    for (body, needle) in [
        (r#"{"data": "image:/etc/passwd"}"#, "not available from the page"),
        (r#"{"data": "curve:csv:/etc/passwd"}"#, "CSV files cannot be read from the page"),
        (r#"{"data": "mnist:/tmp"}"#, "not available from the page"),
        (r#"{"data": "upload:../../etc/passwd"}"#, "not available from the page"),
        (r#"{"data": "upload:abcdef"}"#, "no such upload"),
        (r#"{"data": "curve", "bogus": 1}"#, "unknown key 'bogus'"),
        (r#"{"data": "curve", "steps": -3}"#, "steps -3: expected a whole number"),
        (r#"{"data": "curve", "network": "mlp:0x16"}"#, "network depth: must be at least 1"),
        (r#"{"data": "curve", "lr": "fast"}"#, "lr 'fast': expected a number"),
        // Requests that used to abort the whole process on an allocation failure.
        (r#"{"data": "mandelbrot", "batch": 1000000000, "steps": 5}"#, "of training buffers needs 1.6 TB"),
        (r#"{"data": "mandelbrot", "encoding": "fourier:100000000"}"#, "more than max_features"),
        (r#"{"data": "mandelbrot", "network": "mlp:1000x65536"}"#, "set --max-memory to change the limit"),
    ] {
        let (status, v) = json(addr, "POST", "/api/runs", Some(body));
        assert_eq!(status, 400, "{body}: {v}");
        let msg = v["error"].as_str().unwrap();
        assert!(msg.contains(needle), "{body}: {msg}");
        assert!(!msg.contains('\n'), "one line: {msg}");
    }
}

fn trains_renders_and_continues_a_run(addr: &str, out: &std::path::Path) {
    let (status, run) = json(
        addr,
        "POST",
        "/api/runs",
        Some(r#"{"data": "curve:sin(3x)", "encoding": "fourier:4", "network": "mlp:2x16", "steps": 300}"#),
    );
    assert_eq!(status, 201, "{run}");
    assert_eq!(run["id"], "run-1");
    assert_eq!(run["info"]["kind"], "curve");
    assert!(!run["info"]["points"].as_array().unwrap().is_empty(), "the page gets the data points");
    wait_for("run-1 to finish", 120, || json(addr, "GET", "/api/runs/run-1", None).1["status"] == "finished");
    let (_, detail) = json(addr, "GET", "/api/runs/run-1", None);
    assert_eq!(detail["step"], 300);
    assert!(detail["message"].as_str().unwrap().starts_with("finished after 300 steps"), "{detail}");
    let dir = std::path::PathBuf::from(detail["dir"].as_str().unwrap());
    assert!(dir.starts_with(out));
    for f in ["config.toml", "summary.json", "checkpoints/latest.safetensors", "learned.png"] {
        assert!(dir.join(f).exists(), "{f} missing in {}", dir.display());
    }
    let (status, png) = http(addr, "GET", "/api/runs/run-1/render?size=200x100", None);
    assert_eq!(status, 200);
    assert_eq!(image::load_from_memory(&png).unwrap().width(), 200);
    let (status, mp4) = http(addr, "GET", "/api/runs/run-1/video", None);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&mp4));
    assert_eq!(&mp4[4..8], b"ftyp", "an MP4 file");
    let (status, v) = json(addr, "GET", "/api/runs/run-1/render?window=0,1,0,1&size=20x20", None);
    assert_eq!(status, 400);
    assert!(v["error"].as_str().unwrap().contains("zooming applies to 2-D data"), "{v}");

    // An ended run continues from its checkpoint to a new total, keeping its loss curve.
    let (status, v) = json(addr, "POST", "/api/runs/run-1/continue", Some(r#"{"steps": 200}"#));
    assert_eq!(status, 400);
    assert!(v["error"].as_str().unwrap().contains("already at step 300"), "{v}");
    let points = detail["history"].as_array().unwrap().len();
    let (status, v) = json(addr, "POST", "/api/runs/run-1/continue", Some(r#"{"steps": 450}"#));
    assert_eq!(status, 200, "{v}");
    wait_for("run-1 to finish again", 120, || json(addr, "GET", "/api/runs/run-1", None).1["status"] == "finished");
    let (_, detail) = json(addr, "GET", "/api/runs/run-1", None);
    assert_eq!(detail["step"], 450);
    assert!(detail["history"].as_array().unwrap().len() > points, "the loss curve goes on");
    let summary: Value = serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["steps"], 450);
}

fn keeps_the_last_good_checkpoint_of_a_diverging_run(addr: &str) {
    // A run that diverges says so and keeps its last good checkpoint.
    let (status, _) =
        json(addr, "POST", "/api/runs", Some(r#"{"data": "curve", "network": "mlp:2x16", "lr": 1e30, "steps": 1000}"#));
    assert_eq!(status, 201);
    wait_for("run-2 to diverge", 60, || json(addr, "GET", "/api/runs/run-2", None).1["status"] == "diverged");
    let (_, detail) = json(addr, "GET", "/api/runs/run-2", None);
    assert!(detail["message"].as_str().unwrap().contains("the last good checkpoint is kept"), "{detail}");
    let dir2 = std::path::PathBuf::from(detail["dir"].as_str().unwrap());
    assert!(dir2.join("checkpoints/latest.safetensors").exists());
}

fn saves_a_long_run_on_sigterm(served: &mut Served, out: &std::path::Path) {
    let addr = served.addr.clone();
    // A long run, and the server stopped as `docker stop` or systemd stop it (SIGTERM): the run saves its
    // checkpoint and summary, and the server exits cleanly.
    let (status, _) =
        json(&addr, "POST", "/api/runs", Some(r#"{"data": "mandelbrot", "network": "mlp:2x16", "steps": 10000000}"#));
    assert_eq!(status, 201);
    wait_for("run-3 to take steps", 60, || json(&addr, "GET", "/api/runs/run-3", None).1["step"].as_u64() > Some(20));
    let (status, v) = json(&addr, "POST", "/api/runs/run-3/checkpoint", None);
    assert_eq!(status, 200, "{v}");
    // Paused, it saves too, and stays put.
    assert_eq!(json(&addr, "POST", "/api/runs/run-3/pause", None).0, 200);
    let (status, v) = json(&addr, "POST", "/api/runs/run-3/checkpoint", None);
    assert_eq!(status, 200, "{v}");
    let at = v["saved"].as_u64().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (_, again) = json(&addr, "GET", "/api/runs/run-3", None);
    assert!(again["paused"] == true && again["step"].as_u64().unwrap() <= at, "{again}");
    assert_eq!(json(&addr, "POST", "/api/runs/run-3/resume", None).0, 200);
    signal(&served.child, "TERM");
    let status = wait_exit(&mut served.child, 60);
    assert!(status.success(), "{status:?}");
    let run3 = std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("web-run-3"))
        .expect("run-3's directory");
    let summary: Value = serde_json::from_slice(&std::fs::read(run3.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["status"], "interrupted");
    assert!(run3.join("checkpoints/latest.safetensors").exists());
}

fn lists_earlier_runs_after_a_restart(out: &std::path::Path) {
    // A new server on the same directory lists those runs with their loss curves, and renders them.
    let again = start(&["serve", "--port", "0", "--out", out.to_str().unwrap()]);
    wait_for("the earlier runs to be listed", 60, || {
        json(&again.addr, "GET", "/api/runs", None).1.as_array().is_some_and(|a| a.len() == 3)
    });
    let (_, runs) = json(&again.addr, "GET", "/api/runs", None);
    let first = runs.as_array().unwrap().iter().find(|r| r["id"].as_str().unwrap().ends_with("web-run-1")).unwrap();
    assert_eq!(first["status"], "finished");
    assert_eq!(first["step"], 450, "as continued");
    assert!(first["message"].as_str().unwrap().contains("approxlab resume"), "{first}");
    let id = first["id"].as_str().unwrap();
    let (_, detail) = json(&again.addr, "GET", &format!("/api/runs/{id}"), None);
    assert!(!detail["history"].as_array().unwrap().is_empty(), "the loss curve comes back from metrics.jsonl");
    let (status, png) = http(&again.addr, "GET", &format!("/api/runs/{id}/render?size=64x32"), None);
    assert_eq!(status, 200);
    assert_eq!(image::load_from_memory(&png).unwrap().height(), 32);
    let (status, v) = json(&again.addr, "POST", "/api/runs", Some(r#"{"data": "curve", "steps": 5}"#));
    assert_eq!(status, 201);
    assert_eq!(v["id"], "run-1", "new runs are numbered from 1 again");
}

/// `approxlab challenge --serve`: while the entry trains, the page shows its score estimate, which is then close to
/// the score taken after training on a grid of its own.
#[test]
fn a_served_challenge_shows_its_score_estimate_while_it_trains() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    let mut served = start(&[
        "challenge",
        "--time",
        "8s",
        "--grid",
        "64x40",
        "--zoom-grid",
        "32x18",
        "--set",
        "train.batch=4096",
        "--set",
        "model.encoding.log2_table_size=14",
        "-q",
        "--serve",
        "--port",
        "0",
        "--out",
        dir,
        "--name",
        "live",
    ]);
    let addr = served.addr.clone();
    let mut estimate = String::new();
    wait_for("a score estimate on the page", 60, || {
        let (_, run) = json(&addr, "GET", "/api/runs/run-1", None);
        estimate = run["message"].as_str().unwrap_or("").to_string();
        run["status"] == "running" && estimate.starts_with("score estimate at step")
    });
    assert!(
        estimate.contains("s of 8 s of training") && estimate.contains("dB") && estimate.contains("480 x 303"),
        "{estimate}"
    );
    wait_for("the entry to finish", 120, || json(&addr, "GET", "/api/runs/run-1", None).1["status"] == "finished");
    interrupt(&served.child);
    let status = wait_exit(&mut served.child, 60);
    assert!(status.success(), "{status:?}");
    let score: Value = serde_json::from_slice(&std::fs::read(out.path().join("live/score.json")).unwrap()).unwrap();
    assert!(score["psnr"].as_f64().is_some_and(|p| p > 5.0), "{score}");
}

#[test]
fn train_serve_publishes_the_cli_run_and_exits_on_ctrl_c() {
    let out = tempfile::tempdir().unwrap();
    let mut served = start(&[
        "train",
        "--data",
        "surface:sphere",
        "--network",
        "mlp:2x16",
        "--steps",
        "200",
        "--quiet",
        "--serve",
        "--port",
        "0",
        "--out",
        out.path().to_str().unwrap(),
        "--name",
        "served",
    ]);
    let addr = served.addr.clone();
    wait_for("the run to finish", 120, || json(&addr, "GET", "/api/runs/run-1", None).1["status"] == "finished");
    let (_, runs) = json(&addr, "GET", "/api/runs", None);
    assert_eq!(runs.as_array().unwrap().len(), 1);
    assert_eq!(runs[0]["info"]["kind"], "surface");
    let mut line = String::new();
    let mut rest = String::new();
    while served.stdout.read_line(&mut line).unwrap() > 0 {
        rest += &line;
        if line.contains("stays at") {
            break;
        }
        line.clear();
    }
    assert!(rest.contains("finished after 200 steps"), "{rest}");
    interrupt(&served.child);
    let status = wait_exit(&mut served.child, 30);
    assert!(status.success(), "{status:?}");
    assert!(out.path().join("served/checkpoints/latest.safetensors").exists());
}

#[test]
fn a_run_that_fails_ends_as_failed_and_the_others_train_on() {
    let out = tempfile::tempdir().unwrap();
    let args = ["serve", "--port", "0", "--out", out.path().to_str().unwrap(), "--threads", "2", "--max-runs", "3"];
    // run-2 panics at step 30, as a bug in the training loop would.
    let served = start_with_env(&args, &[("APPROXLAB_INJECT_PANIC", "web-run-2@30")]);
    let addr = served.addr.clone();
    let long = r#"{"data": "curve", "network": "mlp:2x16", "steps": 100000000}"#;
    assert_eq!(json(&addr, "POST", "/api/runs", Some(long)).0, 201);
    assert_eq!(json(&addr, "POST", "/api/runs", Some(long)).0, 201);
    wait_for("run-2 to fail", 60, || json(&addr, "GET", "/api/runs/run-2", None).1["status"] == "failed");
    let (_, failed) = json(&addr, "GET", "/api/runs/run-2", None);
    let message = failed["message"].as_str().unwrap_or_default();
    assert!(message.contains("internal error") && message.contains("injected failure at step 30"), "{failed}");
    // run-1 goes on training, and the server goes on answering.
    let step = |run: &str| json(&addr, "GET", &format!("/api/runs/{run}"), None).1["step"].as_u64().unwrap_or(0);
    let before = step("run-1");
    wait_for("run-1 to train on", 60, || step("run-1") > before + 20);
    assert_eq!(json(&addr, "GET", "/api/runs/run-1", None).1["status"], "running");
    let (status, _) = json(&addr, "POST", "/api/runs", Some(r#"{"data": "curve", "network": "mlp:2x16", "steps": 5}"#));
    assert_eq!(status, 201, "a new run starts after the failure");
    wait_for("run-3 to finish", 60, || json(&addr, "GET", "/api/runs/run-3", None).1["status"] == "finished");
    assert_eq!(json(&addr, "POST", "/api/runs/run-1/stop", None).0, 200);
}

#[test]
fn runs_beyond_the_limit_wait_in_order_and_start_when_a_place_is_free() {
    let out = tempfile::tempdir().unwrap();
    let served = start(&["serve", "--port", "0", "--out", out.path().to_str().unwrap(), "--max-runs", "1"]);
    let addr = served.addr.clone();
    let long = r#"{"data": "curve", "network": "mlp:2x16", "steps": 100000000}"#;
    let short = r#"{"data": "curve", "network": "mlp:2x16", "steps": 20}"#;
    for body in [long, short, short] {
        assert_eq!(json(&addr, "POST", "/api/runs", Some(body)).0, 201);
    }
    let status = |run: &str| json(&addr, "GET", &format!("/api/runs/{run}"), None).1;
    wait_for("run-3 to be queued behind two", 30, || {
        status("run-3")["message"].as_str().is_some_and(|m| m.starts_with("queued: 2 runs ahead"))
    });
    assert_eq!(status("run-2")["status"], "queued", "{}", status("run-2"));
    assert!(status("run-2")["message"].as_str().unwrap().contains("1 run ahead"), "{}", status("run-2"));
    assert_eq!(status("run-2")["step"], 0);
    // A queued run can be stopped: it gives up its place without training.
    assert_eq!(json(&addr, "POST", "/api/runs/run-2/stop", None).0, 200);
    wait_for("run-2 to stop", 30, || status("run-2")["status"] == "stopped");
    assert_eq!(status("run-2")["step"], 0);
    assert_eq!(status("run-3")["status"], "queued");
    // When the long run stops, the next one in line trains.
    assert_eq!(json(&addr, "POST", "/api/runs/run-1/stop", None).0, 200);
    wait_for("run-3 to finish", 60, || status("run-3")["status"] == "finished");
    assert_eq!(status("run-3")["step"], 20);
}

/// The page's scene presets on the real binary: the catalog lists the scenes that train, and one request starts a
/// comparison's runs with the scene's own configs and quick budget, each in a run directory of its own.
#[test]
fn a_scene_preset_starts_the_scenes_runs() {
    let out = tempfile::tempdir().unwrap();
    let served = start(&["serve", "--port", "0", "--out", out.path().to_str().unwrap(), "--threads", "2"]);
    let addr = served.addr.clone();
    let (_, catalog) = json(&addr, "GET", "/api/catalog", None);
    let names: Vec<&str> = catalog["scenes"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"tanh-vs-sigmoid") && names.contains(&"curve"), "{names:?}");
    assert!(!names.contains(&"curse") && !names.contains(&"mnist"), "{names:?}: nothing to train, or no MNIST");
    let (status, runs) = json(&addr, "POST", "/api/scenes/tanh-vs-sigmoid", Some("{}"));
    assert_eq!(status, 201, "{runs}");
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1]["request"]["model"], "sigmoid");
    assert_eq!(runs[0]["steps"], 600, "the scene's quick budget");
    for run in runs {
        let dir = std::path::PathBuf::from(run["dir"].as_str().unwrap());
        assert!(dir.join("config.toml").is_file(), "{}", dir.display());
    }
    assert!(out.path().join("assets/test-card.png").is_file(), "image scenes learn the generated test card");
    let (status, e) = json(&addr, "POST", "/api/scenes/curse", Some("{}"));
    assert_eq!(status, 400);
    assert!(e["error"].as_str().unwrap().contains("not a preset of the page"), "{e}");
    for id in ["run-1", "run-2"] {
        // 409: it finished already.
        let status = json(&addr, "POST", &format!("/api/runs/{id}/stop"), None).0;
        assert!(status == 200 || status == 409, "{id}: {status}");
    }
}
