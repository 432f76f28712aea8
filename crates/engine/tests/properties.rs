//! Arbitrary text never panics the parsers of the model's parts (the CLI forms of encodings, networks, heads,
//! losses, optimizers, schedules, precisions).

use approxlab_engine::encoding::EncodingConfig;
use approxlab_engine::head::Head;
use approxlab_engine::loss::Loss;
use approxlab_engine::network::NetworkConfig;
use approxlab_engine::optimizer::OptimizerConfig;
use approxlab_engine::precision::PrecisionSetting;
use approxlab_engine::schedule::Schedule;
use proptest::prelude::*;

/// Part names with argument lists of random pieces: close enough to be parsed past the name.
fn spec() -> impl Strategy<Value = String> {
    let name = prop::sample::select(vec![
        "fourier",
        "taylor",
        "gaussian",
        "hashgrid",
        "positional",
        "fourier-series",
        "identity",
        "mlp",
        "skip",
        "siren",
        "linear",
        "step",
        "exp",
        "cosine",
        "huber",
        "adamw",
        "sgd",
        "adam",
        "leaky_relu",
    ]);
    let arg = prop::sample::select(vec![
        "0",
        "1",
        "-1",
        "16",
        "4x256",
        "0x0",
        "x",
        "1e30",
        "nan",
        "inf",
        "18446744073709551616",
        "2x",
        "relu",
        "gelu",
        "sine(3)",
        "leaky_relu(0.1",
        "",
        "0.5",
    ]);
    (name, prop::collection::vec(arg, 0..5))
        .prop_map(|(n, args)| std::iter::once(n).chain(args).collect::<Vec<_>>().join(":"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn part_forms_parse_or_are_refused(text in prop_oneof![spec(), "\\PC{0,40}"]) {
        let _ = EncodingConfig::parse(&text);
        let _ = NetworkConfig::parse(&text).map(|n| n.validate());
        let _ = Head::parse(&text);
        let _ = Loss::parse(&text);
        let _ = OptimizerConfig::parse(&text);
        let _ = Schedule::parse(&text);
        let _ = text.parse::<PrecisionSetting>();
    }
}
