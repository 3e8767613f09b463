//! Episode metrics (DESIGN section 4) and the statistics they use.

/// Everything measured over one episode. Times are seconds of simulated time. `NaN` marks a
/// metric that does not apply (SLO attainment without an SLO, latency with no finished job).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EpisodeMetrics {
    /// Capacity-time with idle slots, over total capacity-time of up nodes.
    pub idle_capacity_frac: f64,
    /// Idle capacity-time while a job the node could serve waited in another node's queue, over
    /// total capacity-time of up nodes. Zero for a pooled central queue.
    pub stranded_idle_frac: f64,
    pub mean_latency_s: f64,
    pub p50_latency_s: f64,
    pub p95_latency_s: f64,
    pub p99_latency_s: f64,
    /// Latency minus the job's own service time (waiting, cold loads, work lost to failures).
    pub mean_queueing_delay_s: f64,
    /// Mean of latency / service time on the fastest node that could serve the job.
    pub mean_slowdown: f64,
    pub throughput_jobs_per_s: f64,
    /// Jobs answered within the SLO per second (equals throughput without an SLO).
    pub goodput_jobs_per_s: f64,
    pub slo_attainment: f64,
    pub cold_starts: f64,
    pub retries: f64,
    /// Arrival to verified and settled.
    pub mean_finality_s: f64,
    pub p99_finality_s: f64,
    /// Gini coefficient of per-node busy fraction (0 = perfectly even).
    pub busy_gini: f64,
    pub mean_jobs_in_system: f64,
    pub jobs_arrived: f64,
    pub jobs_finished: f64,
    pub decisions: f64,
    pub episode_time_s: f64,
    pub episode_return: f64,
    /// Prefix blocks found in the KV cache of the node that served them, over all prefix blocks
    /// of the jobs placed (0 without prefix caching).
    pub prefix_hit_rate: f64,
}

impl EpisodeMetrics {
    /// Stable metric names, in report order (also the JSON keys).
    pub const NAMES: [&'static str; 23] = [
        "idle_capacity_frac",
        "stranded_idle_frac",
        "mean_latency_s",
        "p50_latency_s",
        "p95_latency_s",
        "p99_latency_s",
        "mean_queueing_delay_s",
        "mean_slowdown",
        "throughput_jobs_per_s",
        "goodput_jobs_per_s",
        "slo_attainment",
        "cold_starts",
        "retries",
        "mean_finality_s",
        "p99_finality_s",
        "busy_gini",
        "mean_jobs_in_system",
        "jobs_arrived",
        "jobs_finished",
        "decisions",
        "episode_time_s",
        "episode_return",
        "prefix_hit_rate",
    ];

    /// Values in the order of [`EpisodeMetrics::NAMES`].
    pub fn values(&self) -> [f64; 23] {
        [
            self.idle_capacity_frac,
            self.stranded_idle_frac,
            self.mean_latency_s,
            self.p50_latency_s,
            self.p95_latency_s,
            self.p99_latency_s,
            self.mean_queueing_delay_s,
            self.mean_slowdown,
            self.throughput_jobs_per_s,
            self.goodput_jobs_per_s,
            self.slo_attainment,
            self.cold_starts,
            self.retries,
            self.mean_finality_s,
            self.p99_finality_s,
            self.busy_gini,
            self.mean_jobs_in_system,
            self.jobs_arrived,
            self.jobs_finished,
            self.decisions,
            self.episode_time_s,
            self.episode_return,
            self.prefix_hit_rate,
        ]
    }

    pub fn pairs(&self) -> impl Iterator<Item = (&'static str, f64)> {
        Self::NAMES.into_iter().zip(self.values())
    }

    /// The value of one metric.
    pub fn value(&self, metric: Metric) -> f64 {
        self.values()[metric as usize]
    }
}

/// One of [`EpisodeMetrics`]' measures, by name: what reports, comparisons and selection refer
/// to, so that a misspelt metric is a compile error (or, from a command line,
/// [`Metric::from_name`]'s `None`), never a panic deep in a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    IdleCapacityFrac,
    StrandedIdleFrac,
    MeanLatency,
    P50Latency,
    P95Latency,
    P99Latency,
    MeanQueueingDelay,
    MeanSlowdown,
    Throughput,
    Goodput,
    SloAttainment,
    ColdStarts,
    Retries,
    MeanFinality,
    P99Finality,
    BusyGini,
    MeanJobsInSystem,
    JobsArrived,
    JobsFinished,
    Decisions,
    EpisodeTime,
    EpisodeReturn,
    PrefixHitRate,
}

impl Metric {
    /// Every metric, in the order of [`EpisodeMetrics::NAMES`].
    pub const ALL: [Metric; 23] = [
        Metric::IdleCapacityFrac,
        Metric::StrandedIdleFrac,
        Metric::MeanLatency,
        Metric::P50Latency,
        Metric::P95Latency,
        Metric::P99Latency,
        Metric::MeanQueueingDelay,
        Metric::MeanSlowdown,
        Metric::Throughput,
        Metric::Goodput,
        Metric::SloAttainment,
        Metric::ColdStarts,
        Metric::Retries,
        Metric::MeanFinality,
        Metric::P99Finality,
        Metric::BusyGini,
        Metric::MeanJobsInSystem,
        Metric::JobsArrived,
        Metric::JobsFinished,
        Metric::Decisions,
        Metric::EpisodeTime,
        Metric::EpisodeReturn,
        Metric::PrefixHitRate,
    ];

    /// The stable name (a JSON key and a table column).
    pub fn name(self) -> &'static str {
        EpisodeMetrics::NAMES[self as usize]
    }

    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Whether smaller is better (reports mark the best value per column with it).
    pub fn lower_is_better(self) -> bool {
        !matches!(
            self,
            Metric::Throughput
                | Metric::Goodput
                | Metric::SloAttainment
                | Metric::EpisodeReturn
                | Metric::PrefixHitRate
        )
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Percentile `q` in [0, 1] of sorted data, interpolating linearly between closest ranks (numpy's
/// default), `NaN` for no data.
pub fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let lo = pos.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
        }
    }
}

/// Percentile `q` of unsorted data, with the same interpolation as [`percentile_sorted`], in
/// linear time: two order statistics by selection instead of a sort. Reorders `xs`.
pub fn percentile(xs: &mut [f64], q: f64) -> f64 {
    match xs.len() {
        0 => f64::NAN,
        1 => xs[0],
        n => {
            let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let lo = pos.floor() as usize;
            let (_, &mut v_lo, above) = xs.select_nth_unstable_by(lo, f64::total_cmp);
            let frac = pos - lo as f64;
            if frac == 0.0 || above.is_empty() {
                return v_lo;
            }
            let v_hi = above.iter().copied().fold(f64::INFINITY, f64::min);
            v_lo + (v_hi - v_lo) * frac
        }
    }
}

/// Gini coefficient of non-negative values (0 when all are equal or all zero). Sorts `xs`.
pub fn gini(xs: &mut [f64]) -> f64 {
    let n = xs.len();
    let total: f64 = xs.iter().sum();
    if n == 0 || total <= 0.0 {
        return 0.0;
    }
    xs.sort_by(f64::total_cmp);
    let weighted: f64 = xs.iter().enumerate().map(|(i, x)| (i + 1) as f64 * x).sum();
    (2.0 * weighted) / (n as f64 * total) - (n as f64 + 1.0) / n as f64
}

pub(crate) fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        f64::NAN
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_like_numpy() {
        let xs = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile_sorted(&xs, 0.5), 2.5);
        assert_eq!(percentile_sorted(&xs, 0.0), 1.0);
        assert_eq!(percentile_sorted(&xs, 1.0), 4.0);
        assert!((percentile_sorted(&xs, 0.99) - 3.97).abs() < 1e-12);
        assert!(percentile_sorted(&[], 0.5).is_nan());
    }

    #[test]
    fn selection_percentiles_match_sorted_ones() {
        let mut rng = haca_policy::Rng::new(4);
        for n in [1usize, 2, 3, 10, 101, 1000] {
            let xs: Vec<f64> = (0..n)
                .map(|_| crate::dist::exponential(&mut rng, 3.0))
                .collect();
            let mut sorted = xs.clone();
            sorted.sort_by(f64::total_cmp);
            for q in [0.0, 0.5, 0.95, 0.99, 1.0] {
                let mut work = xs.clone();
                assert_eq!(
                    percentile(&mut work, q),
                    percentile_sorted(&sorted, q),
                    "n {n} q {q}"
                );
            }
        }
    }

    #[test]
    fn gini_of_known_distributions() {
        assert_eq!(gini(&mut [1.0, 1.0, 1.0]), 0.0);
        assert_eq!(gini(&mut [0.0, 0.0]), 0.0);
        // One node does everything among four: G = (n - 1) / n = 0.75.
        assert!((gini(&mut [0.0, 0.0, 1.0, 0.0]) - 0.75).abs() < 1e-12);
        // [1, 2, 3]: mean abs difference 8/9, over 2 * mean (4) = 2/9.
        assert!((gini(&mut [3.0, 1.0, 2.0]) - 2.0 / 9.0).abs() < 1e-12);
    }

    #[test]
    fn names_and_values_line_up() {
        let m = EpisodeMetrics {
            p99_latency_s: 7.0,
            ..Default::default()
        };
        assert_eq!(m.value(Metric::P99Latency), 7.0);
        assert_eq!(Metric::from_name("p99_latency_s"), Some(Metric::P99Latency));
        assert_eq!(Metric::from_name("nope"), None);
        for (i, metric) in Metric::ALL.into_iter().enumerate() {
            assert_eq!(metric as usize, i);
            assert_eq!(metric.name(), EpisodeMetrics::NAMES[i]);
        }
    }
}
