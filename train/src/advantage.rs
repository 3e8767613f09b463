//! Advantages from a rollout: reward scaling, GAE with truncation bootstrapped, and the
//! input-dependent baseline of groups of envs that replay the same arrivals.
//!
//! Rollout arrays are step-major, `[T, E]` flattened: index `t * envs + e`.

use serde::{Deserialize, Serialize};

/// Running mean and variance (parallel Welford), for reward scaling.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunningStat {
    pub count: f64,
    pub mean: f64,
    pub var: f64,
}

impl RunningStat {
    pub fn update(&mut self, xs: &[f64]) {
        if xs.is_empty() {
            return;
        }
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let total = self.count + n;
        let delta = mean - self.mean;
        self.mean += delta * n / total;
        self.var =
            (self.var * self.count + var * n + delta * delta * self.count * n / total) / total;
        self.count = total;
    }
}

/// CleanRL's `NormalizeReward`: rewards divided by the running standard deviation of the
/// discounted return. `returns[e]` is env `e`'s discounted return so far (carried across
/// rollouts); it restarts where an episode ended. Scales `rewards` in place.
pub fn scale_rewards(
    rewards: &mut [f32],
    ended: &[bool],
    returns: &mut [f64],
    stat: &mut RunningStat,
    gamma: f64,
) {
    let envs = returns.len();
    for (r_row, end_row) in rewards.chunks(envs).zip(ended.chunks(envs)) {
        for (ret, &r) in returns.iter_mut().zip(r_row) {
            *ret = *ret * gamma + r as f64;
        }
        stat.update(returns);
        for (ret, &end) in returns.iter_mut().zip(end_row) {
            if end {
                *ret = 0.0;
            }
        }
    }
    let scale = 1.0 / (stat.var + 1e-8).sqrt();
    rewards
        .iter_mut()
        .for_each(|r| *r = (*r as f64 * scale) as f32);
}

/// What GAE needs of a rollout of `T` steps of `E` envs.
pub struct GaeInput<'a> {
    pub rewards: &'a [f32],
    /// `V(s_t)` of the observation acted on at each step.
    pub values: &'a [f32],
    /// The episode ended by its own dynamics after this step: nothing follows.
    pub terminated: &'a [bool],
    /// The episode was cut after this step (time limit, `drain = false`): it would have gone
    /// on, so its tail is the value of the final observation.
    pub truncated: &'a [bool],
    /// `V(final observation)` where `truncated` (ignored elsewhere).
    pub final_values: &'a [f32],
    /// `V` of each env's observation after the rollout's last step, `[E]`.
    pub next_values: &'a [f32],
    pub gamma: f32,
    pub lambda: f32,
}

/// Generalized advantage estimation: `A_t = sum_k (gamma lambda)^k delta_{t+k}` within an
/// episode, with `delta_t = r_t + gamma V(s_{t+1}) - V(s_t)`, where `V(s_{t+1})` is 0 after a
/// termination, the final observation's value after a truncation, and the next rollout's first
/// value at the rollout's end. Returns `[T * E]` advantages.
pub fn gae(x: &GaeInput) -> Vec<f32> {
    let envs = x.next_values.len();
    let steps = x.rewards.len() / envs.max(1);
    let mut adv = vec![0f32; x.rewards.len()];
    let mut last = vec![0f32; envs];
    for t in (0..steps).rev() {
        for (e, last_e) in last.iter_mut().enumerate() {
            let i = t * envs + e;
            let (next_v, carry) = if x.terminated[i] {
                (0.0, 0.0)
            } else if x.truncated[i] {
                (x.final_values[i], 0.0)
            } else if t + 1 == steps {
                (x.next_values[e], 1.0)
            } else {
                (x.values[i + envs], 1.0)
            };
            let delta = x.rewards[i] + x.gamma * next_v - x.values[i];
            *last_e = delta + x.gamma * x.lambda * carry * *last_e;
            adv[i] = *last_e;
        }
    }
    adv
}

/// The input-dependent baseline (Mao et al., ICLR 2019) for envs that replay the same arrivals:
/// at each step, the envs whose `keys` agree (same episode seed, same decision of the episode)
/// saw the same job arrive into the same future workload, so the mean of the *others'*
/// advantages estimates how good that future is whatever the router does. Subtracting it
/// (leave-one-out, so an env's baseline never depends on its own action) removes the variance
/// the workload adds. Envs without a partner keep their advantage.
///
/// `groups` is the number of consecutive envs that share a workload stream.
pub fn subtract_input_baseline(adv: &mut [f32], keys: &[(u64, u64)], envs: usize, group: usize) {
    if group < 2 {
        return;
    }
    let mut members: Vec<usize> = Vec::with_capacity(group);
    for (row, key_row) in adv.chunks_mut(envs).zip(keys.chunks(envs)) {
        for g in (0..envs).step_by(group) {
            let end = (g + group).min(envs);
            // Envs of the group that agree with each other, by key (usually all of them).
            let mut done = vec![false; end - g];
            for a in g..end {
                if done[a - g] {
                    continue;
                }
                members.clear();
                for b in a..end {
                    if !done[b - g] && key_row[b] == key_row[a] {
                        members.push(b);
                        done[b - g] = true;
                    }
                }
                let k = members.len();
                if k < 2 {
                    continue;
                }
                let sum: f32 = members.iter().map(|&m| row[m]).sum();
                for &m in &members {
                    row[m] -= (sum - row[m]) / (k - 1) as f32;
                }
            }
        }
    }
}

/// The policy's advantages and the critic's targets from GAE advantages `adv` (consumed) and the
/// values they were taken against. The critic regresses on the lambda-returns `A_gae + V`,
/// taken *before* the input-dependent baseline: that baseline is the policy's variance
/// reduction, and subtracted from the targets it would make every group's mean target equal
/// its mean prediction, so that the critic's level could never follow the policy's value.
pub fn policy_and_critic_targets(
    mut adv: Vec<f32>,
    values: &[f32],
    keys: &[(u64, u64)],
    envs: usize,
    group: usize,
) -> (Vec<f32>, Vec<f32>) {
    let returns: Vec<f32> = adv.iter().zip(values).map(|(a, v)| a + v).collect();
    subtract_input_baseline(&mut adv, keys, envs, group);
    (adv, returns)
}

/// Population variance.
pub fn variance(xs: &[f32]) -> f64 {
    let n = xs.len() as f64;
    let mean = xs.iter().map(|&x| x as f64).sum::<f64>() / n;
    xs.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n
}

/// Mean and sample standard deviation.
pub fn mean_std(xs: &[f32]) -> (f32, f32) {
    let k = xs.len();
    let mean = xs.iter().sum::<f32>() / k.max(1) as f32;
    let var = xs.iter().map(|a| (a - mean).powi(2)).sum::<f32>() / (k.max(2) - 1) as f32;
    (mean, var.sqrt())
}

/// Largest distance from the mean in standard deviations (0 for a constant sample).
pub fn tail(xs: &[f32]) -> f64 {
    let n = xs.len().max(1) as f64;
    let mean = xs.iter().map(|&x| x as f64).sum::<f64>() / n;
    let sd = variance(xs).sqrt();
    let far = xs
        .iter()
        .map(|&x| (x as f64 - mean).abs())
        .fold(0.0, f64::max);
    if sd > 0.0 {
        far / sd
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
        }
    }

    /// One env, three steps, no episode end: the rollout's tail is bootstrapped.
    #[test]
    fn gae_bootstraps_the_rollout_end() {
        let (g, l) = (0.9f32, 0.5f32);
        let adv = gae(&GaeInput {
            rewards: &[1.0, 2.0, 3.0],
            values: &[0.5, 1.0, 1.5],
            terminated: &[false; 3],
            truncated: &[false; 3],
            final_values: &[0.0; 3],
            next_values: &[2.0],
            gamma: g,
            lambda: l,
        });
        let d2 = 3.0 + g * 2.0 - 1.5;
        let d1 = 2.0 + g * 1.5 - 1.0;
        let d0 = 1.0 + g * 1.0 - 0.5;
        let a2 = d2;
        let a1 = d1 + g * l * a2;
        let a0 = d0 + g * l * a1;
        close(&adv, &[a0, a1, a2]);
    }

    /// A termination after step 1: no value after it, and nothing flows back across it.
    #[test]
    fn gae_stops_at_a_termination() {
        let (g, l) = (0.9f32, 0.5f32);
        let adv = gae(&GaeInput {
            rewards: &[1.0, 2.0, 3.0],
            values: &[0.5, 1.0, 1.5],
            terminated: &[false, true, false],
            truncated: &[false; 3],
            final_values: &[0.0; 3],
            next_values: &[2.0],
            gamma: g,
            lambda: l,
        });
        let a2 = 3.0 + g * 2.0 - 1.5;
        let a1 = 2.0 - 1.0;
        let a0 = (1.0 + g * 1.0 - 0.5) + g * l * a1;
        close(&adv, &[a0, a1, a2]);
    }

    /// A truncation after step 1: bootstrapped with the final observation's value (7.0), not
    /// with the next episode's first value (1.5) and not with 0; nothing flows back across it.
    #[test]
    fn gae_bootstraps_a_truncation_with_the_final_observation() {
        let (g, l) = (0.9f32, 0.5f32);
        let adv = gae(&GaeInput {
            rewards: &[1.0, 2.0, 3.0],
            values: &[0.5, 1.0, 1.5],
            terminated: &[false; 3],
            truncated: &[false, true, false],
            final_values: &[0.0, 7.0, 0.0],
            next_values: &[2.0],
            gamma: g,
            lambda: l,
        });
        let a2 = 3.0 + g * 2.0 - 1.5;
        let a1 = 2.0 + g * 7.0 - 1.0;
        let a0 = (1.0 + g * 1.0 - 0.5) + g * l * a1;
        close(&adv, &[a0, a1, a2]);
    }

    /// Two envs interleaved step-major: each env's trace is its own.
    #[test]
    fn gae_keeps_envs_apart() {
        let adv = gae(&GaeInput {
            rewards: &[1.0, 10.0, 1.0, 10.0],
            values: &[0.0; 4],
            terminated: &[false, false, true, true],
            truncated: &[false; 4],
            final_values: &[0.0; 4],
            next_values: &[0.0, 0.0],
            gamma: 1.0,
            lambda: 1.0,
        });
        close(&adv, &[2.0, 20.0, 1.0, 10.0]);
    }

    #[test]
    fn input_baseline_is_leave_one_out_within_matching_keys() {
        // One step, 4 envs in one group; env 3 is in another episode (different key).
        let mut adv = vec![1.0, 2.0, 6.0, 100.0];
        let keys = vec![(5, 10), (5, 10), (5, 10), (6, 10)];
        subtract_input_baseline(&mut adv, &keys, 4, 4);
        close(&adv, &[1.0 - 4.0, 2.0 - 3.5, 6.0 - 1.5, 100.0]);
        // Groups of 2 never mix envs of different groups.
        let mut adv = vec![1.0, 3.0, 10.0, 30.0];
        let keys = vec![(1, 0); 4];
        subtract_input_baseline(&mut adv, &keys, 4, 2);
        close(&adv, &[-2.0, 2.0, -20.0, 20.0]);
    }

    #[test]
    fn the_critic_learns_the_returns_the_policy_the_baselined_advantages() {
        // Both envs of the group under-predicted by 3 (a heavy job arrived): their critic must
        // learn it, while the policy sees only how they differ.
        let values = [1.0, 2.0];
        let keys = [(9, 4), (9, 4)];
        let (adv, returns) = policy_and_critic_targets(vec![3.0, 5.0], &values, &keys, 2, 2);
        close(&returns, &[4.0, 7.0]);
        close(&adv, &[-2.0, 2.0]);
    }

    #[test]
    fn reward_scaling_divides_by_the_return_std_and_restarts_returns_at_episode_ends() {
        let mut rewards = vec![1.0f32, 1.0, 1.0, 1.0];
        let mut returns = vec![0.0, 0.0];
        let mut stat = RunningStat::default();
        scale_rewards(
            &mut rewards,
            &[false, true, false, false],
            &mut returns,
            &mut stat,
            1.0,
        );
        // Returns seen: [1, 1] then [2, 1] (env 1 restarted): variance of {1, 1, 2, 1}.
        let var = 0.1875f64;
        assert!((stat.var - var).abs() < 1e-12, "{}", stat.var);
        assert_eq!(returns, vec![2.0, 1.0]);
        let want = (1.0 / (var + 1e-8).sqrt()) as f32;
        close(&rewards, &[want; 4]);
    }
}
