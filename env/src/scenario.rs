//! The resolved scenario: a validated, self-consistent description of one simulated network.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use haca_policy::{Scales, SizeVisibility, Verification};

use crate::bounds::{
    check_draws, check_event_work, check_span, shown, MAX_JOBS_PER_EPISODE, MAX_NODES,
    MAX_RATE_MULT, MAX_SLOTS,
};
use crate::config::{RawArrivals, RawDist, RawScenario};
use crate::dist::Dist;
use crate::randomize::{resolve_randomize, Randomize};
use crate::trace::Trace;

/// Why a scenario could not be loaded. Every variant names the file; `Invalid` names the field
/// (as a TOML path such as `node_classes[2].speed`) and says what is allowed.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{}: cannot read the scenario: {source}", file.display())]
    Io {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", file.display())]
    Parse { file: PathBuf, message: String },
    #[error("{}: `{field}`: {message}", file.display())]
    Invalid {
        file: PathBuf,
        field: String,
        message: String,
    },
    #[error("{}: `arrivals.path`: {source}", file.display())]
    Trace {
        file: PathBuf,
        source: crate::trace::TraceError,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub name: String,
    pub memory_gb: f64,
    pub prefill_cost: f64,
    pub decode_cost: f64,
    pub zkml: bool,
}

/// One inference node (node classes expanded).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub class: usize,
    pub speed: f64,
    pub slots: u32,
    pub memory_gb: f64,
    pub tee: bool,
    pub zk: bool,
    /// Mean time between failures and to repair, when the node churns.
    pub churn: Option<(f64, f64)>,
}

impl Node {
    pub fn capacity(&self) -> f64 {
        self.speed * self.slots as f64
    }

    /// Long-run fraction of time the node is up.
    pub fn availability(&self) -> f64 {
        self.churn.map_or(1.0, |(up, down)| up / (up + down))
    }

    pub fn can_serve(&self, model: &Model, mode: Verification) -> bool {
        model.memory_gb <= self.memory_gb
            && match mode {
                Verification::Vanilla => true,
                Verification::Tee => self.tee,
                Verification::Zkml => self.zk && model.zkml,
            }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialCache {
    Empty,
    Popular,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ArrivalProcess {
    Poisson,
    /// Two-state Markov-modulated Poisson process; rates are absolute (already normalized so the
    /// time average is the scenario's rate).
    Mmpp {
        high_rate: f64,
        low_rate: f64,
        mean_high_s: f64,
        mean_low_s: f64,
    },
    Diurnal {
        period_s: f64,
        amplitude: f64,
    },
    /// Replay: arrival times are the trace's, multiplied by `time_scale`.
    Trace {
        trace: Arc<Trace>,
        time_scale: f64,
        random_offset: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Arrivals {
    pub process: ArrivalProcess,
    /// Mean arrivals per second.
    pub rate_per_s: f64,
}

/// Token sizes of jobs: sampled, or read from the trace being replayed.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Probability of each model given each verification mode (`[mode][model]`, rows sum to 1
    /// for modes in use); models a mode cannot be served with have probability 0.
    pub model_probs: [Vec<f64>; 3],
    /// Popularity weight of each model, in catalog order (before the per-mode filtering).
    pub popularity: Vec<f64>,
    pub mix: [f64; 3],
    pub input_tokens: Dist,
    pub output_tokens: Dist,
    /// Mean output tokens: what the router assumes when sizes are hidden.
    pub mean_output_tokens: f64,
    pub slo_latency_s: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VerificationLayer {
    /// Work multiplier per mode (vanilla is 1).
    pub multiplier: [f64; 3],
    pub verifiers: u32,
    pub check_s: [f64; 3],
    pub settle_s: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RewardWeights {
    pub jobs: f64,
    pub stranded: f64,
    pub norm_s: f64,
}

/// A validated scenario. Build it with [`Scenario::load`] or [`Scenario::from_toml_str`].
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    /// The file it was read from, if any.
    pub path: Option<PathBuf>,
    pub jobs_per_episode: u64,
    pub drain: bool,
    pub max_nodes: usize,
    pub time_quantum_s: f64,
    pub scrape_interval_s: f64,
    pub size_visibility: SizeVisibility,
    pub estimate_cv: f64,
    pub initial_cache: InitialCache,
    pub reward: RewardWeights,
    pub load_fixed_s: f64,
    pub load_gbps: f64,
    pub verification: VerificationLayer,
    pub models: Vec<Model>,
    pub class_names: Vec<String>,
    pub nodes: Vec<Node>,
    pub workload: Workload,
    pub arrivals: Arrivals,
    pub scales: Scales,
    /// Draw a network and load per episode ([`Scenario::episode_variant`]); `None`: every
    /// episode runs on `nodes` as they are.
    pub randomize: Option<Randomize>,
}

pub(crate) struct Ctx<'a> {
    pub(crate) file: &'a Path,
}

impl Ctx<'_> {
    pub(crate) fn err(
        &self,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ScenarioError {
        ScenarioError::Invalid {
            file: self.file.to_path_buf(),
            field: field.into(),
            message: message.into(),
        }
    }

    pub(crate) fn positive(&self, field: &str, v: f64) -> Result<f64, ScenarioError> {
        if v.is_finite() && v > 0.0 {
            Ok(v)
        } else {
            Err(self.err(field, format!("is {}: must be a positive number", shown(v))))
        }
    }

    pub(crate) fn non_negative(&self, field: &str, v: f64) -> Result<f64, ScenarioError> {
        if v.is_finite() && v >= 0.0 {
            Ok(v)
        } else {
            Err(self.err(
                field,
                format!("is {}: must be zero or a positive number", shown(v)),
            ))
        }
    }

    fn opt_non_negative(
        &self,
        field: &str,
        v: Option<f64>,
        default: f64,
    ) -> Result<f64, ScenarioError> {
        self.non_negative(field, v.unwrap_or(default))
    }

    /// Loads a trace named in the file: relative paths are relative to the file's folder.
    pub(crate) fn trace(&self, path: &Path) -> Result<Trace, ScenarioError> {
        let full = if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.file.parent().unwrap_or(Path::new(".")).join(path)
        };
        Trace::load(&full).map_err(|source| ScenarioError::Trace {
            file: self.file.to_path_buf(),
            source,
        })
    }

    fn dist(&self, field: &str, raw: &RawDist) -> Result<Dist, ScenarioError> {
        let allowed: &[&str] = match raw.dist.as_str() {
            "fixed" => &["value"],
            "uniform" => &["min", "max"],
            "exponential" => &["mean"],
            "lognormal" => &["mean", "cv"],
            "pareto" => &["shape", "scale"],
            other => {
                return Err(self.err(
                    format!("{field}.dist"),
                    format!("is \"{other}\": expected one of \"fixed\", \"uniform\", \"exponential\", \"lognormal\", \"pareto\""),
                ))
            }
        };
        let given = [
            ("value", raw.value),
            ("min", raw.min),
            ("max", raw.max),
            ("mean", raw.mean),
            ("cv", raw.cv),
            ("shape", raw.shape),
            ("scale", raw.scale),
        ];
        for (name, v) in given {
            if v.is_some() && !allowed.contains(&name) {
                return Err(self.err(
                    format!("{field}.{name}"),
                    format!(
                        "does not apply to dist = \"{}\" (which takes {})",
                        raw.dist,
                        allowed.join(", ")
                    ),
                ));
            }
        }
        let need = |name: &str, v: Option<f64>| {
            v.ok_or_else(|| {
                self.err(
                    format!("{field}.{name}"),
                    format!("is required for dist = \"{}\"", raw.dist),
                )
            })
        };
        let f = |n: &str| format!("{field}.{n}");
        Ok(match raw.dist.as_str() {
            "fixed" => Dist::Fixed(self.non_negative(&f("value"), need("value", raw.value)?)?),
            "uniform" => {
                let min = self.non_negative(&f("min"), need("min", raw.min)?)?;
                let max = self.non_negative(&f("max"), need("max", raw.max)?)?;
                if max < min {
                    return Err(self.err(f("max"), format!("is {max}, below min = {min}")));
                }
                Dist::Uniform { min, max }
            }
            "exponential" => Dist::Exponential {
                mean: self.positive(&f("mean"), need("mean", raw.mean)?)?,
            },
            "lognormal" => Dist::lognormal(
                self.positive(&f("mean"), need("mean", raw.mean)?)?,
                self.non_negative(&f("cv"), need("cv", raw.cv)?)?,
            ),
            _ => Dist::Pareto {
                shape: self.positive(&f("shape"), need("shape", raw.shape)?)?,
                scale: self.positive(&f("scale"), need("scale", raw.scale)?)?,
            },
        })
    }
}

impl Scenario {
    /// Reads and validates a scenario file. A trace path inside it is resolved relative to the
    /// file's folder.
    pub fn load(path: impl AsRef<Path>) -> Result<Scenario, ScenarioError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        Scenario::from_toml_str(&text, path)
    }

    /// Parses and validates TOML text; `file` names it in errors and anchors relative paths.
    pub fn from_toml_str(text: &str, file: &Path) -> Result<Scenario, ScenarioError> {
        let raw: RawScenario = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            file: file.to_path_buf(),
            message: e.to_string().trim_end().replace('\n', "\n  "),
        })?;
        Scenario::resolve(raw, file)
    }

    /// Validates a parsed scenario.
    pub fn resolve(raw: RawScenario, file: &Path) -> Result<Scenario, ScenarioError> {
        let cx = Ctx { file };

        // Models.
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

        // Nodes.
        if raw.node_classes.is_empty() {
            return Err(cx.err(
                "node_classes",
                "no node class: add at least one [[node_classes]] table",
            ));
        }
        let mut nodes = Vec::new();
        let mut class_names = Vec::new();
        for (i, c) in raw.node_classes.iter().enumerate() {
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
                (Some(_), None) => {
                    return Err(cx.err(f("mttr_s"), "is required when mtbf_s is set"))
                }
                (None, Some(_)) => {
                    return Err(cx.err(f("mtbf_s"), "is required when mttr_s is set"))
                }
            };
            let node = Node {
                class: i,
                speed: cx.positive(&f("speed"), c.speed)?,
                slots,
                memory_gb: cx.non_negative(&f("memory_gb"), c.memory_gb)?,
                tee: c.tee,
                zk: c.zk,
                churn,
            };
            if nodes.len() + c.count as usize > MAX_NODES {
                return Err(cx.err(
                    f("count"),
                    format!(
                        "is {}: the classes would make more than {MAX_NODES} nodes",
                        c.count
                    ),
                ));
            }
            nodes.extend(std::iter::repeat_n(node, c.count as usize));
            class_names.push(c.name.clone());
        }
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

        // Episode and simulation settings.
        let jobs = raw.episode.jobs;
        if jobs == Some(0) {
            return Err(cx.err("episode.jobs", "is 0: an episode needs at least one job"));
        }
        if let Some(j) = jobs.filter(|&j| j > MAX_JOBS_PER_EPISODE) {
            return Err(cx.err(
                "episode.jobs",
                format!("is {j}: at most {MAX_JOBS_PER_EPISODE} jobs per episode (run more episodes instead)"),
            ));
        }
        let visibility = raw.sim.size_visibility.as_deref().unwrap_or("hidden");
        let size_visibility = size_visibility(visibility).ok_or_else(|| {
            cx.err(
                "sim.size_visibility",
                format!("is \"{visibility}\": expected \"exact\", \"estimate\" or \"hidden\""),
            )
        })?;
        let initial_cache = match raw.sim.initial_cache.as_deref().unwrap_or("popular") {
            "popular" => InitialCache::Popular,
            "empty" => InitialCache::Empty,
            other => {
                return Err(cx.err(
                    "sim.initial_cache",
                    format!("is \"{other}\": expected \"popular\" or \"empty\""),
                ))
            }
        };
        let reward = RewardWeights {
            jobs: cx.opt_non_negative("reward.jobs_weight", raw.reward.jobs_weight, 1.0)?,
            stranded: cx.opt_non_negative(
                "reward.stranded_weight",
                raw.reward.stranded_weight,
                0.0,
            )?,
            norm_s: cx.positive("reward.norm_s", raw.reward.norm_s.unwrap_or(1.0))?,
        };
        let v = &raw.verification;
        let verification = VerificationLayer {
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
        };

        // Workload: verification mix and model popularity per mode.
        let w = &raw.workload;
        let mut mix = [
            cx.opt_non_negative("workload.vanilla", w.vanilla, 0.0)?,
            cx.opt_non_negative("workload.tee", w.tee, 0.0)?,
            cx.opt_non_negative("workload.zkml", w.zkml, 0.0)?,
        ];
        let given_mix = mix;
        let total: f64 = mix.iter().sum();
        if total == 0.0 {
            if w.vanilla.is_some() || w.tee.is_some() || w.zkml.is_some() {
                return Err(cx.err(
                    "workload.vanilla",
                    "the verification shares (vanilla, tee, zkml) are all 0",
                ));
            }
            mix = [1.0, 0.0, 0.0];
        } else {
            mix.iter_mut().for_each(|x| *x /= total);
        }
        let weights: Vec<f64> = match (&w.popularity, w.zipf) {
            (Some(_), Some(_)) => {
                return Err(cx.err(
                    "workload.popularity",
                    "set either `popularity` or `zipf`, not both",
                ))
            }
            (Some(p), None) => {
                if p.len() != models.len() {
                    return Err(cx.err(
                        "workload.popularity",
                        format!(
                            "has {} weights for {} models: give one per model",
                            p.len(),
                            models.len()
                        ),
                    ));
                }
                for (i, &x) in p.iter().enumerate() {
                    cx.non_negative(&format!("workload.popularity[{i}]"), x)?;
                }
                p.clone()
            }
            (None, z) => {
                let s = cx.opt_non_negative("workload.zipf", z, 1.0)?;
                (0..models.len())
                    .map(|i| 1.0 / ((i + 1) as f64).powf(s))
                    .collect()
            }
        };
        let model_probs = model_probs(&models, &nodes, &weights);
        for mode in Verification::ALL {
            if mix[mode.index()] > 0.0 && model_probs[mode.index()].iter().all(|&p| p == 0.0) {
                let why = match mode {
                    Verification::Vanilla => "no model with positive popularity fits on a node".to_string(),
                    Verification::Tee => "no TEE node (tee = true) can hold a model with positive popularity".to_string(),
                    Verification::Zkml => "no zk node (zk = true) can hold a model with zkml = true and positive popularity".to_string(),
                };
                return Err(cx.err(
                    format!("workload.{}", mode.name()),
                    format!(
                        "is {} but {why}: set it to 0 or add such nodes",
                        given_mix[mode.index()]
                    ),
                ));
            }
        }
        let slo_latency_s = match w.slo_latency_s {
            Some(s) => Some(cx.positive("workload.slo_latency_s", s)?),
            None => None,
        };

        // Arrivals.
        let Some(arr) = raw.arrivals.as_ref() else {
            return Err(cx.err("arrivals", "missing: add an [arrivals] table with process = \"poisson\" (or mmpp, diurnal, trace)"));
        };
        let trace = if arr.process == "trace" {
            let Some(p) = arr.path.as_ref() else {
                return Err(cx.err("arrivals.path", "is required for process = \"trace\""));
            };
            Some(Arc::new(cx.trace(Path::new(p))?))
        } else {
            None
        };
        let (input_tokens, output_tokens) = if let Some(t) = &trace {
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
            (Dist::Fixed(t.mean_input()), Dist::Fixed(t.mean_output()))
        } else {
            let input = w
                .input_tokens
                .as_ref()
                .ok_or_else(|| cx.err("workload.input_tokens", "is required for synthetic arrivals, e.g. { dist = \"lognormal\", mean = 1000, cv = 1 }"))?;
            let input = cx.dist("workload.input_tokens", input)?;
            let output = match &w.output_tokens {
                Some(d) => cx.dist("workload.output_tokens", d)?,
                None => Dist::Fixed(0.0),
            };
            (input, output)
        };
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
        let capacity = available_capacity(&nodes);
        let scales = Scales {
            work: mean_work,
            speed: mean_slot_speed(&nodes),
        };

        let arrivals = resolve_arrivals(&cx, arr, trace.as_ref(), mean_work, capacity)?;
        let jobs_per_episode = match (&arrivals.process, jobs) {
            (ArrivalProcess::Trace { trace, .. }, Some(j)) if j as usize > trace.len() => {
                return Err(cx.err(
                    "episode.jobs",
                    format!("is {j} but the trace has {} requests: lower it or leave it out to replay the whole trace", trace.len()),
                ))
            }
            (ArrivalProcess::Trace { trace, .. }, None) => trace.len() as u64,
            (_, j) => j.unwrap_or(1000),
        };
        check_span(&cx, jobs_per_episode, arrivals.rate_per_s)?;
        let quantum = raw.sim.time_quantum_s.unwrap_or(0.0);
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
            time_quantum_s: cx.opt_non_negative(
                "sim.time_quantum_s",
                raw.sim.time_quantum_s,
                0.0,
            )?,
            scrape_interval_s: cx.scrape_interval(
                "sim.scrape_interval_s",
                raw.sim.scrape_interval_s.unwrap_or(0.0),
            )?,
            size_visibility,
            estimate_cv: cx.opt_non_negative("sim.estimate_cv", raw.sim.estimate_cv, 0.5)?,
            initial_cache,
            reward,
            load_fixed_s: cx.opt_non_negative(
                "hosting.load_fixed_s",
                raw.hosting.load_fixed_s,
                5.0,
            )?,
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
        };
        sc.randomize = raw
            .randomize
            .as_ref()
            .map(|r| resolve_randomize(&cx, r, &sc, w.popularity.is_none()))
            .transpose()?;
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
        sc.max_nodes = raw.episode.max_nodes.unwrap_or(largest);
        if sc.max_nodes > MAX_NODES {
            return Err(cx.err(
                "episode.max_nodes",
                format!("is {}: at most {MAX_NODES}", sc.max_nodes),
            ));
        }
        if sc.max_nodes < largest {
            let what = if sc.randomize.is_some() {
                "the largest network [randomize] can draw"
            } else {
                "the scenario's"
            };
            return Err(cx.err(
                "episode.max_nodes",
                format!(
                    "is {}, fewer than {what} {largest} nodes: raise it or leave it out",
                    sc.max_nodes
                ),
            ));
        }
        check_event_work(&cx, &sc)?;
        check_draws(&cx, &sc)?;
        Ok(sc)
    }

    /// Arriving work per second over total (availability-weighted) capacity.
    pub fn offered_load(&self) -> f64 {
        self.arrivals.rate_per_s * self.mean_work() / available_capacity(&self.nodes)
    }

    /// Mean work units of a job of this scenario's workload (for a scenario as loaded, the
    /// feature scale `scales.work`).
    pub fn mean_work(&self) -> f64 {
        let w = &self.workload;
        mean_work(
            &self.models,
            &w.model_probs,
            &w.mix,
            &self.verification,
            w.input_tokens.mean(),
            w.output_tokens.mean(),
        )
    }

    /// The feature scales a scheduler running this network and workload would compute.
    pub fn own_scales(&self) -> Scales {
        Scales {
            work: self.mean_work(),
            speed: mean_slot_speed(&self.nodes),
        }
    }

    /// The same scenario with its arrival rate scaled so the offered load is `load` (bursts,
    /// the diurnal cycle and trace timing keep their shape). Feature scales are unchanged, so a
    /// policy sees the same normalization as on the original. A randomized scenario then draws
    /// networks at exactly this load.
    pub fn with_load(&self, load: f64) -> Scenario {
        let factor = load / self.offered_load();
        let mut sc = self.clone();
        if let Some(r) = &mut sc.randomize {
            r.load = Some((load, load));
        }
        sc.arrivals.rate_per_s *= factor;
        match &mut sc.arrivals.process {
            ArrivalProcess::Mmpp {
                high_rate,
                low_rate,
                ..
            } => {
                *high_rate *= factor;
                *low_rate *= factor;
            }
            ArrivalProcess::Trace { time_scale, .. } => *time_scale /= factor,
            ArrivalProcess::Poisson | ArrivalProcess::Diurnal { .. } => {}
        }
        sc
    }

    /// The same workload (absolute arrival rate) on `factor` times as many nodes: each node
    /// class's count is scaled and rounded, keeping at least one node per class. Feature scales
    /// are unchanged; `max_nodes` grows if needed. A randomized scenario draws around the scaled
    /// counts.
    pub fn with_node_scale(&self, factor: f64) -> Scenario {
        let counts: Vec<usize> = self
            .class_counts()
            .iter()
            .map(|&c| Randomize::scaled_count(c, factor))
            .collect();
        let mut sc = self.with_class_counts(&counts);
        if let Some(r) = &self.randomize {
            sc.max_nodes = sc.max_nodes.max(r.largest(&counts));
        }
        sc
    }

    /// Nodes of each class, in class order.
    pub fn class_counts(&self) -> Vec<usize> {
        (0..self.class_names.len())
            .map(|c| self.nodes.iter().filter(|n| n.class == c).count())
            .collect()
    }

    /// The same scenario with `counts[c]` nodes of class `c` (at least one each). The arrival
    /// rate and the feature scales are unchanged; `max_nodes` grows if needed.
    pub fn with_class_counts(&self, counts: &[usize]) -> Scenario {
        assert_eq!(counts.len(), self.class_names.len(), "one count per class");
        let mut sc = self.clone();
        sc.nodes.clear();
        for (class, &count) in counts.iter().enumerate() {
            let spec = self
                .nodes
                .iter()
                .find(|n| n.class == class)
                .expect("validation keeps a node of every class");
            sc.nodes
                .extend(std::iter::repeat_n(spec.clone(), count.max(1)));
        }
        sc.max_nodes = self.max_nodes.max(sc.nodes.len());
        sc
    }

    /// Seconds a cold load of `model` takes (before time quantization).
    pub fn load_time(&self, model: usize) -> f64 {
        self.load_fixed_s + self.models[model].memory_gb / self.load_gbps
    }
}

/// Mean work units of a job: over modes and models, tokens times costs times the mode's
/// multiplier.
fn mean_work(
    models: &[Model],
    model_probs: &[Vec<f64>; 3],
    mix: &[f64; 3],
    verification: &VerificationLayer,
    mean_in: f64,
    mean_out: f64,
) -> f64 {
    Verification::ALL
        .iter()
        .map(|&mode| {
            let i = mode.index();
            let per_model: f64 = models
                .iter()
                .zip(&model_probs[i])
                .map(|(m, p)| p * (m.prefill_cost * mean_in + m.decode_cost * mean_out))
                .sum();
            mix[i] * verification.multiplier[i] * per_model
        })
        .sum()
}

/// Probability of each model given each verification mode: the popularity `weights` of the
/// models some node can serve in that mode, normalized (all zero when none can).
pub(crate) fn model_probs(models: &[Model], nodes: &[Node], weights: &[f64]) -> [Vec<f64>; 3] {
    Verification::ALL.map(|mode| {
        let probs: Vec<f64> = models
            .iter()
            .zip(weights)
            .map(|(m, &wt)| {
                if nodes.iter().any(|n| n.can_serve(m, mode)) {
                    wt
                } else {
                    0.0
                }
            })
            .collect();
        let sum: f64 = probs.iter().sum();
        if sum > 0.0 {
            probs.iter().map(|p| p / sum).collect()
        } else {
            probs
        }
    })
}

pub(crate) fn size_visibility(name: &str) -> Option<SizeVisibility> {
    match name {
        "exact" => Some(SizeVisibility::Exact),
        "estimate" => Some(SizeVisibility::Estimate),
        "hidden" => Some(SizeVisibility::Hidden),
        _ => None,
    }
}

fn mean_slot_speed(nodes: &[Node]) -> f64 {
    let total_slots: u32 = nodes.iter().map(|n| n.slots).sum();
    nodes.iter().map(|n| n.capacity()).sum::<f64>() / total_slots as f64
}

/// Work units per second the nodes offer in the long run (churning nodes by availability).
fn available_capacity(nodes: &[Node]) -> f64 {
    nodes.iter().map(|n| n.capacity() * n.availability()).sum()
}

fn resolve_arrivals(
    cx: &Ctx,
    a: &RawArrivals,
    trace: Option<&Arc<Trace>>,
    mean_work: f64,
    capacity: f64,
) -> Result<Arrivals, ScenarioError> {
    let allowed: &[&str] = match a.process.as_str() {
        "poisson" => &["rate_per_s", "mean_interarrival_s", "load"],
        "mmpp" => &[
            "rate_per_s",
            "mean_interarrival_s",
            "load",
            "high_mult",
            "low_mult",
            "mean_high_s",
            "mean_low_s",
        ],
        "diurnal" => &[
            "rate_per_s",
            "mean_interarrival_s",
            "load",
            "period_s",
            "amplitude",
        ],
        "trace" => &["load", "path", "random_offset"],
        other => {
            return Err(cx.err(
                "arrivals.process",
                format!("is \"{other}\": expected \"poisson\", \"mmpp\", \"diurnal\" or \"trace\""),
            ))
        }
    };
    let given = [
        ("rate_per_s", a.rate_per_s.is_some()),
        ("mean_interarrival_s", a.mean_interarrival_s.is_some()),
        ("load", a.load.is_some()),
        ("high_mult", a.high_mult.is_some()),
        ("low_mult", a.low_mult.is_some()),
        ("mean_high_s", a.mean_high_s.is_some()),
        ("mean_low_s", a.mean_low_s.is_some()),
        ("period_s", a.period_s.is_some()),
        ("amplitude", a.amplitude.is_some()),
        ("path", a.path.is_some()),
        ("random_offset", a.random_offset.is_some()),
    ];
    for (name, is_set) in given {
        if is_set && !allowed.contains(&name) {
            return Err(cx.err(
                format!("arrivals.{name}"),
                format!(
                    "does not apply to process = \"{}\" (which takes {})",
                    a.process,
                    allowed.join(", ")
                ),
            ));
        }
    }
    let load_rate = |load: f64| -> Result<f64, ScenarioError> {
        Ok(cx.positive("arrivals.load", load)? * capacity / mean_work)
    };
    if let Some(trace) = trace {
        let native_rate = if trace.span_s() > 0.0 {
            (trace.len() - 1) as f64 / trace.span_s()
        } else {
            f64::INFINITY
        };
        let (rate, time_scale) = match a.load {
            Some(_) if native_rate.is_infinite() => {
                return Err(cx.err(
                    "arrivals.load",
                    "every request of the trace arrives at the same instant, so there is no time to rescale: remove `load`",
                ))
            }
            Some(load) => {
                let rate = load_rate(load)?;
                (rate, native_rate / rate)
            }
            None => (native_rate, 1.0),
        };
        return Ok(Arrivals {
            process: ArrivalProcess::Trace {
                trace: trace.clone(),
                time_scale,
                random_offset: a.random_offset.unwrap_or(true),
            },
            rate_per_s: rate,
        });
    }
    let rate = match (a.rate_per_s, a.mean_interarrival_s, a.load) {
        (Some(r), None, None) => cx.positive("arrivals.rate_per_s", r)?,
        (None, Some(m), None) => 1.0 / cx.positive("arrivals.mean_interarrival_s", m)?,
        (None, None, Some(l)) => load_rate(l)?,
        _ => {
            return Err(cx.err(
                "arrivals.rate_per_s",
                "set exactly one of rate_per_s, mean_interarrival_s or load",
            ))
        }
    };
    let process = match a.process.as_str() {
        "poisson" => ArrivalProcess::Poisson,
        "mmpp" => {
            let high = cx.positive("arrivals.high_mult", a.high_mult.unwrap_or(4.0))?;
            let low = cx.non_negative("arrivals.low_mult", a.low_mult.unwrap_or(0.25))?;
            let th = cx.positive("arrivals.mean_high_s", a.mean_high_s.unwrap_or(60.0))?;
            let tl = cx.positive("arrivals.mean_low_s", a.mean_low_s.unwrap_or(240.0))?;
            for (field, m) in [("arrivals.high_mult", high), ("arrivals.low_mult", low)] {
                if m > MAX_RATE_MULT {
                    return Err(cx.err(
                        field,
                        format!(
                            "is {}: at most {MAX_RATE_MULT} (it is relative to the mean rate)",
                            shown(m)
                        ),
                    ));
                }
            }
            // Normalize so the time-averaged rate is `rate`.
            let k = (th + tl) / (high * th + low * tl);
            if !(k.is_finite() && k > 0.0) {
                return Err(cx.err(
                    "arrivals.mean_high_s",
                    "and mean_low_s, with the multipliers, give no finite average rate: use durations of seconds to days",
                ));
            }
            ArrivalProcess::Mmpp {
                high_rate: rate * high * k,
                low_rate: rate * low * k,
                mean_high_s: th,
                mean_low_s: tl,
            }
        }
        _ => {
            let amplitude = cx.non_negative("arrivals.amplitude", a.amplitude.unwrap_or(0.5))?;
            if amplitude > 1.0 {
                return Err(cx.err(
                    "arrivals.amplitude",
                    format!("is {amplitude}: must be at most 1 (the rate cannot go negative)"),
                ));
            }
            ArrivalProcess::Diurnal {
                period_s: cx.positive("arrivals.period_s", a.period_s.unwrap_or(86_400.0))?,
                amplitude,
            }
        }
    };
    Ok(Arrivals {
        process,
        rate_per_s: rate,
    })
}
