//! The gym-style environment: one simulated network, one routing decision per step.

use std::path::Path;
use std::sync::Arc;

use haca_policy::features::{self, GLOBAL_FEATURES, JOB_FEATURES, NODE_FEATURES};
use haca_policy::{ClusterView, ObsMut};

use crate::metrics::EpisodeMetrics;
use crate::scenario::{Scenario, ScenarioError};
use crate::sim::{JobCounts, Outcome, Sim};

/// Errors of the gym API. A router bug (masked node) is an error, never silently fixed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EnvError {
    #[error("action {action} is out of range: the network has {nodes} nodes")]
    OutOfRange { action: usize, nodes: usize },
    #[error("action {action} picks a masked node (down, without the job's capability, or without memory for its model)")]
    Masked { action: usize },
    #[error("step called on a finished episode: call reset first")]
    EpisodeOver,
    #[error("step called before reset")]
    NotReset,
    #[error("the episode ran away: {work} units of simulation work (the budget is {budget}) by simulated time {time:.3} s after {decisions} decisions; a scenario value (scrape interval, failure times, rates) makes events without end")]
    Runaway {
        work: u64,
        budget: u64,
        time: f64,
        decisions: u64,
    },
}

/// Information about the current step (Gymnasium's `info`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Info {
    /// Simulated time, seconds.
    pub time: f64,
    pub jobs_in_system: u32,
    /// Routing decisions made so far this episode.
    pub decisions: u64,
    /// The seed this episode's workload was drawn from: [`Env::replay`] with it reproduces the
    /// episode exactly (same arrivals, sizes, models and failures).
    pub episode_seed: u64,
    /// Episode index since the env was created.
    pub episode: u64,
    /// Nodes of this episode's network (it varies with `[randomize]`).
    pub nodes: usize,
    /// Offered load of this episode's network.
    pub offered_load: f64,
    /// Job-seconds spent in the system since the previous decision (the reward's jobs
    /// integral before its weight and norm).
    pub job_seconds: f64,
    /// Set on the step that ends an episode.
    pub metrics: Option<EpisodeMetrics>,
}

/// The result of a step; borrows the env's observation and info.
#[derive(Debug)]
pub struct Step<'a> {
    pub obs: &'a ClusterView,
    pub reward: f64,
    /// The episode ended by its own dynamics (every job answered).
    pub terminated: bool,
    /// The episode was cut (the last arrival was routed with `drain = false`).
    pub truncated: bool,
    pub info: &'a Info,
}

impl Step<'_> {
    pub fn done(&self) -> bool {
        self.terminated || self.truncated
    }
}

/// One simulated HACA network with the Gymnasium API: `reset(seed)`, then `step(action)` until
/// `terminated` or `truncated`. The observation is a [`ClusterView`]; [`Env::encode`] writes its
/// fixed-width feature encoding.
#[derive(Debug, Clone)]
pub struct Env {
    sim: Sim,
    info: Info,
    state: State,
    /// The actions of the current episode, so that [`Env::snapshot`] can describe the state as
    /// (episode seed, actions) and [`Env::restore`] rebuild it by replay.
    actions: Vec<u32>,
    /// Made by [`Env::fork`]: its snapshot would not replay.
    forked: bool,
}

/// Everything that determines an env's state: the seed stream, the current episode's seed and
/// the actions taken in it. The simulator is deterministic, so replaying the episode with these
/// actions rebuilds the state exactly (a trainer's checkpoint keeps these instead of the
/// simulator's internals).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct EnvSnapshot {
    /// The stream of episode seeds, after drawing the current episode's.
    pub stream: [u64; 4],
    pub episode_seed: u64,
    pub episode: u64,
    pub actions: Vec<u32>,
    /// The episode has ended and no reset followed yet.
    pub over: bool,
    /// The env was never reset.
    pub new: bool,
}

/// [`Env::restore`] could not rebuild a snapshot: it does not belong to this scenario.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the snapshot does not replay on this scenario: {0}; was it saved with another scenario?")]
pub struct RestoreError(String);

impl RestoreError {
    pub(crate) fn new(detail: String) -> RestoreError {
        RestoreError(detail)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    New,
    Running,
    Over,
    /// The simulator stopped a runaway episode: every step is an error until the next reset.
    RanAway,
}

impl Env {
    pub fn new(scenario: Arc<Scenario>) -> Env {
        Env {
            sim: Sim::new(scenario),
            info: Info::default(),
            state: State::New,
            actions: Vec::new(),
            forked: false,
        }
    }

    /// Loads a scenario file and builds an env on it.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Env, ScenarioError> {
        Ok(Env::new(Arc::new(Scenario::load(path)?)))
    }

    /// The scenario as loaded (with its `[randomize]` ranges, if any).
    pub fn scenario(&self) -> &Arc<Scenario> {
        &self.sim.base
    }

    /// The network of the current episode: a randomized scenario's draw (the scenario itself
    /// when it is not randomized, or before the first reset).
    pub fn episode_scenario(&self) -> &Arc<Scenario> {
        self.sim.scenario()
    }

    /// Starts an episode. `Some(seed)` reseeds the stream of episodes; `None` continues it, so
    /// `reset(Some(s))` followed by `reset(None)`s gives the same sequence of episodes every time.
    ///
    /// An episode always begins with a decision: the first arrival.
    pub fn reset(&mut self, seed: Option<u64>) -> (&ClusterView, &Info) {
        if let Some(s) = seed {
            self.sim.seed(s);
        }
        self.start(None)
    }

    /// Starts an episode whose workload is drawn from `episode_seed` (as reported in
    /// [`Info::episode_seed`]), without touching the seed stream: replays a logged episode.
    pub fn replay(&mut self, episode_seed: u64) -> (&ClusterView, &Info) {
        self.start(Some(episode_seed))
    }

    fn start(&mut self, episode_seed: Option<u64>) -> (&ClusterView, &Info) {
        if self.state != State::New {
            self.info.episode += 1;
        }
        let outcome = self.sim.begin_episode(episode_seed);
        debug_assert_ne!(outcome, Outcome::Done, "validation guarantees a first job");
        self.actions.clear();
        self.forked = false;
        self.sim.take_reward();
        self.state = if outcome == Outcome::Runaway {
            State::RanAway
        } else {
            State::Running
        };
        self.info = Info {
            time: self.sim.now(),
            jobs_in_system: self.sim.jobs_in_system(),
            decisions: 0,
            episode_seed: self.sim.episode_seed(),
            episode: self.info.episode,
            nodes: self.sim.scenario().nodes.len(),
            offered_load: self.sim.scenario().offered_load(),
            job_seconds: 0.0,
            metrics: None,
        };
        (&self.sim.view, &self.info)
    }

    fn runaway(&self) -> EnvError {
        EnvError::Runaway {
            work: self.sim.work_done(),
            budget: self.sim.work_budget(),
            time: self.sim.now(),
            decisions: self.sim.decisions(),
        }
    }

    /// Runs one whole episode as the pooled reference: jobs wait in one central queue and go to
    /// the first free compatible slot (model ready first, then the fastest node). There are no
    /// routing decisions; the workload is the one `reset(seed)` would give, so the result is
    /// comparable with any router's on the same seed. It is the zero point of stranded idle.
    pub fn run_pooled(&mut self, seed: Option<u64>) -> Result<EpisodeMetrics, EnvError> {
        if let Some(s) = seed {
            self.sim.seed(s);
        }
        if self.state != State::New {
            self.info.episode += 1;
        }
        let outcome = self.sim.run_pooled_episode();
        if outcome == Outcome::Runaway {
            self.state = State::RanAway;
            return Err(self.runaway());
        }
        debug_assert_eq!(outcome, Outcome::Done);
        self.sim.take_reward();
        self.state = State::Over;
        let metrics = self.sim.metrics();
        self.info = Info {
            time: self.sim.now(),
            jobs_in_system: self.sim.jobs_in_system(),
            decisions: self.sim.decisions(),
            episode_seed: self.sim.episode_seed(),
            episode: self.info.episode,
            nodes: self.sim.scenario().nodes.len(),
            offered_load: self.sim.scenario().offered_load(),
            job_seconds: 0.0,
            metrics: Some(metrics),
        };
        Ok(metrics)
    }

    /// Routes the current job to node `action` and runs to the next decision.
    pub fn step(&mut self, action: usize) -> Result<Step<'_>, EnvError> {
        match self.state {
            State::New => return Err(EnvError::NotReset),
            State::Over => return Err(EnvError::EpisodeOver),
            State::RanAway => return Err(self.runaway()),
            State::Running => {}
        }
        let nodes = self.sim.view.mask.len();
        if action >= nodes {
            return Err(EnvError::OutOfRange { action, nodes });
        }
        if !self.sim.view.mask[action] {
            return Err(EnvError::Masked { action });
        }
        self.sim.dispatch(action);
        self.actions.push(action as u32);
        let outcome = self.sim.run();
        if outcome == Outcome::Runaway {
            self.state = State::RanAway;
            return Err(self.runaway());
        }
        let reward = self.sim.take_reward();
        let over = outcome == Outcome::Done;
        self.info.time = self.sim.now();
        self.info.jobs_in_system = self.sim.jobs_in_system();
        self.info.decisions = self.sim.decisions();
        self.info.job_seconds = self.sim.last_job_seconds();
        self.info.metrics = None;
        if over {
            self.state = State::Over;
            self.info.metrics = Some(self.sim.metrics());
        }
        let drain = self.sim.scenario().drain;
        Ok(Step {
            obs: &self.sim.view,
            reward,
            terminated: over && drain,
            truncated: over && !drain,
            info: &self.info,
        })
    }

    /// A copy of this env whose future (arrivals not yet drawn, their sizes, failures) is a
    /// fresh sample drawn from `seed`: what a router that cannot see the future may expect
    /// from here. Forks made with the same seed share that future (common random numbers), so
    /// they compare actions, not luck. A fork cannot be snapshotted: its state no longer
    /// follows from its episode seed.
    pub fn fork(&self, seed: u64) -> Env {
        let mut fork = self.clone();
        fork.sim.fork_future(seed);
        fork.forked = true;
        fork
    }

    /// The state as (seed stream, episode seed, actions): see [`EnvSnapshot`].
    pub fn snapshot(&self) -> EnvSnapshot {
        assert!(
            !self.forked,
            "a fork's state does not follow from its episode seed"
        );
        EnvSnapshot {
            stream: self.sim.stream_state(),
            episode_seed: self.info.episode_seed,
            episode: self.info.episode,
            actions: self.actions.clone(),
            over: self.state == State::Over,
            new: self.state == State::New,
        }
    }

    /// Rebuilds the state a [`Env::snapshot`] describes, by replaying its episode with its
    /// actions. The env's observation, info and seed stream are then those of the snapshot.
    pub fn restore(&mut self, snap: &EnvSnapshot) -> Result<(), RestoreError> {
        if snap.new {
            let old = std::mem::replace(self, Env::new(self.sim.base.clone()));
            // What the caller set up (credits, series) is the env's, not the snapshot's.
            self.sim.keep_settings(&old.sim);
            self.sim.set_stream_state(snap.stream);
            return Ok(());
        }
        self.state = State::New;
        self.replay(snap.episode_seed);
        for (i, &a) in snap.actions.iter().enumerate() {
            let step = self
                .step(a as usize)
                .map_err(|e| RestoreError::new(format!("action {i} ({a}): {e}")))?;
            if step.done() != (i + 1 == snap.actions.len() && snap.over) {
                return Err(RestoreError::new(format!(
                    "the episode ends at action {i} of {}",
                    snap.actions.len()
                )));
            }
        }
        if snap.over && snap.actions.is_empty() {
            return Err(RestoreError::new("an ended episode without actions".into()));
        }
        self.info.episode = snap.episode;
        self.sim.set_stream_state(snap.stream);
        // The replay's own credits were collected the first time round.
        self.sim.take_credits(&mut Vec::new());
        Ok(())
    }

    /// Per-job credit: unless `Off`, every job that leaves a placement (answered, or handed
    /// back by a failure) records the decision that placed it and its credit;
    /// [`Env::take_credits`] collects them. With [`CreditMode::Latency`] the credit is the
    /// seconds it spent in the system under that placement, and an episode's credits sum to its
    /// jobs integral (every job's latency), so a trainer can charge each routing decision with
    /// what its own job cost instead of spreading that cost over later steps.
    /// [`CreditMode::Marginal`] adds the waiting the job imposed on the jobs queued behind it:
    /// what the decision cost the network (from the next reset on: the queue integrals it needs
    /// start with an episode). [`CreditMode::Amortized`] also shares each cold load among the
    /// jobs it serves (refunds to the loading decision arrive when the copy leaves memory;
    /// [`Env::outstanding_credits`] includes those owed so far), from the next reset on.
    /// [`CreditMode::Displacement`] charges a job's slot hold to every job that started from
    /// the node's queue after it until the queue emptied (charges owed arrive when it empties).
    /// [`CreditMode::CopyValue`] is `Marginal` with each loading decision paid what its model
    /// copy saved the later jobs that ran on it (refunds as with `Amortized`).
    pub fn set_credit_mode(&mut self, mode: crate::CreditMode) {
        self.sim.set_credit_mode(mode);
    }

    /// Weight of the externality in a per-job credit (`Marginal`, `Amortized`,
    /// `Displacement`, `CopyValue`): the waiting a job's hold imposed on others, and a copy's
    /// savings for others, count `w` times (1 by default), from the next reset on.
    pub fn set_externality_weight(&mut self, w: f64) {
        self.sim.set_externality_weight(w);
    }

    /// Moves the credits recorded since the last call into `out` as (decision, seconds).
    pub fn take_credits(&mut self, out: &mut Vec<(u64, f64)>) {
        self.sim.take_credits(out);
    }

    /// (decision, seconds in the system so far) of every placed job not yet answered, and with
    /// amortized or copy-value credit the load refunds owed if every model copy left memory now.
    pub fn outstanding_credits(&self, out: &mut Vec<(u64, f64)>) {
        self.sim.outstanding_credits(out);
    }

    /// The current decision as nobody in the network sees it: every node's present state
    /// (all clients' dispatches, no scrape delay) and dead listed nodes masked while a live
    /// legal node remains; the job and the deciding client as in [`Env::obs`]. For privileged
    /// teachers in training (`init_from = "oracle:<router>"`), never for routing.
    pub fn oracle_view(&self, out: &mut ClusterView) {
        self.sim.oracle_view(out);
    }

    /// The current observation.
    pub fn obs(&self) -> &ClusterView {
        &self.sim.view
    }

    pub fn info(&self) -> &Info {
        &self.info
    }

    /// Whether the episode has ended (reset to start another).
    pub fn is_over(&self) -> bool {
        self.state == State::Over
    }

    /// Node rows of the observation encoding (the scenario's `episode.max_nodes`).
    pub fn max_nodes(&self) -> usize {
        self.sim.scenario().max_nodes
    }

    /// Writes the feature encoding of the current observation (see `haca_policy::features`)
    /// into `out`, which has `max_nodes()` node rows.
    pub fn encode(&self, out: ObsMut<'_>) {
        features::encode(&self.sim.view, out);
    }

    /// Where every job of the episode is (for conservation checks and debugging).
    pub fn job_counts(&self) -> JobCounts {
        self.sim.job_counts()
    }

    /// Metrics of the episode so far (final once it is over).
    pub fn metrics(&mut self) -> EpisodeMetrics {
        self.sim.metrics()
    }

    /// Records stranded idle capacity over time in bins of `bin_s` seconds from the next
    /// episode on (`None` stops). Off by default: it costs a little on every event.
    pub fn record_stranded_series(&mut self, bin_s: Option<f64>) {
        self.sim.record_series(bin_s.filter(|b| *b > 0.0));
    }

    /// (bin middle time s, stranded fraction of up capacity) of this episode, if recording.
    pub fn stranded_series(&self) -> Vec<(f64, f64)> {
        self.sim.series().map(|s| s.points()).unwrap_or_default()
    }

    /// Response latencies of this episode's answered jobs, in no particular order (for CDFs).
    pub fn latencies(&self) -> &[f64] {
        self.sim.latencies()
    }

    /// Per-node busy fraction of this episode (final once it is over).
    pub fn busy_fractions(&self) -> Vec<f64> {
        self.sim.busy_fractions()
    }

    /// Integrals so far: (jobs in system, idle capacity, stranded capacity, up capacity), in
    /// job-seconds and work units.
    pub fn integrals(&self) -> (f64, f64, f64, f64) {
        self.sim.integrals()
    }

    /// Feature block sizes `(max_nodes * NODE_FEATURES, JOB_FEATURES, GLOBAL_FEATURES)`.
    pub fn feature_sizes(&self) -> (usize, usize, usize) {
        (
            self.max_nodes() * NODE_FEATURES,
            JOB_FEATURES,
            GLOBAL_FEATURES,
        )
    }
}
