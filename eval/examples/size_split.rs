//! Where a policy gains or loses against a router, by job size: the mean latency per decile
//! of the jobs' estimated work, on the same episodes, and what each decile adds to the
//! difference of the mean latencies.
//!
//! ```sh
//! cargo run --release -p haca-eval --example size_split -- --scenario env/scenarios/haca-clients.toml \
//!     --clients 10 --router lsq --policy checkpoints/haca-clients.safetensors --episodes 60
//! ```
//!
//! `--split-work W` and `--split-cold` play composites in the policy's place (the router on
//! large jobs; the router where its own choice needs a cold model load), and the first lines
//! give the paired difference of per-episode mean latencies with its 95% interval.
//!
//! A job's latency is summed from its per-job credits (`CreditMode::Latency`: the seconds under
//! each placement, retries included); the policy samples (`Selection::Sample`, temperature 1).

use std::{collections::HashMap, path::PathBuf, sync::Arc};

use anyhow::{anyhow, Result};
use clap::Parser;
use haca_env::{router_seed, CreditMode, Env, Scenario};
use haca_policy::{router_by_name, PerClient, Policy, PolicyRouter, Router, Selection};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    scenario: PathBuf,
    /// Clients routing for themselves (the scenario's own when absent).
    #[arg(long)]
    clients: Option<u32>,
    #[arg(long, default_value = "lsq")]
    router: String,
    #[arg(long)]
    policy: PathBuf,
    #[arg(long, default_value_t = 60)]
    episodes: usize,
    #[arg(long, default_value_t = 5001)]
    seed: u64,
    /// Play a composite instead of the policy: the policy routes jobs of at most this
    /// estimated work, the router the rest (what a teacher split by job size would teach).
    #[arg(long)]
    split_work: Option<f64>,
    /// Play a composite: the router decides where its own choice needs a cold model load, the
    /// policy everywhere else (a teacher that leaves loads to the router).
    #[arg(long)]
    split_cold: bool,
}

/// The router where its choice is a cold node, the policy elsewhere.
struct ByCold {
    policy: Box<dyn Router>,
    router: Box<dyn Router>,
}

impl Router for ByCold {
    fn name(&self) -> &str {
        "by-cold"
    }
    fn reset(&mut self, seed: u64) {
        self.policy.reset(seed);
        self.router.reset(seed);
    }
    fn route(&mut self, view: &haca_policy::ClusterView) -> usize {
        let theirs = self.router.route(view);
        let mine = self.policy.route(view);
        if view.nodes[theirs].model_ready {
            mine
        } else {
            theirs
        }
    }
}

/// The policy for small jobs, `big` for the rest.
struct BySize {
    limit: f64,
    small: Box<dyn Router>,
    big: Box<dyn Router>,
}

impl Router for BySize {
    fn name(&self) -> &str {
        "by-size"
    }
    fn reset(&mut self, seed: u64) {
        self.small.reset(seed);
        self.big.reset(seed);
    }
    fn route(&mut self, view: &haca_policy::ClusterView) -> usize {
        if view.job.est_work <= self.limit {
            self.small.route(view)
        } else {
            self.big.route(view)
        }
    }
}

/// What one router did over the episodes.
struct Played {
    /// (estimated work, latency) of every placement.
    jobs: Vec<(f64, f64)>,
    /// Each episode's mean latency.
    means: Vec<f64>,
    cold_starts: f64,
}

fn placements(sc: &Arc<Scenario>, a: &Args, make: &dyn Fn() -> Box<dyn Router>) -> Played {
    let (mut out, mut means, mut cold) = (Vec::new(), Vec::new(), 0.0);
    for ep in 0..a.episodes {
        let mut env = Env::new(sc.clone());
        env.set_credit_mode(CreditMode::Latency);
        let mut router = make();
        let (_, info) = env.reset(Some(haca_eval::episode_seed(a.seed, ep)));
        router.reset(router_seed(info.episode_seed));
        let (mut work, mut credits) = (HashMap::new(), Vec::new());
        loop {
            work.insert(env.info().decisions, env.obs().job.est_work);
            let node = router.route(env.obs());
            let done = env.step(node).expect("routers pick legal nodes").done();
            env.take_credits(&mut credits);
            if done {
                break;
            }
        }
        means.push(credits.iter().map(|c| c.1).sum::<f64>() / credits.len().max(1) as f64);
        cold += env.metrics().cold_starts;
        out.extend(credits.iter().map(|&(d, secs)| (work[&d], secs)));
    }
    Played {
        jobs: out,
        means,
        cold_starts: cold / a.episodes as f64,
    }
}

fn main() -> Result<()> {
    let a = Args::parse();
    let mut sc = Scenario::load(&a.scenario)?;
    if let Some(c) = a.clients {
        sc = sc.with_clients(c);
    }
    let sc = Arc::new(sc);
    let policy = Arc::new(Policy::load(&a.policy)?);
    router_by_name(&a.router, 0).ok_or_else(|| anyhow!("`{}` is not a router", a.router))?;
    let base_run = placements(&sc, &a, &|| {
        router_by_name(&a.router, 0).expect("checked above")
    });
    let pol_run = placements(&sc, &a, &|| {
        let (p, split, router, cold) =
            (policy.clone(), a.split_work, a.router.clone(), a.split_cold);
        Box::new(PerClient::new(Box::new(move || {
            let sample = Selection::Sample { temperature: 1.0 };
            let small: Box<dyn Router> = Box::new(PolicyRouter::new(p.clone(), sample, 0));
            if cold {
                return Box::new(ByCold {
                    policy: small,
                    router: router_by_name(&router, 0).expect("checked above"),
                }) as Box<dyn Router>;
            }
            match split {
                Some(limit) => Box::new(BySize {
                    limit,
                    small,
                    big: router_by_name(&router, 0).expect("checked above"),
                }),
                None => small,
            }
        })))
    });
    let (base, pol) = (&base_run.jobs, &pol_run.jobs);
    let mut sizes: Vec<f64> = base.iter().map(|p| p.0).collect();
    sizes.sort_by(f64::total_cmp);
    let edge = |i: usize| match i {
        0 => f64::NEG_INFINITY,
        10 => f64::INFINITY,
        _ => sizes[sizes.len() * i / 10],
    };
    let jobs = base.len() as f64;
    let mean = |v: &[(f64, f64)]| v.iter().map(|p| p.1).sum::<f64>() / jobs;
    println!(
        "mean latency: {} {:.3} s, policy{} {:.3} s",
        a.router,
        mean(base),
        a.split_work
            .map(|w| format!(" (jobs of work <= {w}; the rest {})", a.router))
            .unwrap_or_default(),
        mean(pol)
    );
    println!(
        "cold starts per episode: {} {:.2}, policy {:.2}",
        a.router, base_run.cold_starts, pol_run.cold_starts
    );
    let diffs: Vec<f64> = (pol_run.means.iter().zip(&base_run.means))
        .map(|(p, b)| p - b)
        .collect();
    let n = diffs.len() as f64;
    let m = diffs.iter().sum::<f64>() / n;
    let sd = (diffs.iter().map(|d| (d - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
    println!(
        "{} episodes, base seed {}; difference = policy - {}: per-episode paired {:+.3} ± {:.3} s",
        a.episodes,
        a.seed,
        a.router,
        m,
        1.96 * sd / n.sqrt()
    );
    println!(
        "decile  work <=  {:>10}  policy  adds to the mean",
        a.router
    );
    for b in 0..10 {
        let (lo, hi) = (edge(b), edge(b + 1));
        let bucket = |v: &[(f64, f64)]| {
            let xs: Vec<f64> = v
                .iter()
                .filter(|p| p.0 > lo && p.0 <= hi)
                .map(|p| p.1)
                .collect();
            (xs.iter().sum::<f64>(), xs.len().max(1) as f64)
        };
        let ((bs, bn), (ps, pn)) = (bucket(base), bucket(pol));
        println!(
            "{b:>6} {hi:>8.1} {:>11.2} {:>7.2} {:>+16.3}",
            bs / bn,
            ps / pn,
            (ps - bs) / jobs
        );
    }
    Ok(())
}
