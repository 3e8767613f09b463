//! The verdict of a run: its policy against the best heuristic, paired episode by episode on
//! seeds nothing was selected on, in one line a person reads first. It is printed at the end of
//! every run and recorded in the exported file's metadata (key `verdict`).

use haca_env::Metric;
use std::fmt;

use haca_eval::Comparison;
use serde_json::{json, Value};

/// How the policy compares with the best heuristic on mean latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The paired 95% interval of (policy - heuristic) lies below zero.
    Beats,
    /// The interval contains zero.
    Ties,
    /// The interval lies above zero.
    Loses,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Beats => "beats",
            Outcome::Ties => "ties",
            Outcome::Loses => "loses",
        }
    }
}

/// A paired comparison of one policy against the best heuristic.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub outcome: Outcome,
    pub baseline: String,
    pub metric: Metric,
    /// Mean and 95% half-width of (policy - baseline), episode by episode.
    pub paired_mean: f64,
    pub paired_ci95: f64,
    pub policy_mean: f64,
    pub baseline_mean: f64,
    /// Stranded idle, paired the same way.
    pub stranded_mean: f64,
    pub stranded_ci95: f64,
    pub episodes: usize,
    pub seed: u64,
    /// How the policy acted: `greedy` or `sample` (the run's `eval_selection`).
    pub selection: String,
}

impl Verdict {
    /// The verdict on contender `policy` of `cmp` (acting as `selection` says) against `cmp`'s
    /// best heuristic; `None` when the comparison lacks either.
    pub fn from_comparison(cmp: &Comparison, policy: &str, selection: &str) -> Option<Verdict> {
        let metric = Metric::MeanLatency;
        let best = cmp.best_heuristic()?;
        let baseline = best.contender.name().to_string();
        let d = cmp.paired(policy, &baseline, metric)?;
        let s = cmp.paired(policy, &baseline, Metric::StrandedIdleFrac)?;
        let outcome = if d.mean + d.ci95 < 0.0 {
            Outcome::Beats
        } else if d.mean - d.ci95 > 0.0 {
            Outcome::Loses
        } else {
            Outcome::Ties
        };
        Some(Verdict {
            outcome,
            metric,
            paired_mean: d.mean,
            paired_ci95: d.ci95,
            policy_mean: cmp.result(policy)?.get(metric).mean,
            baseline_mean: best.get(metric).mean,
            stranded_mean: s.mean,
            stranded_ci95: s.ci95,
            episodes: cmp.episodes,
            seed: cmp.seed,
            selection: selection.to_string(),
            baseline,
        })
    }

    pub fn beats(&self) -> bool {
        self.outcome == Outcome::Beats
    }

    /// The one line: what the policy does against the heuristic, with the numbers.
    pub fn line(&self) -> String {
        let ci = format!(
            "{:+.3} ± {:.3} s (paired 95%, {} episodes; {:.3} s against {:.3} s)",
            self.paired_mean, self.paired_ci95, self.episodes, self.policy_mean, self.baseline_mean
        );
        let who = if self.selection == "sample" {
            "policy (sampled)"
        } else {
            "policy"
        };
        match self.outcome {
            Outcome::Beats => format!("{who} beats {}: mean latency {ci}", self.baseline),
            Outcome::Ties => format!(
                "{who} TIES {}: mean latency {ci}: not significantly better",
                self.baseline
            ),
            Outcome::Loses => format!(
                "{who} LOSES to {} by {ci} mean latency: do not deploy it",
                self.baseline
            ),
        }
    }

    /// The metadata record (`policy/FORMAT.md`, key `verdict`).
    pub fn to_json(&self) -> Value {
        json!({
            "line": self.line(),
            "outcome": self.outcome.as_str(),
            "baseline": self.baseline,
            "metric": self.metric.name(),
            "paired_mean": self.paired_mean,
            "paired_ci95": self.paired_ci95,
            "policy_mean": self.policy_mean,
            "baseline_mean": self.baseline_mean,
            "stranded_paired_mean": self.stranded_mean,
            "stranded_paired_ci95": self.stranded_ci95,
            "episodes": self.episodes,
            "seed": self.seed,
            "selection": self.selection,
        })
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line())
    }
}
