//! The run configuration: every hyperparameter with its documented default, saved as
//! `config.json` in the run folder (a resumed run reads it back).

use serde::{Deserialize, Serialize};

/// PPO hyperparameters and run settings. Defaults follow CleanRL's PPO with the changes noted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Scenario TOML file.
    pub scenario: String,
    /// Environment steps (routing decisions) to train for. 3 M: a run from random weights
    /// needs its entropy to come down before the learning rate has annealed (2 M steps left
    /// seed 3's sampled policy at 24 s where its greedy one was at 6 s); 142-175 s on 2 cores.
    pub total_steps: u64,
    /// Parallel environments.
    pub envs: usize,
    /// Decisions per environment per rollout. 512, not CleanRL's 128: advantages near a
    /// rollout's end lean on the critic, and a quarter of the steps of a 128-step rollout are
    /// within 32 decisions of it. haca-small, 200 test episodes, paired vs sed: seed 2 -0.26 to
    /// -1.74 s, seed 5 +0.18 to -1.40 s (at 2 M steps; 128 steps was measured at 1 M).
    pub steps_per_rollout: usize,
    pub seed: u64,
    pub learning_rate: f64,
    /// Anneal the learning rate linearly to 0 over the run.
    pub anneal_lr: bool,
    /// Discount per decision. Close to 1: a routing decision's cost plays out over many
    /// later decisions (the queue it joins).
    pub gamma: f64,
    /// GAE's lambda. 0.99, not CleanRL's 0.95: a routing decision's cost lands when its job
    /// finishes, many decisions later; with 0.95 (a window of about 18 decisions) the advantage
    /// leans on a critic that cannot see which queue holds which job, and PPO drifted to
    /// `affinity`-like policies (haca-small seed 1: 6.2 s to 16.8 s evaluation latency over 1.5 M
    /// steps; with 0.99, 6.2 s to 5.9 s). The input-dependent baseline pays for the variance.
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
    /// Stop an update's epochs early once the approximate KL between the rollout's policy and
    /// the updated one exceeds this (CleanRL's `target_kl`). `null`: always run every epoch.
    /// Default 0.002, about 7x the median and 2x the 90th percentile of an update's KL in a
    /// haca-small run without it (2.9e-4 and 1.1e-3). Measured on haca-small (lr 5e-4, 6 M
    /// steps, 200 test episodes): seed 1 without it drifted from a `sed`-like policy to an
    /// `affinity`-like one (last policy 50.0 s), with it its last policy is at 12.1 s; seed 2
    /// did not drift either way (8.1 s without, 9.7 s with); with it the best policies of both
    /// seeds beat `sed` on latency and stranded idle, without it only seed 1's did.
    /// Runs saved before this field existed read it as `null`.
    #[serde(default)]
    pub target_kl: Option<f64>,
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
    /// Episodes of each periodic evaluation. 32, not fewer: heavy-tailed episodes make a small
    /// evaluation pick lucky policies (on haca-small, the same run picked with 8 episodes:
    /// 8.20 s mean latency over 200 test episodes; with 32: 5.83 s), and it costs little.
    pub eval_episodes: usize,
    /// At the end of a run, this many of the best evaluated candidates and the last weights
    /// are evaluated again on `select_episodes` fresh episodes, and the best of them becomes
    /// `best.safetensors`. 0: the periodic evaluation's best stays (runs saved before this
    /// field existed read it as 0).
    #[serde(default)]
    pub select_top: usize,
    #[serde(default)]
    pub select_episodes: usize,
    /// `cpu` (burn's flex backend) or `cuda` (needs the `cuda` feature).
    pub device: String,
    /// Warm start: clone this heuristic router (actor and critic) before PPO; `null` (the
    /// default): start from random weights. A clone of `sed` starts in `sed`'s basin and PPO
    /// moves it little (haca-small, seeds 1-5, 2 M steps: -1.55 s mean paired against `sed`
    /// over 1,000 episodes, 2 of 5 significant on the 200-episode test); from random weights,
    /// once the sampled policy has reached the greedy one's regime, the policies are better
    /// (README, "The late drift: its cause"). A path ending in `.safetensors` clones an
    /// exported policy instead (greedy), e.g. to carry a specialist into a wider distribution;
    /// `oracle:` and `by-clients:K:FEW:MANY` are described in `crate::teacher`.
    #[serde(default)]
    pub init_from: Option<String>,
    /// Teacher decisions collected per cloning round (over all envs).
    #[serde(default = "default_bc_steps")]
    pub bc_steps: u64,
    /// Cloning rounds: 1 is plain behaviour cloning; later rounds roll out the clone and label
    /// its states with the teacher's choices (DAgger).
    #[serde(default = "one")]
    pub bc_rounds: usize,
    /// Passes over the cloning data per round.
    #[serde(default = "default_bc_epochs")]
    pub bc_epochs: usize,
    #[serde(default = "default_bc_lr")]
    pub bc_learning_rate: f64,
    /// Input-dependent baseline: envs run in groups of this many that replay the same arrivals,
    /// and each env's advantage is taken against the others' in its group at the same decision
    /// (Mao et al. 2019). 1: off. Must divide `envs`.
    #[serde(default = "one")]
    pub input_groups: usize,
    /// How the jobs part of the reward is credited. `integral`: the scenario's reward as is,
    /// minus the job-seconds spent in the system between two decisions, shared by every job
    /// present. `per_job`: each decision is charged the seconds its own job then spends in the
    /// system (on its answer, or when a failure hands it back), on the step that routed it;
    /// an episode's total is the same, but the cost of a choice lands on the choice. `marginal`:
    /// `per_job` plus the waiting the job imposed on the jobs queued behind it while it held its
    /// slot, so a choice also pays what it cost the others (with `gamma = 0` each decision is a
    /// bandit arm charged its own marginal cost). `amortized`: `marginal` with each cold load
    /// shared by the jobs it serves (the decision that triggered it is charged the load time
    /// over the number of jobs that ran on the copy while it stayed in memory, not all of it).
    /// `displacement`: `per_job` plus the job's slot hold times the jobs that started from its
    /// node's queue after it, until the queue emptied (the delay it passed down the backlog).
    /// `copy_value`: `marginal` with each decision that loaded a model copy paid the seconds
    /// the copy saved the later jobs that ran on it (against the best other node, by expected
    /// delay on the truth), when the copy leaves memory.
    /// Jobs still in the system when a rollout ends are charged their time so far, and loads
    /// and backlogs what they come to so far.
    #[serde(default = "integral")]
    pub reward_credit: String,
    /// With `marginal`, `amortized` or `displacement`: the weight of the part that charges a
    /// decision for the waiting its job caused others (1: all of it; 0: `per_job`).
    #[serde(default = "one_f64")]
    pub credit_externality: f64,
    /// Training episodes end at their last arrival, truncated (bootstrapped from the critic),
    /// instead of running the scenario's drain (`drain = true`) until the last job is answered.
    /// Off: the drain, which lands as one reward on an episode's last decision, is where the
    /// imbalance left in the queues is paid, and the critic's estimate of it is worse than the
    /// real thing (haca-small, warm start from `sed`, 2 M steps, seeds 1-5, paired vs sed over
    /// 1,000 episodes: -0.95 s mean with the drain cut, -1.55 s without). Evaluation always runs the scenario as written.
    #[serde(default)]
    pub cut_drain: bool,
    /// The value loss trains only the value head: no gradient from it reaches the embedding
    /// and pooled context the policy shares with the critic.
    #[serde(default)]
    pub detach_critic: bool,
    /// Replaces the scenario's `reward.stranded_weight` in training and evaluation: the weight
    /// of a stranded slot-second against a job-second, the knob that trades latency for
    /// stranded capacity (one policy per weight makes a frontier family). Absent: as written.
    #[serde(default)]
    pub stranded_weight: Option<f64>,
    /// How the policy acts when the run judges it (periodic evaluations, the final selection,
    /// the verdict): `greedy`, the argmax a scheduler deploys, or `sample`, drawing from its
    /// softmax (seeded per episode and client), the behaviour PPO optimizes. With many clients
    /// routing on the same stale scrape the two differ: greedy clients that see the same state
    /// make the same choice and herd, sampling ones spread (haca-clients card).
    #[serde(default = "greedy")]
    pub eval_selection: String,
}

fn integral() -> String {
    "integral".into()
}

fn one_f64() -> f64 {
    1.0
}

fn greedy() -> String {
    "greedy".into()
}

fn one() -> usize {
    1
}
fn default_bc_steps() -> u64 {
    65_536
}
fn default_bc_epochs() -> usize {
    8
}
fn default_bc_lr() -> f64 {
    1e-3
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            scenario: "env/scenarios/haca-small.toml".into(),
            total_steps: 3_000_000,
            envs: 16,
            steps_per_rollout: 512,
            seed: 1,
            learning_rate: 1e-3,
            anneal_lr: true,
            gamma: 0.995,
            gae_lambda: 0.99,
            minibatches: 4,
            epochs: 4,
            clip_coef: 0.2,
            clip_vloss: true,
            ent_coef: 0.01,
            vf_coef: 0.5,
            max_grad_norm: 0.5,
            target_kl: Some(0.002),
            reward_scaling: true,
            hidden: 32,
            layers: 2,
            checkpoint_every: 20,
            eval_every: 20,
            eval_episodes: 32,
            select_top: 4,
            select_episodes: 128,
            device: "cpu".into(),
            init_from: None,
            bc_steps: default_bc_steps(),
            bc_rounds: 1,
            bc_epochs: default_bc_epochs(),
            bc_learning_rate: default_bc_lr(),
            input_groups: 4,
            reward_credit: "integral".into(),
            credit_externality: 1.0,
            detach_critic: false,
            stranded_weight: None,
            cut_drain: false,
            eval_selection: greedy(),
        }
    }
}

impl TrainConfig {
    /// The network this config trains (a checkpoint's model is rebuilt from it on resume).
    pub fn architecture(&self) -> haca_policy::Architecture {
        haca_policy::Architecture {
            hidden: self.hidden,
            layers: self.layers,
            value_layers: 1,
            activation: haca_policy::Activation::Relu,
        }
    }

    /// Whether decisions are charged per job (every credit but `integral`) rather than by the
    /// reward's integral.
    pub fn per_job_credit(&self) -> bool {
        self.credit_mode() != haca_env::CreditMode::Off
    }

    /// What the env records for each placed job (`Off` for `integral`).
    pub fn credit_mode(&self) -> haca_env::CreditMode {
        match self.reward_credit.as_str() {
            "per_job" => haca_env::CreditMode::Latency,
            "marginal" => haca_env::CreditMode::Marginal,
            "amortized" => haca_env::CreditMode::Amortized,
            "displacement" => haca_env::CreditMode::Displacement,
            "copy_value" => haca_env::CreditMode::CopyValue,
            _ => haca_env::CreditMode::Off,
        }
    }

    /// The evaluations' [`Selection`](haca_policy::Selection) (`eval_selection`).
    pub fn selection(&self) -> haca_policy::Selection {
        if self.eval_selection == "sample" {
            haca_policy::Selection::Sample { temperature: 1.0 }
        } else {
            haca_policy::Selection::Greedy
        }
    }

    pub fn batch_size(&self) -> usize {
        self.envs.saturating_mul(self.steps_per_rollout)
    }

    pub fn minibatch_size(&self) -> usize {
        (self.batch_size() / self.minibatches).max(1)
    }

    pub fn updates(&self) -> usize {
        (self.total_steps as usize)
            .div_ceil(self.batch_size())
            .max(1)
    }

    /// Sets one field from `key=value` text (the command line's `--set`): `value` is read as
    /// JSON where it parses (numbers, `true`/`false`), else as a string. An unknown key or a
    /// value of the wrong type is an error that names the key and lists the valid ones.
    pub fn set(&mut self, assignment: &str) -> Result<(), String> {
        let (key, value) = assignment.split_once('=').ok_or_else(|| {
            format!("--set `{assignment}`: expected key=value, e.g. ent_coef=0.001")
        })?;
        let (key, value) = (key.trim(), value.trim());
        let mut doc = serde_json::to_value(&*self).expect("the config serializes");
        let fields = doc.as_object_mut().expect("a JSON object");
        if !fields.contains_key(key) {
            let mut names: Vec<&String> = fields.keys().collect();
            names.sort();
            let names: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
            return Err(format!(
                "--set `{assignment}`: no setting `{key}`; the settings are {}",
                names.join(", ")
            ));
        }
        let parsed = serde_json::from_str(value)
            .unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
        fields.insert(key.to_string(), parsed);
        *self = serde_json::from_value(doc).map_err(|e| format!("--set `{assignment}`: {e}"))?;
        Ok(())
    }

    /// Rejects settings that cannot run, naming the field.
    /// Every field in range, and the warm-start teacher (`init_from`) usable.
    pub fn validate(&self) -> Result<(), String> {
        self.validate_ranges()?;
        match &self.init_from {
            Some(t) => crate::teacher::check_teacher(t),
            None => Ok(()),
        }
    }

    /// Every field in range (the teacher file is not opened).
    pub fn validate_ranges(&self) -> Result<(), String> {
        let checks: [(&str, bool); 26] = [
            (
                "eval_selection",
                matches!(self.eval_selection.as_str(), "greedy" | "sample"),
            ),
            (
                "reward_credit",
                matches!(
                    self.reward_credit.as_str(),
                    "integral"
                        | "per_job"
                        | "marginal"
                        | "amortized"
                        | "displacement"
                        | "copy_value"
                ),
            ),
            (
                "input_groups",
                self.input_groups >= 1 && self.envs % self.input_groups.max(1) == 0,
            ),
            ("bc_rounds", (1..=100).contains(&self.bc_rounds)),
            ("bc_epochs", (1..=1000).contains(&self.bc_epochs)),
            (
                "bc_learning_rate",
                self.bc_learning_rate > 0.0 && self.bc_learning_rate.is_finite(),
            ),
            ("envs", (1..=4096).contains(&self.envs)),
            (
                "steps_per_rollout",
                (1..=1 << 20).contains(&self.steps_per_rollout),
            ),
            ("batch_size", self.batch_size() <= 1 << 24),
            ("bc_steps", self.bc_steps <= 1 << 30),
            ("eval_episodes", self.eval_episodes <= 1_000_000),
            ("select_episodes", self.select_episodes <= 1_000_000),
            (
                "minibatches",
                self.minibatches >= 1 && self.minibatches <= self.batch_size(),
            ),
            ("epochs", (1..=1000).contains(&self.epochs)),
            (
                "learning_rate",
                self.learning_rate > 0.0 && self.learning_rate.is_finite(),
            ),
            ("gamma", (0.0..=1.0).contains(&self.gamma)),
            (
                "credit_externality",
                (0.0..=10.0).contains(&self.credit_externality),
            ),
            ("gae_lambda", (0.0..=1.0).contains(&self.gae_lambda)),
            ("hidden", (1..=4096).contains(&self.hidden)),
            ("layers", (1..=64).contains(&self.layers)),
            (
                "clip_coef",
                self.clip_coef > 0.0 && self.clip_coef.is_finite(),
            ),
            (
                "ent_coef",
                self.ent_coef >= 0.0 && self.ent_coef.is_finite(),
            ),
            ("vf_coef", self.vf_coef >= 0.0 && self.vf_coef.is_finite()),
            (
                "max_grad_norm",
                self.max_grad_norm > 0.0 && self.max_grad_norm.is_finite(),
            ),
            (
                "target_kl",
                self.target_kl.is_none_or(|t| t > 0.0 && t.is_finite()),
            ),
            (
                "stranded_weight",
                self.stranded_weight
                    .is_none_or(|w| w >= 0.0 && w.is_finite()),
            ),
        ];
        if let Some((name, _)) = checks.iter().find(|(_, ok)| !ok) {
            if *name == "input_groups" {
                return Err(format!(
                    "config field `input_groups` ({}) must divide `envs` ({}): set input_groups=1 to turn the input-dependent baseline off",
                    self.input_groups, self.envs
                ));
            }
            let choices = match *name {
                "eval_selection" => Some((&self.eval_selection, "greedy or sample")),
                "reward_credit" => Some((
                    &self.reward_credit,
                    "integral, per_job, marginal, amortized, displacement or copy_value",
                )),
                _ => None,
            };
            if let Some((value, expected)) = choices {
                return Err(format!(
                    "config field `{name}` is `{value}`: expected {expected}"
                ));
            }
            return Err(format!("config field `{name}` is out of range"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::TrainConfig;

    #[test]
    fn set_overrides_one_field_and_rejects_bad_keys_and_values() {
        let mut c = TrainConfig::default();
        c.set("ent_coef=0.001").unwrap();
        c.set("anneal_lr = false").unwrap();
        c.set("device=cuda").unwrap();
        c.set("hidden=64").unwrap();
        c.set("target_kl=0.02").unwrap();
        assert_eq!(c.target_kl, Some(0.02));
        c.set("target_kl=null").unwrap();
        assert_eq!(c.target_kl, None);
        assert_eq!((c.ent_coef, c.anneal_lr, c.hidden), (0.001, false, 64));
        assert_eq!(c.device, "cuda");
        let e = c.set("entropy=0.1").unwrap_err();
        assert!(
            e.contains("no setting `entropy`") && e.contains("ent_coef"),
            "{e}"
        );
        let e = c.set("hidden=wide").unwrap_err();
        assert!(e.starts_with("--set `hidden=wide`"), "{e}");
        assert!(c.set("hidden").unwrap_err().contains("expected key=value"));
        assert_eq!(c.hidden, 64, "a rejected value changes nothing");
        c.set("eval_selection=sample").unwrap();
        assert_eq!(
            c.selection(),
            haca_policy::Selection::Sample { temperature: 1.0 }
        );
        c.set("eval_selection=argmax").unwrap();
        assert_eq!(
            c.validate().unwrap_err(),
            "config field `eval_selection` is `argmax`: expected greedy or sample"
        );
        c.set("eval_selection=greedy").unwrap();
        c.set("ent_coef=-1").unwrap();
        assert_eq!(
            c.validate().unwrap_err(),
            "config field `ent_coef` is out of range"
        );
    }
}
