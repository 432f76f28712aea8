//! End-to-end behaviour of the engine: it learns, it is deterministic, it resumes exactly, it stops on divergence,
//! and it rejects bad configurations with one-line errors.

use approxlab_engine::encoding::EncodingConfig;
use approxlab_engine::network::NetworkConfig;
use approxlab_engine::precision::{Precision, PrecisionSetting};
use approxlab_engine::schedule::Schedule;
use approxlab_engine::{checkpoint, EngineError, Model, ModelConfig, TrainConfig, Trainer};
use rand::Rng as _;
use std::f32::consts::PI;

fn model(encoding: &str, network: &str, head: &str, domain: &[(f64, f64)], outputs: usize, seed: u64) -> Model {
    let config = ModelConfig {
        encoding: EncodingConfig::parse(encoding).unwrap(),
        network: NetworkConfig::parse(network).unwrap(),
        head: approxlab_engine::head::Head::parse(head).unwrap(),
        ..Default::default()
    };
    Model::new(config, domain, outputs, seed).unwrap()
}

/// Trains on fresh uniform samples of `f` over `domain` for `steps` steps.
fn train(trainer: &mut Trainer, f: &dyn Fn(&[f32]) -> Vec<f32>, steps: usize) -> f64 {
    let d = trainer.model().input_dims();
    let domain = trainer.model().domain.clone();
    let batch = trainer.config().batch;
    let mut x = vec![0.0f32; batch * d];
    let mut y = Vec::with_capacity(batch * trainer.model().output_dims());
    let mut last = f64::NAN;
    for _ in 0..steps {
        y.clear();
        for row in x.chunks_exact_mut(d) {
            for (v, (lo, hi)) in row.iter_mut().zip(&domain) {
                *v = trainer.data_rng_mut().gen_range(*lo as f32..*hi as f32);
            }
            y.extend(f(row));
        }
        last = trainer.step(&x, &y).unwrap().loss;
    }
    last
}

fn eval_mse(model: &Model, f: &dyn Fn(&[f32]) -> Vec<f32>, points: &[f32]) -> f64 {
    let d = model.input_dims();
    let mut pred = vec![0.0; points.len() / d * model.output_dims()];
    model.predict(points, &mut pred).unwrap();
    let truth: Vec<f32> = points.chunks_exact(d).flat_map(f).collect();
    pred.iter().zip(&truth).map(|(p, t)| ((p - t) as f64).powi(2)).sum::<f64>() / pred.len() as f64
}

#[test]
fn fits_sin_3x_to_mse_below_1e_4() {
    let f = |x: &[f32]| vec![(3.0 * x[0]).sin()];
    let m = model("identity", "mlp:3x64:tanh", "linear", &[(-PI as f64, PI as f64)], 1, 1);
    let schedule = Schedule::Cosine { warmup: 0, total: Some(3000), min_lr: 0.0 };
    let cfg = TrainConfig { lr: 1e-2, batch: 512, schedule, ..Default::default() };
    let mut t = Trainer::new(m, cfg).unwrap();
    train(&mut t, &f, 3000);
    let grid: Vec<f32> = (0..1000).map(|i| -PI + 2.0 * PI * i as f32 / 999.0).collect();
    let mse = eval_mse(t.model(), &f, &grid);
    assert!(mse < 1e-4, "sin(3x) MSE {mse}");
}

/// A 64x64 image with fine detail: rings whose frequency grows outwards.
fn rings(p: &[f32]) -> Vec<f32> {
    let (r, c) = (p[0] / 63.0 - 0.5, p[1] / 63.0 - 0.5);
    vec![0.5 + 0.5 * (40.0 * (r * r + c * c)).sin() * (9.0 * c).cos()]
}

fn psnr(mse: f64) -> f64 {
    -10.0 * mse.log10()
}

#[test]
fn fourier_features_beat_a_plain_mlp_on_an_image() {
    let domain = [(0.0, 63.0), (0.0, 63.0)];
    let pixels: Vec<f32> = (0..64 * 64).flat_map(|i| [(i / 64) as f32, (i % 64) as f32]).collect();
    let cfg = TrainConfig { lr: 2e-3, batch: 1024, ..Default::default() };
    let mut scores = Vec::new();
    for enc in ["identity", "fourier:16"] {
        let mut t = Trainer::new(model(enc, "mlp:3x64:leaky_relu", "tanh01", &domain, 1, 3), cfg.clone()).unwrap();
        train(&mut t, &rings, 600);
        scores.push(psnr(eval_mse(t.model(), &rings, &pixels)));
    }
    assert!(scores[1] > scores[0] + 5.0, "PSNR plain {:.1} dB vs fourier {:.1} dB", scores[0], scores[1]);
}

#[test]
fn hash_grid_fits_a_2d_pattern() {
    let f = |p: &[f32]| vec![0.5 + 0.5 * (6.0 * p[0]).sin() * (5.0 * p[1]).cos()];
    let m = model("hashgrid:8:2:12:4:64", "mlp:2x32:relu", "tanh01", &[(-1.0, 1.0), (-1.0, 1.0)], 1, 5);
    let cfg = TrainConfig { lr: 1e-2, batch: 2048, ..Default::default() };
    let mut t = Trainer::new(m, cfg).unwrap();
    let first = train(&mut t, &f, 1);
    train(&mut t, &f, 400);
    let grid: Vec<f32> =
        (0..50 * 50).flat_map(|i| [(i / 50) as f32 / 24.5 - 1.0, (i % 50) as f32 / 24.5 - 1.0]).collect();
    let mse = eval_mse(t.model(), &f, &grid);
    assert!(mse < 2e-3 && mse < first / 20.0, "hash grid MSE {mse} (first loss {first})");
}

fn small_trainer(seed: u64) -> Trainer {
    let m = model("fourier:8", "skip:3x32:gelu", "tanh01", &[(-2.0, 1.0), (-1.0, 1.0)], 1, seed);
    Trainer::new(m, TrainConfig { lr: 1e-3, batch: 512, ..Default::default() }).unwrap()
}

fn target(p: &[f32]) -> Vec<f32> {
    vec![0.5 + 0.4 * (3.0 * p[0] * p[1]).sin()]
}

#[test]
fn same_seed_gives_bitwise_identical_weights_after_100_steps() {
    let (mut a, mut b) = (small_trainer(11), small_trainer(11));
    train(&mut a, &target, 100);
    train(&mut b, &target, 100);
    assert!(a.params().iter().zip(b.params()).all(|(x, y)| x.to_bits() == y.to_bits()));
    let mut c = small_trainer(12);
    train(&mut c, &target, 100);
    assert_ne!(a.params(), c.params());
}

#[test]
fn checkpoint_resume_equals_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.safetensors");
    let mut straight = small_trainer(21);
    train(&mut straight, &target, 40);

    let mut first = small_trainer(21);
    train(&mut first, &target, 20);
    checkpoint::save(&path, &first, serde_json::json!({"note": "half way"})).unwrap();
    drop(first);
    let (mut resumed, extra) = checkpoint::load(&path).unwrap();
    assert_eq!(extra["note"], "half way");
    assert_eq!(resumed.steps_done(), 20);
    train(&mut resumed, &target, 20);
    assert!(straight.params().iter().zip(resumed.params()).all(|(x, y)| x.to_bits() == y.to_bits()));
    assert!(std::fs::read_dir(dir.path()).unwrap().count() == 1, "no temporary file is left behind");
}

#[test]
fn corrupt_checkpoints_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.safetensors");
    std::fs::write(&path, b"not a checkpoint").unwrap();
    let e = checkpoint::load(&path).unwrap_err().to_string();
    assert!(e.contains("bad.safetensors") && e.contains("not a safetensors file"), "{e}");
    let e = checkpoint::load(&dir.path().join("missing.safetensors")).unwrap_err().to_string();
    assert!(e.contains("missing.safetensors"), "{e}");
}

#[test]
fn divergence_stops_before_the_update() {
    let m = model("identity", "mlp:2x16:relu", "linear", &[(-1.0, 1.0)], 1, 2);
    let mut t = Trainer::new(m, TrainConfig { lr: 1e-3, batch: 4, ..Default::default() }).unwrap();
    let before = t.params().to_vec();
    let err = t.step(&[0.1, 0.2, 0.3, 0.4], &[1.0, f32::NAN, 0.0, 0.0]).unwrap_err();
    assert!(matches!(err, EngineError::Diverged { step: 0, .. }), "{err}");
    assert!(err.to_string().contains("diverged at step 0"));
    assert_eq!(t.params(), before);
    assert_eq!(t.steps_done(), 0);
}

#[test]
fn bad_configs_give_one_line_errors() {
    let d2 = [(-1.0, 1.0), (-1.0, 1.0)];
    let build = |enc: &str, net: &str, dims: usize| -> String {
        let encoding = match EncodingConfig::parse(enc) {
            Ok(e) => e,
            Err(e) => return e.to_string(),
        };
        let network = match NetworkConfig::parse(net) {
            Ok(n) => n,
            Err(e) => return e.to_string(),
        };
        let domain = vec![(0.0, 1.0); dims];
        match Model::new(ModelConfig { encoding, network, ..Default::default() }, &domain, 1, 0) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    };
    for (enc, net, dims, expect) in [
        ("identity", "mlp:3x0", 2, "width"),
        ("identity", "mlp:3x8:swish", 2, "unknown activation 'swish'"),
        ("fourier-series:8", "mlp:2x8", 784, "784"),
        ("hashgrid", "mlp:2x8", 7, "1 to 6 input dimensions, got 7"),
    ] {
        let e = build(enc, net, dims);
        assert!(e.contains(expect) && !e.contains('\n'), "{enc} {net}: '{e}'");
    }
    let m = model("identity", "mlp:1x4", "linear", &d2, 1, 0);
    let e = Trainer::new(m, TrainConfig { lr: f32::NAN, ..Default::default() }).unwrap_err().to_string();
    assert!(e.contains("lr") && e.contains("positive"), "{e}");
    let e = Model::new(ModelConfig::default(), &[(1.0, -1.0)], 1, 0).unwrap_err().to_string();
    assert!(e.contains("lo < hi"), "{e}");
}

#[test]
fn softmax_head_trains_a_classifier_with_cross_entropy() {
    // Four classes: the quadrant of a 2-D point.
    let m = model("identity", "mlp:2x32:tanh", "softmax", &[(-1.0, 1.0), (-1.0, 1.0)], 4, 9);
    let cfg =
        TrainConfig { lr: 1e-2, batch: 256, loss: approxlab_engine::loss::Loss::CrossEntropy, ..Default::default() };
    let mut t = Trainer::new(m, cfg).unwrap();
    let quadrant = |p: &[f32]| {
        let k = (p[0] > 0.0) as usize + 2 * (p[1] > 0.0) as usize;
        (0..4).map(|i| (i == k) as u8 as f32).collect::<Vec<_>>()
    };
    let loss = train(&mut t, &quadrant, 300);
    assert!(loss < 0.2, "cross-entropy {loss}");
    let mut p = vec![0.0; 8];
    t.model().predict(&[0.5, 0.5, -0.5, -0.5], &mut p).unwrap();
    assert!(p[3] > 0.8 && p[4] > 0.8, "{p:?}");
}

/// What the live view does: a render (predict from a thread outside the pool) while training steps run and another
/// render is in flight. Inside a predict chunk, Rayon may hand a waiting worker another chunk; the per-thread
/// scratch buffers must survive that without a double borrow (a panic, formerly).
#[test]
fn predictions_and_steps_can_run_at_once() {
    let mut trainer = Trainer::new(
        model("fourier:16", "mlp:2x128", "tanh01", &[(-1.0, 1.0), (-1.0, 1.0)], 1, 5),
        TrainConfig { batch: 2048, ..Default::default() },
    )
    .unwrap();
    let shape = model("fourier:16", "mlp:2x128", "tanh01", &[(-1.0, 1.0), (-1.0, 1.0)], 1, 5);
    let points: Vec<f32> = (0..40_000).map(|i| ((i * 7919) % 2000) as f32 / 1000.0 - 1.0).collect();
    let x: Vec<f32> = points[..2048 * 2].to_vec();
    let y = vec![0.5f32; 2048];
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                let mut out = vec![0.0f32; points.len() / 2];
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    shape.predict(&points, &mut out).unwrap();
                    assert!(out.iter().all(|v| v.is_finite()));
                }
            });
        }
        for _ in 0..10 {
            trainer.step(&x, &y).unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    });
}

/// The precision a trainer resolved to, or `None` (with a message) where bf16 cannot run here.
fn bf16_available() -> bool {
    let r = PrecisionSetting::Bf16.resolve();
    if r.precision != Precision::Bf16 {
        eprintln!("skipped: {}", r.notice.unwrap_or_default());
    }
    r.precision == Precision::Bf16
}

#[test]
fn bf16_products_learn_an_image_as_well_as_f32_and_repeat_bitwise() {
    if !bf16_available() {
        return;
    }
    let domain = [(0.0, 63.0), (0.0, 63.0)];
    let pixels: Vec<f32> = (0..64 * 64).flat_map(|i| [(i / 64) as f32, (i % 64) as f32]).collect();
    let run = |precision: PrecisionSetting| {
        let cfg = TrainConfig { lr: 2e-3, batch: 1024, precision, ..Default::default() };
        let mut t = Trainer::new(model("fourier:16", "mlp:3x64:leaky_relu", "tanh01", &domain, 1, 3), cfg).unwrap();
        assert_eq!(
            t.precision().precision,
            if precision == PrecisionSetting::Bf16 { Precision::Bf16 } else { Precision::F32 }
        );
        train(&mut t, &rings, 600);
        (psnr(eval_mse(t.model(), &rings, &pixels)), t.params().to_vec())
    };
    let (f32_db, f32_params) = run(PrecisionSetting::F32);
    let (bf16_db, bf16_params) = run(PrecisionSetting::Bf16);
    let (_, again) = run(PrecisionSetting::Bf16);
    assert!(bf16_db > f32_db - 0.5, "PSNR f32 {f32_db:.2} dB vs bf16 {bf16_db:.2} dB");
    assert!(bf16_params.iter().zip(&again).all(|(a, b)| a.to_bits() == b.to_bits()), "bf16 runs repeat bitwise");
    assert!(bf16_params != f32_params, "the bf16 run took another path than f32");
}

#[test]
fn a_bf16_run_resumes_in_f32_and_back_from_its_f32_checkpoint() {
    if !bf16_available() {
        return;
    }
    let m = model("fourier:8", "mlp:2x32:gelu", "tanh01", &[(-2.0, 1.0), (-1.0, 1.0)], 1, 4);
    let cfg = TrainConfig { lr: 1e-3, batch: 512, precision: PrecisionSetting::Bf16, ..Default::default() };
    let mut t = Trainer::new(m, cfg).unwrap();
    train(&mut t, &target, 20);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.safetensors");
    checkpoint::save(&path, &t, serde_json::Value::Null).unwrap();
    let (mut resumed, _) = checkpoint::load(&path).unwrap();
    assert_eq!(resumed.precision().precision, Precision::Bf16, "the checkpoint keeps the setting");
    assert!(resumed.params().iter().zip(t.params()).all(|(a, b)| a.to_bits() == b.to_bits()));
    resumed.set_precision(PrecisionSetting::F32);
    assert_eq!((resumed.precision().precision, resumed.model().precision()), (Precision::F32, Precision::F32));
    let before = resumed.params().to_vec();
    let loss = train(&mut resumed, &target, 20);
    assert!(loss.is_finite() && resumed.params() != before);
    // And the other way: the continued run's f32 checkpoint trains on in bf16.
    checkpoint::save(&path, &resumed, serde_json::Value::Null).unwrap();
    let (mut back, _) = checkpoint::load(&path).unwrap();
    back.set_precision(PrecisionSetting::Bf16);
    assert_eq!(back.model().precision(), Precision::Bf16);
    assert!(train(&mut back, &target, 5).is_finite());
}

/// The neurons' view: Taylor features are the powers of the mapped coordinate (a formula), the first hidden
/// layer is relu(features W^T + b) from the checkpoint's named tensors, and identity features are not shown.
#[test]
fn neurons_are_the_features_and_hidden_outputs() {
    let config = ModelConfig {
        encoding: EncodingConfig::parse("taylor:3").unwrap(),
        network: NetworkConfig::parse("mlp:2x4:relu").unwrap(),
        ..Default::default()
    };
    let model = Model::new(config, &[(0.0, 2.0)], 1, 5).unwrap();
    let xs: Vec<f32> = (0..9).map(|i| i as f32 * 0.25).collect();
    let layers = model.neurons(&xs).unwrap();
    let names: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["features: taylor(3)", "layer 1", "layer 2"]);
    assert_eq!(layers.iter().map(|l| l.units).collect::<Vec<_>>(), [3, 4, 4]);
    for (i, x) in xs.iter().enumerate() {
        let m = x - 1.0; // [0, 2] mapped onto taylor's [-1, 1]
        for k in 0..3 {
            let want = m.powi(k as i32 + 1);
            assert!((layers[0].values[i * 3 + k] - want).abs() < 1e-6, "x {x} power {}", k + 1);
        }
    }
    let tensors = model.param_tensors();
    let (w, b) = (&tensors.iter().find(|t| t.name.ends_with("layers.0.weight")).unwrap(), &tensors[1]);
    assert!(b.name.ends_with("layers.0.bias"), "{}", b.name);
    for i in 0..xs.len() {
        for u in 0..4 {
            let row = &model.params[w.offset + u * 3..w.offset + u * 3 + 3];
            let z: f32 = model.params[b.offset + u] + (0..3).map(|k| row[k] * layers[0].values[i * 3 + k]).sum::<f32>();
            assert!((layers[1].values[i * 4 + u] - z.max(0.0)).abs() < 1e-5, "point {i} unit {u}");
        }
    }
    let plain = ModelConfig { network: NetworkConfig::parse("mlp:1x3:tanh").unwrap(), ..Default::default() };
    let model = Model::new(plain, &[(0.0, 1.0), (0.0, 1.0)], 1, 5).unwrap();
    let layers = model.neurons(&[0.5, 0.5, 0.1, 0.9]).unwrap();
    assert_eq!(layers.len(), 1, "identity features are the coordinates: not shown");
    assert_eq!(layers[0].values.len(), 2 * 3);
    assert!(model.neurons(&[0.5]).is_err(), "one value for two dimensions");
}

#[test]
fn an_update_beside_a_look_at_the_predictions_is_the_plain_update() {
    let make = || {
        let m = model("hashgrid:4:2:10:4:64", "mlp:2x16:relu", "sigmoid", &[(-1.0, 1.0), (-1.0, 1.0)], 1, 5);
        Trainer::new(m, TrainConfig { lr: 1e-2, batch: 8, ..Default::default() }).unwrap()
    };
    let (mut plain, mut beside) = (make(), make());
    let x: Vec<f32> = (0..16).map(|i| (i as f32 * 0.37).sin()).collect();
    let y: Vec<f32> = (0..8).map(|i| (i as f32 * 0.21).cos().abs()).collect();
    for _ in 0..3 {
        let loss = plain.compute_gradients(&x, &y).unwrap();
        let want_predictions = plain.last_predictions().to_vec();
        let want = plain.apply_gradients(loss).unwrap();
        let loss = beside.compute_gradients(&x, &y).unwrap();
        let (seen, got) = beside.apply_gradients_beside(loss, |p| p.to_vec());
        let got = got.unwrap();
        assert_eq!(seen, want_predictions);
        assert_eq!((got.loss, got.grad_norm), (want.loss, want.grad_norm));
        assert_eq!(beside.last_predictions(), &want_predictions[..], "the predictions are back in place");
    }
    assert_eq!(plain.params(), beside.params());
}

#[test]
fn a_clipped_sgd_step_moves_the_parameters_by_the_learning_rate_times_the_max_norm() {
    let m = model("identity", "mlp:2x16:relu", "linear", &[(-1.0, 1.0)], 1, 3);
    let config = TrainConfig {
        lr: 0.1,
        batch: 4,
        optimizer: approxlab_engine::optimizer::OptimizerConfig::parse("sgd:0").unwrap(),
        clip_grad_norm: Some(1e-3),
        ..Default::default()
    };
    let mut t = Trainer::new(m, config).unwrap();
    let before = t.params().to_vec();
    let stats = t.step(&[0.1, 0.2, 0.3, 0.4], &[10.0, -10.0, 10.0, -10.0]).unwrap();
    assert!(stats.grad_norm > 1e-3, "the norm before clipping is reported: {}", stats.grad_norm);
    let moved: f64 = t.params().iter().zip(&before).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>().sqrt();
    assert!((moved - 0.1 * 1e-3).abs() < 1e-6, "SGD moves by lr x the clipped norm, moved {moved}");
}
