//! PPO, reading top to bottom as CleanRL's: rollout, advantages, loss, update, metrics.
//!
//! Rollouts run through `haca_policy`'s allocation-free forward pass with the current weights
//! (copied from burn after every update): acting on one observation at a time is what that
//! runtime is built for, and burn's batched autodiff forward is kept for the update.

use std::path::Path;
use std::sync::Arc;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use haca_env::{AutoresetMode, EpisodeMetrics, Scenario, VecEnv};
use haca_policy::features::{GLOBAL_FEATURES, JOB_FEATURES, NODE_FEATURES};
use haca_policy::model::{softmax, Scratch};
use haca_policy::rng::derive_seed;
use haca_policy::{Policy, PolicyInfo, Rng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::model::{log_probs, Batch, Net};

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
}

struct Actor {
    scratch: Scratch,
    rng: Rng,
    logits: Vec<f32>,
    probs: Vec<f32>,
}

/// The rollout storage, flat, step-major (`[T, E, ...]`).
#[derive(Default)]
struct Rollout {
    nodes: Vec<f32>,
    job: Vec<f32>,
    global: Vec<f32>,
    mask: Vec<f32>,
    actions: Vec<i64>,
    logprobs: Vec<f32>,
    values: Vec<f32>,
    rewards: Vec<f32>,
    dones: Vec<f32>,
}

/// A PPO run in memory.
pub struct Trainer {
    pub cfg: TrainConfig,
    pub scenario: Arc<Scenario>,
    pub device: Device,
    pub net: Net,
    pub optim: ModuleOptimizer,
    pub state: TrainState,
    venv: VecEnv,
    policy: Policy,
    actors: Vec<Actor>,
    buf: Rollout,
    rng: Rng,
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

fn scalar(t: Tensor<1>) -> f64 {
    let v: Vec<f32> = t.into_data().try_to_vec().expect("f32 scalar");
    v[0] as f64
}

impl Trainer {
    /// A fresh run.
    pub fn new(cfg: TrainConfig, scenario: Arc<Scenario>) -> Result<Trainer, String> {
        cfg.validate()?;
        let device = device(&cfg.device)?;
        let net = Net::new(cfg.architecture(), derive_seed(cfg.seed, 1), &device);
        let optim = AdamConfig::new().with_epsilon(1e-5).init();
        let state = TrainState {
            update: 0,
            global_step: 0,
            rng: Rng::new(derive_seed(cfg.seed, 2)).state(),
            actor_rngs: (0..cfg.envs)
                .map(|e| Rng::new(derive_seed(cfg.seed, 100 + e as u64)).state())
                .collect(),
            return_stat: RunningStat::default(),
            returns: vec![0.0; cfg.envs],
            episodes: 0,
            best_eval: None,
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
        let mut venv = VecEnv::new(scenario.clone(), cfg.envs, AutoresetMode::SameStep);
        // Envs restart at every checkpoint boundary (seeded by the update number), so a resumed
        // run continues exactly as an uninterrupted one; the cut episodes are bootstrapped like
        // any truncation.
        venv.reset(derive_seed(cfg.seed, 1_000_000 + state.update as u64));
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
            })
            .map_err(|e| e.to_string())
    }

    fn refresh_policy(&mut self) -> Result<(), String> {
        self.policy = self.export("{}".into())?;
        Ok(())
    }

    /// Runs the runtime forward pass on env `e`'s current observation into `actor.logits`;
    /// returns the value.
    fn score(policy: &Policy, venv: &VecEnv, e: usize, actor: &mut Actor) -> f32 {
        let n = venv.max_nodes();
        actor.logits.resize(n, 0.0);
        policy.network.forward(
            &venv.node_obs[e * n * NODE_FEATURES..(e + 1) * n * NODE_FEATURES],
            &venv.job_obs[e * JOB_FEATURES..(e + 1) * JOB_FEATURES],
            &venv.global_obs[e * GLOBAL_FEATURES..(e + 1) * GLOBAL_FEATURES],
            &venv.mask[e * n..(e + 1) * n],
            &mut actor.scratch,
            &mut actor.logits,
        )
    }

    /// Acts in env `e`'s current observation: (action, log-prob, value).
    fn act(policy: &Policy, venv: &VecEnv, e: usize, actor: &mut Actor) -> (usize, f32, f32) {
        let n = venv.max_nodes();
        let mask = &venv.mask[e * n..(e + 1) * n];
        let value = Trainer::score(policy, venv, e, actor);
        actor.probs.resize(n, 0.0);
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

    /// One PPO update: rollout, advantages, loss, update, metrics.
    pub fn update(&mut self) -> Result<UpdateStats, String> {
        let cfg = self.cfg.clone();
        let (t_steps, envs, n) = (cfg.steps_per_rollout, cfg.envs, self.venv.max_nodes());
        let batch = t_steps * envs;
        let frac = 1.0 - self.state.update as f64 / cfg.updates() as f64;
        let lr = if cfg.anneal_lr {
            cfg.learning_rate * frac.max(0.0)
        } else {
            cfg.learning_rate
        };
        let started = std::time::Instant::now();
        let mut stats = UpdateStats {
            learning_rate: lr,
            ..Default::default()
        };

        // ---- Rollout ------------------------------------------------------------------------
        let b = &mut self.buf;
        b.nodes.resize(batch * n * NODE_FEATURES, 0.0);
        b.job.resize(batch * JOB_FEATURES, 0.0);
        b.global.resize(batch * GLOBAL_FEATURES, 0.0);
        b.mask.resize(batch * n, 0.0);
        b.actions.resize(batch, 0);
        b.logprobs.resize(batch, 0.0);
        b.values.resize(batch, 0.0);
        b.rewards.resize(batch, 0.0);
        b.dones.resize(batch, 0.0);
        let mut acted = vec![(0usize, 0f32, 0f32); envs];
        let mut actions = vec![0usize; envs];
        for t in 0..t_steps {
            let row = t * envs;
            let venv = &self.venv;
            b.nodes[row * n * NODE_FEATURES..(row + envs) * n * NODE_FEATURES]
                .copy_from_slice(&venv.node_obs);
            b.job[row * JOB_FEATURES..(row + envs) * JOB_FEATURES].copy_from_slice(&venv.job_obs);
            b.global[row * GLOBAL_FEATURES..(row + envs) * GLOBAL_FEATURES]
                .copy_from_slice(&venv.global_obs);
            for (dst, &m) in b.mask[row * n..(row + envs) * n].iter_mut().zip(&venv.mask) {
                *dst = m as u8 as f32;
            }
            let policy = &self.policy;
            self.actors
                .par_iter_mut()
                .zip(acted.par_iter_mut())
                .enumerate()
                .for_each(|(e, (actor, out))| *out = Trainer::act(policy, venv, e, actor));
            for (e, &(a, lp, v)) in acted.iter().enumerate() {
                actions[e] = a;
                b.actions[row + e] = a as i64;
                b.logprobs[row + e] = lp;
                b.values[row + e] = v;
            }
            self.venv.step(&actions).map_err(|e| e.to_string())?;
            self.state.global_step += envs as u64;
            for e in 0..envs {
                let r = self.venv.rewards[e] as f64;
                let done = self.venv.terminated[e] || self.venv.truncated[e];
                self.state.returns[e] = self.state.returns[e] * cfg.gamma + r;
                b.rewards[row + e] = r as f32;
                b.dones[row + e] = if done { 1.0 } else { 0.0 };
                if let Some(m) = self.venv.final_metrics[e] {
                    stats.episodes.push(m);
                    self.state.episodes += 1;
                }
            }
            if cfg.reward_scaling {
                self.state.return_stat.update(&self.state.returns);
            }
            for e in 0..envs {
                if b.dones[row + e] == 1.0 {
                    self.state.returns[e] = 0.0;
                }
            }
        }
        if cfg.reward_scaling {
            let scale = 1.0 / (self.state.return_stat.var + 1e-8).sqrt();
            b.rewards
                .iter_mut()
                .for_each(|r| *r = (*r as f64 * scale) as f32);
        }
        // Bootstrap values of the observations after the rollout.
        let policy = &self.policy;
        let venv = &self.venv;
        let next_values: Vec<f32> = self
            .actors
            .iter_mut()
            .enumerate()
            .map(|(e, actor)| Trainer::score(policy, venv, e, actor))
            .collect();

        stats.rollout_s = started.elapsed().as_secs_f64();

        // ---- Advantages (GAE; `dones[t]` ends the episode after step t) ------------------------
        let mut adv = vec![0f32; batch];
        let mut last = vec![0f32; envs];
        for t in (0..t_steps).rev() {
            for e in 0..envs {
                let i = t * envs + e;
                let next_v = if t + 1 == t_steps {
                    next_values[e]
                } else {
                    b.values[i + envs]
                };
                let nonterminal = 1.0 - b.dones[i];
                let delta = b.rewards[i] + cfg.gamma as f32 * next_v * nonterminal - b.values[i];
                last[e] = delta + (cfg.gamma * cfg.gae_lambda) as f32 * nonterminal * last[e];
                adv[i] = last[e];
            }
        }
        let returns: Vec<f32> = adv.iter().zip(&b.values).map(|(a, v)| a + v).collect();

        // ---- Loss and update ----------------------------------------------------------------
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
            for i in (1..order.len()).rev() {
                let j = self.rng.below(i as u64 + 1) as usize;
                order.swap(i, j);
            }
            for chunk in order.chunks(mb) {
                let k = chunk.len();
                let gather = |src: &[f32], width: usize| -> Vec<f32> {
                    chunk
                        .iter()
                        .flat_map(|&i| src[i * width..(i + 1) * width].iter().copied())
                        .collect()
                };
                let obs = Batch::from_slices(
                    &gather(&b.nodes, n * NODE_FEATURES),
                    &gather(&b.job, JOB_FEATURES),
                    &gather(&b.global, GLOBAL_FEATURES),
                    &gather(&b.mask, n),
                    k,
                    n,
                    &device,
                );
                let mb_adv_raw: Vec<f32> = chunk.iter().map(|&i| adv[i]).collect();
                let mean = mb_adv_raw.iter().sum::<f32>() / k as f32;
                let std = (mb_adv_raw.iter().map(|a| (a - mean).powi(2)).sum::<f32>()
                    / (k.max(2) - 1) as f32)
                    .sqrt();
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

                let (logits, value) = self.net.forward(&obs); // [k, N], [k]
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
                if total > cfg.max_grad_norm {
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
        let var_y = variance(&returns);
        let resid: Vec<f32> = returns.iter().zip(&b.values).map(|(r, v)| r - v).collect();
        stats.explained_variance = if var_y == 0.0 {
            f64::NAN
        } else {
            1.0 - variance(&resid) / var_y
        };

        // ---- Metrics and bookkeeping ---------------------------------------------------------
        self.state.update += 1;
        self.state.rng = self.rng.state();
        self.state.actor_rngs = self.actors.iter().map(|a| a.rng.state()).collect();
        self.refresh_policy()?;
        if self.cfg.checkpoint_every > 0 && self.state.update % self.cfg.checkpoint_every == 0 {
            // The boundary where checkpoints are taken: restart envs (see `assemble`).
            self.venv.reset(derive_seed(
                self.cfg.seed,
                1_000_000 + self.state.update as u64,
            ));
            self.state.returns.iter_mut().for_each(|r| *r = 0.0);
        }
        let total_s = started.elapsed().as_secs_f64();
        stats.learn_s = total_s - stats.rollout_s;
        stats.steps_per_s = batch as f64 / total_s;
        Ok(stats)
    }

    /// Saves model, optimizer, state and config into `dir` (write then rename each file).
    pub fn save_checkpoint(&self, dir: &Path) -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let tmp = dir.join("checkpoint.tmp");
        std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
        self.net
            .clone()
            .save_file(tmp.join("model.bpk"))
            .map_err(|e| format!("saving the model: {e:?}"))?;
        self.optim
            .save(tmp.join("optimizer.bpk"))
            .map_err(|e| format!("saving the optimizer: {e:?}"))?;
        let state = serde_json::to_string_pretty(&self.state).map_err(|e| e.to_string())?;
        std::fs::write(tmp.join("state.json"), state).map_err(|e| e.to_string())?;
        let cfg = serde_json::to_string_pretty(&self.cfg).map_err(|e| e.to_string())?;
        std::fs::write(tmp.join("config.json"), cfg).map_err(|e| e.to_string())?;
        let final_dir = dir.join("checkpoint");
        let _ = std::fs::remove_dir_all(&final_dir);
        std::fs::rename(&tmp, &final_dir).map_err(|e| format!("{}: {e}", final_dir.display()))
    }

    /// Restores a run from `dir/checkpoint`.
    pub fn load_checkpoint(dir: &Path, scenario: Arc<Scenario>) -> Result<Trainer, String> {
        let ck = dir.join("checkpoint");
        let read = |name: &str| {
            std::fs::read_to_string(ck.join(name)).map_err(|e| {
                format!(
                    "{}: {e}: is this a haca-train run folder?",
                    ck.join(name).display()
                )
            })
        };
        let cfg: TrainConfig = serde_json::from_str(&read("config.json")?)
            .map_err(|e| format!("{}: {e}", ck.join("config.json").display()))?;
        let state: TrainState = serde_json::from_str(&read("state.json")?)
            .map_err(|e| format!("{}: {e}", ck.join("state.json").display()))?;
        let device = device(&cfg.device)?;
        let net = Net::new(cfg.architecture(), 0, &device).load_file(ck.join("model.bpk"));
        let optim = AdamConfig::new()
            .with_epsilon(1e-5)
            .init()
            .load(ck.join("optimizer.bpk"))
            .map_err(|e| format!("{}: {e:?}", ck.join("optimizer.bpk").display()))?;
        Trainer::assemble(cfg, scenario, device, net, optim, state)
    }
}

fn variance(xs: &[f32]) -> f64 {
    let n = xs.len() as f64;
    let mean = xs.iter().map(|&x| x as f64).sum::<f64>() / n;
    xs.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n
}
