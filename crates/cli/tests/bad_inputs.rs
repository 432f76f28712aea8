//! The bad-input corpus: every case must end with a one-line error and exit code 2 (CLI) or a 4xx answer with a
//! one-line JSON error (the page's API), within a time bound, with no panic, abort or hang, and without the process
//! growing past 1 GB. The files are made here (small, or header-only where a real one would be large).
//!
//! `docs/reliability.md` lists every case with its message; `APPROXLAB_BLESS=1 cargo test --release --test
//! bad_inputs` rewrites that table, and this test fails when a case is missing from it.

mod common;

use serde_json::Value;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest any case may take: a bound against hangs, not a speed test.
const TIME_BOUND: Duration = Duration::from_secs(20);
/// Most memory any process of the corpus may reach.
const MEMORY_BOUND_KB: i64 = 1 << 20;

struct Outcome {
    case: String,
    message: String,
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_approxlab")
}

/// Runs the binary with `args`, killing it past the time bound; returns (exit code, stderr).
fn run_cli(args: &[String], dir: &Path) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    let mut child = Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code(), reader.join().unwrap(), started.elapsed());
        }
        if started.elapsed() > TIME_BOUND {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?}: still running after {TIME_BOUND:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn check_cli(case: &str, args: Vec<String>, dir: &Path, tmp: &Path) -> Outcome {
    let (code, stderr, took) = run_cli(&args, dir);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.starts_with("notice:")).collect();
    assert_eq!(code, Some(2), "{case} {args:?}: exit {code:?}, stderr: {stderr}");
    assert_eq!(lines.len(), 1, "{case} {args:?}: one line expected, got: {stderr}");
    assert!(lines[0].starts_with("error: "), "{case}: {stderr}");
    for bad in ["panicked", "internal error", "backtrace", "RUST_BACKTRACE"] {
        assert!(!stderr.contains(bad), "{case}: {stderr}");
    }
    assert!(took < TIME_BOUND, "{case}: {took:?}");
    Outcome { case: case.to_string(), message: shorten(&normalise(lines[0].trim_start_matches("error: "), tmp)) }
}

/// Messages that quote a very long input are cut for the table.
fn shorten(message: &str) -> String {
    match message.char_indices().nth(400) {
        Some((i, _)) => format!("{} ...", &message[..i]),
        None => message.to_string(),
    }
}

/// Temporary paths and machine sizes vary between runs; the table shows them as placeholders.
fn normalise(message: &str, tmp: &Path) -> String {
    let mut m = message.replace(&tmp.display().to_string(), "TMP");
    if let Some(i) = m.find("; this machine has ") {
        let rest = &m[i + 19..];
        let end = rest.find(" (").unwrap_or(rest.len());
        m = format!("{}; this machine has MEM{}", &m[..i], &rest[end..]);
    }
    if let Some(i) = m.find("more than the limit of ").filter(|_| m.contains("--max-memory")) {
        let rest = &m[i + 23..];
        let end = rest
            .find([';', ' '])
            .map_or(rest.len(), |e| rest[e + 1..].find([';', ' ']).map_or(rest.len(), |f| e + 1 + f));
        m = format!("{}more than the limit of LIMIT{}", &m[..i], &rest[end..]);
    }
    m
}

/// `train` with a tiny, fast base (1 thread, batch 64, 2x16 network, 2 steps) and `extra` after it: flags given
/// twice take the last value, so `extra` overrides the base.
fn train(out: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> =
        ["train", "--quiet", "--out", out.to_str().unwrap()].iter().map(|s| s.to_string()).collect();
    let has = |flag: &str| extra.iter().any(|a| *a == flag || a.starts_with(&format!("{flag}=")));
    for (flag, value) in [("--steps", "2"), ("--threads", "1")] {
        if !has(flag) && !has("--epochs") && !has("--time") {
            args.extend([flag.to_string(), value.to_string()]);
        }
    }
    if !has("--batch") {
        args.extend(["--batch".into(), "64".into()]);
    }
    if !has("--network") {
        args.extend(["--network".into(), "mlp:2x16".into()]);
    }
    if !has("--data") && !has("--config") {
        args.extend(["--data".into(), "curve".into()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Every train flag with its bad values.
fn flag_cases() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        ("--lr", vec!["nan", "inf", "-1", "0", "fast", "1e40"]),
        ("--batch", vec!["0", "-5", "many", "1000000000", "99999999999999999999"]),
        ("--steps", vec!["0", "-1", "ten"]),
        ("--epochs", vec!["0", "-2"]),
        ("--time", vec!["soon", "-5s", "10parsecs", "", "99999999999999999999s"]),
        ("--seed", vec!["-1", "abc"]),
        ("--threads", vec!["10000", "-1"]),
        ("--checkpoint-every", vec!["-1", "x"]),
        ("--eval-every", vec!["x"]),
        ("--frame-every", vec!["-3"]),
        ("--frame-seconds", vec!["nan", "-1"]),
        ("--frame-size", vec!["0x0", "10", "axb", "100000x100000"]),
        ("--colormap", vec!["rainbow-unicorn"]),
        ("--clip-grad-norm", vec!["0", "-1", "nan"]),
        ("--encoding-lr-scale", vec!["0", "nan"]),
        ("--input-range", vec!["1,0", "a,b", "1"]),
        ("--precision", vec!["fp8"]),
        ("--head", vec!["softplus"]),
        ("--loss", vec!["hinge", "huber:-1", "huber:x"]),
        ("--optimizer", vec!["lion", "adamw:-1", "sgd:x"]),
        ("--schedule", vec!["linear", "step:0:0.5", "step:10:-1", "exp:0", "cosine:-1", "cosine:10:x"]),
        (
            "--encoding",
            vec![
                "wavelet",
                "fourier:0",
                "fourier:-1",
                "fourier:x",
                "fourier:100000000",
                "taylor:0",
                "gaussian:0",
                "gaussian:10:-1",
                "gaussian:100000000",
                "hashgrid:0",
                "hashgrid:16:2:40",
                "positional:0",
                "fourier-series:1000",
            ],
        ),
        (
            "--network",
            vec![
                "transformer",
                "mlp:0x16",
                "mlp:2x0",
                "mlp:axb",
                "mlp:2x16:swish9",
                "skip:0x8",
                "siren:2x16:-1",
                "mlp:1000x65536",
                "mlp:100000x10",
            ],
        ),
        (
            "--data",
            vec![
                "lottery",
                "mandelbrot:nope",
                "curve:sin((x",
                "curve:",
                "curve:(((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((x",
                "image:/nonexistent/a.png",
                "surface:klein-bottle",
                "curve:csv:/nonexistent.csv",
                "mnist:/nonexistent",
            ],
        ),
        (
            "--set",
            vec![
                "data.depth=0",
                "data.depth=-1",
                "data.depth=abc",
                "data.samples=0",
                "model.max_features=0",
                "train.lr=\"x\"",
                "bogus.key=1",
                "train.bogus=1",
                "train.table_sgd=0",
                "train.table_sgd=-2",
                "output.log_every=0",
                "no-equals-sign",
            ],
        ),
    ]
}

fn write_png(path: &Path, w: u32, h: u32) {
    image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7) as u8, (y * 5) as u8, 99])).save(path).unwrap();
}

/// A PNG whose header says `w` x `h` pixels, with an empty image stream.
fn png_header_only(path: &Path, w: u32, h: u32) {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }
    let chunk = |kind: &[u8], data: &[u8]| {
        let body = [kind, data].concat();
        [&(data.len() as u32).to_be_bytes()[..], &body, &crc32(&body).to_be_bytes()].concat()
    };
    let ihdr = [&w.to_be_bytes()[..], &h.to_be_bytes(), &[8, 0, 0, 0, 0]].concat();
    let empty_zlib = [0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01];
    let png = [&b"\x89PNG\r\n\x1a\n"[..], &chunk(b"IHDR", &ihdr), &chunk(b"IDAT", &empty_zlib), &chunk(b"IEND", &[])]
        .concat();
    std::fs::write(path, png).unwrap();
}

/// Bad files for every loader: (case, data spec or config flag, the file's name, its bytes or None for a folder).
fn file_cases(tmp: &Path) -> Vec<(String, Vec<String>)> {
    let f = |name: &str| tmp.join(name).display().to_string();
    let good = tmp.join("good.png");
    write_png(&good, 40, 30);
    let bytes = std::fs::read(&good).unwrap();
    let mut files: Vec<(&str, Vec<u8>)> = vec![
        ("zero.png", vec![]),
        ("random.png", (0..4000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()),
        ("truncated.png", bytes[..bytes.len() / 2].to_vec()),
        ("text.png", b"this is not a picture\n".to_vec()),
        ("truncated.jpg", [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F'].to_vec()),
        ("empty.csv", vec![]),
        ("header-only.csv", b"x,y\n".to_vec()),
        ("ragged.csv", b"x,y\n1,2\n3\n4,5\n".to_vec()),
        ("nan.csv", b"x,y\n1,NaN\n2,3\n".to_vec()),
        ("inf.csv", b"x,y\n1,inf\n2,3\n".to_vec()),
        ("text.csv", b"x,y\n1,two\n2,3\n".to_vec()),
        ("one-column.csv", b"x\n1\n2\n3\n".to_vec()),
        ("binary.csv", vec![0, 159, 146, 150, 0, 1, 2]),
        ("syntax.toml", b"seed = \n[train\n".to_vec()),
        ("unknown-key.toml", b"seed = 1\n[train]\nlearning_rate = 0.1\n".to_vec()),
        ("wrong-type.toml", b"seed = \"one\"\n".to_vec()),
        ("binary.toml", vec![0xff, 0xfe, 0, 1]),
        ("bad-data.toml", b"[data]\nkind = \"nothing\"\n".to_vec()),
    ];
    files.push(("bomb.png", Vec::new()));
    for (name, content) in &files {
        if *name == "bomb.png" {
            png_header_only(&tmp.join(name), 100_000, 100_000);
        } else {
            std::fs::write(tmp.join(name), content).unwrap();
        }
    }
    png_header_only(&tmp.join("huge.png"), 20_000, 20_000);
    std::fs::create_dir_all(tmp.join("folder.png")).unwrap();
    // MNIST folders: empty, a truncated file, a bad magic number, counts that disagree.
    let mnist = |name: &str, images: &[u8], labels: &[u8]| {
        let d = tmp.join(name);
        std::fs::create_dir_all(&d).unwrap();
        for (file, content) in [
            ("train-images-idx3-ubyte", images),
            ("train-labels-idx1-ubyte", labels),
            ("t10k-images-idx3-ubyte", images),
            ("t10k-labels-idx1-ubyte", labels),
        ] {
            std::fs::write(d.join(file), content).unwrap();
        }
        d.display().to_string()
    };
    let header =
        |magic: u32, dims: &[u32]| -> Vec<u8> { [magic].iter().chain(dims).flat_map(|v| v.to_be_bytes()).collect() };
    let images_ok = [header(0x803, &[2, 28, 28]), vec![0u8; 2 * 784]].concat();
    let labels_ok = [header(0x801, &[2]), vec![1, 2]].concat();
    let mnist_empty = tmp.join("mnist-empty");
    std::fs::create_dir_all(&mnist_empty).unwrap();
    let mut cases = vec![];
    for name in ["zero.png", "random.png", "truncated.png", "text.png", "truncated.jpg", "folder.png", "huge.png"] {
        cases.push((format!("image {name}"), vec!["--data".into(), format!("image:{}", f(name))]));
    }
    cases.push((
        "image bomb.png (100000 x 100000 header)".into(),
        vec!["--data".into(), format!("image:{}", f("bomb.png"))],
    ));
    for name in
        ["empty.csv", "header-only.csv", "ragged.csv", "nan.csv", "inf.csv", "text.csv", "one-column.csv", "binary.csv"]
    {
        cases.push((format!("csv {name}"), vec!["--data".into(), format!("curve:csv:{}", f(name))]));
    }
    for name in ["syntax.toml", "unknown-key.toml", "wrong-type.toml", "binary.toml", "bad-data.toml"] {
        cases.push((format!("config {name}"), vec!["--config".into(), f(name)]));
    }
    cases.push(("config missing file".into(), vec!["--config".into(), f("nope.toml")]));
    let mnist_cases = [
        ("mnist empty folder", mnist_empty.display().to_string()),
        ("mnist truncated images", mnist("mnist-truncated", &images_ok[..500], &labels_ok)),
        (
            "mnist bad magic",
            mnist("mnist-magic", &[header(0x999, &[2, 28, 28]), vec![0u8; 2 * 784]].concat(), &labels_ok),
        ),
        ("mnist counts disagree", mnist("mnist-counts", &images_ok, &[header(0x801, &[3]), vec![1, 2, 3]].concat())),
        ("mnist huge count", mnist("mnist-huge", &header(0x803, &[4_000_000_000, 28, 28]), &labels_ok)),
    ];
    for (case, dir) in mnist_cases {
        cases.push((case.into(), vec!["--data".into(), format!("mnist:{dir}")]));
    }
    cases
}

/// Commands other than `train`, with bad arguments.
fn command_cases(tmp: &Path, run: &Path) -> Vec<(String, Vec<String>)> {
    let t = |s: &str| s.replace("TMP", &tmp.display().to_string()).replace("RUN", &run.display().to_string());
    let list: [(&str, &str); 31] = [
        ("resume: no such run", "resume TMP/nope"),
        ("resume: a folder that is not a run", "resume TMP"),
        ("resume: bad steps", "resume RUN --steps=-4"),
        ("resume: bad precision", "resume RUN --precision fp4"),
        ("eval: no such run", "eval TMP/nope"),
        ("render: zero size", "render RUN --size 0x0 --out TMP/r.png"),
        ("render: bad window", "render RUN --window 1,0,0,1 --out TMP/r.png"),
        ("render: huge size", "render RUN --size 100000x100000 --out TMP/r.png"),
        ("render: unknown colormap", "render RUN --colormap nope --out TMP/r.png"),
        ("render: over the memory budget", "--max-memory 10M render RUN --size 4000x4000 --out TMP/r.png"),
        ("truth: unknown data", "truth lottery --out TMP/t.png"),
        ("truth: bad key", "truth mandelbrot --set depth=-3 --out TMP/t.png"),
        ("zoom: a negative width", "zoom RUN --center 0,0 --to-width=-1 --out TMP/z.mp4"),
        ("video: a run without frames", "video RUN"),
        ("compare: missing config", "compare TMP/nope.toml TMP/nope2.toml --steps 5"),
        ("bench: unknown workload", "bench --workload W9"),
        ("bench: bad seconds", "bench --seconds=-1"),
        ("bench: bad precision", "bench --precision fp8"),
        ("serve: bad port", "serve --port 99999"),
        ("serve: no data folder", "serve --port 0 --data-dir TMP/nope"),
        ("serve: zero runs at once", "serve --port 0 --max-runs 0"),
        ("--max-memory: not a size", "--max-memory lots train --steps 1"),
        ("train: softmax head on one output", "train --data curve --head softmax --steps 1 --out TMP/runs"),
        ("challenge: an unknown zoom window", "challenge --zoom nowhere --time 1s --out TMP/runs"),
        ("challenge: a zoom width of 0", "challenge --zoom -0.5,0,0 --time 1s --out TMP/runs"),
        ("challenge: a negative zoom width", "challenge --zoom -0.5,0,-1e-3 --time 1s --out TMP/runs"),
        ("challenge: a budget that is not a duration", "challenge --time soon --out TMP/runs"),
        ("challenge: --score of a run of another data set", "challenge --score RUN"),
        ("challenge: --score of no run", "challenge --score TMP/nope"),
        ("challenge: --record off the protocol's grid", "challenge --record --grid 64x40 --time 1s --out TMP/runs"),
        ("challenge: a grid of one point", "challenge --grid 1x1 --time 1s --out TMP/runs"),
    ];
    list.iter().map(|(case, line)| (case.to_string(), t(line).split(' ').map(str::to_string).collect())).collect()
}

/// Requests to the page's API, each with the status class it must get (4xx) and no crash.
fn api_cases() -> Vec<(&'static str, &'static str, &'static str, Option<&'static str>)> {
    let runs = "/api/runs";
    vec![
        ("POST runs: not JSON", "POST", runs, Some("{data: curve")),
        ("POST runs: an array", "POST", runs, Some("[1, 2]")),
        ("POST runs: empty body", "POST", runs, Some("")),
        ("POST runs: unknown key", "POST", runs, Some(r#"{"data": "curve", "bogus": 1}"#)),
        ("POST runs: steps as text", "POST", runs, Some(r#"{"data": "curve", "steps": "many"}"#)),
        ("POST runs: negative steps", "POST", runs, Some(r#"{"data": "curve", "steps": -3}"#)),
        ("POST runs: huge batch", "POST", runs, Some(r#"{"data": "mandelbrot", "batch": 1000000000, "steps": 5}"#)),
        ("POST runs: huge encoding", "POST", runs, Some(r#"{"data": "mandelbrot", "encoding": "fourier:100000000"}"#)),
        ("POST runs: huge network", "POST", runs, Some(r#"{"data": "curve", "network": "mlp:1000x65536"}"#)),
        ("POST runs: bad network", "POST", runs, Some(r#"{"data": "curve", "network": "mlp:0x16"}"#)),
        ("POST runs: bad lr", "POST", runs, Some(r#"{"data": "curve", "lr": "fast"}"#)),
        ("POST runs: NaN-like lr", "POST", runs, Some(r#"{"data": "curve", "lr": -1}"#)),
        ("POST runs: a file path", "POST", runs, Some(r#"{"data": "image:/etc/passwd"}"#)),
        ("POST runs: a CSV path", "POST", runs, Some(r#"{"data": "curve:csv:/etc/passwd"}"#)),
        ("POST runs: an upload outside", "POST", runs, Some(r#"{"data": "upload:../../etc/passwd"}"#)),
        ("POST runs: unknown data", "POST", runs, Some(r#"{"data": "lottery"}"#)),
        ("POST runs: deep expression", "POST", runs, Some(r#"{"data": "curve:((((((((((((((((((((((((((((((((x"}"#)),
        ("POST describe: not an object", "POST", "/api/describe", Some("42")),
        (
            "POST describe: huge encoding",
            "POST",
            "/api/describe",
            Some(r#"{"data": "curve", "encoding": "fourier:100000000"}"#),
        ),
        ("GET run: no such run", "GET", "/api/runs/run-99", None),
        ("POST control: no such run", "POST", "/api/runs/run-99/pause", None),
        ("POST control: unknown action", "POST", "/api/runs/run-1/explode", None),
        ("POST continue: bad steps", "POST", "/api/runs/run-1/continue", Some(r#"{"steps": -5}"#)),
        ("POST continue: fewer steps than done", "POST", "/api/runs/run-1/continue", Some(r#"{"steps": 1}"#)),
        ("GET render: bad what", "GET", "/api/runs/run-1/render?what=everything", None),
        ("GET render: bad window", "GET", "/api/runs/run-1/render?what=learned&window=1,0,0,1", None),
        ("GET render: huge size", "GET", "/api/runs/run-1/render?what=learned&size=100000x100000", None),
        ("GET render: bad size", "GET", "/api/runs/run-1/render?what=learned&size=axb", None),
        ("POST upload: empty", "POST", "/api/upload", Some("")),
        ("POST upload: not an image", "POST", "/api/upload", Some("GIF89a not really")),
        ("GET: no such API route", "GET", "/api/nothing", None),
        ("GET: a rebinding Host", "GET", "/api/runs", None),
    ]
}

fn http(addr: &str, host: &str, method: &str, path: &str, body: Option<&str>) -> (u16, Vec<u8>) {
    common::http_as(addr, host, method, path, body)
}

fn api_outcomes(tmp: &Path) -> Vec<Outcome> {
    let out = tmp.join("served");
    let mut child = Command::new(bin())
        .args(["serve", "--port", "0", "--threads", "1", "--out", out.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let addr = common::read_address(&mut stdout);
    // One real run, for the routes that need one.
    let (status, _) =
        http(&addr, &addr, "POST", "/api/runs", Some(r#"{"data": "curve", "network": "mlp:2x16", "steps": 3}"#));
    assert_eq!(status, 201);
    let deadline = Instant::now() + TIME_BOUND;
    while !String::from_utf8_lossy(&http(&addr, &addr, "GET", "/api/runs/run-1", None).1).contains("\"finished\"") {
        assert!(Instant::now() < deadline, "the page's run did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut outcomes = Vec::new();
    for (case, method, path, body) in api_cases() {
        let host = if case.contains("rebinding") { "evil.example:80" } else { addr.as_str() };
        let started = Instant::now();
        let (status, bytes) = http(&addr, host, method, path, body);
        assert!((400..500).contains(&status), "{case}: status {status}: {}", String::from_utf8_lossy(&bytes));
        let v: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("{case}: not JSON"));
        let message = v["error"].as_str().unwrap_or_else(|| panic!("{case}: no error line: {v}")).to_string();
        assert!(!message.contains('\n') && !message.contains("panicked"), "{case}: {message}");
        assert!(started.elapsed() < TIME_BOUND, "{case}");
        outcomes.push(Outcome { case: format!("API {case} ({status})"), message: shorten(&normalise(&message, tmp)) });
    }
    // Still up, and still training.
    let (status, _) = http(&addr, &addr, "GET", "/api/runs", None);
    assert_eq!(status, 200, "the server answers after the corpus");
    assert!(child.try_wait().unwrap().is_none(), "the server is still running");
    let _ = child.kill();
    let _ = child.wait();
    outcomes
}

#[test]
fn every_bad_input_is_a_one_line_error_within_bounds() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path().canonicalize().unwrap();
    let out = tmp.join("runs");
    let mut outcomes = Vec::new();
    for (flag, values) in flag_cases() {
        for value in values {
            // Negative numbers go as --flag=-1 (the parser would take "-1" for a flag), and the Mandelbrot set's
            // keys need it as the data set.
            let joined = format!("{flag}={value}");
            let extra: Vec<&str> = match (value.starts_with('-'), value.starts_with("data.depth")) {
                (true, _) => vec![joined.as_str()],
                (_, true) => vec!["--data", "mandelbrot", flag, value],
                _ => vec![flag, value],
            };
            let args = train(&out, &extra);
            outcomes.push(check_cli(&format!("train {flag} {value}"), args, &tmp, &tmp));
        }
    }
    let deep = format!("curve:{}x{}", "(".repeat(20_000), ")".repeat(20_000));
    outcomes.push(check_cli("train --data curve:(20000 deep)x", train(&out, &["--data", &deep]), &tmp, &tmp));
    let long = format!("curve:{}", vec!["x"; 6000].join("+"));
    outcomes.push(check_cli("train --data curve:x+x+... (12000 tokens)", train(&out, &["--data", &long]), &tmp, &tmp));
    for (case, extra) in file_cases(&tmp) {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        outcomes.push(check_cli(&case, train(&out, &extra), &tmp, &tmp));
    }
    // A finished run for the commands that read one.
    let run = out.join("ok");
    let (code, stderr, _) = run_cli(&train(&out, &["--name", "ok"]), &tmp);
    assert_eq!(code, Some(0), "{stderr}");
    for (case, args) in command_cases(&tmp, &run) {
        outcomes.push(check_cli(&case, args, &tmp, &tmp));
    }
    outcomes.extend(api_outcomes(&tmp));

    // SAFETY: getrusage only writes into the struct it is given.
    let peak_kb = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage.ru_maxrss
    };
    assert!(peak_kb < MEMORY_BOUND_KB, "a process of the corpus reached {peak_kb} KB");
    assert!(outcomes.len() >= 150, "the corpus has {} cases", outcomes.len());
    eprintln!("{} bad inputs, largest process {} MB", outcomes.len(), peak_kb / 1024);

    let doc_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/reliability.md");
    let table: String = outcomes
        .iter()
        .map(|o| format!("| {} | {} |\n", o.case.replace('|', "\\|"), o.message.replace('|', "\\|")))
        .collect();
    if std::env::var_os("APPROXLAB_BLESS").is_some() {
        let doc = std::fs::read_to_string(&doc_path).unwrap_or_default();
        let head = doc.split("<!-- corpus -->").next().unwrap_or("").to_string();
        let text = format!(
            "{head}<!-- corpus -->\n| case | message |\n|---|---|\n{table}\n{} cases, largest process {} MB.\n",
            outcomes.len(),
            peak_kb / 1024
        );
        std::fs::write(&doc_path, text).unwrap();
        return;
    }
    let doc = std::fs::read_to_string(&doc_path).expect("docs/reliability.md");
    let missing: Vec<&str> = outcomes
        .iter()
        .map(|o| o.case.as_str())
        .filter(|c| !doc.contains(&format!("| {} |", c.replace('|', "\\|"))))
        .collect();
    assert!(missing.is_empty(), "docs/reliability.md lacks {missing:?}: run with APPROXLAB_BLESS=1");
}
