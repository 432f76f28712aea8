//! The run configuration: one TOML file (`--config`), overridden by flags, shown by `--print-config` and saved as
//! the run's `config.toml`.

use crate::parts;
use crate::samplers::SamplerSpec;
use anyhow::{anyhow, bail, Context, Result};
use approxlab_data::DataSpec;
use approxlab_engine::encoding::EncodingConfig;
use approxlab_engine::head::Head;
use approxlab_engine::loss::Loss;
use approxlab_engine::network::NetworkConfig;
use approxlab_engine::optimizer::OptimizerConfig;
use approxlab_engine::parts::Part;
use approxlab_engine::precision::PrecisionSetting;
use approxlab_engine::schedule::Schedule;
use approxlab_engine::{ModelConfig, TrainConfig};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Name of the run directory under `out`; a timestamp when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub seed: u64,
    /// Worker threads; 0 means one per core.
    #[serde(default)]
    pub threads: usize,
    #[serde(default = "default_data")]
    pub data: DataSpec,
    #[serde(default)]
    pub model: ModelConfig,
    #[serde(default)]
    pub train: TrainConfig,
    /// Where batches come from: `type = "uniform"` (the default) or `"error_field"`.
    #[serde(default, skip_serializing_if = "SamplerSpec::is_uniform")]
    pub sampler: SamplerSpec,
    #[serde(default)]
    pub budget: Budget,
    #[serde(default)]
    pub output: OutputConfig,
}

fn default_data() -> DataSpec {
    DataSpec::parse("mandelbrot").expect("the default data set parses")
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            name: None,
            seed: 0,
            threads: 0,
            data: default_data(),
            model: ModelConfig::default(),
            train: TrainConfig::default(),
            sampler: SamplerSpec::default(),
            budget: Budget::default(),
            output: OutputConfig::default(),
        }
    }
}

/// How long to train: the first limit reached ends the run. With none set, 1000 steps.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<u64>,
    /// Passes over the fixed training set (batch-sized steps, ceil(samples / batch) per epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs: Option<u64>,
    /// Wall-clock training time such as "60s", "2m", "1h 30m".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

pub const DEFAULT_STEPS: u64 = 1000;

impl Budget {
    pub fn time_limit(&self) -> Result<Option<Duration>> {
        self.time
            .as_deref()
            .map(|t| {
                humantime::parse_duration(t)
                    .map_err(|e| anyhow!("budget time: '{t}' is not a duration ({e}); expected e.g. 60s, 2m, 1h"))
            })
            .transpose()
    }

    /// The step limit, given the training set size for epochs.
    pub fn step_limit(&self, samples: Option<usize>, batch: usize) -> Result<Option<u64>> {
        let from_epochs = match self.epochs {
            None => None,
            Some(e) => {
                let n = samples.ok_or_else(|| {
                    anyhow!("budget epochs: this data set draws fresh points every step, so it has no epochs; use --steps or --time")
                })?;
                Some(e * n.div_ceil(batch) as u64)
            }
        };
        Ok(match (self.steps, from_epochs) {
            (Some(s), Some(e)) => Some(s.min(e)),
            (s, e) => s.or(e),
        }
        .or(if self.time.is_none() { Some(DEFAULT_STEPS) } else { None }))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Parent directory of run directories.
    #[serde(default = "default_out")]
    pub dir: PathBuf,
    /// Keep a numbered checkpoint every this many steps (the latest is always kept); 0 for none.
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u64,
    /// How many numbered checkpoints to keep, the newest ones (the latest is always kept too); 0 keeps them all.
    #[serde(default = "default_keep_checkpoints")]
    pub keep_checkpoints: usize,
    /// Evaluate on the evaluation set every this many steps (and at the end); 0 for only at the end.
    #[serde(default = "default_eval_every")]
    pub eval_every: u64,
    /// Write a metrics line every this many steps.
    #[serde(default = "default_log_every")]
    pub log_every: u64,
    /// Render a frame of the learned function every this many steps into `frames/`; 0 for none.
    #[serde(default)]
    pub frame_every: u64,
    /// Render a frame every this many seconds of training instead (or as well); 0 for none.
    #[serde(default)]
    pub frame_seconds: f64,
    /// About this many frames over the budget, denser at the start where learning is fastest (frame k at k^2/N^2 of
    /// the budget); 0 for none. `--video` alone sets 60.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub frames: u32,
    /// Panels beside the learned function in frames: "truth", "error".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frame_panels: Vec<crate::render::Panel>,
    /// Turn the camera once around a surface over the run.
    #[serde(default)]
    pub frame_turn: bool,
    /// A camera path for 2-D scalar data: frames up to step `until` show `window` (the last shot holds after).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shots: Vec<Shot>,
    /// Frame size `WxH`; by default the data set's natural size (images) or 480 pixels wide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_size: Option<String>,
    #[serde(default = "default_colormap")]
    pub colormap: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shot {
    pub until: u64,
    /// `[x0, x1, y0, y1]`
    pub window: [f64; 4],
}

impl OutputConfig {
    pub fn frames_enabled(&self) -> bool {
        self.frame_every > 0 || self.frame_seconds > 0.0 || self.frames > 0
    }

    /// The window of the shot that covers `step`, if a camera path is set.
    pub fn shot_window(&self, step: u64) -> Option<[f64; 4]> {
        self.shots.iter().find(|s| step <= s.until).or(self.shots.last()).map(|s| s.window)
    }
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

fn default_out() -> PathBuf {
    PathBuf::from("runs")
}
fn default_checkpoint_every() -> u64 {
    1000
}
fn default_keep_checkpoints() -> usize {
    5
}
fn default_eval_every() -> u64 {
    500
}
fn default_log_every() -> u64 {
    10
}
fn default_colormap() -> String {
    "inferno".into()
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig {
            dir: default_out(),
            checkpoint_every: default_checkpoint_every(),
            keep_checkpoints: default_keep_checkpoints(),
            eval_every: default_eval_every(),
            log_every: default_log_every(),
            frame_every: 0,
            frame_seconds: 0.0,
            frames: 0,
            frame_panels: Vec::new(),
            frame_turn: false,
            shots: Vec::new(),
            frame_size: None,
            colormap: default_colormap(),
        }
    }
}

/// Flags of `approxlab train` that set config keys; each overrides the file.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct ConfigFlags {
    /// TOML config file; flags override its keys.
    #[arg(long, short = 'c', value_name = "FILE.toml")]
    pub config: Option<PathBuf>,
    #[arg(long, value_name = "DATA", help = approxlab_data::spec_usages())]
    pub data: Option<String>,
    /// Input columns of a csv: data set, e.g. "x,y" or "0-3" (default: all but the targets)
    #[arg(long, value_name = "COLS")]
    pub inputs: Option<String>,
    /// Target columns of a csv: data set (default: the last column)
    #[arg(long, value_name = "COLS")]
    pub targets: Option<String>,
    /// regression | classification, for a csv: data set
    #[arg(long)]
    pub task: Option<String>,
    #[arg(long, value_name = "ENC", help = parts::help::<EncodingConfig>())]
    pub encoding: Option<String>,
    #[arg(long, value_name = "NET", help = format!("{}; ACT: {}", parts::help::<NetworkConfig>(), approxlab_engine::parts::usages::<approxlab_engine::activation::Activation>()))]
    pub network: Option<String>,
    #[arg(long, help = format!("Output head (default: the data's): {}", parts::help::<Head>()))]
    pub head: Option<String>,
    /// Range the data domain is mapped to before the encoding, "LO,HI" (default: the encoding's)
    #[arg(long, value_name = "LO,HI", allow_hyphen_values = true)]
    pub input_range: Option<String>,
    #[arg(long, help = format!("Loss (default: cross_entropy after softmax, else mse): {}", parts::help::<Loss>()))]
    pub loss: Option<String>,
    #[arg(long, help = parts::help::<OptimizerConfig>())]
    pub optimizer: Option<String>,
    /// Base learning rate
    #[arg(long)]
    pub lr: Option<f32>,
    #[arg(long, help = parts::help::<Schedule>())]
    pub schedule: Option<String>,
    /// Samples per step
    #[arg(long)]
    pub batch: Option<usize>,
    #[arg(long, help = format!("Where batches come from: {}", approxlab_engine::parts::describe(SamplerSpec::FORMS, false)))]
    pub sampler: Option<String>,
    /// Clip the global gradient norm
    #[arg(long, value_name = "NORM")]
    pub clip_grad_norm: Option<f32>,
    /// Learning-rate multiplier of trainable encodings (hash grids)
    #[arg(long, value_name = "SCALE")]
    pub encoding_lr_scale: Option<f32>,
    #[arg(long, help = format!("Precision of the dense products: {}", parts::help::<PrecisionSetting>()))]
    pub precision: Option<String>,
    /// Budget in optimizer steps
    #[arg(long)]
    pub steps: Option<u64>,
    /// Budget in passes over the training set
    #[arg(long)]
    pub epochs: Option<u64>,
    /// Budget in wall-clock time, e.g. 60s, 5m
    #[arg(long, value_name = "DURATION")]
    pub time: Option<String>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Worker threads (0: one per core)
    #[arg(long)]
    pub threads: Option<usize>,
    /// Parent directory of run directories (default: runs)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Run name (default: a timestamp)
    #[arg(long)]
    pub name: Option<String>,
    /// Numbered checkpoint every N steps
    #[arg(long, value_name = "N")]
    pub checkpoint_every: Option<u64>,
    /// Evaluate every N steps
    #[arg(long, value_name = "N")]
    pub eval_every: Option<u64>,
    /// Render a frame every N steps into frames/
    #[arg(long, value_name = "N")]
    pub frame_every: Option<u64>,
    /// Render a frame every S seconds of training into frames/
    #[arg(long, value_name = "S")]
    pub frame_seconds: Option<f64>,
    /// Frame size WxH
    #[arg(long, value_name = "WxH")]
    pub frame_size: Option<String>,
    /// Colormap of scalar frames and renders
    #[arg(long)]
    pub colormap: Option<String>,
    /// A whole data spec set by another command (compare gives every model the first config's data).
    #[arg(skip)]
    pub data_spec: Option<DataSpec>,
    /// Set any config key, e.g. --set data.depth=500 --set model.max_features=100000 (TOML values)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// Reads a TOML config, reporting errors as one line with the file, line and column.
pub fn read_config_file(path: &Path) -> Result<RunConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("config {}: cannot read", path.display()))?;
    parse_config_text(&text, &path.display().to_string())
}

pub fn parse_config_text(text: &str, origin: &str) -> Result<RunConfig> {
    toml::from_str(text).map_err(|e| {
        let position = e
            .span()
            .map(|s| {
                let before = &text[..s.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                format!(":{line}:{col}")
            })
            .unwrap_or_default();
        anyhow!("config {origin}{position}: {}", e.message().trim().replace('\n', "; "))
    })
}

fn set_path(root: &mut toml::Value, key: &str, value: toml::Value) -> Result<()> {
    let mut node = root;
    let parts: Vec<&str> = key.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let table =
            node.as_table_mut().ok_or_else(|| anyhow!("--set {key}: '{}' is not a table", parts[..i].join(".")))?;
        if i == parts.len() - 1 {
            table.insert(part.to_string(), value);
            return Ok(());
        }
        node = table.entry(part.to_string()).or_insert_with(|| toml::Value::Table(Default::default()));
    }
    Ok(())
}

fn to_value<T: Serialize>(v: &T) -> toml::Value {
    toml::Value::try_from(v).expect("configs serialise to TOML")
}

fn parse_toml_value(raw: &str) -> toml::Value {
    // A bare word such as `periodic` is a string; anything TOML can read (numbers, arrays, booleans) is itself.
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

/// The effective config: the file (if any), then each flag, then each `--set`.
pub fn resolve(flags: &ConfigFlags) -> Result<RunConfig> {
    match &flags.config {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("config {}: cannot read", path.display()))?;
            resolve_text(&text, &path.display().to_string(), flags)
        }
        None => resolve_text("", "defaults", flags),
    }
}

/// [`resolve`] over a config given as text (`origin` names it in errors) instead of `flags.config`.
pub fn resolve_text(text: &str, origin: &str, flags: &ConfigFlags) -> Result<RunConfig> {
    let base = parse_config_text(text, origin)?;
    let file: toml::Table = toml::from_str(text).unwrap_or_default();
    let mut layers = Layers { merged: to_value(&base), given: toml::Value::Table(file) };
    put_part_flags(&mut layers, flags)?;
    put_value_flags(&mut layers, flags)?;
    for s in &flags.set {
        let (key, raw) =
            s.split_once('=').ok_or_else(|| anyhow!("--set '{s}': expected KEY=VALUE such as data.depth=500"))?;
        layers.put(key.trim(), parse_toml_value(raw.trim()))?;
    }
    let one_line = |e: toml::de::Error| anyhow!("config: {}", e.message().trim().replace('\n', "; "));
    let mut config: RunConfig = layers.merged.try_into().map_err(one_line)?;
    let given: Given = layers.given.try_into().map_err(one_line)?;
    apply_data_defaults(&mut config, &given);
    validate(&config)?;
    Ok(config)
}

/// The config being merged (defaults, file, flags, `--set`) and, beside it, only what the user wrote: the file's own
/// keys, every flag and every `--set`, so that defaults which depend on the data apply where nothing was given.
struct Layers {
    merged: toml::Value,
    given: toml::Value,
}

impl Layers {
    fn put(&mut self, key: &str, value: toml::Value) -> Result<()> {
        set_path(&mut self.given, key, value.clone())?;
        set_path(&mut self.merged, key, value)
    }

    fn put_part<P: Part + Serialize>(&mut self, key: &str, flag: &str, spec: &Option<String>) -> Result<()> {
        match spec {
            Some(spec) => {
                self.put(key, to_value(&approxlab_engine::parts::parse_flag::<P>(flag, spec).map_err(|e| anyhow!(e))?))
            }
            None => Ok(()),
        }
    }
}

/// The keys the user gave that a data set's defaults yield to, typed.
#[derive(Debug, Default, Deserialize)]
struct Given {
    #[serde(default)]
    model: GivenModel,
    #[serde(default)]
    train: GivenTrain,
}

#[derive(Debug, Default, Deserialize)]
struct GivenModel {
    head: Option<Head>,
}

#[derive(Debug, Default, Deserialize)]
struct GivenTrain {
    loss: Option<Loss>,
    batch: Option<usize>,
}

/// The data's head, its loss and its batch where the user chose none.
fn apply_data_defaults(config: &mut RunConfig, given: &Given) {
    let data_head = default_head(&config.data);
    config.model.head = match (given.model.head, data_head, given.train.loss) {
        (Some(head), _, _) => head,
        // A classifier trained with another loss than cross-entropy (say MSE on one-hot targets) needs outputs in
        // [0, 1] but not a softmax, which only cross-entropy may follow.
        (None, Head::Softmax, Some(loss)) if loss != Loss::CrossEntropy => Head::Sigmoid,
        (None, head, _) => head,
    };
    if given.train.loss.is_none() && config.model.head == Head::Softmax {
        config.train.loss = Loss::CrossEntropy;
    }
    if given.train.batch.is_none() && data_head == Head::Softmax {
        config.train.batch = CLASSIFICATION_BATCH;
    }
}

/// The flags that name a data set or a model part.
fn put_part_flags(layers: &mut Layers, flags: &ConfigFlags) -> Result<()> {
    if let Some(spec) = &flags.data_spec {
        layers.put("data", to_value(spec))?;
    }
    if let Some(d) = &flags.data {
        layers.put("data", to_value(&DataSpec::parse(d).map_err(|e| anyhow!("--data: {e}"))?))?;
    }
    for (key, value) in [("inputs", &flags.inputs), ("targets", &flags.targets)] {
        if let Some(cols) = value {
            let items = cols.split(',').map(|c| toml::Value::String(c.trim().to_string())).collect();
            layers.put(&format!("data.{key}"), toml::Value::Array(items))?;
        }
    }
    if let Some(task) = &flags.task {
        layers.put("data.task", toml::Value::String(task.trim().to_string()))?;
    }
    layers.put_part::<EncodingConfig>("model.encoding", "--encoding", &flags.encoding)?;
    layers.put_part::<NetworkConfig>("model.network", "--network", &flags.network)?;
    layers.put_part::<Head>("model.head", "--head", &flags.head)?;
    if let Some(r) = &flags.input_range {
        let parsed: Option<Vec<f32>> = r.split(',').map(|v| v.trim().parse().ok()).collect();
        match parsed.as_deref() {
            Some([lo, hi]) if lo < hi => layers.put("model.input_range", to_value(&[*lo, *hi]))?,
            _ => bail!("--input-range: expected LO,HI with LO < HI such as -1,1, got '{r}'"),
        }
    }
    layers.put_part::<Loss>("train.loss", "--loss", &flags.loss)?;
    layers.put_part::<OptimizerConfig>("train.optimizer", "--optimizer", &flags.optimizer)?;
    layers.put_part::<Schedule>("train.schedule", "--schedule", &flags.schedule)?;
    layers.put_part::<PrecisionSetting>("train.precision", "--precision", &flags.precision)?;
    layers.put_part::<SamplerSpec>("sampler", "--sampler", &flags.sampler)?;
    Ok(())
}

/// The flags that set one number or string.
fn put_value_flags(layers: &mut Layers, flags: &ConfigFlags) -> Result<()> {
    let floats = [
        ("train.lr", flags.lr.map(f64::from)),
        ("train.clip_grad_norm", flags.clip_grad_norm.map(f64::from)),
        ("train.encoding_lr_scale", flags.encoding_lr_scale.map(f64::from)),
        ("output.frame_seconds", flags.frame_seconds),
    ];
    for (key, v) in floats {
        if let Some(v) = v {
            if !v.is_finite() {
                bail!(
                    "--{}: must be a finite number, got {v}",
                    key.rsplit('.').next().unwrap_or(key).replace('_', "-")
                );
            }
            layers.put(key, toml::Value::Float(v))?;
        }
    }
    let ints = [
        ("train.batch", flags.batch.map(|v| v as u64)),
        ("budget.steps", flags.steps),
        ("budget.epochs", flags.epochs),
        ("seed", flags.seed),
        ("threads", flags.threads.map(|v| v as u64)),
        ("output.checkpoint_every", flags.checkpoint_every),
        ("output.eval_every", flags.eval_every),
        ("output.frame_every", flags.frame_every),
    ];
    for (key, v) in ints {
        if let Some(v) = v {
            let v = i64::try_from(v).map_err(|_| anyhow!("{key}: {v} is too large"))?;
            layers.put(key, toml::Value::Integer(v))?;
        }
    }
    let strings = [
        ("budget.time", flags.time.clone()),
        ("name", flags.name.clone()),
        ("output.frame_size", flags.frame_size.clone()),
        ("output.colormap", flags.colormap.clone()),
        ("output.dir", flags.out.as_ref().map(|p| p.display().to_string())),
    ];
    for (key, v) in strings {
        if let Some(v) = v {
            layers.put(key, toml::Value::String(v))?;
        }
    }
    Ok(())
}

/// The default batch of classification data (MNIST, CSV classes): small enough for many updates per epoch. With
/// `mlp:2x256:relu` and 3 epochs of MNIST it gives 97.0 % test accuracy, where the general default of 4096 gives
/// 90.1 % and 256 gives 96.0 % (docs/performance.md, "session 6").
pub const CLASSIFICATION_BATCH: usize = 128;

/// The output head a data set needs unless the user chose one: outputs in [0, 1] (images, the Mandelbrot set) get
/// the video's tanh01, unbounded outputs (curves, surface coordinates, table regression) a linear head, classes a
/// softmax (trained with cross-entropy unless another loss is chosen).
pub fn default_head(data: &DataSpec) -> Head {
    match data {
        DataSpec::Curve(_) | DataSpec::Surface(_) => Head::Linear,
        DataSpec::Image(_) | DataSpec::Mandelbrot(_) => Head::Tanh01,
        DataSpec::Mnist(_) => Head::Softmax,
        DataSpec::Table(t) => match t.task {
            approxlab_data::TableTask::Classification => Head::Softmax,
            approxlab_data::TableTask::Regression => Head::Linear,
        },
    }
}

/// Checks what serde cannot: values in range, and combinations.
pub fn validate(config: &RunConfig) -> Result<()> {
    config.train.validate().map_err(|e| anyhow!("config train: {e}"))?;
    config.model.network.validate().map_err(|e| anyhow!("config model: {e}"))?;
    config.budget.time_limit()?;
    config.sampler.validate()?;
    if config.budget.steps == Some(0) || config.budget.epochs == Some(0) {
        bail!("budget: steps and epochs must be at least 1");
    }
    if config.output.log_every == 0 {
        bail!("output log_every: must be at least 1");
    }
    approxlab_view::Colormap::parse(&config.output.colormap).map_err(|e| anyhow!("colormap: {e}"))?;
    if !(config.output.frame_seconds.is_finite() && config.output.frame_seconds >= 0.0) {
        bail!("output frame_seconds: must be a number of seconds >= 0");
    }
    for shot in &config.output.shots {
        let [x0, x1, y0, y1] = shot.window;
        approxlab_view::Window::new(x0, x1, y0, y1).map_err(|e| anyhow!("output shots (until {}): {e}", shot.until))?;
    }
    if let Some(size) = &config.output.frame_size {
        parse_size(size).context("output frame_size")?;
    }
    if let Some(name) = &config.name {
        if name.is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
            bail!("name: '{name}' must be a plain directory name");
        }
    }
    Ok(())
}

pub fn to_toml(config: &RunConfig) -> String {
    let mut value = to_value(config);
    tidy_floats(&mut value);
    toml::to_string_pretty(&value).expect("configs serialise to TOML")
}

/// Prints floats that came from f32 fields (`lr = 0.001`) by their shortest f32 form rather than as the widened
/// f64 (`0.0010000000474974513`). Values that an f32 cannot hold exactly (f64 fields such as windows) are kept.
fn tidy_floats(value: &mut toml::Value) {
    match value {
        toml::Value::Float(f) => {
            let narrow = *f as f32;
            if narrow as f64 == *f {
                if let Ok(short) = narrow.to_string().parse::<f64>() {
                    *f = short;
                }
            }
        }
        toml::Value::Array(items) => items.iter_mut().for_each(tidy_floats),
        toml::Value::Table(t) => t.iter_mut().for_each(|(_, v)| tidy_floats(v)),
        _ => {}
    }
}

/// The largest side of a frame or a render from the command line.
pub const MAX_IMAGE_SIDE: u32 = 16384;

/// Parses `WxH` such as `1920x1080`.
pub fn parse_size(s: &str) -> Result<(u32, u32)> {
    approxlab_view::parse_size(s, MAX_IMAGE_SIDE).map_err(|e| anyhow!(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_and_set_reaches_any_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "seed = 3\n[train]\nlr = 0.5\nbatch = 64\n[data]\nkind = \"mandelbrot\"\ndepth = 30\n")
            .unwrap();
        let flags = ConfigFlags {
            config: Some(path),
            lr: Some(0.01),
            set: vec!["data.depth=77".into(), "data.target=periodic".into()],
            ..Default::default()
        };
        let c = resolve(&flags).unwrap();
        assert_eq!(c.seed, 3);
        assert_eq!(c.train.lr, 0.01);
        assert_eq!(c.train.batch, 64);
        let text = to_toml(&c);
        assert!(text.contains("depth = 77") && text.contains("periodic"), "{text}");
        // The printed config reads back to the same config.
        assert_eq!(parse_config_text(&text, "printed").unwrap(), c);
    }

    #[test]
    fn typos_report_line_and_column() {
        let e = parse_config_text("seed = 1\n[train]\nlr = 0.1\nbacth = 3\n", "x.toml").unwrap_err().to_string();
        assert!(e.starts_with("config x.toml:4:1:") && e.contains("bacth") && !e.contains('\n'), "{e}");
    }

    #[test]
    fn budgets() {
        let b = Budget::default();
        assert_eq!(b.step_limit(Some(10), 2).unwrap(), Some(DEFAULT_STEPS));
        let b = Budget { epochs: Some(3), ..Default::default() };
        assert_eq!(b.step_limit(Some(1000), 300).unwrap(), Some(12));
        assert!(b.step_limit(None, 300).unwrap_err().to_string().contains("epochs"));
        let b = Budget { time: Some("1m 30s".into()), ..Default::default() };
        assert_eq!(b.time_limit().unwrap(), Some(Duration::from_secs(90)));
        assert_eq!(b.step_limit(None, 1).unwrap(), None);
        assert!(Budget { time: Some("soon".into()), ..Default::default() }.time_limit().is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("640x480").unwrap(), (640, 480));
        for bad in ["640", "0x10", "ax4", "99999x2"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    mod properties {
        use super::super::parse_config_text;
        use proptest::prelude::*;

        /// Lines of a config: known and unknown keys with values of every TOML type, and broken syntax.
        fn line() -> impl Strategy<Value = String> {
            let key = prop::sample::select(vec![
                "seed",
                "threads",
                "name",
                "[data]",
                "[model]",
                "[train]",
                "[budget]",
                "[output]",
                "kind",
                "depth",
                "lr",
                "batch",
                "steps",
                "time",
                "encoding",
                "network",
                "precision",
                "bogus",
                "[[x]]",
                "",
            ]);
            let value = prop::sample::select(vec![
                "= 1",
                "= -1",
                "= 1e400",
                "= \"mandelbrot\"",
                "= \"x\"",
                "= true",
                "= [1, 2]",
                "= { type = \"mlp\" }",
                "= { type = \"fourier\", order = -3 }",
                "= nan",
                "= inf",
                "=",
                "= \"",
                "= 99999999999999999999",
                "",
            ]);
            (key, value).prop_map(|(k, v)| if k.starts_with('[') { k.to_string() } else { format!("{k} {v}") })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn config_text_parses_or_is_a_one_line_error(lines in prop::collection::vec(line(), 0..12)) {
                if let Err(e) = parse_config_text(&lines.join("\n"), "t.toml") {
                    prop_assert!(!e.to_string().contains('\n'), "{e}");
                }
            }

            #[test]
            fn any_text_as_a_config_is_parsed_or_refused(text in "\\PC{0,200}") {
                let _ = parse_config_text(&text, "t.toml");
            }
        }
    }
}
