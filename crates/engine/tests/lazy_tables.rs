//! Lazy table updates (`train.lazy_tables`): the sparse gradient equals the dense one, plain SGD takes the same
//! steps either way, and lazy Adam updates exactly the rows a batch touched.

use approxlab_engine::encoding::EncodingConfig;
use approxlab_engine::network::NetworkConfig;
use approxlab_engine::optimizer::OptimizerConfig;
use approxlab_engine::{Model, ModelConfig, TrainConfig, Trainer};
use rand::Rng as _;

fn trainer(lazy: bool, optimizer: OptimizerConfig) -> Trainer {
    let config = ModelConfig {
        // Table 2^10 with hashed fine levels, so a batch of 64 touches a small part of it.
        encoding: EncodingConfig::parse("hashgrid:4:2:10:4:256").unwrap(),
        network: NetworkConfig::parse("mlp:1x16:relu").unwrap(),
        ..Default::default()
    };
    let model = Model::new(config, &[(0.0, 1.0), (0.0, 1.0)], 1, 3).unwrap();
    let train = TrainConfig { lr: 1e-2, batch: 64, optimizer, lazy_tables: lazy, ..Default::default() };
    Trainer::new(model, train).unwrap()
}

fn batch(seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = approxlab_engine::rng::seeded(seed);
    let x: Vec<f32> = (0..128).map(|_| rng.gen_range(0.0f32..1.0)).collect();
    let y: Vec<f32> = x.chunks_exact(2).map(|p| (7.0 * p[0]).sin() * p[1]).collect();
    (x, y)
}

#[test]
fn the_sparse_gradient_equals_the_dense_one() {
    let optimizer = OptimizerConfig::Sgd { momentum: 0.0, weight_decay: 0.0 };
    let (mut dense, mut lazy) = (trainer(false, optimizer), trainer(true, optimizer));
    for step in 0..5 {
        let (x, y) = batch(step);
        let (a, b) = (dense.compute_gradients(&x, &y).unwrap(), lazy.compute_gradients(&x, &y).unwrap());
        assert_eq!(a, b);
        assert_eq!(dense.grads(), lazy.grads(), "step {step}: gradients");
        let (sa, sb) = (dense.apply_gradients(a).unwrap(), lazy.apply_gradients(b).unwrap());
        assert!((sa.grad_norm - sb.grad_norm).abs() <= 1e-9 * sa.grad_norm, "{} vs {}", sa.grad_norm, sb.grad_norm);
        // Plain SGD leaves rows without gradient where they are, so the two agree exactly.
        assert_eq!(dense.params(), lazy.params(), "step {step}: parameters");
        let table = lazy.model().encoding_range();
        assert!(lazy.grads()[table].iter().all(|g| *g == 0.0), "the touched rows are zeroed for the next batch");
    }
}

#[test]
fn lazy_adam_moves_only_the_touched_rows() {
    let (mut dense, mut lazy) = (trainer(false, OptimizerConfig::default()), trainer(true, OptimizerConfig::default()));
    let (x, y) = batch(1);
    dense.step(&x, &y).unwrap();
    lazy.step(&x, &y).unwrap();
    assert_eq!(dense.params(), lazy.params(), "from zero moments the first step is the same");
    let before = lazy.params().to_vec();
    let (x2, y2) = batch(2);
    dense.compute_gradients(&x2, &y2).unwrap();
    let touched: Vec<bool> = dense.grads()[..dense.model().encoding_range().end].iter().map(|g| *g != 0.0).collect();
    dense.apply_gradients(0.0).unwrap();
    lazy.step(&x2, &y2).unwrap();
    let table = lazy.model().encoding_range();
    let (mut moved_dense_only, mut untouched) = (0, 0);
    for i in table {
        if touched[i] {
            assert_ne!(lazy.params()[i], before[i], "a touched entry is updated");
            let rel = (lazy.params()[i] - dense.params()[i]).abs() / dense.params()[i].abs().max(1e-6);
            assert!(rel < 1e-5, "touched entry {i}: lazy {} dense {}", lazy.params()[i], dense.params()[i]);
        } else {
            untouched += 1;
            assert_eq!(lazy.params()[i], before[i], "an untouched entry keeps its value");
            moved_dense_only += (dense.params()[i] != before[i]) as usize;
        }
    }
    assert!(untouched > 0 && moved_dense_only > 0, "dense Adam's momentum moves rows the batch did not touch");
    let net = lazy.model().network_range();
    assert_eq!(lazy.params()[net.clone()], dense.params()[net], "the network is updated densely either way");
}
