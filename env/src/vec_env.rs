//! Many environments stepped in parallel into one preallocated, flat observation buffer.

use std::sync::Arc;

use haca_policy::features::{self, GLOBAL_FEATURES, JOB_FEATURES, NODE_FEATURES};
use haca_policy::rng::derive_seed;
use haca_policy::ClusterView;
use rayon::prelude::*;

use crate::env::{Env, EnvError, EnvSnapshot, RestoreError};
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
    /// In `SameStep` mode, the final observation of an env whose episode was truncated in the
    /// last step (a value bootstrap needs it; a terminated episode's has no decision to
    /// encode), laid out as `node_obs`, `job_obs`, `global_obs` and `mask`. With no job
    /// waiting, its mask marks every node of the episode's network, so a policy's pooled
    /// context reads the whole network. Valid where `truncated[e]`.
    pub final_node_obs: Vec<f32>,
    pub final_job_obs: Vec<f32>,
    pub final_global_obs: Vec<f32>,
    pub final_mask: Vec<bool>,
    /// With [`VecEnv::record_credits`]: the per-job credits each env recorded in the last step,
    /// as (decision, seconds), belonging to episode `credit_episode[e]` (the episode that was
    /// running when the step began: with `SameStep` a reset may follow in the same step).
    pub credits: Vec<Vec<(u64, f64)>>,
    pub credit_episode: Vec<u64>,
    /// Each env's `Info::job_seconds` of the last step.
    pub job_seconds: Vec<f32>,
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
            final_node_obs: vec![0.0; num_envs * max_nodes * NODE_FEATURES],
            final_job_obs: vec![0.0; num_envs * JOB_FEATURES],
            final_global_obs: vec![0.0; num_envs * GLOBAL_FEATURES],
            final_mask: vec![false; num_envs * max_nodes],
            credits: vec![Vec::new(); num_envs],
            credit_episode: vec![0; num_envs],
            job_seconds: vec![0.0; num_envs],
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
        self.reset_groups(seed, 1);
    }

    /// Resets every env in groups of `group` consecutive envs that share a seed stream
    /// (`derive_seed(seed, e / group)`): the envs of a group see the same workloads, episode
    /// after episode, as long as their episodes end together (common random numbers inside a
    /// batch, for input-dependent baselines).
    pub fn reset_groups(&mut self, seed: u64, group: usize) {
        let group = group.max(1);
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
                let (view, _) = env.reset(Some(derive_seed(seed, (e / group) as u64)));
                features::encode(view, nodes, job, global, mask);
            });
        self.rewards.fill(0.0);
        self.terminated.fill(false);
        self.truncated.fill(false);
        self.final_metrics.fill(None);
        self.pending_reset.fill(false);
    }

    /// Turns per-job credit recording on or off in every env (see [`Env::set_record_credits`]).
    pub fn record_credits(&mut self, on: bool) {
        self.envs.iter_mut().for_each(|e| e.set_record_credits(on));
    }

    /// Every env's state as (seed stream, episode seed, actions), and which wait for a reset
    /// (NextStep, Disabled): with [`VecEnv::restore`], a checkpoint of the envs.
    pub fn snapshot(&self) -> (Vec<EnvSnapshot>, Vec<bool>) {
        (
            self.envs.iter().map(Env::snapshot).collect(),
            self.pending_reset.clone(),
        )
    }

    /// Rebuilds every env from a [`VecEnv::snapshot`] (by replay) and re-encodes the buffers.
    /// Rewards, flags and final metrics read as after a reset.
    pub fn restore(&mut self, envs: &[EnvSnapshot], pending: &[bool]) -> Result<(), RestoreError> {
        if envs.len() != self.envs.len() || pending.len() != self.envs.len() {
            return Err(RestoreError::new(format!(
                "it holds {} envs, this vector {}",
                envs.len(),
                self.envs.len()
            )));
        }
        let mn = self.max_nodes;
        (
            self.envs.par_iter_mut(),
            envs.par_iter(),
            self.node_obs.par_chunks_mut(mn * NODE_FEATURES),
            self.job_obs.par_chunks_mut(JOB_FEATURES),
            self.global_obs.par_chunks_mut(GLOBAL_FEATURES),
            self.mask.par_chunks_mut(mn),
        )
            .into_par_iter()
            .map(|(env, snap, nodes, job, global, mask)| {
                env.restore(snap)?;
                features::encode(env.obs(), nodes, job, global, mask);
                Ok(())
            })
            .collect::<Result<Vec<()>, RestoreError>>()?;
        self.rewards.fill(0.0);
        self.terminated.fill(false);
        self.truncated.fill(false);
        self.final_metrics.fill(None);
        self.pending_reset.copy_from_slice(pending);
        Ok(())
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
            (
                self.final_node_obs.par_chunks_mut(mn * NODE_FEATURES),
                self.final_job_obs.par_chunks_mut(JOB_FEATURES),
                self.final_global_obs.par_chunks_mut(GLOBAL_FEATURES),
                self.final_mask.par_chunks_mut(mn),
                self.credits.par_iter_mut(),
                self.credit_episode.par_iter_mut(),
                self.job_seconds.par_iter_mut(),
            )
                .into_par_iter(),
        )
            .into_par_iter()
            .with_min_len(min_len)
            .enumerate()
            .filter_map(
                |(
                    e,
                    (
                        env,
                        &action,
                        nodes,
                        job,
                        global,
                        mask,
                        reward,
                        term,
                        trunc,
                        fin,
                        pending,
                        (f_nodes, f_job, f_global, f_mask, credits, credit_ep, job_s),
                    ),
                )| {
                    *fin = None;
                    credits.clear();
                    *job_s = 0.0;
                    *credit_ep = env.info().episode_seed;
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
                    *job_s = step.info.job_seconds as f32;
                    *term = step.terminated;
                    *trunc = step.truncated;
                    let done = step.done();
                    *fin = step.info.metrics;
                    let (truncated, real) = (step.truncated, step.info.nodes.min(f_mask.len()));
                    env.take_credits(credits);
                    if done && mode == AutoresetMode::SameStep {
                        if truncated {
                            features::encode(env.obs(), f_nodes, f_job, f_global, f_mask);
                            if !f_mask.iter().any(|&m| m) {
                                f_mask[..real].fill(true);
                            }
                        }
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
