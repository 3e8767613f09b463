//! How good is one step of lookahead over a base router (Bertsekas' rollout algorithm)? At each
//! decision every legal node is tried on forks of the env that share a freshly sampled future,
//! the base router routes the next `H` jobs, and the node with the least job-seconds wins.
//!
//! `cargo run --release -p haca-train --example lookahead -- SCENARIO EPISODES H K [BASE]`

use std::sync::Arc;
use std::time::Instant;

use haca_env::{Env, Scenario};
use haca_policy::rng::derive_seed;
use haca_policy::{router_by_name, Router};
use rayon::prelude::*;

fn cost_to_go(env: &Env, action: usize, base: &str, horizon: usize, seed: u64) -> f64 {
    let mut fork = env.fork(seed);
    let mut router = router_by_name(base, seed).expect("base router");
    let mut cost = 0.0;
    let mut a = action;
    for _ in 0..horizon {
        let step = fork.step(a).expect("legal");
        cost -= step.reward;
        if step.done() {
            return cost;
        }
        a = router.route(fork.obs());
    }
    cost
}

fn episode(sc: &Arc<Scenario>, seed: u64, look: Option<(usize, usize)>, base: &str) -> f64 {
    let mut env = Env::new(sc.clone());
    env.reset(Some(seed));
    let mut router = router_by_name(base, seed).expect("base router");
    loop {
        let a = match look {
            None => router.route(env.obs()),
            Some((h, k)) => {
                let legal: Vec<usize> = env.obs().legal().collect();
                let d = env.info().decisions;
                let mut best = (f64::INFINITY, legal[0]);
                for &a in &legal {
                    let q: f64 = (0..k)
                        .map(|j| cost_to_go(&env, a, base, h, derive_seed(seed ^ d, j as u64)))
                        .sum();
                    if q < best.0 {
                        best = (q, a);
                    }
                }
                best.1
            }
        };
        let step = env.step(a).expect("legal");
        if step.done() {
            return step.info.metrics.expect("metrics").mean_latency_s;
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        return Err("usage: lookahead SCENARIO EPISODES H K [BASE]".into());
    }
    let sc = Arc::new(Scenario::load(&args[0])?);
    let episodes: u64 = args[1].parse()?;
    let (h, k): (usize, usize) = (args[2].parse()?, args[3].parse()?);
    let base = args.get(4).map_or("sed", |s| s.as_str());
    if let Some(states) = args.get(5) {
        snr(&sc, h, k, base, states.parse()?);
        return Ok(());
    }
    let t = Instant::now();
    let rows: Vec<(f64, f64)> = (0..episodes)
        .into_par_iter()
        .map(|ep| {
            let seed = 9_000 + ep;
            (
                episode(&sc, seed, None, base),
                episode(&sc, seed, Some((h, k)), base),
            )
        })
        .collect();
    let n = rows.len() as f64;
    let d: Vec<f64> = rows.iter().map(|(b, l)| l - b).collect();
    let mean = d.iter().sum::<f64>() / n;
    let sd = (d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let base_mean = rows.iter().map(|r| r.0).sum::<f64>() / n;
    println!(
        "{base} {base_mean:.3} s; lookahead(H={h}, K={k}) {:.3} s; paired {mean:+.3} ± {:.3} s ({} episodes, {:.1} s)",
        base_mean + mean,
        1.96 * sd / n.sqrt(),
        episodes,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Signal and noise of one decision's effect: at `states` decisions of a base-router episode,
/// the cost-to-go of every legal node minus that of the base router's own choice, over `k`
/// shared futures. Prints the median over states of |mean difference| and of its spread.
#[allow(dead_code)]
pub fn snr(sc: &Arc<Scenario>, h: usize, k: usize, base: &str, states: usize) {
    let mut env = Env::new(sc.clone());
    env.reset(Some(77));
    let mut router = router_by_name(base, 77).expect("base router");
    let mut rows = Vec::new();
    for d in 0..2000u64 {
        let a0 = router.route(env.obs());
        if d % (2000 / states as u64) == 100 {
            let legal: Vec<usize> = env.obs().legal().collect();
            let q0: Vec<f64> = (0..k)
                .map(|j| cost_to_go(&env, a0, base, h, derive_seed(d, j as u64)))
                .collect();
            for &a in legal.iter().filter(|&&a| a != a0) {
                let diffs: Vec<f64> = (0..k)
                    .map(|j| cost_to_go(&env, a, base, h, derive_seed(d, j as u64)) - q0[j])
                    .collect();
                let m = diffs.iter().sum::<f64>() / k as f64;
                let sd =
                    (diffs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (k as f64 - 1.0)).sqrt();
                rows.push((m, sd));
            }
        }
        if env.step(a0).expect("legal").done() {
            break;
        }
    }
    let med = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let better = rows.iter().filter(|r| r.0 < 0.0).count();
    println!(
        "H={h} K={k}: {} (state, node) pairs; median |mean diff| {:.1} job-s, median sd {:.1} job-s; {} of them better than {base} on average",
        rows.len(),
        med(rows.iter().map(|r| r.0.abs()).collect()),
        med(rows.iter().map(|r| r.1).collect()),
        better
    );
}
