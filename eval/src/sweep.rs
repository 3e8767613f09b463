//! Metrics against offered load, and the hardware each router needs to meet a latency SLO.

use std::sync::Arc;

use haca_env::{Metric, Scenario};
use indicatif::ProgressBar;
use serde_json::{json, Value};

use crate::compare::{compare, finite, Comparison};
use crate::contender::{Contender, EvalError};
use crate::plots::LineChart;

/// Parses `start:stop:step` (inclusive of `stop` up to rounding), e.g. `0.5:0.95:0.05`.
pub fn parse_range(text: &str) -> Result<Vec<f64>, EvalError> {
    let bad = |why: &str| {
        EvalError::Invalid(format!(
            "--load `{text}`: {why}; expected start:stop:step, e.g. 0.5:0.95:0.05"
        ))
    };
    let parts: Vec<f64> = text
        .split(':')
        .map(|p| p.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad("not three numbers"))?;
    let [start, stop, step] = parts[..] else {
        return Err(bad("not three numbers"));
    };
    if !(start > 0.0 && stop >= start && step > 0.0 && start.is_finite() && stop.is_finite()) {
        return Err(bad("needs 0 < start <= stop and step > 0"));
    }
    let n = ((stop - start) / step + 1e-9).floor() as usize + 1;
    if n > 1000 {
        return Err(bad("more than 1000 points"));
    }
    Ok((0..n).map(|i| start + step * i as f64).collect())
}

/// Parses a list of client counts, e.g. `1,10,100`.
pub fn parse_clients(text: &str) -> Result<Vec<f64>, EvalError> {
    let bad = |why: String| {
        EvalError::Invalid(format!(
            "--clients `{text}`: {why}; expected counts such as 1,10,100"
        ))
    };
    let counts: Vec<u32> = text
        .split(',')
        .map(|p| p.trim().parse::<u32>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad("not a list of whole numbers".into()))?;
    let max = haca_env::MAX_CLIENTS;
    if let Some(c) = counts.iter().find(|&&c| c == 0 || c > max) {
        return Err(bad(format!("{c} is not in 1..={max}")));
    }
    Ok(counts.into_iter().map(f64::from).collect())
}

/// What a sweep varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepAxis {
    /// Offered load (arrival rate over capacity).
    Load,
    /// Number of clients routing for themselves (`[clients] count`), the demand's shape kept.
    Clients,
}

impl SweepAxis {
    /// The key in tables and JSON.
    pub fn key(self) -> &'static str {
        match self {
            SweepAxis::Load => "load",
            SweepAxis::Clients => "clients",
        }
    }

    fn label(self) -> &'static str {
        match self {
            SweepAxis::Load => "offered load",
            SweepAxis::Clients => "clients routing for themselves",
        }
    }

    fn apply(self, scenario: &Scenario, x: f64) -> Scenario {
        match self {
            SweepAxis::Load => scenario.with_load(x),
            SweepAxis::Clients => scenario.with_clients(x as u32),
        }
    }
}

/// One comparison per point of the axis.
pub struct Sweep {
    pub scenario: String,
    pub axis: SweepAxis,
    pub xs: Vec<f64>,
    pub points: Vec<Comparison>,
}

pub fn sweep(
    scenario: &Scenario,
    axis: SweepAxis,
    xs: &[f64],
    contenders: &[Contender],
    episodes: usize,
    seed: u64,
    progress: &ProgressBar,
) -> Result<Sweep, EvalError> {
    let points = xs
        .iter()
        .map(|&x| {
            let sc = Arc::new(axis.apply(scenario, x));
            compare(&sc, contenders, episodes, seed, 0, progress)
        })
        .collect::<Result<_, _>>()?;
    Ok(Sweep {
        scenario: scenario.name.clone(),
        axis,
        xs: xs.to_vec(),
        points,
    })
}

/// The metrics a sweep reports in its table and charts.
pub const SWEEP_METRICS: [(Metric, &str); 4] = [
    (Metric::MeanLatency, "mean response latency (s)"),
    (Metric::P99Latency, "p99 response latency (s)"),
    (
        Metric::StrandedIdleFrac,
        "stranded idle fraction of capacity",
    ),
    (Metric::IdleCapacityFrac, "idle fraction of capacity"),
];

impl Sweep {
    fn series(&self, metric: Metric) -> Vec<(String, Vec<(f64, f64)>)> {
        let Some(first) = self.points.first() else {
            return vec![];
        };
        first
            .results
            .iter()
            .map(|r| {
                let name = r.contender.name();
                let pts = self
                    .xs
                    .iter()
                    .zip(&self.points)
                    .map(|(&l, c)| {
                        (
                            l,
                            c.result(name)
                                .expect("same contenders at every load")
                                .get(metric)
                                .mean,
                        )
                    })
                    .collect();
                (name.to_string(), pts)
            })
            .collect()
    }

    pub fn charts(&self) -> Vec<(String, LineChart)> {
        SWEEP_METRICS
            .iter()
            .map(|(m, label)| {
                (
                    format!("sweep_{m}"),
                    LineChart {
                        title: format!("{}: {label} against {}", self.scenario, self.axis.label()),
                        x_label: self.axis.label().into(),
                        y_label: label.to_string(),
                        series: self.series(*m),
                        log_x: self.axis == SweepAxis::Clients,
                        markers: true,
                    },
                )
            })
            .collect()
    }

    /// One block per metric: a row per point, a column per router (means).
    pub fn table(&self) -> String {
        let mut out = String::new();
        for (m, label) in SWEEP_METRICS {
            let series = self.series(m);
            out.push_str(&format!("{label}\n{:>7}", self.axis.key()));
            for (name, _) in &series {
                out.push_str(&format!(" {name:>12}"));
            }
            out.push('\n');
            for (i, x) in self.xs.iter().enumerate() {
                match self.axis {
                    SweepAxis::Load => out.push_str(&format!("{x:>7.3}")),
                    SweepAxis::Clients => out.push_str(&format!("{x:>7}")),
                }
                for (_, pts) in &series {
                    out.push_str(&format!(" {:>12.4}", pts[i].1));
                }
                out.push('\n');
            }
            out.push('\n');
        }
        out
    }

    pub fn to_json(&self) -> Value {
        let key = self.axis.key();
        let mut out = json!({
            "scenario": self.scenario,
            "axis": key,
            "points": self.points.iter().zip(&self.xs).map(|(c, x)| {
                let mut v = c.to_json();
                v[key] = json!(x);
                v
            }).collect::<Vec<_>>(),
        });
        // `loads` / `clients`: the axis's values, under the plural of its key.
        out[format!("{key}s")] = json!(self.xs);
        out
    }
}

/// A router's smallest network meeting the SLO, and what was tried on the way.
#[derive(Debug, Clone)]
pub struct CapacityResult {
    pub router: String,
    /// Nodes needed, or `None` if even the largest network tried missed the SLO.
    pub nodes: Option<usize>,
    /// (nodes, mean p99 latency) of every network evaluated, by size.
    pub probes: Vec<(usize, f64)>,
}

/// For each contender, the smallest node count (scaling every node class of the scenario, the
/// workload fixed) whose mean p99 latency over `episodes` meets `slo_p99_s`: doubling to find a
/// size that meets it (up to 16x), then bisecting the scale factor.
pub fn capacity(
    scenario: &Scenario,
    contenders: &[Contender],
    slo_p99_s: f64,
    episodes: usize,
    seed: u64,
    progress: &ProgressBar,
) -> Result<Vec<CapacityResult>, EvalError> {
    if slo_p99_s.is_nan() || slo_p99_s <= 0.0 {
        return Err(EvalError::Invalid(format!(
            "--slo-p99 {slo_p99_s}: must be a positive number of seconds"
        )));
    }
    contenders
        .iter()
        .map(|c| {
            let mut probes: Vec<(usize, f64)> = Vec::new();
            let mut p99_at = |f: f64| -> Result<(usize, f64), EvalError> {
                let sc = Arc::new(scenario.with_node_scale(f));
                let n = sc.nodes.len();
                if let Some(&(_, p)) = probes.iter().find(|(m, _)| *m == n) {
                    return Ok((n, p));
                }
                let cmp = compare(&sc, std::slice::from_ref(c), episodes, seed, 0, progress)?;
                let p = cmp.results[0].get(Metric::P99Latency).mean;
                probes.push((n, p));
                Ok((n, p))
            };
            let mut hi = 1.0;
            let mut met = p99_at(hi)?.1 <= slo_p99_s;
            while !met && hi < 16.0 {
                hi *= 2.0;
                met = p99_at(hi)?.1 <= slo_p99_s;
            }
            let nodes = if met {
                let mut lo = 0.0;
                for _ in 0..8 {
                    let mid = (lo + hi) / 2.0;
                    if p99_at(mid)?.1 <= slo_p99_s {
                        hi = mid;
                    } else {
                        lo = mid;
                    }
                }
                Some(p99_at(hi)?.0)
            } else {
                None
            };
            probes.sort_by_key(|p| p.0);
            Ok(CapacityResult {
                router: c.name().to_string(),
                nodes,
                probes,
            })
        })
        .collect()
}

pub fn capacity_table(results: &[CapacityResult], base_nodes: usize, slo: f64) -> String {
    let mut out =
        format!("nodes needed for mean p99 latency <= {slo} s (scenario has {base_nodes})\n");
    out.push_str(&format!(
        "{:<12} {:>8} {:>14}\n",
        "router", "nodes", "vs scenario"
    ));
    for r in results {
        match r.nodes {
            Some(n) => out.push_str(&format!(
                "{:<12} {:>8} {:>+13.0}%\n",
                r.router,
                n,
                100.0 * (n as f64 - base_nodes as f64) / base_nodes as f64
            )),
            None => out.push_str(&format!(
                "{:<12} {:>8} {:>14}\n",
                r.router,
                format!(">{}", r.probes.last().map_or(0, |p| p.0)),
                "not met"
            )),
        }
    }
    out
}

pub fn capacity_json(
    scenario: &str,
    slo: f64,
    episodes: usize,
    seed: u64,
    results: &[CapacityResult],
) -> Value {
    json!({
        "scenario": scenario,
        "slo_p99_s": slo,
        "episodes": episodes,
        "seed": seed,
        "results": results.iter().map(|r| json!({
            "router": r.router,
            "nodes": r.nodes,
            "probes": r.probes.iter().map(|(n, p)| json!({"nodes": n, "p99_latency_s": finite(*p)})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

pub fn capacity_chart(scenario: &str, slo: f64, results: &[CapacityResult]) -> LineChart {
    let mut series: Vec<(String, Vec<(f64, f64)>)> = results
        .iter()
        .map(|r| {
            (
                r.router.clone(),
                r.probes.iter().map(|&(n, p)| (n as f64, p)).collect(),
            )
        })
        .collect();
    let max_n = results
        .iter()
        .flat_map(|r| r.probes.iter().map(|p| p.0))
        .max()
        .unwrap_or(1) as f64;
    series.push((format!("SLO {slo} s"), vec![(0.0, slo), (max_n, slo)]));
    LineChart {
        title: format!("{scenario}: p99 latency against network size"),
        x_label: "inference nodes".into(),
        y_label: "mean p99 response latency (s)".into(),
        series,
        log_x: false,
        markers: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_lists_parse_and_bad_ones_say_why() {
        assert_eq!(parse_clients("1, 10,100").unwrap(), [1.0, 10.0, 100.0]);
        for bad in ["", "1,x", "0,10", "1,10001", "-1"] {
            let e = parse_clients(bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("--clients `{bad}`")), "{e}");
        }
    }

    #[test]
    fn ranges_parse_inclusively() {
        let r = parse_range("0.5:0.95:0.05").unwrap();
        assert_eq!(r.len(), 10);
        assert!((r[9] - 0.95).abs() < 1e-12);
        assert_eq!(parse_range("0.8:0.8:0.1").unwrap(), [0.8]);
        for bad in [
            "0.5:0.9",
            "a:b:c",
            "0.9:0.5:0.1",
            "0.5:0.9:0",
            "0:1:0.1",
            "0.1:1000:0.0001",
        ] {
            let e = parse_range(bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("--load `{bad}`")), "{e}");
        }
    }
}
