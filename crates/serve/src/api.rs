//! The HTTP and WebSocket API of the page.
//!
//! | route | what |
//! |---|---|
//! | `GET /api/catalog` | the form's choices and defaults |
//! | `POST /api/describe` | parameter and feature counts of a request, or its error |
//! | `GET /api/runs`, `POST /api/runs` | the runs; start one |
//! | `GET /api/runs/{id}` | one run with its whole loss curve |
//! | `POST /api/scenes/{name}` | start a scene of the video (`{"full": true}` for its full budget): its runs |
//! | `POST /api/runs/{id}/pause\|resume\|stop\|checkpoint` | steer it |
//! | `POST /api/runs/{id}/continue` | train an ended run on to `{"steps": N}` (a total) from its checkpoint |
//! | `GET /api/runs/{id}/live` | WebSocket: JSON progress messages and binary frames (see [`Frame::encode`]); the page sends `{"neurons": true}` to get the neurons' view too |
//! | `GET /api/runs/{id}/render?what=learned\|truth&window=X0,X1,Y0,Y1&size=WxH` | a PNG, for zooms |
//! | `GET /api/runs/{id}/video` | the run's frames as MP4 |
//! | `POST /api/upload` | an image (PNG or JPEG, body up to [`MAX_UPLOAD_BYTES`]); answers its data name |
//!
//! Every route refuses (403) a `Host` that does not name this server (DNS rebinding), and state-changing requests
//! and WebSocket upgrades from another `Origin`.

use crate::{assets, AppState, LiveRun, MAX_RENDER_SIDE, MAX_UPLOAD_BYTES};
use approxlab_view::Window;
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

type Shared = Arc<AppState>;

/// The app for a server listening on `served`: every route answers only requests addressed to it (see
/// [`host_is_served`]).
pub fn router(state: Shared, served: SocketAddr) -> Router {
    Router::new()
        .route("/api/catalog", get(catalog))
        .route("/api/describe", post(describe))
        .route("/api/runs", get(list_runs).post(start_run))
        .route("/api/runs/{id}", get(run_detail))
        .route("/api/scenes/{name}", post(start_scene))
        .route("/api/runs/{id}/live", get(live))
        .route("/api/runs/{id}/render", get(render))
        .route("/api/runs/{id}/video", get(video))
        .route("/api/runs/{id}/continue", post(resume))
        .route("/api/runs/{id}/{action}", post(control))
        .route("/api/upload", post(upload).layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES)))
        .route("/api/{*rest}", any(api_not_found))
        .fallback(assets::asset)
        .layer(axum::middleware::from_fn(same_origin))
        .layer(axum::middleware::from_fn(move |request, next| served_host(served, request, next)))
        .with_state(state)
}

/// Refuses requests addressed to another host name, on every route and the WebSocket. A page on another site can
/// point a name of its own at 127.0.0.1 (DNS rebinding) and then talk to this server as if it were its own origin,
/// `Origin` and `Host` both saying that name: only the `Host` header tells such a request apart.
async fn served_host(served: SocketAddr, request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let host = request.headers().get(header::HOST).map(|v| v.to_str().unwrap_or("(not text)").to_string());
    match host {
        Some(host) if !host_is_served(&host, served) => error(
            StatusCode::FORBIDDEN,
            format!(
                "host {host}: this server answers only to {} (a page of another site cannot reach it by a name of \
                 its own)",
                served_names(served).join(", ")
            ),
        ),
        // Tools may send no Host at all (HTTP/1.0); browsers always do.
        _ => next.run(request).await,
    }
}

/// The `Host` values that name this server: `localhost`, the loopback addresses and the address it listens on.
/// Listening on all interfaces (`--host 0.0.0.0`), any IP address is accepted too: names are what rebinding needs,
/// and the machine's own addresses are not known here. The port is not compared: a forwarded port (`ssh -L`,
/// `docker -p`) arrives with another one, and rebinding is told apart by the name alone.
pub fn host_is_served(host: &str, served: SocketAddr) -> bool {
    let host = host.trim().to_ascii_lowercase();
    let name = match host.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(':') && (name.starts_with('[') == name.ends_with(']')) => {
            if port.parse::<u16>().is_err() {
                return false;
            }
            name.to_string()
        }
        // A bare IPv6 address has colons but no brackets: not a valid Host.
        _ if host.contains(':') => return false,
        _ => host.clone(),
    };
    let ip = name.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok();
    let listening = served.ip();
    match ip {
        None => name == "localhost" && (listening.is_loopback() || listening.is_unspecified()),
        Some(ip) if listening.is_unspecified() => ip.is_loopback() || !ip.is_unspecified(),
        Some(ip) if listening.is_loopback() => ip.is_loopback(),
        Some(ip) => ip == listening,
    }
}

/// How the refusal names the accepted hosts.
fn served_names(served: SocketAddr) -> Vec<String> {
    let port = served.port();
    let ip = served.ip();
    if ip.is_unspecified() {
        return vec![format!("localhost:{port}"), format!("IP-ADDRESS:{port}")];
    }
    if ip.is_loopback() {
        return vec![format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("[::1]:{port}")];
    }
    vec![served.to_string()]
}

/// Refuses requests that another web site makes from the user's browser: a page elsewhere could otherwise open the
/// live WebSocket or post runs and uploads to this loopback server (browsers send `Origin` with those; tools such
/// as curl send none and pass).
async fn same_origin(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    match foreign_origin(&request) {
        Some(origin) => error(StatusCode::FORBIDDEN, format!("origin {origin}: requests from other sites are refused")),
        None => next.run(request).await,
    }
}

/// The `Origin` of a state-changing request or WebSocket upgrade when it is not this server's own host.
fn foreign_origin(request: &axum::extract::Request) -> Option<String> {
    let headers = request.headers();
    let checked = request.method() != axum::http::Method::GET || headers.contains_key(header::UPGRADE);
    let origin = headers.get(header::ORIGIN)?.to_str().unwrap_or("");
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    (checked && Some(origin_host) != host).then(|| origin.to_string())
}

/// A JSON error body `{"error": "..."}` with its status.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
}

fn bad_request(e: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, e.to_string().replace('\n', " "))
}

fn find(state: &AppState, id: &str) -> Result<Arc<LiveRun>, ApiError> {
    state.run(id).ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("run '{id}': no such run")))
}

/// A JSON body that must be an object; axum's own rejections become one-line 4xx errors.
fn object(body: Result<Json<Value>, JsonRejection>) -> Result<Value, ApiError> {
    match body {
        Ok(Json(v)) if v.is_object() => Ok(v),
        Ok(_) => Err(bad_request("request body: expected a JSON object")),
        Err(e) => Err(ApiError(e.status(), format!("request body: {}", e.body_text()))),
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("internal error: {e}")))
}

async fn api_not_found(uri: axum::http::Uri) -> Response {
    error(StatusCode::NOT_FOUND, format!("{}: no such API route", uri.path()))
}

async fn catalog(State(state): State<Shared>) -> Json<Value> {
    Json(state.lab.catalog())
}

async fn describe(
    State(state): State<Shared>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let request = object(body)?;
    let lab = state.lab.clone();
    blocking(move || lab.describe(&request)).await?.map(Json).map_err(|e| bad_request(format!("{e:#}")))
}

/// A run as listed: who it is, what it trains and where it stands, without the loss curve.
fn summary(run: &LiveRun) -> Value {
    let p = run.progress();
    json!({
        "id": run.id,
        "dir": run.dir.display().to_string(),
        "request": run.request,
        "description": run.description,
        "info": run.view.info(),
        "status": p.status,
        "step": p.step,
        "steps": p.steps,
        "paused": run.is_paused(),
        "message": p.message,
        "loss": p.history.last().map(|pt| pt.loss),
        "samples_per_s": p.history.last().map(|pt| pt.samples_per_s),
        "viewers": run.viewers(),
        "render_s": run.render_seconds(),
    })
}

async fn list_runs(State(state): State<Shared>) -> Json<Value> {
    Json(Value::Array(state.runs().iter().map(|r| summary(r)).collect()))
}

async fn run_detail(State(state): State<Shared>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let run = find(&state, &id)?;
    let mut v = summary(&run);
    v["history"] = json!(run.progress().history);
    Ok(Json(v))
}

async fn start_run(
    State(state): State<Shared>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let request = object(body)?;
    let id = state.next_id();
    let lab = state.lab.clone();
    let run = blocking(move || lab.start(&id, &request)).await?.map_err(|e| bad_request(format!("{e:#}")))?;
    state.add_run(run.clone());
    Ok((StatusCode::CREATED, Json(summary(&run))))
}

async fn start_scene(
    State(state): State<Shared>,
    Path(name): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let request = object(body)?;
    let full = match request.get("full") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => return Err(bad_request(format!("full: expected true or false, got {v}"))),
    };
    let lab = state.lab.clone();
    let n = lab.scene_runs(&name).map_err(|e| bad_request(format!("{e:#}")))?;
    let ids = state.next_ids(n);
    let started =
        blocking(move || lab.start_scene(&ids, &name, full)).await?.map_err(|e| bad_request(format!("{e:#}")))?;
    for run in &started {
        state.add_run(run.clone());
    }
    Ok((StatusCode::CREATED, Json(Value::Array(started.iter().map(|r| summary(r)).collect()))))
}

async fn control(
    State(state): State<Shared>,
    Path((id, action)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let run = find(&state, &id)?;
    let ended = run.is_finished();
    let conflict = |what: &str| ApiError(StatusCode::CONFLICT, format!("run '{id}': has ended, cannot {what}"));
    match action.as_str() {
        "pause" | "resume" if ended => return Err(conflict(&action)),
        "pause" => run.set_paused(true),
        "resume" => run.set_paused(false),
        "stop" => run.request_stop(),
        "checkpoint" => {
            if ended {
                return Err(conflict("save a checkpoint (its final one is saved)"));
            }
            let before = run.request_save();
            for _ in 0..200 {
                if run.saves() > before {
                    let p = run.progress();
                    return Ok(Json(json!({"saved": p.last_checkpoint, "message": p.message})));
                }
                if run.is_finished() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            return Err(ApiError(StatusCode::CONFLICT, format!("run '{id}': no step was taken to save at")));
        }
        other => {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                format!("run action '{other}': unknown; expected pause, resume, stop or checkpoint"),
            ))
        }
    }
    Ok(Json(summary(&run)))
}

async fn resume(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let run = find(&state, &id)?;
    let request = object(body)?;
    if !run.is_finished() {
        return Err(ApiError(StatusCode::CONFLICT, format!("run '{id}': is still training; stop it first")));
    }
    let lab = state.lab.clone();
    let resumed = blocking(move || lab.resume(&run, &request)).await?.map_err(|e| bad_request(format!("{e:#}")))?;
    state.replace_run(resumed.clone());
    Ok(Json(summary(&resumed)))
}

async fn live(
    State(state): State<Shared>,
    Path(id): Path<String>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let run = find(&state, &id)?;
    let ws = ws.map_err(|e| ApiError(e.status(), format!("run '{id}' live: {}", e.body_text())))?;
    Ok(ws.max_message_size(64 << 10).on_upgrade(move |socket| watch(socket, run)))
}

/// Sends the run's state, then every progress change and every new frame, until the page goes away. A slow page
/// only delays itself: it gets the latest frame when it is ready again, never a backlog.
async fn watch(mut socket: WebSocket, run: Arc<LiveRun>) {
    let _viewer = run.watch();
    let mut progress = run.subscribe_progress();
    let mut frames = run.subscribe_frames();
    frames.mark_changed();
    let mut neurons = run.subscribe_neurons();
    let mut neuron_viewer = None;
    if run.frame_is_stale() {
        let run = run.clone();
        tokio::task::spawn_blocking(move || run.render_latest_if_stale());
    }
    let hello = json!({"type": "hello", "run": summary(&run)});
    if socket.send(Message::Text(hello.to_string().into())).await.is_err() {
        return;
    }
    let (first, mut sent) = run.progress_since(0);
    if socket.send(Message::Text(first.to_string().into())).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            changed = progress.changed() => {
                if changed.is_err() {
                    break;
                }
                let (update, n) = run.progress_since(sent);
                sent = n;
                if socket.send(Message::Text(update.to_string().into())).await.is_err() {
                    break;
                }
            }
            changed = frames.changed() => {
                if !send_latest(&mut socket, changed, &mut frames).await {
                    break;
                }
            }
            changed = neurons.changed(), if neuron_viewer.is_some() => {
                if !send_latest(&mut socket, changed, &mut neurons).await {
                    break;
                }
            }
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(Message::Text(text))) => match wants_neurons(&text) {
                    Some(true) if neuron_viewer.is_none() => {
                        neuron_viewer = Some(run.watch_neurons());
                        neurons.mark_changed();
                        let run = run.clone();
                        tokio::task::spawn_blocking(move || run.render_neurons_if_stale());
                    }
                    Some(false) => neuron_viewer = None,
                    _ => {}
                },
                Some(Ok(_)) => {}
            },
        }
    }
}

/// Sends the latest picture of a channel that changed; false when the run or the page has gone.
async fn send_latest(
    socket: &mut WebSocket,
    changed: Result<(), watch::error::RecvError>,
    pictures: &mut watch::Receiver<Option<Bytes>>,
) -> bool {
    if changed.is_err() {
        return false;
    }
    let latest = pictures.borrow_and_update().clone();
    match latest {
        Some(bytes) => socket.send(Message::Binary(bytes)).await.is_ok(),
        None => true,
    }
}

/// A page's `{"neurons": true}` or `{"neurons": false}`: whether it shows the neurons' view. Anything else is
/// ignored.
fn wants_neurons(text: &str) -> Option<bool> {
    serde_json::from_str::<Value>(text).ok()?.get("neurons")?.as_bool()
}

#[derive(Deserialize)]
struct RenderQuery {
    what: Option<String>,
    window: Option<String>,
    size: Option<String>,
}

fn parse_size(s: &str) -> Result<(u32, u32), ApiError> {
    approxlab_view::parse_size(s, MAX_RENDER_SIDE).map_err(bad_request)
}

fn png(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "image/png"), (header::CACHE_CONTROL, "no-store")], bytes).into_response()
}

async fn render(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<RenderQuery>,
) -> Result<Response, ApiError> {
    let run = find(&state, &id)?;
    let learned = match q.what.as_deref() {
        None | Some("learned") => true,
        Some("truth") => false,
        Some(other) => return Err(bad_request(format!("what '{other}': expected learned or truth"))),
    };
    let window = q
        .window
        .as_deref()
        .map(|w| w.parse::<Window>().map_err(|e| bad_request(format!("window: {e}"))))
        .transpose()?;
    let size = q.size.as_deref().map(parse_size).transpose()?.unwrap_or((512, 512));
    let _slot =
        state.render_slots.acquire().await.map_err(|e| ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    let bytes = blocking(move || {
        let (_, params) = run.params();
        run.view.render(learned.then_some(params.as_slice()), window, size)
    })
    .await?
    .map_err(|e| bad_request(format!("{e:#}")))?;
    Ok(png(bytes))
}

async fn video(State(state): State<Shared>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let run = find(&state, &id)?;
    let lab = state.lab.clone();
    let path = blocking(move || lab.video(&run))
        .await?
        .map_err(|e| ApiError(StatusCode::CONFLICT, format!("video of run '{id}': {e:#}")))?;
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("{}: {e}", path.display())))?;
    Ok((
        [
            (header::CONTENT_TYPE, "video/mp4".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"approxlab-{id}.mp4\"")),
        ],
        bytes,
    )
        .into_response())
}

/// The largest uploaded image, per side; larger pictures would only be scaled down for training anyway.
const MAX_UPLOAD_SIDE: u32 = 8192;

async fn upload(State(state): State<Shared>, body: Bytes) -> Result<Json<Value>, ApiError> {
    if body.is_empty() {
        return Err(bad_request("upload: the body is empty; expected a PNG or JPEG image"));
    }
    let dir = state.upload_dir.clone();
    blocking(move || save_upload(&dir, &body)).await?.map(Json)
}

fn save_upload(dir: &std::path::Path, body: &[u8]) -> Result<Value, ApiError> {
    use std::hash::{Hash, Hasher};
    let reader = image::ImageReader::new(std::io::Cursor::new(body))
        .with_guessed_format()
        .map_err(|e| bad_request(format!("upload: {e}")))?;
    match reader.format() {
        Some(image::ImageFormat::Png | image::ImageFormat::Jpeg) => {}
        _ => return Err(bad_request("upload: not a PNG or JPEG image")),
    }
    let mut reader = reader;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_UPLOAD_SIDE);
    limits.max_image_height = Some(MAX_UPLOAD_SIDE);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| bad_request(format!("upload: cannot decode the image: {e}")))?;
    // Named by content: the same picture uploaded twice is one file, and the name says nothing of the client's.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut hasher);
    let name = format!("{:016x}", hasher.finish());
    let internal = |e: std::io::Error| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("upload: cannot save: {e}"));
    std::fs::create_dir_all(dir).map_err(internal)?;
    let path = dir.join(format!("{name}.png"));
    let tmp = dir.join(format!("{name}.png.tmp"));
    img.save_with_format(&tmp, image::ImageFormat::Png)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("upload: cannot save: {e}")))?;
    std::fs::rename(&tmp, &path).map_err(internal)?;
    Ok(json!({"data": format!("upload:{name}"), "width": img.width(), "height": img.height()}))
}
