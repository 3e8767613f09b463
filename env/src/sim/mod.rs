//! The discrete-event core, cut by ownership:
//! - [`topology`]: the static tables of a network, shared by its episodes;
//! - [`events`]: the clock and the event queue, with a typed [`events::Event`];
//! - [`arrivals`] and [`jobs`]: when jobs come, what they are, and the table that holds them;
//! - [`cluster`]: nodes, slots, queues, model caches, churn and the capacity they leave idle;
//! - [`verify`]: the verification layer;
//! - [`accounting`]: integrals, per-job records, rewards and metrics;
//! - [`episode`]: one episode's state (built fresh at every reset) and its event loop, with
//!   [`view`] (the router's view of a decision) and [`pool`] (the pooled reference);
//! - [`budget`]: the runaway guard.
//!
//! The simulator stops at every routing decision. Between decisions it pops events in time
//! order (ties by scheduling order, so runs are reproducible) and keeps running integrals of
//! jobs in the system, idle capacity and stranded capacity, updated incrementally so that a step
//! costs O(nodes) for the observation and O(1) amortized for the events.

mod accounting;
mod arrivals;
mod budget;
mod clients;
mod cluster;
mod episode;
mod events;
mod jobs;
mod pool;
mod prefix;
mod settle;
mod topology;
mod verify;
mod view;

use std::sync::Arc;

use haca_policy::rng::derive_seed;
use haca_policy::{ClusterView, Rng};

pub use accounting::{JobCounts, Series};
pub use episode::CreditMode;
use episode::Episode;
use topology::Topology;

use crate::metrics::EpisodeMetrics;
use crate::scenario::Scenario;

/// What the core did when asked to run: reached a decision, or ended the episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Decision,
    Done,
    /// The episode did more simulation work than any valid one needs (see
    /// [`Sim::work_budget`]): it was stopped rather than left to run without end.
    Runaway,
}

#[derive(Debug, Clone)]
pub(crate) struct Sim {
    /// The scenario as loaded.
    pub base: Arc<Scenario>,
    /// The network of the current episode: `base` itself, or its draw when `base` is randomized.
    topo: Arc<Topology>,
    /// The stream of episode seeds.
    seed_rng: Rng,
    /// The view of the current decision (valid after `run` returned `Decision`).
    pub view: ClusterView,
    credit_mode: CreditMode,
    externality: f64,
    series_bin: Option<f64>,
    ep: Episode,
}

impl Sim {
    pub fn new(sc: Arc<Scenario>) -> Sim {
        let topo = Arc::new(Topology::new(sc.clone()));
        Sim {
            base: sc,
            view: topo.empty_view(),
            seed_rng: Rng::new(0),
            credit_mode: CreditMode::Off,
            externality: 1.0,
            series_bin: None,
            ep: Episode::new(&topo, 0, CreditMode::Off, None),
            topo,
        }
    }

    /// The network of the current episode.
    pub fn scenario(&self) -> &Arc<Scenario> {
        &self.topo.sc
    }

    pub fn now(&self) -> f64 {
        self.ep.q.now
    }

    pub fn episode_seed(&self) -> u64 {
        self.ep.seed
    }

    /// Seeds the stream of episode seeds; the next `begin_episode` uses its first value.
    pub fn seed(&mut self, seed: u64) {
        self.seed_rng = Rng::new(seed);
    }

    /// The raw state of the stream of episode seeds.
    pub fn stream_state(&self) -> [u64; 4] {
        self.seed_rng.state()
    }

    pub fn set_stream_state(&mut self, state: [u64; 4]) {
        self.seed_rng = Rng::from_state(state);
    }

    /// Redraws everything not yet drawn (later arrivals and their sizes, failures) from `seed`:
    /// the state so far is kept, its future becomes a fresh sample of the same process. The
    /// copy records neither credits nor a series.
    pub fn fork_future(&mut self, seed: u64) {
        self.ep.resample(seed);
        self.set_credit_mode(CreditMode::Off);
        self.record_series(None);
    }

    /// Starts a new episode and runs to its first decision. Its workload is drawn from
    /// `episode_seed`, or from the next seed of the stream when `None`.
    pub fn begin_episode(&mut self, episode_seed: Option<u64>) -> Outcome {
        self.start(episode_seed);
        self.run()
    }

    /// Starts a new episode and runs all of it with the pooled central queue, which makes no
    /// decisions.
    pub fn run_pooled_episode(&mut self) -> Outcome {
        self.start(None);
        self.ep.run(&self.topo, &mut self.view, true)
    }

    fn start(&mut self, episode_seed: Option<u64>) {
        let seed = episode_seed.unwrap_or_else(|| self.seed_rng.next_u64());
        if self.base.randomize.is_some() {
            // A new network: its tables and view are rebuilt, once per episode, which is small
            // next to the thousands of decisions an episode holds.
            let variant = self
                .base
                .episode_variant(derive_seed(seed, crate::streams::RANDOMIZE));
            self.topo = Arc::new(Topology::new(Arc::new(variant)));
            self.view = self.topo.empty_view();
        }
        self.ep = Episode::new(&self.topo, seed, self.credit_mode, self.series_bin);
        self.ep.cluster.externality = self.externality;
    }

    /// Takes `old`'s credit and series settings (a fresh sim replacing it).
    pub fn keep_settings(&mut self, old: &Sim) {
        self.set_credit_mode(old.credit_mode);
        self.set_externality_weight(old.externality);
        self.record_series(old.series_bin);
    }

    /// Weight of the part of a credit that charges a job for others' waiting (marginal,
    /// amortized, displacement), from the next episode on.
    pub fn set_externality_weight(&mut self, w: f64) {
        self.externality = w;
    }

    /// Runs events until the next decision or the end of the episode.
    pub fn run(&mut self) -> Outcome {
        self.ep.run(&self.topo, &mut self.view, false)
    }

    /// The current decision's view as the truth (see `Episode::truth_into`), into `out`.
    pub fn oracle_view(&self, out: &mut ClusterView) {
        out.clone_from(&self.view);
        self.ep.truth_into(&self.topo, out);
    }

    /// Sends the job being decided to node `n` (already checked legal).
    pub fn dispatch(&mut self, n: usize) {
        self.ep.dispatch(&self.topo, n);
    }

    /// Reward since the previous call: minus the weighted integrals, per DESIGN section 4.
    pub fn take_reward(&mut self) -> f64 {
        let sc = &self.topo.sc;
        self.ep.acc.take_reward(&sc.reward, sc.scales.speed)
    }

    /// Job-seconds in the system between the last two rewards.
    pub fn last_job_seconds(&self) -> f64 {
        self.ep.acc.last_job_seconds
    }

    /// Unless `Off`, every job leaving a placement (answered, or handed back by a failure)
    /// records (the decision that placed it, its credit: see [`CreditMode`]). Turning recording
    /// on or off applies at once; the marginal and amortized parts from the next episode (its
    /// queue integrals and load shares start with the episode).
    pub fn set_credit_mode(&mut self, mode: CreditMode) {
        self.credit_mode = mode;
        let on = mode != CreditMode::Off;
        match (&mut self.ep.credits, on) {
            (None, true) => self.ep.credits = Some(Vec::new()),
            (Some(_), false) => self.ep.credits = None,
            _ => {}
        }
    }

    /// Moves the credits recorded so far into `out`.
    pub fn take_credits(&mut self, out: &mut Vec<(u64, f64)>) {
        if let Some(credits) = &mut self.ep.credits {
            out.append(credits);
        }
        if let Some(l) = &mut self.ep.cluster.loads {
            out.append(&mut l.settled);
        }
        if let Some(d) = &mut self.ep.cluster.displacement {
            out.append(&mut d.settled);
        }
    }

    /// (decision, seconds in the system so far) of every placed job not yet answered, those
    /// waiting out a dead node's fail timeout included.
    pub fn outstanding_credits(&self, out: &mut Vec<(u64, f64)>) {
        let (ep, topo) = (&self.ep, &self.topo);
        let mut push = |j: u32| {
            let job = &ep.jobs[j];
            if job.decision != u64::MAX {
                out.push((job.decision, ep.q.now - job.since));
            }
        };
        for (n, node) in ep.cluster.nodes.iter().enumerate() {
            let running = ep.cluster.slots(topo, n).iter().map(|r| r.job);
            node.queue
                .iter()
                .copied()
                .chain(running)
                .for_each(&mut push);
        }
        ep.failing.iter().copied().for_each(push);
        if let Some(l) = &ep.cluster.loads {
            l.outstanding(out);
        }
        if let Some(d) = &ep.cluster.displacement {
            d.outstanding(out);
        }
    }

    /// Records stranded and up capacity per `bin_s` time bin from now on (`None`: stop).
    pub fn record_series(&mut self, bin_s: Option<f64>) {
        self.series_bin = bin_s;
        self.ep.acc.series = bin_s.map(Series::new);
    }

    pub fn series(&self) -> Option<&Series> {
        self.ep.acc.series.as_ref()
    }

    pub fn job_counts(&self) -> JobCounts {
        let ep = &self.ep;
        let (queued, in_slots) = ep.cluster.held();
        JobCounts {
            arrived: ep.arrivals.generated,
            answered: ep.acc.latencies.len() as u64,
            routing: (ep.pending.len() + ep.blocked.len()) as u64,
            queued,
            in_slots,
            failing: ep.failing.len() as u64,
            verifying: ep.verifier.in_verification,
            settling: ep.settler.pending,
            finalized: ep.verifier.finalized,
        }
    }

    /// Response latencies of the jobs answered so far this episode, in no particular order.
    pub fn latencies(&self) -> &[f64] {
        &self.ep.acc.latencies
    }

    /// Per-node busy fraction so far (0 for a node never up).
    pub fn busy_fractions(&self) -> Vec<f64> {
        (0..self.topo.nodes())
            .map(|n| self.ep.cluster.busy_fraction(&self.topo, n).unwrap_or(0.0))
            .collect()
    }

    pub fn jobs_in_system(&self) -> u32 {
        self.ep.acc.jobs_in_system
    }

    pub fn decisions(&self) -> u64 {
        self.ep.acc.decisions
    }

    /// Integrals so far: (jobs in system, idle capacity, stranded capacity, up capacity).
    pub fn integrals(&self) -> (f64, f64, f64, f64) {
        self.ep.acc.integrals()
    }

    /// The most simulation work the current (or last) call of [`Sim::run`] may do.
    pub fn work_budget(&self) -> u64 {
        self.ep.budget.size()
    }

    /// Simulation work done since the current (or last) call of [`Sim::run`] began.
    pub fn work_done(&self) -> u64 {
        self.ep.budget.used()
    }

    /// Metrics of the episode so far (complete once the episode is over).
    pub fn metrics(&mut self) -> EpisodeMetrics {
        self.ep.metrics(&self.topo)
    }
}
