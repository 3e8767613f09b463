//! Runs a router over a scenario and prints the episode metrics and decisions per second.
//!
//! cargo run --release -p haca-env --example rollout -- \
//!     --scenario env/scenarios/haca-small.toml --router round_robin --episodes 4 --seed 0

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use haca_env::{run_episode, Env, EpisodeMetrics};
use haca_policy::{router_by_name, ROUTER_NAMES};

#[derive(Parser)]
#[command(about = "Run a router over a HACA scenario and report DESIGN section 4 metrics")]
struct Args {
    /// Scenario TOML file.
    #[arg(long)]
    scenario: PathBuf,
    /// Router name: random, round_robin, jsq, lwl, sed, po2 (or po<d>), jiq, affinity, or
    /// pooled (the central-queue reference, which routes nothing).
    #[arg(long, default_value = "round_robin")]
    router: String,
    #[arg(long, default_value_t = 4)]
    episodes: u32,
    /// Seed of the first episode; later ones continue its stream.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    let mut env = Env::from_file(&args.scenario).map_err(|e| e.to_string())?;
    let pooled = args.router == "pooled";
    let mut router = if pooled {
        None
    } else {
        Some(router_by_name(&args.router, args.seed).ok_or_else(|| {
            format!(
                "unknown router `{}`: expected one of {}, pooled",
                args.router,
                ROUTER_NAMES.join(", ")
            )
        })?)
    };
    let sc = env.scenario().clone();
    println!(
        "scenario {} ({}, {} models), router {}, {} episodes, seed {}",
        sc.name,
        sc.summary(),
        sc.models.len(),
        args.router,
        args.episodes,
        args.seed
    );

    let mut episodes: Vec<EpisodeMetrics> = Vec::new();
    let start = Instant::now();
    for ep in 0..args.episodes {
        let seed = (ep == 0).then_some(args.seed);
        let metrics = match router.as_mut() {
            Some(router) => run_episode(&mut env, router, seed).map_err(|e| e.to_string())?,
            None => env.run_pooled(seed).map_err(|e| e.to_string())?,
        };
        episodes.push(metrics);
    }
    let secs = start.elapsed().as_secs_f64();
    let decisions: f64 = episodes.iter().map(|m| m.decisions).sum();
    let decisions_per_s = decisions / secs;

    print!("{:<24}", "metric");
    for ep in 0..episodes.len() {
        print!("{:>14}", format!("episode {ep}"));
    }
    println!("{:>14}", "mean");
    for (i, name) in EpisodeMetrics::NAMES.iter().enumerate() {
        print!("{name:<24}");
        let vals: Vec<f64> = episodes.iter().map(|m| m.values()[i]).collect();
        for v in &vals {
            print!("{:>14}", fmt(*v));
        }
        println!("{:>14}", fmt(vals.iter().sum::<f64>() / vals.len() as f64));
    }
    println!(
        "{decisions} decisions in {secs:.3} s: {:.2} M decisions/s (one thread, router {})",
        decisions_per_s / 1e6,
        args.router
    );

    if let Some(path) = &args.json {
        let eps: Vec<serde_json::Value> = episodes
            .iter()
            .map(|m| {
                let obj: serde_json::Map<String, serde_json::Value> = m
                    .pairs()
                    .map(|(k, v)| (k.to_string(), json_number(v)))
                    .collect();
                serde_json::Value::Object(obj)
            })
            .collect();
        let doc = serde_json::json!({
            "scenario": sc.name,
            "router": args.router,
            "seed": args.seed,
            "episodes": eps,
            "decisions_per_s": decisions_per_s,
        });
        let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n")
            .map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// JSON has no NaN: a metric that does not apply is null.
fn json_number(v: f64) -> serde_json::Value {
    serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

fn fmt(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v.abs() >= 1e5 {
        format!("{v:.4e}")
    } else {
        format!("{v:.4}")
    }
}
