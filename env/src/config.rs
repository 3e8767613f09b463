//! The scenario file as written: serde types mirroring the TOML, with their documented defaults.
//! [`crate::Scenario::load`] validates a [`RawScenario`] into a resolved [`crate::Scenario`].
//!
//! Every table rejects unknown fields, so a typo is an error rather than a silently ignored
//! setting. See `env/scenarios/haca-small.toml` for a commented example of every section.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    pub name: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub episode: RawEpisode,
    #[serde(default)]
    pub sim: RawSim,
    #[serde(default)]
    pub reward: RawReward,
    #[serde(default)]
    pub hosting: RawHosting,
    #[serde(default)]
    pub verification: RawVerification,
    #[serde(default)]
    pub models: Vec<RawModel>,
    #[serde(default)]
    pub node_classes: Vec<RawNodeClass>,
    #[serde(default)]
    pub workload: RawWorkload,
    pub arrivals: Option<RawArrivals>,
    /// Domain randomization: absent, every episode runs on the network as written.
    pub randomize: Option<RawRandomize>,
    /// Many clients routing for themselves. Absent: one router that sees every dispatch.
    pub clients: Option<RawClients>,
    /// Liveness from a registry with heartbeats. Absent: routers know at once when a node is down.
    pub registry: Option<RawRegistry>,
    /// Prefix KV caches on the nodes. Absent: no prefix reuse.
    pub prefix: Option<RawPrefix>,
}

/// `[clients]`: every client routes for itself with its own instance of the router, seeing the
/// scraped state plus its own dispatches since (never the others').
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClients {
    /// Number of clients. Default 1 (one router, as without the table).
    pub count: Option<u32>,
    /// How demand splits over clients: "uniform" (default) or "zipf".
    pub demand: Option<String>,
    /// Zipf exponent of the clients' shares when `demand = "zipf"`. Default 1.
    pub zipf: Option<f64>,
}

/// `[registry]`: nodes heartbeat every `heartbeat_s` and stay listed (legal to route to) until
/// their last heartbeat is `max_age_s` old; a job sent to a node that is down, or on a node
/// when it dies, fails after `fail_timeout_s` and comes back to its client as a retry (the
/// client learns of a failure only by its request timing out).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRegistry {
    /// Default 900 (OpenGradient's default).
    pub heartbeat_s: Option<f64>,
    /// Default 1800 (`heartbeatMaxAge`).
    pub max_age_s: Option<f64>,
    /// Default 30.
    pub fail_timeout_s: Option<f64>,
}

/// `[prefix]`: each node keeps, per model, an LRU of prefix KV blocks; a job's prefill shrinks by
/// the blocks of its prefix already cached on the node it runs on. Blocks come from a trace's
/// `hash_ids` column or, for synthetic workloads, from the session model below.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrefix {
    /// Tokens per block. Default 512 (the Mooncake trace's).
    pub block_tokens: Option<u32>,
    /// Blocks a node caches when its class does not say (`kv_cache_blocks`). Default 4096.
    pub cache_blocks: Option<u32>,
    /// Synthetic sessions: conversations that reuse their own growing prefix. Default 0 (no
    /// session reuse).
    pub sessions: Option<u32>,
    /// Shared system prompts (every job starts with one of them). Default 0.
    pub system_prompts: Option<u32>,
    /// Tokens of a shared system prompt. Default 2048.
    pub system_tokens: Option<u32>,
}

/// Draws a different network and load for every episode (from the episode's seed, so
/// `Env::replay` and every router on the same seed see the same draw). Ranges are `[min, max]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRandomize {
    /// Every node class's count is multiplied by one factor drawn log-uniformly from this range
    /// (the network's size). Default `[1, 1]`.
    pub node_scale: Option<[f64; 2]>,
    /// Then each class's count is multiplied by a factor of its own, drawn log-uniformly from
    /// this range (the network's mix). Default `[1, 1]`. Counts are rounded; every class keeps
    /// at least one node, so every model and verification mode stays servable.
    pub class_scale: Option<[f64; 2]>,
    /// Offered load of the drawn network, uniform in this range. Absent: the arrival rate stays
    /// as written, so a larger draw is less loaded.
    pub load: Option<[f64; 2]>,
    /// Per-class log-uniform factors on speed, slots (rounded, at least 1) and memory. A model
    /// that then fits on no node of a mode is not requested in that mode. Default `[1, 1]`.
    pub class_speed: Option<[f64; 2]>,
    pub class_slots: Option<[f64; 2]>,
    pub class_memory: Option<[f64; 2]>,
    /// Probability that a node class churns in an episode; its mean time between failures and
    /// to repair are then drawn log-uniformly from `mtbf_s` and `mttr_s` (both required).
    /// Absent: churn as written.
    pub churn: Option<f64>,
    pub mtbf_s: Option<[f64; 2]>,
    pub mttr_s: Option<[f64; 2]>,
    /// Scrape interval, seconds: one of these values, uniformly (0: fresh observations).
    pub scrape_interval_s: Option<Vec<f64>>,
    /// What the router knows of output sizes: one of these ("exact", "estimate", "hidden").
    pub size_visibility: Option<Vec<String>>,
    /// Zipf exponent of model popularity, uniform in this range (the workload must use `zipf`).
    pub zipf: Option<[f64; 2]>,
    /// Share of ZKML requests, uniform in this range (the other modes keep their proportions).
    pub zkml: Option<[f64; 2]>,
    /// Arrival process, one of these per episode: "poisson", "mmpp" (bursts of 2-4x the mean
    /// rate), "diurnal" (a cycle of 10-60 minutes) or "trace" (a window of one of `traces`,
    /// its own token sizes). Absent: the process as written.
    pub arrivals: Option<Vec<String>>,
    /// Trace CSV files for "trace" draws, relative to the scenario file or absolute.
    pub traces: Option<Vec<String>>,
    /// Number of clients routing for themselves, drawn log-uniformly per episode (rounded), the
    /// demand's shape (`[clients] demand`) kept.
    pub clients: Option<[f64; 2]>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEpisode {
    /// Arrivals per episode. Default: 1000, or every row of a trace.
    pub jobs: Option<u64>,
    /// `true` (default): after the last arrival the episode runs until every job is answered and
    /// verified, then ends with `terminated`. `false`: it ends with `truncated` at the first
    /// decision past the last arrival, jobs still in flight.
    pub drain: Option<bool>,
    /// Node rows in the observation (padding). Default: the number of nodes.
    pub max_nodes: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSim {
    /// Round service times, load times and inter-arrival times down to multiples of this many
    /// seconds (Park uses 1: integer times). Default 0: continuous time.
    pub time_quantum_s: Option<f64>,
    /// Seconds between scrapes of node load; the router sees load as of the last scrape plus its
    /// own dispatches since. Default 0: always fresh.
    pub scrape_interval_s: Option<f64>,
    /// What the router knows of a job's output tokens: "exact", "estimate" or "hidden" (default).
    pub size_visibility: Option<String>,
    /// Coefficient of variation of the log-normal estimate noise when `size_visibility =
    /// "estimate"`. Default 0.5.
    pub estimate_cv: Option<f64>,
    /// Model caches at reset: "popular" (default: each node preloads the most popular models that
    /// fit its memory) or "empty".
    pub initial_cache: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReward {
    /// Weight of the integral of jobs in the system (seconds). Default 1.
    pub jobs_weight: Option<f64>,
    /// Weight of stranded capacity, in slot-seconds of a mean slot. Default 0.
    pub stranded_weight: Option<f64>,
    /// The reward is divided by this. Default 1 (raw seconds, as Park).
    pub norm_s: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHosting {
    /// Fixed part of a cold model load, seconds. Default 5.
    pub load_fixed_s: Option<f64>,
    /// Download bandwidth from the hosting layer, GB/s. Default 1.
    pub load_gbps: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVerification {
    /// Work multiplier of a TEE job. Default 1.5 (published TEE overheads are 1.1-3x).
    pub tee_multiplier: Option<f64>,
    /// Work multiplier of proving a ZKML job. Default 300 (published: 100-1000x).
    pub zkml_multiplier: Option<f64>,
    /// Concurrent checks the verification layer (full nodes) performs. Default 8; 0 disables the
    /// layer (finality = response + settle).
    pub verifiers: Option<u32>,
    /// Seconds to check one result, per mode. Defaults 0, 0.05, 0.5.
    pub vanilla_s: Option<f64>,
    pub tee_s: Option<f64>,
    pub zkml_s: Option<f64>,
    /// Settlement delay added after the check (block time), seconds. Default 0.
    pub settle_s: Option<f64>,
    /// Settlement batching: a batch settles when it holds `settle_batch` results or its oldest
    /// is `settle_timeout_s` old, one batch per worker at a time, each taking `settle_s`.
    /// Absent `settle_batch`: every result settles on its own after `settle_s`.
    pub settle_batch: Option<u32>,
    /// Default 60.
    pub settle_timeout_s: Option<f64>,
    /// Default 1.
    pub settle_workers: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    pub name: String,
    /// Memory the model occupies on a node, GB (also its download size).
    pub memory_gb: f64,
    /// Work units per input token (prefill).
    pub prefill_cost: f64,
    /// Work units per output token (decode).
    pub decode_cost: f64,
    /// Whether ZKML proofs can be produced for this model (small models only). Default false.
    #[serde(default)]
    pub zkml: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNodeClass {
    pub name: String,
    pub count: u32,
    /// Work units per second per slot.
    pub speed: f64,
    /// Concurrent jobs. Default 1.
    pub slots: Option<u32>,
    pub memory_gb: f64,
    #[serde(default)]
    pub tee: bool,
    #[serde(default)]
    pub zk: bool,
    /// Mean seconds between failures (exponential). Absent: the node never fails.
    pub mtbf_s: Option<f64>,
    /// Mean seconds to repair (exponential). Required with `mtbf_s`.
    pub mttr_s: Option<f64>,
    /// Prefix KV blocks the node caches per model (with `[prefix]`). Default `prefix.cache_blocks`.
    pub kv_cache_blocks: Option<u32>,
}

/// A distribution table: `{ dist = "lognormal", mean = 1000, cv = 1 }`. Which fields are allowed
/// depends on `dist`: fixed (value), uniform (min, max), exponential (mean), lognormal (mean, cv),
/// pareto (shape, scale).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDist {
    pub dist: String,
    pub value: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    pub cv: Option<f64>,
    pub shape: Option<f64>,
    pub scale: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWorkload {
    /// Zipf exponent of model popularity over the catalog order. Default 1.
    pub zipf: Option<f64>,
    /// Explicit popularity weights, one per model (instead of `zipf`).
    pub popularity: Option<Vec<f64>>,
    /// Share of each verification mode. Default: all vanilla.
    pub vanilla: Option<f64>,
    pub tee: Option<f64>,
    pub zkml: Option<f64>,
    /// Token distributions of synthetic jobs (ignored by trace replay, which has its own).
    pub input_tokens: Option<RawDist>,
    pub output_tokens: Option<RawDist>,
    /// Response latency objective, seconds: enables SLO attainment and goodput.
    pub slo_latency_s: Option<f64>,
}

/// The arrival process. `process` is "poisson", "mmpp", "diurnal" or "trace"; the rate is set by
/// exactly one of `rate_per_s`, `mean_interarrival_s` or `load` (target offered load: arriving
/// work over total capacity).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawArrivals {
    pub process: String,
    pub rate_per_s: Option<f64>,
    pub mean_interarrival_s: Option<f64>,
    pub load: Option<f64>,
    /// mmpp: rate multipliers of the high and low states and their mean durations.
    pub high_mult: Option<f64>,
    pub low_mult: Option<f64>,
    pub mean_high_s: Option<f64>,
    pub mean_low_s: Option<f64>,
    /// diurnal: `rate * (1 + amplitude * sin(2 pi t / period_s))`.
    pub period_s: Option<f64>,
    pub amplitude: Option<f64>,
    /// trace: CSV path, relative to the scenario file or absolute.
    pub path: Option<String>,
    /// trace: start each episode at a random row (when `episode.jobs` is less than the trace).
    pub random_offset: Option<bool>,
}
