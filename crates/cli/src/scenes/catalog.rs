//! The scenes of the video, in its order: what each shows, in our words, and how approxlab replays it. Each scene
//! is a single run or a comparison of the example configs under `examples/`, with a quick budget (the whole report
//! in a few minutes on 2 cores) and a full one (the README's figures).

/// How a scene is trained: `Steps` or `Time` (a wall-clock duration such as "20s").
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SceneBudget {
    Steps(u64),
    Time(&'static str),
    /// Nothing is trained.
    None,
}

impl SceneBudget {
    pub fn describe(&self, models: usize) -> String {
        let each = if models > 1 { " per model" } else { "" };
        match self {
            SceneBudget::Steps(n) => format!("{n} steps{each}"),
            SceneBudget::Time(t) => format!("{t}{each}"),
            SceneBudget::None => "nothing to train".into(),
        }
    }
}

/// One model of a scene: its label and its config's text.
pub type Model = (&'static str, &'static str);

#[derive(Clone, Copy, Debug)]
pub enum Work {
    /// One run; `zoom` is a window `[x0, x1, y0, y1]` rendered beside the truth afterwards.
    Train { model: Model, zoom: Option<[f64; 4]> },
    /// Models trained side by side on the first one's data with the same budget, optionally sized to about
    /// `match_params` parameters.
    Compare { models: &'static [Model], match_params: Option<usize> },
    /// The 2-D Fourier series' term count against order and dimension: nothing to train.
    TermCounts,
    /// The Mandelbrot challenge's champion under the protocol.
    Challenge,
}

#[derive(Clone, Copy, Debug)]
pub struct Scene {
    pub name: &'static str,
    pub title: &'static str,
    /// What the video shows and claims, in our words.
    pub claim: &'static str,
    pub work: Work,
    pub quick: SceneBudget,
    pub full: SceneBudget,
    /// Measured seconds for the whole scene (training, pictures, video) on 2 cores (AMD EPYC Zen 4).
    pub quick_s: u32,
    pub full_s: u32,
    /// A figure published elsewhere (README, docs) that the full budget reproduces.
    pub reference: Option<&'static str>,
}

impl Scene {
    pub fn needs_mnist(&self) -> bool {
        self.models().iter().any(|(_, text)| text.contains("kind = \"mnist\""))
    }

    pub fn models(&self) -> Vec<Model> {
        match self.work {
            Work::Train { model, .. } => vec![model],
            Work::Compare { models, .. } => models.to_vec(),
            Work::TermCounts | Work::Challenge => vec![],
        }
    }

    pub fn budget(&self, quick: bool) -> SceneBudget {
        if quick {
            self.quick
        } else {
            self.full
        }
    }

    pub fn expected_s(&self, quick: bool) -> u32 {
        if quick {
            self.quick_s
        } else {
            self.full_s
        }
    }
}

macro_rules! example {
    ($label:literal, $file:literal) => {
        ($label, include_str!(concat!("../../../../examples/", $file)))
    };
}

const CURVE: Model = example!("plain", "curve.toml");
const IMAGE_TANH: Model = example!("tanh", "image-tanh01.toml");
const IMAGE_SIGMOID: Model = example!("sigmoid", "image-sigmoid.toml");
const SPHERE: Model = example!("plain", "sphere.toml");
const SHELL: Model = example!("plain", "shell.toml");
const FOURIER_SHELL: Model = example!("fourier", "fourier-shell.toml");
const MANDELBROT_PLAIN: Model = example!("plain", "mandelbrot-plain.toml");
const MANDELBROT_FOURIER: Model = example!("fourier", "demo.toml");
const TAYLOR_LINEAR: Model = example!("taylor-linear", "taylor-linear.toml");
const TAYLOR_DEEP: Model = example!("taylor-deep", "taylor-deep.toml");
const FOURIER_CURVE: Model = example!("fourier", "fourier-curve.toml");
const IMAGE_PLAIN: Model = example!("plain", "compare-image-plain.toml");
const IMAGE_TAYLOR: Model = example!("taylor", "compare-image-taylor.toml");
const IMAGE_FOURIER: Model = example!("fourier", "compare-image-fourier.toml");

pub const SCENES: &[Scene] = &[
    Scene {
        name: "curve",
        title: "A network bends into a 1-D curve",
        claim: "A neural network is a function built from neurons, each a weighted sum passed through an \
                activation; trained by backpropagation on samples of a curve, a small network of leaky ReLUs \
                bends into its shape, one kink at a time.",
        work: Work::Train { model: CURVE, zoom: None },
        quick: SceneBudget::Steps(2000),
        full: SceneBudget::Steps(6000),
        quick_s: 1,
        full_s: 2,
        reference: None,
    },
    Scene {
        name: "image",
        title: "An image as a function (row, col) -> pixel, leaky ReLU",
        claim: "An image is a function from R^2 to R: every pixel is one output of the network, so a frame shows the \
                whole learned function at once. Inputs normalised to [-1, 1], leaky ReLU in every hidden layer and \
                a learning rate that is lowered now and then let it refine details; a plain network stays blurry.",
        work: Work::Train { model: IMAGE_TANH, zoom: None },
        quick: SceneBudget::Steps(800),
        full: SceneBudget::Steps(4000),
        quick_s: 17,
        full_s: 41,
        reference: None,
    },
    Scene {
        name: "tanh-vs-sigmoid",
        title: "Output squashing: (tanh+1)/2 against sigmoid",
        claim: "The last layer must output a pixel in [0, 1]. A sigmoid does that, but tanh rescaled to [0, 1] \
                works better in practice (it is centred at zero); both are universal approximators, yet one \
                learns clearly faster, which only a measured error shows.",
        work: Work::Compare { models: &[IMAGE_TANH, IMAGE_SIGMOID], match_params: None },
        quick: SceneBudget::Steps(600),
        full: SceneBudget::Steps(4000),
        quick_s: 20,
        full_s: 85,
        reference: None,
    },
    Scene {
        name: "sphere",
        title: "A parametric surface (u, v) -> (x, y, z): the sphere",
        claim: "A surface maps a flat 2-D sheet into 3-D space. Learned from random points on a sphere, the network \
                wraps its sheet around them but never quite closes it at the poles.",
        work: Work::Train { model: SPHERE, zoom: None },
        quick: SceneBudget::Steps(2000),
        full: SceneBudget::Steps(6000),
        quick_s: 2,
        full_s: 6,
        reference: None,
    },
    Scene {
        name: "shell",
        title: "The spiral shell, plain network",
        claim: "A spiral shell surface is much harder: a fairly big plain network gets the rough shape but is \
                confused by the turns of the spiral.",
        work: Work::Train { model: SHELL, zoom: None },
        quick: SceneBudget::Steps(1500),
        full: SceneBudget::Steps(8000),
        quick_s: 12,
        full_s: 57,
        reference: None,
    },
    Scene {
        name: "mandelbrot-plain",
        title: "The Mandelbrot set with a plain MLP",
        claim: "The Mandelbrot set is only 2-D but infinitely complex. A plain network trained on uniform random \
                samples makes progress, yet misses an infinite amount of detail.",
        work: Work::Train { model: MANDELBROT_PLAIN, zoom: None },
        quick: SceneBudget::Steps(400),
        full: SceneBudget::Steps(6000),
        quick_s: 32,
        full_s: 162,
        reference: None,
    },
    Scene {
        name: "taylor",
        title: "A Taylor series is a one-layer network; a deep one on Taylor features",
        claim: "A partial Taylor series (order 8) is a weighted sum of x, x^2, ... x^8: a single-layer network on \
                Taylor features. Trained by backpropagation it fits the curve poorly (polynomials explode); the \
                same features fed to a deep network do much better.",
        work: Work::Compare { models: &[TAYLOR_LINEAR, TAYLOR_DEEP], match_params: None },
        quick: SceneBudget::Time("5s"),
        full: SceneBudget::Time("20s"),
        quick_s: 10,
        full_s: 40,
        reference: None,
    },
    Scene {
        name: "taylor-image",
        title: "Taylor features on an image",
        claim: "Taylor features on an image learn, but no better than a plain network: a Taylor series approximates \
                around one point, while an image spans a whole range.",
        work: Work::Compare { models: &[IMAGE_PLAIN, IMAGE_TAYLOR], match_params: None },
        quick: SceneBudget::Time("8s"),
        full: SceneBudget::Time("60s"),
        quick_s: 17,
        full_s: 121,
        reference: None,
    },
    Scene {
        name: "fourier-curve",
        title: "Fourier features on a curve",
        claim: "A Fourier series sums sines and cosines of rising frequency over one period. Fed as features \
                (sin kx, cos kx, inputs scaled to [-pi, pi]) to a multi-layer network, it fits the curve well, \
                if a little wavy.",
        work: Work::Compare { models: &[CURVE, FOURIER_CURVE], match_params: None },
        quick: SceneBudget::Steps(1500),
        full: SceneBudget::Steps(4000),
        quick_s: 1,
        full_s: 3,
        reference: None,
    },
    Scene {
        name: "image-features",
        title: "Plain against Taylor against Fourier on an image, equal size and time",
        claim: "At the same size and the same training time, the Fourier-feature network learns the image far \
                better and faster than the plain one or the Taylor one: it starts like static coming into focus \
                and ends with detail close to the real image.",
        work: Work::Compare { models: &[IMAGE_PLAIN, IMAGE_TAYLOR, IMAGE_FOURIER], match_params: Some(60_000) },
        quick: SceneBudget::Time("10s"),
        full: SceneBudget::Time("60s"),
        quick_s: 32,
        full_s: 181,
        reference: None,
    },
    Scene {
        name: "curse",
        title: "The 2-D Fourier series and the curse of dimensionality",
        claim: "A true 2-D Fourier series multiplies every sine and cosine of x with every one of y at every pair of \
                frequencies, so its term count grows with the order much faster than in 1-D, and explodes with \
                the input dimension. Per-dimension Fourier features grow only linearly and are what the image \
                fits use.",
        work: Work::TermCounts,
        quick: SceneBudget::None,
        full: SceneBudget::None,
        quick_s: 1,
        full_s: 1,
        reference: None,
    },
    Scene {
        name: "fourier-mandelbrot",
        title: "Fourier features on the Mandelbrot set, and a zoom to where detail runs out",
        claim: "With Fourier features the Mandelbrot approximation captures far more detail than the plain network; \
                zoomed in, it is plainly not the real set and still misses an infinite amount of detail.",
        work: Work::Train { model: MANDELBROT_FOURIER, zoom: Some([-0.80, -0.70, 0.06, 0.16]) },
        quick: SceneBudget::Steps(800),
        full: SceneBudget::Steps(2400),
        quick_s: 14,
        full_s: 25,
        reference: None,
    },
    Scene {
        name: "fourier-shell",
        title: "Fourier features on the spiral shell",
        claim: "Back on the spiral shell, the Fourier network does far better than the plain one, though the shell \
                is itself defined with sines and cosines.",
        work: Work::Compare { models: &[SHELL, FOURIER_SHELL], match_params: None },
        quick: SceneBudget::Steps(1500),
        full: SceneBudget::Steps(8000),
        quick_s: 18,
        full_s: 90,
        reference: None,
    },
    Scene {
        name: "mnist",
        title: "MNIST with Fourier orders 0, 8, 32 and 64: overfitting",
        claim: "On MNIST (784 inputs) a plain network does well. Fourier features of order 8 give 13,328 inputs for \
                a small gain; orders 32 and 64 fit the training set better and the held-out set worse: \
                overfitting. Fourier features suit low-dimensional problems, not high-dimensional ones.",
        work: Work::Compare {
            models: &[
                example!("plain", "mnist-plain.toml"),
                example!("fourier-8", "mnist-fourier8.toml"),
                example!("fourier-32", "mnist-fourier32.toml"),
                example!("fourier-64", "mnist-fourier64.toml"),
            ],
            match_params: None,
        },
        quick: SceneBudget::Steps(120),
        full: SceneBudget::Steps(645),
        quick_s: 76,
        full_s: 218,
        reference: Some(
            "README (645 steps, 2 cores, precision auto: bf16 on AVX512-BF16): test accuracy 95.29 % plain, 94.59 % order \
             8, 93.13 % order 32, 93.23 % order 64 (f32: 95.36, 94.70, 93.26, 93.15 %)",
        ),
    },
    Scene {
        name: "challenge",
        title: "The challenge: the Mandelbrot set as precisely and deeply as possible",
        claim: "The video ends with a challenge: approximate the Mandelbrot set as precisely and deeply as possible \
                from random samples, with a method that could still learn any other data set of any \
                dimensionality. approxlab's champion is a multiresolution hash grid with a small MLP, trained \
                where its error is largest.",
        work: Work::Challenge,
        quick: SceneBudget::Time("30s"),
        full: SceneBudget::Time("300s"),
        quick_s: 47,
        full_s: 309,
        reference: Some("docs/leaderboard.md (300 s, 2 cores, protocol grids): champion 35.55 dB (time-budgeted: a few tenths \
             of a dB from run to run)"),
    },
];

pub fn find(name: &str) -> Option<&'static Scene> {
    SCENES.iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_every_model_config_parses() {
        let mut names: Vec<&str> = SCENES.iter().map(|s| s.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), SCENES.len());
        for scene in SCENES {
            for (label, text) in scene.models() {
                crate::config::parse_config_text(text, label).unwrap_or_else(|e| panic!("{}: {e:#}", scene.name));
            }
        }
        assert!(find("mnist").unwrap().needs_mnist());
        assert!(!find("curve").unwrap().needs_mnist());
    }
}
