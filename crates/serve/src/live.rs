//! A run as the page sees it: what the training thread publishes (progress, weights, live frames, status) and what
//! the page asks of it (pause, stop, save). Training never waits on a viewer: it only writes into this state, and
//! viewers read the latest of it.
//!
//! Live frames are rendered by the training thread itself, between two steps, when someone watches and a frame
//! is due. Rendered on another thread, the same work would be interleaved into the training step's parallel GEMMs
//! (on two cores a stolen render task stalls the step's other half), which cost training about twice the render's
//! own time in `bench/viewers`; between steps it costs exactly its time, and a budget keeps that small.

use axum::body::Bytes;
use serde::Serialize;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often the training loop publishes progress and weights.
pub const PUBLISH_PERIOD: Duration = Duration::from_millis(100);

/// The shortest time between two live frames of one run.
const MIN_FRAME_PERIOD: Duration = Duration::from_millis(200);

/// Rendering may take at most this share of the wall time, so that watching costs training a bounded fraction
/// whatever the model's size.
const MAX_RENDER_SHARE: f64 = 0.03;

/// One point of the loss curve.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct Point {
    pub step: u64,
    pub wall_s: f64,
    pub loss: f64,
    pub lr: f32,
    pub samples_per_s: f64,
}

/// What a live frame carries, by the kind of data.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// A PNG picture (2-D fields, images, classification panels).
    Png(Vec<u8>),
    /// Values of a 1-D function at `n` evenly spaced points from `x0` to `x1`.
    Curve { x0: f64, x1: f64, values: Vec<f32> },
    /// A `nu x nv` grid of 3-D points, row-major in u, of a parametric surface.
    Mesh { nu: usize, nv: usize, xyz: Vec<f32> },
    /// A PNG of the neurons' view: every unit's output over the window.
    Neurons(Vec<u8>),
}

impl Frame {
    /// The binary WebSocket message: a little-endian u32 header length, a JSON header, then the payload (PNG
    /// bytes, or little-endian f32 values).
    pub fn encode(&self, run: &str, step: u64) -> Vec<u8> {
        let (header, payload): (Value, Vec<u8>) = match self {
            Frame::Png(bytes) => (serde_json::json!({"type": "png"}), bytes.clone()),
            Frame::Neurons(bytes) => (serde_json::json!({"type": "neurons"}), bytes.clone()),
            Frame::Curve { x0, x1, values } => (
                serde_json::json!({"type": "curve", "x0": x0, "x1": x1, "n": values.len()}),
                values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
            Frame::Mesh { nu, nv, xyz } => (
                serde_json::json!({"type": "mesh", "nu": nu, "nv": nv}),
                xyz.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
        };
        let mut header = header;
        header["run"] = Value::from(run);
        header["step"] = Value::from(step);
        let header = header.to_string();
        // The payload of f32 values must start on a 4-byte boundary for a Float32Array view: pad the header.
        let pad = (4 - (4 + header.len()) % 4) % 4;
        let header = header + &" ".repeat(pad);
        let mut out = Vec::with_capacity(4 + header.len() + payload.len());
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&payload);
        out
    }
}

/// How a run's learned function is drawn. The CLI implements it with its renderers; the server only calls it off
/// the training threads.
pub trait RunView: Send + Sync {
    /// What the page needs to draw this data: `kind` (`field2d`, `image`, `curve`, `surface`, `classification`),
    /// domain, sample points and so on.
    fn info(&self) -> Value;
    /// The live frame of the learned function with these weights.
    fn live_frame(&self, params: &[f32]) -> anyhow::Result<Frame>;
    /// A PNG of the learned function (`Some(params)`) or of the ground truth (`None`) over a window of a 2-D
    /// function (`None`: the whole domain), at `size` pixels.
    fn render(
        &self,
        params: Option<&[f32]>,
        window: Option<approxlab_view::Window>,
        size: (u32, u32),
    ) -> anyhow::Result<Vec<u8>>;
    /// A PNG of every neuron's output with these weights, or `None` where the data has no such view (inputs of
    /// more than two dimensions).
    fn neurons(&self, _params: &[f32]) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(None)
    }
}

/// The status and loss curve of a run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Progress {
    pub status: String,
    pub step: u64,
    pub steps: Option<u64>,
    /// A line for the user: why a run stopped, where a checkpoint went.
    pub message: Option<String>,
    pub history: Vec<Point>,
    pub last_checkpoint: Option<u64>,
}

struct Snapshot {
    step: u64,
    params: Arc<Vec<f32>>,
    finished: bool,
}

pub struct LiveRun {
    pub id: String,
    pub dir: PathBuf,
    /// The request or config that made it, shown on the page.
    pub request: Value,
    /// Parameter and feature counts, parts.
    pub description: Value,
    pub view: Box<dyn RunView>,
    stop: AtomicBool,
    /// Read by the training loop every step without a lock; changed under `pause_lock`, so that a loop waiting on
    /// `pause_changed` never misses a change.
    paused: AtomicBool,
    pause_lock: Mutex<()>,
    pause_changed: Condvar,
    save_requested: AtomicBool,
    saves: AtomicU64,
    progress: Mutex<Progress>,
    snapshot: Mutex<Snapshot>,
    viewers: AtomicUsize,
    created: Instant,
    /// When the next live frame is due, in nanoseconds since `created`; read every step without a lock.
    next_frame_ns: AtomicU64,
    /// Time spent rendering live frames, in nanoseconds: what watching has cost.
    render_ns: AtomicU64,
    rendering_on_demand: AtomicBool,
    /// The step of the live frame in `frame`.
    frame_step: AtomicU64,
    progress_version: watch::Sender<u64>,
    frame: watch::Sender<Option<Bytes>>,
    /// Viewers that asked for the neurons' view: rendered with the live frame, within its budget, only then.
    neuron_viewers: AtomicUsize,
    neurons: watch::Sender<Option<Bytes>>,
    /// The step of the picture in `neurons`.
    neurons_step: AtomicU64,
    rendering_neurons_on_demand: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic on another thread while holding one of these locks leaves plain data behind: keep going with it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl LiveRun {
    pub fn new(
        id: String,
        dir: PathBuf,
        request: Value,
        description: Value,
        view: Box<dyn RunView>,
        params: &[f32],
        steps: Option<u64>,
    ) -> Arc<LiveRun> {
        Arc::new(LiveRun {
            id,
            dir,
            request,
            description,
            view,
            stop: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            pause_lock: Mutex::new(()),
            pause_changed: Condvar::new(),
            save_requested: AtomicBool::new(false),
            saves: AtomicU64::new(0),
            progress: Mutex::new(Progress { status: "starting".into(), steps, ..Progress::default() }),
            snapshot: Mutex::new(Snapshot { step: 0, params: Arc::new(params.to_vec()), finished: false }),
            viewers: AtomicUsize::new(0),
            created: Instant::now(),
            next_frame_ns: AtomicU64::new(0),
            render_ns: AtomicU64::new(0),
            rendering_on_demand: AtomicBool::new(false),
            frame_step: AtomicU64::new(0),
            progress_version: watch::channel(0).0,
            frame: watch::channel(None).0,
            neuron_viewers: AtomicUsize::new(0),
            neurons: watch::channel(None).0,
            neurons_step: AtomicU64::new(0),
            rendering_neurons_on_demand: AtomicBool::new(false),
        })
    }

    // ---- Training side -------------------------------------------------------------------------------------

    /// Whether the page asked the run to stop.
    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Whether the page asked for a checkpoint; clears the request.
    pub fn take_save_request(&self) -> bool {
        self.save_requested.load(Ordering::Relaxed) && self.save_requested.swap(false, Ordering::AcqRel)
    }

    /// Records a checkpoint written at `step`.
    pub fn saved(&self, step: u64, path: &std::path::Path) {
        {
            let mut p = lock(&self.progress);
            p.last_checkpoint = Some(step);
            p.message = Some(format!("checkpoint saved at step {step}: {}", path.display()));
        }
        self.saves.fetch_add(1, Ordering::AcqRel);
        self.progress_version.send_modify(|v| *v += 1);
    }

    /// Blocks while the run is paused and neither asked to stop, nor `interrupted`, nor asked for a checkpoint
    /// (which a paused run saves too); returns how long it waited, so that a time budget can leave the pause out.
    pub fn wait_while_paused(&self, interrupted: &dyn Fn() -> bool) -> Duration {
        if !self.is_paused() {
            return Duration::ZERO;
        }
        let start = Instant::now();
        let mut guard = lock(&self.pause_lock);
        while self.is_paused()
            && !self.stop_requested()
            && !interrupted()
            && !self.save_requested.load(Ordering::Acquire)
        {
            guard = self
                .pause_changed
                .wait_timeout(guard, Duration::from_millis(200))
                .map(|r| r.0)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        start.elapsed()
    }

    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    /// Sets the status and message shown on the page before training starts (e.g. `queued`, with the place).
    pub fn set_status(&self, status: &str, message: Option<String>) {
        {
            let mut p = lock(&self.progress);
            p.status = status.to_string();
            p.message = message;
        }
        self.progress_version.send_modify(|v| *v += 1);
    }

    /// Sets the message shown under the run's figures, keeping its status (a running run's score estimate, say).
    pub fn set_message(&self, message: Option<String>) {
        lock(&self.progress).message = message;
        self.progress_version.send_modify(|v| *v += 1);
    }

    /// Publishes progress and the current weights; the training loop calls it about every [`PUBLISH_PERIOD`].
    pub fn publish(&self, point: Point, params: &[f32]) {
        {
            let mut p = lock(&self.progress);
            if p.status == "starting" {
                p.status = "running".into();
            }
            p.step = point.step;
            p.history.push(point);
        }
        self.progress_version.send_modify(|v| *v += 1);
        self.store_params(point.step, params, false);
    }

    /// Whether someone watches and a live frame is due; cheap enough to ask every step.
    pub fn frame_due(&self) -> bool {
        self.viewers.load(Ordering::Relaxed) > 0
            && self.created.elapsed().as_nanos() as u64 >= self.next_frame_ns.load(Ordering::Relaxed)
    }

    /// Renders the live frame of these weights for every viewer, and sets when the next one is due: at least
    /// [`MIN_FRAME_PERIOD`] later, and late enough that rendering stays within [`MAX_RENDER_SHARE`] of the time.
    pub fn render_frame(&self, step: u64, params: &[f32]) {
        let start = Instant::now();
        match self.view.live_frame(params) {
            Ok(frame) => {
                self.frame.send_replace(Some(Bytes::from(frame.encode(&self.id, step))));
                self.frame_step.store(step, Ordering::Relaxed);
            }
            Err(e) => self.report(format!("live view: {e:#}")),
        }
        if self.neuron_viewers.load(Ordering::Relaxed) > 0 {
            self.render_neurons(step, params);
        }
        let took = start.elapsed();
        self.render_ns.fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
        let wait = MIN_FRAME_PERIOD.max(took.mul_f64((1.0 - MAX_RENDER_SHARE) / MAX_RENDER_SHARE));
        let next = (start + wait).duration_since(self.created).as_nanos() as u64;
        self.next_frame_ns.store(next, Ordering::Relaxed);
    }

    fn report(&self, message: String) {
        lock(&self.progress).message = Some(message);
        self.progress_version.send_modify(|v| *v += 1);
    }

    fn render_neurons(&self, step: u64, params: &[f32]) {
        match self.view.neurons(params) {
            Ok(Some(png)) => {
                self.neurons.send_replace(Some(Bytes::from(Frame::Neurons(png).encode(&self.id, step))));
                self.neurons_step.store(step, Ordering::Relaxed);
            }
            Ok(None) => {}
            Err(e) => self.report(format!("neurons view: {e:#}")),
        }
    }

    /// For a viewer that just asked for the neurons' view: renders it from the latest weights, off the training
    /// threads, when there is none yet or the run stands still (a training run renders it with its next frame).
    pub fn render_neurons_if_stale(&self) {
        let missing = self.neurons.borrow().is_none();
        let idle = self.is_paused() || self.is_finished();
        let behind = self.neurons_step.load(Ordering::Relaxed) < lock(&self.snapshot).step;
        if !(missing || idle && behind) || self.rendering_neurons_on_demand.swap(true, Ordering::AcqRel) {
            return;
        }
        let start = Instant::now();
        let (step, params) = self.params();
        self.render_neurons(step, &params);
        self.render_ns.fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.rendering_neurons_on_demand.store(false, Ordering::Release);
    }

    /// Counts a viewer of the neurons' view for as long as the guard lives.
    pub fn watch_neurons(self: &Arc<Self>) -> NeuronViewerGuard {
        self.neuron_viewers.fetch_add(1, Ordering::AcqRel);
        NeuronViewerGuard(self.clone())
    }

    pub fn neuron_viewers(&self) -> usize {
        self.neuron_viewers.load(Ordering::Relaxed)
    }

    pub fn subscribe_neurons(&self) -> watch::Receiver<Option<Bytes>> {
        self.neurons.subscribe()
    }

    /// Whether the live frame is missing, or older than the weights of a paused or finished run (one that nobody
    /// watched for a while).
    pub fn frame_is_stale(&self) -> bool {
        if self.frame.borrow().is_none() {
            return true;
        }
        // A training run renders its own frames for its viewers; only a run that stands still needs one.
        let idle = self.is_paused() || self.is_finished();
        idle && self.frame_step.load(Ordering::Relaxed) < lock(&self.snapshot).step
    }

    /// A frame for a viewer that arrives when the last one is missing or stale: rendered from the latest weights,
    /// off the training threads.
    pub fn render_latest_if_stale(&self) {
        // Many viewers arriving at once need one render, not one each.
        if !self.frame_is_stale() || self.rendering_on_demand.swap(true, Ordering::AcqRel) {
            return;
        }
        if self.frame_is_stale() {
            let (step, params) = self.params();
            self.render_frame(step, &params);
        }
        self.rendering_on_demand.store(false, Ordering::Release);
    }

    /// The loss curve of a run that trained before this server started (read back from its metrics).
    pub fn restore_history(&self, points: Vec<Point>) {
        lock(&self.progress).history = points;
        self.progress_version.send_modify(|v| *v += 1);
    }

    /// The run has ended (`finished`, `stopped`, `interrupted`, `diverged`, `failed`).
    pub fn finish(&self, status: &str, step: u64, params: &[f32], message: Option<String>) {
        {
            let mut p = lock(&self.progress);
            p.status = status.to_string();
            p.step = step;
            if message.is_some() {
                p.message = message;
            }
        }
        self.paused.store(false, Ordering::Relaxed);
        self.store_params(step, params, true);
        // The final frame, for viewers now and later.
        self.render_frame(step, params);
        self.progress_version.send_modify(|v| *v += 1);
    }

    fn store_params(&self, step: u64, params: &[f32], finished: bool) {
        let mut s = lock(&self.snapshot);
        // Reuse the buffer when no render holds it; otherwise the renderer keeps its copy and we start a new one.
        match Arc::get_mut(&mut s.params) {
            Some(buf) if buf.len() == params.len() => buf.copy_from_slice(params),
            _ => s.params = Arc::new(params.to_vec()),
        }
        s.step = step;
        s.finished |= finished;
    }

    // ---- Page side ----------------------------------------------------------------------------------------------

    pub fn request_stop(&self) {
        self.notify_pause_waiter(|| self.stop.store(true, Ordering::Relaxed));
    }

    pub fn set_paused(&self, paused: bool) {
        self.notify_pause_waiter(|| self.paused.store(paused, Ordering::Relaxed));
        self.progress_version.send_modify(|v| *v += 1);
    }

    /// Changes what a paused training loop waits on, under its lock, and wakes it.
    fn notify_pause_waiter(&self, change: impl FnOnce()) {
        let _guard = lock(&self.pause_lock);
        change();
        self.pause_changed.notify_all();
    }

    /// Asks for a checkpoint at the next step; returns the number of checkpoints saved so far, to wait on.
    pub fn request_save(&self) -> u64 {
        let before = self.saves.load(Ordering::Acquire);
        self.notify_pause_waiter(|| self.save_requested.store(true, Ordering::Release));
        before
    }

    pub fn saves(&self) -> u64 {
        self.saves.load(Ordering::Acquire)
    }

    pub fn progress(&self) -> Progress {
        lock(&self.progress).clone()
    }

    /// Status and the loss-curve points from `from` on, without copying the whole history.
    pub fn progress_since(&self, from: usize) -> (Value, usize) {
        let p = lock(&self.progress);
        let from = from.min(p.history.len());
        let v = serde_json::json!({
            "type": "progress",
            "run": self.id,
            "status": p.status,
            "step": p.step,
            "steps": p.steps,
            "paused": self.is_paused(),
            "message": p.message,
            "last_checkpoint": p.last_checkpoint,
            "points": &p.history[from..],
        });
        (v, p.history.len())
    }

    pub fn is_finished(&self) -> bool {
        lock(&self.snapshot).finished
    }

    /// The latest weights and their step.
    pub fn params(&self) -> (u64, Arc<Vec<f32>>) {
        let s = lock(&self.snapshot);
        (s.step, s.params.clone())
    }

    pub fn subscribe_progress(&self) -> watch::Receiver<u64> {
        self.progress_version.subscribe()
    }

    pub fn subscribe_frames(&self) -> watch::Receiver<Option<Bytes>> {
        self.frame.subscribe()
    }

    /// Seconds spent rendering live frames so far.
    pub fn render_seconds(&self) -> f64 {
        self.render_ns.load(Ordering::Relaxed) as f64 * 1e-9
    }

    pub fn viewers(&self) -> usize {
        self.viewers.load(Ordering::Relaxed)
    }

    /// Counts a viewer for as long as the guard lives; live frames are rendered only while someone watches.
    pub fn watch(self: &Arc<Self>) -> ViewerGuard {
        self.viewers.fetch_add(1, Ordering::AcqRel);
        ViewerGuard(self.clone())
    }
}

pub struct ViewerGuard(Arc<LiveRun>);

pub struct NeuronViewerGuard(Arc<LiveRun>);

impl Drop for NeuronViewerGuard {
    fn drop(&mut self) {
        self.0.neuron_viewers.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for ViewerGuard {
    fn drop(&mut self) {
        self.0.viewers.fetch_sub(1, Ordering::AcqRel);
    }
}
