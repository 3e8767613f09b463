//! Every contender on the same seeded episodes: means, confidence intervals, and the report.

use std::fmt::Write as _;
use std::sync::Arc;

use haca_env::{EpisodeMetrics, Metric, Scenario};
use indicatif::ProgressBar;
use rayon::prelude::*;
use serde_json::{json, Map, Value};

use crate::contender::{run_episode, Contender, EpisodeRecord, EvalError};
use crate::paired::Pair;
use crate::stats::{summarize, Summary};

/// One contender's results.
#[derive(Debug, Clone)]
pub struct ContenderResult {
    pub contender: Contender,
    /// Every metric of `EpisodeMetrics::NAMES`, summarized over the episodes.
    pub metrics: Vec<(&'static str, Summary)>,
    /// The first episodes, with latencies, busy fractions and the stranded series (for plots).
    pub details: Vec<EpisodeRecord>,
    /// Every episode's metrics, in episode order (episode `i` of every contender ran on the
    /// same seed), for paired comparisons.
    pub episodes: Vec<EpisodeMetrics>,
}

impl ContenderResult {
    pub fn get(&self, metric: Metric) -> Summary {
        // Built in `Metric::ALL` order (see `compare`).
        self.metrics[metric as usize].1
    }
}

/// A full comparison. Episode `i` of every contender uses the same seed (common random
/// numbers), so differences come from routing, not from luck of the draw.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub scenario: String,
    pub episodes: usize,
    pub seed: u64,
    pub results: Vec<ContenderResult>,
}

/// Runs `episodes` episodes of every contender in parallel (rayon). The first `detailed`
/// episodes of each keep per-job details for plots.
pub fn compare(
    scenario: &Arc<Scenario>,
    contenders: &[Contender],
    episodes: usize,
    seed: u64,
    detailed: usize,
    progress: &ProgressBar,
) -> Result<Comparison, EvalError> {
    if episodes == 0 {
        return Err(EvalError::Invalid("--episodes must be at least 1".into()));
    }
    for (i, c) in contenders.iter().enumerate() {
        if contenders[..i].iter().any(|o| o.name() == c.name()) {
            return Err(EvalError::Invalid(format!(
                "two contenders are named `{}`: results are looked up by name (see Contender::disambiguate)",
                c.name()
            )));
        }
    }
    let records: Vec<EpisodeRecord> = (0..contenders.len() * episodes)
        .into_par_iter()
        .map(|k| {
            let (c, ep) = (k / episodes, k % episodes);
            let r = run_episode(scenario, &contenders[c], seed, ep, ep < detailed);
            progress.inc(1);
            r
        })
        .collect::<Result<_, _>>()?;
    let results = contenders
        .iter()
        .zip(records.chunks(episodes))
        .map(|(c, recs)| {
            let metrics = Metric::ALL
                .into_iter()
                .map(|m| {
                    let values: Vec<f64> = recs.iter().map(|r| r.metrics.value(m)).collect();
                    (m.name(), summarize(&values))
                })
                .collect();
            ContenderResult {
                contender: c.clone(),
                metrics,
                details: recs.iter().take(detailed).cloned().collect(),
                episodes: recs.iter().map(|r| r.metrics).collect(),
            }
        })
        .collect();
    Ok(Comparison {
        scenario: scenario.name.clone(),
        episodes,
        seed,
        results,
    })
}

/// The columns of the printed table (the JSON and CSV have every metric).
pub const TABLE_METRICS: [Metric; 8] = [
    Metric::MeanLatency,
    Metric::P99Latency,
    Metric::StrandedIdleFrac,
    Metric::IdleCapacityFrac,
    Metric::MeanSlowdown,
    Metric::SloAttainment,
    Metric::ColdStarts,
    Metric::BusyGini,
];

pub(crate) fn num(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

pub(crate) fn signed(v: f64) -> String {
    if v.is_nan() || v < 0.0 {
        num(v)
    } else {
        format!("+{}", num(v))
    }
}

fn cell(s: Summary) -> String {
    if s.ci95.is_nan() {
        num(s.mean)
    } else {
        format!("{}±{}", num(s.mean), num(s.ci95))
    }
}

fn change(v: f64, base: f64) -> String {
    if v.is_nan() || base.is_nan() || base == 0.0 {
        "-".into()
    } else {
        format!("{:+.0}%", 100.0 * (v - base) / base)
    }
}

impl Comparison {
    /// The heuristic with the lowest mean latency (the one to beat).
    pub fn best_heuristic(&self) -> Option<&ContenderResult> {
        self.results
            .iter()
            .filter(|r| r.contender.is_heuristic())
            .min_by(|a, b| {
                a.get(Metric::MeanLatency)
                    .mean
                    .total_cmp(&b.get(Metric::MeanLatency).mean)
            })
    }

    pub fn result(&self, name: &str) -> Option<&ContenderResult> {
        self.results.iter().find(|r| r.contender.name() == name)
    }

    /// The verdict each exported policy's file records, in contender order: (name, its JSON
    /// object or `None` when the file has none). Sampling variants are left out (same file).
    pub fn verdicts(&self) -> Vec<(String, Option<Value>)> {
        self.results
            .iter()
            .filter_map(|r| Some((r.contender.name().to_string(), r.contender.verdict()?)))
            .collect()
    }

    /// The table's metrics: [`TABLE_METRICS`], and the prefix cache hit rate when some
    /// contender had prefix hits.
    fn table_metrics(&self) -> Vec<Metric> {
        let mut ms = TABLE_METRICS.to_vec();
        if self
            .results
            .iter()
            .any(|r| r.get(Metric::PrefixHitRate).mean > 0.0)
        {
            ms.push(Metric::PrefixHitRate);
        }
        ms
    }

    /// The human-readable table: mean ± 95% CI per metric, `*` on the best value of each
    /// column, and each contender's latency against today's client (`sdk`, or `random` when
    /// `sdk` is not in the comparison), and its latency and stranded idle against the best
    /// heuristic.
    pub fn table(&self) -> String {
        let metrics = self.table_metrics();
        let mut rows: Vec<Vec<String>> = Vec::new();
        let mut header = vec!["router".to_string()];
        header.extend(metrics.iter().map(|m| m.to_string()));
        let best = self.best_heuristic();
        let today = ["sdk", "random"].into_iter().find_map(|n| self.result(n));
        header.push(format!(
            "lat vs {}",
            today.map_or("sdk", |r| r.contender.name())
        ));
        if let Some(b) = best {
            header.push(format!("lat vs {}", b.contender.name()));
            header.push(format!("stranded vs {}", b.contender.name()));
        }
        rows.push(header);
        let best_of: Vec<f64> = metrics
            .iter()
            .map(|m| {
                let vals = self
                    .results
                    .iter()
                    .map(|r| r.get(*m).mean)
                    .filter(|v| !v.is_nan());
                if m.lower_is_better() {
                    vals.fold(f64::INFINITY, f64::min)
                } else {
                    vals.fold(f64::NEG_INFINITY, f64::max)
                }
            })
            .collect();
        for r in &self.results {
            let mut row = vec![r.contender.name().to_string()];
            for (m, best_v) in metrics.iter().zip(&best_of) {
                let s = r.get(*m);
                let mark = if s.mean == *best_v { "*" } else { "" };
                row.push(format!("{}{mark}", cell(s)));
            }
            let lat = r.get(Metric::MeanLatency).mean;
            row.push(today.map_or("-".into(), |x| change(lat, x.get(Metric::MeanLatency).mean)));
            if let Some(b) = best {
                row.push(change(lat, b.get(Metric::MeanLatency).mean));
                row.push(change(
                    r.get(Metric::StrandedIdleFrac).mean,
                    b.get(Metric::StrandedIdleFrac).mean,
                ));
            }
            rows.push(row);
        }
        let widths: Vec<usize> = (0..rows[0].len())
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        for (i, row) in rows.iter().enumerate() {
            for (c, text) in row.iter().enumerate() {
                if c == 0 {
                    let _ = write!(out, "{text:<w$}", w = widths[c]);
                } else {
                    let _ = write!(out, "  {text:>w$}", w = widths[c]);
                }
            }
            out.push('\n');
            if i == 0 {
                out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1)));
                out.push('\n');
            }
        }
        let _ = writeln!(
            out,
            "{} episodes per router on the same seeds (base seed {}); mean ± 95% CI; * best per column.",
            self.episodes, self.seed
        );
        out.push_str(&self.paired_lines());
        out
    }

    /// The stable JSON document (schema in README.md); metrics that do not apply are null.
    pub fn to_json(&self) -> Value {
        let results: Vec<Value> = self
            .results
            .iter()
            .map(|r| {
                let metrics: Map<String, Value> = r
                    .metrics
                    .iter()
                    .map(|(name, s)| {
                        (
                            name.to_string(),
                            json!({"mean": finite(s.mean), "ci95": finite(s.ci95)}),
                        )
                    })
                    .collect();
                json!({"router": r.contender.name(), "metrics": metrics})
            })
            .collect();
        let paired: Vec<Value> = self.pairs().iter().map(Pair::to_json).collect();
        let verdicts: Vec<Value> = self
            .verdicts()
            .into_iter()
            .map(|(router, verdict)| json!({"router": router, "verdict": verdict}))
            .collect();
        json!({
            "scenario": self.scenario,
            "episodes": self.episodes,
            "seed": self.seed,
            "results": results,
            "paired": paired,
            "verdicts": verdicts,
        })
    }

    /// `router,metric,mean,ci95` rows, empty fields for values that do not apply.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("router,metric,mean,ci95\n");
        for r in &self.results {
            for (name, s) in &r.metrics {
                let f = |v: f64| {
                    if v.is_nan() {
                        String::new()
                    } else {
                        format!("{v}")
                    }
                };
                let _ = writeln!(
                    out,
                    "{},{name},{},{}",
                    r.contender.name(),
                    f(s.mean),
                    f(s.ci95)
                );
            }
        }
        out
    }
}

/// JSON has no NaN: a value that does not apply is null.
pub fn finite(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
}
