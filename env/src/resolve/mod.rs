//! Validation of a parsed scenario, one function per section, each turning its raw serde type
//! into the resolved one or an error naming the file, the field and the fix. `resolve` runs
//! them in the order the sections depend on each other.

mod arrivals;
mod ctx;
mod network;

use std::path::Path;
use std::sync::Arc;

use haca_policy::{Scales, Verification};

pub(crate) use ctx::Ctx;
pub use network::MAX_CLIENTS;

use crate::bounds::{
    check_draws, check_event_work, check_span, shown, MAX_JOBS_PER_EPISODE, MAX_NODES, MAX_SLOTS,
};
use crate::config::{RawNodeClass, RawScenario, RawSim, RawVerification, RawWorkload};
use crate::dist::Dist;
use crate::randomize::resolve_randomize;
use crate::scenario::{
    available_capacity, mean_slot_speed, mean_work, model_probs, size_visibility, ArrivalProcess,
    InitialCache, Model, Node, RewardWeights, Scenario, ScenarioError, VerificationLayer, Workload,
};
use crate::trace::Trace;

pub(crate) fn resolve(raw: RawScenario, file: &Path) -> Result<Scenario, ScenarioError> {
    let cx = Ctx { file };
    let models = models(&cx, &raw)?;
    let prefix = network::prefix(&cx, raw.prefix.as_ref())?;
    let (nodes, class_names) = nodes(&cx, &raw.node_classes, prefix.map(|p| p.1))?;
    check_models_fit(&cx, &models, &nodes)?;
    let jobs = episode_jobs(&cx, raw.episode.jobs)?;
    let sim = sim_settings(&cx, &raw.sim)?;
    let reward = RewardWeights {
        jobs: cx.opt_non_negative("reward.jobs_weight", raw.reward.jobs_weight, 1.0)?,
        stranded: cx.opt_non_negative("reward.stranded_weight", raw.reward.stranded_weight, 0.0)?,
        norm_s: cx.positive("reward.norm_s", raw.reward.norm_s.unwrap_or(1.0))?,
    };
    let verification = verification(&cx, &raw.verification)?;
    let w = &raw.workload;
    let (mix, given_mix) = mix(&cx, w)?;
    let weights = popularity(&cx, w, models.len())?;
    let model_probs = model_probs(&models, &nodes, &weights);
    check_modes_servable(&cx, &mix, &given_mix, &model_probs)?;
    let slo_latency_s = w
        .slo_latency_s
        .map(|s| cx.positive("workload.slo_latency_s", s))
        .transpose()?;

    let Some(arr) = raw.arrivals.as_ref() else {
        return Err(cx.err(
            "arrivals",
            "missing: add an [arrivals] table with process = \"poisson\" (or mmpp, diurnal, trace)",
        ));
    };
    let trace = if arr.process == "trace" {
        let Some(p) = arr.path.as_ref() else {
            return Err(cx.err("arrivals.path", "is required for process = \"trace\""));
        };
        Some(Arc::new(cx.trace(Path::new(p))?))
    } else {
        None
    };
    let (input_tokens, output_tokens) = token_dists(&cx, w, trace.as_deref())?;
    let (mean_in, mean_out) = (input_tokens.mean(), output_tokens.mean());
    let mean_work = mean_work(
        &models,
        &model_probs,
        &mix,
        &verification,
        mean_in,
        mean_out,
    );
    if !(mean_work.is_finite() && mean_work > 0.0) {
        return Err(cx.err(
            "workload.input_tokens",
            format!("the mean job work is {mean_work}: token distributions need a finite positive mean (a pareto needs shape > 1) and models a positive prefill_cost or decode_cost"),
        ));
    }
    let scales = Scales {
        work: mean_work,
        speed: mean_slot_speed(&nodes),
    };
    let capacity = available_capacity(&nodes);
    let arrivals = arrivals::arrivals(&cx, arr, trace.as_ref(), mean_work, capacity)?;
    let jobs_per_episode = jobs_per_episode(&cx, &arrivals.process, jobs)?;
    check_span(&cx, jobs_per_episode, arrivals.rate_per_s)?;
    check_quantum(&cx, raw.sim.time_quantum_s.unwrap_or(0.0), &scales)?;

    let mut sc = Scenario {
        name: raw.name.clone().unwrap_or_else(|| {
            file.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        }),
        description: raw.description.clone().unwrap_or_default(),
        path: Some(file.to_path_buf()),
        jobs_per_episode,
        drain: raw.episode.drain.unwrap_or(true),
        max_nodes: 0,
        time_quantum_s: cx.opt_non_negative("sim.time_quantum_s", raw.sim.time_quantum_s, 0.0)?,
        scrape_interval_s: cx.scrape_interval(
            "sim.scrape_interval_s",
            raw.sim.scrape_interval_s.unwrap_or(0.0),
        )?,
        size_visibility: sim.size_visibility,
        estimate_cv: cx.opt_non_negative("sim.estimate_cv", raw.sim.estimate_cv, 0.5)?,
        initial_cache: sim.initial_cache,
        reward,
        load_fixed_s: cx.opt_non_negative("hosting.load_fixed_s", raw.hosting.load_fixed_s, 5.0)?,
        load_gbps: cx.positive("hosting.load_gbps", raw.hosting.load_gbps.unwrap_or(1.0))?,
        verification,
        models,
        class_names,
        nodes,
        workload: Workload {
            model_probs,
            popularity: weights,
            mix,
            input_tokens,
            output_tokens,
            mean_output_tokens: mean_out,
            slo_latency_s,
        },
        arrivals,
        scales,
        randomize: None,
        clients: network::clients(&cx, raw.clients.as_ref())?,
        registry: network::registry(&cx, raw.registry.as_ref())?,
        prefix: prefix.map(|p| p.0),
    };
    sc.randomize = raw
        .randomize
        .as_ref()
        .map(|r| resolve_randomize(&cx, r, &sc, w.popularity.is_none()))
        .transpose()?;
    sc.max_nodes = max_nodes(&cx, &sc, raw.episode.max_nodes)?;
    check_event_work(&cx, &sc)?;
    check_draws(&cx, &sc)?;
    Ok(sc)
}

/// `[[models]]`: at least one, unique names, non-negative sizes and costs.
fn models(cx: &Ctx, raw: &RawScenario) -> Result<Vec<Model>, ScenarioError> {
    if raw.models.is_empty() {
        return Err(cx.err("models", "no model: add at least one [[models]] table"));
    }
    let mut models = Vec::with_capacity(raw.models.len());
    for (i, m) in raw.models.iter().enumerate() {
        let f = |n: &str| format!("models[{i}].{n}");
        if models.iter().any(|o: &Model| o.name == m.name) {
            return Err(cx.err(
                f("name"),
                format!("\"{}\" is used twice: model names must be unique", m.name),
            ));
        }
        models.push(Model {
            name: m.name.clone(),
            memory_gb: cx.non_negative(&f("memory_gb"), m.memory_gb)?,
            prefill_cost: cx.non_negative(&f("prefill_cost"), m.prefill_cost)?,
            decode_cost: cx.non_negative(&f("decode_cost"), m.decode_cost)?,
            zkml: m.zkml,
        });
    }
    Ok(models)
}

/// `[[node_classes]]`, expanded into nodes: the nodes and the class names.
/// `kv_default`: the node cache size `[prefix]` sets (`None` without prefix caching).
fn nodes(
    cx: &Ctx,
    classes: &[RawNodeClass],
    kv_default: Option<u32>,
) -> Result<(Vec<Node>, Vec<String>), ScenarioError> {
    if classes.is_empty() {
        return Err(cx.err(
            "node_classes",
            "no node class: add at least one [[node_classes]] table",
        ));
    }
    let mut nodes = Vec::new();
    let mut class_names = Vec::new();
    for (i, c) in classes.iter().enumerate() {
        let node = node_class(cx, i, c, kv_default)?;
        if nodes.len() + c.count as usize > MAX_NODES {
            return Err(cx.err(
                format!("node_classes[{i}].count"),
                format!(
                    "is {}: the classes would make more than {MAX_NODES} nodes",
                    c.count
                ),
            ));
        }
        nodes.extend(std::iter::repeat_n(node, c.count as usize));
        class_names.push(c.name.clone());
    }
    Ok((nodes, class_names))
}

/// One node class: the node it stands for.
fn node_class(
    cx: &Ctx,
    i: usize,
    c: &RawNodeClass,
    kv_default: Option<u32>,
) -> Result<Node, ScenarioError> {
    let f = |n: &str| format!("node_classes[{i}].{n}");
    if c.count == 0 {
        return Err(cx.err(
            f("count"),
            "is 0: a class needs at least one node (remove the class instead)",
        ));
    }
    let slots = c.slots.unwrap_or(1);
    if slots == 0 {
        return Err(cx.err(f("slots"), "is 0: a node needs at least one slot"));
    }
    if slots > MAX_SLOTS {
        return Err(cx.err(
            f("slots"),
            format!("is {slots}: at most {MAX_SLOTS} slots per node"),
        ));
    }
    let churn = match (c.mtbf_s, c.mttr_s) {
        (None, None) => None,
        (Some(up), Some(down)) => {
            Some((cx.mtbf(&f("mtbf_s"), up)?, cx.positive(&f("mttr_s"), down)?))
        }
        (Some(_), None) => return Err(cx.err(f("mttr_s"), "is required when mtbf_s is set")),
        (None, Some(_)) => return Err(cx.err(f("mtbf_s"), "is required when mttr_s is set")),
    };
    let kv_blocks = match (c.kv_cache_blocks, kv_default) {
        (Some(_), None) => {
            return Err(cx.err(
                f("kv_cache_blocks"),
                "is set without a [prefix] table: add [prefix] or remove it",
            ))
        }
        (Some(v), Some(_)) => network::kv_blocks(cx, &f("kv_cache_blocks"), v)?,
        (None, d) => d.unwrap_or(0),
    };
    Ok(Node {
        class: i,
        speed: cx.positive(&f("speed"), c.speed)?,
        slots,
        memory_gb: cx.non_negative(&f("memory_gb"), c.memory_gb)?,
        tee: c.tee,
        zk: c.zk,
        churn,
        kv_blocks,
    })
}

/// Every model fits in the memory of some node.
fn check_models_fit(cx: &Ctx, models: &[Model], nodes: &[Node]) -> Result<(), ScenarioError> {
    let max_mem = nodes.iter().map(|n| n.memory_gb).fold(0.0, f64::max);
    for (i, m) in models.iter().enumerate() {
        if m.memory_gb > max_mem {
            return Err(cx.err(
                format!("models[{i}].memory_gb"),
                format!(
                    "model \"{}\" needs {} GB but fits on no node (the largest has {max_mem} GB): lower it or add a node class with more memory",
                    m.name, m.memory_gb
                ),
            ));
        }
    }
    Ok(())
}

/// `episode.jobs`, when given: at least one, at most the bound.
fn episode_jobs(cx: &Ctx, jobs: Option<u64>) -> Result<Option<u64>, ScenarioError> {
    if jobs == Some(0) {
        return Err(cx.err("episode.jobs", "is 0: an episode needs at least one job"));
    }
    if let Some(j) = jobs.filter(|&j| j > MAX_JOBS_PER_EPISODE) {
        return Err(cx.err(
            "episode.jobs",
            format!("is {j}: at most {MAX_JOBS_PER_EPISODE} jobs per episode (run more episodes instead)"),
        ));
    }
    Ok(jobs)
}

struct SimSettings {
    size_visibility: haca_policy::SizeVisibility,
    initial_cache: InitialCache,
}

/// The named choices of `[sim]` (its numbers are checked where they are used).
fn sim_settings(cx: &Ctx, sim: &RawSim) -> Result<SimSettings, ScenarioError> {
    let visibility = sim.size_visibility.as_deref().unwrap_or("hidden");
    let size_visibility = size_visibility(visibility).ok_or_else(|| {
        cx.err(
            "sim.size_visibility",
            format!("is \"{visibility}\": expected \"exact\", \"estimate\" or \"hidden\""),
        )
    })?;
    let initial_cache = match sim.initial_cache.as_deref().unwrap_or("popular") {
        "popular" => InitialCache::Popular,
        "empty" => InitialCache::Empty,
        other => {
            return Err(cx.err(
                "sim.initial_cache",
                format!("is \"{other}\": expected \"popular\" or \"empty\""),
            ))
        }
    };
    Ok(SimSettings {
        size_visibility,
        initial_cache,
    })
}

/// `[verification]`: cost multipliers, the verifier pool, check and settlement times.
fn verification(cx: &Ctx, v: &RawVerification) -> Result<VerificationLayer, ScenarioError> {
    Ok(VerificationLayer {
        multiplier: [
            1.0,
            cx.positive(
                "verification.tee_multiplier",
                v.tee_multiplier.unwrap_or(1.5),
            )?,
            cx.positive(
                "verification.zkml_multiplier",
                v.zkml_multiplier.unwrap_or(300.0),
            )?,
        ],
        verifiers: v.verifiers.unwrap_or(8),
        check_s: [
            cx.opt_non_negative("verification.vanilla_s", v.vanilla_s, 0.0)?,
            cx.opt_non_negative("verification.tee_s", v.tee_s, 0.05)?,
            cx.opt_non_negative("verification.zkml_s", v.zkml_s, 0.5)?,
        ],
        settle_s: cx.opt_non_negative("verification.settle_s", v.settle_s, 0.0)?,
        settlement: network::settlement(cx, v)?,
    })
}

/// The verification mix, normalized (all vanilla when no share is given), and the shares as
/// given (for messages).
fn mix(cx: &Ctx, w: &RawWorkload) -> Result<([f64; 3], [f64; 3]), ScenarioError> {
    let given = [
        cx.opt_non_negative("workload.vanilla", w.vanilla, 0.0)?,
        cx.opt_non_negative("workload.tee", w.tee, 0.0)?,
        cx.opt_non_negative("workload.zkml", w.zkml, 0.0)?,
    ];
    let total: f64 = given.iter().sum();
    if total > 0.0 {
        return Ok((given.map(|x| x / total), given));
    }
    if w.vanilla.is_some() || w.tee.is_some() || w.zkml.is_some() {
        return Err(cx.err(
            "workload.vanilla",
            "the verification shares (vanilla, tee, zkml) are all 0",
        ));
    }
    Ok(([1.0, 0.0, 0.0], given))
}

/// Model popularity weights: given per model, or Zipf over the models in file order.
fn popularity(cx: &Ctx, w: &RawWorkload, models: usize) -> Result<Vec<f64>, ScenarioError> {
    match (&w.popularity, w.zipf) {
        (Some(_), Some(_)) => Err(cx.err(
            "workload.popularity",
            "set either `popularity` or `zipf`, not both",
        )),
        (Some(p), None) => {
            if p.len() != models {
                return Err(cx.err(
                    "workload.popularity",
                    format!(
                        "has {} weights for {models} models: give one per model",
                        p.len()
                    ),
                ));
            }
            for (i, &x) in p.iter().enumerate() {
                cx.non_negative(&format!("workload.popularity[{i}]"), x)?;
            }
            Ok(p.clone())
        }
        (None, z) => {
            let s = cx.opt_non_negative("workload.zipf", z, 1.0)?;
            Ok((0..models)
                .map(|i| 1.0 / ((i + 1) as f64).powf(s))
                .collect())
        }
    }
}

/// Every mode with a positive share has a model some node can serve with it.
fn check_modes_servable(
    cx: &Ctx,
    mix: &[f64; 3],
    given: &[f64; 3],
    model_probs: &[Vec<f64>; 3],
) -> Result<(), ScenarioError> {
    for mode in Verification::ALL {
        if mix[mode.index()] > 0.0 && model_probs[mode.index()].iter().all(|&p| p == 0.0) {
            let why = match mode {
                Verification::Vanilla => "no model with positive popularity fits on a node",
                Verification::Tee => "no TEE node (tee = true) can hold a model with positive popularity",
                Verification::Zkml => "no zk node (zk = true) can hold a model with zkml = true and positive popularity",
            };
            return Err(cx.err(
                format!("workload.{}", mode.name()),
                format!(
                    "is {} but {why}: set it to 0 or add such nodes",
                    given[mode.index()]
                ),
            ));
        }
    }
    Ok(())
}

/// Input and output token distributions: from the trace (its means; the sizes themselves are
/// replayed), or as given for synthetic arrivals.
fn token_dists(
    cx: &Ctx,
    w: &RawWorkload,
    trace: Option<&Trace>,
) -> Result<(Dist, Dist), ScenarioError> {
    if let Some(t) = trace {
        for (name, given) in [
            ("input_tokens", w.input_tokens.is_some()),
            ("output_tokens", w.output_tokens.is_some()),
        ] {
            if given {
                return Err(cx.err(
                    format!("workload.{name}"),
                    "does not apply to trace replay: sizes come from the trace",
                ));
            }
        }
        return Ok((Dist::Fixed(t.mean_input()), Dist::Fixed(t.mean_output())));
    }
    let input = w
        .input_tokens
        .as_ref()
        .ok_or_else(|| cx.err("workload.input_tokens", "is required for synthetic arrivals, e.g. { dist = \"lognormal\", mean = 1000, cv = 1 }"))?;
    let input = cx.dist("workload.input_tokens", input)?;
    let output = match &w.output_tokens {
        Some(d) => cx.dist("workload.output_tokens", d)?,
        None => Dist::Fixed(0.0),
    };
    Ok((input, output))
}

/// Jobs per episode: as given (a trace must hold that many), else the whole trace or 1000.
fn jobs_per_episode(
    cx: &Ctx,
    process: &ArrivalProcess,
    jobs: Option<u64>,
) -> Result<u64, ScenarioError> {
    Ok(match (process, jobs) {
        (ArrivalProcess::Trace { trace, .. }, Some(j)) if j as usize > trace.len() => {
            return Err(cx.err(
                "episode.jobs",
                format!("is {j} but the trace has {} requests: lower it or leave it out to replay the whole trace", trace.len()),
            ))
        }
        (ArrivalProcess::Trace { trace, .. }, None) => trace.len() as u64,
        (_, j) => j.unwrap_or(1000),
    })
}

/// A time quantum above the mean service time would round most service times to zero.
fn check_quantum(cx: &Ctx, quantum: f64, scales: &Scales) -> Result<(), ScenarioError> {
    if quantum > scales.time() {
        return Err(cx.err(
            "sim.time_quantum_s",
            format!(
                "is {}: above a job's mean service time ({:.3} s) it rounds most service times down to zero: lower it, or 0 for continuous time",
                shown(quantum),
                scales.time()
            ),
        ));
    }
    Ok(())
}

/// `episode.max_nodes`: the observation width, at least the largest network the scenario can
/// make (with `[randomize]`, the largest draw).
fn max_nodes(cx: &Ctx, sc: &Scenario, given: Option<usize>) -> Result<usize, ScenarioError> {
    let largest = match &sc.randomize {
        Some(r) => r.largest(&sc.class_counts()),
        None => sc.nodes.len(),
    };
    if largest > MAX_NODES {
        return Err(cx.err(
            "node_classes",
            format!("make {largest} nodes (the largest network): at most {MAX_NODES}"),
        ));
    }
    let max_nodes = given.unwrap_or(largest);
    if max_nodes > MAX_NODES {
        return Err(cx.err(
            "episode.max_nodes",
            format!("is {max_nodes}: at most {MAX_NODES}"),
        ));
    }
    if max_nodes < largest {
        let what = if sc.randomize.is_some() {
            "the largest network [randomize] can draw"
        } else {
            "the scenario's"
        };
        return Err(cx.err(
            "episode.max_nodes",
            format!("is {max_nodes}, fewer than {what} {largest} nodes: raise it or leave it out"),
        ));
    }
    Ok(max_nodes)
}
