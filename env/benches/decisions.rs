//! Routing decisions per second: single-threaded `Env` and `VecEnv` on all cores.
//!
//! cargo bench -p haca-env [-- --quick]
//!
//! Each figure is the median of several timed repetitions (these machines are noisy); the VecEnv
//! figure is also given as a ratio to the single-threaded one measured in the same run.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use haca_env::{AutoresetMode, Env, Scenario, VecEnv};
use haca_policy::{ObsBatch, RoundRobinRouter, Router};

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Decisions per second of one env driven by round-robin, optionally encoding features each step
/// (what a learned policy needs).
fn single(sc: &Arc<Scenario>, decisions: u64, encode: bool) -> f64 {
    let mut env = Env::new(sc.clone());
    let mut router = RoundRobinRouter::default();
    let mut obs = ObsBatch::new(1, env.max_nodes());
    env.reset(Some(0));
    let start = Instant::now();
    let mut done = 0;
    while done < decisions {
        if encode {
            env.encode(obs.get_mut(0));
        }
        let a = router.route(env.obs());
        let over = env.step(a).expect("round-robin is legal").done();
        done += 1;
        if over {
            env.reset(None);
            router.reset(0);
        }
    }
    done as f64 / start.elapsed().as_secs_f64()
}

/// Decisions per second of a VecEnv whose actions are the first legal node after a per-env
/// pointer (round-robin on the mask buffer, as a trainer reads it).
fn vectorized(sc: &Arc<Scenario>, envs: usize, steps: usize) -> f64 {
    let mut venv = VecEnv::new(sc.clone(), envs, AutoresetMode::SameStep);
    venv.reset(0);
    let mn = venv.max_nodes();
    let mut next = vec![0usize; envs];
    let mut actions = vec![0usize; envs];
    let start = Instant::now();
    for _ in 0..steps {
        for e in 0..envs {
            let mask = venv.obs.get(e).mask;
            // The first legal node at or after the pointer, wrapping once (no division per
            // candidate: the harness must cost little next to a step).
            let a = (next[e]..mn)
                .chain(0..next[e])
                .find(|&i| mask[i])
                .expect("a legal node");
            next[e] = if a + 1 == mn { 0 } else { a + 1 };
            actions[e] = a;
        }
        venv.step(&actions).expect("legal");
    }
    (envs * steps) as f64 / start.elapsed().as_secs_f64()
}

/// The ceiling for VecEnv: one independent env per thread, no synchronization at all.
fn independent(sc: &Arc<Scenario>, threads: usize, decisions: u64) -> f64 {
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| single(sc, decisions / threads as u64, true));
        }
    });
    decisions as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let reps = if quick { 3 } else { 7 };
    let scale = if quick { 1 } else { 5 };
    let threads = rayon::current_num_threads();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    println!(
        "haca-env decisions per second: median of {reps} repetitions, {threads} rayon threads"
    );
    println!(
        "{:<12} {:>10} {:>13} {:>13} {:>13} {:>10} {:>13}",
        "scenario", "1 thread", "1 thread+enc", "VecEnv", "VecEnv pool", "pool/1", "independent/1"
    );
    let envs_per_thread: usize = std::env::var("HACA_BENCH_ENVS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    for name in ["haca-small", "park", "haca-large", "haca-clients"] {
        let sc =
            Arc::new(Scenario::load(dir.join(format!("{name}.toml"))).expect("shipped scenario"));
        let per = if name == "haca-large" {
            40_000
        } else {
            400_000
        } * scale;
        let s = median((0..reps).map(|_| single(&sc, per, false)).collect());
        let se = median((0..reps).map(|_| single(&sc, per, true)).collect());
        let envs = envs_per_thread * threads;
        let steps = per as usize / envs;
        let v = median((0..reps).map(|_| vectorized(&sc, envs, steps)).collect());
        let vp = median(
            (0..reps)
                .map(|_| haca_env::in_pool(|| vectorized(&sc, envs, steps)))
                .collect(),
        );
        let ind = median((0..reps).map(|_| independent(&sc, threads, per)).collect());
        println!(
            "{name:<12} {:>8.2} M {:>11.2} M {:>11.2} M {:>11.2} M {:>9.2}x {:>12.2}x",
            s / 1e6,
            se / 1e6,
            v / 1e6,
            vp / 1e6,
            vp / se,
            ind / se
        );
    }
    println!(
        "VecEnv encodes features every step, so ratios are to `1 thread+enc`. `VecEnv` is stepped from\nthe main thread, `VecEnv pool` from inside rayon's pool (haca_env::in_pool), as a trainer should."
    );
    println!(
        "`independent` runs one env per thread with no synchronization: the machine's own ceiling."
    );
    println!("target (DESIGN section 8): at least 5 M decisions/s per core on haca-small; VecEnv near-linear in cores");
}
