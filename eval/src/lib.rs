//! # haca-eval: honest comparisons of HACA routing policies
//!
//! - [`Contender`]: a router (any name `haca_policy::router_by_name` knows) or the pooled
//!   reference; [`run_episode`] runs one seeded episode of it.
//! - [`compare`]: every contender on the same seeds, in parallel, summarized as mean and 95%
//!   confidence interval ([`stats`]) into a [`Comparison`] with its table, JSON and CSV.
//! - [`sweep`] (metrics against offered load or the number of clients) and [`capacity`] (nodes needed to meet a p99 SLO).
//! - [`plots`]: SVG and PNG charts; [`frontier`]: latency against stranded capacity, per router; [`bench`]: decisions per second.
//!
//! The `haca-eval` binary is the command-line front of these.

pub mod bench;
mod compare;
mod contender;
pub mod frontier;
mod paired;
pub mod plots;
pub mod stats;
mod sweep;

pub use compare::{compare, Comparison, ContenderResult, TABLE_METRICS};
pub use contender::{episode_seed, run_episode, Contender, EpisodeRecord, EvalError};
pub use paired::Pair;
pub use sweep::{
    capacity, capacity_chart, capacity_json, capacity_table, parse_clients, parse_range, sweep,
    CapacityResult, Sweep, SweepAxis, SWEEP_METRICS,
};

/// An error and its causes on one line, for a command line's `error: ...`. A cause whose text
/// the message already quotes (many errors here name their cause in their own message) is not
/// repeated.
pub fn error_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out.replace('\n', " ")
}

#[cfg(test)]
mod error_line_tests {
    #[test]
    fn quoted_causes_are_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = anyhow::Error::new(io).context("a.toml: cannot read: no such file");
        assert_eq!(
            super::error_line(e.as_ref()),
            "a.toml: cannot read: no such file"
        );
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = anyhow::Error::new(io).context("a.toml: cannot read\nthe file");
        assert_eq!(
            super::error_line(e.as_ref()),
            "a.toml: cannot read the file: no such file"
        );
    }
}
