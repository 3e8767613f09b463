//! Many environments stepped in parallel into one preallocated, flat observation buffer.

use std::sync::Arc;

use haca_policy::features::{self, GLOBAL_FEATURES, JOB_FEATURES, NODE_FEATURES};
use haca_policy::rng::derive_seed;
use haca_policy::ClusterView;
use rayon::prelude::*;

use crate::env::{Env, EnvError};
use crate::metrics::EpisodeMetrics;
use crate::scenario::Scenario;

/// Runs `f` on a thread of rayon's global pool and returns its result.
///
/// Step a [`VecEnv`] from inside this: the calling thread then shares each step's work, and the
/// other workers are still spinning from the previous step. Called from outside the pool, every
/// step has to wake a sleeping worker, which costs tens of microseconds on small VMs and, on the
/// 2-core CI machine, ate most of the parallel speedup (see the `decisions` benchmark).
pub fn in_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| f())
}

/// What happens when an env's episode ends (Gymnasium's `AutoresetMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoresetMode {
    /// The env resets within the same `step`: the buffers hold the first observation of the new
    /// episode, `terminated`/`truncated` flag the end and `final_metrics` holds the finished
    /// episode's metrics. The final observation itself is not kept (on termination no job is
    /// waiting, so it has no decision to encode).
    #[default]
    SameStep,
    /// The buffers hold the final observation (mask all false); the env's next `step` ignores
    /// its action and resets, reporting reward 0 and neither flag.
    NextStep,
    /// Ended envs stay ended (their actions ignored, their buffers left as they were) until
    /// [`VecEnv::reset`].
    Disabled,
}

/// `num_envs` copies of one scenario, each with its own seed derived from a base seed.
///
/// Buffers (row-major, index `e` is the env):
/// `node_obs[e, max_nodes, NODE_FEATURES]`, `job_obs[e, JOB_FEATURES]`,
/// `global_obs[e, GLOBAL_FEATURES]`, `mask[e, max_nodes]`, and per env `rewards`, `terminated`,
/// `truncated`, `final_metrics`.
#[derive(Debug)]
pub struct VecEnv {
    envs: Vec<Env>,
    mode: AutoresetMode,
    max_nodes: usize,
    pub node_obs: Vec<f32>,
    pub job_obs: Vec<f32>,
    pub global_obs: Vec<f32>,
    pub mask: Vec<bool>,
    pub rewards: Vec<f32>,
    pub terminated: Vec<bool>,
    pub truncated: Vec<bool>,
    /// Metrics of episodes that ended in the last step (`None` for the others).
    pub final_metrics: Vec<Option<EpisodeMetrics>>,
    /// Envs to reset at their next step (NextStep) or that are ended (Disabled).
    pending_reset: Vec<bool>,
}

/// An env of the vector rejected its action.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("env {env}: {source}")]
pub struct VecEnvError {
    pub env: usize,
    pub source: EnvError,
}

impl VecEnv {
    pub fn new(scenario: Arc<Scenario>, num_envs: usize, mode: AutoresetMode) -> VecEnv {
        assert!(num_envs > 0, "a VecEnv needs at least one env");
        let max_nodes = scenario.max_nodes;
        VecEnv {
            envs: (0..num_envs).map(|_| Env::new(scenario.clone())).collect(),
            mode,
            max_nodes,
            node_obs: vec![0.0; num_envs * max_nodes * NODE_FEATURES],
            job_obs: vec![0.0; num_envs * JOB_FEATURES],
            global_obs: vec![0.0; num_envs * GLOBAL_FEATURES],
            mask: vec![false; num_envs * max_nodes],
            rewards: vec![0.0; num_envs],
            terminated: vec![false; num_envs],
            truncated: vec![false; num_envs],
            final_metrics: vec![None; num_envs],
            pending_reset: vec![false; num_envs],
        }
    }

    pub fn num_envs(&self) -> usize {
        self.envs.len()
    }

    pub fn max_nodes(&self) -> usize {
        self.max_nodes
    }

    pub fn mode(&self) -> AutoresetMode {
        self.mode
    }

    /// The structured observation of env `e` (what heuristic routers read).
    pub fn view(&self, e: usize) -> &ClusterView {
        self.envs[e].obs()
    }

    pub fn env(&self, e: usize) -> &Env {
        &self.envs[e]
    }

    /// Resets every env; env `e` gets seed `derive_seed(seed, e)`.
    pub fn reset(&mut self, seed: u64) {
        let mn = self.max_nodes;
        (
            self.envs.par_iter_mut(),
            self.node_obs.par_chunks_mut(mn * NODE_FEATURES),
            self.job_obs.par_chunks_mut(JOB_FEATURES),
            self.global_obs.par_chunks_mut(GLOBAL_FEATURES),
            self.mask.par_chunks_mut(mn),
        )
            .into_par_iter()
            .enumerate()
            .for_each(|(e, (env, nodes, job, global, mask))| {
                let (view, _) = env.reset(Some(derive_seed(seed, e as u64)));
                features::encode(view, nodes, job, global, mask);
            });
        self.rewards.fill(0.0);
        self.terminated.fill(false);
        self.truncated.fill(false);
        self.final_metrics.fill(None);
        self.pending_reset.fill(false);
    }

    /// Steps every env with its action (`actions[e]` is a node index of env `e`) in parallel
    /// and writes the new observations, rewards and flags into the buffers.
    ///
    /// On an illegal action the first offending env is reported; the other envs have stepped.
    pub fn step(&mut self, actions: &[usize]) -> Result<(), VecEnvError> {
        assert_eq!(actions.len(), self.envs.len(), "one action per env");
        let mn = self.max_nodes;
        let mode = self.mode;
        // A step is a few hundred nanoseconds: hand rayon batches, not single envs.
        let min_len = (self.envs.len() / (4 * rayon::current_num_threads())).max(1);
        let errors: Option<VecEnvError> = (
            self.envs.par_iter_mut(),
            actions.par_iter(),
            self.node_obs.par_chunks_mut(mn * NODE_FEATURES),
            self.job_obs.par_chunks_mut(JOB_FEATURES),
            self.global_obs.par_chunks_mut(GLOBAL_FEATURES),
            self.mask.par_chunks_mut(mn),
            self.rewards.par_iter_mut(),
            self.terminated.par_iter_mut(),
            self.truncated.par_iter_mut(),
            self.final_metrics.par_iter_mut(),
            self.pending_reset.par_iter_mut(),
        )
            .into_par_iter()
            .with_min_len(min_len)
            .enumerate()
            .filter_map(
                |(
                    e,
                    (env, &action, nodes, job, global, mask, reward, term, trunc, fin, pending),
                )| {
                    *fin = None;
                    if *pending {
                        *reward = 0.0;
                        *term = false;
                        *trunc = false;
                        if mode == AutoresetMode::NextStep {
                            *pending = false;
                            let (view, _) = env.reset(None);
                            features::encode(view, nodes, job, global, mask);
                        }
                        return None;
                    }
                    let step = match env.step(action) {
                        Ok(s) => s,
                        Err(source) => return Some(VecEnvError { env: e, source }),
                    };
                    *reward = step.reward as f32;
                    *term = step.terminated;
                    *trunc = step.truncated;
                    let done = step.done();
                    *fin = step.info.metrics;
                    if done && mode == AutoresetMode::SameStep {
                        env.reset(None);
                    } else if done {
                        *pending = true;
                    }
                    features::encode(env.obs(), nodes, job, global, mask);
                    None
                },
            )
            .min_by_key(|err| err.env);
        match errors {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}
