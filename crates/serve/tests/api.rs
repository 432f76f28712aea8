//! The HTTP and WebSocket API of the live view, against a fake lab whose "training" is a loop that honours
//! pause, stop and checkpoint requests exactly as the CLI's training loop does.

use approxlab_serve::{host_is_served, router, AppState, Frame, Lab, LiveRun, Point, RunView, Server};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

/// The address the oneshot requests are addressed to.
const SERVED: &str = "127.0.0.1:8642";

fn tiny_png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(w, h, image::Rgb([200, 100, 50]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

struct FakeView;

impl RunView for FakeView {
    fn info(&self) -> Value {
        json!({"kind": "field2d", "domain": [[-2.0, 1.0], [-1.0, 1.0]]})
    }
    fn live_frame(&self, params: &[f32]) -> anyhow::Result<Frame> {
        Ok(Frame::Curve { x0: 0.0, x1: 1.0, values: params.to_vec() })
    }
    fn render(
        &self,
        params: Option<&[f32]>,
        _window: Option<approxlab_view::Window>,
        size: (u32, u32),
    ) -> anyhow::Result<Vec<u8>> {
        // Learned and truth differ in size so that a test can tell which one came back.
        let w = if params.is_some() { size.0 } else { size.0 + 1 };
        Ok(tiny_png(w, size.1))
    }
    fn neurons(&self, params: &[f32]) -> anyhow::Result<Option<Vec<u8>>> {
        // The step is in the picture's width, so that a test can tell pictures of different steps apart.
        Ok(Some(tiny_png(1 + params[0] as u32 % 97, 3)))
    }
}

struct FakeLab {
    dir: PathBuf,
}

/// A stand-in for the training loop: steps as fast as it can, publishing like the CLI's loop does.
fn fake_training(run: Arc<LiveRun>, steps: u64) {
    let mut params = vec![0.0f32; 8];
    let mut last = Instant::now();
    let start = Instant::now();
    for step in 1..=steps {
        loop {
            run.wait_while_paused(&|| false);
            if run.take_save_request() {
                run.saved(step - 1, &run.dir.join("checkpoints/latest.safetensors"));
            }
            if !run.is_paused() || run.stop_requested() {
                break;
            }
        }
        if run.stop_requested() {
            run.finish("stopped", step - 1, &params, None);
            return;
        }
        params[0] = step as f32;
        std::thread::sleep(Duration::from_micros(200));
        if last.elapsed() >= Duration::from_millis(10) {
            last = Instant::now();
            let wall_s = start.elapsed().as_secs_f64();
            run.publish(Point { step, wall_s, loss: 1.0 / step as f64, lr: 0.01, samples_per_s: 1.0 }, &params);
        }
        if run.frame_due() {
            run.render_frame(step, &params);
        }
    }
    run.finish("finished", steps, &params, Some("finished".into()));
}

impl Lab for FakeLab {
    fn catalog(&self) -> Value {
        json!({"data": [{"value": "ok", "label": "ok"}]})
    }
    fn describe(&self, request: &Value) -> anyhow::Result<Value> {
        match request["data"].as_str() {
            Some("ok") => Ok(json!({"params": 8})),
            other => anyhow::bail!("data '{}': not available", other.unwrap_or("")),
        }
    }
    fn start(&self, id: &str, request: &Value) -> anyhow::Result<Arc<LiveRun>> {
        self.describe(request)?;
        let steps = request["steps"].as_u64().unwrap_or(1_000_000);
        let run = LiveRun::new(
            id.into(),
            self.dir.join(id),
            request.clone(),
            json!({"params": 8}),
            Box::new(FakeView),
            &[0.0; 8],
            Some(steps),
        );
        let r = run.clone();
        std::thread::spawn(move || fake_training(r, steps));
        Ok(run)
    }
    fn resume(&self, run: &LiveRun, request: &Value) -> anyhow::Result<Arc<LiveRun>> {
        let steps = request["steps"].as_u64().ok_or_else(|| anyhow::anyhow!("steps: expected a number"))?;
        let resumed = LiveRun::new(
            run.id.clone(),
            run.dir.clone(),
            run.request.clone(),
            run.description.clone(),
            Box::new(FakeView),
            &run.params().1,
            Some(steps),
        );
        resumed.restore_history(run.progress().history);
        let r = resumed.clone();
        std::thread::spawn(move || fake_training(r, steps));
        Ok(resumed)
    }
    fn scene_runs(&self, name: &str) -> anyhow::Result<usize> {
        match name {
            "pair" => Ok(2),
            _ => anyhow::bail!("scene '{name}': not a preset of the page; expected one of pair"),
        }
    }
    fn start_scene(&self, ids: &[String], name: &str, full: bool) -> anyhow::Result<Vec<Arc<LiveRun>>> {
        assert_eq!(ids.len(), self.scene_runs(name)?);
        let steps = if full { 2_000_000 } else { 1_000_000 };
        ids.iter().map(|id| self.start(id, &json!({"data": "ok", "steps": steps, "scene": name}))).collect()
    }
    fn video(&self, _run: &LiveRun) -> anyhow::Result<PathBuf> {
        anyhow::bail!("the run has no frames yet")
    }
}

fn state() -> (Arc<AppState>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let lab = Arc::new(FakeLab { dir: dir.path().to_path_buf() });
    (AppState::new(lab, dir.path().join("uploads")), dir)
}

async fn call(
    state: &Arc<AppState>,
    method: &str,
    uri: &str,
    body: Body,
    json_body: bool,
) -> (StatusCode, Vec<u8>, String) {
    let mut req = Request::builder().method(method).uri(uri);
    if json_body {
        req = req.header("content-type", "application/json");
    }
    let resp = router(state.clone(), SERVED.parse().unwrap()).oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let ctype = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, bytes, ctype)
}

async fn get(state: &Arc<AppState>, uri: &str) -> (StatusCode, Vec<u8>, String) {
    call(state, "GET", uri, Body::empty(), false).await
}

async fn post_json(state: &Arc<AppState>, uri: &str, body: &str) -> (StatusCode, Value) {
    let (s, b, _) = call(state, "POST", uri, Body::from(body.to_string()), true).await;
    (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

fn error_of(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).expect("errors are JSON");
    v["error"].as_str().expect("errors have an 'error' line").to_string()
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < Duration::from_secs(10), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn the_page_and_its_files_are_served_and_nothing_else() {
    let (s, _d) = state();
    let (status, body, ctype) = get(&s, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(ctype.starts_with("text/html"), "{ctype}");
    assert!(String::from_utf8_lossy(&body).contains("approxlab"));
    for (path, kind) in [("/app.js", "javascript"), ("/style.css", "text/css"), ("/surface.js", "javascript")] {
        let (status, _, ctype) = get(&s, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(ctype.contains(kind), "{path}: {ctype}");
    }
    for path in
        ["/../Cargo.toml", "/..%2fCargo.toml", "/%2e%2e/src/lib.rs", "/etc/passwd", "/assets/app.js", "/src/api.rs"]
    {
        let (status, body, _) = get(&s, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(!error_of(&body).is_empty());
    }
    let (status, body, _) = get(&s, "/api/nothing/here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(error_of(&body).contains("/api/nothing/here"));
    let (status, _, _) = call(&s, "DELETE", "/", Body::empty(), false).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn malformed_requests_get_4xx_with_a_message() {
    let (s, _d) = state();
    let (status, body) = post_json(&s, "/api/runs", "{not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().starts_with("request body"), "{body}");
    let (status, body) = post_json(&s, "/api/runs", "[1, 2]").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "request body: expected a JSON object");
    let (status, _, _) = call(&s, "POST", "/api/runs", Body::from("{}"), false).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, body) = post_json(&s, "/api/describe", r#"{"data": "nope"}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "data 'nope': not available");
    let (status, body) = post_json(&s, "/api/describe", r#"{"data": "ok"}"#).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["params"], 8);
    let (status, body) = post_json(&s, "/api/runs/run-9/pause", "{}").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "run 'run-9': no such run");
    let (status, _, _) = get(&s, "/api/runs/run-9/live").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn renders_check_their_window_size_and_subject() {
    let (s, _d) = state();
    let (status, _) = post_json(&s, "/api/runs", r#"{"data": "ok"}"#).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body, ctype) = get(&s, "/api/runs/run-1/render?what=learned&window=-1,0,-0.5,0.5&size=30x20").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ctype, "image/png");
    assert_eq!(image::load_from_memory(&body).unwrap().width(), 30);
    let (_, body, _) = get(&s, "/api/runs/run-1/render?what=truth&size=30x20").await;
    assert_eq!(image::load_from_memory(&body).unwrap().width(), 31, "truth, not the learned function");
    for (query, needle) in [
        ("window=1,0,0,1", "window: invalid window 1,0,0,1: need x0 < x1"),
        ("window=0,1,0", "window: invalid window \"0,1,0\": found 3 numbers, need 4"),
        ("window=0,1,0,nan", "bounds must be finite"),
        ("size=0x10", "size '0x10'"),
        ("size=5000x10", "size '5000x10'"),
        ("size=big", "size 'big'"),
        ("what=both", "what 'both'"),
    ] {
        let (status, body, _) = get(&s, &format!("/api/runs/run-1/render?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(error_of(&body).contains(needle), "{query}: {}", error_of(&body));
    }
    let (status, body, _) = get(&s, "/api/runs/run-1/video").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(error_of(&body).contains("no frames"));
    s.run("run-1").unwrap().request_stop();
}

#[tokio::test]
async fn other_sites_cannot_post_or_open_the_live_socket() {
    let (s, _d) = state();
    let send = |method: &str, uri: &str, origin: &str, upgrade: bool| {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "127.0.0.1:8642")
            .header("origin", origin)
            .header("content-type", "application/json");
        if upgrade {
            req = req.header("upgrade", "websocket").header("connection", "upgrade");
        }
        router(s.clone(), SERVED.parse().unwrap()).oneshot(req.body(Body::from(r#"{"data": "ok"}"#)).unwrap())
    };
    let resp = send("POST", "/api/runs", "http://evil.example", false).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = send("GET", "/api/runs/run-1/live", "http://evil.example", true).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = send("POST", "/api/upload", "http://localhost:8642", false).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN, "another host name is another origin");
    // The page itself, and reads from anywhere, pass.
    let resp = send("POST", "/api/describe", "http://127.0.0.1:8642", false).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = send("GET", "/api/catalog", "http://evil.example", false).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn uploads_are_size_limited_and_must_be_images() {
    let (s, dir) = state();
    let upload = |body: Vec<u8>| call(&s, "POST", "/api/upload", Body::from(body), false);
    let (status, body, _) = upload(vec![]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_of(&body).contains("empty"));
    let (status, body, _) = upload(b"GIF89a not really".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&body), "upload: not a PNG or JPEG image");
    let mut broken = tiny_png(4, 4);
    broken.truncate(30);
    let (status, body, _) = upload(broken).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_of(&body).contains("cannot decode"), "{}", error_of(&body));
    let (status, _, _) = upload(vec![0u8; approxlab_serve::MAX_UPLOAD_BYTES + 1]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, body, _) = upload(tiny_png(7, 5)).await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_slice(&body).unwrap();
    let name = v["data"].as_str().unwrap().strip_prefix("upload:").unwrap().to_string();
    assert!(name.chars().all(|c| c.is_ascii_hexdigit()), "{name}");
    assert_eq!((v["width"].as_u64(), v["height"].as_u64()), (Some(7), Some(5)));
    let saved = image::open(dir.path().join("uploads").join(format!("{name}.png"))).unwrap();
    assert_eq!((saved.width(), saved.height()), (7, 5));
}

#[tokio::test]
async fn pause_resume_checkpoint_and_stop_steer_the_training_loop() {
    let (s, _d) = state();
    let (status, v) = post_json(&s, "/api/runs", r#"{"data": "ok"}"#).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(v["id"], "run-1");
    let run = s.run("run-1").unwrap();
    wait_until("training to start", || run.progress().step > 50).await;
    let (status, v) = post_json(&s, "/api/runs/run-1/pause", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["paused"], true);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let held = run.params().1[0];
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(run.params().1[0], held, "the weights changed while paused");
    // A paused run saves a checkpoint without going on.
    let (status, v) = post_json(&s, "/api/runs/run-1/checkpoint", "").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // The snapshot lags the loop by less than one publish period: the checkpoint is at or after it.
    assert!(v["saved"].as_u64().unwrap() as f32 >= held, "{v}");
    assert_eq!(run.params().1[0], held, "saving resumed the run");
    let (_, body, _) = get(&s, "/api/runs/run-1").await;
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["paused"], true);
    let (status, _) = post_json(&s, "/api/runs/run-1/resume", "").await;
    assert_eq!(status, StatusCode::OK);
    wait_until("training to go on", || run.params().1[0] > held).await;
    let (status, v) = post_json(&s, "/api/runs/run-1/checkpoint", "").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v["saved"].as_u64().unwrap() > 0);
    assert!(v["message"].as_str().unwrap().contains("checkpoint saved"));
    let (status, v) = post_json(&s, "/api/runs/run-1/rewind", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(v["error"].as_str().unwrap().contains("expected pause, resume, stop or checkpoint"));
    let (status, _) = post_json(&s, "/api/runs/run-1/stop", "").await;
    assert_eq!(status, StatusCode::OK);
    wait_until("the run to stop", || run.is_finished()).await;
    assert_eq!(run.progress().status, "stopped");
    let (status, v) = post_json(&s, "/api/runs/run-1/pause", "").await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    // An ended run can be continued; the new run takes its place and keeps its loss curve.
    let points = run.progress().history.len();
    let (status, v) = post_json(&s, "/api/runs/run-1/continue", r#"{"steps": 100}"#).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let resumed = s.run("run-1").unwrap();
    assert!(!Arc::ptr_eq(&resumed, &run));
    assert!(resumed.progress().history.len() >= points);
    let (status, v) = post_json(&s, "/api/runs/run-1/continue", r#"{"steps": 100}"#).await;
    assert_eq!(status, StatusCode::CONFLICT, "a training run cannot be continued: {v}");
    wait_until("the continued run to finish", || resumed.is_finished()).await;
    let (status, v) = post_json(&s, "/api/runs/run-1/continue", r#"{"steps": "many"}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let (status, body, _) = get(&s, "/api/runs/run-1").await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["status"], "finished");
    assert!(v["history"].as_array().unwrap().len() > 2, "the loss curve is kept");
    let (_, body, _) = get(&s, "/api/runs").await;
    let list: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(list[0].get("history").is_none(), "the list leaves the loss curves out");
}

/// Runs `body` against a server listening on a free port, with the shared state.
fn with_server<F: std::future::Future<Output = ()>>(body: impl FnOnce(Arc<AppState>, std::net::SocketAddr) -> F) {
    let (s, _d) = state();
    let server = Server::start(s.clone(), "127.0.0.1:0".parse().unwrap()).unwrap();
    tokio::runtime::Runtime::new().unwrap().block_on(body(s, server.addr));
    server.stop();
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(server: &std::net::SocketAddr, run: &str) -> Ws {
    let url = format!("ws://{server}/api/runs/{run}/live");
    tokio_tungstenite::connect_async(url).await.expect("WebSocket connects").0
}

/// The next message that `pick` accepts, within 10 s.
async fn next_message<T>(ws: &mut Ws, pick: impl Fn(tokio_tungstenite::tungstenite::Message) -> Option<T>) -> T {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("a message").unwrap().unwrap();
        if let Some(v) = pick(msg) {
            return v;
        }
    }
}

/// The next binary frame: its JSON header and payload.
async fn next_frame(ws: &mut Ws) -> (Value, Vec<u8>) {
    use tokio_tungstenite::tungstenite::Message;
    let b = next_message(ws, |m| if let Message::Binary(b) = m { Some(b) } else { None }).await;
    let len = u32::from_le_bytes(b[..4].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&b[4..4 + len]).unwrap();
    assert_eq!((4 + len) % 4, 0, "f32 payloads start 4-byte aligned");
    (header, b[4 + len..].to_vec())
}

async fn next_text(ws: &mut Ws) -> Value {
    use tokio_tungstenite::tungstenite::Message;
    next_message(ws, |m| if let Message::Text(t) = m { Some(serde_json::from_str(&t).unwrap()) } else { None }).await
}

#[test]
fn viewers_get_state_progress_and_frames_over_a_websocket() {
    with_server(|s, server| async move {
        let (status, _) = post_json(&s, "/api/runs", r#"{"data": "ok"}"#).await;
        assert_eq!(status, StatusCode::CREATED);
        let mut ws = connect(&server, "run-1").await;
        let hello = next_text(&mut ws).await;
        assert_eq!(hello["type"], "hello");
        assert_eq!(hello["run"]["info"]["kind"], "field2d");
        let progress = next_text(&mut ws).await;
        assert_eq!(progress["type"], "progress");
        let (header, payload) = next_frame(&mut ws).await;
        assert_eq!(header["type"], "curve");
        assert_eq!(header["run"], "run-1");
        assert_eq!(payload.len(), 4 * header["n"].as_u64().unwrap() as usize);
        let first = f32::from_le_bytes(payload[..4].try_into().unwrap());
        assert_eq!(first as u64, header["step"].as_u64().unwrap(), "the frame shows the weights of its step");
        // Progress messages carry only new points.
        let mut steps = vec![];
        while steps.len() < 3 {
            let m = next_text(&mut ws).await;
            steps.extend(m["points"].as_array().unwrap().iter().map(|p| p["step"].as_u64().unwrap()));
        }
        assert!(steps.windows(2).all(|w| w[0] < w[1]), "points repeat: {steps:?}");
        ws.close(None).await.unwrap();
        s.run("run-1").unwrap().request_stop();
    });
}

#[test]
fn many_viewers_share_one_render_and_a_stalled_or_closed_one_never_stalls_training() {
    with_server(|s, server| async move {
        post_json(&s, "/api/runs", r#"{"data": "ok"}"#).await;
        let run = s.run("run-1").unwrap();
        let mut viewers = Vec::new();
        for _ in 0..50 {
            viewers.push(connect(&server, "run-1").await);
        }
        wait_until("50 viewers", || run.viewers() == 50).await;
        for ws in viewers.iter_mut().take(10) {
            let (header, _) = next_frame(ws).await;
            assert_eq!(header["type"], "curve");
        }
        // A viewer that never reads: training must go on regardless.
        let _stalled = connect(&server, "run-1").await;
        let before = run.progress().step;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(run.progress().step > before + 100, "training stalled: {before} -> {}", run.progress().step);
        // Tabs that close without a goodbye.
        drop(viewers);
        wait_until("closed viewers to be counted out", || run.viewers() == 1).await;
        let before = run.progress().step;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(run.progress().step > before, "training stalled after the viewers left");
        run.request_stop();
    });
}

#[test]
fn the_neurons_view_is_sent_only_to_viewers_who_ask_for_it() {
    with_server(|s, server| async move {
        use futures_util::SinkExt;
        use tokio_tungstenite::tungstenite::Message;
        post_json(&s, "/api/runs", r#"{"data": "ok"}"#).await;
        let run = s.run("run-1").unwrap();
        let mut plain = connect(&server, "run-1").await;
        let mut curious = connect(&server, "run-1").await;
        // Junk is ignored; the connection stays up.
        for junk in ["not json", r#"{"neurons": 3}"#, "[]"] {
            curious.send(Message::Text(junk.into())).await.unwrap();
        }
        curious.send(Message::Text(r#"{"neurons": true}"#.into())).await.unwrap();
        wait_until("the neurons viewer", || run.neuron_viewers() == 1).await;
        let mut steps = vec![];
        while steps.len() < 2 {
            let (header, payload) = next_frame(&mut curious).await;
            if header["type"] == "neurons" {
                assert!(payload.starts_with(b"\x89PNG"), "a PNG");
                steps.push(header["step"].as_u64().unwrap());
            }
        }
        assert!(steps[1] > steps[0], "the neurons follow training: {steps:?}");
        for _ in 0..5 {
            let (header, _) = next_frame(&mut plain).await;
            assert_eq!(header["type"], "curve", "a viewer who did not ask gets no neurons");
        }
        curious.send(Message::Text(r#"{"neurons": false}"#.into())).await.unwrap();
        wait_until("the neurons viewer to leave", || run.neuron_viewers() == 0).await;
        curious.send(Message::Text(r#"{"neurons": true}"#.into())).await.unwrap();
        wait_until("the neurons viewer again", || run.neuron_viewers() == 1).await;
        drop(curious);
        wait_until("a closed socket to count out", || run.neuron_viewers() == 0).await;
        run.request_stop();
    });
}

#[tokio::test]
async fn a_scene_starts_its_runs_together() {
    let (s, _d) = state();
    let (status, body) = post_json(&s, "/api/scenes/pair", "{}").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let ids: Vec<&str> = body.as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["run-1", "run-2"]);
    assert_eq!(body[0]["request"]["scene"], "pair");
    assert_eq!(body[0]["steps"], 1_000_000, "the quick budget unless asked");
    let (status, body) = post_json(&s, "/api/scenes/pair", r#"{"full": true}"#).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body[0]["id"], "run-3");
    assert_eq!(body[0]["steps"], 2_000_000);
    let (status, body) = post_json(&s, "/api/scenes/nothing", "{}").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("expected one of pair"), "{body}");
    let (status, body) = post_json(&s, "/api/scenes/pair", r#"{"full": "yes"}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("full"), "{body}");
    for r in s.runs() {
        r.request_stop();
    }
}

#[test]
fn frames_encode_a_header_and_an_aligned_payload() {
    for header_pad in 0..4 {
        let run = "r".repeat(header_pad + 1);
        let frame = Frame::Mesh { nu: 2, nv: 1, xyz: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0] };
        let bytes = frame.encode(&run, 7);
        let len = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
        assert_eq!((4 + len) % 4, 0);
        let header: Value = serde_json::from_slice(&bytes[4..4 + len]).unwrap();
        assert_eq!(header, json!({"type": "mesh", "nu": 2, "nv": 1, "run": run, "step": 7}));
        let values: Vec<f32> =
            bytes[4 + len..].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(values, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }
    let png = Frame::Png(vec![9, 8, 7]).encode("a", 1);
    assert!(png.ends_with(&[9, 8, 7]));
}

#[test]
fn a_paused_run_wakes_up_to_stop() {
    let run = LiveRun::new("r".into(), PathBuf::new(), Value::Null, Value::Null, Box::new(FakeView), &[0.0], None);
    run.set_paused(true);
    let stopped = Arc::new(AtomicBool::new(false));
    let waiter = {
        let (run, stopped) = (run.clone(), stopped.clone());
        std::thread::spawn(move || {
            let waited = run.wait_while_paused(&|| false);
            stopped.store(true, Ordering::SeqCst);
            waited
        })
    };
    std::thread::sleep(Duration::from_millis(150));
    assert!(!stopped.load(Ordering::SeqCst), "a paused run must wait");
    run.request_stop();
    let waited = waiter.join().unwrap();
    assert!(waited >= Duration::from_millis(100), "{waited:?}");
    assert!(run.stop_requested());
}

#[tokio::test]
async fn a_rebinding_page_is_refused_on_every_route() {
    let (s, _d) = state();
    let (status, _) = post_json(&s, "/api/runs", r#"{"data": "ok"}"#).await;
    assert_eq!(status, StatusCode::CREATED);
    // What a page on evil.example sends once its name resolves to 127.0.0.1: its own name as Host and Origin.
    let routes = [
        ("GET", "/"),
        ("GET", "/index.html"),
        ("GET", "/api/catalog"),
        ("POST", "/api/describe"),
        ("GET", "/api/runs"),
        ("POST", "/api/runs"),
        ("GET", "/api/runs/run-1"),
        ("GET", "/api/runs/run-1/live"),
        ("GET", "/api/runs/run-1/render?what=learned"),
        ("GET", "/api/runs/run-1/video"),
        ("POST", "/api/runs/run-1/continue"),
        ("POST", "/api/runs/run-1/pause"),
        ("POST", "/api/runs/run-1/resume"),
        ("POST", "/api/runs/run-1/stop"),
        ("POST", "/api/runs/run-1/checkpoint"),
        ("POST", "/api/upload"),
        ("GET", "/api/no-such-route"),
    ];
    for (method, uri) in routes {
        for host in ["evil.example:8642", "evil.example", "localhost.evil.example:8642", "127.0.0.1.evil.example:8642"]
        {
            let mut req = Request::builder()
                .method(method)
                .uri(uri)
                .header("host", host)
                .header("origin", format!("http://{host}"))
                .header("content-type", "application/json");
            if uri.ends_with("/live") {
                req = req.header("upgrade", "websocket").header("connection", "upgrade");
            }
            let resp = router(s.clone(), SERVED.parse().unwrap())
                .oneshot(req.body(Body::from(r#"{"data": "ok", "steps": 5}"#)).unwrap())
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{method} {uri} with Host {host}");
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            let e = error_of(&body);
            assert!(e.contains(host) && e.contains("127.0.0.1:8642"), "{method} {uri}: {e}");
        }
    }
    assert_eq!(s.runs().len(), 1, "no run was started");
    assert!(!s.run("run-1").unwrap().stop_requested(), "the run was not steered");
    // The page itself passes, by any name of the loopback address.
    for host in ["127.0.0.1:8642", "localhost:8642", "LOCALHOST:8642", "[::1]:8642"] {
        let req = Request::builder().uri("/api/runs").header("host", host).body(Body::empty()).unwrap();
        let resp = router(s.clone(), SERVED.parse().unwrap()).oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "Host {host}");
    }
    s.run("run-1").unwrap().request_stop();
}

#[test]
fn served_hosts_are_the_listening_address_and_loopback_names() {
    let loopback = "127.0.0.1:8642".parse().unwrap();
    // Any port: a forwarded one (ssh -L 9000:localhost:8642) arrives as another.
    for ok in [
        "127.0.0.1:8642",
        "localhost:8642",
        "[::1]:8642",
        "127.0.0.2:8642",
        " Localhost:8642 ",
        "localhost:9000",
        "localhost",
    ] {
        assert!(host_is_served(ok, loopback), "{ok}");
    }
    for bad in
        ["evil.example:8642", "localhost.evil.example", "192.168.1.5:8642", "[::1:8642", "::1", "", "localhost:x"]
    {
        assert!(!host_is_served(bad, loopback), "{bad}");
    }
    let lan = "192.168.1.5:80".parse().unwrap();
    assert!(host_is_served("192.168.1.5", lan) && host_is_served("192.168.1.5:80", lan));
    assert!(
        !host_is_served("localhost:80", lan)
            && !host_is_served("evil.example", lan)
            && !host_is_served("10.1.1.1", lan)
    );
    let all = "0.0.0.0:8642".parse().unwrap();
    for ok in ["10.0.0.7:8642", "localhost:8642", "[fe80::1]:8642", "127.0.0.1:8642"] {
        assert!(host_is_served(ok, all), "{ok}");
    }
    assert!(!host_is_served("evil.example:8642", all) && !host_is_served("0.0.0.0:8642", all));
}
