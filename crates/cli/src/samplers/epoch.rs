//! Batches from a fixed training set in shuffled epochs (every sample once per pass), as PyTorch's shuffling data
//! loader does. The order is a function of the seed and the number of samples drawn so far, so a resumed run
//! continues with exactly the batches an uninterrupted one would have drawn, with no extra checkpoint state.

use rand::seq::SliceRandom;

pub struct EpochSampler {
    seed: u64,
    samples: usize,
    epoch: u64,
    order: Vec<u32>,
}

impl EpochSampler {
    pub fn new(seed: u64, samples: usize) -> EpochSampler {
        let mut s = EpochSampler { seed, samples, epoch: 0, order: (0..samples as u32).collect() };
        s.shuffle(0);
        s
    }

    fn shuffle(&mut self, epoch: u64) {
        self.order.iter_mut().enumerate().for_each(|(i, o)| *o = i as u32);
        let mut rng = approxlab_engine::rng::derived(self.seed, &format!("epoch {epoch}"));
        self.order.shuffle(&mut rng);
        self.epoch = epoch;
    }

    /// Copies the batch that starts at sample number `position` (counted over all epochs) out of the fixed set.
    /// A batch that runs past the end of an epoch continues with the next epoch's order.
    pub fn fill<T: From<f32> + Copy>(
        &mut self,
        position: u64,
        xs: &[f32],
        ys: &[f32],
        inputs: &mut [T],
        targets: &mut [f32],
    ) {
        let n = self.samples as u64;
        let (d, o) = (xs.len() / self.samples, ys.len() / self.samples);
        for (row, (x, y)) in inputs.chunks_exact_mut(d).zip(targets.chunks_exact_mut(o)).enumerate() {
            let p = position + row as u64;
            let epoch = p / n;
            if epoch != self.epoch {
                self.shuffle(epoch);
            }
            let i = self.order[(p % n) as usize] as usize;
            x.iter_mut().zip(&xs[i * d..(i + 1) * d]).for_each(|(x, v)| *x = T::from(*v));
            y.copy_from_slice(&ys[i * o..(i + 1) * o]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_once_per_epoch_and_reproducible_from_any_position() {
        let xs: Vec<f32> = (0..10).map(|i| i as f32).collect();
        let ys = xs.clone();
        let mut s = EpochSampler::new(3, 10);
        let (mut x, mut y) = (vec![0.0; 4], vec![0.0; 4]);
        let mut seen = Vec::new();
        for step in 0..5 {
            s.fill(step * 4, &xs, &ys, &mut x, &mut y);
            assert_eq!(x, y);
            seen.extend_from_slice(&x);
        }
        let mut first: Vec<f32> = seen[..10].to_vec();
        first.sort_by(f32::total_cmp);
        assert_eq!(first, xs, "epoch 0 covers every sample once");
        let mut second: Vec<f32> = seen[10..20].to_vec();
        second.sort_by(f32::total_cmp);
        assert_eq!(second, xs, "epoch 1 too");
        assert_ne!(seen[..10], seen[10..20], "and in another order");
        // A fresh sampler asked for step 3 gives the same batch.
        let mut fresh = EpochSampler::new(3, 10);
        fresh.fill(12, &xs, &ys, &mut x, &mut y);
        assert_eq!(x, seen[12..16]);
    }
}
