//! The discrete-event core: nodes, queues, caches, churn, verification and accounting.
//!
//! The simulator stops at every routing decision. Between decisions it pops events in time order
//! (ties by sequence number, so runs are reproducible) and keeps running integrals of jobs in the
//! system, idle capacity and stranded capacity, updated incrementally so that a step costs
//! O(nodes) for the observation and O(1) amortized for the events. Nothing allocates per step
//! once the buffers have grown to an episode's size.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;

use haca_policy::rng::derive_seed;
use haca_policy::{ClusterView, JobView, NodeView, Rng, SizeVisibility, Verification};

use crate::dist::Normals;
use crate::metrics::{self, EpisodeMetrics};
use crate::scenario::{ArrivalProcess, InitialCache, Scenario};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventKind {
    Arrival,
    Finish,
    LoadDone,
    NodeDown,
    NodeUp,
    VerifyDone,
    Scrape,
}

#[derive(Debug, Clone, Copy)]
struct Event {
    t: f64,
    seq: u64,
    kind: EventKind,
    node: u32,
    /// Job id (Finish, VerifyDone) or model (LoadDone).
    a: u32,
    /// The node's epoch when scheduled: events of a node that failed since are stale.
    epoch: u32,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Event {
    // Reversed: BinaryHeap is a max-heap and we want the earliest event first.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .t
            .total_cmp(&self.t)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Job {
    arrival: f64,
    work: f64,
    est_work: f64,
    est_out: f64,
    input: u32,
    model: u32,
    mode: Verification,
    kind: u32,
    retries: u32,
    node: u32,
    /// The routing decision (index in the episode) that placed it, `u64::MAX` before.
    decision: u64,
    /// When its current placement's time in the system started: arrival, or the failure that
    /// sent it back for another routing.
    since: f64,
}

/// A job holding a slot. `start` is infinite while it waits for its model to load.
#[derive(Debug, Clone, Copy)]
struct Running {
    job: u32,
    est: f64,
    start: f64,
}

#[derive(Debug, Clone, Default)]
struct NodeState {
    up: bool,
    epoch: u32,
    busy: u32,
    queue: VecDeque<u32>,
    queued_est: f64,
    mem_used: f64,
    // Lazily integrated busy slot-seconds and up seconds, for per-node busy fractions.
    busy_int: f64,
    up_int: f64,
    last_t: f64,
    // Contributions to the cluster totals, kept to update the totals by difference.
    idle_cap: f64,
    stranded_cap: f64,
    // Staleness: state at the last scrape, and this router's dispatches since.
    snap_busy: u32,
    snap_queue: u32,
    snap_work: f64,
    disp_count: u32,
    disp_est: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum CacheState {
    #[default]
    Absent,
    Loading,
    Ready,
}

#[derive(Debug, Clone, Copy, Default)]
struct CacheEntry {
    state: CacheState,
    pins: u32,
    last_used: f64,
}

/// Counts of jobs by where they are; `arrived == answered + routing + queued + in_slots` always.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JobCounts {
    pub arrived: u64,
    pub answered: u64,
    /// Waiting for a routing decision (including jobs no up node can take yet).
    pub routing: u64,
    pub queued: u64,
    /// Loading a model or running.
    pub in_slots: u64,
    pub verifying: u64,
    pub finalized: u64,
}

#[derive(Debug, Clone, Default)]
struct Accounting {
    int_jobs: f64,
    int_idle: f64,
    int_stranded: f64,
    int_up: f64,
    latencies: Vec<f64>,
    finality: Vec<f64>,
    sum_queueing: f64,
    sum_slowdown: f64,
    slo_met: u64,
    cold_starts: u64,
    retries: u64,
    decisions: u64,
    episode_return: f64,
    /// Simulation work this episode: one per event, plus one per node a scrape reads.
    work: u64,
}

/// Simulation work a call of `run` may do per job and per node before it is a runaway.
const RUNAWAY_WORK_PER_UNIT: u64 = 20_000;

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
    /// The network of the current episode: `base` itself, or its draw when `base` is randomized.
    pub sc: Arc<Scenario>,
    /// The scenario as loaded.
    pub base: Arc<Scenario>,
    // Static, derived from the scenario.
    words: usize,
    serve: Vec<u64>,
    best_speed: Vec<f64>,
    load_time: Vec<f64>,
    mode_cdf: [f64; 3],
    model_cdf: [Vec<f64>; 3],
    popularity_order: Vec<usize>,
    // Random streams: jobs and churn are separate so that routing never shifts the workload
    // (common random numbers across routers).
    seed_rng: Rng,
    job_rng: Rng,
    churn_rng: Rng,
    normals: Normals,
    pub episode_seed: u64,
    // Dynamic state.
    pub now: f64,
    seq: u64,
    events: BinaryHeap<Event>,
    /// The next arrival, kept out of the heap: there is at most one and it is known in advance,
    /// which saves a heap push and pop per job.
    next_arrival: Option<Event>,
    jobs: Vec<Job>,
    free_jobs: Vec<u32>,
    nodes: Vec<NodeState>,
    /// Jobs holding slots: node `n` owns `running[slot_off[n]..slot_off[n] + busy]`. One flat
    /// buffer instead of a Vec per node keeps the per-decision scan free of pointer chasing.
    running: Vec<Running>,
    slot_off: Vec<usize>,
    cache: Vec<CacheEntry>,
    pending: VecDeque<u32>,
    blocked: Vec<u32>,
    waiting: Vec<u32>,
    waiting_bits: Vec<u64>,
    generated: u64,
    last_arrival: f64,
    mmpp_high: bool,
    mmpp_switch: f64,
    trace_start: usize,
    verif_queue: VecDeque<u32>,
    verif_busy: u32,
    in_verification: u64,
    finalized: u64,
    jobs_in_system: u32,
    cap_up: f64,
    cap_idle: f64,
    cap_stranded: f64,
    observed_at: f64,
    acc: Accounting,
    last_int_jobs: f64,
    /// Job-seconds in the system since the previous decision (the reward's jobs integral).
    pub last_job_seconds: f64,
    /// When on, every job leaving a placement (answered, or handed back by a failure) records
    /// (the decision that placed it, its seconds in the system under that placement).
    pub record_credits: bool,
    pub credits: Vec<(u64, f64)>,
    last_int_stranded: f64,
    /// The view of the current decision (valid after `run` returned `Decision`).
    pub view: ClusterView,
    /// Pooled reference mode: `pending` is one central queue served by the first free
    /// compatible slot, and `run` makes no decisions.
    pub pooled: bool,
    /// Candidate nodes and servable kinds of a pooled dispatch (kept to reuse their allocations).
    candidates: Vec<usize>,
    servable: Vec<u64>,
    /// Stranded and up capacity per time bin, when recording is on (for plots).
    pub series: Option<Series>,
    /// Work done when the current call of `run` began, and the work at which it is a runaway
    /// (see [`Sim::work_budget`]); the limit grows with each arrival during the call.
    run_start: u64,
    run_limit: u64,
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

#[inline]
fn quantize(x: f64, q: f64) -> f64 {
    if q > 0.0 {
        (x / q).floor() * q
    } else {
        x
    }
}

/// Cumulative distribution for sampling with `partition_point(|c| c <= u)`, `u` in [0, 1). From
/// the last positive weight on the bounds are infinite, so rounding can never select a trailing
/// zero-weight entry (a model a mode cannot be served with).
fn cdf(weights: &[f64]) -> Vec<f64> {
    let total: f64 = weights.iter().sum();
    let mut acc = 0.0;
    let mut out: Vec<f64> = weights
        .iter()
        .map(|w| {
            acc += w / total;
            acc
        })
        .collect();
    let last = weights.iter().rposition(|&w| w > 0.0).unwrap_or(0);
    out[last..].fill(f64::INFINITY);
    out
}

impl Sim {
    pub fn new(sc: Arc<Scenario>) -> Sim {
        let n = sc.nodes.len();
        let m = sc.models.len();
        let kinds = m * 3;
        let words = kinds.div_ceil(64);
        let mut serve = vec![0u64; n * words];
        let mut best_speed = vec![0.0f64; kinds];
        for (i, node) in sc.nodes.iter().enumerate() {
            for (mi, model) in sc.models.iter().enumerate() {
                for mode in Verification::ALL {
                    if node.can_serve(model, mode) {
                        let k = mi * 3 + mode.index();
                        serve[i * words + k / 64] |= 1 << (k % 64);
                        best_speed[k] = best_speed[k].max(node.speed);
                    }
                }
            }
        }
        let load_time = (0..m)
            .map(|mi| quantize(sc.load_time(mi), sc.time_quantum_s))
            .collect();
        let mix = &sc.workload.mix;
        let mode_cdf: [f64; 3] = cdf(mix).try_into().expect("three modes");
        let model_cdf = std::array::from_fn(|v| {
            let p = &sc.workload.model_probs[v];
            if p.iter().sum::<f64>() > 0.0 {
                cdf(p)
            } else {
                vec![f64::INFINITY; m]
            }
        });
        let overall: Vec<f64> = (0..m)
            .map(|mi| {
                (0..3)
                    .map(|v| mix[v] * sc.workload.model_probs[v][mi])
                    .sum()
            })
            .collect();
        let mut popularity_order: Vec<usize> = (0..m).collect();
        popularity_order.sort_by(|&a, &b| overall[b].total_cmp(&overall[a]).then(a.cmp(&b)));

        let view = ClusterView {
            nodes: sc
                .nodes
                .iter()
                .map(|spec| NodeView {
                    speed: spec.speed,
                    slots: spec.slots,
                    memory_gb: spec.memory_gb,
                    tee: spec.tee,
                    zk: spec.zk,
                    ..Default::default()
                })
                .collect(),
            mask: vec![false; n],
            scales: sc.scales,
            ..Default::default()
        };
        let mut sim = Sim {
            words,
            serve,
            best_speed,
            load_time,
            mode_cdf,
            model_cdf,
            popularity_order,
            seed_rng: Rng::new(0),
            job_rng: Rng::new(0),
            churn_rng: Rng::new(0),
            normals: Normals::default(),
            episode_seed: 0,
            now: 0.0,
            seq: 0,
            events: BinaryHeap::new(),
            next_arrival: None,
            jobs: Vec::new(),
            free_jobs: Vec::new(),
            nodes: vec![NodeState::default(); n],
            running: vec![
                Running {
                    job: 0,
                    est: 0.0,
                    start: 0.0,
                };
                sc.nodes.iter().map(|x| x.slots as usize).sum()
            ],
            slot_off: sc
                .nodes
                .iter()
                .scan(0, |off, x| {
                    let o = *off;
                    *off += x.slots as usize;
                    Some(o)
                })
                .collect(),
            cache: vec![CacheEntry::default(); n * m],
            pending: VecDeque::new(),
            blocked: Vec::new(),
            waiting: vec![0; kinds],
            waiting_bits: vec![0; words],
            generated: 0,
            last_arrival: 0.0,
            mmpp_high: false,
            mmpp_switch: 0.0,
            trace_start: 0,
            verif_queue: VecDeque::new(),
            verif_busy: 0,
            in_verification: 0,
            finalized: 0,
            jobs_in_system: 0,
            cap_up: 0.0,
            cap_idle: 0.0,
            cap_stranded: 0.0,
            observed_at: 0.0,
            acc: Accounting::default(),
            last_int_jobs: 0.0,
            last_job_seconds: 0.0,
            record_credits: false,
            credits: Vec::new(),
            last_int_stranded: 0.0,
            view,
            pooled: false,
            candidates: Vec::with_capacity(n),
            servable: Vec::with_capacity(words),
            series: None,
            run_start: 0,
            run_limit: u64::MAX,
            base: sc.clone(),
            sc,
        };
        sim.seed(0);
        sim
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
    /// the state so far is kept, its future becomes a fresh sample of the same process.
    pub fn resample_future(&mut self, seed: u64) {
        self.job_rng = Rng::new(derive_seed(seed, crate::streams::JOBS));
        self.churn_rng = Rng::new(derive_seed(seed, crate::streams::CHURN));
        self.normals = Normals::default();
    }

    /// Starts a new episode and runs to the first decision. Its workload is drawn from
    /// `episode_seed`, or from the next seed of the stream when `None`.
    pub fn begin_episode(&mut self, episode_seed: Option<u64>) -> Outcome {
        let episode_seed = episode_seed.unwrap_or_else(|| self.seed_rng.next_u64());
        if self.base.randomize.is_some() {
            // A new network: rebuild everything sized by it. This allocates, once per episode,
            // which is small next to the thousands of decisions an episode holds.
            let variant = self
                .base
                .episode_variant(derive_seed(episode_seed, crate::streams::RANDOMIZE));
            let mut fresh = Sim::new(Arc::new(variant));
            fresh.base = self.base.clone();
            fresh.seed_rng = self.seed_rng.clone();
            fresh.pooled = self.pooled;
            fresh.record_credits = self.record_credits;
            fresh.series = self.series.take();
            *self = fresh;
        }
        self.episode_seed = episode_seed;
        self.job_rng = Rng::new(derive_seed(episode_seed, crate::streams::JOBS));
        self.churn_rng = Rng::new(derive_seed(episode_seed, crate::streams::CHURN));
        self.normals = Normals::default();
        let sc = self.sc.clone();

        self.now = 0.0;
        self.seq = 0;
        self.events.clear();
        self.next_arrival = None;
        self.jobs.clear();
        self.free_jobs.clear();
        self.pending.clear();
        self.blocked.clear();
        self.waiting.fill(0);
        self.waiting_bits.fill(0);
        self.generated = 0;
        self.last_arrival = 0.0;
        self.verif_queue.clear();
        self.verif_busy = 0;
        self.in_verification = 0;
        self.finalized = 0;
        self.jobs_in_system = 0;
        self.observed_at = 0.0;
        self.last_int_jobs = 0.0;
        self.last_job_seconds = 0.0;
        self.credits.clear();
        self.last_int_stranded = 0.0;
        if let Some(series) = &mut self.series {
            series.stranded.clear();
            series.up.clear();
        }
        let acc = &mut self.acc;
        let (mut lat, mut fin) = (
            std::mem::take(&mut acc.latencies),
            std::mem::take(&mut acc.finality),
        );
        lat.clear();
        fin.clear();
        *acc = Accounting {
            latencies: lat,
            finality: fin,
            ..Default::default()
        };
        // The first arrival is drawn before `run`: its MMPP switches count from here.
        self.start_budget();

        self.cache.fill(CacheEntry::default());
        let m = sc.models.len();
        for (i, node) in self.nodes.iter_mut().enumerate() {
            let spec = &sc.nodes[i];
            let mut queue = std::mem::take(&mut node.queue);
            queue.clear();
            *node = NodeState {
                up: true,
                queue,
                idle_cap: spec.capacity(),
                ..Default::default()
            };
            if sc.initial_cache == InitialCache::Popular {
                for (rank, &mi) in self.popularity_order.iter().enumerate() {
                    let size = sc.models[mi].memory_gb;
                    if node.mem_used + size <= spec.memory_gb {
                        node.mem_used += size;
                        self.cache[i * m + mi] = CacheEntry {
                            state: CacheState::Ready,
                            pins: 0,
                            last_used: -(rank as f64),
                        };
                    }
                }
            }
        }
        self.cap_up = sc.nodes.iter().map(|n| n.capacity()).sum();
        self.cap_idle = self.cap_up;
        self.cap_stranded = 0.0;

        if let ArrivalProcess::Mmpp {
            mean_high_s,
            mean_low_s,
            ..
        } = sc.arrivals.process
        {
            // Start in the stationary distribution, so episodes are not biased to either state.
            self.mmpp_high = self.job_rng.uniform() * (mean_high_s + mean_low_s) < mean_high_s;
            let mean = if self.mmpp_high {
                mean_high_s
            } else {
                mean_low_s
            };
            self.mmpp_switch = self.job_rng.exponential(mean);
        }
        if let ArrivalProcess::Trace {
            trace,
            random_offset,
            ..
        } = &sc.arrivals.process
        {
            let spare = trace.len() - sc.jobs_per_episode as usize;
            self.trace_start = if *random_offset && spare > 0 {
                self.job_rng.below(spare as u64 + 1) as usize
            } else {
                0
            };
        }
        self.schedule_next_arrival();
        for (i, spec) in sc.nodes.iter().enumerate() {
            if let Some((mtbf, _)) = spec.churn {
                let t = self.churn_rng.exponential(mtbf);
                self.push(t, EventKind::NodeDown, i as u32, 0, 0);
            }
        }
        if sc.scrape_interval_s > 0.0 {
            self.push(sc.scrape_interval_s, EventKind::Scrape, 0, 0, 0);
        }
        self.run()
    }

    #[inline]
    fn push(&mut self, t: f64, kind: EventKind, node: u32, a: u32, epoch: u32) {
        self.seq += 1;
        self.events.push(Event {
            t,
            seq: self.seq,
            kind,
            node,
            a,
            epoch,
        });
    }

    fn schedule_next_arrival(&mut self) {
        if self.generated >= self.sc.jobs_per_episode {
            return;
        }
        let sc = &self.sc;
        let t = match &sc.arrivals.process {
            ArrivalProcess::Trace {
                trace, time_scale, ..
            } => {
                let i = self.trace_start + self.generated as usize;
                (trace.arrival_s[i] - trace.arrival_s[self.trace_start]) * time_scale
            }
            ArrivalProcess::Poisson => {
                self.last_arrival + self.job_rng.exponential(1.0 / sc.arrivals.rate_per_s)
            }
            &ArrivalProcess::Mmpp {
                high_rate,
                low_rate,
                mean_high_s,
                mean_low_s,
            } => {
                // Memoryless: draw at the current rate; if the state switches first, move to the
                // switch and draw again.
                let mut t = self.last_arrival;
                loop {
                    let rate = if self.mmpp_high { high_rate } else { low_rate };
                    let dt = if rate > 0.0 {
                        self.job_rng.exponential(1.0 / rate)
                    } else {
                        f64::INFINITY
                    };
                    // A switch is simulation work: switches without end (states far shorter
                    // than a gap between arrivals) end in the runaway guard, not a hang.
                    if t + dt < self.mmpp_switch || self.acc.work > self.run_limit {
                        break t + dt;
                    }
                    self.acc.work += 1;
                    t = self.mmpp_switch;
                    self.mmpp_high = !self.mmpp_high;
                    let mean = if self.mmpp_high {
                        mean_high_s
                    } else {
                        mean_low_s
                    };
                    self.mmpp_switch = t + self.job_rng.exponential(mean);
                }
            }
            &ArrivalProcess::Diurnal {
                period_s,
                amplitude,
            } => {
                // Thinning against the peak rate.
                let base = sc.arrivals.rate_per_s;
                let peak = base * (1.0 + amplitude);
                let mut t = self.last_arrival;
                loop {
                    t += self.job_rng.exponential(1.0 / peak);
                    let rate =
                        base * (1.0 + amplitude * (std::f64::consts::TAU * t / period_s).sin());
                    if self.job_rng.uniform() * peak < rate {
                        break t;
                    }
                }
            }
        };
        let t = if matches!(sc.arrivals.process, ArrivalProcess::Trace { .. }) {
            t
        } else {
            self.last_arrival + quantize(t - self.last_arrival, sc.time_quantum_s)
        };
        self.last_arrival = t;
        self.seq += 1;
        self.next_arrival = Some(Event {
            t,
            seq: self.seq,
            kind: EventKind::Arrival,
            node: 0,
            a: 0,
            epoch: 0,
        });
    }

    fn new_job(&mut self) -> u32 {
        let sc = &self.sc;
        let rng = &mut self.job_rng;
        let u = rng.uniform();
        let mode = Verification::ALL[self.mode_cdf.partition_point(|&c| c <= u)];
        let u = rng.uniform();
        let cdf = &self.model_cdf[mode.index()];
        let model = cdf.partition_point(|&c| c <= u).min(cdf.len() - 1);
        let (input, output) = match &sc.arrivals.process {
            ArrivalProcess::Trace { trace, .. } => {
                let i = self.trace_start + self.generated as usize;
                (trace.input_tokens[i], trace.output_tokens[i])
            }
            _ => (
                sc.workload
                    .input_tokens
                    .sample(rng, &mut self.normals)
                    .floor() as u32,
                sc.workload
                    .output_tokens
                    .sample(rng, &mut self.normals)
                    .floor() as u32,
            ),
        };
        let est_out = match sc.size_visibility {
            SizeVisibility::Exact => output as f64,
            SizeVisibility::Estimate => {
                let s2 = (1.0 + sc.estimate_cv * sc.estimate_cv).ln();
                output as f64 * (s2.sqrt() * self.normals.next(rng) - s2 / 2.0).exp()
            }
            SizeVisibility::Hidden => sc.workload.mean_output_tokens,
        };
        let md = &sc.models[model];
        let mult = sc.verification.multiplier[mode.index()];
        let job = Job {
            arrival: self.now,
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
            since: self.now,
        };
        match self.free_jobs.pop() {
            Some(id) => {
                self.jobs[id as usize] = job;
                id
            }
            None => {
                self.jobs.push(job);
                (self.jobs.len() - 1) as u32
            }
        }
    }

    #[inline]
    fn serves(&self, node: usize, kind: u32) -> bool {
        let k = kind as usize;
        self.serve[node * self.words + k / 64] & (1 << (k % 64)) != 0
    }

    /// Advances the clock, integrating the cluster-level quantities.
    #[inline]
    fn advance(&mut self, t: f64) {
        let dt = t - self.now;
        if dt > 0.0 {
            let a = &mut self.acc;
            a.int_jobs += dt * self.jobs_in_system as f64;
            a.int_idle += dt * self.cap_idle;
            a.int_stranded += dt * self.cap_stranded;
            a.int_up += dt * self.cap_up;
            if let Some(series) = &mut self.series {
                series.add(self.now, t, self.cap_stranded, self.cap_up);
            }
            self.now = t;
        }
    }

    /// Brings node `n`'s lazily integrated busy and up time to `now`; call before changing them.
    #[inline]
    fn touch(&mut self, n: usize) {
        let node = &mut self.nodes[n];
        let dt = self.now - node.last_t;
        if node.up {
            node.busy_int += dt * node.busy as f64;
            node.up_int += dt;
        }
        node.last_t = self.now;
    }

    /// Recomputes node `n`'s idle and stranded capacity and updates the cluster totals.
    #[inline]
    fn refresh(&mut self, n: usize) {
        let spec = &self.sc.nodes[n];
        let node = &self.nodes[n];
        let idle = if node.up {
            spec.speed * (spec.slots - node.busy) as f64
        } else {
            0.0
        };
        let stranded = if idle > 0.0 && node.queue.is_empty() && self.could_take_waiting(n) {
            idle
        } else {
            0.0
        };
        let node = &mut self.nodes[n];
        self.cap_idle += idle - node.idle_cap;
        self.cap_stranded += stranded - node.stranded_cap;
        node.idle_cap = idle;
        node.stranded_cap = stranded;
    }

    /// Whether some job waiting in a queue is of a kind node `n` can serve.
    #[inline]
    fn could_take_waiting(&self, n: usize) -> bool {
        let row = &self.serve[n * self.words..(n + 1) * self.words];
        row.iter().zip(&self.waiting_bits).any(|(a, b)| a & b != 0)
    }

    /// Recomputes every node and the totals from scratch (when the set of waiting kinds changed;
    /// also removes any floating-point drift of the incremental totals).
    fn refresh_all(&mut self) {
        for n in 0..self.nodes.len() {
            self.refresh(n);
        }
        self.cap_idle = self.nodes.iter().map(|x| x.idle_cap).sum();
        self.cap_stranded = self.nodes.iter().map(|x| x.stranded_cap).sum();
    }

    #[inline]
    fn waiting_add(&mut self, kind: u32) {
        let k = kind as usize;
        self.waiting[k] += 1;
        if self.waiting[k] == 1 {
            self.waiting_bits[k / 64] |= 1 << (k % 64);
            self.refresh_all();
        }
    }

    #[inline]
    fn waiting_remove(&mut self, kind: u32) {
        let k = kind as usize;
        self.waiting[k] -= 1;
        if self.waiting[k] == 0 {
            self.waiting_bits[k / 64] &= !(1 << (k % 64));
            self.refresh_all();
        }
    }

    /// Gives job `j` a slot on node `n` (which has a free one). Returns false, changing nothing,
    /// when the model cannot be brought into memory because other models are in use.
    fn start(&mut self, n: usize, j: u32) -> bool {
        let m = self.sc.models.len();
        let job = self.jobs[j as usize];
        let ci = n * m + job.model as usize;
        let mut start = f64::INFINITY;
        match self.cache[ci].state {
            CacheState::Ready => start = self.now,
            CacheState::Loading => {}
            CacheState::Absent => {
                let size = self.sc.models[job.model as usize].memory_gb;
                if !self.make_room(n, size) {
                    return false;
                }
                self.nodes[n].mem_used += size;
                self.cache[ci].state = CacheState::Loading;
                self.acc.cold_starts += 1;
                let t = self.now + self.load_time[job.model as usize];
                let epoch = self.nodes[n].epoch;
                self.push(t, EventKind::LoadDone, n as u32, job.model, epoch);
            }
        }
        self.cache[ci].pins += 1;
        self.cache[ci].last_used = self.now;
        self.touch(n);
        let node = &mut self.nodes[n];
        self.running[self.slot_off[n] + node.busy as usize] = Running {
            job: j,
            est: job.est_work,
            start,
        };
        node.busy += 1;
        if start.is_finite() {
            self.schedule_finish(n, j);
        }
        true
    }

    fn schedule_finish(&mut self, n: usize, j: u32) {
        let service = quantize(
            self.jobs[j as usize].work / self.sc.nodes[n].speed,
            self.sc.time_quantum_s,
        );
        let epoch = self.nodes[n].epoch;
        self.push(self.now + service, EventKind::Finish, n as u32, j, epoch);
    }

    /// Evicts least recently used idle models until `size` GB fit; false if they cannot.
    fn make_room(&mut self, n: usize, size: f64) -> bool {
        let m = self.sc.models.len();
        let memory = self.sc.nodes[n].memory_gb;
        let entries = &self.cache[n * m..(n + 1) * m];
        let evictable: f64 = entries
            .iter()
            .zip(&self.sc.models)
            .filter(|(e, _)| e.state == CacheState::Ready && e.pins == 0)
            .map(|(_, md)| md.memory_gb)
            .sum();
        if self.nodes[n].mem_used - evictable + size > memory + 1e-9 {
            return false;
        }
        while self.nodes[n].mem_used + size > memory + 1e-9 {
            let victim = (0..m)
                .filter(|&mi| {
                    let e = &self.cache[n * m + mi];
                    e.state == CacheState::Ready && e.pins == 0
                })
                .min_by(|&a, &b| {
                    self.cache[n * m + a]
                        .last_used
                        .total_cmp(&self.cache[n * m + b].last_used)
                })
                .expect("evictable memory was counted above");
            self.cache[n * m + victim].state = CacheState::Absent;
            self.nodes[n].mem_used -= self.sc.models[victim].memory_gb;
        }
        true
    }

    /// Starts queued jobs on node `n` while it has free slots (FIFO, head-of-line).
    fn fill_slots(&mut self, n: usize) {
        while self.nodes[n].busy < self.sc.nodes[n].slots {
            let Some(&j) = self.nodes[n].queue.front() else {
                break;
            };
            if !self.start(n, j) {
                break;
            }
            let node = &mut self.nodes[n];
            node.queue.pop_front();
            node.queued_est = if node.queue.is_empty() {
                0.0
            } else {
                node.queued_est - self.jobs[j as usize].est_work
            };
            self.waiting_remove(self.jobs[j as usize].kind);
        }
    }

    /// Sends the job at the head of the routing queue to node `n` (already checked legal).
    pub fn dispatch(&mut self, n: usize) {
        let j = self
            .pending
            .pop_front()
            .expect("dispatch needs a pending job");
        let job = &mut self.jobs[j as usize];
        job.decision = self.acc.decisions;
        self.acc.decisions += 1;
        job.node = n as u32;
        let (est, kind) = (job.est_work, job.kind);
        let node = &mut self.nodes[n];
        node.disp_count += 1;
        node.disp_est += est;
        let started =
            node.queue.is_empty() && node.busy < self.sc.nodes[n].slots && self.start(n, j);
        if !started {
            let node = &mut self.nodes[n];
            node.queue.push_back(j);
            node.queued_est += est;
            self.waiting_add(kind);
        }
        self.refresh(n);
    }

    fn on_finish(&mut self, n: usize, j: u32) {
        self.touch(n);
        let node = &mut self.nodes[n];
        let slots = &mut self.running[self.slot_off[n]..self.slot_off[n] + node.busy as usize];
        let pos = slots
            .iter()
            .position(|r| r.job == j)
            .expect("finished job holds a slot");
        slots.swap(pos, slots.len() - 1);
        node.busy -= 1;
        let job = self.jobs[j as usize];
        let m = self.sc.models.len();
        let e = &mut self.cache[n * m + job.model as usize];
        e.pins -= 1;
        e.last_used = self.now;

        // Answered: response metrics.
        self.jobs_in_system -= 1;
        if self.record_credits && job.decision != u64::MAX {
            self.credits.push((job.decision, self.now - job.since));
        }
        let sc = &self.sc;
        let latency = self.now - job.arrival;
        let service = quantize(job.work / sc.nodes[n].speed, sc.time_quantum_s);
        let best = quantize(
            job.work / self.best_speed[job.kind as usize],
            sc.time_quantum_s,
        );
        let acc = &mut self.acc;
        acc.latencies.push(latency);
        acc.sum_queueing += latency - service;
        acc.sum_slowdown += if best > 0.0 { latency / best } else { 1.0 };
        if sc.workload.slo_latency_s.is_some_and(|slo| latency <= slo) {
            acc.slo_met += 1;
        }

        // Then verification and settlement.
        let check = sc.verification.check_s[job.mode.index()];
        if sc.verification.verifiers > 0 && check > 0.0 {
            self.in_verification += 1;
            if self.verif_busy < sc.verification.verifiers {
                self.verif_busy += 1;
                self.push(self.now + check, EventKind::VerifyDone, 0, j, 0);
            } else {
                self.verif_queue.push_back(j);
            }
        } else {
            self.finalize(j);
        }
        self.fill_slots(n);
        self.refresh(n);
    }

    fn finalize(&mut self, j: u32) {
        let job = &self.jobs[j as usize];
        self.acc
            .finality
            .push(self.now + self.sc.verification.settle_s - job.arrival);
        self.finalized += 1;
        self.free_jobs.push(j);
    }

    fn on_verify_done(&mut self, j: u32) {
        self.in_verification -= 1;
        self.finalize(j);
        match self.verif_queue.pop_front() {
            Some(next) => {
                let check = self.sc.verification.check_s[self.jobs[next as usize].mode.index()];
                self.push(self.now + check, EventKind::VerifyDone, 0, next, 0);
            }
            None => self.verif_busy -= 1,
        }
    }

    fn on_load_done(&mut self, n: usize, model: u32) {
        let m = self.sc.models.len();
        self.cache[n * m + model as usize].state = CacheState::Ready;
        // Slot order keeps the scheduling of simultaneous finishes reproducible.
        let off = self.slot_off[n];
        for i in off..off + self.nodes[n].busy as usize {
            let r = self.running[i];
            if r.start.is_infinite() && self.jobs[r.job as usize].model == model {
                self.running[i].start = self.now;
                self.schedule_finish(n, r.job);
            }
        }
    }

    fn on_node_down(&mut self, n: usize) {
        self.touch(n);
        let m = self.sc.models.len();
        let node = &mut self.nodes[n];
        node.up = false;
        node.epoch += 1;
        let busy = std::mem::take(&mut node.busy) as usize;
        node.mem_used = 0.0;
        node.queued_est = 0.0;
        let queue = std::mem::take(&mut node.queue);
        self.cache[n * m..(n + 1) * m].fill(CacheEntry::default());
        // Work in progress is lost; every job goes back to the router, running ones first.
        for i in self.slot_off[n]..self.slot_off[n] + busy {
            self.retry(self.running[i].job);
        }
        for &j in &queue {
            self.retry(j);
            self.waiting_remove(self.jobs[j as usize].kind);
        }
        // Give the queue back so it keeps its capacity.
        let node = &mut self.nodes[n];
        node.queue = queue;
        node.queue.clear();
        self.cap_up -= self.sc.nodes[n].capacity();
        self.refresh(n);
        let (_, mttr) = self.sc.nodes[n].churn.expect("only churning nodes fail");
        let t = self.now + self.churn_rng.exponential(mttr);
        self.push(t, EventKind::NodeUp, n as u32, 0, 0);
    }

    fn retry(&mut self, j: u32) {
        let job = &mut self.jobs[j as usize];
        if self.record_credits && job.decision != u64::MAX {
            self.credits.push((job.decision, self.now - job.since));
        }
        job.since = self.now;
        self.jobs[j as usize].retries += 1;
        self.acc.retries += 1;
        self.pending.push_back(j);
    }

    fn on_node_up(&mut self, n: usize) {
        self.touch(n);
        self.nodes[n].up = true;
        self.cap_up += self.sc.nodes[n].capacity();
        self.refresh(n);
        // Jobs that had nowhere to go get another look.
        self.pending.extend(self.blocked.drain(..));
        let (mtbf, _) = self.sc.nodes[n].churn.expect("only churning nodes fail");
        let t = self.now + self.churn_rng.exponential(mtbf);
        self.push(t, EventKind::NodeDown, n as u32, 0, 0);
    }

    fn on_scrape(&mut self) {
        self.acc.work += self.nodes.len() as u64;
        for n in 0..self.nodes.len() {
            let w = self.work_left(n);
            let node = &mut self.nodes[n];
            node.snap_busy = node.busy;
            node.snap_queue = node.queue.len() as u32;
            node.snap_work = w;
            node.disp_count = 0;
            node.disp_est = 0.0;
        }
        self.observed_at = self.now;
        self.push(
            self.now + self.sc.scrape_interval_s,
            EventKind::Scrape,
            0,
            0,
            0,
        );
    }

    /// The router's estimate of node `n`'s work left: queued estimates plus what remains of the
    /// running jobs' estimates at the node's speed (never below zero per job).
    #[inline]
    fn work_left(&self, n: usize) -> f64 {
        let node = &self.nodes[n];
        let speed = self.sc.nodes[n].speed;
        let mut w = node.queued_est.max(0.0);
        let off = self.slot_off[n];
        for r in &self.running[off..off + node.busy as usize] {
            // Branch-free: a job still loading has `start` = inf, so the difference is +inf and
            // `min` leaves its whole estimate; an overrun estimate clamps at zero.
            w += (r.est - speed * (self.now - r.start)).min(r.est).max(0.0);
        }
        w
    }

    fn episode_over(&self) -> bool {
        self.generated >= self.sc.jobs_per_episode
            && self.pending.is_empty()
            && self.blocked.is_empty()
            && (!self.sc.drain || (self.jobs_in_system == 0 && self.in_verification == 0))
    }

    /// Runs events until the next decision or the end of the episode.
    pub fn run(&mut self) -> Outcome {
        self.start_budget();
        loop {
            if self.pooled {
                self.pool_dispatch();
            }
            while let Some(&j) = self.pending.front().filter(|_| !self.pooled) {
                // A view is work (jobs no node can take are re-tried after every repair, so
                // a draw that blocks them for good repeats views without end); one unit per
                // view, so that valid episodes with many blocked jobs stay within budget.
                self.acc.work += 1;
                if self.fill_view(j) {
                    return Outcome::Decision;
                }
                self.pending.pop_front();
                self.blocked.push(j);
            }
            if self.episode_over() {
                self.finish_episode();
                return Outcome::Done;
            }
            if self.acc.work > self.run_limit {
                self.finish_episode();
                // Every real node legal: a caller that routes before its next step (which
                // reports the runaway) must find a node to pick, not an empty mask.
                let n = self.nodes.len();
                self.view.mask[..n].fill(true);
                return Outcome::Runaway;
            }
            let Some(ev) = self.pop_event() else {
                // Only reachable if jobs are blocked with no node coming back, which validation
                // rules out (every blocked job waits for a churning node's NodeUp).
                debug_assert!(false, "event queue ran dry before the episode ended");
                self.finish_episode();
                return Outcome::Done;
            };
            self.advance(ev.t);
            let n = ev.node as usize;
            match ev.kind {
                EventKind::Arrival => {
                    self.run_limit += RUNAWAY_WORK_PER_UNIT;
                    let j = self.new_job();
                    self.generated += 1;
                    self.jobs_in_system += 1;
                    self.pending.push_back(j);
                    self.schedule_next_arrival();
                }
                EventKind::Finish if ev.epoch == self.nodes[n].epoch => self.on_finish(n, ev.a),
                EventKind::LoadDone if ev.epoch == self.nodes[n].epoch => {
                    self.on_load_done(n, ev.a)
                }
                EventKind::Finish | EventKind::LoadDone => {} // stale: the node failed since
                EventKind::NodeDown => self.on_node_down(n),
                EventKind::NodeUp => self.on_node_up(n),
                EventKind::VerifyDone => self.on_verify_done(ev.a),
                EventKind::Scrape => self.on_scrape(),
            }
            self.acc.work += 1;
        }
    }

    /// The most simulation work one call of [`Sim::run`] may do (from a decision to the next,
    /// or a whole pooled episode): twenty thousand units per job in the system or arriving
    /// meanwhile and per node, and ten million more. A valid episode needs a handful of events
    /// per job plus its scrapes and failures, which validation bounds to ten thousand units per
    /// job. Beyond it the episode is a runaway (a guard against inputs validation missed),
    /// reported as an error within seconds instead of a hang.
    fn start_budget(&mut self) {
        let units = self.jobs_in_system as u64 + self.nodes.len() as u64 + 1;
        self.run_start = self.acc.work;
        self.run_limit = self.acc.work + RUNAWAY_WORK_PER_UNIT * units + 10_000_000;
    }

    /// The work budget of the current (or last) call of [`Sim::run`].
    pub fn work_budget(&self) -> u64 {
        self.run_limit - self.run_start
    }

    /// Simulation work done since the current (or last) call of [`Sim::run`] began (events,
    /// scrapes and views counted per node read).
    pub fn work_done(&self) -> u64 {
        self.acc.work.saturating_sub(self.run_start)
    }

    /// The earliest event: the heap's top or the pending arrival (`Event`'s order is reversed
    /// for the max-heap, so the earlier one compares greater).
    #[inline]
    fn pop_event(&mut self) -> Option<Event> {
        match (self.events.peek(), self.next_arrival) {
            (Some(top), Some(arr)) if *top > arr => self.events.pop(),
            (_, Some(_)) => self.next_arrival.take(),
            (Some(_), None) => self.events.pop(),
            (None, None) => None,
        }
    }

    /// Pooled mode: hands waiting jobs, oldest first, to free compatible slots. A job that fits
    /// nowhere yet is skipped, not blocking the ones behind it, so no compatible slot idles while
    /// a job waits: stranded idle is zero by construction.
    fn pool_dispatch(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        // Kinds some free slot can serve: jobs of other kinds are skipped in O(1), so a long
        // queue costs little while the free slots are on nodes it cannot use.
        let mut free: u32 = 0;
        let mut servable = std::mem::take(&mut self.servable);
        servable.clear();
        servable.resize(self.words, 0);
        for n in 0..self.nodes.len() {
            let idle = self.sc.nodes[n].slots - self.nodes[n].busy;
            if self.nodes[n].up && idle > 0 {
                free += idle;
                let row = &self.serve[n * self.words..(n + 1) * self.words];
                servable.iter_mut().zip(row).for_each(|(a, b)| *a |= b);
            }
        }
        let mut i = 0;
        while free > 0 && i < self.pending.len() {
            let kind = self.jobs[self.pending[i] as usize].kind as usize;
            let (word, bit) = (kind / 64, 1u64 << (kind % 64));
            if servable[word] & bit != 0 && self.pool_place(self.pending[i]) {
                self.pending.remove(i);
                self.acc.decisions += 1;
                free -= 1;
            } else {
                // The oldest job of a kind did not fit: no younger one of that kind will.
                servable[word] &= !bit;
                i += 1;
            }
        }
        self.servable = servable;
    }

    /// Starts job `j` on a free compatible slot if there is one: a node with the model ready
    /// first, then the fastest, then the lowest index.
    fn pool_place(&mut self, j: u32) -> bool {
        let job = self.jobs[j as usize];
        let m = self.sc.models.len();
        let mut cand = std::mem::take(&mut self.candidates);
        cand.clear();
        cand.extend((0..self.nodes.len()).filter(|&n| {
            self.nodes[n].up
                && self.nodes[n].busy < self.sc.nodes[n].slots
                && self.serves(n, job.kind)
        }));
        let ready = |n: usize| self.cache[n * m + job.model as usize].state != CacheState::Absent;
        cand.sort_by(|&a, &b| {
            ready(b)
                .cmp(&ready(a))
                .then(self.sc.nodes[b].speed.total_cmp(&self.sc.nodes[a].speed))
                .then(a.cmp(&b))
        });
        let mut placed = false;
        for &n in &cand {
            self.jobs[j as usize].node = n as u32;
            if self.start(n, j) {
                self.refresh(n);
                placed = true;
                break;
            }
        }
        self.candidates = cand;
        placed
    }

    /// Writes the view of job `j`'s decision, mask included, in one pass over the nodes; returns
    /// whether some node is legal.
    fn fill_view(&mut self, j: u32) -> bool {
        let job = self.jobs[j as usize];
        let sc = &self.sc;
        let stale = sc.scrape_interval_s > 0.0;
        let m = sc.models.len();
        let model = job.model as usize;
        let load_s = self.load_time[model];
        let mut any = false;
        for (n, node) in self.nodes.iter().enumerate() {
            let legal = node.up && self.serves(n, job.kind);
            self.view.mask[n] = legal;
            any |= legal;
            let ready = self.cache[n * m + model].state != CacheState::Absent;
            let (busy, queue, work) = if stale {
                (
                    node.snap_busy,
                    node.snap_queue + node.disp_count,
                    node.snap_work + node.disp_est,
                )
            } else {
                (node.busy, node.queue.len() as u32, self.work_left(n))
            };
            // Capabilities were written once in `new`; only the state changes.
            let v = &mut self.view.nodes[n];
            v.up = node.up;
            v.busy_slots = busy;
            v.queue_len = queue;
            v.work_left = work;
            v.model_ready = ready;
            v.load_s = if ready { 0.0 } else { load_s };
        }
        self.view.now = self.now;
        self.view.observed_at = if stale { self.observed_at } else { self.now };
        self.view.jobs_in_system = self.jobs_in_system;
        self.view.job = JobView {
            model: job.model,
            model_gb: sc.models[model].memory_gb,
            verification: job.mode,
            input_tokens: job.input,
            output_tokens_est: job.est_out,
            size_visibility: sc.size_visibility,
            est_work: job.est_work,
            retries: job.retries,
        };
        any
    }

    fn finish_episode(&mut self) {
        for n in 0..self.nodes.len() {
            self.touch(n);
        }
        self.view.mask.fill(false);
        self.view.now = self.now;
    }

    /// Reward since the previous call: minus the weighted integrals, per DESIGN section 4.
    pub fn take_reward(&mut self) -> f64 {
        let r = &self.sc.reward;
        let dj = self.acc.int_jobs - self.last_int_jobs;
        self.last_job_seconds = dj;
        let ds = self.acc.int_stranded - self.last_int_stranded;
        self.last_int_jobs = self.acc.int_jobs;
        self.last_int_stranded = self.acc.int_stranded;
        let reward = -(r.jobs * dj + r.stranded * ds / self.sc.scales.speed) / r.norm_s;
        self.acc.episode_return += reward;
        reward
    }

    /// (decision, seconds in the system so far) of every placed job not yet answered.
    pub fn outstanding_credits(&self, out: &mut Vec<(u64, f64)>) {
        for (n, node) in self.nodes.iter().enumerate() {
            let running = &self.running[self.slot_off[n]..self.slot_off[n] + node.busy as usize];
            let jobs = node
                .queue
                .iter()
                .copied()
                .chain(running.iter().map(|r| r.job));
            for j in jobs {
                let job = &self.jobs[j as usize];
                if job.decision != u64::MAX {
                    out.push((job.decision, self.now - job.since));
                }
            }
        }
    }

    pub fn job_counts(&self) -> JobCounts {
        let queued: usize = self.nodes.iter().map(|n| n.queue.len()).sum();
        let in_slots: usize = self.nodes.iter().map(|n| n.busy as usize).sum();
        JobCounts {
            arrived: self.generated,
            answered: self.acc.latencies.len() as u64,
            routing: (self.pending.len() + self.blocked.len()) as u64,
            queued: queued as u64,
            in_slots: in_slots as u64,
            verifying: self.in_verification,
            finalized: self.finalized,
        }
    }

    /// Response latencies of the jobs answered so far this episode, in no particular order.
    pub fn latencies(&self) -> &[f64] {
        &self.acc.latencies
    }

    /// Node `n`'s busy slot-seconds over its slot-seconds up; `None` if it was never up.
    fn busy_fraction(&self, n: usize) -> Option<f64> {
        let node = &self.nodes[n];
        (node.up_int > 0.0).then(|| node.busy_int / (node.up_int * self.sc.nodes[n].slots as f64))
    }

    /// Per-node busy fraction so far (0 for a node never up).
    pub fn busy_fractions(&self) -> Vec<f64> {
        (0..self.nodes.len())
            .map(|n| self.busy_fraction(n).unwrap_or(0.0))
            .collect()
    }

    pub fn jobs_in_system(&self) -> u32 {
        self.jobs_in_system
    }

    pub fn decisions(&self) -> u64 {
        self.acc.decisions
    }

    /// Integrals so far: (jobs in system, idle capacity, stranded capacity, up capacity).
    pub fn integrals(&self) -> (f64, f64, f64, f64) {
        let a = &self.acc;
        (a.int_jobs, a.int_idle, a.int_stranded, a.int_up)
    }

    /// Metrics of the episode so far (complete once the episode is over).
    pub fn metrics(&mut self) -> EpisodeMetrics {
        // Nodes never up have no busy fraction and do not count in the Gini.
        let mut busy: Vec<f64> = (0..self.nodes.len())
            .filter_map(|n| self.busy_fraction(n))
            .collect();
        let a = &mut self.acc;
        let t = self.now;
        let finished = a.latencies.len() as f64;
        let mean_latency = metrics::mean(&a.latencies);
        let pct = metrics::percentile;
        let frac = |x: f64| if a.int_up > 0.0 { x / a.int_up } else { 0.0 };
        let per_s = |x: f64| if t > 0.0 { x / t } else { f64::NAN };
        let slo = self.sc.workload.slo_latency_s;
        let met = if slo.is_some() {
            a.slo_met as f64
        } else {
            finished
        };
        EpisodeMetrics {
            idle_capacity_frac: frac(a.int_idle),
            stranded_idle_frac: frac(a.int_stranded),
            mean_latency_s: mean_latency,
            p50_latency_s: pct(&mut a.latencies, 0.50),
            p95_latency_s: pct(&mut a.latencies, 0.95),
            p99_latency_s: pct(&mut a.latencies, 0.99),
            mean_queueing_delay_s: if finished > 0.0 {
                a.sum_queueing / finished
            } else {
                f64::NAN
            },
            mean_slowdown: if finished > 0.0 {
                a.sum_slowdown / finished
            } else {
                f64::NAN
            },
            throughput_jobs_per_s: per_s(finished),
            goodput_jobs_per_s: per_s(met),
            slo_attainment: match slo {
                Some(_) if finished > 0.0 => a.slo_met as f64 / finished,
                _ => f64::NAN,
            },
            cold_starts: a.cold_starts as f64,
            retries: a.retries as f64,
            mean_finality_s: metrics::mean(&a.finality),
            p99_finality_s: pct(&mut a.finality, 0.99),
            busy_gini: metrics::gini(&mut busy),
            mean_jobs_in_system: if t > 0.0 { a.int_jobs / t } else { 0.0 },
            jobs_arrived: self.generated as f64,
            jobs_finished: finished,
            decisions: a.decisions as f64,
            episode_time_s: t,
            episode_return: a.episode_return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{cdf, Series};

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

    #[test]
    fn cdf_never_selects_a_trailing_zero_weight() {
        let c = cdf(&[0.3, 0.0, 0.7, 0.0]);
        assert_eq!(c[0], 0.3);
        assert_eq!(c[1], 0.3);
        assert_eq!(c[2], f64::INFINITY);
        let pick = |u: f64| c.partition_point(|&x| x <= u);
        assert_eq!(pick(0.0), 0);
        assert_eq!(
            pick(0.3),
            2,
            "the zero-weight entry in the middle is skipped"
        );
        assert_eq!(pick(0.999_999_999_999), 2);
        // Shares that do not sum exactly to one still never reach the zero-weight tail.
        let c = cdf(&[1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0, 0.0]);
        assert_eq!(c.partition_point(|&x| x <= 0.999_999_999_999_999_9), 2);
    }
}
