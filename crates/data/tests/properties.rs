//! Arbitrary input never panics the loaders: IDX files (MNIST), CSV tables and curves, and data specs.

use approxlab_data::{read_idx, DataSpec, TableSpec};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_bytes_are_an_idx_file_or_an_error(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = read_idx(&bytes);
    }

    #[test]
    fn idx_headers_with_any_dimensions_are_checked_against_the_data(
        kind in prop::sample::select(vec![0x08u8, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x42]),
        dims in prop::collection::vec(any::<u32>(), 0..5),
        body in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut bytes = vec![0, 0, kind, dims.len() as u8];
        for d in &dims {
            bytes.extend(d.to_be_bytes());
        }
        bytes.extend(body);
        let _ = read_idx(&bytes);
    }

    #[test]
    fn any_csv_text_loads_as_a_table_or_an_error(text in "[0-9a-zA-Z,.;\\n\\r\\t \"-]{0,300}", seed in any::<u64>()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, &text).unwrap();
        let _ = approxlab_data::TableDataset::load(&TableSpec::new(&path), seed);
        let _ = DataSpec::parse(&format!("curve:csv:{}", path.display())).map(|s| s.build(seed));
    }

    #[test]
    fn any_data_spec_parses_or_is_refused(text in "\\PC{0,60}") {
        let _ = DataSpec::parse(&text);
    }
}
