//! Output heads: the fixed map from the network's raw outputs to predictions.

use crate::error::Result;
use crate::parts::{self, Form, Part};
use crate::rows;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Head {
    /// `(tanh(y) + 1) / 2`: the video's choice for outputs in [0, 1].
    #[default]
    Tanh01,
    Sigmoid,
    Linear,
    /// `y` clamped to [0, 1], with the gradient passed straight through (as if the head were linear): a prediction
    /// past a bound is scored at the bound, yet a target inside the range still pulls it back. For targets known to
    /// lie in [0, 1] it cannot score worse than `linear`, and unlike `tanh01` it reaches 0 and 1 exactly.
    Clamp01,
    /// Softmax over each row, for classification.
    Softmax,
}

impl Part for Head {
    const KIND: &'static str = "head";
    const FORMS: &'static [Form] = &[
        Form::new("tanh01", "tanh01", &["tanh01"], "(tanh + 1) / 2, the video's"),
        Form::new("sigmoid", "sigmoid", &["sigmoid"], ""),
        Form::new("linear", "linear", &["linear"], "").aliases(&["identity"]),
        Form::new("clamp01", "clamp01", &["clamp01"], "linear clamped to [0, 1], straight-through gradient"),
        Form::new("softmax", "softmax", &["softmax"], "classes"),
    ];

    fn from_form(form: &Form, args: &[&str]) -> Result<Head> {
        parts::no_args::<Head>(form, args)?;
        Ok(match form.name {
            "tanh01" => Head::Tanh01,
            "sigmoid" => Head::Sigmoid,
            "linear" => Head::Linear,
            "clamp01" => Head::Clamp01,
            "softmax" => Head::Softmax,
            _ => return Err(parts::unlisted::<Head>(form)),
        })
    }
}

impl Head {
    pub fn parse(s: &str) -> Result<Head> {
        <Head as Part>::parse(s)
    }

    pub fn name(self) -> &'static str {
        match self {
            Head::Tanh01 => "tanh01",
            Head::Sigmoid => "sigmoid",
            Head::Linear => "linear",
            Head::Clamp01 => "clamp01",
            Head::Softmax => "softmax",
        }
    }

    /// `pred = head(raw)` for rows of `width` values.
    pub fn forward(self, raw: &[f32], pred: &mut [f32], width: usize) {
        let chunk = rows::HEAD_ROWS_PER_TASK * width;
        pred.par_chunks_mut(chunk).zip(raw.par_chunks(chunk)).for_each(|(p, y)| match self {
            Head::Tanh01 => p.iter_mut().zip(y).for_each(|(p, y)| *p = 0.5 * (y.tanh() + 1.0)),
            Head::Sigmoid => p.iter_mut().zip(y).for_each(|(p, y)| *p = 1.0 / (1.0 + (-y).exp())),
            Head::Linear => p.copy_from_slice(y),
            Head::Clamp01 => p.iter_mut().zip(y).for_each(|(p, y)| *p = y.clamp(0.0, 1.0)),
            Head::Softmax => {
                for (pr, yr) in p.chunks_exact_mut(width).zip(y.chunks_exact(width)) {
                    softmax_row(yr, pr);
                }
            }
        });
    }

    /// Turns the gradient with respect to the predictions into the one with respect to the raw outputs, in place,
    /// using only the predictions.
    pub fn backward(self, pred: &[f32], grad: &mut [f32], width: usize) {
        let chunk = rows::HEAD_ROWS_PER_TASK * width;
        grad.par_chunks_mut(chunk).zip(pred.par_chunks(chunk)).for_each(|(g, p)| match self {
            // d/dy (tanh y + 1)/2 = (1 - tanh^2 y)/2 = 2 p (1 - p)
            Head::Tanh01 => g.iter_mut().zip(p).for_each(|(g, p)| *g *= 2.0 * p * (1.0 - p)),
            Head::Sigmoid => g.iter_mut().zip(p).for_each(|(g, p)| *g *= p * (1.0 - p)),
            // Straight through: see [`Head::Clamp01`].
            Head::Linear | Head::Clamp01 => {}
            Head::Softmax => {
                for (gr, pr) in g.chunks_exact_mut(width).zip(p.chunks_exact(width)) {
                    let dot: f32 = gr.iter().zip(pr).map(|(g, p)| g * p).sum();
                    gr.iter_mut().zip(pr).for_each(|(g, p)| *g = p * (*g - dot));
                }
            }
        });
    }
}

pub fn softmax_row(logits: &[f32], out: &mut [f32]) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for (o, l) in out.iter_mut().zip(logits) {
        *o = (l - max).exp();
        sum += *o;
    }
    out.iter_mut().for_each(|o| *o /= sum);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck;

    #[test]
    fn gradients_match_finite_differences() {
        let raw: Vec<f32> = (0..12).map(|i| (i as f32 * 0.37).sin() * 2.0).collect();
        let heads = [Head::Tanh01, Head::Sigmoid, Head::Linear, Head::Clamp01, Head::Softmax];
        crate::parts::assert_every_form_in::<Head>(&heads);
        for head in heads {
            // The clamp's derivative is exact inside the range; outside it is straight through by design (tested
            // below).
            let raw: Vec<f32> = match head {
                Head::Clamp01 => raw.iter().map(|r| 0.5 + 0.2 * r).collect(),
                _ => raw.clone(),
            };
            let width = 3;
            let forward = |_: &[f32], x: &[f32]| {
                let mut p = vec![0.0; x.len()];
                head.forward(x, &mut p, width);
                p
            };
            let backward = |_: &[f32], x: &[f32], g: &[f32]| {
                let mut p = vec![0.0; x.len()];
                head.forward(x, &mut p, width);
                let mut g = g.to_vec();
                head.backward(&p, &mut g, width);
                (vec![], g)
            };
            gradcheck::check(&[], &raw, raw.len(), &forward, &backward, true, 100, &Default::default())
                .unwrap_or_else(|e| panic!("{head:?}: {e}"));
        }
    }

    #[test]
    fn known_values() {
        let mut p = [0.0; 3];
        Head::Tanh01.forward(&[0.0, 100.0, -100.0], &mut p, 1);
        assert_eq!(p, [0.5, 1.0, 0.0]);
        Head::Softmax.forward(&[1.0, 2.0, 3.0], &mut p, 3);
        // e^-2, e^-1, 1 over their sum
        let s = (-2.0f32).exp() + (-1.0f32).exp() + 1.0;
        assert!((p[0] - (-2.0f32).exp() / s).abs() < 1e-7 && (p[2] - 1.0 / s).abs() < 1e-7);
        assert!(Head::parse("relu").unwrap_err().to_string().contains("tanh01"));
    }

    /// Past a bound the prediction is the bound, and the gradient is the loss's, unchanged.
    #[test]
    fn clamp01_scores_at_the_bounds_and_passes_the_gradient_through() {
        let raw = [-0.5, 0.25, 1.5];
        let mut p = [0.0; 3];
        Head::Clamp01.forward(&raw, &mut p, 1);
        assert_eq!(p, [0.0, 0.25, 1.0]);
        // MSE against targets 0.5: d/dp (p - t)^2 = 2 (p - t), at the clamped predictions.
        let mut g: Vec<f32> = p.iter().map(|p| 2.0 * (p - 0.5)).collect();
        Head::Clamp01.backward(&p, &mut g, 1);
        assert_eq!(g, [-1.0, -0.5, 1.0], "a target inside the range pulls a clamped prediction back");
    }
}
