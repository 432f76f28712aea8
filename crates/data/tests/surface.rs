use approxlab_data::*;
use std::f64::consts::{PI, TAU};

fn build(spec: SurfaceSpec) -> SurfaceDataset {
    SurfaceDataset::build(&spec, 5).unwrap()
}

#[test]
fn sphere_points_have_radius_three() {
    let d = build(SurfaceSpec::shape(SurfaceShape::Sphere));
    assert_eq!(d.len(), Some(1000));
    assert_eq!(d.kind(), Kind::Surface);
    assert_eq!((d.input_dims(), d.output_dims()), (2, 3));
    let (uv, xyz) = d.training_points().unwrap();
    for (p, q) in uv.chunks(2).zip(xyz.chunks(3)) {
        let r = (q[0] as f64).hypot(q[1] as f64).hypot(q[2] as f64);
        assert!((r - 3.0).abs() < 1e-5, "radius {r}");
        assert!(p[0].abs() as f64 <= PI / 2.0 + 1e-6 && p[1] >= 0.0 && p[1] as f64 <= TAU + 1e-6);
    }
}

#[test]
fn sphere_sampling_is_uniform_by_area() {
    let d = build(SurfaceSpec { samples: Some(20_000), ..SurfaceSpec::shape(SurfaceShape::Sphere) });
    let (uv, _) = d.training_points().unwrap();
    let n = uv.len() / 2;
    let band = uv.chunks(2).filter(|p| (p[0] as f64).sin().abs() < 0.5).count() as f64 / n as f64;
    // Area-uniform: 1/2. Uniform in u would give 1/3.
    assert!((band - 0.5).abs() < 0.02, "fraction {band}");
    let north = uv.chunks(2).filter(|p| p[0] > 0.0).count() as f64 / n as f64;
    assert!((north - 0.5).abs() < 0.02, "north fraction {north}");
}

#[test]
fn shell_formula_at_hand_computed_points() {
    // u = 0: e^0 = 1. v = 0: x = d + a = 4.75, y = 0, z = b sin 0 + h = -1.
    let p = SurfaceShape::Shell.point(0.0, 0.0);
    assert!((p[0] - 4.75).abs() < 1e-12 && p[1].abs() < 1e-12 && (p[2] + 1.0).abs() < 1e-12, "{p:?}");
    // v = pi/2: x = 3.5, z = 1.25 - 1 = 0.25.
    let p = SurfaceShape::Shell.point(0.0, PI / 2.0);
    assert!((p[0] - 3.5).abs() < 1e-12 && p[1].abs() < 1e-12 && (p[2] - 0.25).abs() < 1e-12, "{p:?}");
    // u = -pi/2 (c u = -pi/2), v = pi: g = e^(-0.17 pi/2) = 0.765646..., ring = 2.25,
    // x = 0, y = -2.25 g = -1.722703..., z = -1.
    let g = (-0.17 * PI / 2.0).exp();
    assert!((g - 0.765_646_0).abs() < 1e-6);
    assert!((SurfaceShape::Shell.point(-PI / 2.0, PI)[1] + 1.722_703_5).abs() < 1e-6);
    let p = SurfaceShape::Shell.point(-PI / 2.0, PI);
    assert!(p[0].abs() < 1e-12 && (p[1] + 2.25 * g).abs() < 1e-12 && (p[2] + 1.0).abs() < 1e-12, "{p:?}");
}

#[test]
fn shell_samples_stay_in_domain_and_favour_the_mouth() {
    let d = build(SurfaceSpec::shape(SurfaceShape::Shell));
    assert_eq!(d.len(), Some(3000));
    assert_eq!(d.domain()[0], (-25.0, 0.0));
    let (uv, xyz) = d.training_points().unwrap();
    let mut truth = vec![0.0; xyz.len()];
    assert!(d.truth(uv, &mut truth));
    for (a, b) in truth.iter().zip(xyz) {
        assert!((a - b).abs() < 1e-5);
    }
    assert!(uv.chunks(2).all(|p| (-25.0..=0.0).contains(&p[0]) && p[1].abs() as f64 <= TAU + 1e-6));
    // Exponential with scale 7: P(u > -7) = 1 - 1/e = 0.632.
    let near = uv.chunks(2).filter(|p| p[0] > -7.0).count() as f64 / 3000.0;
    assert!((near - 0.632).abs() < 0.04, "{near}");
}

#[test]
fn torus_points_lie_on_the_torus() {
    let d = build(SurfaceSpec::shape(SurfaceShape::Torus));
    let (_, xyz) = d.training_points().unwrap();
    for q in xyz.chunks(3) {
        let rho = (q[0] as f64).hypot(q[1] as f64);
        let e = (rho - 2.0).powi(2) + (q[2] as f64).powi(2) - 0.64;
        assert!(e.abs() < 1e-5, "{e}");
    }
    // Area-uniform: more points on the outside (rho > 2) than inside, ratio about (2+0.8*2/pi) / (2-0.8*2/pi).
    let outer = xyz.chunks(3).filter(|q| (q[0] as f64).hypot(q[1] as f64) > 2.0).count();
    assert!(outer > 550 && outer < 700, "{outer}");
}

#[test]
fn user_expression_surface() {
    let spec = SurfaceSpec {
        x: Some("cos(u)".into()),
        y: Some("sin(u)".into()),
        z: Some("v/2".into()),
        u: Some([0.0, 6.0]),
        v: Some([-1.0, 1.0]),
        samples: Some(50),
        ..SurfaceSpec::default()
    };
    let d = build(spec);
    assert_eq!(d.domain(), &[(0.0, 6.0), (-1.0, 1.0)]);
    let (uv, xyz) = d.training_points().unwrap();
    for (p, q) in uv.chunks(2).zip(xyz.chunks(3)) {
        let (u, v) = (p[0] as f64, p[1] as f64);
        assert!((q[0] as f64 - u.cos()).abs() < 1e-6);
        assert!((q[1] as f64 - u.sin()).abs() < 1e-6);
        assert!((q[2] as f64 - v / 2.0).abs() < 1e-6);
    }
}

#[test]
fn surface_errors() {
    let e = SurfaceDataset::build(&SurfaceSpec { x: Some("u".into()), ..SurfaceSpec::default() }, 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing 'y'"), "{e}");
    let spec =
        SurfaceSpec { x: Some("u+w".into()), y: Some("v".into()), z: Some("1".into()), ..SurfaceSpec::default() };
    let e = SurfaceDataset::build(&spec, 1).unwrap_err().to_string();
    assert!(e.starts_with("surface x 'u+w': could not parse expression: unknown variable 'w'"), "{e}");
    assert!(!e.contains('\n'));
    let spec = SurfaceSpec { radius: Some(1.0), ..SurfaceSpec::shape(SurfaceShape::Torus) };
    assert!(SurfaceDataset::build(&spec, 1).unwrap_err().to_string().contains("radius"));
    let spec = SurfaceSpec { minor_radius: Some(3.0), ..SurfaceSpec::shape(SurfaceShape::Torus) };
    assert!(SurfaceDataset::build(&spec, 1).unwrap_err().to_string().contains("must be less than major_radius"));
    let spec = SurfaceSpec { samples: Some(0), ..SurfaceSpec::shape(SurfaceShape::Sphere) };
    assert!(SurfaceDataset::build(&spec, 1).is_err());
    let spec = SurfaceSpec {
        x: Some("ln(u)".into()),
        y: Some("v".into()),
        z: Some("u".into()),
        u: Some([-1.0, 1.0]),
        ..SurfaceSpec::default()
    };
    let e = SurfaceDataset::build(&spec, 1).unwrap_err().to_string();
    assert!(e.contains("not finite"), "{e}");
}

#[test]
fn mean_squared_distance_metric() {
    let d = build(SurfaceSpec::shape(SurfaceShape::Sphere));
    // Two points, errors (1, 2, 2) and (0, 0, 0): squared distances 9 and 0.
    let m = d.metrics(&[1.0, 2.0, 2.0, 0.0, 0.0, 0.0], &[0.0; 6]);
    assert!((m.mean_sq_dist.unwrap() - 4.5).abs() < 1e-12);
    assert!((m.mse - 1.5).abs() < 1e-12);
    assert!(m.psnr.is_none());
}
