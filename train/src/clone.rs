//! A warm start from a heuristic router: behaviour cloning of its decisions, and a critic fitted
//! to the returns of the states it visits, before PPO takes over.
//!
//! Plain cloning trains on the teacher's own states; with `bc_rounds > 1` later rounds roll out
//! the clone (greedy) and label the states it visits with the teacher's choice (DAgger), so the
//! clone also learns what the teacher would do where its own mistakes lead.

use std::time::Instant;

use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Int, Tensor, TensorData};
use haca_env::{AutoresetMode, VecEnv};
use haca_policy::model::Scratch;
use haca_policy::{Rng, Router};

use crate::advantage::scale_rewards;
use crate::credit::Credits;
use crate::model::{log_probs, Batch};
use crate::rollout::shuffle;
use crate::seeds::Stream;
use crate::teacher::Teacher;
use crate::Trainer;

/// What the warm start did.
#[derive(Debug, Clone, PartialEq)]
pub struct CloneReport {
    pub teacher: String,
    pub samples: usize,
    pub rounds: usize,
    /// Greedy agreement with the teacher on the last round's states (ties between equally good
    /// nodes, which the teacher breaks at random, count as disagreements).
    pub accuracy: f64,
    /// Cross-entropy of the teacher's choices under the clone, last epoch.
    pub loss: f64,
    /// Explained variance of the critic on its targets, last epoch.
    pub value_ev: f64,
    pub seconds: f64,
}

/// States, the teacher's choice at each, and the discounted return that followed.
#[derive(Default)]
struct Dataset {
    nodes: Vec<f32>,
    job: Vec<f32>,
    global: Vec<f32>,
    mask: Vec<f32>,
    actions: Vec<i64>,
    returns: Vec<f32>,
    /// The return is trustworthy: enough of the episode followed inside the collection.
    has_return: Vec<bool>,
}

impl Dataset {
    fn len(&self) -> usize {
        self.actions.len()
    }
}

impl Trainer {
    /// Clones `teacher` into the network (actor and critic), and primes reward scaling with the
    /// returns of its rollouts. Run once, before the first PPO update.
    pub fn warm_start(&mut self, name: &str) -> Result<CloneReport, String> {
        let teacher = Teacher::parse(name)?;
        let started = Instant::now();
        let cfg = self.cfg.clone();
        let per_round = (cfg.bc_steps as usize).div_ceil(cfg.envs).max(1);
        let mut data = Dataset::default();
        let mut opt: ModuleOptimizer = AdamConfig::new().with_epsilon(1e-5).init();
        let mut report = CloneReport {
            teacher: name.to_string(),
            samples: 0,
            rounds: cfg.bc_rounds,
            accuracy: 0.0,
            loss: 0.0,
            value_ev: 0.0,
            seconds: 0.0,
        };
        for round in 0..cfg.bc_rounds {
            let clone_acts = round > 0;
            let round_data = self.collect(&teacher, round as u64, per_round, clone_acts)?;
            // DAgger aggregates every round's states.
            append(&mut data, round_data);
            let (loss, acc, ev) = self.fit(&data, &mut opt)?;
            report.loss = loss;
            report.accuracy = acc;
            report.value_ev = ev;
        }
        report.samples = data.len();
        self.refresh_policy()?;
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// Rolls out `steps` decisions per env, acting with the teacher (or the current network,
    /// greedily, when `clone_acts`), recording the teacher's choice at every state.
    fn collect(
        &mut self,
        teacher: &Teacher,
        round: u64,
        steps: usize,
        clone_acts: bool,
    ) -> Result<Dataset, String> {
        let cfg = &self.cfg;
        let envs = cfg.envs;
        let mut venv = VecEnv::new(
            crate::ppo::training_scenario(&self.cfg, &self.scenario),
            envs,
            AutoresetMode::SameStep,
        );
        let per_job = cfg.per_job_credit();
        venv.credit_mode(cfg.credit_mode());
        venv.externality_weight(cfg.credit_externality);
        let mut credits = Credits::new(envs, &self.scenario.reward);
        let base = Stream::Clone.member(cfg.seed, round);
        venv.reset(base);
        let mut teachers: Vec<Box<dyn Router>> = (0..envs)
            .map(|e| teacher.router(haca_policy::rng::derive_seed(base, 1_000 + e as u64)))
            .collect();
        let n = venv.max_nodes();
        let mut d = Dataset::default();
        let mut rewards = vec![0f32; steps * envs];
        let mut ended = Vec::with_capacity(steps * envs);
        let mut cut = Vec::with_capacity(steps * envs);
        let mut scratch = Scratch::default();
        let mut logits = vec![0f32; n];
        let mut actions = vec![0usize; envs];
        let mut truth = venv.view(0).clone();
        // DAgger's clone acts as the run judges it: greedily, or sampling from its softmax.
        let selection = cfg.selection();
        let mut rng = Rng::new(haca_policy::rng::derive_seed(base, 2_000));
        let mut probs = Vec::new();
        for t in 0..steps {
            for e in 0..envs {
                let info = venv.env(e).info();
                credits.note(e, info.episode_seed, info.decisions, t);
            }
            d.nodes.extend_from_slice(&venv.obs.nodes);
            d.job.extend_from_slice(&venv.obs.job);
            d.global.extend_from_slice(&venv.obs.global);
            d.mask.extend(venv.obs.mask.iter().map(|&m| m as u8 as f32));
            for e in 0..envs {
                let label = if teacher.oracle {
                    venv.env(e).oracle_view(&mut truth);
                    teachers[e].route(&truth)
                } else {
                    teachers[e].route(venv.view(e))
                };
                d.actions.push(label as i64);
                actions[e] = if clone_acts {
                    let obs = venv.obs.get(e);
                    self.policy.network.forward(obs, &mut scratch, &mut logits);
                    selection.pick(&mut logits, obs.mask, &mut probs, &mut rng)
                } else {
                    label
                };
            }
            venv.step(&actions).map_err(|e| e.to_string())?;
            for (e, teacher) in teachers.iter_mut().enumerate() {
                let o = &venv.outcomes[e];
                rewards[t * envs + e] = o.reward;
                let end = o.done();
                ended.push(end);
                cut.push(o.truncated);
                if end {
                    teacher.reset(haca_policy::rng::derive_seed(
                        venv.env(e).info().episode_seed,
                        1,
                    ));
                }
            }
            if per_job {
                credits.charge_step(&mut rewards, &venv, t);
            }
        }
        if per_job {
            credits.charge_open(&mut rewards, &venv, steps);
        }
        // The critic learns the scaled rewards PPO will see: prime the running statistics here.
        if self.cfg.reward_scaling {
            let mut returns = vec![0.0; envs];
            scale_rewards(
                &mut rewards,
                &ended,
                &mut returns,
                &mut self.state.return_stat,
                self.cfg.gamma,
            );
        }
        // Discounted returns, backwards; the last steps of each env lack their future (the
        // collection ends mid-episode), as do the steps before a truncation: they train no
        // value.
        let horizon = (3.0 / (1.0 - self.cfg.gamma).max(1e-3)) as usize;
        let usable = steps.saturating_sub(horizon.min(steps / 2));
        d.returns = vec![0.0; steps * envs];
        d.has_return = vec![false; steps * envs];
        let mut g = vec![0f32; envs];
        let mut since_cut = vec![usize::MAX; envs];
        for t in (0..steps).rev() {
            for (e, g_e) in g.iter_mut().enumerate() {
                let i = t * envs + e;
                if ended[i] {
                    *g_e = 0.0;
                }
                since_cut[e] = if cut[i] {
                    0
                } else {
                    since_cut[e].saturating_add(1)
                };
                *g_e = rewards[i] + self.cfg.gamma as f32 * *g_e;
                d.returns[i] = *g_e;
                d.has_return[i] = t < usable && since_cut[e] >= horizon;
            }
        }
        Ok(d)
    }

    /// Epochs of masked cross-entropy on the teacher's choices plus the critic's squared error.
    /// Returns the last epoch's (cross-entropy, greedy accuracy, explained variance).
    fn fit(
        &mut self,
        data: &Dataset,
        opt: &mut ModuleOptimizer,
    ) -> Result<(f64, f64, f64), String> {
        let n = self.scenario.max_nodes;
        let total = data.len();
        let mb = 512.min(total).max(1);
        let mut order: Vec<usize> = (0..total).collect();
        let device = self.device.clone();
        let (mut loss_sum, mut correct, mut seen) = (0.0, 0usize, 0usize);
        let (mut v_err, mut v_var) = (Vec::new(), Vec::new());
        for epoch in 0..self.cfg.bc_epochs {
            let last = epoch + 1 == self.cfg.bc_epochs;
            shuffle(&mut self.rng, &mut order);
            for chunk in order.chunks(mb) {
                let k = chunk.len();
                let obs = Batch::gather(
                    &data.nodes,
                    &data.job,
                    &data.global,
                    &data.mask,
                    chunk,
                    n,
                    &device,
                );
                let labels: Vec<i64> = chunk.iter().map(|&i| data.actions[i]).collect();
                let target: Vec<f32> = chunk.iter().map(|&i| data.returns[i]).collect();
                let weight: Vec<f32> = chunk
                    .iter()
                    .map(|&i| data.has_return[i] as u8 as f32)
                    .collect();
                let w_sum = weight.iter().sum::<f32>().max(1.0);
                let t1 = |v: Vec<f32>| Tensor::<1>::from_data(TensorData::new(v, [k]), &device);
                let act =
                    Tensor::<2, Int>::from_data(TensorData::new(labels.clone(), [k, 1]), &device);
                let (logits, value) = self.net.forward_with(&obs, self.cfg.detach_critic); // [k, N], [k]
                let logp = log_probs(logits.clone()).gather(1, act).reshape([k]); // [k]
                let ce = -logp.mean();
                let err = value.clone() - t1(target.clone()); // [k]
                let v_loss = (err.clone() * err * t1(weight.clone())).sum() / w_sum * 0.5;
                let loss = ce.clone() + v_loss * self.cfg.vf_coef;
                if last {
                    loss_sum += crate::ppo::scalar(ce.detach()) * k as f64;
                    let picks: Vec<i64> = logits
                        .argmax(1)
                        .into_data()
                        .convert::<i64>()
                        .try_to_vec::<i64>()
                        .map_err(|e| format!("{e:?}"))?;
                    correct += picks.iter().zip(&labels).filter(|(a, b)| a == b).count();
                    seen += k;
                    let v: Vec<f32> = value
                        .into_data()
                        .try_to_vec::<f32>()
                        .map_err(|e| format!("{e:?}"))?;
                    for ((v, t), w) in v.iter().zip(&target).zip(&weight) {
                        if *w > 0.0 {
                            v_err.push(t - v);
                            v_var.push(*t);
                        }
                    }
                }
                let grads = GradientsParams::from_grads(loss.backward(), &self.net);
                self.net = opt.step(self.cfg.bc_learning_rate, self.net.clone(), grads);
            }
        }
        let ev = 1.0 - crate::advantage::variance(&v_err) / crate::advantage::variance(&v_var);
        Ok((
            loss_sum / seen.max(1) as f64,
            correct as f64 / seen.max(1) as f64,
            ev,
        ))
    }
}

fn append(into: &mut Dataset, from: Dataset) {
    into.nodes.extend(from.nodes);
    into.job.extend(from.job);
    into.global.extend(from.global);
    into.mask.extend(from.mask);
    into.actions.extend(from.actions);
    into.returns.extend(from.returns);
    into.has_return.extend(from.has_return);
}
