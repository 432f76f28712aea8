use approxlab_view::*;
use image::RgbImage;

/// A `w x h` image, all black except a white bar in column `x`.
fn bar_image(w: u32, h: u32, x: u32) -> Vec<f32> {
    (0..w * h).map(|i| if i % w == x { 1.0 } else { 0.0 }).collect()
}

fn is_red(p: [u8; 3]) -> bool {
    p[0] > 150 && p[1] < 90 && p[2] < 90
}

/// The pixels of `img` in the rectangle `(x0, y0)`..`(x0 + w, y0 + h)`.
fn region(img: &RgbImage, x0: u32, y0: u32, w: u32, h: u32) -> Vec<[u8; 3]> {
    let mut v = Vec::new();
    for y in y0..y0 + h {
        for x in x0..x0 + w {
            v.push(img.get_pixel(x, y).0);
        }
    }
    v
}

fn close(a: [u8; 3], b: [u8; 3], tol: i32) -> bool {
    a.iter().zip(b).all(|(&x, y)| (x as i32 - y as i32).abs() <= tol)
}

// ---------------------------------------------------------------- digit grid

#[test]
fn digit_grid_has_the_size_of_its_tiles() {
    let imgs: Vec<Vec<f32>> = (0..7).map(|i| bar_image(28, 28, i)).collect();
    let refs: Vec<&[f32]> = imgs.iter().map(|v| v.as_slice()).collect();
    let labels: Vec<usize> = (0..7).collect();
    let g = digit_grid(&refs, (28, 28), &labels, &labels, 3, 2).unwrap();
    // 3 columns of 28*2 + 2 borders, 3 rows (7 = 3 + 3 + 1) with a label strip each.
    let tw = 56 + 2 * DIGIT_BORDER;
    let th = 56 + 2 * DIGIT_BORDER + DIGIT_LABEL_HEIGHT;
    assert_eq!(g.dimensions(), (3 * tw + 4 * DIGIT_GAP, 3 * th + 4 * DIGIT_GAP));
    assert_eq!(g.dimensions(), digit_grid_size(7, (28, 28), 3, 2));

    // Non-square images, one full row, scale 1.
    let imgs: Vec<Vec<f32>> = (0..4).map(|i| bar_image(5, 3, i)).collect();
    let refs: Vec<&[f32]> = imgs.iter().map(|v| v.as_slice()).collect();
    let labels = [0, 1, 2, 3];
    let g = digit_grid(&refs, (5, 3), &labels, &labels, 4, 1).unwrap();
    let (tw, th) = (5 + 2 * DIGIT_BORDER, 3 + 2 * DIGIT_BORDER + DIGIT_LABEL_HEIGHT);
    assert_eq!(g.dimensions(), (4 * tw + 5 * DIGIT_GAP, th + 2 * DIGIT_GAP));
}

#[test]
fn digit_grid_scales_with_nearest_neighbour_and_clamps() {
    // 4x2 image: column 1 white (value above 1), the rest below 0.
    let img: Vec<f32> = (0..8).map(|i| if i % 4 == 1 { 3.0 } else { -2.0 }).collect();
    let scale = 5;
    let g = digit_grid(&[&img], (4, 2), &[0], &[0], 1, scale).unwrap();
    let (x0, y0) = (DIGIT_GAP + DIGIT_BORDER, DIGIT_GAP + DIGIT_BORDER);
    for y in 0..2 * scale {
        for x in 0..4 * scale {
            let want = if x / scale == 1 { [255, 255, 255] } else { [0, 0, 0] };
            assert_eq!(g.get_pixel(x0 + x, y0 + y).0, want, "pixel ({x}, {y})");
        }
    }
}

#[test]
fn digit_grid_marks_wrong_predictions_red() {
    let imgs = [bar_image(28, 28, 3), bar_image(28, 28, 20), bar_image(28, 28, 9)];
    let refs: Vec<&[f32]> = imgs.iter().map(|v| v.as_slice()).collect();
    // Sample 0 right, sample 1 wrong (predicted 1, truly 7), sample 2 right.
    let g = digit_grid(&refs, (28, 28), &[3, 1, 9], &[3, 7, 9], 3, 2).unwrap();
    let tw = 56 + 2 * DIGIT_BORDER;
    let th = 56 + 2 * DIGIT_BORDER + DIGIT_LABEL_HEIGHT;
    let tile = |i: u32| region(&g, DIGIT_GAP + i * (tw + DIGIT_GAP), DIGIT_GAP, tw, th);
    for i in [0, 2] {
        assert!(!tile(i).into_iter().any(is_red), "right prediction {i} has red pixels");
        assert!(tile(i).contains(&RIGHT_COLOR), "right prediction {i} has no green frame");
    }
    let wrong = tile(1);
    assert!(wrong.contains(&WRONG_COLOR), "wrong prediction has no red frame");
    // The label strip of the wrong one has red text ("1 (7)"), wider than a lone "1".
    let strip = |i: u32| region(&g, DIGIT_GAP + i * (tw + DIGIT_GAP), DIGIT_GAP + th - DIGIT_LABEL_HEIGHT, tw, 18);
    let red_cols =
        |px: Vec<[u8; 3]>| (0..tw as usize).filter(|&x| (0..18).any(|y| is_red(px[y * tw as usize + x]))).count();
    let wrong_text = red_cols(strip(1));
    assert!(wrong_text > 12, "wrong label spans {wrong_text} columns");
    // Nothing bleeds into the gaps between tiles.
    assert!(!region(&g, DIGIT_GAP + tw, 0, DIGIT_GAP, g.height()).into_iter().any(is_red));
}

#[test]
fn digit_grid_rejects_inconsistent_input() {
    let img = bar_image(28, 28, 0);
    assert!(digit_grid(&[&img], (28, 28), &[0, 1], &[0], 1, 1).is_err());
    assert!(digit_grid(&[&img], (27, 28), &[0], &[0], 1, 1).is_err());
    assert!(digit_grid(&[&img], (28, 28), &[0], &[0], 0, 1).is_err());
    assert!(digit_grid(&[&img], (28, 28), &[0], &[0], 1, 0).is_err());
    assert!(digit_grid(&[], (28, 28), &[], &[], 1, 1).is_err());
}

// ---------------------------------------------------------- confusion matrix

fn digits() -> Vec<String> {
    (0..10).map(|i| i.to_string()).collect()
}

#[test]
fn confusion_matrix_has_the_layout_size() {
    let cell = 36;
    let m = vec![vec![1u64; 10]; 10];
    let img = confusion_matrix_image(&m, &digits(), cell).unwrap();
    let layout = confusion_matrix_layout(&digits(), cell).unwrap();
    assert_eq!(img.dimensions(), layout.size);
    let (ox, oy) = layout.grid_origin;
    assert_eq!(layout.size, (ox + 10 * cell + CONFUSION_MARGIN, oy + 10 * cell + CONFUSION_MARGIN));
    // Room for the axis title and the one-digit names, but not much more.
    assert!((40..120).contains(&ox) && (40..120).contains(&oy), "grid origin {:?}", layout.grid_origin);
    assert!(!layout.vertical_column_labels);
    // Long names are written vertically above the columns and widen the left margin.
    let long: Vec<String> = ["airplane", "automobile", "bird"].iter().map(|s| s.to_string()).collect();
    let l = confusion_matrix_layout(&long, 30).unwrap();
    assert!(l.vertical_column_labels);
    assert!(l.grid_origin.0 > ox && l.grid_origin.1 > oy);
    let img = confusion_matrix_image(&vec![vec![2u64; 3]; 3], &long, 30).unwrap();
    assert_eq!(img.dimensions(), l.size);
}

#[test]
fn confusion_matrix_cells_use_the_colormap_ends() {
    let cell = 40;
    let n = 4;
    // Perfect on classes 0..3, no samples of class 3.
    let mut m = vec![vec![0u64; n]; n];
    for (i, row) in m.iter_mut().enumerate().take(3) {
        row[i] = 100 + i as u64;
    }
    let names: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
    let img = confusion_matrix_image(&m, &names, cell).unwrap();
    let (ox, oy) = confusion_matrix_layout(&names, cell).unwrap().grid_origin;
    let cell_px = |r: u32, c: u32| region(&img, ox + c * cell, oy + r * cell, cell, cell);
    let top = CONFUSION_COLORMAP.map(1.0);
    let bottom = CONFUSION_COLORMAP.map(0.0);
    assert_ne!(top, bottom);
    for i in 0..3 {
        let px = cell_px(i, i);
        assert!(px.contains(&top), "diagonal cell {i} lacks the top colour {top:?}");
        assert!(!px.contains(&bottom), "diagonal cell {i} has the bottom colour");
        // Dark count text on the bright top colour.
        assert!(px.iter().any(|&p| close(p, [0, 0, 0], 40)), "diagonal cell {i} has no dark text");
        let off = cell_px(i, (i + 1) % n as u32);
        assert!(off.contains(&bottom) && !off.contains(&top));
    }
    for c in 0..n as u32 {
        let px = cell_px(3, c);
        assert!(px.contains(&bottom), "empty row cell {c} lacks the bottom colour");
        assert!(!px.contains(&top), "empty row cell {c} has the top colour");
        // Light count text ("0") on the dark bottom colour.
        assert!(px.iter().any(|&p| close(p, [255, 255, 255], 40)), "empty row cell {c} has no light text");
    }
    // The margins right of and below the grid stay white.
    let (w, h) = img.dimensions();
    assert!(region(&img, w - CONFUSION_MARGIN, 0, CONFUSION_MARGIN, h).iter().all(|&p| p == [255, 255, 255]));
    assert!(region(&img, 0, h - CONFUSION_MARGIN, w, CONFUSION_MARGIN).iter().all(|&p| p == [255, 255, 255]));
}

#[test]
fn confusion_matrix_rejects_bad_input() {
    assert!(confusion_matrix_image(&[], &[], 30).is_err());
    assert!(confusion_matrix_image(&[vec![1, 2], vec![3]], &[], 30).is_err());
    assert!(confusion_matrix_image(&[vec![1, 2], vec![3, 4]], &digits(), 30).is_err());
    assert!(confusion_matrix_image(&[vec![1, 2], vec![3, 4]], &[], 0).is_err());
    // Empty names number the classes.
    assert!(confusion_matrix_image(&[vec![1, 2], vec![3, 4]], &[], 30).is_ok());
}

// ------------------------------------------------------------ metric curves

#[test]
fn metric_plot_decodes_and_draws_each_series() {
    let train =
        LossSeries { label: "train".into(), points: (1..=10).map(|e| (e as f64, 1.0 - 0.5 / e as f64)).collect() };
    let val = LossSeries { label: "val".into(), points: (1..=10).map(|e| (e as f64, 0.9 - 0.6 / e as f64)).collect() };
    let img = plot_metric_curves(&[train, val], "accuracy", "epoch", "accuracy", Some((0.0, 1.0)), 500, 320).unwrap();
    let dir = std::env::temp_dir().join(format!("approxlab-view-{}-classify", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("metric.png");
    write_png_atomic(&path, &img).unwrap();
    let back = image::open(&path).unwrap().to_rgb8();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(back.dimensions(), (500, 320));
    for i in 0..2 {
        let c = series_color(i);
        let n = back.pixels().filter(|p| p.0 == c).count();
        assert!(n > 50, "series {i} colour {c:?} on {n} pixels");
    }
    assert_eq!(series_color(0), series_color(10));

    // A single point still shows; nothing finite is an error; a bad range too.
    let one = LossSeries { label: "one".into(), points: vec![(1.0, 0.5)] };
    let img = plot_metric_curves(std::slice::from_ref(&one), "t", "epoch", "acc", None, 300, 200).unwrap();
    assert!(img.pixels().any(|p| p.0 == series_color(0)));
    let nan = LossSeries { label: "nan".into(), points: vec![(1.0, f64::NAN)] };
    assert!(plot_metric_curves(&[nan], "t", "epoch", "acc", None, 300, 200).is_err());
    assert!(plot_metric_curves(&[one], "t", "epoch", "acc", Some((1.0, 0.0)), 300, 200).is_err());
}

#[test]
fn metric_plot_cuts_lines_at_a_fixed_range() {
    // Values far above the range must not be drawn flat along the top edge.
    let wild = LossSeries { label: "wild".into(), points: (0..100).map(|i| (i as f64, 5.0)).collect() };
    let tame = LossSeries { label: "tame".into(), points: (0..100).map(|i| (i as f64, 0.5)).collect() };
    let img = plot_metric_curves(&[wild, tame], "t", "step", "acc", Some((0.0, 1.0)), 400, 300).unwrap();
    let count = |c: [u8; 3]| img.pixels().filter(|p| p.0 == c).count();
    // Only the legend sample of the wild series is drawn.
    assert!(count(series_color(0)) < 60, "{}", count(series_color(0)));
    assert!(count(series_color(1)) > 200, "{}", count(series_color(1)));
}

/// `cargo test -p approxlab-view --test classify -- --ignored` writes sample classifier
/// views to `$APPROXLAB_VIEW_GALLERY` (default: the system temp dir) to look at.
#[test]
#[ignore]
fn classify_gallery() {
    let dir = std::env::var_os("APPROXLAB_VIEW_GALLERY")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("approxlab-view-gallery"));
    std::fs::create_dir_all(&dir).unwrap();
    // Blobs of varying shape standing in for digits.
    let imgs: Vec<Vec<f32>> = (0..20)
        .map(|k| {
            (0..28 * 28)
                .map(|i| {
                    let (x, y) = ((i % 28) as f32 - 14.0, (i / 28) as f32 - 14.0);
                    let r = (x * x / (20.0 + k as f32 * 3.0) + y * y / 60.0).sqrt();
                    (1.5 - (r - 1.0).abs() * 3.0).clamp(0.0, 1.0)
                })
                .collect()
        })
        .collect();
    let refs: Vec<&[f32]> = imgs.iter().map(|v| v.as_slice()).collect();
    let truth: Vec<usize> = (0..20).map(|i| i % 10).collect();
    let pred: Vec<usize> = (0..20).map(|i| if i % 7 == 3 { (i + 4) % 10 } else { i % 10 }).collect();
    write_png_atomic(dir.join("digits.png"), &digit_grid(&refs, (28, 28), &pred, &truth, 10, 2).unwrap()).unwrap();
    write_png_atomic(dir.join("digits_s1.png"), &digit_grid(&refs, (28, 28), &pred, &truth, 5, 1).unwrap()).unwrap();
    let m: Vec<Vec<u64>> = (0..10)
        .map(|r| {
            (0..10).map(|c| if r == c { 900 + 10 * r as u64 } else { ((r * 7 + c * 3) % 11) as u64 * 4 }).collect()
        })
        .collect();
    write_png_atomic(dir.join("confusion.png"), &confusion_matrix_image(&m, &digits(), 44).unwrap()).unwrap();
    let long: Vec<String> = ["airplane", "automobile", "bird", "cat"].iter().map(|s| s.to_string()).collect();
    let m4: Vec<Vec<u64>> = (0..4).map(|r| (0..4).map(|c| if r == c { 50 } else { 5 * c as u64 }).collect()).collect();
    write_png_atomic(dir.join("confusion_long.png"), &confusion_matrix_image(&m4, &long, 30).unwrap()).unwrap();
    let train =
        LossSeries { label: "train".into(), points: (1..=12).map(|e| (e as f64, 1.0 - 0.5 / e as f64)).collect() };
    let val = LossSeries { label: "val".into(), points: (1..=12).map(|e| (e as f64, 0.92 - 0.6 / e as f64)).collect() };
    let img = plot_metric_curves(&[train, val], "accuracy", "epoch", "accuracy", Some((0.0, 1.0)), 640, 400).unwrap();
    write_png_atomic(dir.join("metrics.png"), &img).unwrap();
}
