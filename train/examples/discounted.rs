//! What PPO's objective thinks of a router: the mean over decisions of the discounted return
//! `G_t = sum_k gamma^k r_{t+k}` at several discounts, beside the undiscounted episode return
//! (minus the job-seconds in the system, which is what mean latency measures).
//!
//! `cargo run --release -p haca-train --example discounted -- SCENARIO EPISODES ROUTER|POLICY...`
//! where a policy is a `.safetensors` path (routed greedily).

use std::sync::Arc;

use haca_env::{Env, Scenario};
use haca_policy::{router_by_name, Policy, PolicyRouter, Router, Selection};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        return Err("usage: discounted SCENARIO EPISODES ROUTER|POLICY.safetensors ...".into());
    }
    let sc = Arc::new(Scenario::load(&args[0])?);
    let episodes: u64 = args[1].parse()?;
    let gammas = [0.99, 0.995, 0.999, 0.9995, 1.0];
    print!("{:<28} {:>12}", "router", "latency_s");
    for g in gammas {
        print!(" {:>14}", format!("mean G (g={g})"));
    }
    println!();
    for who in &args[2..] {
        let mut router: Box<dyn Router> = if who.ends_with(".safetensors") {
            Box::new(PolicyRouter::new(
                Arc::new(Policy::load(who)?),
                Selection::Greedy,
                0,
            ))
        } else {
            router_by_name(who, 0).ok_or("unknown router")?
        };
        let mut env = Env::new(sc.clone());
        let mut sums = vec![0.0f64; gammas.len()];
        let (mut count, mut latency) = (0usize, 0.0);
        for ep in 0..episodes {
            let mut rewards = Vec::new();
            env.reset(Some(1_000 + ep));
            router.reset(ep);
            loop {
                let a = router.route(env.obs());
                let step = env.step(a)?;
                rewards.push(step.reward);
                if step.done() {
                    latency += step.info.metrics.map_or(f64::NAN, |m| m.mean_latency_s);
                    break;
                }
            }
            for (k, &g) in gammas.iter().enumerate() {
                let mut acc = 0.0;
                for &r in rewards.iter().rev() {
                    acc = r + g * acc;
                    sums[k] += acc;
                }
            }
            count += rewards.len();
        }
        let name = std::path::Path::new(who)
            .file_stem()
            .map_or(who.clone(), |s| s.to_string_lossy().into_owned());
        print!("{name:<28} {:>12.2}", latency / episodes as f64);
        for s in &sums {
            print!(" {:>14.1}", s / count as f64);
        }
        println!();
    }
    Ok(())
}
