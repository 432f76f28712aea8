use approxlab_data::*;
use rand::SeedableRng;

fn spec(f: impl FnOnce(&mut MandelbrotSpec)) -> MandelbrotSpec {
    let mut s = MandelbrotSpec { samples: Some(2000), ..MandelbrotSpec::default() };
    f(&mut s);
    s
}

#[test]
fn periodic_known_values() {
    assert!((mandelbrot_periodic(0.5, 0.0, 200) - 0.192720).abs() < 1e-6, "{}", mandelbrot_periodic(0.5, 0.0, 200));
    assert!((mandelbrot_periodic(-0.75, 0.1, 200) - 0.144441).abs() < 1e-6, "{}", mandelbrot_periodic(-0.75, 0.1, 200));
}

#[test]
fn smooth_known_value() {
    assert!((mandelbrot_smooth(0.5, 0.0, 50) - 0.074074).abs() < 1e-6, "{}", mandelbrot_smooth(0.5, 0.0, 50));
    // c = 3 escapes at once: iteration 0 gives z = 3, so n = 0 and the value is 0.
    assert_eq!(mandelbrot_smooth(3.0, 0.0, 10), 0.0);
}

#[test]
fn inside_points_are_one() {
    for &(x, y) in &[(0.0, 0.0), (-1.0, 0.0), (-0.1, 0.1), (0.25, 0.0)] {
        assert_eq!(mandelbrot_smooth(x, y, 300), 1.0, "smooth at ({x}, {y})");
        assert_eq!(mandelbrot_periodic(x, y, 300), 1.0, "periodic at ({x}, {y})");
    }
}

#[test]
fn values_lie_in_unit_interval() {
    for i in 0..200 {
        let x = -2.65 + 3.8 * i as f64 / 199.0;
        for j in 0..50 {
            let y = -1.2 + 2.4 * j as f64 / 49.0;
            for v in [mandelbrot_smooth(x, y, 100), mandelbrot_periodic(x, y, 100)] {
                assert!((0.0..=1.0).contains(&v), "{v} at ({x}, {y})");
            }
        }
    }
}

#[test]
fn inverted_window_is_an_error() {
    let e = MandelbrotDataset::build(&spec(|s| s.window = [1.0, -2.0, -1.0, 1.0]), 1).unwrap_err().to_string();
    assert_eq!(e, "mandelbrot window: x0 (1.0) must be less than x1 (-2.0)");
    let e = MandelbrotDataset::build(&spec(|s| s.window = [-2.0, 1.0, 1.0, 1.0]), 1).unwrap_err().to_string();
    assert!(e.contains("y0 (1.0) must be less than y1 (1.0)"), "{e}");
    let e = MandelbrotDataset::build(&spec(|s| s.window = [f64::NAN, 1.0, -1.0, 1.0]), 1).unwrap_err().to_string();
    assert!(e.contains("finite"), "{e}");
}

#[test]
fn depth_zero_is_an_error() {
    let e = MandelbrotDataset::build(&spec(|s| s.depth = 0), 1).unwrap_err().to_string();
    assert_eq!(e, "mandelbrot depth: must be at least 1, got 0");
}

#[test]
fn samples_and_on_the_fly_conflict() {
    let e = MandelbrotDataset::build(&spec(|s| s.on_the_fly = true), 1).unwrap_err().to_string();
    assert!(e.starts_with("mandelbrot samples:"), "{e}");
    let e = MandelbrotDataset::build(&spec(|s| s.samples = Some(0)), 1).unwrap_err().to_string();
    assert!(e.contains("got 0"), "{e}");
}

#[test]
fn fixed_sample_matches_scalar_functions() {
    for target in [MandelbrotTarget::Smooth, MandelbrotTarget::Periodic] {
        let d = MandelbrotDataset::build(&spec(|s| s.target = target), 7).unwrap();
        assert_eq!(d.len(), Some(2000));
        assert_eq!(d.kind(), Kind::ScalarField2d);
        assert_eq!(d.domain(), &[(-2.65, 1.15), (-1.2, 1.2)]);
        let (x, y) = d.training_points().unwrap();
        let f = match target {
            MandelbrotTarget::Smooth => mandelbrot_smooth,
            MandelbrotTarget::Periodic => mandelbrot_periodic,
        };
        for (p, &t) in x.chunks(2).zip(y) {
            assert!(p[0] >= -2.65 && p[0] <= 1.15 && p[1] >= -1.2 && p[1] <= 1.2);
            assert_eq!(t, f(p[0] as f64, p[1] as f64, 200) as f32);
        }
        let ev = d.eval_set();
        assert_eq!(ev.len(2), EVAL_POINTS);
        let mut out = vec![0.0; EVAL_POINTS];
        assert!(d.truth(&ev.inputs, &mut out));
        assert_eq!(&out[..], &ev.targets[..]);
        // Some points are inside and some outside: the sample is not degenerate.
        assert!(y.contains(&1.0) && y.iter().any(|&v| v < 0.5));
    }
}

#[test]
fn same_seed_same_sample_and_eval_set_independent_of_seed() {
    let a = MandelbrotDataset::build(&spec(|_| {}), 3).unwrap();
    let b = MandelbrotDataset::build(&spec(|_| {}), 3).unwrap();
    let c = MandelbrotDataset::build(&spec(|_| {}), 4).unwrap();
    assert_eq!(a.training_points(), b.training_points());
    assert_ne!(a.training_points().unwrap().0, c.training_points().unwrap().0);
    assert_eq!(a.eval_set().inputs, c.eval_set().inputs);
}

#[test]
fn on_the_fly_batches_are_fresh_deterministic_and_correct() {
    let d = MandelbrotDataset::build(
        &spec(|s| {
            s.samples = None;
            s.on_the_fly = true;
            s.target = MandelbrotTarget::Periodic;
        }),
        1,
    )
    .unwrap();
    assert_eq!(d.len(), None);
    assert!(d.training_points().is_none());
    let run = |seed| {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
        let (mut x1, mut y1) = (vec![0.0; 2 * 3000], vec![0.0; 3000]);
        let (mut x2, mut y2) = (vec![0.0; 2 * 3000], vec![0.0; 3000]);
        d.fill_batch(&mut rng, &mut x1, &mut y1);
        d.fill_batch(&mut rng, &mut x2, &mut y2);
        (x1, y1, x2, y2)
    };
    let (x1, y1, x2, y2) = run(11);
    let again = run(11);
    assert_eq!((&x1, &y1, &x2, &y2), (&again.0, &again.1, &again.2, &again.3));
    assert_ne!(x1, x2, "second batch must draw new points");
    for (p, &t) in x1.chunks(2).zip(&y1) {
        assert_eq!(t, mandelbrot_periodic(p[0] as f64, p[1] as f64, 200) as f32);
    }
    let _ = y2;
}

#[test]
fn metrics_include_psnr() {
    let d = MandelbrotDataset::build(&spec(|_| {}), 1).unwrap();
    let m = d.metrics(&[0.5, 0.5], &[0.6, 0.4]);
    assert!((m.mse - 0.01).abs() < 1e-6);
    assert!((m.psnr.unwrap() - 20.0).abs() < 1e-4);
    assert!(m.mean_sq_dist.is_none());
}
