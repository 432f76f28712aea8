use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use approxlab_data::*;
use rand::SeedableRng;

const ROWS: usize = 3;
const COLS: usize = 5;
const PIXELS: usize = ROWS * COLS;

/// An IDX file: big-endian magic, dims, then the bytes.
fn idx_bytes(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = magic.to_be_bytes().to_vec();
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn pixel(image: usize, p: usize) -> u8 {
    ((image * 7 + p * 13) % 256) as u8
}

fn images(n: usize, rows: usize, cols: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..n).flat_map(|i| (0..rows * cols).map(move |p| pixel(i, p))).collect();
    idx_bytes(0x803, &[n as u32, rows as u32, cols as u32], &data)
}

fn labels(n: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    idx_bytes(0x801, &[n as u32], &data)
}

/// Writes the four files (30 training, 12 test images of 3x5); `gz` gzips them.
fn write_set(dir: &Path, gz: bool) {
    let files = [images(30, ROWS, COLS), labels(30), images(12, ROWS, COLS), labels(12)];
    for (name, bytes) in MNIST_FILES.iter().zip(files) {
        write_file(dir, name, &bytes, gz);
    }
}

fn write_file(dir: &Path, name: &str, bytes: &[u8], gz: bool) {
    let (name, bytes) = if gz { (format!("{name}.gz"), gzip(bytes)) } else { (name.to_string(), bytes.to_vec()) };
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn spec(dir: &Path, validation: usize) -> MnistSpec {
    MnistSpec { validation: Some(validation), ..MnistSpec::new(dir) }
}

fn argmax_rows(targets: &[f32]) -> Vec<usize> {
    targets.chunks(10).map(argmax).collect()
}

#[test]
fn idx_parser_reads_dims_and_data() {
    let bytes = images(4, ROWS, COLS);
    let idx = read_idx(&bytes).unwrap();
    assert_eq!(idx.dims, vec![4, 3, 5]);
    assert_eq!(idx.data.len(), 4 * PIXELS);
    assert_eq!(idx.data[PIXELS + 2], pixel(1, 2));
    let idx = read_idx(&labels(7)).unwrap();
    assert_eq!(idx.dims, vec![7]);
    assert_eq!(idx.data, vec![0, 1, 2, 3, 4, 5, 6]);
    // Any number of dimensions of unsigned bytes.
    let idx = read_idx(&idx_bytes(0x802, &[2, 3], &[1, 2, 3, 4, 5, 6])).unwrap();
    assert_eq!((idx.dims, idx.data), (vec![2, 3], vec![1, 2, 3, 4, 5, 6]));
    // Zero images is a valid (empty) file.
    assert_eq!(read_idx(&images(0, 28, 28)).unwrap().dims, vec![0, 28, 28]);
}

#[test]
fn idx_parser_errors() {
    let e = read_idx(&[0, 0]).unwrap_err();
    assert_eq!(e, IdxError::TooShort { len: 2, needed: 4 });
    assert!(e.to_string().contains("2 bytes"), "{e}");
    // Header cut inside the dims.
    let e = read_idx(&[0, 0, 8, 3, 0, 0, 0, 1]).unwrap_err();
    assert_eq!(e, IdxError::TooShort { len: 8, needed: 16 });
    // Not unsigned bytes (0x0D is float), garbage, zero dimensions.
    for magic in [0x0000_0D03u32, 0x1f8b_0800, 0x0000_0800, 0x0100_0803] {
        let e = read_idx(&idx_bytes(magic, &[1], &[0])).unwrap_err();
        assert!(matches!(e, IdxError::Magic { found, .. } if found == magic), "{e:?}");
        let s = e.to_string();
        assert!(s.contains(&format!("0x{magic:08x}")) && s.contains("0x00000803"), "{s}");
    }
    // Truncated: expected vs actual.
    let mut bytes = images(4, ROWS, COLS);
    bytes.truncate(bytes.len() - 5);
    let e = read_idx(&bytes).unwrap_err();
    assert_eq!(e, IdxError::Truncated { dims: "4x3x5".into(), expected: 60, actual: 55 });
    let s = e.to_string();
    assert!(s.contains("truncated") && s.contains("60") && s.contains("55") && s.contains("4x3x5"), "{s}");
    // Extra bytes after the data.
    let mut bytes = labels(3);
    bytes.push(9);
    assert_eq!(read_idx(&bytes).unwrap_err(), IdxError::Trailing { dims: "3".into(), expected: 3, extra: 1 });
    // Dimensions whose product overflows.
    let e = read_idx(&idx_bytes(0x804, &[u32::MAX; 4], &[])).unwrap_err();
    assert!(matches!(e, IdxError::Overflow { .. }), "{e:?}");
}

#[test]
fn mnist_spec_parse_and_toml() {
    assert_eq!(DataSpec::parse("mnist:data/mnist").unwrap(), DataSpec::Mnist(MnistSpec::new("data/mnist")));
    assert_eq!(DataSpec::parse(" mnist: /a b/c ").unwrap(), DataSpec::Mnist(MnistSpec::new("/a b/c")));
    for bad in ["mnist", "mnist:", "mnist: "] {
        let e = DataSpec::parse(bad).unwrap_err().to_string();
        assert!(e.contains("mnist:DIR"), "{bad}: {e}");
    }
    let s: DataSpec = toml::from_str(
        "kind = \"mnist\"\ndir = \"m\"\nnormalize = \"standard\"\nvalidation = 0\nlimit = 100\ntest_limit = 50\n",
    )
    .unwrap();
    assert_eq!(
        s,
        DataSpec::Mnist(MnistSpec {
            dir: "m".into(),
            normalize: MnistNormalize::Standard,
            validation: Some(0),
            limit: Some(100),
            test_limit: Some(50),
        })
    );
    let s: DataSpec = toml::from_str("kind = \"mnist\"\ndir = \"m\"\n").unwrap();
    assert_eq!(s, DataSpec::Mnist(MnistSpec::new("m")));
    assert_eq!(toml::from_str::<DataSpec>(&toml::to_string(&s).unwrap()).unwrap(), s);
    let e = toml::from_str::<DataSpec>("kind = \"mnist\"\ndir = \"m\"\nvalidaton = 3\n").unwrap_err().to_string();
    assert!(e.contains("validaton"), "{e}");
    assert!(toml::from_str::<DataSpec>("kind = \"mnist\"\ndir = \"m\"\nnormalize = \"zscore\"\n").is_err());
    assert!(toml::from_str::<DataSpec>("kind = \"mnist\"\n").is_err(), "dir is required");
}

#[test]
fn mnist_builds_from_generated_files() {
    for gz in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        write_set(tmp.path(), gz);
        let d = DataSpec::Mnist(spec(tmp.path(), 6)).build(1).unwrap();
        assert_eq!((d.input_dims(), d.output_dims()), (PIXELS, 10));
        assert_eq!(d.kind(), Kind::Classification { classes: 10 });
        assert_eq!(d.classes(), Some(10));
        assert_eq!(d.class_names().unwrap(), (0..10).map(|c| c.to_string()).collect::<Vec<_>>());
        assert_eq!(d.domain(), vec![(0.0, 1.0); PIXELS].as_slice());
        assert_eq!(d.len(), Some(24));
        assert!(!d.truth(&[0.0; PIXELS], &mut [0.0; 10]));

        // Training split: the first 24 images, unit normalisation, one-hot labels.
        let (x, y) = d.training_points().unwrap();
        assert_eq!((x.len(), y.len()), (24 * PIXELS, 24 * 10));
        for i in 0..24 {
            for p in 0..PIXELS {
                assert_eq!(x[i * PIXELS + p], pixel(i, p) as f32 / 255.0);
            }
            let row = &y[i * 10..(i + 1) * 10];
            assert_eq!(row.iter().sum::<f32>(), 1.0);
            assert!(row.iter().all(|&v| v == 0.0 || v == 1.0));
            assert_eq!(row[i % 10], 1.0);
        }
        // Validation: the last 6 training images, in order.
        let ev = d.eval_set();
        assert_eq!(ev.len(PIXELS), 6);
        assert_eq!(ev.inputs[0], pixel(24, 0) as f32 / 255.0);
        assert_eq!(argmax_rows(&ev.targets), vec![4, 5, 6, 7, 8, 9]);
        // Test set: all 12 test images.
        let test = d.test_set().unwrap();
        assert_eq!(test.len(PIXELS), 12);
        assert_eq!(argmax_rows(&test.targets), (0..12).map(|i| i % 10).collect::<Vec<_>>());
        assert_eq!(test.inputs[PIXELS + 1], pixel(1, 1) as f32 / 255.0);
        // Metrics of classification data carry the accuracy.
        let m = d.metrics(&ev.targets, &ev.targets);
        assert_eq!((m.mse, m.accuracy), (0.0, Some(1.0)));
    }
}

#[test]
fn mnist_options() {
    let tmp = tempfile::tempdir().unwrap();
    write_set(tmp.path(), true);
    let load = |s: MnistSpec| MnistDataset::load(&s).unwrap();

    // limit caps the training split; the validation split stays the end of the file.
    let d = load(MnistSpec { limit: Some(10), test_limit: Some(5), ..spec(tmp.path(), 6) });
    assert_eq!(d.len(), Some(10));
    assert_eq!(d.train_labels(), &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert_eq!(d.validation_labels(), &[4, 5, 6, 7, 8, 9]);
    assert_eq!(d.test_labels().len(), 5);
    assert_eq!(d.test_set().unwrap().len(PIXELS), 5);
    // A limit above what is there takes all.
    assert_eq!(load(MnistSpec { limit: Some(1000), ..spec(tmp.path(), 6) }).len(), Some(24));

    // validation = 0: all training images train, the eval set is the test set.
    let d = load(spec(tmp.path(), 0));
    assert_eq!(d.len(), Some(30));
    assert_eq!(d.validation_points().0.len(), 0);
    assert_eq!(d.eval_set().inputs, d.test_set().unwrap().inputs);
    assert_eq!(d.image_dims(), (ROWS, COLS));

    // Standard normalisation with the fixed constants; the domain is the image of [0, 1].
    let d = load(MnistSpec { normalize: MnistNormalize::Standard, ..spec(tmp.path(), 6) });
    let (x, _) = d.training_points().unwrap();
    let want = |v: u8| ((v as f64 / 255.0 - MNIST_MEAN) / MNIST_STD) as f32;
    assert_eq!(x[3], want(pixel(0, 3)));
    assert_eq!(x[PIXELS + 7], want(pixel(1, 7)));
    let (lo, hi) = d.domain()[0];
    assert!((lo + 0.1307 / 0.3081).abs() < 1e-12 && (hi - 0.8693 / 0.3081).abs() < 1e-12, "{lo} {hi}");
    assert!(x.iter().all(|&v| v as f64 >= lo - 1e-6 && v as f64 <= hi + 1e-6));

    // Defaults: 5000 validation images do not fit in 30.
    let e = MnistDataset::load(&MnistSpec::new(tmp.path())).unwrap_err().to_string();
    assert!(e.contains("validation") && e.contains("5000") && e.contains("30"), "{e}");
    let e = MnistDataset::load(&MnistSpec { limit: Some(0), ..spec(tmp.path(), 6) }).unwrap_err().to_string();
    assert!(e.contains("limit") && e.contains("at least 1"), "{e}");
}

#[test]
fn mnist_fill_batch_samples_the_training_split() {
    let tmp = tempfile::tempdir().unwrap();
    write_set(tmp.path(), false);
    let d = MnistDataset::load(&spec(tmp.path(), 6)).unwrap();
    let mut rng = rand_pcg::Pcg64::seed_from_u64(5);
    let (mut x, mut y) = (vec![f32::NAN; 64 * PIXELS], vec![f32::NAN; 64 * 10]);
    d.fill_batch(&mut rng, &mut x, &mut y);
    let (tx, ty) = d.training_points().unwrap();
    let mut seen = std::collections::HashSet::new();
    for (bx, by) in x.chunks(PIXELS).zip(y.chunks(10)) {
        let k = tx.chunks(PIXELS).position(|r| r == bx).expect("batch row from the training split");
        assert_eq!(&ty[k * 10..(k + 1) * 10], by);
        seen.insert(k);
    }
    assert!(seen.len() > 10, "sampling looks stuck: {seen:?}");
}

/// Every file error names the file and what was expected.
#[test]
fn mnist_file_errors() {
    let fail = |dir: &Path| -> String {
        let e = MnistDataset::load(&spec(dir, 6)).unwrap_err().to_string();
        assert!(!e.contains('\n'), "{e}");
        e
    };
    let fresh = |gz: bool| {
        let tmp = tempfile::tempdir().unwrap();
        write_set(tmp.path(), gz);
        tmp
    };

    // Missing file: both names tried.
    let tmp = fresh(true);
    std::fs::remove_file(tmp.path().join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let e = fail(tmp.path());
    assert!(
        e.contains("t10k-labels-idx1-ubyte ") && e.contains("t10k-labels-idx1-ubyte.gz") && e.contains("not found"),
        "{e}"
    );
    let e = fail(&tmp.path().join("nowhere"));
    assert!(e.contains("directory not found") && e.contains("nowhere"), "{e}");

    // Wrong magic: a label file where images belong.
    let tmp = fresh(false);
    write_file(tmp.path(), MNIST_FILES[0], &labels(30), false);
    let e = fail(tmp.path());
    assert!(
        e.contains("train-images-idx3-ubyte") && e.contains("0x00000801") && e.contains("expected 0x00000803"),
        "{e}"
    );
    let tmp = fresh(false);
    write_file(tmp.path(), MNIST_FILES[3], &images(12, ROWS, COLS), false);
    let e = fail(tmp.path());
    assert!(e.contains("t10k-labels") && e.contains("0x00000803") && e.contains("expected 0x00000801"), "{e}");

    // Truncated (inside a gzip file).
    let tmp = fresh(true);
    let mut bytes = images(12, ROWS, COLS);
    bytes.truncate(bytes.len() - 1);
    write_file(tmp.path(), MNIST_FILES[2], &bytes, true);
    let e = fail(tmp.path());
    assert!(e.contains("t10k-images-idx3-ubyte.gz") && e.contains("180") && e.contains("179"), "{e}");

    // Broken gzip.
    let tmp = fresh(true);
    let mut gz = gzip(&labels(30));
    gz.truncate(gz.len() / 2);
    std::fs::write(tmp.path().join("train-labels-idx1-ubyte.gz"), gz).unwrap();
    let e = fail(tmp.path());
    assert!(e.contains("train-labels-idx1-ubyte.gz") && e.contains("gzip"), "{e}");

    // Image and label counts disagree.
    let tmp = fresh(false);
    write_file(tmp.path(), MNIST_FILES[1], &labels(29), false);
    let e = fail(tmp.path());
    assert!(e.contains("30 images") && e.contains("29 labels") && e.contains("train-labels-idx1-ubyte"), "{e}");

    // Label above 9.
    let tmp = fresh(false);
    let mut bytes = labels(12);
    let k = bytes.len() - 3;
    bytes[k] = 12;
    write_file(tmp.path(), MNIST_FILES[3], &bytes, false);
    let e = fail(tmp.path());
    assert!(e.contains("t10k-labels-idx1-ubyte") && e.contains("label 12 at index 9") && e.contains("0 to 9"), "{e}");

    // Other image sizes are fine as long as training and test agree.
    let tmp = fresh(false);
    write_file(tmp.path(), MNIST_FILES[0], &images(30, 4, 4), false);
    write_file(tmp.path(), MNIST_FILES[2], &images(12, 4, 4), false);
    let d = MnistDataset::load(&spec(tmp.path(), 6)).unwrap();
    assert_eq!((d.input_dims(), d.image_dims()), (16, (4, 4)));
    write_file(tmp.path(), MNIST_FILES[2], &images(12, 5, 3), false);
    let e = fail(tmp.path());
    assert!(e.contains("5x3") && e.contains("4x4"), "{e}");
}

fn real_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/mnist")
}

#[test]
fn real_mnist_when_present() {
    let dir = real_dir();
    if !dir.is_dir() {
        println!("skipping: no MNIST files at {}", dir.display());
        return;
    }
    let t = Instant::now();
    let d = MnistDataset::load(&MnistSpec { validation: Some(0), ..MnistSpec::new(&dir) }).unwrap();
    println!("loaded all of MNIST from {} in {:.3} s", dir.display(), t.elapsed().as_secs_f64());
    assert_eq!((d.input_dims(), d.output_dims(), d.image_dims()), (784, 10, (28, 28)));
    assert_eq!(d.len(), Some(60_000));
    assert_eq!(d.test_set().unwrap().len(784), 10_000);
    let count = |labels: &[u8], c: u8| labels.iter().filter(|&&l| l == c).count();
    assert_eq!(d.train_labels()[0], 5);
    assert_eq!((count(d.train_labels(), 0), count(d.train_labels(), 1)), (5923, 6742));
    assert_eq!(count(d.test_labels(), 0), 980);
    // One-hot targets agree with the labels.
    let (x, y) = d.training_points().unwrap();
    assert_eq!(argmax_rows(&y[..1000]), d.train_labels()[..100].iter().map(|&l| l as usize).collect::<Vec<_>>());
    assert_eq!(y.iter().sum::<f32>(), 60_000.0);
    // Pixel statistics behind the standard normalisation constants.
    let mean = x.iter().map(|&v| v as f64).sum::<f64>() / x.len() as f64;
    let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / x.len() as f64;
    assert!((mean - MNIST_MEAN).abs() < 1e-3 && (var.sqrt() - MNIST_STD).abs() < 1e-3, "{mean} {}", var.sqrt());
    assert!(x.iter().all(|&v| (0.0..=1.0).contains(&v)));

    // The default spec through the CLI form: 55,000 train / 5,000 validation.
    let t = Instant::now();
    let d = DataSpec::parse(&format!("mnist:{}", dir.display())).unwrap().build(0).unwrap();
    println!("mnist:DIR built in {:.3} s: {}", t.elapsed().as_secs_f64(), d.name());
    assert_eq!(d.len(), Some(55_000));
    assert_eq!(d.eval_set().len(784), 5000);
}
