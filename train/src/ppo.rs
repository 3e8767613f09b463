//! PPO, reading top to bottom as CleanRL's: rollout, advantages, loss, update, metrics.
//! Advantages (GAE, reward scaling, the input-dependent baseline) are in [`crate::advantage`].
//!
//! Rollouts run through `haca_policy`'s allocation-free forward pass with the current weights
//! (copied from burn after every update): acting on one observation at a time is what that
//! runtime is built for, and burn's batched autodiff forward is kept for the update.

use std::sync::Arc;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use haca_env::{AutoresetMode, EnvSnapshot, EpisodeMetrics, Scenario, VecEnv};
use haca_policy::model::Scratch;
use haca_policy::{Policy, PolicyInfo, Rng};
use serde::{Deserialize, Serialize};

use crate::advantage::{
    gae, mean_std, policy_and_critic_targets, scale_rewards, tail, variance, GaeInput,
};
use crate::config::TrainConfig;
use crate::model::{log_probs, Batch, Net};
use crate::rollout::{shuffle, Actor, Rollout};
use crate::seeds::Stream;

pub use crate::advantage::RunningStat;

/// Everything besides the weights and the optimizer that a checkpoint must restore.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    pub update: usize,
    pub global_step: u64,
    /// The trainer's generator (minibatch shuffles), as its raw state.
    pub rng: [u64; 4],
    /// Per-env action-sampling generators.
    pub actor_rngs: Vec<[u64; 4]>,
    pub return_stat: RunningStat,
    /// Per-env discounted return, for reward scaling.
    pub returns: Vec<f64>,
    pub episodes: u64,
    /// Best greedy evaluation so far (mean latency, seconds).
    pub best_eval: Option<f64>,
    /// The envs' states (seed streams, episode seeds, actions so far): a resumed run rebuilds
    /// them by replay and continues exactly where the saved one was. Empty in checkpoints of
    /// older versions, whose envs restart.
    #[serde(default)]
    pub envs: Vec<EnvSnapshot>,
    #[serde(default)]
    pub pending: Vec<bool>,
    /// Seconds spent training so far (warm start, updates and evaluations; all sessions).
    #[serde(default)]
    pub train_seconds: f64,
}

/// What one update measured (CleanRL's names in the TensorBoard log).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpdateStats {
    pub policy_loss: f64,
    pub value_loss: f64,
    pub entropy: f64,
    pub approx_kl: f64,
    pub clipfrac: f64,
    pub explained_variance: f64,
    pub learning_rate: f64,
    /// Episodes that ended during the rollout.
    pub episodes: Vec<EpisodeMetrics>,
    pub steps_per_s: f64,
    /// Seconds of this update spent collecting the rollout (envs and the runtime forward pass)
    /// and in the burn update (advantages, losses, backward, Adam).
    pub rollout_s: f64,
    pub learn_s: f64,
    /// Epochs the update ran (fewer than configured when `target_kl` stopped it).
    pub epochs_run: usize,
    /// Approximate KL and the largest `|ratio - 1|` of the update's first minibatch, before any
    /// step: 0 up to float error when the update scores the policy that acted.
    pub first_kl: f64,
    pub first_ratio_dev: f64,
    /// Variance of the (scaled) advantages before normalization, and of the value targets.
    pub advantage_var: f64,
    pub return_var: f64,
    /// Largest `|advantage - mean|` over the rollout in standard deviations: how heavy the
    /// tail is that per-minibatch normalization and the gradient clip see.
    pub advantage_tail: f64,
    /// Mean global gradient norm of the update's minibatches before the clip, and the fraction
    /// of them the clip scaled down.
    pub grad_norm: f64,
    pub grad_clipped: f64,
    pub value_mean: f64,
}

/// A PPO run in memory.
pub struct Trainer {
    pub cfg: TrainConfig,
    pub scenario: Arc<Scenario>,
    pub device: Device,
    pub net: Net,
    pub optim: ModuleOptimizer,
    pub state: TrainState,
    pub(crate) venv: VecEnv,
    pub(crate) policy: Policy,
    pub(crate) actors: Vec<Actor>,
    pub(crate) buf: Rollout,
    pub(crate) rng: Rng,
}

/// Picks the burn device for `cfg.device`, with autodiff.
pub fn device(name: &str) -> Result<Device, String> {
    match name {
        "cpu" => Ok(Device::flex().autodiff()),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Device::cuda(0).autodiff()),
        #[cfg(not(feature = "cuda"))]
        "cuda" => Err("--device cuda needs haca-train built with `--features cuda`".into()),
        other => Err(format!("unknown device `{other}`: expected cpu or cuda")),
    }
}

/// The scenario the training envs run: the run's own, with the drain cut when `cut_drain` asks
/// for it (evaluation always uses the scenario as written).
pub(crate) fn training_scenario(cfg: &TrainConfig, scenario: &Arc<Scenario>) -> Arc<Scenario> {
    if cfg.cut_drain && scenario.drain {
        let mut cut = (**scenario).clone();
        cut.drain = false;
        Arc::new(cut)
    } else {
        scenario.clone()
    }
}

/// Sum of squares over every parameter's gradient.
struct GradNorm<'a> {
    grads: &'a GradientsParams,
    sum: f64,
}

impl ModuleVisitor for GradNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let s: Vec<f32> = (g.clone() * g)
                .sum()
                .into_data()
                .try_to_vec()
                .expect("f32 grads");
            self.sum += s[0] as f64;
        }
    }
}

/// Multiplies every parameter's gradient by `scale`.
struct GradScale<'a> {
    grads: &'a mut GradientsParams,
    scale: f32,
}

impl ModuleVisitor for GradScale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            self.grads.register(param.id, g * self.scale);
        }
    }
}

pub(crate) fn scalar(t: Tensor<1>) -> f64 {
    let v: Vec<f32> = t.into_data().try_to_vec().expect("f32 scalar");
    v[0] as f64
}

impl Trainer {
    /// A fresh run.
    pub fn new(cfg: TrainConfig, scenario: Arc<Scenario>) -> Result<Trainer, String> {
        cfg.validate()?;
        let device = device(&cfg.device)?;
        let net = Net::new(cfg.architecture(), Stream::Init.seed(cfg.seed), &device);
        let optim = AdamConfig::new().with_epsilon(1e-5).init();
        let state = TrainState {
            update: 0,
            global_step: 0,
            rng: Rng::new(Stream::Minibatch.seed(cfg.seed)).state(),
            actor_rngs: (0..cfg.envs)
                .map(|e| Rng::new(Stream::Actors.member(cfg.seed, e as u64)).state())
                .collect(),
            return_stat: RunningStat::default(),
            returns: vec![0.0; cfg.envs],
            episodes: 0,
            best_eval: None,
            envs: Vec::new(),
            pending: Vec::new(),
            train_seconds: 0.0,
        };
        Trainer::assemble(cfg, scenario, device, net, optim, state)
    }

    /// Rebuilds a trainer from its parts (a fresh run or a checkpoint).
    pub fn assemble(
        cfg: TrainConfig,
        scenario: Arc<Scenario>,
        device: Device,
        net: Net,
        optim: ModuleOptimizer,
        state: TrainState,
    ) -> Result<Trainer, String> {
        let mut venv = VecEnv::new(
            training_scenario(&cfg, &scenario),
            cfg.envs,
            AutoresetMode::SameStep,
        );
        venv.credit_mode(cfg.credit_mode());
        venv.externality_weight(cfg.credit_externality);
        if state.envs.is_empty() {
            // A fresh run (or a checkpoint from before env snapshots: its envs restart).
            venv.reset_groups(Stream::Envs.seed(cfg.seed), cfg.input_groups);
        } else {
            venv.restore(&state.envs, &state.pending)
                .map_err(|e| format!("the checkpoint's envs: {e}"))?;
        }
        let policy = net
            .to_policy(PolicyInfo::default())
            .map_err(|e| e.to_string())?;
        let actors = state
            .actor_rngs
            .iter()
            .map(|s| Actor {
                scratch: Scratch::default(),
                rng: Rng::from_state(*s),
                logits: Vec::new(),
                probs: Vec::new(),
            })
            .collect();
        let rng = Rng::from_state(state.rng);
        let mut t = Trainer {
            cfg,
            scenario,
            device,
            net,
            optim,
            state,
            venv,
            policy,
            actors,
            buf: Rollout::default(),
            rng,
        };
        t.refresh_policy()?;
        Ok(t)
    }

    /// The current weights as an exported policy, describing itself.
    pub fn export(&self, evaluation: String) -> Result<Policy, String> {
        self.net
            .to_policy(PolicyInfo {
                arch: self.net.arch(),
                scales: self.scenario.scales,
                scenario: self.scenario.name.clone(),
                training_steps: self.state.global_step,
                evaluation,
                ..PolicyInfo::default()
            })
            .map_err(|e| e.to_string())
    }

    pub(crate) fn refresh_policy(&mut self) -> Result<(), String> {
        self.policy = self.export("{}".into())?;
        Ok(())
    }

    pub fn update(&mut self) -> Result<UpdateStats, String> {
        let frac = 1.0 - self.state.update as f64 / self.cfg.updates() as f64;
        let lr = if self.cfg.anneal_lr {
            self.cfg.learning_rate * frac.max(0.0)
        } else {
            self.cfg.learning_rate
        };
        let started = std::time::Instant::now();
        let mut stats = UpdateStats {
            learning_rate: lr,
            ..Default::default()
        };
        let next_values = self.rollout(&mut stats)?;
        stats.rollout_s = started.elapsed().as_secs_f64();
        let (adv, returns) = self.advantages(&next_values);
        self.learn(&adv, &returns, lr, &mut stats)?;

        // ---- Metrics and bookkeeping ---------------------------------------------------------
        stats.advantage_var = variance(&adv);
        stats.advantage_tail = tail(&adv);
        stats.return_var = variance(&returns);
        stats.value_mean = self.buf.values.iter().map(|&v| v as f64).sum::<f64>()
            / self.buf.values.len().max(1) as f64;
        let resid: Vec<f32> = returns
            .iter()
            .zip(&self.buf.values)
            .map(|(r, v)| r - v)
            .collect();
        stats.explained_variance = if stats.return_var == 0.0 {
            f64::NAN
        } else {
            1.0 - variance(&resid) / stats.return_var
        };
        self.state.update += 1;
        self.state.rng = self.rng.state();
        self.state.actor_rngs = self.actors.iter().map(|a| a.rng.state()).collect();
        self.refresh_policy()?;
        let total_s = started.elapsed().as_secs_f64();
        stats.learn_s = total_s - stats.rollout_s;
        stats.steps_per_s = self.cfg.batch_size() as f64 / total_s;
        Ok(stats)
    }

    /// Scaled rewards, GAE, and the input-dependent baseline when envs run in groups.
    /// The policy's advantages and the critic's targets (see [`policy_and_critic_targets`]).
    fn advantages(&mut self, next_values: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let b = &mut self.buf;
        if self.cfg.reward_scaling {
            let ended: Vec<bool> = b
                .terminated
                .iter()
                .zip(&b.truncated)
                .map(|(a, c)| *a || *c)
                .collect();
            scale_rewards(
                &mut b.rewards,
                &ended,
                &mut self.state.returns,
                &mut self.state.return_stat,
                self.cfg.gamma,
            );
        }
        let adv = gae(&GaeInput {
            rewards: &b.rewards,
            values: &b.values,
            terminated: &b.terminated,
            truncated: &b.truncated,
            final_values: &b.final_values,
            next_values,
            gamma: self.cfg.gamma as f32,
            lambda: self.cfg.gae_lambda as f32,
        });
        policy_and_critic_targets(
            adv,
            &b.values,
            &b.keys,
            self.cfg.envs,
            self.cfg.input_groups,
        )
    }

    /// Epochs of clipped-surrogate minibatch steps on the rollout.
    fn learn(
        &mut self,
        adv: &[f32],
        returns: &[f32],
        lr: f64,
        stats: &mut UpdateStats,
    ) -> Result<(), String> {
        let cfg = self.cfg.clone();
        let n = self.venv.max_nodes();
        let b = &self.buf;
        let batch = cfg.batch_size();
        let mb = cfg.minibatch_size();
        let mut order: Vec<usize> = (0..batch).collect();
        let (mut n_mb, mut clipfracs) = (0usize, 0f64);
        let device = self.device.clone();
        let mut epoch_kl = 0.0;
        for _epoch in 0..cfg.epochs {
            // CleanRL's early stop: the last minibatch's KL estimate ended an epoch above the
            // target, so the policy has moved far enough for this rollout.
            if cfg.target_kl.is_some_and(|t| epoch_kl > t) {
                break;
            }
            stats.epochs_run += 1;
            shuffle(&mut self.rng, &mut order);
            for chunk in order.chunks(mb) {
                let k = chunk.len();
                let obs = Batch::gather(&b.nodes, &b.job, &b.global, &b.mask, chunk, n, &device);
                let mb_adv_raw: Vec<f32> = chunk.iter().map(|&i| adv[i]).collect();
                let (mean, std) = mean_std(&mb_adv_raw);
                let mb_adv: Vec<f32> = mb_adv_raw
                    .iter()
                    .map(|a| (a - mean) / (std + 1e-8))
                    .collect();
                let t1 = |v: Vec<f32>| Tensor::<1>::from_data(TensorData::new(v, [k]), &device);
                let adv_t = t1(mb_adv);
                let old_logp = t1(chunk.iter().map(|&i| b.logprobs[i]).collect());
                let old_v = t1(chunk.iter().map(|&i| b.values[i]).collect());
                let ret = t1(chunk.iter().map(|&i| returns[i]).collect());
                let actions = Tensor::<2, Int>::from_data(
                    TensorData::new(
                        chunk.iter().map(|&i| b.actions[i]).collect::<Vec<i64>>(),
                        [k, 1],
                    ),
                    &device,
                );

                let (logits, value) = self.net.forward_with(&obs, cfg.detach_critic); // [k, N], [k]
                let logp_all = log_probs(logits); // [k, N]
                let new_logp = logp_all.clone().gather(1, actions).reshape([k]); // [k]
                let probs = logp_all.clone().exp();
                let entropy = -(probs * logp_all).sum_dim(1).reshape([k]); // [k]
                let log_ratio = new_logp - old_logp;
                let ratio = log_ratio.clone().exp();
                {
                    let r = ratio.clone().detach();
                    let lr_d = log_ratio.clone().detach();
                    let kl = scalar(((r.clone() - 1.0) - lr_d).mean());
                    if n_mb == 0 {
                        stats.first_kl = kl;
                        stats.first_ratio_dev = scalar((r.clone() - 1.0).abs().max());
                    }
                    stats.approx_kl += kl;
                    epoch_kl = kl;
                    clipfracs += scalar((r - 1.0).abs().greater_elem(cfg.clip_coef).float().mean());
                }
                let pg1 = -adv_t.clone() * ratio.clone();
                let pg2 = -adv_t * ratio.clamp(1.0 - cfg.clip_coef, 1.0 + cfg.clip_coef);
                let pg_loss = pg1.max_pair(pg2).mean();
                let v_loss = if cfg.clip_vloss {
                    let unclipped = (value.clone() - ret.clone()).powf_scalar(2.0);
                    let clipped_v =
                        old_v.clone() + (value - old_v).clamp(-cfg.clip_coef, cfg.clip_coef);
                    let clipped = (clipped_v - ret).powf_scalar(2.0);
                    unclipped.max_pair(clipped).mean() * 0.5
                } else {
                    (value - ret).powf_scalar(2.0).mean() * 0.5
                };
                let ent = entropy.mean();
                stats.policy_loss += scalar(pg_loss.clone().detach());
                stats.value_loss += scalar(v_loss.clone().detach());
                stats.entropy += scalar(ent.clone().detach());
                let loss = pg_loss - ent * cfg.ent_coef + v_loss * cfg.vf_coef;

                let mut grads = GradientsParams::from_grads(loss.backward(), &self.net);
                let mut norm = GradNorm {
                    grads: &grads,
                    sum: 0.0,
                };
                self.net.visit(&mut norm);
                let total = norm.sum.sqrt();
                stats.grad_norm += total;
                if total > cfg.max_grad_norm {
                    stats.grad_clipped += 1.0;
                    let mut scale = GradScale {
                        grads: &mut grads,
                        scale: (cfg.max_grad_norm / (total + 1e-6)) as f32,
                    };
                    self.net.visit(&mut scale);
                }
                // Parameters are shared handles: cloning the module is cheap.
                self.net = self.optim.step(lr, self.net.clone(), grads);
                n_mb += 1;
            }
        }
        let m = n_mb.max(1) as f64;
        stats.policy_loss /= m;
        stats.value_loss /= m;
        stats.entropy /= m;
        stats.approx_kl /= m;
        stats.clipfrac = clipfracs / m;
        stats.grad_norm /= m;
        stats.grad_clipped /= m;
        Ok(())
    }
}

#[cfg(test)]
#[path = "ppo_tests.rs"]
mod tests;
