//! Bounds that keep every episode finite in simulated events and memory: the limits, the
//! checks validation runs against them (on the written scenario and on sampled draws of a
//! randomized one), and how a message shows an extreme number.

use crate::resolve::Ctx;
use crate::scenario::{Scenario, ScenarioError};

/// A number as a message shows it: `1e-300`, not three hundred zeros.
pub(crate) fn shown(v: f64) -> String {
    if v != 0.0 && v.is_finite() && !(1e-4..1e9).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// Bounds that keep every episode finite in simulated events and memory.
pub const MAX_JOBS_PER_EPISODE: u64 = 10_000_000;
pub const MAX_NODES: usize = 100_000;
/// The most an MMPP state's rate may be relative to the mean.
pub const MAX_RATE_MULT: f64 = 1e6;
pub const MAX_SLOTS: u32 = 1024;
pub const MIN_SCRAPE_INTERVAL_S: f64 = 0.01;
pub const MIN_MTBF_S: f64 = 1.0;
/// Scrape and failure work per job an episode may need (the simulator's runaway guard allows
/// twice as much).
pub const MAX_WORK_PER_JOB: f64 = 10_000.0;
/// Simulated seconds an episode's arrivals may span (about 300 years): beyond it the clock
/// loses the precision of a second.
pub const MAX_EPISODE_SPAN_S: f64 = 1e10;

impl Ctx<'_> {
    /// 0 (fresh state) or at least [`MIN_SCRAPE_INTERVAL_S`]: every scrape is an event over
    /// every node, so a tiny positive interval would make an episode without end.
    pub(crate) fn scrape_interval(&self, field: &str, v: f64) -> Result<f64, ScenarioError> {
        let v = self.non_negative(field, v)?;
        if v > 0.0 && v < MIN_SCRAPE_INTERVAL_S {
            return Err(self.err(
                field,
                format!(
                    "is {}: a scrape interval is 0 (the router sees fresh state) or at least {MIN_SCRAPE_INTERVAL_S} s",
                    shown(v)
                ),
            ));
        }
        Ok(v)
    }

    /// A mean time between failures of at least [`MIN_MTBF_S`]: each failure is two events, so
    /// a node failing ever faster would make an episode without end.
    pub(crate) fn mtbf(&self, field: &str, v: f64) -> Result<f64, ScenarioError> {
        let v = self.positive(field, v)?;
        if v < MIN_MTBF_S {
            return Err(self.err(
                field,
                format!(
                    "is {}: a node's mean time between failures must be at least {MIN_MTBF_S} s",
                    shown(v)
                ),
            ));
        }
        Ok(v)
    }
}

/// Scrapes (each reads every node) and failures (two events each) are the simulation work that
/// does not come with jobs: over an episode's span, at most [`MAX_WORK_PER_JOB`] units per job.
pub(crate) fn check_event_work(cx: &Ctx, sc: &Scenario) -> Result<(), ScenarioError> {
    let jobs = sc.jobs_per_episode as f64;
    let span = jobs / sc.arrivals.rate_per_s;
    let nodes = sc.nodes.len() as f64;
    if sc.scrape_interval_s > 0.0 {
        let per_job = span / sc.scrape_interval_s * nodes / jobs;
        if per_job > MAX_WORK_PER_JOB {
            return Err(cx.err(
                "sim.scrape_interval_s",
                format!(
                    "is {} s: over the episode's {span:.0} s the simulator would read {per_job:.0} node states per job (at most {MAX_WORK_PER_JOB}): raise it, or 0 for fresh state",
                    sc.scrape_interval_s
                ),
            ));
        }
    }
    let failures: f64 = sc
        .nodes
        .iter()
        .filter_map(|n| n.churn)
        .map(|(mtbf, _)| span / mtbf)
        .sum();
    if 2.0 * failures / jobs > MAX_WORK_PER_JOB {
        return Err(cx.err(
            "node_classes.mtbf_s",
            format!(
                "makes {:.0} failures per job over the episode's {span:.0} s (at most {}): raise the mean times between failures",
                failures / jobs,
                MAX_WORK_PER_JOB / 2.0
            ),
        ));
    }
    Ok(())
}

/// Draws of a randomized scenario meet the same bounds as a written one. The ranges combine
/// (a large network at a low load, a short scrape interval), so a sample of draws is checked
/// at load time; a rarer draw that breaks them still meets the simulator's runaway guard.
pub(crate) fn check_draws(cx: &Ctx, sc: &Scenario) -> Result<(), ScenarioError> {
    if sc.randomize.is_none() {
        return Ok(());
    }
    for k in 0..DRAWS_CHECKED {
        let draw = sc.episode_variant(haca_policy::rng::derive_seed(0x5eed_d4a5, k));
        let checked = check_span(cx, draw.jobs_per_episode, draw.arrivals.rate_per_s)
            .and_then(|()| check_event_work(cx, &draw));
        if let Err(ScenarioError::Invalid { field, message, .. }) = checked {
            return Err(cx.err(
                "randomize",
                format!(
                    "draw {k} of {DRAWS_CHECKED} checked ({} nodes, load {:.2}) breaks a bound: `{field}` {message}; narrow the ranges",
                    draw.nodes.len(),
                    draw.offered_load()
                ),
            ));
        }
    }
    Ok(())
}

/// Draws of a randomized scenario checked at load time.
const DRAWS_CHECKED: u64 = 64;

/// The arrivals of an episode span a finite, representable time.
pub(crate) fn check_span(cx: &Ctx, jobs: u64, rate_per_s: f64) -> Result<(), ScenarioError> {
    let span = jobs as f64 / rate_per_s;
    if span.is_finite() && span <= MAX_EPISODE_SPAN_S {
        return Ok(());
    }
    Err(cx.err(
        "arrivals",
        format!(
            "{jobs} jobs at {} per second would span {} s, above {} s: raise the load or rate, or lower episode.jobs",
            shown(rate_per_s),
            shown(span),
            shown(MAX_EPISODE_SPAN_S)
        ),
    ))
}
