use rand::Rng;

/// A fixed training set stored row-major.
#[derive(Clone, Debug)]
pub(crate) struct FixedSet {
    pub inputs: Vec<f32>,
    pub targets: Vec<f32>,
    pub in_dims: usize,
    pub out_dims: usize,
}

impl FixedSet {
    pub fn len(&self) -> usize {
        self.inputs.len() / self.in_dims
    }

    /// Uniform sampling with replacement; an empty set leaves the buffers untouched.
    pub fn fill_batch(&self, rng: &mut rand_pcg::Pcg64, inputs: &mut [f32], targets: &mut [f32]) {
        let n = self.len();
        if n == 0 {
            return;
        }
        let (di, dout) = (self.in_dims, self.out_dims);
        let batch = (inputs.len() / di).min(targets.len() / dout);
        for b in 0..batch {
            let k = rng.gen_range(0..n);
            inputs[b * di..(b + 1) * di].copy_from_slice(&self.inputs[k * di..(k + 1) * di]);
            targets[b * dout..(b + 1) * dout].copy_from_slice(&self.targets[k * dout..(k + 1) * dout]);
        }
    }
}

pub(crate) fn check_range(subject: &str, lo: f64, hi: f64) -> Result<(), crate::DataError> {
    if !lo.is_finite() || !hi.is_finite() {
        return Err(crate::DataError::invalid(subject, format!("bounds must be finite numbers, got ({lo:?}, {hi:?})")));
    }
    if lo >= hi {
        return Err(crate::DataError::invalid(
            subject,
            format!("lower bound ({lo:?}) must be less than upper bound ({hi:?})"),
        ));
    }
    Ok(())
}
