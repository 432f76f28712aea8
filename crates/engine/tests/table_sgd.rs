//! Plain SGD for the hashed tables (`train.table_sgd`): the hashed rows step by the summed loss's gradient at the
//! rate, everything else steps exactly as without it, the optimizer keeps no moments for the tables, and a
//! checkpoint resumes such a run exactly. With clipping the tables' gradient is written out and the optimizer steps
//! them; without, the backward steps them itself, to the same parameters up to rounding.

use approxlab_engine::encoding::EncodingConfig;
use approxlab_engine::network::NetworkConfig;
use approxlab_engine::schedule::Schedule;
use approxlab_engine::{checkpoint, Model, ModelConfig, TrainConfig, Trainer};
use rand::Rng as _;

const BATCH: usize = 64;
const LR: f32 = 1e-2;

/// A norm no gradient here reaches: clipping that changes nothing, but makes the trainer write out the tables'
/// gradient for the optimizer (the norm needs all of it before any update).
const NO_CLIP: Option<f32> = Some(1e30);

fn trainer(table_sgd: Option<f32>) -> Trainer {
    trainer_clipped(table_sgd, None)
}

fn trainer_clipped(table_sgd: Option<f32>, clip_grad_norm: Option<f32>) -> Trainer {
    let config = ModelConfig {
        // Table 2^10: the levels of 4 and 16 cells are dense (25 and 289 vertices), those of 64 and 256 hashed.
        encoding: EncodingConfig::parse("hashgrid:4:2:10:4:256").unwrap(),
        network: NetworkConfig::parse("mlp:1x16:relu").unwrap(),
        ..Default::default()
    };
    let model = Model::new(config, &[(0.0, 1.0), (0.0, 1.0)], 1, 3).unwrap();
    // A cosine over the elapsed fraction of a time budget, which the tests set by hand: the tables' rate must
    // follow the schedule's factor.
    let schedule = Schedule::parse("cosine:0:0.001").unwrap();
    let train = TrainConfig { lr: LR, batch: BATCH, table_sgd, schedule, clip_grad_norm, ..Default::default() };
    let mut t = Trainer::new(model, train).unwrap();
    t.set_budget_done(0.0);
    t
}

fn batch(seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = approxlab_engine::rng::seeded(seed);
    let x: Vec<f32> = (0..2 * BATCH).map(|_| rng.gen_range(0.0f32..1.0)).collect();
    let y: Vec<f32> = x.chunks_exact(2).map(|p| (7.0 * p[0]).sin() * p[1]).collect();
    (x, y)
}

#[test]
fn hashed_rows_take_plain_sgd_steps_on_the_summed_loss_and_the_rest_steps_as_without() {
    let rate = 3.0;
    let (mut sgd, mut adam) = (trainer_clipped(Some(rate), NO_CLIP), trainer_clipped(None, NO_CLIP));
    let hashed = sgd.model().encoding().hashed_params();
    let n = sgd.model().n_params();
    assert_eq!(hashed, (25 + 289) * 2..sgd.model().encoding().n_params(), "the two finest levels are hashed");
    assert_eq!(sgd.optimizer().m.len(), n - hashed.len(), "no first moments for the tables");
    assert_eq!(sgd.optimizer().v.len(), n - hashed.len(), "no second moments for the tables");
    assert_eq!(adam.optimizer().m.len(), n);
    for step in 0..3u64 {
        sgd.set_budget_done(step as f64 / 10.0);
        let (x, y) = batch(step);
        let before = sgd.params().to_vec();
        let loss = sgd.compute_gradients(&x, &y).unwrap();
        let grads = sgd.grads().to_vec();
        let factor = sgd.lr() / LR;
        assert!(step == 0 || factor < 1.0, "the cosine has started down");
        sgd.apply_gradients(loss).unwrap();
        let mut moved = 0;
        for i in hashed.clone() {
            let want = before[i] - rate * BATCH as f32 * factor * grads[i];
            let tolerance = 1e-6 * (1.0 + before[i].abs());
            assert!(
                (sgd.params()[i] - want).abs() <= tolerance,
                "step {step}, param {i}: {} vs {want}",
                sgd.params()[i]
            );
            moved += usize::from(grads[i] != 0.0 && sgd.params()[i] != before[i]);
        }
        assert!(moved > 0, "step {step}: some hashed rows were reached and moved");
        if step == 0 {
            // From the same parameters, the dense levels and the network take the optimizer's step as without.
            assert_eq!(loss, adam.compute_gradients(&x, &y).unwrap());
            adam.apply_gradients(loss).unwrap();
            assert_eq!(sgd.params()[..hashed.start], adam.params()[..hashed.start], "dense levels");
            assert_eq!(sgd.params()[hashed.end..], adam.params()[hashed.end..], "the network");
        }
    }
}

#[test]
fn without_clipping_the_backward_steps_the_tables_as_the_optimizer_would() {
    let rate = 3.0;
    let (mut stepped, mut written) = (trainer(Some(rate)), trainer_clipped(Some(rate), NO_CLIP));
    let hashed = stepped.model().encoding().hashed_params();
    for step in 0..4u64 {
        let fraction = step as f64 / 8.0;
        stepped.set_budget_done(fraction);
        written.set_budget_done(fraction);
        let (x, y) = batch(10 + step);
        let before = stepped.params().to_vec();
        let a = stepped.step(&x, &y).unwrap();
        let b = written.step(&x, &y).unwrap();
        assert!(stepped.grads()[hashed.clone()].iter().all(|&g| g == 0.0), "no gradient written for the tables");
        let moved = hashed.clone().filter(|&i| stepped.params()[i] != before[i]).count();
        assert!(moved > 50, "step {step}: {moved} hashed parameters moved");
        // The summed steps round differently from the step of the summed gradient, and later steps start from
        // parameters that differ by that much.
        for (i, (p, q)) in stepped.params().iter().zip(written.params()).enumerate() {
            assert!((p - q).abs() <= 1e-5 * (1.0 + q.abs()), "step {step}, param {i}: {p} against {q}");
        }
        if step == 0 {
            assert_eq!(a.loss, b.loss);
            // The same gradients for the dense levels and the network, so the same Adam step to the bit.
            assert_eq!(stepped.params()[..hashed.start], written.params()[..hashed.start]);
            assert_eq!(stepped.params()[hashed.end..], written.params()[hashed.end..]);
        }
    }
}

#[test]
fn a_non_finite_loss_leaves_the_tables_as_they_were_too() {
    let mut run = trainer(Some(3.0));
    let (x, y) = batch(1);
    run.step(&x, &y).unwrap();
    let before = run.params().to_vec();
    let (x, mut y) = batch(2);
    y[5] = f32::NAN;
    let e = run.step(&x, &y).unwrap_err();
    assert!(matches!(e, approxlab_engine::EngineError::Diverged { step: 1, .. }), "{e}");
    assert_eq!(run.params(), &before[..], "no parameter moved");
    assert_eq!(run.steps_done(), 1);
}

#[test]
fn a_run_with_sgd_tables_resumes_from_its_checkpoint_exactly() {
    let mut run = trainer(Some(2.0));
    run.set_budget_done(0.3);
    for step in 0..3 {
        let (x, y) = batch(step);
        run.step(&x, &y).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.safetensors");
    checkpoint::save(&path, &run, serde_json::Value::Null).unwrap();
    let (mut resumed, _) = checkpoint::load(&path).unwrap();
    assert_eq!(resumed.config().table_sgd, Some(2.0));
    assert_eq!(resumed.optimizer().m, run.optimizer().m);
    for step in 3..6 {
        // Part-way down the cosine, so that the tables' rate is not the base rate.
        let fraction = 0.3 + 0.1 * step as f64;
        run.set_budget_done(fraction);
        resumed.set_budget_done(fraction);
        assert!(run.lr() < 0.9 * LR);
        let (x, y) = batch(step);
        run.step(&x, &y).unwrap();
        resumed.step(&x, &y).unwrap();
    }
    assert_eq!(run.params(), resumed.params());
}

#[test]
fn table_sgd_is_refused_when_not_positive_or_with_lazy_tables() {
    for bad in [0.0, -1.0, f32::NAN] {
        let config = TrainConfig { table_sgd: Some(bad), ..Default::default() };
        let e = config.validate().unwrap_err().to_string();
        assert!(e.contains("table_sgd") && e.contains("positive"), "{e}");
    }
    let config = TrainConfig { table_sgd: Some(1.0), lazy_tables: true, ..Default::default() };
    let e = config.validate().unwrap_err().to_string();
    assert!(e.contains("table_sgd") && e.contains("lazy_tables"), "{e}");
}

#[test]
fn the_groups_split_off_the_hashed_levels_only_when_asked_and_only_where_there_are_some() {
    let groups = |encoding: &str, apart: bool| {
        let config = ModelConfig {
            encoding: EncodingConfig::parse(encoding).unwrap(),
            network: NetworkConfig::parse("mlp:1x16:relu").unwrap(),
            ..Default::default()
        };
        let model = Model::new(config, &[(0.0, 1.0), (0.0, 1.0)], 1, 3).unwrap();
        let names: Vec<(String, bool)> =
            model.param_groups(10.0, apart).into_iter().map(|g| (g.name, g.plain_sgd)).collect();
        names
    };
    let named = |list: &[(&str, bool)]| list.iter().map(|(n, s)| (n.to_string(), *s)).collect::<Vec<_>>();
    // Dense coarse levels and hashed fine ones.
    let mixed = "hashgrid:4:2:10:4:256";
    assert_eq!(groups(mixed, true), named(&[("encoding", false), ("hashed_tables", true), ("network", false)]));
    assert_eq!(groups(mixed, false), named(&[("encoding", false), ("network", false)]));
    // Every level hashed (base 64 on a table of 2^10): the tables alone; every level dense (finest 16): no tables.
    assert_eq!(groups("hashgrid:2:2:10:64:128", true), named(&[("hashed_tables", true), ("network", false)]));
    assert_eq!(groups("hashgrid:2:2:10:4:16", true), named(&[("encoding", false), ("network", false)]));
    // No trainable encoding at all.
    assert_eq!(groups("fourier:4", true), named(&[("network", false)]));
}
