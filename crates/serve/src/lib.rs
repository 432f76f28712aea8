//! The live view of approxlab: a local web app that starts runs, shows them learning several times a second, lets
//! the user pause, stop and checkpoint them, zooms into the learned function beside the truth, and compares runs.
//!
//! The server knows nothing of configs or training: a [`Lab`] (the CLI) turns a request into a running
//! [`LiveRun`], and a [`RunView`] draws it. Training threads only write into a `LiveRun`; the server reads the
//! latest state from it, so no viewer can slow a step down or stall it.

mod api;
mod assets;
mod live;

pub use api::{host_is_served, router};
pub use live::{Frame, LiveRun, Point, Progress, RunView, ViewerGuard, PUBLISH_PERIOD};

use anyhow::Context;
use serde_json::Value;
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

/// The most bytes an uploaded image may have.
pub const MAX_UPLOAD_BYTES: usize = 8 << 20;

/// The largest picture a render request may ask for, per side.
pub const MAX_RENDER_SIDE: u32 = 2048;

/// What the server asks of the program that trains.
pub trait Lab: Send + Sync {
    /// The choices the page offers: data sets, encodings, networks, heads, losses, optimizers, schedules and the
    /// defaults of the form.
    fn catalog(&self) -> Value;
    /// Checks a request (`{"data": .., "encoding": .., ...}`) and describes its model: parameter count, encoded
    /// features, parts. Errors are one line for the user.
    fn describe(&self, request: &Value) -> anyhow::Result<Value>;
    /// Starts training on threads of its own and returns the run it publishes into.
    fn start(&self, id: &str, request: &Value) -> anyhow::Result<Arc<LiveRun>>;
    /// Continues an ended run from its latest checkpoint to a new step budget (`{"steps": N}`, a total), training
    /// on threads of its own; returns the run that replaces it.
    fn resume(&self, run: &LiveRun, request: &Value) -> anyhow::Result<Arc<LiveRun>>;
    /// How many runs the scene `name` of the video trains (one, or the models of a comparison).
    fn scene_runs(&self, name: &str) -> anyhow::Result<usize>;
    /// Starts the scene `name` with its quick budget (its full one when `full`) as runs `ids`, one per model, on
    /// threads of their own.
    fn start_scene(&self, ids: &[String], name: &str, full: bool) -> anyhow::Result<Vec<Arc<LiveRun>>>;
    /// Encodes the run's frames as an MP4 and returns its path.
    fn video(&self, run: &LiveRun) -> anyhow::Result<PathBuf>;
}

/// Everything the handlers share.
pub struct AppState {
    pub lab: Arc<dyn Lab>,
    runs: RwLock<Vec<Arc<LiveRun>>>,
    /// Where uploaded images are kept, as PNG files named by their content.
    pub upload_dir: PathBuf,
    /// Renders for zooms share the machine with training: at most this many at once.
    render_slots: tokio::sync::Semaphore,
}

impl AppState {
    pub fn new(lab: Arc<dyn Lab>, upload_dir: PathBuf) -> Arc<AppState> {
        Arc::new(AppState {
            lab,
            runs: RwLock::new(Vec::new()),
            upload_dir,
            render_slots: tokio::sync::Semaphore::new(2),
        })
    }

    /// Adds a run that something else started (`approxlab train --serve`).
    pub fn add_run(&self, run: Arc<LiveRun>) {
        self.runs.write().unwrap_or_else(|p| p.into_inner()).push(run);
    }

    /// Puts `run` in the place of the run with its id (a resumed run), or adds it.
    pub fn replace_run(&self, run: Arc<LiveRun>) {
        let mut runs = self.runs.write().unwrap_or_else(|p| p.into_inner());
        match runs.iter_mut().find(|r| r.id == run.id) {
            Some(slot) => *slot = run,
            None => runs.push(run),
        }
    }

    pub fn runs(&self) -> Vec<Arc<LiveRun>> {
        self.runs.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn run(&self, id: &str) -> Option<Arc<LiveRun>> {
        self.runs.read().unwrap_or_else(|p| p.into_inner()).iter().find(|r| r.id == id).cloned()
    }

    /// A fresh run id: `run-1`, `run-2`, ...
    pub fn next_id(&self) -> String {
        self.next_ids(1).remove(0)
    }

    /// `n` fresh run ids, for runs started together.
    pub fn next_ids(&self, n: usize) -> Vec<String> {
        let runs = self.runs.read().unwrap_or_else(|p| p.into_inner());
        let mut ids = Vec::with_capacity(n);
        let mut k = 1;
        while ids.len() < n {
            let id = format!("run-{k}");
            if !runs.iter().any(|r| r.id == id) {
                ids.push(id);
            }
            k += 1;
        }
        ids
    }
}

/// A server running on a thread of its own; dropping it leaves it running until the process ends.
pub struct Server {
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Binds `addr` (port 0 picks a free one) and serves on one worker thread: the server mostly waits, and the
    /// cores belong to training.
    pub fn start(state: Arc<AppState>, addr: SocketAddr) -> anyhow::Result<Server> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("approxlab-serve")
            .enable_all()
            .build()
            .context("cannot start the web server's runtime")?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(addr))
            .with_context(|| format!("--port: cannot listen on {addr}"))?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = router(state, addr);
        let thread = std::thread::Builder::new().name("approxlab-http".into()).spawn(move || {
            runtime.block_on(async move {
                tokio::select! {
                    served = axum::serve(listener, app).into_future() => {
                        if let Err(e) = served {
                            eprintln!("approxlab: web server stopped: {e}");
                        }
                    }
                    _ = rx => {}
                }
            });
            // Open WebSockets would keep a graceful shutdown waiting: drop them.
            runtime.shutdown_background();
        })?;
        Ok(Server { addr, shutdown: Some(tx), thread: Some(thread) })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections and waits for the server thread.
    pub fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
