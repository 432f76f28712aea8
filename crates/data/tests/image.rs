use approxlab_data::*;
use std::path::{Path, PathBuf};

fn gray_png(dir: &Path, w: u32, h: u32) -> PathBuf {
    let p = dir.join("gray.png");
    image::GrayImage::from_fn(w, h, |x, y| image::Luma([(x * 10 + y * 3) as u8])).save(&p).unwrap();
    p
}

fn rgb_png(dir: &Path, w: u32, h: u32, equal: bool) -> PathBuf {
    let p = dir.join(if equal { "rgb_equal.png" } else { "rgb.png" });
    image::RgbImage::from_fn(w, h, |x, y| {
        let v = (x * 10 + y) as u8;
        if equal {
            image::Rgb([v, v, v])
        } else {
            image::Rgb([v, 255 - v, (y * 20) as u8])
        }
    })
    .save(&p)
    .unwrap();
    p
}

fn load(spec: ImageSpec) -> ImageDataset {
    ImageDataset::load(&spec).unwrap()
}

#[test]
fn gray_png_every_pixel_is_a_sample() {
    let dir = tempfile::tempdir().unwrap();
    let d = load(ImageSpec::new(gray_png(dir.path(), 7, 5)));
    assert_eq!((d.width(), d.height(), d.channels()), (7, 5, 1));
    assert_eq!(d.kind(), Kind::Image { channels: 1 });
    assert_eq!(d.image_shape(), Some((5, 7)));
    assert_eq!(d.domain(), &[(0.0, 4.0), (0.0, 6.0)]);
    assert_eq!(d.len(), Some(35));
    let (x, y) = d.training_points().unwrap();
    for (p, &v) in x.chunks(2).zip(y) {
        let (r, c) = (p[0] as u32, p[1] as u32);
        assert_eq!(v, (c * 10 + r * 3) as f32 / 255.0);
    }
    assert_eq!(d.eval_set().len(2), 35);
}

#[test]
fn rgb_png_and_auto_color() {
    let dir = tempfile::tempdir().unwrap();
    let d = load(ImageSpec::new(rgb_png(dir.path(), 4, 3, false)));
    assert_eq!(d.channels(), 3);
    assert_eq!(d.output_dims(), 3);
    let (x, y) = d.training_points().unwrap();
    let k = x.chunks(2).position(|p| p == [2.0, 3.0]).unwrap();
    let v = (3 * 10 + 2) as f32;
    assert_eq!(&y[3 * k..3 * k + 3], &[v / 255.0, (255.0 - v) / 255.0, 40.0 / 255.0]);
    // RGB file whose channels are all equal: auto picks gray, rgb forces three channels.
    let p = rgb_png(dir.path(), 4, 3, true);
    assert_eq!(load(ImageSpec::new(&p)).channels(), 1);
    assert_eq!(load(ImageSpec { color: ColorMode::Rgb, ..ImageSpec::new(&p) }).channels(), 3);
    let p = rgb_png(dir.path(), 4, 3, false);
    assert_eq!(load(ImageSpec { color: ColorMode::Gray, ..ImageSpec::new(&p) }).channels(), 1);
}

#[test]
fn max_size_downscales_keeping_aspect() {
    let dir = tempfile::tempdir().unwrap();
    let p = gray_png(dir.path(), 20, 10);
    let d = load(ImageSpec { max_size: Some(8), ..ImageSpec::new(&p) });
    assert_eq!((d.width(), d.height()), (8, 4));
    assert_eq!(d.len(), Some(32));
    assert!(d.pixels().iter().all(|v| (0.0..=1.0).contains(v)));
    let d = load(ImageSpec { max_size: Some(100), ..ImageSpec::new(&p) });
    assert_eq!((d.width(), d.height()), (20, 10), "small images are not upscaled");
    let e = ImageDataset::load(&ImageSpec { max_size: Some(1), ..ImageSpec::new(&p) }).unwrap_err().to_string();
    assert!(e.contains("max_size: must be at least 2, got 1"), "{e}");
}

#[test]
fn holdout_split_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let p = gray_png(dir.path(), 7, 5);
    let d = load(ImageSpec { holdout: true, ..ImageSpec::new(&p) });
    // Rows 0, 2, 4 and columns 0, 2, 4, 6.
    assert_eq!(d.len(), Some(12));
    assert_eq!(d.eval_set().len(2), 35 - 12);
    let (x, _) = d.training_points().unwrap();
    assert!(x.chunks(2).all(|p| (p[0] as u32).is_multiple_of(2) && (p[1] as u32).is_multiple_of(2)));
    assert!(d.eval_set().inputs.chunks(2).all(|p| p[0] as u32 % 2 == 1 || p[1] as u32 % 2 == 1));
}

#[test]
fn truth_is_bilinear() {
    let dir = tempfile::tempdir().unwrap();
    let d = load(ImageSpec::new(gray_png(dir.path(), 7, 5)));
    let mut out = [0.0f32; 3];
    assert!(d.truth(&[1.0, 2.0, 1.5, 2.5, 100.0, -3.0], &mut out));
    assert!((out[0] - 23.0 / 255.0).abs() < 1e-6);
    // Values are linear in (row, col), so bilinear interpolation is exact.
    assert!((out[1] - (25.0 + 4.5) / 255.0).abs() < 1e-6);
    // Clamped to row 4, column 0.
    assert!((out[2] - 12.0 / 255.0).abs() < 1e-6);
}

#[test]
fn psnr_metric() {
    let dir = tempfile::tempdir().unwrap();
    let d = load(ImageSpec::new(gray_png(dir.path(), 3, 3)));
    let m = d.metrics(&[0.1, 0.2], &[0.1, 0.3]);
    assert!((m.mse - 0.005).abs() < 1e-8);
    assert!((m.psnr.unwrap() - 23.0103).abs() < 1e-3);
    assert_eq!(d.metrics(&[0.5], &[0.5]).psnr, Some(f64::INFINITY));
}

#[test]
fn missing_and_non_image_files_give_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("foo.png");
    let e = ImageDataset::load(&ImageSpec::new(&missing)).unwrap_err().to_string();
    assert_eq!(e, format!("image '{}': cannot read file: No such file or directory", missing.display()));
    let text = dir.path().join("notes.png");
    std::fs::write(&text, "this is not a picture\nsecond line\n").unwrap();
    let e = ImageDataset::load(&ImageSpec::new(&text)).unwrap_err().to_string();
    assert!(e.starts_with(&format!("image '{}': not a readable image: ", text.display())), "{e}");
    assert!(e.ends_with("expected a PNG or JPEG file") && !e.contains('\n'), "{e}");
    let noext = dir.path().join("notes");
    std::fs::write(&noext, "hello").unwrap();
    let e = ImageDataset::load(&ImageSpec::new(&noext)).unwrap_err().to_string();
    assert!(e.contains("not a readable image") && !e.contains('\n'), "{e}");
    let e = ImageDataset::load(&ImageSpec::new(dir.path())).unwrap_err().to_string();
    assert!(e.contains("is a directory"), "{e}");
    let tiny = dir.path().join("tiny.png");
    image::GrayImage::new(1, 4).save(&tiny).unwrap();
    let e = ImageDataset::load(&ImageSpec::new(&tiny)).unwrap_err().to_string();
    assert!(e.contains("1x4") && e.contains("at least 2x2"), "{e}");
}

#[test]
fn camera_png_if_present() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/images/camera.png");
    if !p.exists() {
        println!("skipping: {} not found", p.display());
        return;
    }
    let d = load(ImageSpec { max_size: Some(128), ..ImageSpec::new(&p) });
    assert_eq!(d.channels(), 1, "the cameraman is gray");
    assert_eq!(d.width().max(d.height()), 128);
    let ev = d.eval_set();
    let mean = ev.targets.iter().map(|&v| v as f64).sum::<f64>() / ev.targets.len() as f64;
    assert!(mean > 0.1 && mean < 0.9, "{mean}");
}
