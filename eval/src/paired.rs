//! Paired differences: a learned policy against each heuristic, episode by episode on the same
//! seeds, and which heuristics a policy Pareto-dominates.

use std::fmt::Write as _;

use haca_env::Metric;
use serde_json::{json, Value};

use crate::compare::{finite, num, signed, Comparison};
use crate::contender::Contender;
use crate::stats::{summarize, Summary};

/// One policy minus one heuristic on the two metrics of the frontier.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    pub policy: String,
    pub heuristic: String,
    /// Whether `heuristic` is the comparison's best (lowest mean latency).
    pub best: bool,
    pub latency: Summary,
    pub stranded: Summary,
}

impl Pair {
    /// Lower mean latency AND lower stranded idle, both paired 95% intervals entirely below
    /// zero: the policy is better on both axes, not just on the means.
    pub fn dominates(&self) -> bool {
        below_zero(self.latency) && below_zero(self.stranded)
    }

    pub fn to_json(&self) -> Value {
        let s = |x: Summary| json!({"mean": finite(x.mean), "ci95": finite(x.ci95)});
        json!({
            "router": self.policy,
            "baseline": self.heuristic,
            "best": self.best,
            "dominates": self.dominates(),
            "mean_latency_s": s(self.latency),
            "stranded_idle_frac": s(self.stranded),
        })
    }
}

fn below_zero(s: Summary) -> bool {
    s.mean + s.ci95 < 0.0
}

impl Comparison {
    /// `a - b` on `metric`, episode by episode, summarized (mean ± 95% CI of the difference).
    /// Both ran on the same seeds, so the difference cancels the variation the two share (the
    /// workload's): the direct test of a difference under common random numbers.
    /// Episodes where the metric does not apply (NaN) are left out. `None` for an unknown
    /// contender or metric.
    pub fn paired(&self, a: &str, b: &str, metric: Metric) -> Option<Summary> {
        let (ra, rb) = (self.result(a)?, self.result(b)?);
        let diffs: Vec<f64> = ra
            .episodes
            .iter()
            .zip(&rb.episodes)
            .map(|(x, y)| x.value(metric) - y.value(metric))
            .filter(|d| !d.is_nan())
            .collect();
        Some(summarize(&diffs))
    }

    /// Each learned policy against every heuristic, paired; per policy the best heuristic
    /// comes first, then the others in contender order.
    pub fn pairs(&self) -> Vec<Pair> {
        let best = self.best_heuristic().map(|b| b.contender.name());
        let mut heuristics: Vec<&str> = self
            .results
            .iter()
            .filter(|r| r.contender.is_heuristic())
            .map(|r| r.contender.name())
            .collect();
        heuristics.sort_by_key(|h| Some(*h) != best);
        let policies = self
            .results
            .iter()
            .filter(|r| matches!(r.contender, Contender::Policy { .. }))
            .map(|r| r.contender.name());
        let mut out = Vec::new();
        for p in policies {
            for &h in &heuristics {
                out.push(Pair {
                    policy: p.to_string(),
                    heuristic: h.to_string(),
                    best: Some(h) == best,
                    latency: self
                        .paired(p, h, Metric::MeanLatency)
                        .expect("known contenders"),
                    stranded: self
                        .paired(p, h, Metric::StrandedIdleFrac)
                        .expect("known contenders"),
                });
            }
        }
        out
    }

    /// The table's footnote: each policy against the best heuristic, then the heuristics it
    /// Pareto-dominates.
    pub fn paired_lines(&self) -> String {
        let pairs = self.pairs();
        let mut out = String::new();
        for p in pairs.iter().filter(|p| p.best) {
            let _ = writeln!(
                out,
                "paired, {} - {} on the same episodes: mean_latency_s {} ± {}, stranded_idle_frac {} ± {}",
                p.policy,
                p.heuristic,
                signed(p.latency.mean),
                num(p.latency.ci95),
                signed(p.stranded.mean),
                num(p.stranded.ci95)
            );
            let beaten: Vec<&str> = pairs
                .iter()
                .filter(|q| q.policy == p.policy && q.dominates())
                .map(|q| q.heuristic.as_str())
                .collect();
            let _ = writeln!(
                out,
                "{} dominates (latency and stranded idle, both paired 95% intervals below zero): {}",
                p.policy,
                if beaten.is_empty() {
                    "no heuristic".to_string()
                } else {
                    beaten.join(", ")
                }
            );
        }
        out
    }
}
