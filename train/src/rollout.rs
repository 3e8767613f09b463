//! Rollouts: every env steps with an action sampled through `haca_policy`'s allocation-free
//! forward pass (the weights of the last update), into flat step-major storage that the update
//! reads back in minibatches.

use haca_policy::features::{GLOBAL_FEATURES, JOB_FEATURES, NODE_FEATURES};
use haca_policy::model::{softmax, Scratch};
use haca_policy::{Obs, Policy, Rng};
use rayon::prelude::*;

use crate::credit::Credits;
use crate::ppo::{Trainer, UpdateStats};

pub(crate) struct Actor {
    pub(crate) scratch: Scratch,
    pub(crate) rng: Rng,
    pub(crate) logits: Vec<f32>,
    pub(crate) probs: Vec<f32>,
}

/// The rollout storage, flat, step-major (`[T, E, ...]`).
#[derive(Default)]
pub(crate) struct Rollout {
    pub(crate) nodes: Vec<f32>,
    pub(crate) job: Vec<f32>,
    pub(crate) global: Vec<f32>,
    pub(crate) mask: Vec<f32>,
    pub(crate) actions: Vec<i64>,
    pub(crate) logprobs: Vec<f32>,
    pub(crate) values: Vec<f32>,
    pub(crate) rewards: Vec<f32>,
    pub(crate) terminated: Vec<bool>,
    pub(crate) truncated: Vec<bool>,
    /// `V(final observation)` of a truncated episode.
    pub(crate) final_values: Vec<f32>,
    /// (episode seed, decision) of each env at each step: which envs share an input.
    pub(crate) keys: Vec<(u64, u64)>,
}

impl Trainer {
    /// Runs the runtime forward pass on one observation into `actor.logits`; returns the value.
    pub(crate) fn score(policy: &Policy, obs: Obs<'_>, actor: &mut Actor) -> f32 {
        actor.logits.resize(obs.mask.len(), 0.0);
        policy
            .network
            .forward(obs, &mut actor.scratch, &mut actor.logits)
    }

    /// Samples an action for one observation: (action, log-prob, value).
    pub(crate) fn act(policy: &Policy, obs: Obs<'_>, actor: &mut Actor) -> (usize, f32, f32) {
        let value = Trainer::score(policy, obs, actor);
        let mask = obs.mask;
        actor.probs.resize(mask.len(), 0.0);
        softmax(&actor.logits, &mut actor.probs);
        let u = actor.rng.uniform() as f32;
        let mut acc = 0.0;
        let mut action = mask.iter().position(|&m| m).expect("a legal node");
        for (i, &p) in actor.probs.iter().enumerate() {
            if mask[i] && p > 0.0 {
                action = i;
                acc += p;
                if u < acc {
                    break;
                }
            }
        }
        let logp = (actor.probs[action].max(1e-30)).ln();
        (action, logp, value)
    }

    /// Collects `steps_per_rollout` decisions of every env into the rollout storage, acting
    /// through the runtime forward pass. Returns the values of the observations that follow.
    pub(crate) fn rollout(&mut self, stats: &mut UpdateStats) -> Result<Vec<f32>, String> {
        let (t_steps, envs, n) = (
            self.cfg.steps_per_rollout,
            self.cfg.envs,
            self.venv.max_nodes(),
        );
        let batch = t_steps * envs;
        let b = &mut self.buf;
        b.nodes.resize(batch * n * NODE_FEATURES, 0.0);
        b.job.resize(batch * JOB_FEATURES, 0.0);
        b.global.resize(batch * GLOBAL_FEATURES, 0.0);
        b.mask.resize(batch * n, 0.0);
        b.actions.resize(batch, 0);
        b.logprobs.resize(batch, 0.0);
        b.values.resize(batch, 0.0);
        b.rewards.resize(batch, 0.0);
        b.terminated.resize(batch, false);
        b.truncated.resize(batch, false);
        b.final_values.resize(batch, 0.0);
        b.keys.resize(batch, (0, 0));
        let mut acted = vec![(0usize, 0f32, 0f32); envs];
        let mut actions = vec![0usize; envs];
        let per_job = self.cfg.per_job_credit();
        let mut credits = Credits::new(envs, &self.scenario.reward);
        for t in 0..t_steps {
            let row = t * envs;
            let venv = &self.venv;
            let obs = &venv.obs;
            b.nodes[row * n * NODE_FEATURES..(row + envs) * n * NODE_FEATURES]
                .copy_from_slice(&obs.nodes);
            b.job[row * JOB_FEATURES..(row + envs) * JOB_FEATURES].copy_from_slice(&obs.job);
            b.global[row * GLOBAL_FEATURES..(row + envs) * GLOBAL_FEATURES]
                .copy_from_slice(&obs.global);
            for (dst, &m) in b.mask[row * n..(row + envs) * n].iter_mut().zip(&obs.mask) {
                *dst = m as u8 as f32;
            }
            for e in 0..envs {
                let info = venv.env(e).info();
                b.keys[row + e] = (info.episode_seed, info.decisions);
                credits.note(e, info.episode_seed, info.decisions, t);
            }
            let policy = &self.policy;
            self.actors
                .par_iter_mut()
                .zip(acted.par_iter_mut())
                .enumerate()
                .for_each(|(e, (actor, out))| *out = Trainer::act(policy, venv.obs.get(e), actor));
            for (e, &(a, lp, v)) in acted.iter().enumerate() {
                actions[e] = a;
                b.actions[row + e] = a as i64;
                b.logprobs[row + e] = lp;
                b.values[row + e] = v;
            }
            self.venv.step(&actions).map_err(|e| e.to_string())?;
            self.state.global_step += envs as u64;
            for (e, o) in self.venv.outcomes.iter().enumerate() {
                b.rewards[row + e] = o.reward;
                b.terminated[row + e] = o.terminated;
                b.truncated[row + e] = o.truncated;
                b.final_values[row + e] = if o.truncated {
                    Trainer::score(policy, self.venv.final_obs.get(e), &mut self.actors[e])
                } else {
                    0.0
                };
                if let Some(m) = o.final_metrics {
                    stats.episodes.push(m);
                    self.state.episodes += 1;
                }
            }
            if per_job {
                credits.charge_step(&mut b.rewards, &self.venv, t);
            }
        }
        if per_job {
            credits.charge_open(&mut b.rewards, &self.venv, t_steps);
        }
        let policy = &self.policy;
        let venv = &self.venv;
        Ok(self
            .actors
            .iter_mut()
            .enumerate()
            .map(|(e, actor)| Trainer::score(policy, venv.obs.get(e), actor))
            .collect())
    }
}

/// Fisher-Yates shuffle of minibatch order, from the trainer's generator.
pub(crate) fn shuffle(rng: &mut Rng, order: &mut [usize]) {
    for i in (1..order.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
}
