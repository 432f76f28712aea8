//! Losses: a scalar from predictions and targets, and its gradient with respect to the predictions.

use crate::error::{EngineError, Result};
use crate::head::softmax_row;
use crate::parts::{self, Form, Part};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Loss {
    /// Mean squared error over every element.
    #[default]
    Mse,
    /// Mean absolute error over every element.
    L1,
    /// Mean Huber loss (PyTorch's `HuberLoss`): quadratic within `delta`, linear outside.
    Huber {
        #[serde(default = "one")]
        delta: f32,
    },
    /// Softmax cross-entropy from the raw outputs (logits) against one-hot or soft targets, mean over the batch.
    CrossEntropy,
}

fn one() -> f32 {
    1.0
}

impl Part for Loss {
    const KIND: &'static str = "loss";
    const FORMS: &'static [Form] = &[
        Form::new("mse", "mse", &["mse"], ""),
        Form::new("l1", "l1", &["l1"], ""),
        Form::new("huber", "huber[:DELTA]", &["huber", "huber:0.1"], "default delta 1"),
        Form::new("cross_entropy", "cross_entropy", &["cross_entropy"], "from logits, after a softmax head")
            .aliases(&["ce"]),
    ];

    fn from_form(form: &Form, args: &[&str]) -> Result<Loss> {
        let loss = match (form.name, args) {
            ("huber", [] | [_]) => {
                let delta = match args.first() {
                    Some(a) => a
                        .parse()
                        .map_err(|_| EngineError::config("loss", format!("huber delta must be a number, got '{a}'")))?,
                    None => 1.0,
                };
                Loss::Huber { delta }
            }
            ("huber", _) => {
                return Err(EngineError::config(
                    "loss huber",
                    format!("takes one argument (huber:DELTA), got {}", args.len()),
                ))
            }
            (name, _) => {
                parts::no_args::<Loss>(form, args)?;
                match name {
                    "mse" => Loss::Mse,
                    "l1" => Loss::L1,
                    "cross_entropy" => Loss::CrossEntropy,
                    _ => return Err(parts::unlisted::<Loss>(form)),
                }
            }
        };
        loss.validate()?;
        Ok(loss)
    }
}

impl Loss {
    pub fn parse(s: &str) -> Result<Loss> {
        <Loss as Part>::parse(s)
    }

    pub fn validate(&self) -> Result<()> {
        if let Loss::Huber { delta } = self {
            if !(delta.is_finite() && *delta > 0.0) {
                return Err(EngineError::config("loss huber delta", format!("must be a positive number, got {delta}")));
            }
        }
        Ok(())
    }

    /// Whether the loss reads the network's raw outputs (logits) rather than the head's predictions.
    pub fn takes_logits(&self) -> bool {
        matches!(self, Loss::CrossEntropy)
    }

    /// How many terms of a batch of `rows` samples of `width` outputs the loss averages: its gradient times this is
    /// the summed loss's.
    pub fn terms(&self, rows: usize, width: usize) -> usize {
        match self {
            Loss::CrossEntropy => rows,
            _ => rows * width,
        }
    }

    /// Returns the loss and writes its gradient with respect to `pred` (the logits for cross-entropy).
    /// `width` is the number of outputs per sample.
    pub fn value_and_grad(&self, pred: &[f32], target: &[f32], grad: &mut [f32], width: usize) -> f64 {
        let n = pred.len() as f64;
        match *self {
            Loss::Mse => {
                let scale = (2.0 / n) as f32;
                let mut sum = 0.0f64;
                for ((g, p), t) in grad.iter_mut().zip(pred).zip(target) {
                    let d = p - t;
                    sum += (d * d) as f64;
                    *g = scale * d;
                }
                sum / n
            }
            Loss::L1 => {
                let scale = (1.0 / n) as f32;
                let mut sum = 0.0f64;
                for ((g, p), t) in grad.iter_mut().zip(pred).zip(target) {
                    let d = p - t;
                    sum += d.abs() as f64;
                    *g = if d > 0.0 {
                        scale
                    } else if d < 0.0 {
                        -scale
                    } else {
                        0.0
                    };
                }
                sum / n
            }
            Loss::Huber { delta } => {
                let scale = (1.0 / n) as f32;
                let mut sum = 0.0f64;
                for ((g, p), t) in grad.iter_mut().zip(pred).zip(target) {
                    let d = p - t;
                    if d.abs() <= delta {
                        sum += (0.5 * d * d) as f64;
                        *g = scale * d;
                    } else {
                        sum += (delta * (d.abs() - 0.5 * delta)) as f64;
                        *g = scale * delta * d.signum();
                    }
                }
                sum / n
            }
            Loss::CrossEntropy => {
                let rows = pred.len() / width;
                let scale = 1.0 / rows as f32;
                let mut sum = 0.0f64;
                for ((g, y), t) in
                    grad.chunks_exact_mut(width).zip(pred.chunks_exact(width)).zip(target.chunks_exact(width))
                {
                    // log softmax = y - max - ln sum exp(y - max): stable for any logits.
                    let max = y.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let lse = y.iter().map(|v| ((v - max) as f64).exp()).sum::<f64>().ln() + max as f64;
                    sum += y.iter().zip(t).map(|(v, t)| -(*t as f64) * (*v as f64 - lse)).sum::<f64>();
                    softmax_row(y, g);
                    let tsum: f32 = t.iter().sum();
                    g.iter_mut().zip(t).for_each(|(g, t)| *g = scale * (*g * tsum - t));
                }
                sum / rows as f64
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck;

    #[test]
    fn gradients_match_finite_differences() {
        let pred: Vec<f32> = (0..12).map(|i| (i as f32 * 0.71).sin() * 1.7).collect();
        let mut target: Vec<f32> = (0..12).map(|i| (i as f32 * 0.3).cos()).collect();
        let losses = [Loss::Mse, Loss::L1, Loss::Huber { delta: 0.5 }, Loss::CrossEntropy];
        crate::parts::assert_every_form_in::<Loss>(&losses);
        for loss in losses {
            if loss == Loss::CrossEntropy {
                target = vec![0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.3, 0.7, 0.0, 1.0, 0.0, 0.0];
            }
            let forward = |_: &[f32], x: &[f32]| {
                let mut g = vec![0.0; x.len()];
                vec![loss.value_and_grad(x, &target, &mut g, 3) as f32]
            };
            let backward = |_: &[f32], x: &[f32], r: &[f32]| {
                let mut g = vec![0.0; x.len()];
                loss.value_and_grad(x, &target, &mut g, 3);
                (vec![], g.iter().map(|g| g * r[0]).collect())
            };
            let tol = gradcheck::Tolerance { eps: 1e-3, rel: 2e-2, abs: 1e-3 };
            gradcheck::check(&[], &pred, 1, &forward, &backward, true, 100, &tol)
                .unwrap_or_else(|e| panic!("{loss:?}: {e}"));
        }
    }

    #[test]
    fn known_values() {
        let mut g = [0.0; 2];
        assert_eq!(Loss::Mse.value_and_grad(&[1.0, 3.0], &[0.0, 0.0], &mut g, 1), 5.0);
        assert_eq!(g, [1.0, 3.0]);
        assert_eq!(Loss::L1.value_and_grad(&[1.0, -3.0], &[0.0, 0.0], &mut g, 1), 2.0);
        // Huber(delta 1): 0.5*0.25 and 1*(3-0.5), averaged
        assert_eq!(Loss::Huber { delta: 1.0 }.value_and_grad(&[0.5, 3.0], &[0.0, 0.0], &mut g, 1), (0.125 + 2.5) / 2.0);
        // Uniform logits over 4 classes: ln 4.
        let mut g4 = [0.0; 4];
        let ce = Loss::CrossEntropy.value_and_grad(&[0.0; 4], &[0.0, 0.0, 1.0, 0.0], &mut g4, 4);
        assert!((ce - 4f64.ln()).abs() < 1e-6);
        assert!(Loss::parse("hinge").unwrap_err().to_string().contains("mse"));
        assert!(Loss::parse("huber:-1").is_err());
    }
}
