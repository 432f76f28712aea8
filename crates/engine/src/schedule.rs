//! Learning-rate schedules: the learning rate as a function of the step, or, for a cosine over a run with a time
//! budget, of the fraction of that budget elapsed.

use crate::error::{EngineError, Result};
use crate::parts::{self, Form, Part};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    #[default]
    Constant,
    /// Every `every` steps multiply by `gamma` (the video's "periodically reduce the learning rate").
    Step { every: u64, gamma: f32 },
    /// `lr * gamma^step`.
    Exponential { gamma: f32 },
    /// Linear warm-up from 0 over `warmup` steps, then a half cosine down to `min_lr` at step `total`. Without
    /// `total` (a run with a time budget), the cosine follows the elapsed fraction of that budget instead.
    Cosine {
        #[serde(default)]
        warmup: u64,
        /// Defaults to the run's step budget.
        #[serde(default)]
        total: Option<u64>,
        #[serde(default)]
        min_lr: f32,
    },
    /// Warm-up, stable, decay: linear warm-up from 0 over `warmup` steps, the base rate until the last `decay`
    /// fraction of the run, then down to `min_lr` along `1 - sqrt` of that phase's progress (the cool-down that
    /// Hägele et al. 2024, "Scaling Laws and Compute-Optimal Training Beyond Fixed Training Durations", found best).
    /// Like the cosine, without `total` it follows the elapsed fraction of a time budget.
    Wsd {
        #[serde(default)]
        warmup: u64,
        #[serde(default)]
        total: Option<u64>,
        #[serde(default = "wsd_decay")]
        decay: f32,
        #[serde(default)]
        min_lr: f32,
    },
}

fn wsd_decay() -> f32 {
    0.2
}

impl Part for Schedule {
    const KIND: &'static str = "schedule";
    const FORMS: &'static [Form] = &[
        Form::new("constant", "constant", &["constant"], ""),
        Form::new("step", "step:EVERY:GAMMA", &["step:1000:0.5"], "times GAMMA every EVERY steps"),
        Form::new("exp", "exp:GAMMA", &["exp:0.999"], "times GAMMA every step").aliases(&["exponential"]),
        Form::new(
            "cosine",
            "cosine[:WARMUP[:MIN_LR]]",
            &["cosine", "cosine:100:1e-5"],
            "over the step budget, or the elapsed fraction of a `--time` budget",
        ),
        Form::new(
            "wsd",
            "wsd[:WARMUP[:DECAY[:MIN_LR]]]",
            &["wsd", "wsd:20:0.2:1e-4"],
            "warm-up, the base rate, then 1-sqrt down to MIN_LR over the last DECAY (default 0.2) of the budget",
        ),
    ];

    fn from_form(form: &Form, args: &[&str]) -> Result<Schedule> {
        let spec = form.written(args);
        let num = |i: usize, what: &str| -> Result<f64> {
            let v = args.get(i).ok_or_else(|| {
                EngineError::config("schedule", format!("'{spec}': missing {what}; expected {}", form.usage))
            })?;
            v.parse()
                .map_err(|_| EngineError::config("schedule", format!("'{spec}': {what} must be a number, got '{v}'")))
        };
        // Step counts are whole numbers: `as u64` would quietly turn -1 into 0 and 1.5 into 1.
        let count = |i: usize, what: &str| -> Result<u64> {
            let v = num(i, what)?;
            if v >= 0.0 && v.fract() == 0.0 && v < u64::MAX as f64 {
                Ok(v as u64)
            } else {
                Err(EngineError::config(
                    "schedule",
                    format!("'{spec}': {what} must be a whole number of steps >= 0, got {v}"),
                ))
            }
        };
        let sched = match (form.name, args.len()) {
            ("constant", 0) => Schedule::Constant,
            ("step", 2) => Schedule::Step { every: count(0, "EVERY")?, gamma: num(1, "GAMMA")? as f32 },
            ("exp", 1) => Schedule::Exponential { gamma: num(0, "GAMMA")? as f32 },
            ("cosine", 0..=2) => Schedule::Cosine {
                warmup: if !args.is_empty() { count(0, "WARMUP")? } else { 0 },
                total: None,
                min_lr: if args.len() > 1 { num(1, "MIN_LR")? as f32 } else { 0.0 },
            },
            ("wsd", 0..=3) => Schedule::Wsd {
                warmup: if !args.is_empty() { count(0, "WARMUP")? } else { 0 },
                total: None,
                decay: if args.len() > 1 { num(1, "DECAY")? as f32 } else { wsd_decay() },
                min_lr: if args.len() > 2 { num(2, "MIN_LR")? as f32 } else { 0.0 },
            },
            ("constant" | "step" | "exp" | "cosine" | "wsd", _) => {
                return Err(EngineError::config("schedule", format!("'{spec}': expected {}", form.usage)))
            }
            _ => return Err(parts::unlisted::<Schedule>(form)),
        };
        sched.validate()?;
        Ok(sched)
    }
}

impl Schedule {
    pub fn parse(s: &str) -> Result<Schedule> {
        <Schedule as Part>::parse(s)
    }

    pub fn validate(&self) -> Result<()> {
        match *self {
            Schedule::Step { every, gamma } => {
                if every == 0 {
                    return Err(EngineError::config("schedule step every", "must be at least 1"));
                }
                check_gamma(gamma)
            }
            Schedule::Exponential { gamma } => check_gamma(gamma),
            Schedule::Cosine { min_lr, .. } if !(min_lr.is_finite() && min_lr >= 0.0) => {
                Err(EngineError::config("schedule cosine min_lr", format!("must be a number >= 0, got {min_lr}")))
            }
            Schedule::Wsd { decay, min_lr, .. } => {
                if !(decay > 0.0 && decay <= 1.0) {
                    return Err(EngineError::config("schedule wsd decay", format!("must be in (0, 1], got {decay}")));
                }
                if !(min_lr.is_finite() && min_lr >= 0.0) {
                    return Err(EngineError::config(
                        "schedule wsd min_lr",
                        format!("must be a number >= 0, got {min_lr}"),
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Fills in a cosine schedule's length from the run's step budget.
    pub fn with_default_total(mut self, steps: Option<u64>) -> Schedule {
        if let Schedule::Cosine { total: total @ None, .. } | Schedule::Wsd { total: total @ None, .. } = &mut self {
            *total = steps;
        }
        self
    }

    /// The learning rate at 0-based `step` for a base rate `lr`.
    pub fn lr(&self, lr: f32, step: u64) -> f32 {
        self.lr_at(lr, step, None)
    }

    /// The learning rate at 0-based `step`, with `budget_done` the fraction (0 to 1) of a time budget elapsed when
    /// the run has one. A cosine with no step total uses that fraction: warm-up over its first `warmup` steps, then
    /// the half cosine from the base rate at the end of the warm-up to `min_lr` when the budget runs out.
    pub fn lr_at(&self, lr: f32, step: u64, budget_done: Option<f64>) -> f32 {
        match *self {
            Schedule::Constant => lr,
            Schedule::Step { every, gamma } => lr * gamma.powi((step / every).min(i32::MAX as u64) as i32),
            Schedule::Exponential { gamma } => lr * (gamma as f64).powf(step as f64) as f32,
            Schedule::Cosine { warmup, total, min_lr } => {
                if step < warmup {
                    return warmed_up(lr, step, warmup);
                }
                progress(step, warmup, total, budget_done).map_or(lr, |p| cosine(lr, min_lr, p))
            }
            Schedule::Wsd { warmup, total, decay, min_lr } => {
                if step < warmup {
                    return warmed_up(lr, step, warmup);
                }
                let Some(progress) = progress(step, warmup, total, budget_done) else { return lr };
                let into_decay = (progress - (1.0 - decay as f64)) / decay as f64;
                if into_decay <= 0.0 {
                    return lr;
                }
                (min_lr as f64 + (lr - min_lr) as f64 * (1.0 - into_decay.min(1.0).sqrt())) as f32
            }
        }
    }
}

/// The linear warm-up's rate at `step < warmup`.
fn warmed_up(lr: f32, step: u64, warmup: u64) -> f32 {
    lr * (step + 1) as f32 / warmup as f32
}

/// How far past its warm-up a run is, 0 to 1: by steps out of `total`, else by the elapsed fraction of a time
/// budget; `None` when neither is known (the schedule then holds the base rate).
fn progress(step: u64, warmup: u64, total: Option<u64>, budget_done: Option<f64>) -> Option<f64> {
    match total {
        Some(total) if step >= total || total <= warmup => Some(1.0),
        Some(total) => Some((step - warmup) as f64 / (total - warmup) as f64),
        None => budget_done.map(|p| p.clamp(0.0, 1.0)),
    }
}

fn cosine(lr: f32, min_lr: f32, progress: f64) -> f32 {
    (min_lr as f64 + 0.5 * (lr - min_lr) as f64 * (1.0 + (std::f64::consts::PI * progress).cos())) as f32
}

fn check_gamma(gamma: f32) -> Result<()> {
    if gamma.is_finite() && gamma > 0.0 && gamma <= 1.0 {
        Ok(())
    } else {
        Err(EngineError::config("schedule gamma", format!("must be in (0, 1], got {gamma}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learning_rates_at_given_steps() {
        assert_eq!(Schedule::Constant.lr(0.01, 12345), 0.01);
        let step = Schedule::Step { every: 100, gamma: 0.5 };
        assert_eq!([step.lr(1.0, 0), step.lr(1.0, 99), step.lr(1.0, 100), step.lr(1.0, 250)], [1.0, 1.0, 0.5, 0.25]);
        let exp = Schedule::Exponential { gamma: 0.99 };
        assert!((exp.lr(1.0, 100) - 0.99f32.powi(100)).abs() < 1e-6);
        let cos = Schedule::Cosine { warmup: 10, total: Some(110), min_lr: 0.0 };
        assert_eq!(cos.lr(1.0, 0), 0.1);
        assert_eq!(cos.lr(1.0, 9), 1.0);
        assert_eq!(cos.lr(1.0, 10), 1.0);
        assert!((cos.lr(1.0, 60) - 0.5).abs() < 1e-6);
        assert!(cos.lr(1.0, 109) < 0.001);
        assert_eq!(cos.lr(1.0, 500), 0.0);
    }

    #[test]
    fn a_cosine_without_a_step_total_follows_the_time_budget() {
        let cos = Schedule::Cosine { warmup: 10, total: None, min_lr: 0.1 };
        assert_eq!(cos.lr_at(1.0, 4, Some(0.0)), 0.5, "warm-up by steps");
        assert_eq!(cos.lr_at(1.0, 50, Some(0.0)), 1.0);
        assert!((cos.lr_at(1.0, 50, Some(0.5)) - 0.55).abs() < 1e-6, "halfway: the mean of base and min");
        assert!((cos.lr_at(1.0, 50, Some(1.0)) - 0.1).abs() < 1e-6);
        assert!((cos.lr_at(1.0, 50, Some(7.0)) - 0.1).abs() < 1e-6, "past the budget: min_lr");
        assert_eq!(cos.lr_at(1.0, 50, None), 1.0, "no budget known: the base rate");
        let steps = Schedule::Cosine { warmup: 0, total: Some(100), min_lr: 0.0 };
        assert_eq!(steps.lr_at(1.0, 50, Some(0.9)), steps.lr(1.0, 50), "a step total wins over the clock");
    }

    #[test]
    fn wsd_holds_the_base_rate_then_cools_down_along_one_minus_the_root() {
        let wsd = Schedule::Wsd { warmup: 10, total: Some(110), decay: 0.2, min_lr: 0.1 };
        assert_eq!(wsd.lr(1.0, 4), 0.5, "warm-up");
        assert_eq!([wsd.lr(1.0, 10), wsd.lr(1.0, 60), wsd.lr(1.0, 89)], [1.0, 1.0, 1.0], "stable until 80 %");
        // Step 95 is a quarter into the decay: 0.1 + 0.9 * (1 - 0.5).
        assert!((wsd.lr(1.0, 95) - 0.55).abs() < 1e-6, "{}", wsd.lr(1.0, 95));
        assert!((wsd.lr(1.0, 110) - 0.1).abs() < 1e-6);
        assert!((wsd.lr(1.0, 500) - 0.1).abs() < 1e-6);
        let timed = Schedule::Wsd { warmup: 0, total: None, decay: 0.5, min_lr: 0.0 };
        assert_eq!(timed.lr_at(2.0, 7, Some(0.5)), 2.0);
        assert!((timed.lr_at(2.0, 7, Some(0.75)) - 2.0 * (1.0 - 0.5f32.sqrt())).abs() < 1e-6, "by the clock");
        assert_eq!(timed.lr_at(2.0, 7, Some(1.0)), 0.0);
        assert_eq!(timed.lr_at(2.0, 7, None), 2.0, "no budget known: the base rate");
        let whole = Schedule::Wsd { warmup: 0, total: Some(100), decay: 1.0, min_lr: 0.0 };
        assert!((whole.lr(1.0, 25) - 0.5).abs() < 1e-6, "decay 1: the cool-down is the whole run");
    }

    #[test]
    fn parses_and_rejects() {
        assert_eq!(
            Schedule::parse("wsd:20:0.3:1e-3").unwrap(),
            Schedule::Wsd { warmup: 20, total: None, decay: 0.3, min_lr: 1e-3 }
        );
        assert_eq!(Schedule::parse("wsd").unwrap(), Schedule::Wsd { warmup: 0, total: None, decay: 0.2, min_lr: 0.0 });
        assert!(Schedule::parse("wsd:20:0").unwrap_err().to_string().contains("decay"));
        assert!(Schedule::parse("wsd:20:1.5").unwrap_err().to_string().contains("(0, 1]"));
        assert!(Schedule::parse("wsd:1:0.2:-1").unwrap_err().to_string().contains("min_lr"));
        assert_eq!(Schedule::parse("step:1000:0.5").unwrap(), Schedule::Step { every: 1000, gamma: 0.5 });
        assert_eq!(Schedule::parse("cosine:100").unwrap(), Schedule::Cosine { warmup: 100, total: None, min_lr: 0.0 });
        assert_eq!(
            Schedule::parse("cosine").unwrap().with_default_total(Some(5)),
            Schedule::Cosine { warmup: 0, total: Some(5), min_lr: 0.0 }
        );
        assert!(Schedule::parse("step:0:0.5").unwrap_err().to_string().contains("at least 1"));
        assert!(Schedule::parse("step:10:2").unwrap_err().to_string().contains("gamma"));
        assert!(Schedule::parse("linear").unwrap_err().to_string().contains("constant"));
    }
}
