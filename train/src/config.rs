//! The run configuration: every hyperparameter with its documented default, saved as
//! `config.json` in the run folder (a resumed run reads it back).

use serde::{Deserialize, Serialize};

/// PPO hyperparameters and run settings. Defaults follow CleanRL's PPO with the changes noted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Scenario TOML file.
    pub scenario: String,
    /// Environment steps (routing decisions) to train for.
    pub total_steps: u64,
    /// Parallel environments.
    pub envs: usize,
    /// Decisions per environment per rollout.
    pub steps_per_rollout: usize,
    pub seed: u64,
    pub learning_rate: f64,
    /// Anneal the learning rate linearly to 0 over the run.
    pub anneal_lr: bool,
    /// Discount per decision. Close to 1: a routing decision's cost plays out over many
    /// later decisions (the queue it joins).
    pub gamma: f64,
    pub gae_lambda: f64,
    pub minibatches: usize,
    pub epochs: usize,
    pub clip_coef: f64,
    /// Clip the value loss around the old values, as the PPO paper's implementation does.
    pub clip_vloss: bool,
    pub ent_coef: f64,
    pub vf_coef: f64,
    /// Global gradient-norm clip (over all parameters at once).
    pub max_grad_norm: f64,
    /// Divide rewards by the running standard deviation of the discounted return (CleanRL's
    /// `NormalizeReward`); routing rewards are job-seconds, whose scale varies by scenario.
    pub reward_scaling: bool,
    /// Network width and depth (stored in the exported file).
    pub hidden: usize,
    pub layers: usize,
    /// Save a checkpoint every this many updates (and at the end, and on Ctrl-C).
    pub checkpoint_every: usize,
    /// Evaluate the greedy policy every this many updates on a separate seed stream; the best
    /// one so far is exported to `best.safetensors`.
    pub eval_every: usize,
    pub eval_episodes: usize,
    /// `cpu` (burn's flex backend) or `cuda` (needs the `cuda` feature).
    pub device: String,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            scenario: "env/scenarios/haca-small.toml".into(),
            total_steps: 500_000,
            envs: 16,
            steps_per_rollout: 128,
            seed: 1,
            learning_rate: 3e-4,
            anneal_lr: true,
            gamma: 0.995,
            gae_lambda: 0.95,
            minibatches: 4,
            epochs: 4,
            clip_coef: 0.2,
            clip_vloss: true,
            ent_coef: 0.01,
            vf_coef: 0.5,
            max_grad_norm: 0.5,
            reward_scaling: true,
            hidden: 32,
            layers: 2,
            checkpoint_every: 20,
            eval_every: 20,
            eval_episodes: 8,
            device: "cpu".into(),
        }
    }
}

impl TrainConfig {
    pub fn batch_size(&self) -> usize {
        self.envs * self.steps_per_rollout
    }

    pub fn minibatch_size(&self) -> usize {
        (self.batch_size() / self.minibatches).max(1)
    }

    pub fn updates(&self) -> usize {
        (self.total_steps as usize)
            .div_ceil(self.batch_size())
            .max(1)
    }

    /// Rejects settings that cannot run, naming the field.
    pub fn validate(&self) -> Result<(), String> {
        let checks: [(&str, bool); 9] = [
            ("envs", self.envs >= 1),
            ("steps_per_rollout", self.steps_per_rollout >= 1),
            (
                "minibatches",
                self.minibatches >= 1 && self.minibatches <= self.batch_size(),
            ),
            ("epochs", self.epochs >= 1),
            (
                "learning_rate",
                self.learning_rate > 0.0 && self.learning_rate.is_finite(),
            ),
            ("gamma", (0.0..=1.0).contains(&self.gamma)),
            ("gae_lambda", (0.0..=1.0).contains(&self.gae_lambda)),
            ("hidden", (1..=4096).contains(&self.hidden)),
            ("layers", (1..=64).contains(&self.layers)),
        ];
        match checks.iter().find(|(_, ok)| !ok) {
            Some((name, _)) => Err(format!("config field `{name}` is out of range")),
            None => Ok(()),
        }
    }
}
