//! `haca-eval bench env`: routing decisions per second on a scenario.

use std::sync::Arc;
use std::time::Instant;

use haca_env::{AutoresetMode, Env, Scenario, VecEnv};
use haca_policy::{RoundRobinRouter, Router};
use rayon::prelude::*;
use serde_json::{json, Value};

/// Decisions per second of one env driven by round-robin.
fn single(sc: &Arc<Scenario>, decisions: u64) -> f64 {
    let mut env = Env::new(sc.clone());
    let mut router = RoundRobinRouter::default();
    env.reset(Some(0));
    let start = Instant::now();
    for _ in 0..decisions {
        let a = router.route(env.obs());
        if env.step(a).expect("round-robin is legal").done() {
            env.reset(None);
        }
    }
    decisions as f64 / start.elapsed().as_secs_f64()
}

/// Decisions per second of a VecEnv (features encoded every step) stepped inside the pool.
fn vectorized(sc: &Arc<Scenario>, envs: usize, steps: usize) -> f64 {
    haca_env::in_pool(|| {
        let mut venv = VecEnv::new(sc.clone(), envs, AutoresetMode::SameStep);
        venv.reset(0);
        let mut routers = vec![RoundRobinRouter::default(); envs];
        let mut actions = vec![0; envs];
        let start = Instant::now();
        for _ in 0..steps {
            for (e, r) in routers.iter_mut().enumerate() {
                actions[e] = r.route(venv.view(e));
            }
            venv.step(&actions).expect("round-robin is legal");
        }
        (envs * steps) as f64 / start.elapsed().as_secs_f64()
    })
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Measures single-thread, all-threads (independent envs) and VecEnv decisions per second,
/// medians of `reps` repetitions, on rayon's current pool.
pub fn bench_env(sc: &Arc<Scenario>, decisions: u64, reps: usize) -> Value {
    let threads = rayon::current_num_threads();
    let one = median((0..reps).map(|_| single(sc, decisions)).collect());
    let all = median(
        (0..reps)
            .map(|_| {
                let start = Instant::now();
                (0..threads).into_par_iter().for_each(|_| {
                    single(sc, decisions / threads as u64);
                });
                decisions as f64 / start.elapsed().as_secs_f64()
            })
            .collect(),
    );
    let envs = 64 * threads;
    let vec_env = median(
        (0..reps)
            .map(|_| vectorized(sc, envs, (decisions as usize / envs).max(1)))
            .collect(),
    );
    json!({
        "scenario": sc.name,
        "router": "round_robin",
        "threads": threads,
        "repetitions": reps,
        "decisions_per_repetition": decisions,
        "single_thread_decisions_per_s": one,
        "all_threads_decisions_per_s": all,
        "vec_env_decisions_per_s": vec_env,
        "vec_env_envs": envs,
        "scaling": all / one,
    })
}
