//! Statistics of spike trains (issue 18's CUBA summary): rates, the irregularity of each
//! neuron's firing (CV of its inter-spike intervals) and the synchrony of the population.

/// Spikes as (step, neuron) of one network of n neurons over `steps` steps of dt ms.
pub struct Raster<'a> {
    pub spikes: &'a [(u32, u32)],
    pub n: usize,
    pub steps: usize,
    pub dt: f64,
}

impl Raster<'_> {
    /// Duration in seconds.
    pub fn seconds(&self) -> f64 {
        self.steps as f64 * self.dt * 1e-3
    }

    /// Mean firing rate over neurons and time, Hz.
    pub fn mean_rate(&self) -> f64 {
        self.spikes.len() as f64 / (self.n as f64 * self.seconds())
    }

    /// Each neuron's rate, Hz.
    pub fn rates(&self) -> Vec<f64> {
        let mut counts = vec![0usize; self.n];
        for (_, k) in self.spikes {
            counts[*k as usize] += 1;
        }
        counts.iter().map(|c| *c as f64 / self.seconds()).collect()
    }

    /// Each neuron's inter-spike intervals, ms.
    fn intervals(&self) -> Vec<Vec<f64>> {
        let mut last = vec![None; self.n];
        let mut isi = vec![Vec::new(); self.n];
        for (t, k) in self.spikes {
            let k = *k as usize;
            if let Some(prev) = last[k] {
                isi[k].push(f64::from(t - prev) * self.dt);
            }
            last[k] = Some(*t);
        }
        isi
    }

    /// The shortest inter-spike interval of any neuron, ms (None without two spikes).
    pub fn shortest_interval(&self) -> Option<f64> {
        self.intervals()
            .iter()
            .flatten()
            .copied()
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.min(v))))
    }

    /// The mean over neurons with at least two intervals of sd / mean of their intervals
    /// (1 for a Poisson process, 0 for a clock); None when no neuron has two.
    pub fn mean_cv(&self) -> Option<f64> {
        let cvs: Vec<f64> = self
            .intervals()
            .iter()
            .filter(|isi| isi.len() >= 2)
            .map(|isi| {
                let m = isi.iter().sum::<f64>() / isi.len() as f64;
                let var = isi.iter().map(|v| (v - m).powi(2)).sum::<f64>() / isi.len() as f64;
                var.sqrt() / m
            })
            .collect();
        (!cvs.is_empty()).then(|| cvs.iter().sum::<f64>() / cvs.len() as f64)
    }

    /// The population's spike counts in bins of `bin_ms`.
    pub fn population_counts(&self, bin_ms: f64) -> Vec<f64> {
        let per_bin = ((bin_ms / self.dt).round() as usize).max(1);
        let mut counts = vec![0.0; self.steps.div_ceil(per_bin)];
        for (t, _) in self.spikes {
            counts[*t as usize / per_bin] += 1.0;
        }
        counts
    }

    /// Synchrony: the Fano factor (variance / mean) of the population's spike count in bins of
    /// `bin_ms`, which is 1 for independent Poisson neurons and grows as they fire together.
    pub fn population_fano(&self, bin_ms: f64) -> Option<f64> {
        let c = self.population_counts(bin_ms);
        let m = c.iter().sum::<f64>() / c.len() as f64;
        let var = c.iter().map(|v| (v - m).powi(2)).sum::<f64>() / c.len() as f64;
        (m > 0.0).then(|| var / m)
    }
}
