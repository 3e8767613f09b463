//! `haca-train`: train a routing policy with PPO, then export it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use clap::{Args, Parser, Subcommand};
use haca_train::run::{train, verdict, RunDir, RunOptions, INTERRUPTED};
use haca_train::TrainConfig;

#[derive(Parser)]
#[command(
    name = "haca-train",
    version,
    about = "Train a HACA routing policy with PPO (burn), export it, and compare it with the heuristics",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    train: TrainArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Export a run's best policy (or its last weights) as a policy file.
    Export {
        /// The run folder.
        #[arg(long)]
        run: PathBuf,
        /// Where to write the .safetensors file.
        #[arg(long)]
        out: PathBuf,
        /// Write int8 weights.
        #[arg(long)]
        int8: bool,
    },
    /// Draw learning curves (evaluation mean latency against training seconds, with sed and
    /// affinity) from run folders' curve.csv into OUT/learning_curves.{svg,png}.
    Curves {
        /// Run folders.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        #[arg(long, default_value = "docs/img")]
        out: PathBuf,
        #[arg(
            long,
            default_value = "haca-small: evaluation mean latency during training"
        )]
        title: String,
    },
    /// Measure end-to-end training speed: PPO updates with the default settings but every epoch
    /// run (no KL early stop), no logging or checkpoints; prints per-update and median env
    /// steps per second, and how an update's time splits between the rollout and the burn
    /// update.
    Bench {
        #[arg(long, default_value = "env/scenarios/haca-small.toml")]
        scenario: String,
        /// Timed updates (after one warm-up update).
        #[arg(long, default_value_t = 10)]
        updates: usize,
        /// Parallel environments.
        #[arg(long)]
        envs: Option<usize>,
        #[arg(long, default_value = "cpu")]
        device: String,
    },
}

#[derive(Args)]
struct TrainArgs {
    /// Scenario TOML file.
    #[arg(long, default_value = "env/scenarios/haca-small.toml")]
    scenario: String,
    /// Environment steps (routing decisions) to train for.
    #[arg(long)]
    total_steps: Option<u64>,
    /// Parallel environments.
    #[arg(long)]
    envs: Option<usize>,
    #[arg(long)]
    seed: Option<u64>,
    /// Run folder (default: runs/<scenario>-seed<seed>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in this folder from its last checkpoint. Its saved config holds; only
    /// `--total-steps` may be given with it (to extend the run).
    #[arg(long, conflicts_with_all = ["out", "scenario", "set", "envs", "seed", "steps_per_rollout", "learning_rate", "device", "init_from"])]
    resume: Option<PathBuf>,
    /// Warm start: clone this heuristic router (e.g. sed) or exported policy file (*.safetensors)
    /// before PPO, or `none` for random weights (default: the config's `init_from`).
    #[arg(long)]
    init_from: Option<String>,
    /// Exit with status 3 when the verdict is not a win (for scripts).
    #[arg(long)]
    require_win: bool,
    /// cpu (burn's flex backend) or cuda (build with --features cuda).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Decisions per env per rollout.
    #[arg(long)]
    steps_per_rollout: Option<usize>,
    #[arg(long)]
    learning_rate: Option<f64>,
    /// Episodes of the final comparison (the verdict) against the heuristics: 200, as the
    /// README's check over seeds. On haca-small a 64-episode paired interval is about ±3.5 s,
    /// wide enough to call a policy that wins a tie.
    #[arg(long, default_value_t = 200)]
    eval_episodes: usize,
    /// Any other setting of the run's config.json, as key=value (repeatable), e.g.
    /// `--set ent_coef=0.001 --set hidden=64`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

/// An error that is only an exit status (its message was printed already).
#[derive(Debug)]
struct ExitStatus(u8);

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for ExitStatus {}

fn main() -> ExitCode {
    haca_train::tune_allocator();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<ExitStatus>().is_some() => {
            ExitCode::from(e.downcast_ref::<ExitStatus>().map_or(1, |s| s.0))
        }
        Err(e) => {
            eprintln!("error: {}", haca_eval::error_line(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

fn bench(scenario: String, updates: usize, envs: Option<usize>, device: String) -> Result<()> {
    let sc = Arc::new(haca_env::Scenario::load(&scenario)?);
    let mut cfg = TrainConfig {
        scenario,
        device,
        // Every epoch of every update: a fixed amount of work per update, so that figures
        // compare across runs and with other implementations.
        target_kl: None,
        // CleanRL's rollout length, as the PyTorch baseline uses (the README's table).
        steps_per_rollout: 128,
        ..Default::default()
    };
    if let Some(e) = envs {
        cfg.envs = e;
    }
    cfg.total_steps = ((updates + 1) * cfg.batch_size()) as u64;
    let mut trainer = haca_train::Trainer::new(cfg.clone(), sc.clone()).map_err(|e| anyhow!(e))?;
    trainer.update().map_err(|e| anyhow!(e))?;
    println!(
        "{}: {} envs x {} steps per update, {} epochs of {} minibatches (no KL early stop), {} threads",
        sc.name,
        cfg.envs,
        cfg.steps_per_rollout,
        cfg.epochs,
        cfg.minibatches,
        rayon::current_num_threads()
    );
    let (mut sps, mut rollout, mut learn) = (vec![], vec![], vec![]);
    for u in 0..updates {
        let s = trainer.update().map_err(|e| anyhow!(e))?;
        println!(
            "update {u:>3}: {:>8.0} steps/s  rollout {:>6.1} ms  burn update {:>6.1} ms",
            s.steps_per_s,
            s.rollout_s * 1e3,
            s.learn_s * 1e3
        );
        sps.push(s.steps_per_s);
        rollout.push(s.rollout_s);
        learn.push(s.learn_s);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (r, l) = (median(&mut rollout), median(&mut learn));
    println!(
        "median: {:.0} env steps/s end to end; rollout {:.1} ms ({:.0} steps/s), burn update {:.1} ms ({:.0}% of the time)",
        median(&mut sps),
        r * 1e3,
        cfg.batch_size() as f64 / r,
        l * 1e3,
        100.0 * l / (r + l)
    );
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    if let Some(Command::Bench {
        scenario,
        updates,
        envs,
        device,
    }) = cli.command
    {
        anyhow::ensure!(updates > 0, "--updates must be at least 1");
        return bench(scenario, updates, envs, device);
    }
    if let Some(Command::Curves { runs, out, title }) = &cli.command {
        for f in haca_train::curves::draw(runs, out, title).map_err(|e| anyhow!(e))? {
            println!("wrote {}", f.display());
        }
        return Ok(());
    }
    if let Some(Command::Export { run, out, int8 }) = cli.command {
        let dir = RunDir(run.clone());
        let src = if dir.best().exists() {
            dir.best()
        } else {
            dir.last()
        };
        let policy = haca_policy::Policy::load(&src)
            .with_context(|| format!("{}: no exported policy in this run folder", run.display()))?;
        if int8 {
            policy.save_int8(&out)?;
        } else {
            policy.save(&out)?;
        }
        println!("exported {} -> {}", src.display(), out.display());
        return Ok(());
    }
    let a = cli.train;
    ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::Relaxed))
        .context("cannot install the Ctrl-C handler")?;
    let started = std::time::Instant::now();
    let (dir, trainer) = if let Some(dir) = a.resume {
        let opts = RunOptions {
            resume: true,
            total_steps: a.total_steps,
            show_progress: true,
        };
        let t = train(TrainConfig::default(), &dir, &opts).map_err(|e| anyhow!(e))?;
        (dir, t)
    } else {
        let mut cfg = TrainConfig {
            scenario: a.scenario.clone(),
            device: a.device.clone(),
            ..Default::default()
        };
        if let Some(v) = a.total_steps {
            cfg.total_steps = v;
        }
        if let Some(v) = a.envs {
            cfg.envs = v;
        }
        if let Some(v) = a.seed {
            cfg.seed = v;
        }
        if let Some(v) = a.steps_per_rollout {
            cfg.steps_per_rollout = v;
        }
        if let Some(v) = a.learning_rate {
            cfg.learning_rate = v;
        }
        if let Some(v) = &a.init_from {
            cfg.init_from = (v != "none").then(|| v.clone());
        }
        for kv in &a.set {
            cfg.set(kv).map_err(|e| anyhow!(e))?;
        }
        cfg.validate().map_err(|e| anyhow!(e))?;
        let stem = std::path::Path::new(&cfg.scenario)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = a
            .out
            .unwrap_or_else(|| PathBuf::from(format!("runs/{stem}-seed{}", cfg.seed)));
        let opts = RunOptions {
            show_progress: true,
            ..Default::default()
        };
        let t = train(cfg, &dir, &opts).map_err(|e| anyhow!(e))?;
        (dir, t)
    };
    println!(
        "trained {} steps in {:.1} s of training ({:.1} s this session); run folder {}",
        trainer.state.global_step,
        trainer.state.train_seconds,
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    if INTERRUPTED.load(Ordering::Relaxed) {
        println!(
            "checkpoint saved in {}; continue with --resume {}",
            dir.display(),
            dir.display()
        );
        return Ok(());
    }
    let (cmp, v) = verdict(&trainer, &dir, a.eval_episodes).map_err(|e| anyhow!(e))?;
    println!(
        "\n{} (best policy of the run against every heuristic; seeds no choice was made on)\n",
        trainer.scenario.name
    );
    print!("{}", cmp.table());
    println!(
        "\n{}\nverdict: {}",
        RunDir(dir.clone()).best().display(),
        v.line()
    );
    if a.require_win && !v.beats() {
        eprintln!("--require-win: the policy does not beat {}", v.baseline);
        return Err(ExitStatus(3).into());
    }
    Ok(())
}
