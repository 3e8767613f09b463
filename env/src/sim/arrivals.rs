//! Arrivals: when the next job comes and what it is (model, verification mode, size, the
//! router's size estimate). All of it is drawn from the episode's job stream, which routing
//! never touches, so every router meets the same workload (common random numbers).

use haca_policy::rng::derive_seed;
use haca_policy::{Rng, SizeVisibility, Verification};

use super::budget::Budget;
use super::jobs::Job;
use super::topology::{quantize, Topology};
use crate::dist::{exponential, standard_normal};
use crate::scenario::ArrivalProcess;

#[derive(Debug, Clone)]
pub(crate) struct Arrivals {
    rng: Rng,
    /// Jobs arrived so far.
    pub generated: u64,
    last_arrival: f64,
    mmpp_high: bool,
    mmpp_switch: f64,
    /// A trace episode replays the trace from this row.
    trace_start: usize,
}

impl Arrivals {
    /// The arrivals of the episode drawn from `episode_seed`: MMPP starts in its stationary
    /// distribution (so episodes are not biased to either state), a trace at a random offset
    /// when the scenario asks for one.
    pub fn new(topo: &Topology, episode_seed: u64) -> Arrivals {
        let sc = &topo.sc;
        let mut rng = Rng::new(derive_seed(episode_seed, crate::streams::JOBS));
        let (mut mmpp_high, mut mmpp_switch) = (false, 0.0);
        if let ArrivalProcess::Mmpp {
            mean_high_s,
            mean_low_s,
            ..
        } = sc.arrivals.process
        {
            mmpp_high = rng.uniform() * (mean_high_s + mean_low_s) < mean_high_s;
            mmpp_switch = exponential(&mut rng, if mmpp_high { mean_high_s } else { mean_low_s });
        }
        let mut trace_start = 0;
        if let ArrivalProcess::Trace {
            trace,
            random_offset: true,
            ..
        } = &sc.arrivals.process
        {
            let spare = trace.len() - sc.jobs_per_episode as usize;
            if spare > 0 {
                trace_start = rng.below(spare as u64 + 1) as usize;
            }
        }
        Arrivals {
            rng,
            generated: 0,
            last_arrival: 0.0,
            mmpp_high,
            mmpp_switch,
            trace_start,
        }
    }

    /// Redraws the future from `seed`: the arrivals so far are kept.
    pub fn resample(&mut self, seed: u64) {
        self.rng = Rng::new(derive_seed(seed, crate::streams::JOBS));
    }

    pub fn all_arrived(&self, topo: &Topology) -> bool {
        self.generated >= topo.sc.jobs_per_episode
    }

    /// The time of the next arrival, `None` once the episode's jobs have all been drawn. MMPP
    /// state switches count as simulation work.
    pub fn next_time(&mut self, topo: &Topology, budget: &mut Budget) -> Option<f64> {
        if self.all_arrived(topo) {
            return None;
        }
        let sc = &topo.sc;
        let t = match &sc.arrivals.process {
            ArrivalProcess::Trace {
                trace, time_scale, ..
            } => {
                let i = self.trace_start + self.generated as usize;
                return Some(self.set_last(
                    (trace.arrival_s[i] - trace.arrival_s[self.trace_start]) * time_scale,
                ));
            }
            ArrivalProcess::Poisson => {
                self.last_arrival + exponential(&mut self.rng, 1.0 / sc.arrivals.rate_per_s)
            }
            &ArrivalProcess::Mmpp {
                high_rate,
                low_rate,
                mean_high_s,
                mean_low_s,
            } => self.next_mmpp([low_rate, high_rate], [mean_low_s, mean_high_s], budget),
            &ArrivalProcess::Diurnal {
                period_s,
                amplitude,
            } => {
                // Thinning against the peak rate.
                let base = sc.arrivals.rate_per_s;
                let peak = base * (1.0 + amplitude);
                let mut t = self.last_arrival;
                loop {
                    t += exponential(&mut self.rng, 1.0 / peak);
                    let rate =
                        base * (1.0 + amplitude * (std::f64::consts::TAU * t / period_s).sin());
                    if self.rng.uniform() * peak < rate {
                        break t;
                    }
                }
            }
        };
        let gap = quantize(t - self.last_arrival, sc.time_quantum_s);
        Some(self.set_last(self.last_arrival + gap))
    }

    fn set_last(&mut self, t: f64) -> f64 {
        self.last_arrival = t;
        t
    }

    /// Memoryless: draws at the current rate; if the state switches first, moves to the switch
    /// and draws again. `[low, high]` rates and mean sojourns.
    fn next_mmpp(&mut self, rates: [f64; 2], means: [f64; 2], budget: &mut Budget) -> f64 {
        let mut t = self.last_arrival;
        loop {
            let rate = rates[self.mmpp_high as usize];
            let dt = if rate > 0.0 {
                exponential(&mut self.rng, 1.0 / rate)
            } else {
                f64::INFINITY
            };
            // A switch is simulation work: switches without end (states far shorter than a
            // gap between arrivals) end in the runaway guard, not a hang.
            if t + dt < self.mmpp_switch || budget.exhausted() {
                return t + dt;
            }
            budget.charge(1);
            t = self.mmpp_switch;
            self.mmpp_high = !self.mmpp_high;
            self.mmpp_switch = t + exponential(&mut self.rng, means[self.mmpp_high as usize]);
        }
    }

    /// The prefix blocks (`hash_ids`) of the job about to arrive, when replaying a trace that
    /// has them.
    pub fn next_trace_blocks<'t>(&self, topo: &'t Topology) -> Option<&'t [u64]> {
        match &topo.sc.arrivals.process {
            ArrivalProcess::Trace { trace, .. } if !trace.block_off.is_empty() => {
                Some(trace.blocks_of(self.trace_start + self.generated as usize))
            }
            _ => None,
        }
    }

    /// The job arriving now; `conversation` is its conversation's first prefix block (a trace's
    /// `hash_ids`, or a synthetic session's), if it belongs to one.
    pub fn arrive(&mut self, topo: &Topology, now: f64, conversation: Option<u64>) -> Job {
        let sc = &topo.sc;
        let rng = &mut self.rng;
        let u = rng.uniform();
        let mode = Verification::ALL[topo.mode_cdf.partition_point(|&c| c <= u)];
        let mut u = rng.uniform();
        if let Some(first) = conversation {
            // A conversation (a trace's, or a synthetic session) keeps its model: requests
            // sharing a first prefix block draw the same model (by popularity, from the block's
            // hash), so their prefixes can meet in one model's cache.
            let mut h = first ^ 0x6D6F_6465_6C00;
            u = (haca_policy::rng::splitmix64(&mut h) >> 11) as f64 / (1u64 << 53) as f64;
        }
        let cdf = &topo.model_cdf[mode.index()];
        let model = cdf.partition_point(|&c| c <= u).min(cdf.len() - 1);
        let (input, output) = match &sc.arrivals.process {
            ArrivalProcess::Trace { trace, .. } => {
                let i = self.trace_start + self.generated as usize;
                (trace.input_tokens[i], trace.output_tokens[i])
            }
            _ => (
                sc.workload.input_tokens.sample(rng).floor() as u32,
                sc.workload.output_tokens.sample(rng).floor() as u32,
            ),
        };
        let est_out = match sc.size_visibility {
            SizeVisibility::Exact => output as f64,
            SizeVisibility::Estimate => {
                let s2 = (1.0 + sc.estimate_cv * sc.estimate_cv).ln();
                output as f64 * (s2.sqrt() * standard_normal(rng) - s2 / 2.0).exp()
            }
            SizeVisibility::Hidden => sc.workload.mean_output_tokens,
        };
        self.generated += 1;
        let md = &sc.models[model];
        let mult = sc.verification.multiplier[mode.index()];
        Job {
            arrival: now,
            work: (md.prefill_cost * input as f64 + md.decode_cost * output as f64) * mult,
            est_work: (md.prefill_cost * input as f64 + md.decode_cost * est_out) * mult,
            est_out,
            input,
            model: model as u32,
            mode,
            kind: (model * 3 + mode.index()) as u32,
            retries: 0,
            node: u32::MAX,
            decision: u64::MAX,
            since: now,
            client: 0,
            failed_on: u32::MAX,
            prefix: (0, 0),
            prefix_saved: 0.0,
        }
    }
}
