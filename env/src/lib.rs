//! # haca-env: a discrete-event simulator of the HACA inference network
//!
//! - [`Scenario`]: a validated description of a network and its workload, read from TOML
//!   ([`Scenario::load`]; the raw serde types are in [`config`]); traces through [`Trace`].
//! - [`Env`]: the Gymnasium-style API over one simulated network: `reset(seed)`, then
//!   `step(action)` once per routing decision, returning a [`Step`] with the next
//!   [`haca_policy::ClusterView`], the reward, `terminated`/`truncated` and an [`Info`] whose
//!   `metrics` ([`EpisodeMetrics`]) hold DESIGN section 4's measures at the end of an episode.
//! - [`VecEnv`]: many envs stepped in parallel into one flat observation buffer, with a named
//!   [`AutoresetMode`]; step it inside [`in_pool`] so the calling thread shares the work.
//! - [`check_env`]: the conformance check every shipped scenario passes.
//! - [`bounds`]: the limits that keep every episode finite, and their checks.
//! - [`rollout`]: runs a [`haca_policy::Router`] over episodes.

pub mod bounds;
mod check;
pub mod config;
mod dist;
mod env;
mod metrics;
mod network;
mod randomize;
mod resolve;
mod rollout;
mod scenario;
mod sim;
mod trace;
mod vec_env;

/// The sub-streams of an episode seed: `derive_seed(episode_seed, index)` for each. The
/// trainer's own streams (`haca_train::seeds`) derive from the run's seed, a different base.
pub mod streams {
    /// Arrivals, sizes, models, estimates.
    pub const JOBS: u64 = 1;
    /// Node failures and repairs.
    pub const CHURN: u64 = 2;
    /// A randomized scenario's network and load.
    pub const RANDOMIZE: u64 = 3;
    /// Tie-breaking of heuristic routers in `run_episode`.
    pub const ROUTER_TIES: u64 = 0x524F_5554;
    /// Which client sends each job (only with more than one client).
    pub const CLIENTS: u64 = 4;
    /// The registry's heartbeat phases (only with a registry).
    pub const REGISTRY: u64 = 5;
    /// Synthetic prefix blocks: sessions and system prompts (only with prefix caching).
    pub const PREFIX: u64 = 6;
    /// Every index, for collision tests.
    pub const ALL: [u64; 7] = [
        JOBS,
        CHURN,
        RANDOMIZE,
        ROUTER_TIES,
        CLIENTS,
        REGISTRY,
        PREFIX,
    ];
}

pub use check::{check_env, CheckError, CheckReport};
pub use dist::Dist;
pub use env::{Env, EnvError, EnvSnapshot, Info, RestoreError, Step};
pub use metrics::{gini, percentile, percentile_sorted, EpisodeMetrics, Metric};
pub use network::{Clients, Demand, PrefixCaching, Registry, Settlement};
pub use randomize::{ChurnDraw, ProcessKind, Randomize};
pub use resolve::MAX_CLIENTS;
pub use rollout::{router_seed, run_episode, RolloutError};
pub use scenario::{
    ArrivalProcess, Arrivals, InitialCache, Model, Node, RewardWeights, Scenario, ScenarioError,
    VerificationLayer, Workload,
};
pub use sim::{CreditMode, JobCounts};
pub use trace::{Trace, TraceError};
pub use vec_env::{in_pool, AutoresetMode, EnvOutcome, VecEnv, VecEnvError};
