//! Many environments stepped in parallel into one preallocated, flat observation buffer.

use std::sync::Arc;

use haca_policy::features::{self, GLOBAL_FEATURES, JOB_FEATURES, NODE_FEATURES};
use haca_policy::rng::derive_seed;
use haca_policy::ClusterView;
use haca_policy::{ObsBatch, ObsMut};
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
/// `obs` holds every env's current observation (row `e` is env `e`), `outcomes[e]` what env
/// `e`'s last step gave: reward, flags, the finished episode's metrics, credits.
#[derive(Debug)]
pub struct VecEnv {
    envs: Vec<Env>,
    mode: AutoresetMode,
    max_nodes: usize,
    pub obs: ObsBatch,
    /// In `SameStep` mode, the final observation of an env whose episode was truncated in the
    /// last step (a value bootstrap needs it; a terminated episode's has no decision to
    /// encode). With no job waiting, its mask marks every node of the episode's network, so a
    /// policy's pooled context reads the whole network. Valid where `outcomes[e].truncated`.
    pub final_obs: ObsBatch,
    pub outcomes: Vec<EnvOutcome>,
    /// Envs to reset at their next step (NextStep) or that are ended (Disabled).
    pending_reset: Vec<bool>,
}

/// What one env's last step gave.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnvOutcome {
    pub reward: f32,
    pub terminated: bool,
    pub truncated: bool,
    /// Metrics of the episode that ended in the last step, if one did.
    pub final_metrics: Option<EpisodeMetrics>,
    /// With [`VecEnv::credit_mode`]: the per-job credits the env recorded in the last step,
    /// as (decision, seconds), belonging to episode `credit_episode` (the episode that was
    /// running when the step began: with `SameStep` a reset may follow in the same step).
    pub credits: Vec<(u64, f64)>,
    pub credit_episode: u64,
    /// The env's `Info::job_seconds` of the last step.
    pub job_seconds: f32,
}

impl EnvOutcome {
    pub fn done(&self) -> bool {
        self.terminated || self.truncated
    }

    /// As after a reset: nothing happened yet (credits keep their allocation).
    fn clear(&mut self) {
        self.reward = 0.0;
        self.terminated = false;
        self.truncated = false;
        self.final_metrics = None;
        self.credits.clear();
        self.job_seconds = 0.0;
    }
}

/// An env of the vector rejected its action.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("env {env}: {source}")]
pub struct VecEnvError {
    pub env: usize,
    pub source: EnvError,
}

/// The rows of `batch`, to write in parallel.
fn par_rows(batch: &mut ObsBatch) -> impl IndexedParallelIterator<Item = ObsMut<'_>> {
    let n = batch.max_nodes();
    par_rows_of(batch.as_mut_all(), n)
}

/// The rows of a whole batch's buffers (`max_nodes` nodes each), to write in parallel.
fn par_rows_of(
    all: ObsMut<'_>,
    max_nodes: usize,
) -> impl IndexedParallelIterator<Item = ObsMut<'_>> {
    (
        all.nodes.par_chunks_mut(max_nodes * NODE_FEATURES),
        all.job.par_chunks_mut(JOB_FEATURES),
        all.global.par_chunks_mut(GLOBAL_FEATURES),
        all.mask.par_chunks_mut(max_nodes),
    )
        .into_par_iter()
        .map(|(nodes, job, global, mask)| ObsMut {
            nodes,
            job,
            global,
            mask,
        })
}

impl VecEnv {
    pub fn new(scenario: Arc<Scenario>, num_envs: usize, mode: AutoresetMode) -> VecEnv {
        assert!(num_envs > 0, "a VecEnv needs at least one env");
        let max_nodes = scenario.max_nodes;
        VecEnv {
            envs: (0..num_envs).map(|_| Env::new(scenario.clone())).collect(),
            mode,
            max_nodes,
            obs: ObsBatch::new(num_envs, max_nodes),
            final_obs: ObsBatch::new(num_envs, max_nodes),
            outcomes: vec![EnvOutcome::default(); num_envs],
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
        (self.envs.par_iter_mut(), par_rows(&mut self.obs))
            .into_par_iter()
            .enumerate()
            .for_each(|(e, (env, out))| {
                let (view, _) = env.reset(Some(derive_seed(seed, (e / group) as u64)));
                features::encode(view, out);
            });
        self.outcomes.iter_mut().for_each(EnvOutcome::clear);
        self.pending_reset.fill(false);
    }

    /// Resets only the envs where `mask[e]` is true (Gymnasium's `reset_mask`): each starts its
    /// next episode, from seed `derive_seed(seed, e)` when a seed is given, else continuing its
    /// own stream. The other envs, their observations and outcomes are left as they are.
    pub fn reset_some(&mut self, mask: &[bool], seed: Option<u64>) {
        assert_eq!(mask.len(), self.envs.len(), "one mask entry per env");
        (
            self.envs.par_iter_mut(),
            par_rows(&mut self.obs),
            self.outcomes.par_iter_mut(),
            self.pending_reset.par_iter_mut(),
        )
            .into_par_iter()
            .enumerate()
            .filter(|(e, _)| mask[*e])
            .for_each(|(e, (env, out, outcome, pending))| {
                let (view, _) = env.reset(seed.map(|s| derive_seed(s, e as u64)));
                features::encode(view, out);
                outcome.clear();
                *pending = false;
            });
    }

    /// Sets every env's externality weight (see [`Env::set_externality_weight`]).
    pub fn externality_weight(&mut self, w: f64) {
        self.envs
            .iter_mut()
            .for_each(|e| e.set_externality_weight(w));
    }

    /// Sets every env's per-job credit (see [`Env::set_credit_mode`]).
    pub fn credit_mode(&mut self, mode: crate::CreditMode) {
        self.envs.iter_mut().for_each(|e| e.set_credit_mode(mode));
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
        (
            self.envs.par_iter_mut(),
            envs.par_iter(),
            par_rows(&mut self.obs),
        )
            .into_par_iter()
            .map(|(env, snap, out)| {
                env.restore(snap)?;
                features::encode(env.obs(), out);
                Ok(())
            })
            .collect::<Result<Vec<()>, RestoreError>>()?;
        self.outcomes.iter_mut().for_each(EnvOutcome::clear);
        self.pending_reset.copy_from_slice(pending);
        Ok(())
    }

    /// Steps every env with its action (`actions[e]` is a node index of env `e`) in parallel
    /// and writes the new observations and outcomes.
    ///
    /// On an illegal action the first offending env is reported; the other envs have stepped.
    pub fn step(&mut self, actions: &[usize]) -> Result<(), VecEnvError> {
        let rows = par_rows(&mut self.obs);
        step_all(
            &mut self.envs,
            actions,
            self.mode,
            rows,
            &mut self.final_obs,
            &mut self.outcomes,
            &mut self.pending_reset,
        )
    }

    /// [`VecEnv::step`], writing the new observations into `out` (the caller's buffers, laid
    /// out as `obs`) and leaving `obs` as it was: a caller that owns its arrays saves a copy
    /// per step. Panics if `out` is not `num_envs` observations wide.
    pub fn step_into(&mut self, actions: &[usize], out: ObsMut<'_>) -> Result<(), VecEnvError> {
        let (n, mn) = (self.envs.len(), self.max_nodes);
        assert!(
            out.nodes.len() == n * mn * NODE_FEATURES
                && out.job.len() == n * JOB_FEATURES
                && out.global.len() == n * GLOBAL_FEATURES
                && out.mask.len() == n * mn,
            "the output buffers must hold {n} observations of {mn} nodes"
        );
        let rows = par_rows_of(out, mn);
        step_all(
            &mut self.envs,
            actions,
            self.mode,
            rows,
            &mut self.final_obs,
            &mut self.outcomes,
            &mut self.pending_reset,
        )
    }
}

/// The body of [`VecEnv::step`] over any rows to write.
fn step_all<'a>(
    envs: &mut [Env],
    actions: &[usize],
    mode: AutoresetMode,
    rows: impl IndexedParallelIterator<Item = ObsMut<'a>>,
    final_obs: &mut ObsBatch,
    outcomes: &mut [EnvOutcome],
    pending_reset: &mut [bool],
) -> Result<(), VecEnvError> {
    assert_eq!(actions.len(), envs.len(), "one action per env");
    // A step is a few hundred nanoseconds: hand rayon batches, not single envs.
    let min_len = (envs.len() / (4 * rayon::current_num_threads())).max(1);
    let errors: Option<VecEnvError> = (
        envs.par_iter_mut(),
        actions.par_iter(),
        rows,
        par_rows(final_obs),
        outcomes.par_iter_mut(),
        pending_reset.par_iter_mut(),
    )
        .into_par_iter()
        .with_min_len(min_len)
        .enumerate()
        .filter_map(|(e, (env, &action, out, last, outcome, pending))| {
            step_one(env, action, mode, out, last, outcome, pending)
                .err()
                .map(|source| VecEnvError { env: e, source })
        })
        .min_by_key(|err| err.env);
    match errors {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

/// One env's share of [`VecEnv::step`]: steps it, records the outcome, writes its observation
/// into `out` (and a truncated episode's last one into `last`), and resets it as `mode` says.
fn step_one(
    env: &mut Env,
    action: usize,
    mode: AutoresetMode,
    out: ObsMut<'_>,
    mut last: ObsMut<'_>,
    outcome: &mut EnvOutcome,
    pending: &mut bool,
) -> Result<(), EnvError> {
    outcome.clear();
    outcome.credit_episode = env.info().episode_seed;
    if *pending {
        if mode == AutoresetMode::NextStep {
            *pending = false;
            let (view, _) = env.reset(None);
            features::encode(view, out);
        }
        return Ok(());
    }
    let step = env.step(action)?;
    outcome.reward = step.reward as f32;
    outcome.job_seconds = step.info.job_seconds as f32;
    outcome.terminated = step.terminated;
    outcome.truncated = step.truncated;
    outcome.final_metrics = step.info.metrics;
    let (done, real) = (step.done(), step.info.nodes.min(last.mask.len()));
    env.take_credits(&mut outcome.credits);
    if done && mode == AutoresetMode::SameStep {
        if outcome.truncated {
            features::encode(env.obs(), last.reborrow());
            if !last.mask.iter().any(|&m| m) {
                last.mask[..real].fill(true);
            }
        }
        env.reset(None);
    } else if done {
        *pending = true;
    }
    features::encode(env.obs(), out);
    Ok(())
}
