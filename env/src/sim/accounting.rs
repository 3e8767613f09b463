//! Accounting: the running integrals of jobs in the system and of idle, stranded and up
//! capacity (DESIGN section 4), the per-job response and finality records, the reward's
//! increments, and the episode metrics built from them.

use crate::metrics::{self, EpisodeMetrics};

/// Counts of jobs by where they are; `arrived == answered + routing + queued + in_slots +
/// failing` always.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JobCounts {
    pub arrived: u64,
    pub answered: u64,
    /// Waiting for a routing decision (including jobs no up node can take yet).
    pub routing: u64,
    pub queued: u64,
    /// Loading a model or running.
    pub in_slots: u64,
    /// Sent to a dead node still listed in the registry, or held by a node when it died (with a
    /// registry, when routed), waiting out the client's timeout.
    pub failing: u64,
    pub verifying: u64,
    /// Verified, waiting for their settlement batch.
    pub settling: u64,
    pub finalized: u64,
}

/// Capacity (speed-weighted slots) by state at one moment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Capacity {
    pub idle: f64,
    pub stranded: f64,
    pub up: f64,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Accounting {
    pub jobs_in_system: u32,
    int_jobs: f64,
    int_idle: f64,
    int_stranded: f64,
    int_up: f64,
    pub latencies: Vec<f64>,
    finality: Vec<f64>,
    sum_queueing: f64,
    sum_slowdown: f64,
    slo_met: u64,
    pub retries: u64,
    pub decisions: u64,
    episode_return: f64,
    // The integrals at the previous reward, and the jobs integral since.
    last_int_jobs: f64,
    last_int_stranded: f64,
    pub last_job_seconds: f64,
    /// Stranded and up capacity per time bin, when recording is on (for plots).
    pub series: Option<Series>,
}

/// What an answered job's record needs: its latency, its own service time on the node that
/// served it and on the fastest node that could have.
pub(crate) struct Answer {
    pub latency: f64,
    pub service: f64,
    pub best_service: f64,
}

impl Accounting {
    /// Empty, recording a series in bins of `series_bin_s` seconds when set.
    pub fn new(series_bin_s: Option<f64>) -> Accounting {
        Accounting {
            series: series_bin_s.map(Series::new),
            ..Default::default()
        }
    }

    /// Integrates the interval [t0, t1) at capacities `cap`.
    #[inline]
    pub fn integrate(&mut self, t0: f64, t1: f64, cap: Capacity) {
        let dt = t1 - t0;
        self.int_jobs += dt * self.jobs_in_system as f64;
        self.int_idle += dt * cap.idle;
        self.int_stranded += dt * cap.stranded;
        self.int_up += dt * cap.up;
        if let Some(series) = &mut self.series {
            series.add(t0, t1, cap.stranded, cap.up);
        }
    }

    pub fn answered(&mut self, a: Answer, slo: Option<f64>) {
        self.jobs_in_system -= 1;
        self.latencies.push(a.latency);
        self.sum_queueing += a.latency - a.service;
        self.sum_slowdown += if a.best_service > 0.0 {
            a.latency / a.best_service
        } else {
            1.0
        };
        if slo.is_some_and(|slo| a.latency <= slo) {
            self.slo_met += 1;
        }
    }

    pub fn finalized(&mut self, finality_s: f64) {
        self.finality.push(finality_s);
    }

    /// Reward since the previous call: minus the weighted integrals, per DESIGN section 4.
    /// `speed_scale` normalizes capacity to jobs.
    pub fn take_reward(&mut self, w: &crate::scenario::RewardWeights, speed_scale: f64) -> f64 {
        let dj = self.int_jobs - self.last_int_jobs;
        self.last_job_seconds = dj;
        let ds = self.int_stranded - self.last_int_stranded;
        self.last_int_jobs = self.int_jobs;
        self.last_int_stranded = self.int_stranded;
        let reward = -(w.jobs * dj + w.stranded * ds / speed_scale) / w.norm_s;
        self.episode_return += reward;
        reward
    }

    /// Integrals so far: (jobs in system, idle capacity, stranded capacity, up capacity).
    pub fn integrals(&self) -> (f64, f64, f64, f64) {
        (self.int_jobs, self.int_idle, self.int_stranded, self.int_up)
    }

    /// The metrics of an episode at time `t` so far. `busy` holds the busy fractions of the
    /// nodes ever up.
    pub fn metrics(&mut self, t: f64, busy: &mut [f64], facts: EpisodeFacts) -> EpisodeMetrics {
        let finished = self.latencies.len() as f64;
        let pct = metrics::percentile;
        let up = self.int_up;
        let frac = |x: f64| if up > 0.0 { x / up } else { 0.0 };
        let per_s = |x: f64| if t > 0.0 { x / t } else { f64::NAN };
        let per_job = |x: f64| {
            if finished > 0.0 {
                x / finished
            } else {
                f64::NAN
            }
        };
        let met = if facts.slo.is_some() {
            self.slo_met as f64
        } else {
            finished
        };
        EpisodeMetrics {
            idle_capacity_frac: frac(self.int_idle),
            stranded_idle_frac: frac(self.int_stranded),
            mean_latency_s: metrics::mean(&self.latencies),
            p50_latency_s: pct(&mut self.latencies, 0.50),
            p95_latency_s: pct(&mut self.latencies, 0.95),
            p99_latency_s: pct(&mut self.latencies, 0.99),
            mean_queueing_delay_s: per_job(self.sum_queueing),
            mean_slowdown: per_job(self.sum_slowdown),
            throughput_jobs_per_s: per_s(finished),
            goodput_jobs_per_s: per_s(met),
            slo_attainment: match facts.slo {
                Some(_) if finished > 0.0 => self.slo_met as f64 / finished,
                _ => f64::NAN,
            },
            cold_starts: facts.cold_starts as f64,
            retries: self.retries as f64,
            mean_finality_s: metrics::mean(&self.finality),
            p99_finality_s: pct(&mut self.finality, 0.99),
            busy_gini: metrics::gini(busy),
            mean_jobs_in_system: if t > 0.0 { self.int_jobs / t } else { 0.0 },
            jobs_arrived: facts.arrived as f64,
            jobs_finished: finished,
            decisions: self.decisions as f64,
            episode_time_s: t,
            episode_return: self.episode_return,
            prefix_hit_rate: match facts.prefix_blocks {
                (_, 0) => 0.0,
                (hit, all) => hit as f64 / all as f64,
            },
        }
    }
}

/// What the metrics need from outside the accounting.
pub(crate) struct EpisodeFacts {
    pub slo: Option<f64>,
    pub cold_starts: u64,
    pub arrived: u64,
    /// Prefix blocks that hit the serving node's cache, and all prefix blocks placed.
    pub prefix_blocks: (u64, u64),
}

/// Stranded and up capacity-time per fixed-width time bin of an episode.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub bin_s: f64,
    pub stranded: Vec<f64>,
    pub up: Vec<f64>,
}

impl Series {
    pub fn new(bin_s: f64) -> Series {
        Series {
            bin_s,
            stranded: Vec::new(),
            up: Vec::new(),
        }
    }

    /// Spreads the interval [t0, t1) at constant capacities over the bins it covers.
    fn add(&mut self, t0: f64, t1: f64, stranded: f64, up: f64) {
        let (mut t, mut bin) = (t0, (t0 / self.bin_s) as usize);
        while t < t1 {
            // The bin index advances every pass, so rounding at a boundary cannot stall the loop.
            let end = ((bin + 1) as f64 * self.bin_s).min(t1);
            if end > t {
                if self.up.len() <= bin {
                    self.up.resize(bin + 1, 0.0);
                    self.stranded.resize(bin + 1, 0.0);
                }
                self.stranded[bin] += (end - t) * stranded;
                self.up[bin] += (end - t) * up;
                t = end;
            }
            bin += 1;
        }
    }

    /// (bin middle time, stranded fraction of up capacity) per bin with capacity.
    pub fn points(&self) -> Vec<(f64, f64)> {
        self.up
            .iter()
            .zip(&self.stranded)
            .enumerate()
            .filter(|(_, (&u, _))| u > 0.0)
            .map(|(i, (&u, &s))| ((i as f64 + 0.5) * self.bin_s, s / u))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Series;

    #[test]
    fn series_spreads_intervals_over_bins() {
        let mut s = Series::new(0.1);
        // 0.3 is not a multiple of 0.1 in binary: boundaries must not stall or lose time.
        s.add(0.0, 0.3, 1.0, 2.0);
        s.add(0.3, 0.45, 0.0, 2.0);
        let total: f64 = s.up.iter().sum();
        assert!((total - 0.9).abs() < 1e-12, "{total}");
        let p = s.points();
        assert_eq!(p.len(), 5);
        assert!((p[0].1 - 0.5).abs() < 1e-9 && p[4].1.abs() < 1e-9, "{p:?}");
    }
}
