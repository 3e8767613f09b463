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

/// A network of `n` nodes in varied states, for timing a policy.
fn random_view(n: usize, rng: &mut haca_policy::Rng) -> haca_policy::ClusterView {
    use haca_policy::{ClusterView, JobView, NodeView, Scales};
    let nodes: Vec<NodeView> = (0..n)
        .map(|_| NodeView {
            up: true,
            speed: 0.4 + rng.uniform(),
            slots: 1 + rng.below(8) as u32,
            busy_slots: rng.below(4) as u32,
            queue_len: rng.below(6) as u32,
            work_left: rng.uniform() * 30.0,
            memory_gb: 80.0,
            tee: rng.uniform() < 0.3,
            zk: rng.uniform() < 0.1,
            model_ready: rng.uniform() < 0.5,
            load_s: 10.0,
            prefix_hit: 0,
            own_jobs: 0,
            own_work: 0.0,
            own_answered: 0,
            own_answered_work: 0.0,
        })
        .collect();
    let mask = (0..n).map(|i| i == 0 || rng.uniform() < 0.9).collect();
    ClusterView {
        now: 100.0,
        observed_at: 100.0,
        nodes,
        mask,
        job: JobView {
            est_work: 3.0,
            input_tokens: 1000,
            output_tokens_est: 200.0,
            ..Default::default()
        },
        jobs_in_system: n as u32,
        scales: Scales::default(),
        clients: 1,
        client_share: 1.0,
        ..Default::default()
    }
}

/// Times `PolicyRouter::route` (feature encoding, forward pass and argmax) one decision at a time
/// on networks of each size in `nodes`, on the calling thread: p50 and p99 latency, and heap
/// allocations per decision as counted by `allocations` (a counter the binary's global
/// allocator keeps).
pub fn bench_policy(
    policy: &std::sync::Arc<haca_policy::Policy>,
    nodes: &[usize],
    decisions: usize,
    allocations: &dyn Fn() -> u64,
) -> Value {
    use haca_policy::{PolicyRouter, Selection};
    let mut rows = Vec::new();
    for &n in nodes {
        let mut rng = haca_policy::Rng::new(n as u64);
        let views: Vec<_> = (0..64).map(|_| random_view(n, &mut rng)).collect();
        let mut router = PolicyRouter::new(policy.clone(), Selection::Greedy, 0);
        for v in &views {
            router.route(v); // warm-up: buffers grow to this size once
        }
        let mut times = Vec::with_capacity(decisions);
        let mut sink = 0usize;
        let before = allocations();
        for k in 0..decisions {
            let v = &views[k % views.len()];
            let t = Instant::now();
            sink = sink.wrapping_add(router.route(v));
            times.push(t.elapsed().as_secs_f64() * 1e6);
        }
        let allocs = allocations() - before;
        std::hint::black_box(sink);
        times.sort_by(f64::total_cmp);
        let pct = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        rows.push(json!({
            "nodes": n,
            "decisions": decisions,
            "p50_us": pct(0.5),
            "p99_us": pct(0.99),
            "mean_us": times.iter().sum::<f64>() / times.len() as f64,
            "allocations_per_decision": allocs as f64 / decisions as f64,
        }));
    }
    json!({
        "architecture": {
            "hidden": policy.info.arch.hidden,
            "layers": policy.info.arch.layers,
            "parameters": policy.info.arch.parameter_count(),
        },
        "results": rows,
    })
}
