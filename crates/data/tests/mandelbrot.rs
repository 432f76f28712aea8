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

/// The cardioid-and-disc shortcut changes no target: every point it takes stays bounded (|z| <= 2) for 20,000
/// iterations, including points within 1e-6 of the cardioid's boundary (images of the unit disc's rim under
/// `mu / 2 - mu^2 / 4`), and it takes most of the set's area.
#[test]
fn points_the_shortcut_takes_never_escape() {
    let bounded = |cx: f64, cy: f64| {
        let (mut x, mut y) = (0.0f64, 0.0f64);
        for _ in 0..20_000 {
            (x, y) = (x * x - y * y + cx, 2.0 * x * y + cy);
            if x * x + y * y > 4.0 {
                return false;
            }
        }
        true
    };
    let mut rng = rand_pcg::Pcg64::seed_from_u64(5);
    let (mut taken, n) = (0, 4000);
    for _ in 0..n {
        let (cx, cy) = (-1.3 + 1.8 * rand::Rng::gen::<f64>(&mut rng), -0.8 + 1.6 * rand::Rng::gen::<f64>(&mut rng));
        if surely_inside(cx, cy) {
            taken += 1;
            assert!(bounded(cx, cy), "({cx}, {cy}) escapes");
            assert_eq!(mandelbrot_periodic(cx, cy, 200), periodic_by_iterating(cx, cy, 200));
        }
    }
    // The cardioid and the disc: 3 pi / 8 + pi / 16 = 1.374 of the box's 2.88.
    let share = taken as f64 / n as f64;
    assert!((share - 1.374 / 2.88).abs() < 0.03, "the shortcut took {share} of the box");
    let (mut near, mut escaping) = (0, 0);
    for k in 0..2000 {
        let t = std::f64::consts::TAU * k as f64 / 2000.0;
        let r = 1.0 - 1e-6;
        let (mx, my) = (r * t.cos(), r * t.sin());
        // mu / 2 - mu^2 / 4
        let (cx, cy) = (mx / 2.0 - (mx * mx - my * my) / 4.0, my / 2.0 - mx * my / 2.0);
        if surely_inside(cx, cy) {
            near += 1;
            assert!(bounded(cx, cy), "({cx}, {cy}) near the rim escapes");
        }
        // Just past the rim (r = 1 + 1e-3): most points escape there, and the shortcut takes none that does.
        let r = 1.0 + 1e-3;
        let (mx, my) = (r * t.cos(), r * t.sin());
        let (cx, cy) = (mx / 2.0 - (mx * mx - my * my) / 4.0, my / 2.0 - mx * my / 2.0);
        if !bounded(cx, cy) {
            escaping += 1;
            assert!(!surely_inside(cx, cy), "({cx}, {cy}) escapes, yet the shortcut takes it");
        }
    }
    assert!(near > 1900, "the shortcut took {near} of 2000 points within 1e-6 of the rim");
    assert!(escaping > 1000, "only {escaping} of 2000 points just past the rim escape");
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
