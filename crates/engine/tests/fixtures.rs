//! The engine against PyTorch: float64 reference fixtures written once by `bench/reference.py fixtures` (see
//! bench/README.md for the conventions). For each fixture the model is built from the JSON config, its parameters
//! are overwritten with the fixture's initial ones, and then
//!
//! 1. the step-0 loss and gradients must match the stored ones (`loss[0]`, `grad.*`, before clipping);
//! 2. `steps` optimizer steps on the same batch must reproduce every loss `loss[k]`, every pre-clip gradient norm
//!    `grad_norm_pre_clip[k]` and the final parameters `final.*`.
//!
//! The engine runs in f32 and the reference in f64, so the comparisons use relative / normalised errors with
//! tolerances that f32 meets with a wide margin (the measured errors are printed; run with `--nocapture`):
//!
//! * step-0 loss (same parameters, only rounding differs): relative error `|ours - ref| / |ref|` <= [`LOSS0_TOL`];
//! * losses and pre-clip gradient norms of every step: relative error <= [`LOSS_TOL`];
//! * step-0 gradients, per tensor: `||g_ours - g_ref|| / ||g_ref||` <= [`GRAD_TOL`];
//! * final parameters, per tensor: `||p_ours - p_ref|| / ||p_ref||` <= [`PARAM_TOL`], and, more tellingly since
//!   five steps move the parameters little, relative to the reference's own update:
//!   `||p_ours - p_ref|| / ||p_ref - p_init||` <= [`UPDATE_TOL`].

use approxlab_engine::activation::Activation;
use approxlab_engine::encoding::EncodingConfig;
use approxlab_engine::head::Head;
use approxlab_engine::loss::Loss;
use approxlab_engine::network::NetworkConfig;
use approxlab_engine::optimizer::OptimizerConfig;
use approxlab_engine::precision::PrecisionSetting;
use approxlab_engine::schedule::Schedule;
use approxlab_engine::{Model, ModelConfig, TrainConfig, Trainer};
use safetensors::tensor::Dtype;
use safetensors::SafeTensors;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Relative error of the step-0 loss returned by `compute_gradients`.
const LOSS0_TOL: f64 = 1e-6;
/// Relative error of each step's loss and pre-clip gradient norm (rounding differences grow over the steps).
const LOSS_TOL: f64 = 1e-4;
/// Normalised error of each step-0 gradient tensor.
const GRAD_TOL: f64 = 1e-4;
/// Normalised error of each final parameter tensor, relative to the tensor. Adam moves every element by about
/// `lr` per step whatever its gradient's size, so an element whose gradient is ~1e-8 (f32 gets it only roughly)
/// still moves by ~`lr`: such elements dominate this error (1.3e-5 measured on `mlp_fourier_adam`).
const PARAM_TOL: f64 = 1e-4;
/// Normalised error of each final parameter tensor, relative to the reference's total update of that tensor.
const UPDATE_TOL: f64 = 1e-3;

/// One fixture: its JSON config and its float64 tensors (shape, values).
struct Fixture {
    name: String,
    cfg: Value,
    tensors: BTreeMap<String, (Vec<usize>, Vec<f64>)>,
}

impl Fixture {
    fn load(name: &str) -> Fixture {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures");
        let json_path = dir.join(format!("{name}.json"));
        let st_path = dir.join(format!("{name}.safetensors"));
        let text = std::fs::read_to_string(&json_path).unwrap_or_else(|e| panic!("{}: {e}", json_path.display()));
        let cfg: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", json_path.display()));
        let bytes = std::fs::read(&st_path).unwrap_or_else(|e| panic!("{}: {e}", st_path.display()));
        let st = SafeTensors::deserialize(&bytes).unwrap_or_else(|e| panic!("{}: {e:?}", st_path.display()));
        let mut tensors = BTreeMap::new();
        for (tname, view) in st.tensors() {
            assert_eq!(view.dtype(), Dtype::F64, "{name}: tensor {tname} is {:?}, expected F64", view.dtype());
            let values: Vec<f64> =
                view.data().chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect();
            assert_eq!(values.len(), view.shape().iter().product::<usize>(), "{name}: tensor {tname} size");
            tensors.insert(tname, (view.shape().to_vec(), values));
        }
        Fixture { name: name.to_string(), cfg, tensors }
    }

    fn tensor(&self, tname: &str) -> &(Vec<usize>, Vec<f64>) {
        self.tensors.get(tname).unwrap_or_else(|| panic!("{}: fixture has no tensor '{tname}'", self.name))
    }

    fn values_f32(&self, tname: &str) -> Vec<f32> {
        self.tensor(tname).1.iter().map(|&v| v as f32).collect()
    }

    fn key(&self, key: &str) -> &Value {
        self.cfg.get(key).unwrap_or_else(|| panic!("{}: JSON has no key '{key}'", self.name))
    }

    fn usize(&self, v: &Value, what: &str) -> usize {
        v.as_u64().unwrap_or_else(|| panic!("{}: {what} is not an integer: {v}", self.name)) as usize
    }

    fn f64(&self, v: &Value, what: &str) -> f64 {
        v.as_f64().unwrap_or_else(|| panic!("{}: {what} is not a number: {v}", self.name))
    }

    fn str<'a>(&self, v: &'a Value, what: &str) -> &'a str {
        v.as_str().unwrap_or_else(|| panic!("{}: {what} is not a string: {v}", self.name))
    }

    fn field(&self, obj: &str, key: &str) -> &Value {
        self.key(obj).get(key).unwrap_or_else(|| panic!("{}: JSON '{obj}' has no key '{key}'", self.name))
    }

    fn model_config(&self) -> ModelConfig {
        let enc_type = self.str(self.field("encoding", "type"), "encoding.type");
        let enc_spec = match enc_type {
            "identity" => "identity".to_string(),
            "fourier" | "taylor" => {
                format!("{enc_type}:{}", self.usize(self.field("encoding", "order"), "encoding.order"))
            }
            other => panic!("{}: unknown encoding type '{other}'", self.name),
        };
        let encoding = EncodingConfig::parse(&enc_spec).unwrap_or_else(|e| panic!("{}: {enc_spec}: {e}", self.name));

        let net_type = self.str(self.field("network", "type"), "network.type");
        let depth = || self.usize(self.field("network", "depth"), "network.depth");
        let width = || self.usize(self.field("network", "width"), "network.width");
        let activation = || {
            let act = self.str(self.field("network", "activation"), "network.activation");
            let spec = if act == "leaky_relu" {
                format!("leaky_relu({})", self.f64(self.field("network", "slope"), "network.slope"))
            } else {
                act.to_string()
            };
            spec.parse::<Activation>().unwrap_or_else(|e| panic!("{}: activation '{spec}': {e}", self.name))
        };
        let network = match net_type {
            "mlp" => NetworkConfig::Mlp { depth: depth(), width: width(), activation: activation() },
            "skip" => NetworkConfig::Skip { depth: depth(), width: width(), activation: activation() },
            "siren" => NetworkConfig::Siren {
                depth: depth(),
                width: width(),
                omega0: self.f64(self.field("network", "omega0"), "network.omega0") as f32,
            },
            "linear" => NetworkConfig::Linear {},
            other => panic!("{}: unknown network type '{other}'", self.name),
        };

        let head_name = self.str(self.key("head"), "head");
        let head = Head::parse(head_name).unwrap_or_else(|e| panic!("{}: head '{head_name}': {e}", self.name));
        let range = self.key("input_range").as_array().unwrap_or_else(|| panic!("{}: input_range", self.name));
        assert_eq!(range.len(), 2, "{}: input_range needs two values", self.name);
        let input_range =
            Some([self.f64(&range[0], "input_range[0]") as f32, self.f64(&range[1], "input_range[1]") as f32]);
        ModelConfig { encoding, network, head, input_range, ..Default::default() }
    }

    fn domain(&self) -> Vec<(f64, f64)> {
        let dims = self.key("domain").as_array().unwrap_or_else(|| panic!("{}: domain is not a list", self.name));
        dims.iter()
            .map(|d| {
                let d = d.as_array().unwrap_or_else(|| panic!("{}: domain entry {d} is not [lo, hi]", self.name));
                assert_eq!(d.len(), 2, "{}: domain entry needs [lo, hi]", self.name);
                (self.f64(&d[0], "domain lo"), self.f64(&d[1], "domain hi"))
            })
            .collect()
    }

    fn train_config(&self) -> TrainConfig {
        let loss_type = self.str(self.field("loss", "type"), "loss.type");
        let loss = match loss_type {
            "mse" => Loss::Mse,
            "l1" => Loss::L1,
            "huber" => Loss::Huber { delta: self.f64(self.field("loss", "delta"), "loss.delta") as f32 },
            "cross_entropy" => Loss::CrossEntropy,
            other => panic!("{}: unknown loss '{other}'", self.name),
        };
        let opt = |key: &str| self.f64(self.field("optimizer", key), &format!("optimizer.{key}")) as f32;
        let optimizer = match self.str(self.field("optimizer", "type"), "optimizer.type") {
            "adam" => {
                assert_eq!(
                    opt("weight_decay"),
                    0.0,
                    "{}: adam with weight decay (coupled) is not supported",
                    self.name
                );
                OptimizerConfig::Adam { beta1: opt("beta1"), beta2: opt("beta2"), eps: opt("eps") }
            }
            "adamw" => OptimizerConfig::AdamW {
                beta1: opt("beta1"),
                beta2: opt("beta2"),
                eps: opt("eps"),
                weight_decay: opt("weight_decay"),
            },
            "sgd" => {
                assert_eq!(opt("dampening"), 0.0, "{}: sgd dampening is not supported", self.name);
                assert_eq!(self.field("optimizer", "nesterov"), &Value::Bool(false), "{}: nesterov", self.name);
                OptimizerConfig::Sgd { momentum: opt("momentum"), weight_decay: opt("weight_decay") }
            }
            other => panic!("{}: unknown optimizer '{other}'", self.name),
        };
        let clip = self.key("clip_grad_norm");
        let clip_grad_norm = if clip.is_null() { None } else { Some(self.f64(clip, "clip_grad_norm") as f32) };
        TrainConfig {
            lr: opt("lr"),
            batch: self.usize(self.key("batch"), "batch"),
            loss,
            optimizer,
            schedule: Schedule::Constant,
            clip_grad_norm,
            // The fixtures are float64 PyTorch: they check the f32 products (bf16 is checked on its own).
            precision: PrecisionSetting::F32,
            ..Default::default()
        }
    }
}

/// `||ours - reference|| / ||scale||` in f64 (the plain norm of the difference when `scale` is all zeros).
fn normalised_error(ours: &[f32], reference: &[f64], scale: &[f64]) -> f64 {
    assert_eq!(ours.len(), reference.len());
    let diff: f64 = ours.iter().zip(reference).map(|(a, b)| (*a as f64 - b).powi(2)).sum::<f64>().sqrt();
    let norm: f64 = scale.iter().map(|v| v * v).sum::<f64>().sqrt();
    if norm > 0.0 {
        diff / norm
    } else {
        diff
    }
}

fn relative_error(ours: f64, reference: f64) -> f64 {
    (ours - reference).abs() / reference.abs().max(f64::MIN_POSITIVE)
}

/// Worst errors seen, for the report line.
#[derive(Default)]
struct Worst {
    loss0: f64,
    loss: f64,
    grad_norm: f64,
    grad: f64,
    param: f64,
    update: f64,
}

fn check_fixture(name: &str) {
    let fx = Fixture::load(name);
    let mut failures: Vec<String> = Vec::new();
    let mut worst = Worst::default();
    let (model, layout) = model_with_fixture_params(&fx, name);
    let (input, target, ref_loss, ref_norms) = fixture_batch(&fx, name);
    let mut trainer =
        Trainer::new(model, fx.train_config()).unwrap_or_else(|e| panic!("{name}: building the trainer: {e}"));

    // (1) Step-0 loss and gradients.
    let loss0 = trainer.compute_gradients(&input, &target).unwrap_or_else(|e| panic!("{name}: step 0: {e}"));
    let e = relative_error(loss0, ref_loss[0]);
    worst.loss0 = e;
    if e.is_nan() || e > LOSS0_TOL {
        failures.push(format!(
            "loss[0] from compute_gradients: ours {loss0:.9e}, reference {:.9e}, rel err {e:.2e} > {LOSS0_TOL:.0e}",
            ref_loss[0]
        ));
    }
    for (n, off, len) in &layout {
        let (_, g_ref) = fx.tensor(&format!("grad.{n}"));
        let e = normalised_error(&trainer.grads()[*off..off + len], g_ref, g_ref);
        worst.grad = worst.grad.max(e);
        if e.is_nan() || e > GRAD_TOL {
            failures.push(format!("grad.{n}: normalised error {e:.2e} > {GRAD_TOL:.0e}"));
        }
    }

    // (2) The optimizer steps on the same batch.
    for k in 0..ref_loss.len() {
        let stats = trainer.step(&input, &target).unwrap_or_else(|e| panic!("{name}: step {k}: {e}"));
        for (what, ours, reference, worst) in [
            ("loss", stats.loss, ref_loss[k], &mut worst.loss),
            ("grad_norm_pre_clip", stats.grad_norm, ref_norms[k], &mut worst.grad_norm),
        ] {
            let e = relative_error(ours, reference);
            *worst = worst.max(e);
            if e.is_nan() || e > LOSS_TOL {
                failures.push(format!(
                    "{what}[{k}]: ours {ours:.9e}, reference {reference:.9e}, rel err {e:.2e} > {LOSS_TOL:.0e}"
                ));
            }
        }
    }
    check_final_params(&fx, &trainer, &layout, &mut worst, &mut failures);

    println!(
        "{name}: max errors: loss[0] {:.2e}, losses {:.2e}, grad norm {:.2e}, grad {:.2e}, final param {:.2e}, \
         final param / update {:.2e}",
        worst.loss0, worst.loss, worst.grad_norm, worst.grad, worst.param, worst.update
    );
    assert!(
        failures.is_empty(),
        "fixture {name}: {} mismatch(es) against PyTorch:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

/// The fixture's model with its initial parameters, and `(name, offset, len)` of each tensor.
fn model_with_fixture_params(fx: &Fixture, name: &str) -> (Model, Vec<(String, usize, usize)>) {
    let output_dims = fx.usize(fx.key("output_dims"), "output_dims");
    let domain = fx.domain();
    assert_eq!(domain.len(), fx.usize(fx.key("input_dims"), "input_dims"), "{name}: domain vs input_dims");
    let seed = fx.usize(fx.key("seed"), "seed") as u64;
    let mut model = Model::new(fx.model_config(), &domain, output_dims, seed)
        .unwrap_or_else(|e| panic!("{name}: building the model: {e}"));
    let param_names: Vec<String> = fx
        .key("param_names")
        .as_array()
        .unwrap_or_else(|| panic!("{name}: param_names is not a list"))
        .iter()
        .map(|v| fx.str(v, "param_names entry").to_string())
        .collect();
    let ours = model.param_tensors();
    let our_names: Vec<String> =
        ours.iter().map(|t| t.name.strip_prefix("network.").unwrap_or(&t.name).to_string()).collect();
    assert_eq!(our_names, param_names, "{name}: the model's tensors (without 'network.') differ from the fixture's");
    let covered: usize = ours.iter().map(|t| t.shape.iter().product::<usize>()).sum();
    assert_eq!(covered, model.n_params(), "{name}: the named tensors do not cover every parameter");
    let layout: Vec<(String, usize, usize)> =
        ours.iter().zip(&param_names).map(|(t, n)| (n.clone(), t.offset, t.shape.iter().product())).collect();
    for (t, n) in ours.iter().zip(&param_names) {
        let (shape, values) = fx.tensor(&format!("param.{n}"));
        assert_eq!(&t.shape, shape, "{name}: shape of {n}: ours {:?}, fixture {shape:?}", t.shape);
        for (p, v) in model.params[t.offset..t.offset + values.len()].iter_mut().zip(values) {
            *p = *v as f32;
        }
    }
    (model, layout)
}

/// The fixture's batch (inputs, targets) and its reference losses and pre-clip gradient norms, one per step.
fn fixture_batch(fx: &Fixture, name: &str) -> BatchAndReference {
    let (input_dims, output_dims) = (fx.domain().len(), fx.usize(fx.key("output_dims"), "output_dims"));
    let batch = fx.usize(fx.key("batch"), "batch");
    let steps = fx.usize(fx.key("steps"), "steps");
    let (in_shape, _) = fx.tensor("input");
    let (t_shape, _) = fx.tensor("target");
    assert_eq!(in_shape, &vec![batch, input_dims], "{name}: input shape");
    assert_eq!(t_shape, &vec![batch, output_dims], "{name}: target shape");
    let ref_loss = fx.tensor("loss").1.clone();
    assert_eq!(ref_loss.len(), steps, "{name}: loss has {} values for {steps} steps", ref_loss.len());
    let ref_norms: Vec<f64> = fx
        .key("grad_norm_pre_clip")
        .as_array()
        .unwrap_or_else(|| panic!("{name}: grad_norm_pre_clip is not a list"))
        .iter()
        .map(|v| fx.f64(v, "grad_norm_pre_clip entry"))
        .collect();
    assert_eq!(ref_norms.len(), steps, "{name}: grad_norm_pre_clip length");
    (fx.values_f32("input"), fx.values_f32("target"), ref_loss, ref_norms)
}

type BatchAndReference = (Vec<f32>, Vec<f32>, Vec<f64>, Vec<f64>);

/// The parameters after the steps against the reference's, relative to the tensor and to the reference's update.
fn check_final_params(
    fx: &Fixture,
    trainer: &Trainer,
    layout: &[(String, usize, usize)],
    worst: &mut Worst,
    failures: &mut Vec<String>,
) {
    for (n, off, len) in layout {
        let ours = &trainer.params()[*off..off + len];
        let (_, p_final) = fx.tensor(&format!("final.{n}"));
        let (_, p_init) = fx.tensor(&format!("param.{n}"));
        let update: Vec<f64> = p_final.iter().zip(p_init).map(|(f, i)| f - i).collect();
        let e = normalised_error(ours, p_final, p_final);
        worst.param = worst.param.max(e);
        if e.is_nan() || e > PARAM_TOL {
            failures.push(format!("final.{n}: normalised error {e:.2e} > {PARAM_TOL:.0e} (relative to the tensor)"));
        }
        let e = normalised_error(ours, p_final, &update);
        worst.update = worst.update.max(e);
        if e.is_nan() || e > UPDATE_TOL {
            failures.push(format!(
                "final.{n}: normalised error {e:.2e} > {UPDATE_TOL:.0e} (relative to the reference's update)"
            ));
        }
    }
}

#[test]
fn mlp_fourier_adam() {
    check_fixture("mlp_fourier_adam");
}

#[test]
fn skip_gelu_adamw_huber() {
    check_fixture("skip_gelu_adamw_huber");
}

#[test]
fn softmax_ce_sgd() {
    check_fixture("softmax_ce_sgd");
}

#[test]
fn siren_sigmoid_l1() {
    check_fixture("siren_sigmoid_l1");
}

#[test]
fn taylor_linear_mse() {
    check_fixture("taylor_linear_mse");
}

#[test]
fn mlp_sigmoid_relu_mse() {
    check_fixture("mlp_sigmoid_relu_mse");
}
