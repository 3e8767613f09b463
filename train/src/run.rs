//! The training run loop behind `haca-train`: progress, TensorBoard, evaluation, checkpoints,
//! Ctrl-C, and export of the best policy.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use haca_env::Scenario;
use haca_eval::{compare, Comparison, Contender};
use indicatif::{ProgressBar, ProgressStyle};
use tensorboard_rs::summary_writer::SummaryWriter;

use crate::{TrainConfig, Trainer};

/// Set by the Ctrl-C handler; the loop saves a checkpoint and stops at the next update.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Where a run's files live.
pub struct RunDir(pub PathBuf);

impl RunDir {
    pub fn best(&self) -> PathBuf {
        self.0.join("best.safetensors")
    }
    pub fn last(&self) -> PathBuf {
        self.0.join("last.safetensors")
    }
}

/// Evaluates `policy` greedily against the given routers on `episodes` episodes of a seed
/// stream separate from training's.
pub fn evaluate(
    scenario: &Arc<Scenario>,
    policy: haca_policy::Policy,
    name: &str,
    routers: &str,
    episodes: usize,
    seed: u64,
) -> Result<Comparison, String> {
    let mut contenders = Contender::parse_list(routers).map_err(|e| e.to_string())?;
    contenders.push(Contender::Policy {
        name: name.to_string(),
        path: PathBuf::from(name),
        policy: Arc::new(policy),
        selection: haca_policy::Selection::Greedy,
    });
    compare(
        scenario,
        &contenders,
        episodes,
        seed,
        0,
        &ProgressBar::hidden(),
    )
    .map_err(|e| e.to_string())
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = xs.filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// Trains (fresh, or resuming `dir` when `resume`), logging to `dir/tb/`, checkpointing into
/// `dir/checkpoint/`, writing `dir/best.safetensors` and `dir/last.safetensors`. Returns the
/// trainer at the end (or at Ctrl-C).
pub fn train(
    cfg: TrainConfig,
    dir: &Path,
    resume: bool,
    show_progress: bool,
) -> Result<Trainer, String> {
    let run = RunDir(dir.to_path_buf());
    let mut trainer = if resume {
        let cfg_path = dir.join("checkpoint").join("config.json");
        let text = std::fs::read_to_string(&cfg_path).map_err(|e| {
            format!(
                "{}: {e}: --resume needs a run folder written by haca-train",
                cfg_path.display()
            )
        })?;
        let saved: TrainConfig =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", cfg_path.display()))?;
        let scenario = Arc::new(Scenario::load(&saved.scenario).map_err(|e| e.to_string())?);
        Trainer::load_checkpoint(dir, scenario)?
    } else {
        let scenario = Arc::new(Scenario::load(&cfg.scenario).map_err(|e| e.to_string())?);
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let text = serde_json::to_string_pretty(&cfg).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("config.json"), text)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        Trainer::new(cfg, scenario)?
    };
    let cfg = trainer.cfg.clone();
    // tensorboard-rs names files by the second: one folder per session, never shared.
    let session = format!(
        "session-{}-update{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        trainer.state.update
    );
    let tb_dir = dir.join("tb").join(session);
    std::fs::create_dir_all(&tb_dir).map_err(|e| format!("{}: {e}", tb_dir.display()))?;
    let mut tb = SummaryWriter::new(&tb_dir);

    let updates = cfg.updates();
    let bar = if show_progress {
        ProgressBar::new(updates as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:25} {pos}/{len} updates {msg} [{elapsed_precise} eta {eta}]",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_position(trainer.state.update as u64);
    let eval_seed = haca_policy::rng::derive_seed(cfg.seed, 777);
    while trainer.state.update < updates {
        if INTERRUPTED.load(Ordering::Relaxed) {
            bar.println("interrupted: saving a checkpoint");
            break;
        }
        let s = trainer.update()?;
        let step = trainer.state.global_step as usize;
        let ret = mean(s.episodes.iter().map(|m| m.episode_return));
        let stranded = mean(s.episodes.iter().map(|m| m.stranded_idle_frac));
        let latency = mean(s.episodes.iter().map(|m| m.mean_latency_s));
        let scalars = [
            ("charts/SPS", s.steps_per_s),
            ("perf/rollout_s", s.rollout_s),
            ("perf/learn_s", s.learn_s),
            ("losses/epochs_run", s.epochs_run as f64),
            ("charts/learning_rate", s.learning_rate),
            ("losses/policy_loss", s.policy_loss),
            ("losses/value_loss", s.value_loss),
            ("losses/entropy", s.entropy),
            ("losses/approx_kl", s.approx_kl),
            ("losses/clipfrac", s.clipfrac),
            ("losses/explained_variance", s.explained_variance),
        ];
        for (tag, v) in scalars {
            if v.is_finite() {
                tb.add_scalar(tag, v as f32, step);
            }
        }
        if !s.episodes.is_empty() {
            tb.add_scalar("charts/episodic_return", ret as f32, step);
            tb.add_scalar("haca/stranded_idle", stranded as f32, step);
            tb.add_scalar("haca/mean_latency", latency as f32, step);
            let p99 = mean(s.episodes.iter().map(|m| m.p99_latency_s));
            tb.add_scalar("haca/p99_latency", p99 as f32, step);
            tb.add_scalar(
                "haca/idle_capacity",
                mean(s.episodes.iter().map(|m| m.idle_capacity_frac)) as f32,
                step,
            );
        }
        let u = trainer.state.update;
        if cfg.eval_every > 0 && (u % cfg.eval_every == 0 || u == updates) {
            let policy = trainer.export("{}".into())?;
            let cmp = evaluate(
                &trainer.scenario,
                policy,
                "policy",
                "sed",
                cfg.eval_episodes,
                eval_seed,
            )?;
            let lat = cmp
                .result("policy")
                .expect("evaluated")
                .get("mean_latency_s")
                .mean;
            let str_ = cmp
                .result("policy")
                .expect("evaluated")
                .get("stranded_idle_frac")
                .mean;
            tb.add_scalar("eval/mean_latency", lat as f32, step);
            tb.add_scalar("eval/stranded_idle", str_ as f32, step);
            tb.add_scalar(
                "eval/sed_mean_latency",
                cmp.result("sed")
                    .expect("evaluated")
                    .get("mean_latency_s")
                    .mean as f32,
                step,
            );
            if trainer.state.best_eval.is_none_or(|b| lat < b) {
                trainer.state.best_eval = Some(lat);
                let summary = serde_json::json!({
                    "update": u, "global_step": trainer.state.global_step,
                    "eval_episodes": cfg.eval_episodes, "eval_seed": eval_seed,
                    "mean_latency_s": lat, "stranded_idle_frac": str_,
                })
                .to_string();
                trainer
                    .export(summary)?
                    .save(run.best())
                    .map_err(|e| e.to_string())?;
            }
        }
        if cfg.checkpoint_every > 0 && u % cfg.checkpoint_every == 0 {
            trainer.save_checkpoint(dir)?;
        }
        tb.flush();
        bar.set_position(u as u64);
        bar.set_message(format!(
            "{} steps, {:.0} steps/s, return {:.3e}, stranded {:.3}, latency {:.1} s",
            trainer.state.global_step, s.steps_per_s, ret, stranded, latency
        ));
    }
    bar.finish_and_clear();
    trainer.save_checkpoint(dir)?;
    trainer
        .export(
            serde_json::json!({"update": trainer.state.update, "note": "last weights"}).to_string(),
        )?
        .save(run.last())
        .map_err(|e| e.to_string())?;
    if !run.best().exists() {
        std::fs::copy(run.last(), run.best()).map_err(|e| e.to_string())?;
    }
    tb.flush();
    Ok(trainer)
}
