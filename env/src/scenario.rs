//! The resolved scenario: a validated, self-consistent description of one simulated network.

use crate::network::{Clients, PrefixCaching, Registry, Settlement};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use haca_policy::{Scales, SizeVisibility, Verification};

use crate::config::RawScenario;
use crate::dist::Dist;
use crate::randomize::Randomize;
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
    /// Prefix KV blocks cached per model (0 without `[prefix]`).
    pub kv_blocks: u32,
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
    /// Batched settlement; `None`: each result settles on its own after `settle_s`.
    pub settlement: Option<Settlement>,
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
    pub clients: Clients,
    /// Liveness from the registry; `None`: a down node is masked at once.
    pub registry: Option<Registry>,
    pub prefix: Option<PrefixCaching>,
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

    /// Validates a parsed scenario, section by section (see `resolve.rs`).
    pub fn resolve(raw: RawScenario, file: &Path) -> Result<Scenario, ScenarioError> {
        crate::resolve::resolve(raw, file)
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
    /// The scenario with `count` clients, the demand's shape (uniform or its Zipf exponent)
    /// kept.
    pub fn with_clients(&self, count: u32) -> Scenario {
        let mut sc = self.clone();
        sc.clients = Clients::new(count, self.clients.demand);
        if let Some(r) = &mut sc.randomize {
            if r.clients.is_some() {
                r.clients = Some((count as f64, count as f64));
            }
        }
        sc
    }

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
pub(crate) fn mean_work(
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

pub(crate) fn mean_slot_speed(nodes: &[Node]) -> f64 {
    let total_slots: u32 = nodes.iter().map(|n| n.slots).sum();
    nodes.iter().map(|n| n.capacity()).sum::<f64>() / total_slots as f64
}

/// Work units per second the nodes offer in the long run (churning nodes by availability).
pub(crate) fn available_capacity(nodes: &[Node]) -> f64 {
    nodes.iter().map(|n| n.capacity() * n.availability()).sum()
}
