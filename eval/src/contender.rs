//! What gets evaluated: a router by name, or the pooled reference, run over seeded episodes.

use std::sync::Arc;

use std::path::{Path, PathBuf};

use haca_env::{Env, EpisodeMetrics, Scenario};
use haca_policy::rng::derive_seed;
use haca_policy::{
    router_by_name, PerClient, Policy, PolicyRouter, Router, Selection, ROUTER_NAMES,
};

/// Why an evaluation could not run.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("unknown router `{0}`: expected one of {names}, pooled, or all", names = ROUTER_NAMES.join(", "))]
    UnknownRouter(String),
    #[error("episode {episode}: {source}")]
    Rollout {
        episode: usize,
        source: haca_env::RolloutError,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Policy(#[from] haca_policy::PolicyError),
}

/// One thing to evaluate.
#[derive(Debug, Clone)]
pub enum Contender {
    /// A router built with `haca_policy::router_by_name`.
    Router(String),
    /// The central-queue reference (`Env::run_pooled`): the zero point of stranded idle.
    Pooled,
    /// An exported learned policy: greedy (what a scheduler deploys), or sampling from its
    /// softmax (what training optimizes), seeded per episode.
    Policy {
        name: String,
        path: PathBuf,
        policy: Arc<Policy>,
        selection: Selection,
    },
}

impl PartialEq for Contender {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (
                Contender::Policy {
                    path: a,
                    selection: sa,
                    ..
                },
                Contender::Policy {
                    path: b,
                    selection: sb,
                    ..
                },
            ) => a == b && sa == sb,
            (Contender::Policy { .. }, _) | (_, Contender::Policy { .. }) => false,
            _ => self.name() == other.name(),
        }
    }
}

impl Contender {
    pub fn name(&self) -> &str {
        match self {
            Contender::Router(n) => n,
            Contender::Pooled => "pooled",
            Contender::Policy { name, .. } => name,
        }
    }

    /// Loads an exported policy; it is reported as `policy:<file stem>`.
    pub fn policy(path: &Path) -> Result<Contender, EvalError> {
        let policy = Arc::new(Policy::load(path)?);
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Contender::Policy {
            name: format!("policy:{stem}"),
            path: path.to_path_buf(),
            policy,
            selection: Selection::Greedy,
        })
    }

    /// The same policy sampling from `softmax(logits / temperature)`, reported with a `~sample`
    /// suffix (`~t0.5` for another temperature). `None` for other contenders.
    pub fn sampled(&self, temperature: f32) -> Option<Contender> {
        let Contender::Policy {
            name, path, policy, ..
        } = self
        else {
            return None;
        };
        let suffix = if temperature == 1.0 {
            "~sample".to_string()
        } else {
            format!("~t{temperature}")
        };
        Some(Contender::Policy {
            name: format!("{name}{suffix}"),
            path: path.clone(),
            policy: policy.clone(),
            selection: Selection::Sample { temperature },
        })
    }

    /// Renames policies whose names collide (two `best.safetensors` from different runs) to
    /// `policy:<folder>/<stem>`, then numbers any that still collide (`#2`, `#3`), so that every
    /// contender of a comparison has its own name in tables, JSON and paired lines.
    pub fn disambiguate(contenders: &mut [Contender]) {
        let count = |cs: &[Contender], name: &str| cs.iter().filter(|c| c.name() == name).count();
        let dup: Vec<bool> = contenders
            .iter()
            .map(|c| count(contenders, c.name()) > 1)
            .collect();
        for (c, d) in contenders.iter_mut().zip(dup) {
            if let (Contender::Policy { name, path, .. }, true) = (c, d) {
                let folder = path
                    .parent()
                    .and_then(|p| p.file_name())
                    .map(|f| f.to_string_lossy().into_owned());
                let stem = name.trim_start_matches("policy:").to_string();
                if let Some(folder) = folder {
                    *name = format!("policy:{folder}/{stem}");
                }
            }
        }
        for i in 0..contenders.len() {
            let n = count(&contenders[..i], contenders[i].name());
            if n > 0 {
                if let Contender::Policy { name, .. } = &mut contenders[i] {
                    *name = format!("{name}#{}", n + 1);
                }
            }
        }
    }

    /// The router that plays this contender (`None` for the pooled reference).
    pub fn router(&self) -> Result<Option<Box<dyn Router>>, EvalError> {
        Ok(match self {
            Contender::Router(name) => Some(
                router_by_name(name, 0).ok_or_else(|| EvalError::UnknownRouter(name.clone()))?,
            ),
            Contender::Pooled => None,
            Contender::Policy {
                name,
                policy,
                selection,
                ..
            } => {
                let (policy, selection, name) = (policy.clone(), *selection, name.clone());
                // One instance per client, as every router: sampling draws from each client's
                // own stream.
                Some(Box::new(PerClient::new(Box::new(move || {
                    Box::new(
                        PolicyRouter::new(policy.clone(), selection, 0).with_name(name.clone()),
                    )
                }))))
            }
        })
    }

    /// The verdict a greedy policy's file records (its JSON object, `policy/FORMAT.md`):
    /// `Some(None)` when the file has none, `None` for other contenders and for the sampling
    /// variants (the same file; its verdict is reported once, with the greedy policy).
    pub fn verdict(&self) -> Option<Option<serde_json::Value>> {
        match self {
            Contender::Policy {
                policy,
                selection: Selection::Greedy,
                ..
            } => Some(
                policy
                    .info
                    .verdict
                    .as_deref()
                    .and_then(|v| serde_json::from_str(v).ok()),
            ),
            _ => None,
        }
    }

    /// The line printed before a report for a greedy policy: `policy:x: trained verdict on
    /// <scenario>: <the verdict's line>`, or `policy:x: no verdict recorded`; `None` where
    /// [`Contender::verdict`] is `None`.
    pub fn verdict_note(&self) -> Option<String> {
        let verdict = self.verdict()?;
        let Contender::Policy { policy, .. } = self else {
            return None;
        };
        let name = self.name();
        let unverified = match policy.digest() {
            Some(_) => "",
            None => " (unverified: a format-version-1 file has no content digest; re-save it with `cargo run --release -p haca-policy --example restamp -- FILE`)",
        };
        let note = match verdict {
            None => format!("{name}: no verdict recorded"),
            Some(v) => {
                let text = policy.info.verdict_line().unwrap_or_else(|| v.to_string());
                match policy.info.scenario.as_str() {
                    "" => format!("{name}: trained verdict: {text}"),
                    sc => format!("{name}: trained verdict on {sc}: {text}"),
                }
            }
        };
        Some(format!("{note}{unverified}"))
    }

    pub fn is_heuristic(&self) -> bool {
        matches!(self, Contender::Router(_))
    }

    /// Parses a comma-separated list; `all` is every heuristic of [`ROUTER_NAMES`] and `pooled`.
    pub fn parse_list(list: &str) -> Result<Vec<Contender>, EvalError> {
        let mut out: Vec<Contender> = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let items: Vec<Contender> = match name {
                "all" => ROUTER_NAMES
                    .iter()
                    .map(|n| Contender::Router(n.to_string()))
                    .chain([Contender::Pooled])
                    .collect(),
                "pooled" => vec![Contender::Pooled],
                n if router_by_name(n, 0).is_some() => vec![Contender::Router(n.to_string())],
                n => return Err(EvalError::UnknownRouter(n.to_string())),
            };
            for c in items {
                if !out.contains(&c) {
                    out.push(c);
                }
            }
        }
        if out.is_empty() {
            return Err(EvalError::Invalid(
                "no router given: use --routers all or a list such as jsq,sed".into(),
            ));
        }
        Ok(out)
    }
}

/// One evaluated episode. The per-job and per-node details are kept only when asked for (they
/// feed the plots).
#[derive(Debug, Clone)]
pub struct EpisodeRecord {
    pub metrics: EpisodeMetrics,
    /// Response latencies, seconds (empty unless details were asked for).
    pub latencies: Vec<f64>,
    /// Busy fraction per node (empty unless details were asked for).
    pub busy: Vec<f64>,
    /// (time s, stranded idle fraction of capacity in a bin around it), about 100 bins over the
    /// arrivals' span (empty unless details were asked for).
    pub stranded_series: Vec<(f64, f64)>,
}

/// The seed of episode `episode` of an evaluation with base seed `seed`: the same for every
/// contender, so all of them see the same workloads (common random numbers).
pub fn episode_seed(seed: u64, episode: usize) -> u64 {
    derive_seed(seed, episode as u64)
}

/// Runs episode `episode` of `contender` on `scenario`.
pub fn run_episode(
    scenario: &Arc<Scenario>,
    contender: &Contender,
    seed: u64,
    episode: usize,
    details: bool,
) -> Result<EpisodeRecord, EvalError> {
    let mut env = Env::new(scenario.clone());
    if details {
        // About 100 bins over the arrivals' span; the drain adds a few more.
        let span = scenario.jobs_per_episode as f64 / scenario.arrivals.rate_per_s;
        env.record_stranded_series(Some(span / 100.0));
    }
    let reset_seed = episode_seed(seed, episode);
    let metrics = match contender.router()? {
        None => env
            .run_pooled(Some(reset_seed))
            .map_err(|source| EvalError::Rollout {
                episode,
                source: haca_env::RolloutError {
                    router: "pooled".into(),
                    decision: 0,
                    source,
                },
            })?,
        Some(mut router) => haca_env::run_episode(&mut env, &mut router, Some(reset_seed))
            .map_err(|source| EvalError::Rollout { episode, source })?,
    };
    Ok(EpisodeRecord {
        metrics,
        latencies: if details {
            env.latencies().to_vec()
        } else {
            Vec::new()
        },
        busy: if details {
            env.busy_fractions()
        } else {
            Vec::new()
        },
        stranded_series: env.stranded_series(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists() {
        let all = Contender::parse_list("all").unwrap();
        assert_eq!(all.len(), ROUTER_NAMES.len() + 1);
        assert_eq!(all.last(), Some(&Contender::Pooled));
        let some = Contender::parse_list("sed, jsq,sed,pooled").unwrap();
        assert_eq!(
            some.iter().map(|c| c.name()).collect::<Vec<_>>(),
            ["sed", "jsq", "pooled"]
        );
        let err = Contender::parse_list("jsq,fastest")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("unknown router `fastest`"), "{err}");
        assert!(Contender::parse_list(" , ").is_err());
    }
}
