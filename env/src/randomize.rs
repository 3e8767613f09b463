//! Domain randomization: the resolved `[randomize]` section and the per-episode draw of a
//! network and its traffic ([`Scenario::episode_variant`]).
//!
//! Every quantity is drawn from the episode's own seed, so every router on a seed sees the same
//! draw and `Env::replay` reproduces it. A draw keeps the base scenario's `max_nodes` (one
//! observation shape) but takes its own feature scales, the ones a scheduler running that
//! network and traffic computes: a policy trained on draws is then deployed the way it trained.
//! Quantities left out of `[randomize]` consume no random numbers, so adding a field to the
//! draw never changes the draws of files that do not use it.

use std::path::Path;
use std::sync::Arc;

use haca_policy::rng::Rng;
use haca_policy::SizeVisibility;

use crate::bounds::{shown, MAX_SLOTS};
use crate::config::RawRandomize;
use crate::resolve::Ctx;
use crate::scenario::{model_probs, ArrivalProcess, Scenario, ScenarioError};
use crate::trace::Trace;

/// Per-episode domain randomization, ranges `(min, max)`; see [`RawRandomize`] for each field.
#[derive(Debug, Clone, PartialEq)]
pub struct Randomize {
    /// Log-uniform factor on every class's node count.
    pub node_scale: (f64, f64),
    /// Log-uniform factor on each class's count, drawn per class.
    pub class_scale: (f64, f64),
    /// Uniform offered load of the drawn network; `None` keeps the written arrival rate.
    pub load: Option<(f64, f64)>,
    /// Log-uniform per-class factors on speed, slots and memory.
    pub class_speed: (f64, f64),
    pub class_slots: (f64, f64),
    pub class_memory: (f64, f64),
    pub churn: Option<ChurnDraw>,
    pub scrape_interval_s: Vec<f64>,
    pub size_visibility: Vec<SizeVisibility>,
    pub zipf: Option<(f64, f64)>,
    pub zkml: Option<(f64, f64)>,
    pub arrivals: Vec<ProcessKind>,
    pub traces: Vec<Arc<Trace>>,
    /// Log-uniform number of clients (rounded).
    pub clients: Option<(f64, f64)>,
}

/// Which classes churn in a draw, and how fast.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChurnDraw {
    pub probability: f64,
    pub mtbf_s: (f64, f64),
    pub mttr_s: (f64, f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessKind {
    Poisson,
    Mmpp,
    Diurnal,
    Trace,
}

impl Randomize {
    /// Node count of a class of `count` nodes under factor `f`, at least one.
    pub(crate) fn scaled_count(count: usize, f: f64) -> usize {
        ((count as f64 * f).round() as usize).max(1)
    }

    /// Nodes of the largest network drawn around class counts `counts`.
    pub(crate) fn largest(&self, counts: &[usize]) -> usize {
        let f = self.node_scale.1 * self.class_scale.1;
        counts.iter().map(|&c| Self::scaled_count(c, f)).sum()
    }

    /// Nodes of the smallest network drawn around class counts `counts`.
    pub(crate) fn smallest(&self, counts: &[usize]) -> usize {
        let f = self.node_scale.0 * self.class_scale.0;
        counts.iter().map(|&c| Self::scaled_count(c, f)).sum()
    }
}

fn log_uniform(rng: &mut Rng, (lo, hi): (f64, f64)) -> f64 {
    if lo == hi {
        return lo;
    }
    (lo.ln() + rng.uniform() * (hi.ln() - lo.ln())).exp()
}

fn uniform(rng: &mut Rng, (lo, hi): (f64, f64)) -> f64 {
    lo + rng.uniform() * (hi - lo)
}

/// An index into `len` options, or `None` for none; draws nothing when there is no choice.
fn pick_index(rng: &mut Rng, len: usize) -> Option<usize> {
    match len {
        0 => None,
        1 => Some(0),
        _ => Some(rng.below(len as u64) as usize),
    }
}

fn pick<T: Copy>(rng: &mut Rng, options: &[T]) -> Option<T> {
    pick_index(rng, options.len()).map(|i| options[i])
}

impl Scenario {
    /// The network and traffic of one episode of a randomized scenario, drawn from `seed` (the
    /// simulator derives it from the episode seed). The result is a plain scenario (no
    /// `randomize`) with the same `max_nodes` and feature scales. Without `randomize` it is a
    /// copy.
    pub fn episode_variant(&self, seed: u64) -> Scenario {
        let Some(r) = &self.randomize else {
            return self.clone();
        };
        let mut rng = Rng::new(seed);
        let size = log_uniform(&mut rng, r.node_scale);
        let counts: Vec<usize> = self
            .class_counts()
            .iter()
            .map(|&c| Randomize::scaled_count(c, size * log_uniform(&mut rng, r.class_scale)))
            .collect();
        let mut sc = self.with_class_counts(&counts);
        sc.max_nodes = self.max_nodes;
        sc.randomize = None;
        draw_classes(&mut sc, r, &mut rng);
        if let Some(s) = pick(&mut rng, &r.scrape_interval_s) {
            sc.scrape_interval_s = s;
        }
        if let Some(v) = pick(&mut rng, &r.size_visibility) {
            sc.size_visibility = v;
        }
        draw_workload(&mut sc, r, &mut rng);
        if let Some(kind) = pick(&mut rng, &r.arrivals) {
            draw_process(&mut sc, kind, r, &mut rng);
        }
        sc.scales = sc.own_scales();
        let mut sc = match r.load {
            Some(range) => sc.with_load(uniform(&mut rng, range)),
            None => sc,
        };
        // Drawn last, so that scenarios without it keep their streams.
        if let Some(range) = r.clients {
            sc = sc.with_clients(log_uniform(&mut rng, range).round() as u32);
        }
        sc
    }

    /// One line for tables: "12 nodes, offered load 0.80", or the ranges a randomized scenario
    /// draws from.
    pub fn summary(&self) -> String {
        let Some(r) = &self.randomize else {
            return format!(
                "{} nodes, offered load {:.2}",
                self.nodes.len(),
                self.offered_load()
            );
        };
        let smallest = r.smallest(&self.class_counts());
        let load = match r.load {
            Some((lo, hi)) if lo == hi => format!("offered load {lo:.2}"),
            Some((lo, hi)) => format!("offered load {lo:.2}-{hi:.2}"),
            None => "arrival rate as written".to_string(),
        };
        let nodes = match (smallest, self.max_nodes) {
            (lo, hi) if lo == hi => format!("{lo} nodes"),
            (lo, hi) => format!("{lo}-{hi} nodes around {}", self.nodes.len()),
        };
        let clients = match r.clients {
            Some((lo, hi)) if lo == hi => format!(", {lo} clients"),
            Some((lo, hi)) => format!(", {lo}-{hi} clients"),
            None => String::new(),
        };
        format!("randomized per episode: {nodes}, {load}{clients}")
    }
}

/// Speed, slots, memory and churn of each class (every node of a class stays identical).
fn draw_classes(sc: &mut Scenario, r: &Randomize, rng: &mut Rng) {
    for class in 0..sc.class_names.len() {
        let speed = log_uniform(rng, r.class_speed);
        let slots = log_uniform(rng, r.class_slots);
        let memory = log_uniform(rng, r.class_memory);
        let churn = r.churn.map(|c| {
            (rng.uniform() < c.probability)
                .then(|| (log_uniform(rng, c.mtbf_s), log_uniform(rng, c.mttr_s)))
        });
        for node in sc.nodes.iter_mut().filter(|n| n.class == class) {
            node.speed *= speed;
            node.slots = ((node.slots as f64 * slots).round() as u32).clamp(1, MAX_SLOTS);
            node.memory_gb *= memory;
            if let Some(churn) = churn {
                node.churn = churn;
            }
        }
    }
}

/// Popularity, the ZKML share, and the per-mode model probabilities on the drawn nodes.
fn draw_workload(sc: &mut Scenario, r: &Randomize, rng: &mut Rng) {
    if r.zipf.is_none() && r.zkml.is_none() && r.class_memory == (1.0, 1.0) {
        return;
    }
    let w = &mut sc.workload;
    if let Some(range) = r.zipf {
        let s = uniform(rng, range);
        w.popularity = (0..sc.models.len())
            .map(|i| 1.0 / ((i + 1) as f64).powf(s))
            .collect();
    }
    if let Some(range) = r.zkml {
        let z = uniform(rng, range);
        let others = w.mix[0] + w.mix[1];
        w.mix = if others > 0.0 {
            let k = (1.0 - z) / others;
            [w.mix[0] * k, w.mix[1] * k, z]
        } else {
            [1.0 - z, 0.0, z]
        };
    }
    w.model_probs = model_probs(&sc.models, &sc.nodes, &w.popularity);
    // A mode whose every model lost its last node (memory draws) is not requested.
    for (share, probs) in w.mix.iter_mut().zip(&w.model_probs) {
        if probs.iter().all(|&p| p == 0.0) {
            *share = 0.0;
        }
    }
    let total: f64 = w.mix.iter().sum();
    w.mix.iter_mut().for_each(|x| *x /= total);
}

/// Replaces the arrival process, keeping the mean rate (a trace starts at its own pace; the
/// load draw that follows rescales either).
fn draw_process(sc: &mut Scenario, kind: ProcessKind, r: &Randomize, rng: &mut Rng) {
    let rate = sc.arrivals.rate_per_s;
    sc.arrivals.process = match kind {
        ProcessKind::Poisson => ArrivalProcess::Poisson,
        ProcessKind::Mmpp => {
            let (high, low) = (uniform(rng, (2.0, 4.0)), uniform(rng, (0.25, 0.6)));
            let (th, tl) = (uniform(rng, (20.0, 90.0)), uniform(rng, (60.0, 300.0)));
            let k = (th + tl) / (high * th + low * tl);
            ArrivalProcess::Mmpp {
                high_rate: rate * high * k,
                low_rate: rate * low * k,
                mean_high_s: th,
                mean_low_s: tl,
            }
        }
        ProcessKind::Diurnal => ArrivalProcess::Diurnal {
            period_s: uniform(rng, (600.0, 3600.0)),
            amplitude: uniform(rng, (0.3, 0.9)),
        },
        ProcessKind::Trace => {
            let i = pick_index(rng, r.traces.len()).expect("validation requires traces");
            let trace = r.traces[i].clone();
            sc.workload.input_tokens = crate::Dist::Fixed(trace.mean_input());
            sc.workload.output_tokens = crate::Dist::Fixed(trace.mean_output());
            sc.workload.mean_output_tokens = trace.mean_output();
            sc.arrivals.rate_per_s = (trace.len() - 1) as f64 / trace.span_s();
            ArrivalProcess::Trace {
                trace,
                time_scale: 1.0,
                random_offset: true,
            }
        }
    };
}

/// Validates the raw section against the scenario it belongs to.
pub(crate) fn resolve_randomize(
    cx: &Ctx,
    r: &RawRandomize,
    sc: &Scenario,
    zipf_popularity: bool,
) -> Result<Randomize, ScenarioError> {
    let churn = churn_draw(cx, r)?;
    let zipf = range(cx, "zipf", r.zipf, true)?;
    if zipf.is_some() && !zipf_popularity {
        return Err(cx.err(
            "randomize.zipf",
            "redraws a Zipf popularity, but the workload gives explicit `popularity` weights: remove one of the two",
        ));
    }
    let zkml = zkml_share(cx, r, sc)?;
    let scrape_interval_s = r.scrape_interval_s.clone().unwrap_or_default();
    for (i, &s) in scrape_interval_s.iter().enumerate() {
        cx.scrape_interval(&format!("randomize.scrape_interval_s[{i}]"), s)?;
    }
    let size_visibility = visibilities(cx, r)?;
    let (arrivals, traces) = resolve_processes(cx, r, sc.jobs_per_episode)?;
    let class_memory = factor(cx, "class_memory", r.class_memory)?;
    check_models_fit(cx, sc, class_memory.0)?;
    Ok(Randomize {
        node_scale: factor(cx, "node_scale", r.node_scale)?,
        class_scale: factor(cx, "class_scale", r.class_scale)?,
        load: range(cx, "load", r.load, false)?,
        class_speed: factor(cx, "class_speed", r.class_speed)?,
        class_slots: factor(cx, "class_slots", r.class_slots)?,
        class_memory,
        churn,
        scrape_interval_s,
        size_visibility,
        zipf,
        zkml,
        arrivals,
        traces,
        clients: client_range(cx, r.clients)?,
    })
}

/// `randomize.clients`: whole numbers of clients in 1..=MAX_CLIENTS.
fn client_range(cx: &Ctx, raw: Option<[f64; 2]>) -> Result<Option<(f64, f64)>, ScenarioError> {
    let Some(range) = range(cx, "clients", raw, false)? else {
        return Ok(None);
    };
    let max = crate::resolve::MAX_CLIENTS as f64;
    if range.0 < 1.0 || range.1 > max {
        return Err(cx.err(
            "randomize.clients",
            format!(
                "is [{}, {}]: clients must be in 1..={max}",
                range.0, range.1
            ),
        ));
    }
    Ok(Some(range))
}

/// A `[min, max]` range of `randomize.<name>`, if given: finite, ordered, positive (or zero
/// when `zero_ok`).
fn range(
    cx: &Ctx,
    name: &str,
    v: Option<[f64; 2]>,
    zero_ok: bool,
) -> Result<Option<(f64, f64)>, ScenarioError> {
    let Some([lo, hi]) = v else { return Ok(None) };
    let field = format!("randomize.{name}");
    let low_ok = if zero_ok { lo >= 0.0 } else { lo > 0.0 };
    if !(lo.is_finite() && hi.is_finite() && low_ok && hi > 0.0) {
        let what = if zero_ok {
            "zero or positive"
        } else {
            "positive"
        };
        return Err(cx.err(
            field,
            format!("is [{lo}, {hi}]: both ends must be {what} numbers"),
        ));
    }
    if hi < lo {
        return Err(cx.err(field, format!("is [{lo}, {hi}]: write it as [min, max]")));
    }
    Ok(Some((lo, hi)))
}

/// A multiplicative factor range (1 when not given), between 0.001 and 1000.
fn factor(cx: &Ctx, name: &str, v: Option<[f64; 2]>) -> Result<(f64, f64), ScenarioError> {
    let (lo, hi) = range(cx, name, v, false)?.unwrap_or((1.0, 1.0));
    if lo < 1e-3 || hi > 1e3 {
        return Err(cx.err(
            format!("randomize.{name}"),
            format!(
                "is [{}, {}]: a factor between 0.001 and 1000",
                shown(lo),
                shown(hi)
            ),
        ));
    }
    Ok((lo, hi))
}

/// `churn`, `mtbf_s` and `mttr_s`: all three or none.
fn churn_draw(cx: &Ctx, r: &RawRandomize) -> Result<Option<ChurnDraw>, ScenarioError> {
    match (r.churn, r.mtbf_s, r.mttr_s) {
        (None, None, None) => Ok(None),
        (Some(p), Some(_), Some(_)) => {
            if !(0.0..=1.0).contains(&p) {
                return Err(cx.err(
                    "randomize.churn",
                    format!("is {p}: a probability, between 0 and 1"),
                ));
            }
            let (lo, hi) = range(cx, "mtbf_s", r.mtbf_s, false)?.expect("given");
            cx.mtbf("randomize.mtbf_s", lo)?;
            Ok(Some(ChurnDraw {
                probability: p,
                mtbf_s: (lo, hi),
                mttr_s: range(cx, "mttr_s", r.mttr_s, false)?.expect("given"),
            }))
        }
        _ => Err(cx.err(
            "randomize.churn",
            "churn, mtbf_s and mttr_s go together: set all three (e.g. churn = 0.3, mtbf_s = [600, 3600], mttr_s = [30, 300]) or none",
        )),
    }
}

/// The zkml share range: below 1, and only where some zk node can hold a zkml model.
fn zkml_share(
    cx: &Ctx,
    r: &RawRandomize,
    sc: &Scenario,
) -> Result<Option<(f64, f64)>, ScenarioError> {
    let zkml = range(cx, "zkml", r.zkml, true)?;
    if let Some((_, hi)) = zkml {
        if hi >= 1.0 {
            return Err(cx.err("randomize.zkml", format!("reaches {hi}: a share below 1")));
        }
        let servable = sc.models.iter().any(|m| {
            sc.nodes
                .iter()
                .any(|n| n.can_serve(m, haca_policy::Verification::Zkml))
        });
        if !servable {
            return Err(cx.err(
                "randomize.zkml",
                "no zk node (zk = true) can hold a model with zkml = true: add both, or remove randomize.zkml",
            ));
        }
    }
    Ok(zkml)
}

/// The size visibilities an episode may draw.
fn visibilities(cx: &Ctx, r: &RawRandomize) -> Result<Vec<SizeVisibility>, ScenarioError> {
    r.size_visibility
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, v)| {
            crate::scenario::size_visibility(v).ok_or_else(|| {
                cx.err(
                    format!("randomize.size_visibility[{i}]"),
                    format!("is \"{v}\": expected \"exact\", \"estimate\" or \"hidden\""),
                )
            })
        })
        .collect()
}

/// Every model fits on some node of every draw: with each class's memory at the low end of
/// `class_memory`, the largest node still holds the largest model (otherwise its jobs could
/// never be served).
fn check_models_fit(cx: &Ctx, sc: &Scenario, low: f64) -> Result<(), ScenarioError> {
    let largest_node = sc.nodes.iter().map(|n| n.memory_gb).fold(0.0, f64::max);
    let Some(m) = sc
        .models
        .iter()
        .max_by(|a, b| a.memory_gb.total_cmp(&b.memory_gb))
    else {
        return Ok(());
    };
    if largest_node * low >= m.memory_gb {
        return Ok(());
    }
    Err(cx.err(
        "randomize.class_memory",
        format!(
            "starts at {}: a draw there leaves model \"{}\" ({} GB) on no node (the largest would have {:.1} GB): raise it to at least {:.3}",
            shown(low),
            m.name,
            m.memory_gb,
            largest_node * low,
            m.memory_gb / largest_node
        ),
    ))
}

/// The arrival processes to draw from and the traces "trace" draws replay.
fn resolve_processes(
    cx: &Ctx,
    r: &RawRandomize,
    jobs: u64,
) -> Result<(Vec<ProcessKind>, Vec<Arc<Trace>>), ScenarioError> {
    let mut kinds = Vec::new();
    for (i, name) in r.arrivals.iter().flatten().enumerate() {
        kinds.push(match name.as_str() {
            "poisson" => ProcessKind::Poisson,
            "mmpp" => ProcessKind::Mmpp,
            "diurnal" => ProcessKind::Diurnal,
            "trace" => ProcessKind::Trace,
            other => {
                return Err(cx.err(
                    format!("randomize.arrivals[{i}]"),
                    format!(
                        "is \"{other}\": expected \"poisson\", \"mmpp\", \"diurnal\" or \"trace\""
                    ),
                ))
            }
        });
    }
    let wants_trace = kinds.contains(&ProcessKind::Trace);
    let paths = r.traces.clone().unwrap_or_default();
    match (wants_trace, paths.is_empty()) {
        (true, true) => {
            return Err(cx.err(
                "randomize.traces",
                "is required when randomize.arrivals lists \"trace\": give trace CSV paths",
            ))
        }
        (false, false) => {
            return Err(cx.err(
                "randomize.traces",
                "is only used by \"trace\" draws: add \"trace\" to randomize.arrivals or remove it",
            ))
        }
        _ => {}
    }
    let mut traces = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        let field = format!("randomize.traces[{i}]");
        let trace = cx.trace(Path::new(p))?;
        if trace.span_s() <= 0.0 {
            return Err(cx.err(
                field,
                "every request arrives at the same instant: no pace to rescale to a load",
            ));
        }
        if jobs as usize > trace.len() {
            return Err(cx.err(
                field,
                format!(
                    "has {} requests, fewer than episode.jobs = {jobs}: lower episode.jobs or use a longer trace",
                    trace.len()
                ),
            ));
        }
        traces.push(Arc::new(trace));
    }
    Ok((kinds, traces))
}
