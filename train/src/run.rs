//! The training run loop behind `haca-train`: warm start, progress, TensorBoard, evaluation,
//! checkpoints, Ctrl-C, the choice of `best.safetensors`, and the verdict.
//!
//! During the run `best.safetensors` is the candidate (the warm-start clone, then each periodic
//! evaluation's policy) with the lowest mean latency on the evaluation stream: the same episodes
//! for every candidate and for `sed`, so this is the lowest paired difference against `sed`. At
//! the end, [`select`] re-evaluates the best few and the last on fresh episodes. A run whose
//! evaluation is switched off evaluates its last weights once, so "best" is never a policy that
//! no evaluation saw. The verdict then compares that file with every heuristic on another seed
//! stream (nothing was selected on it) and is written into the file.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use haca_env::{Metric, Scenario};
use haca_eval::{compare, Comparison, Contender};
use haca_policy::{Policy, Selection};
use indicatif::{ProgressBar, ProgressStyle};
use tensorboard_rs::summary_writer::SummaryWriter;

use crate::seeds::Stream;
use crate::select;
use crate::verdict::Verdict;
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
    /// The warm start's clone, before any PPO update.
    pub fn clone_policy(&self) -> PathBuf {
        self.0.join("clone.safetensors")
    }
    /// One line per evaluation: the learning curve.
    pub fn curve(&self) -> PathBuf {
        self.0.join("curve.csv")
    }
    /// One line per update: the losses and the statistics behind them.
    pub fn updates(&self) -> PathBuf {
        self.0.join("updates.csv")
    }
}

/// Header of `curve.csv`.
pub const CURVE_HEADER: &str =
    "update,global_step,train_seconds,mean_latency_s,stranded_idle_frac,sed_mean_latency_s,paired_vs_sed,paired_ci95,affinity_mean_latency_s,score";

/// Header of `updates.csv` (rollout episodes' latency and stranded idle; NaN if none ended).
pub const UPDATES_HEADER: &str = "update,global_step,policy_loss,value_loss,entropy,approx_kl,clipfrac,explained_variance,advantage_var,return_var,value_mean,epochs_run,advantage_tail,grad_norm,grad_clipped,rollout_s,learn_s,episode_latency_s,episode_stranded";

/// Appends one line to a CSV file, writing `header` first when the file is new.
fn append_csv(path: &Path, header: &str, line: &str) -> Result<(), String> {
    let new_file = !path.exists();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io(path))?;
    if new_file {
        writeln!(f, "{header}").map_err(io(path))?;
    }
    writeln!(f, "{line}").map_err(io(path))
}

/// How a run is started.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Continue the run in the folder from its checkpoint.
    pub resume: bool,
    /// On resume: train up to this many steps instead of the saved total.
    pub total_steps: Option<u64>,
    pub show_progress: bool,
}

/// Evaluates `policy`, acting as `selection` says, against the given routers on `episodes`
/// episodes from `seed`.
pub fn evaluate(
    scenario: &Arc<Scenario>,
    (policy, selection): (Policy, Selection),
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
        selection,
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

/// Prints above the progress bar, or plainly when there is none (not a terminal, tests).
fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        println!("{line}");
    } else {
        bar.println(line);
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

/// The run's scenario, with the config's reward override.
fn load_scenario(cfg: &TrainConfig) -> Result<Arc<Scenario>, String> {
    let mut sc = Scenario::load(&cfg.scenario).map_err(|e| e.to_string())?;
    if let Some(w) = cfg.stranded_weight {
        sc.reward.stranded = w;
    }
    Ok(Arc::new(sc))
}

/// Opens (or starts) a run.
fn open(cfg: TrainConfig, dir: &Path, opts: &RunOptions) -> Result<Trainer, String> {
    if !opts.resume {
        let scenario = load_scenario(&cfg)?;
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let text = serde_json::to_string_pretty(&cfg).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("config.json"), text).map_err(io(dir))?;
        return Trainer::new(cfg, scenario);
    }
    let restored = Trainer::load_checkpoint(dir, load_scenario)?;
    if let Some(line) = &restored.fallback {
        eprintln!("warning: {line}");
    }
    let mut t = restored.trainer;
    eprintln!(
        "resuming {} from update {} ({} steps)",
        dir.display(),
        t.state.update,
        t.state.global_step
    );
    if let Some(total) = opts.total_steps {
        if total < t.state.global_step {
            return Err(format!(
                "--total-steps {total} is below the {} steps the run has already made: give more to extend it",
                t.state.global_step
            ));
        }
        // Extends (or shortens) the run: the learning-rate schedule is rescaled to the new end.
        t.cfg.total_steps = total;
    }
    Ok(t)
}

/// One periodic evaluation against `sed`, logged and appended to the curve; saves the policy
/// as best when its score (see [`select::score`]) is the lowest so far. Returns its mean
/// latency.
fn checkpoint_eval(
    trainer: &mut Trainer,
    run: &RunDir,
    tb: &mut SummaryWriter,
    evaluation_note: &str,
) -> Result<f64, String> {
    let cfg = trainer.cfg.clone();
    let eval_seed = Stream::Eval.seed(cfg.seed);
    let policy = trainer.export("{}".into())?;
    let cmp = evaluate(
        &trainer.scenario,
        (policy, cfg.selection()),
        "policy",
        "sed,affinity",
        cfg.eval_episodes,
        eval_seed,
    )?;
    let get = |who: &str, m: Metric| cmp.result(who).expect("evaluated").get(m).mean;
    let affinity = get("affinity", Metric::MeanLatency);
    let lat = get("policy", Metric::MeanLatency);
    let stranded = get("policy", Metric::StrandedIdleFrac);
    let sed = get("sed", Metric::MeanLatency);
    let score = select::score(&cmp, "policy", select::weighted(&trainer.scenario));
    let paired = cmp
        .paired("policy", "sed", Metric::MeanLatency)
        .expect("both evaluated");
    let step = trainer.state.global_step as usize;
    tb.add_scalar("eval/mean_latency", lat as f32, step);
    tb.add_scalar("eval/stranded_idle", stranded as f32, step);
    tb.add_scalar("eval/sed_mean_latency", sed as f32, step);
    tb.add_scalar("eval/paired_vs_sed", paired.mean as f32, step);
    append_csv(
        &run.curve(),
        CURVE_HEADER,
        &format!(
            "{},{},{:.3},{lat},{stranded},{sed},{},{},{affinity},{score}",
            trainer.state.update,
            trainer.state.global_step,
            trainer.state.train_seconds,
            paired.mean,
            paired.ci95
        ),
    )?;
    let summary = serde_json::json!({
        "update": trainer.state.update, "global_step": trainer.state.global_step,
        "eval_episodes": cfg.eval_episodes, "eval_seed": eval_seed,
        "mean_latency_s": lat, "stranded_idle_frac": stranded,
        "paired_vs_sed": paired.mean, "paired_ci95": paired.ci95,
        "note": evaluation_note,
    })
    .to_string();
    let candidate = trainer.export(summary)?;
    if cfg.select_top > 0 {
        let path = select::candidate_path(run, trainer.state.update as u64);
        let folder = path.parent().expect("a candidates folder");
        std::fs::create_dir_all(folder).map_err(io(folder))?;
        candidate.save(&path).map_err(|e| e.to_string())?;
    }
    if trainer.state.best_eval.is_none_or(|b| score < b) {
        trainer.state.best_eval = Some(score);
        candidate.save(run.best()).map_err(|e| e.to_string())?;
    }
    Ok(lat)
}

/// Trains (fresh, or resuming `dir`), logging to `dir/tb/`, checkpointing into
/// `dir/checkpoint/`, writing `dir/best.safetensors`, `dir/last.safetensors` and
/// `dir/curve.csv` (and `dir/clone.safetensors` after a warm start). Returns the trainer at the
/// end (or at Ctrl-C).
pub fn train(cfg: TrainConfig, dir: &Path, opts: &RunOptions) -> Result<Trainer, String> {
    let run = RunDir(dir.to_path_buf());
    let mut trainer = open(cfg, dir, opts)?;
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
    std::fs::create_dir_all(&tb_dir).map_err(io(&tb_dir))?;
    let mut tb = SummaryWriter::new(&tb_dir);

    let updates = cfg.updates();
    let bar = if opts.show_progress {
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

    if trainer.state.update == 0 && !opts.resume {
        if let Some(teacher) = cfg.init_from.clone() {
            let started = Instant::now();
            let r = trainer.warm_start(&teacher)?;
            trainer.state.train_seconds += started.elapsed().as_secs_f64();
            trainer
                .export(serde_json::json!({"note": format!("clone of {teacher}")}).to_string())?
                .save(run.clone_policy())
                .map_err(|e| e.to_string())?;
            let started = Instant::now();
            let lat = if cfg.eval_every > 0 {
                checkpoint_eval(&mut trainer, &run, &mut tb, "warm-start clone")?
            } else {
                f64::NAN
            };
            trainer.state.train_seconds += started.elapsed().as_secs_f64();
            say(&bar, format!(
                "warm start: cloned {teacher} on {} decisions in {:.1} s (agreement {:.1}%, critic explained variance {:.2}); clone's evaluation mean latency {lat:.2} s",
                r.samples,
                r.seconds,
                100.0 * r.accuracy,
                r.value_ev
            ));
        }
    }

    while trainer.state.update < updates {
        if INTERRUPTED.load(Ordering::Relaxed) {
            say(&bar, "interrupted: saving a checkpoint".into());
            break;
        }
        let started = Instant::now();
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
            ("losses/advantage_tail", s.advantage_tail),
            ("losses/grad_norm", s.grad_norm),
            ("losses/grad_clipped", s.grad_clipped),
            ("charts/learning_rate", s.learning_rate),
            ("losses/policy_loss", s.policy_loss),
            ("losses/value_loss", s.value_loss),
            ("losses/entropy", s.entropy),
            ("losses/approx_kl", s.approx_kl),
            ("losses/first_kl", s.first_kl),
            ("losses/clipfrac", s.clipfrac),
            ("losses/explained_variance", s.explained_variance),
            ("losses/advantage_var", s.advantage_var),
            ("losses/return_var", s.return_var),
            ("losses/value_mean", s.value_mean),
        ];
        for (tag, v) in scalars {
            if v.is_finite() {
                tb.add_scalar(tag, v as f32, step);
            }
        }
        append_csv(
            &run.updates(),
            UPDATES_HEADER,
            &format!(
                "{},{step},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{latency},{stranded}",
                trainer.state.update,
                s.policy_loss,
                s.value_loss,
                s.entropy,
                s.approx_kl,
                s.clipfrac,
                s.explained_variance,
                s.advantage_var,
                s.return_var,
                s.value_mean,
                s.epochs_run,
                s.advantage_tail,
                s.grad_norm,
                s.grad_clipped,
                s.rollout_s,
                s.learn_s
            ),
        )?;
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
            checkpoint_eval(&mut trainer, &run, &mut tb, "periodic evaluation")?;
        }
        trainer.state.train_seconds += started.elapsed().as_secs_f64();
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
    if !INTERRUPTED.load(Ordering::Relaxed) {
        let started = Instant::now();
        if trainer.state.best_eval.is_none() {
            // No evaluation ran (eval_every = 0): evaluate the last weights once, so that the
            // file named best is one an evaluation saw.
            checkpoint_eval(
                &mut trainer,
                &run,
                &mut tb,
                "last weights (no periodic evaluation)",
            )?;
        }
        if let Some(chosen) = select::select_best(&trainer, &run)? {
            say(&bar, chosen.line());
        }
        trainer.state.train_seconds += started.elapsed().as_secs_f64();
    }
    bar.finish_and_clear();
    trainer.save_checkpoint(dir)?;
    trainer
        .export(
            serde_json::json!({"update": trainer.state.update, "note": "last weights"}).to_string(),
        )?
        .save(run.last())
        .map_err(|e| e.to_string())?;
    tb.flush();
    Ok(trainer)
}

/// Compares the run's `best.safetensors` with every heuristic on `episodes` episodes of the
/// verdict stream, records the verdict in the file, and returns both.
pub fn verdict(
    trainer: &Trainer,
    dir: &Path,
    episodes: usize,
) -> Result<(Comparison, Verdict), String> {
    let best = RunDir(dir.to_path_buf()).best();
    let mut policy = Policy::load(&best).map_err(|e| e.to_string())?;
    let seed = Stream::Verdict.seed(trainer.cfg.seed);
    let cmp = evaluate(
        &trainer.scenario,
        (policy.clone(), trainer.cfg.selection()),
        "policy:best",
        "all",
        episodes,
        seed,
    )?;
    let v = Verdict::from_comparison(&cmp, "policy:best", &trainer.cfg.eval_selection)
        .ok_or("the comparison has no heuristic to judge against")?;
    policy.info.verdict = Some(v.to_json().to_string());
    policy.save(&best).map_err(|e| e.to_string())?;
    Ok((cmp, v))
}
