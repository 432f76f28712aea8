//! Coordinates in f64: a hash grid reads them at full precision, so a deep zoom of the Mandelbrot challenge (a
//! window of width 1e-4 over 960 pixels, pixels 1e-7 apart) is no staircase of f32 steps.

use approxlab_engine::encoding::{BuildContext, EncodingConfig};
use approxlab_engine::network::NetworkConfig;
use approxlab_engine::{Model, ModelConfig};
use rand::Rng as _;

const WINDOW: [(f64, f64); 2] = [(-2.65, 1.15), (-1.2, 1.2)];

fn model() -> Model {
    let config = ModelConfig {
        encoding: EncodingConfig::parse("hashgrid:8:4:20:16:65536").unwrap(),
        network: NetworkConfig::parse("mlp:1x16:relu").unwrap(),
        head: approxlab_engine::head::Head::parse("linear").unwrap(),
        ..Default::default()
    };
    let mut m = Model::new(config, &WINDOW, 1, 5).unwrap();
    // Tables of a trained size rather than the near-zero initial ones, so that the function varies.
    let mut rng = approxlab_engine::rng::seeded(9);
    let tables = m.encoding_range();
    m.params[tables].iter_mut().for_each(|p| *p = rng.gen_range(-1.0..1.0));
    m
}

/// Runs of equal neighbours along one row of a 960-pixel window of width 1e-4 at the seahorse spiral.
fn repeats(values: &[f32]) -> usize {
    values.windows(2).filter(|w| w[0] == w[1]).count()
}

#[test]
fn a_window_of_width_1e_4_has_960_distinct_pixels_in_f64_and_bands_in_f32() {
    let m = model();
    let (cx, cy, width) = (-0.743_643_887, 0.131_825_904, 1e-4);
    let xs: Vec<f64> = (0..960).flat_map(|i| [cx - width / 2.0 + width * i as f64 / 959.0, cy]).collect();
    let mut wide = vec![0.0f32; 960];
    m.predict_f64(&xs, &mut wide).unwrap();
    let narrow_inputs: Vec<f32> = xs.iter().map(|v| *v as f32).collect();
    let mut narrow = vec![0.0f32; 960];
    m.predict(&narrow_inputs, &mut narrow).unwrap();
    assert_eq!(repeats(&wide), 0, "every pixel of the f64 row differs from its neighbour");
    assert!(repeats(&narrow) > 300, "f32 coordinates make steps of several pixels: {} repeats", repeats(&narrow));
    // Where f32 can tell the points apart the two agree closely.
    let coarse: Vec<f64> = (0..100).flat_map(|i| [-2.0 + 0.03 * i as f64, 0.5 - 0.01 * i as f64]).collect();
    let (mut a, mut b) = (vec![0.0f32; 100], vec![0.0f32; 100]);
    m.predict_f64(&coarse, &mut a).unwrap();
    m.predict(&coarse.iter().map(|v| *v as f32).collect::<Vec<_>>(), &mut b).unwrap();
    for (a, b) in a.iter().zip(&b) {
        assert!((a - b).abs() < 1e-2 * (1.0 + b.abs()), "{a} vs {b}");
    }
}

#[test]
fn the_grid_reads_exact_coordinates_the_same_in_f32_and_f64() {
    let spec = EncodingConfig::parse("hashgrid:4:2:10:4:256").unwrap();
    let grid = spec.build(&BuildContext { input_dims: 2, seed: 0, max_features: 1 << 20 }).unwrap();
    let mut rng = approxlab_engine::rng::seeded(3);
    let params: Vec<f32> = (0..grid.n_params()).map(|_| rng.gen_range(-1.0..1.0)).collect();
    // Multiples of 1/1024 are exact in both, and so are their positions at every level.
    let x32: Vec<f32> = (0..200).map(|_| rng.gen_range(0..=1024) as f32 / 1024.0).collect();
    let x64: Vec<f64> = x32.iter().map(|v| *v as f64).collect();
    let width = grid.output_dims();
    let (mut a, mut b) = (vec![0.0f32; 100 * width], vec![0.0f32; 100 * width]);
    grid.forward(&params, &x32, &mut a);
    grid.forward_f64(&params, &x64, &mut b);
    assert_eq!(a, b);
    let go: Vec<f32> = (0..100 * width).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let (mut ga, mut gb) = (vec![0.0f32; params.len()], vec![0.0f32; params.len()]);
    let (mut ia, mut ib) = (vec![0.0f32; 200], vec![0.0f32; 200]);
    grid.backward(&params, &x32, &go, &mut ga, Some(&mut ia));
    grid.backward_f64(&params, &x64, &go, &mut gb, Some(&mut ib));
    assert_eq!(ga, gb, "table gradients");
    assert_eq!(ia, ib, "input gradients");
}
