//! Per-job credit (`reward_credit = "per_job"`): each routing decision is charged the seconds
//! its own job spends in the system, on the step that routed it; `marginal` adds the waiting the
//! job imposed on the jobs queued behind it (the env computes both, see `haca_env::CreditMode`).
//!
//! The scenario's reward charges every step with the job-seconds that pass until the next
//! decision, shared by all jobs present; a choice's own cost (its job finishing late on a slow
//! node) is then a small part of many later rewards, and an advantage estimate that looks a few
//! dozen decisions ahead, through a critic that cannot tell which queue holds which job, misses
//! it. An episode's credits sum to the same jobs integral (every job's latency), so the
//! undiscounted objective is unchanged; the cost of a choice lands on the choice. What a choice
//! does to other jobs still reaches it through their credits, discounted.
//!
//! That last part is noise where many decisions interleave: the jobs queued behind a choice's
//! job are charged to other decisions, among the credits of every other client's choices.
//! `marginal` charges that waiting to the choice that caused it (every queued second is then
//! counted twice over an episode, once for the job that waited and once for the job it waited
//! behind), so with `gamma = 0` a decision's reward is its own marginal cost to the network.
//!
//! Rollout arrays are step-major, `[T, E]` flattened.

use haca_env::{RewardWeights, VecEnv};

/// Where each env's decisions sit in the rollout: per env, runs of (episode seed, first
/// decision, first step).
pub struct Credits {
    runs: Vec<Vec<(u64, u64, usize)>>,
    /// Weight of a job-second in the reward: `jobs_weight / norm_s`.
    per_second: f32,
    open: Vec<(u64, f64)>,
}

impl Credits {
    pub fn new(envs: usize, weights: &RewardWeights) -> Credits {
        Credits {
            runs: vec![Vec::new(); envs],
            per_second: (weights.jobs / weights.norm_s) as f32,
            open: Vec::new(),
        }
    }

    /// Env `e` is at decision `d` of episode `seed` at step `t` (call before it acts).
    pub fn note(&mut self, e: usize, seed: u64, d: u64, t: usize) {
        let runs = &mut self.runs[e];
        match runs.last() {
            Some(&(s, d0, t0)) if s == seed && d0 + (t - t0) as u64 == d => {}
            _ => runs.push((seed, d, t)),
        }
    }

    /// The step (at most `now`) at which env `e` made decision `d` of episode `seed`, if it is
    /// in this rollout.
    pub fn row(&self, e: usize, seed: u64, d: u64, now: usize) -> Option<usize> {
        self.runs[e].iter().rev().find_map(|&(s, d0, t0)| {
            let t = t0 as u64 + d.checked_sub(d0)?;
            (s == seed && t <= now as u64).then_some(t as usize)
        })
    }

    /// After the env step of rollout step `t`: takes the jobs integral out of that step's
    /// rewards (which hold the VecEnv's rewards) and charges the credits the step recorded to
    /// the steps that routed their jobs. Credits of decisions before this rollout are dropped:
    /// those jobs were charged their time so far when that rollout ended.
    pub fn charge_step(&self, rewards: &mut [f32], venv: &VecEnv, t: usize) {
        let envs = self.runs.len();
        for e in 0..envs {
            let o = &venv.outcomes[e];
            rewards[t * envs + e] += self.per_second * o.job_seconds;
            let seed = o.credit_episode;
            for &(d, secs) in &o.credits {
                if let Some(t0) = self.row(e, seed, d, t) {
                    rewards[t0 * envs + e] -= self.per_second * secs as f32;
                }
            }
        }
    }

    /// At the rollout's end (`steps` steps): jobs still in the system are charged their time
    /// so far (the rest of their time is not charged: the update cannot wait for it).
    pub fn charge_open(&mut self, rewards: &mut [f32], venv: &VecEnv, steps: usize) {
        let envs = self.runs.len();
        for e in 0..envs {
            self.open.clear();
            let env = venv.env(e);
            env.outstanding_credits(&mut self.open);
            let seed = env.info().episode_seed;
            for &(d, secs) in &self.open {
                if let Some(t0) = self.row(e, seed, d, steps - 1) {
                    rewards[t0 * envs + e] -= self.per_second * secs as f32;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credits(envs: usize) -> Credits {
        Credits::new(
            envs,
            &RewardWeights {
                jobs: 1.0,
                stranded: 0.0,
                norm_s: 1.0,
            },
        )
    }

    #[test]
    fn rows_follow_each_envs_decisions_across_an_episode_change() {
        let mut c = credits(1);
        // Decisions 40, 41 of episode 7, then a reset: decisions 0, 1 of episode 9.
        c.note(0, 7, 40, 0);
        c.note(0, 7, 41, 1);
        c.note(0, 9, 0, 2);
        c.note(0, 9, 1, 3);
        assert_eq!(c.row(0, 7, 41, 3), Some(1));
        assert_eq!(c.row(0, 9, 1, 3), Some(3));
        assert_eq!(c.row(0, 9, 1, 2), None, "not yet made at step 2");
        assert_eq!(c.row(0, 7, 39, 3), None, "made in an earlier rollout");
        assert_eq!(c.row(0, 8, 0, 3), None, "another episode");
    }
}
