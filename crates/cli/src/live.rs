//! The CLI's side of the live view: requests from the page become run configs, runs train on threads of their
//! own and publish into a [`LiveRun`], and the renderers of `render.rs` draw them.

use crate::config::{self, ConfigFlags, RunConfig};
use crate::parts;
use crate::queue::RunQueue;
use crate::render::{self, RenderOptions};
use crate::run;
use anyhow::{anyhow, bail, Context, Result};
use approxlab_data::{DataSpec, Dataset, ImageSpec, Kind, MnistSpec, NAMED_CURVES};
use approxlab_engine::encoding::EncodingConfig;
use approxlab_engine::head::Head;
use approxlab_engine::loss::Loss;
use approxlab_engine::network::NetworkConfig;
use approxlab_engine::optimizer::OptimizerConfig;
use approxlab_engine::schedule::Schedule;
use approxlab_engine::Model;
use approxlab_serve::{AppState, Frame, Lab, LiveRun, RunView};
use approxlab_view::{Colormap, RgbImage, Window};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Side of the live pictures: sharp enough on the page, cheap enough to render several times a second.
const LIVE_SIDE: u32 = 256;
/// Points of a live curve.
const CURVE_POINTS: usize = 400;
/// Grid of a live surface mesh, per parameter.
const MESH_SIDE: usize = 48;
/// At most this many sample points go to the page.
const MAX_POINTS: usize = 3000;

/// The keys a page request may set; everything else is refused so that a typo is not silently ignored.
const REQUEST_KEYS: &[&str] = &[
    "data",
    "encoding",
    "network",
    "head",
    "loss",
    "optimizer",
    "lr",
    "schedule",
    "batch",
    "steps",
    "time",
    "seed",
    "clip_grad_norm",
    "encoding_lr_scale",
    "frame_seconds",
];

pub struct CliLab {
    /// Parent of the page's run directories.
    pub out: PathBuf,
    /// Optional folder of images (`image:NAME`) and MNIST (`mnist`) that the page may use.
    pub data_dir: Option<PathBuf>,
    pub upload_dir: PathBuf,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    queue: Arc<RunQueue>,
}

impl CliLab {
    /// `max_runs` page runs train at once; the others wait in order.
    pub fn new(out: PathBuf, data_dir: Option<PathBuf>, max_runs: usize) -> CliLab {
        let upload_dir = out.join("uploads");
        CliLab { out, data_dir, upload_dir, threads: Mutex::new(Vec::new()), queue: Arc::new(RunQueue::new(max_runs)) }
    }

    /// Waits for every run started from the page (they stop by themselves on Ctrl-C).
    pub fn join(&self) {
        let handles = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for h in handles {
            let _ = h.join();
        }
    }

    /// Trains on a thread of its own, publishing into `live`, and tells the page and the terminal how it ended.
    fn train_in_background(
        &self,
        live: Arc<LiveRun>,
        config: RunConfig,
        data: Arc<dyn Dataset>,
        mut trainer: approxlab_engine::Trainer,
        wall_before: f64,
    ) -> Result<()> {
        let (queue, ticket) = (self.queue.clone(), self.queue.ticket());
        let handle = std::thread::Builder::new().name(format!("train {}", live.id)).spawn(move || {
            let limit = queue.limit();
            let turn = queue.wait(
                ticket,
                || live.stop_requested() || run::INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst),
                |ahead| {
                    let runs = if ahead == 1 { "run" } else { "runs" };
                    let message = format!(
                        "queued: {ahead} {runs} ahead ({limit} at a time; approxlab serve --max-runs N changes it)"
                    );
                    live.set_status("queued", Some(message));
                },
            );
            // Stopped (or Ctrl-C) while queued: the loop below ends at once and writes the run's summary.
            live.set_status("starting", None);
            let dir = live.dir.clone();
            // A panic (a bug) ends this run as failed, with its message; the server and the other runs go on.
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                crate::run_loop::train_loop(
                    &config,
                    &dir,
                    data.clone(),
                    &mut trainer,
                    crate::run_loop::Session::new(true).resumed_after(wall_before).on_page(&live),
                )
            }))
            .unwrap_or_else(|payload| Err(anyhow::anyhow!("internal error: {}", panic_message(payload.as_ref()))));
            finish_live(&live, outcome, &dir, &config, data.as_ref(), &trainer);
            // The place goes to the next run (also if anything above panicked).
            drop(turn);
            eprintln!("approxlab: {}: {}", live.id, live.progress().message.unwrap_or_default());
        })?;
        self.threads.lock().unwrap_or_else(|p| p.into_inner()).push(handle);
        Ok(())
    }

    /// Starts `config` as the run `id` of the page: its folder named by time and id, training on a thread of its own.
    fn start_config(&self, id: &str, request: Value, mut config: RunConfig) -> Result<Arc<LiveRun>> {
        // Named by time and page id; a server started again within the same second may reuse an id, hence the
        // suffix.
        let base = format!("{}-web-{id}", chrono::Local::now().format("%Y%m%d-%H%M%S"));
        let mut name = base.clone();
        let mut k = 2;
        while config.output.dir.join(&name).exists() {
            name = format!("{base}-{k}");
            k += 1;
        }
        config.name = Some(name);
        let (data, trainer, dir) = run::prepare(&mut config)?;
        let live = live_run(id, &dir, request, &config, data.clone(), trainer.model())?;
        eprintln!("approxlab: {id} started: {} -> {}", data.name(), dir.display());
        self.train_in_background(live.clone(), config, data, trainer, 0.0)?;
        Ok(live)
    }

    fn images(&self) -> Vec<String> {
        let Some(dir) = &self.data_dir else { return vec![] };
        let mut names: Vec<String> = std::fs::read_dir(dir.join("images"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| {
                let l = n.to_ascii_lowercase();
                l.ends_with(".png") || l.ends_with(".jpg") || l.ends_with(".jpeg")
            })
            .collect();
        names.sort();
        names
    }

    fn mnist_dir(&self) -> Option<PathBuf> {
        let dir = self.data_dir.as_ref()?.join("mnist");
        dir.is_dir().then_some(dir)
    }

    /// The data sets the page may train on. Paths never come from the page: images are uploads (named by their
    /// content) or files of `--data-dir`, so a request cannot make the server read any other file.
    fn data_spec(&self, text: &str) -> Result<DataSpec> {
        let text = text.trim();
        let (head, rest) = text.split_once(':').unwrap_or((text, ""));
        let simple = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        let found = match head {
            "mandelbrot" | "surface" => return DataSpec::parse(text).map_err(|e| anyhow!("data: {e}")),
            "curve" if rest.trim_start().starts_with("csv:") => {
                bail!("data '{text}': CSV files cannot be read from the page; use the CLI")
            }
            "curve" => return DataSpec::parse(text).map_err(|e| anyhow!("data: {e}")),
            "upload" if simple(rest) && rest.chars().all(|c| c.is_ascii_hexdigit()) => {
                let path = self.upload_dir.join(format!("{rest}.png"));
                if !path.is_file() {
                    bail!("data '{text}': no such upload; upload the image again");
                }
                Some(DataSpec::Image(ImageSpec::new(path)))
            }
            "image" if simple(rest) && self.images().iter().any(|n| n == rest) => {
                self.data_dir.as_ref().map(|dir| DataSpec::Image(ImageSpec::new(dir.join("images").join(rest))))
            }
            "mnist" if rest.is_empty() => self.mnist_dir().map(|dir| DataSpec::Mnist(MnistSpec::new(dir))),
            _ => None,
        };
        found.ok_or_else(|| {
            anyhow!(
                "data '{text}': not available from the page; expected mandelbrot[:smooth|periodic], \
                 curve:NAME_OR_EXPR, surface:sphere|shell|torus, an uploaded image{}",
                if self.data_dir.is_some() { ", image:NAME of --data-dir or mnist" } else { "" }
            )
        })
    }

    /// The run config of a page request: the CLI's flags, so that the page and the command line agree on every
    /// default and every error.
    fn config(&self, request: &Value) -> Result<RunConfig> {
        let obj = request.as_object().ok_or_else(|| anyhow!("request: expected a JSON object"))?;
        for key in obj.keys() {
            if !REQUEST_KEYS.contains(&key.as_str()) {
                bail!("request: unknown key '{key}'; expected one of {}", REQUEST_KEYS.join(", "));
            }
        }
        let text = |k: &str| -> Result<Option<String>> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
                Some(v) => bail!("{k}: expected a string, got {v}"),
            }
        };
        let number = |k: &str| -> Result<Option<f64>> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
                Some(Value::Number(n)) => Ok(n.as_f64()),
                Some(Value::String(s)) => {
                    s.trim().parse::<f64>().map(Some).map_err(|_| anyhow!("{k} '{s}': expected a number"))
                }
                Some(v) => bail!("{k}: expected a number, got {v}"),
            }
        };
        let count = |k: &str| -> Result<Option<u64>> {
            match number(k)? {
                None => Ok(None),
                Some(v) if v >= 0.0 && v.fract() == 0.0 && v < 1e15 => Ok(Some(v as u64)),
                Some(v) => bail!("{k} {v}: expected a whole number"),
            }
        };
        let data = text("data")?.ok_or_else(|| anyhow!("data: missing; choose a data set"))?;
        let flags = ConfigFlags {
            data_spec: Some(self.data_spec(&data)?),
            encoding: text("encoding")?,
            network: text("network")?,
            head: text("head")?,
            loss: text("loss")?,
            optimizer: text("optimizer")?,
            lr: number("lr")?.map(|v| v as f32),
            schedule: text("schedule")?,
            batch: count("batch")?.map(|v| v as usize),
            steps: count("steps")?,
            time: text("time")?,
            seed: count("seed")?,
            clip_grad_norm: number("clip_grad_norm")?.map(|v| v as f32),
            encoding_lr_scale: number("encoding_lr_scale")?.map(|v| v as f32),
            out: Some(self.out.clone()),
            ..ConfigFlags::default()
        };
        let mut config = config::resolve(&flags)?;
        // Frames to download as a video, every second of training unless the request says otherwise (0: none).
        config.output.frame_seconds = match number("frame_seconds")? {
            Some(s) if s.is_finite() && s >= 0.0 => s,
            Some(s) => bail!("frame_seconds {s}: expected a number of seconds, 0 or more"),
            None => 1.0,
        };
        Ok(config)
    }
}

fn describe_model(model: &Model, data: &dyn Dataset, config: &RunConfig) -> Value {
    json!({
        "data": {"name": data.name(), "inputs": data.input_dims(), "outputs": data.output_dims()},
        "params": model.n_params(),
        "encoded_features": model.encoded_dims(),
        "flops_per_sample": model.flops_per_sample(),
        "parts": model.summary(),
        "batch": config.train.batch,
        "lr": config.train.lr,
    })
}

impl Lab for CliLab {
    fn catalog(&self) -> Value {
        let mut data = vec![
            json!({"value": "mandelbrot", "label": "Mandelbrot set"}),
            json!({"value": "mandelbrot:periodic", "label": "Mandelbrot set (periodic)"}),
        ];
        for (expr, name) in NAMED_CURVES {
            data.push(json!({"value": format!("curve:{expr}"), "label": format!("curve {name}: {expr}")}));
        }
        for s in ["sphere", "shell", "torus"] {
            data.push(json!({"value": format!("surface:{s}"), "label": format!("surface: {s}")}));
        }
        for name in self.images() {
            data.push(json!({"value": format!("image:{name}"), "label": format!("image: {name}")}));
        }
        if self.mnist_dir().is_some() {
            data.push(json!({"value": "mnist", "label": "MNIST digits"}));
        }
        let scenes: Vec<Value> = crate::scenes::live_presets(self.mnist_dir().as_deref())
            .iter()
            .map(|s| {
                let n = s.models().len();
                json!({"name": s.name, "title": s.title, "claim": s.claim, "runs": n,
                       "quick": s.quick.describe(n), "full": s.full.describe(n),
                       "quick_s": s.quick_s, "full_s": s.full_s})
            })
            .collect();
        json!({
            "data": data,
            "encoding": parts::examples::<EncodingConfig>(),
            "network": parts::examples::<NetworkConfig>(),
            "head": std::iter::once("").chain(parts::examples::<Head>()).collect::<Vec<_>>(),
            "loss": std::iter::once("").chain(parts::examples::<Loss>()).collect::<Vec<_>>(),
            "optimizer": parts::examples::<OptimizerConfig>(),
            "schedule": parts::examples::<Schedule>(),
            "defaults": {
                "data": "mandelbrot", "encoding": "fourier:16", "network": "mlp:4x64", "head": "", "loss": "",
                "optimizer": "adam", "lr": 0.003, "schedule": "step:1000:0.5", "batch": 2048, "steps": 3000,
                "time": "", "seed": 0
            },
            "upload": {"max_bytes": approxlab_serve::MAX_UPLOAD_BYTES},
            "scenes": scenes,
        })
    }

    fn describe(&self, request: &Value) -> Result<Value> {
        let mut config = self.config(request)?;
        let data = run::build_dataset(&config)?;
        run::fit_to_data(&mut config, data.as_ref());
        let model = Model::new(config.model.clone(), data.domain(), data.output_dims(), config.seed)
            .map_err(|e| anyhow!("model: {e}"))?;
        let mut v = describe_model(&model, data.as_ref(), &config);
        v["steps"] = json!(config.budget.step_limit(data.len(), config.train.batch)?);
        Ok(v)
    }

    fn scene_runs(&self, name: &str) -> Result<usize> {
        Ok(crate::scenes::live_preset(name, self.mnist_dir().as_deref())?.models().len())
    }

    fn start_scene(&self, ids: &[String], name: &str, full: bool) -> Result<Vec<Arc<LiveRun>>> {
        let configs = crate::scenes::live_configs(name, !full, &self.out, self.mnist_dir().as_deref())?;
        if configs.len() != ids.len() {
            bail!("scene '{name}': {} runs for {} ids", configs.len(), ids.len());
        }
        let mut started = Vec::with_capacity(ids.len());
        for (id, (label, mut config)) in ids.iter().zip(configs) {
            config.output.dir = self.out.clone();
            config.output.frame_every = 0;
            config.output.frames = 0;
            config.output.frame_seconds = 1.0;
            let request = json!({"scene": name, "model": label, "full": full});
            started.push(self.start_config(id, request, config)?);
        }
        Ok(started)
    }

    fn start(&self, id: &str, request: &Value) -> Result<Arc<LiveRun>> {
        let config = self.config(request)?;
        self.start_config(id, request.clone(), config)
    }

    fn resume(&self, previous: &LiveRun, request: &Value) -> Result<Arc<LiveRun>> {
        let steps = match request.get("steps") {
            Some(Value::Number(n)) => n.as_u64().ok_or_else(|| anyhow!("steps {n}: expected a whole number"))?,
            Some(v) => bail!("steps: expected a whole number, got {v}"),
            None => bail!("steps: missing; give the new total, e.g. {{\"steps\": 5000}}"),
        };
        let dir = previous.dir.clone();
        let (mut config, data, trainer, wall) = run::load_run(&dir)?;
        if steps <= trainer.steps_done() {
            bail!("steps {steps}: the run is already at step {}; give a larger total", trainer.steps_done());
        }
        // As `approxlab resume --steps`: the new total replaces the budget.
        config.budget = config::Budget { steps: Some(steps), ..config::Budget::default() };
        config::validate(&config)?;
        approxlab_engine::checkpoint::atomic_write(&dir.join("config.toml"), config::to_toml(&config).as_bytes())?;
        let live = live_run(&previous.id, &dir, previous.request.clone(), &config, data.clone(), trainer.model())?;
        live.restore_history(previous.progress().history);
        eprintln!("approxlab: {} continues from step {} to {steps}", previous.id, trainer.steps_done());
        self.train_in_background(live.clone(), config, data, trainer, wall)?;
        Ok(live)
    }

    fn video(&self, run: &LiveRun) -> Result<PathBuf> {
        let frames = run.dir.join("frames");
        let any = std::fs::read_dir(&frames).map(|mut d| d.next().is_some()).unwrap_or(false);
        if !any {
            bail!("the run has no frames yet");
        }
        Ok(crate::media::encode_run_frames(&run.dir, true)?.path)
    }
}

/// The live state of a run about to train.
pub fn live_run(
    id: &str,
    dir: &Path,
    request: Value,
    config: &RunConfig,
    data: Arc<dyn Dataset>,
    model: &Model,
) -> Result<Arc<LiveRun>> {
    let description = describe_model(model, data.as_ref(), config);
    let steps = config.budget.step_limit(data.len(), config.train.batch)?;
    let view = CliView::new(config, data)?;
    Ok(LiveRun::new(id.to_string(), dir.to_path_buf(), request, description, Box::new(view), &model.params, steps))
}

/// The text a panic was raised with.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Tells the page how a run ended, after writing its final pictures.
pub fn finish_live(
    live: &LiveRun,
    outcome: Result<crate::run_loop::RunOutcome>,
    dir: &Path,
    config: &RunConfig,
    data: &dyn Dataset,
    trainer: &approxlab_engine::Trainer,
) {
    let step = trainer.steps_done();
    let params = trainer.params();
    match outcome {
        Ok(o) => {
            use crate::run_loop::RunStatus;
            if o.status != RunStatus::Diverged && !matches!(data.kind(), Kind::Table) {
                if let Err(e) = run::render_final(dir, config, data, trainer.model()) {
                    eprintln!("approxlab: {}: final pictures: {e:#}", dir.display());
                }
            }
            let eval = &o.summary.eval;
            let mut line = format!("{} after {step} steps", o.status);
            if let Some(p) = eval.psnr {
                line += &format!(", eval PSNR {p:.2} dB");
            } else {
                line += &format!(", eval MSE {:.3e}", eval.mse);
            }
            if let Some(a) = eval.accuracy {
                line += &format!(", validation accuracy {:.2}%", 100.0 * a);
            }
            if o.status == RunStatus::Diverged {
                line = format!(
                    "diverged at step {step}: the loss became NaN or infinite; the last good checkpoint is kept"
                );
            }
            live.finish(o.status.as_str(), step, params, Some(line));
        }
        Err(e) => live.finish("failed", step, params, Some(format!("{e:#}"))),
    }
}

/// Draws a run for the page with the CLI's renderers, from a model of the run's shape.
pub struct CliView {
    data: Arc<dyn Dataset>,
    config: RunConfig,
    colormap: Colormap,
    /// Models of the run's shape, reused between renders; one per render in flight.
    models: Mutex<Vec<Model>>,
}

impl CliView {
    pub fn new(config: &RunConfig, data: Arc<dyn Dataset>) -> Result<CliView> {
        let colormap = Colormap::parse(&config.output.colormap).map_err(|e| anyhow!("{e}"))?;
        Ok(CliView { data, config: config.clone(), colormap, models: Mutex::new(Vec::new()) })
    }

    /// Runs `f` with a model holding `params` (or with the truth when `params` is `None`).
    fn with_function<T>(
        &self,
        params: Option<&[f32]>,
        f: impl FnOnce(&(dyn Fn(&[f32], &mut [f32]) + Sync)) -> Result<T>,
    ) -> Result<T> {
        let data = self.data.as_ref();
        let Some(params) = params else {
            if !data.has_truth() {
                bail!("{} has no ground truth to render", data.name());
            }
            let truth = |x: &[f32], out: &mut [f32]| {
                if !data.truth(x, out) {
                    out.fill(f32::NAN);
                }
            };
            return f(&truth);
        };
        self.with_model(params, |model| f(&run::model_fn(model)))
    }

    /// Runs `f` with a model of the run's shape holding `params`.
    fn with_model<T>(&self, params: &[f32], f: impl FnOnce(&Model) -> Result<T>) -> Result<T> {
        let data = self.data.as_ref();
        let pooled = self.models.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut model = match pooled {
            Some(m) => m,
            None => Model::new(self.config.model.clone(), data.domain(), data.output_dims(), self.config.seed)?,
        };
        if model.params.len() != params.len() {
            bail!("weights of {} values for a model of {}", params.len(), model.params.len());
        }
        model.params.copy_from_slice(params);
        let result = f(&model);
        self.models.lock().unwrap_or_else(|p| p.into_inner()).push(model);
        result
    }

    fn live_size(&self) -> (u32, u32) {
        let (w, h) = render::default_size(self.data.as_ref(), None);
        let scale = (LIVE_SIDE as f64 / w.max(h) as f64).min(1.0);
        (((w as f64 * scale).round() as u32).max(1), ((h as f64 * scale).round() as u32).max(1))
    }
}

fn png(img: &RgbImage) -> Result<Vec<u8>> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    // Fast compression: these pictures live for a fraction of a second.
    let encoder = image::codecs::png::PngEncoder::new_with_quality(
        &mut out,
        image::codecs::png::CompressionType::Fast,
        image::codecs::png::FilterType::Sub,
    );
    encoder.write_image(img.as_raw(), img.width(), img.height(), image::ExtendedColorType::Rgb8).context("PNG")?;
    Ok(out)
}

fn points_of(xs: &[f32], dims: usize) -> Vec<&[f32]> {
    let n = xs.len() / dims.max(1);
    let step = n.div_ceil(MAX_POINTS).max(1);
    xs.chunks_exact(dims).step_by(step).collect()
}

impl RunView for CliView {
    fn info(&self) -> Value {
        let data = self.data.as_ref();
        let domain: Vec<[f64; 2]> = data.domain().iter().map(|(a, b)| [*a, *b]).collect();
        let mut v =
            json!({"name": data.name(), "domain": domain, "inputs": data.input_dims(), "outputs": data.output_dims()});
        match data.kind() {
            Kind::ScalarField2d => v["kind"] = json!("field2d"),
            Kind::Image { channels } => {
                let (rows, cols) = data.image_shape().unwrap_or((0, 0));
                v["kind"] = json!("image");
                v["width"] = json!(cols);
                v["height"] = json!(rows);
                v["channels"] = json!(channels);
                // Zoom windows of images are in (column, -row) pixel coordinates, so that y points up as for
                // fields and the page's zoom needs no special case.
                v["window_domain"] = json!([-0.5, cols as f64 - 0.5, 0.5 - rows as f64, 0.5]);
            }
            Kind::Curve => {
                v["kind"] = json!("curve");
                if let Some((xs, ys)) = data.training_points() {
                    let pts: Vec<[f32; 2]> = xs.iter().zip(ys).map(|(x, y)| [*x, *y]).collect();
                    let step = pts.len().div_ceil(MAX_POINTS).max(1);
                    v["points"] = json!(pts.iter().step_by(step).collect::<Vec<_>>());
                }
                let (x0, x1) = data.domain()[0];
                let truth: Option<Vec<f32>> = self
                    .with_function(None, |f| {
                        Ok(approxlab_view::sample_curve(f, x0, x1, CURVE_POINTS).into_iter().map(|p| p.1).collect())
                    })
                    .ok();
                v["truth"] = json!(truth);
            }
            Kind::Surface => {
                v["kind"] = json!("surface");
                if let Some((_, ys)) = data.training_points() {
                    v["points"] = json!(points_of(ys, 3));
                }
            }
            Kind::Classification { classes } => {
                v["kind"] = json!("classification");
                v["classes"] = json!(classes);
            }
            Kind::Table => v["kind"] = json!("table"),
        }
        if crate::challenge::protocol::is_protocol_target(&self.config.data) {
            // The challenge's public zoom windows, for the page to jump to (it fits their height to its canvas).
            let zooms: Vec<Value> = crate::challenge::protocol::Zoom::public()
                .iter()
                .map(|z| json!({"name": z.name, "cx": z.cx, "cy": z.cy, "width": z.width}))
                .collect();
            v["zooms"] = json!(zooms);
        }
        let (w, h) = self.live_size();
        v["live_size"] = json!([w, h]);
        v["neurons"] = json!(render::neurons_drawable(data).is_ok());
        v
    }

    fn neurons(&self, params: &[f32]) -> Result<Option<Vec<u8>>> {
        let data = self.data.as_ref();
        if render::neurons_drawable(data).is_err() {
            return Ok(None);
        }
        self.with_model(params, |model| png(&render::render_neurons(data, model, None)?)).map(Some)
    }

    fn live_frame(&self, params: &[f32]) -> Result<Frame> {
        let data = self.data.as_ref();
        match data.kind() {
            Kind::Curve => {
                let (x0, x1) = data.domain()[0];
                self.with_function(Some(params), |f| {
                    let values =
                        approxlab_view::sample_curve(f, x0, x1, CURVE_POINTS).into_iter().map(|p| p.1).collect();
                    Ok(Frame::Curve { x0, x1, values })
                })
            }
            Kind::Surface => {
                let d = data.domain();
                let mut uv = Vec::with_capacity(MESH_SIDE * MESH_SIDE * 2);
                for i in 0..MESH_SIDE {
                    for j in 0..MESH_SIDE {
                        let t = |k: usize, (a, b): (f64, f64)| (a + (b - a) * k as f64 / (MESH_SIDE - 1) as f64) as f32;
                        uv.push(t(i, d[0]));
                        uv.push(t(j, d[1]));
                    }
                }
                self.with_function(Some(params), |f| {
                    let mut xyz = vec![0.0; MESH_SIDE * MESH_SIDE * 3];
                    f(&uv, &mut xyz);
                    Ok(Frame::Mesh { nu: MESH_SIDE, nv: MESH_SIDE, xyz })
                })
            }
            Kind::Classification { .. } => self.with_function(Some(params), |f| {
                png(&render::render_classification(data, f, "learned", None)?).map(Frame::Png)
            }),
            Kind::Table => bail!("a table has no picture to show"),
            Kind::ScalarField2d | Kind::Image { .. } => {
                let opts =
                    RenderOptions { size: Some(self.live_size()), colormap: self.colormap, ..Default::default() };
                self.with_function(Some(params), |f| png(&render::render(data, f, &opts)?).map(Frame::Png))
            }
        }
    }

    fn render(&self, params: Option<&[f32]>, window: Option<Window>, size: (u32, u32)) -> Result<Vec<u8>> {
        let data = self.data.as_ref();
        if let (Some(window), Kind::Image { channels }) = (window, data.kind()) {
            let channels = if channels == 1 { approxlab_view::Channels::Gray } else { approxlab_view::Channels::Rgb };
            return self.with_function(params, |f| {
                // The window's (x, y) is (column, -row): hand the model its (row, column) inputs.
                let swapped = |xy: &[f32], out: &mut [f32]| {
                    let rc: Vec<f32> = xy.chunks_exact(2).flat_map(|p| [-p[1], p[0]]).collect();
                    f(&rc, out);
                };
                let (w, h) = size;
                png(&approxlab_view::render_rgb(&swapped, channels, window, w, h, approxlab_view::DEFAULT_TILE_ROWS))
            });
        }
        if window.is_some() && !matches!(data.kind(), Kind::ScalarField2d) {
            bail!("window: zooming applies to 2-D data (fields and images), not to {}", data.name());
        }
        let opts = RenderOptions { size: Some(size), window, colormap: self.colormap, ..Default::default() };
        self.with_function(params, |f| match data.kind() {
            Kind::Classification { .. } => png(&render::render_classification(data, f, "", None)?),
            _ => png(&render::render(data, f, &opts)?),
        })
    }
}

/// Lists the runs already in `out` (from earlier sessions, the page's or the CLI's) as ended runs: their loss
/// curves, final pictures and zooms. Loaded on a thread of their own, so that the page is up at once.
pub fn load_existing_runs(out: &Path, state: Arc<AppState>) {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("config.toml").is_file() && p.join(run::CHECKPOINT).is_file())
        .collect();
    dirs.sort();
    std::thread::spawn(move || {
        for dir in dirs {
            if let Err(e) = load_existing_run(&dir, &state) {
                eprintln!("approxlab: not listing {}: {e:#}", dir.display());
            }
        }
    });
}

fn load_existing_run(dir: &Path, state: &AppState) -> Result<()> {
    let id = dir.file_name().and_then(|n| n.to_str()).unwrap_or("run").to_string();
    if state.run(&id).is_some() || !id.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
        return Ok(());
    }
    let (config, data, trainer, _) = run::load_run(dir)?;
    let live = live_run(&id, dir, json!({}), &config, data, trainer.model())?;
    let history: Vec<approxlab_serve::Point> = std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| {
            Some(approxlab_serve::Point {
                step: v["step"].as_u64()?,
                wall_s: v["wall_s"].as_f64()?,
                loss: v["loss"].as_f64()?,
                lr: v["lr"].as_f64()? as f32,
                samples_per_s: v["samples_per_s"].as_f64().unwrap_or(0.0),
            })
        })
        .collect();
    live.restore_history(history);
    // A run that stopped before writing its summary (killed, say) shows as stopped.
    let status = crate::summary::Summary::read_status(dir).unwrap_or(crate::run_loop::RunStatus::Stopped);
    let message = format!(
        "{status} at step {} in an earlier session; resume it with `approxlab resume {}`",
        trainer.steps_done(),
        dir.display()
    );
    live.finish(status.as_str(), trainer.steps_done(), trainer.params(), Some(message));
    state.add_run(live);
    Ok(())
}

/// `approxlab serve`: the page on `addr` until Ctrl-C.
pub fn serve(lab: Arc<CliLab>, state: Arc<AppState>, addr: std::net::SocketAddr, open: bool) -> Result<u8> {
    let server = approxlab_serve::Server::start(state, addr)?;
    println!("approxlab live view at {} (Ctrl-C to stop)", server.url());
    if open {
        if let Err(e) = open::that_detached(server.url()) {
            eprintln!("approxlab: --open: cannot open a browser ({e}); open {} yourself", server.url());
        }
    }
    while !run::INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    eprintln!("approxlab: stopping; runs save their checkpoints");
    lab.join();
    server.stop();
    Ok(0)
}
