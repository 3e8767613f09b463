//! # haca-eval: honest comparisons of HACA routing policies
//!
//! - [`Contender`]: a router (any name `haca_policy::router_by_name` knows) or the pooled
//!   reference; [`run_episode`] runs one seeded episode of it.
//! - [`compare`]: every contender on the same seeds, in parallel, summarized as mean and 95%
//!   confidence interval ([`stats`]) into a [`Comparison`] with its table, JSON and CSV.
//! - [`sweep`] (metrics against offered load) and [`capacity`] (nodes needed to meet a p99 SLO).
//! - [`plots`]: SVG and PNG charts; [`bench`]: decisions per second.
//!
//! The `haca-eval` binary is the command-line front of these.

pub mod bench;
mod compare;
mod contender;
pub mod plots;
pub mod stats;
mod sweep;

pub use compare::{compare, lower_is_better, Comparison, ContenderResult, TABLE_METRICS};
pub use contender::{episode_seed, run_episode, Contender, EpisodeRecord, EvalError};
pub use sweep::{
    capacity, capacity_chart, capacity_json, capacity_table, parse_range, sweep, CapacityResult,
    Sweep, SWEEP_METRICS,
};
