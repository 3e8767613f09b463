//! Properties over random valid scenarios (node classes, models, loads, arrival processes,
//! churn, staleness, size visibility, randomization of network size, hardware, staleness and
//! failures), drawn from a seeded generator:
//! every one loads, passes `check_env` (bit-identical trajectories for a seed, a legal node at
//! every decision, finite features and rewards, rewards summing to the return), conserves
//! every job at every step, and gives the same metrics for the same seed.

mod common;

use std::fmt::Write as _;
use std::sync::Arc;

use haca_env::{check_env, run_episode, Env};
use haca_policy::{router_by_name, Rng};

fn pick<'a>(rng: &mut Rng, xs: &[&'a str]) -> &'a str {
    xs[rng.below(xs.len() as u64) as usize]
}

fn between(rng: &mut Rng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.uniform()
}

/// A random scenario that validation accepts: the first class is TEE- and zk-capable and holds
/// every model, so any share of verification modes is servable.
fn scenario_text(rng: &mut Rng) -> String {
    let mut t = String::new();
    let models = 1 + rng.below(4) as usize;
    let mems: Vec<f64> = (0..models)
        .map(|_| between(rng, 4.0, 120.0).round())
        .collect();
    let biggest = mems.iter().cloned().fold(0.0, f64::max);
    let zkml = if rng.below(3) == 0 { 0.05 } else { 0.0 };
    let tee = if rng.below(2) == 0 { 0.25 } else { 0.0 };
    let _ = writeln!(
        t,
        "name = \"prop\"\n[episode]\njobs = {}",
        50 + rng.below(400)
    );
    let _ = writeln!(
        t,
        "[sim]\nscrape_interval_s = {}\nsize_visibility = \"{}\"",
        pick(rng, &["0", "0.5", "5"]),
        pick(rng, &["exact", "estimate", "hidden"])
    );
    for (i, m) in mems.iter().enumerate() {
        let _ = writeln!(
            t,
            "[[models]]\nname = \"m{i}\"\nmemory_gb = {m}\nprefill_cost = {:.6}\ndecode_cost = {:.4}\nzkml = {}",
            between(rng, 0.00001, 0.0005),
            between(rng, 0.002, 0.05),
            i == 0 && zkml > 0.0
        );
    }
    let _ = writeln!(
        t,
        "[workload]\nzipf = {:.2}\nvanilla = {}\ntee = {tee}\nzkml = {zkml}",
        between(rng, 0.0, 1.5),
        1.0 - tee - zkml
    );
    let _ = writeln!(
        t,
        "input_tokens = {{ dist = \"lognormal\", mean = {}, cv = 1.0 }}",
        100 + rng.below(2000)
    );
    let _ = writeln!(
        t,
        "output_tokens = {{ dist = \"lognormal\", mean = {}, cv = 1.0 }}",
        20 + rng.below(400)
    );
    let process = pick(rng, &["poisson", "mmpp", "diurnal"]);
    let _ = writeln!(
        t,
        "[arrivals]\nprocess = \"{process}\"\nload = {:.2}",
        between(rng, 0.3, 0.95)
    );
    if process == "mmpp" {
        let _ = writeln!(
            t,
            "high_mult = 3.0\nlow_mult = 0.5\nmean_high_s = 30\nmean_low_s = 90"
        );
    }
    if process == "diurnal" {
        let _ = writeln!(t, "period_s = 600\namplitude = 0.5");
    }
    let classes = 1 + rng.below(4) as usize;
    let churn = rng.below(3) == 0;
    for c in 0..classes {
        let memory = if c == 0 {
            biggest.max(40.0)
        } else {
            between(rng, 16.0, 320.0).round()
        };
        let _ = writeln!(
            t,
            "[[node_classes]]\nname = \"c{c}\"\ncount = {}\nspeed = {:.2}\nslots = {}\nmemory_gb = {memory}\ntee = {}\nzk = {}",
            1 + rng.below(5),
            between(rng, 0.2, 2.0),
            1 + rng.below(4),
            c == 0 || rng.below(2) == 0,
            c == 0
        );
        if churn && c > 0 {
            let _ = writeln!(
                t,
                "mtbf_s = {}\nmttr_s = {}",
                200 + rng.below(2000),
                10 + rng.below(100)
            );
        }
    }
    if rng.below(4) == 0 {
        let _ = writeln!(
            t,
            "[randomize]\nnode_scale = [0.5, 2.0]\nclass_scale = [0.5, 2.0]\nload = [0.4, 0.9]"
        );
        if rng.below(2) == 0 {
            // Hardware, staleness and failures drawn per episode too.
            let _ = writeln!(
                t,
                "class_speed = [0.5, 2.0]\nclass_slots = [0.5, 2.0]\nclass_memory = [1.0, 1.5]\nscrape_interval_s = [0, 1, 5]\nchurn = 0.3\nmtbf_s = [300, 3000]\nmttr_s = [10, 100]"
            );
        }
    }
    t
}

#[test]
fn random_valid_scenarios_pass_check_env_conserve_jobs_and_are_deterministic() {
    let mut rng = Rng::new(2026);
    for case in 0..128 {
        let text = scenario_text(&mut rng);
        let sc = common::scenario_with_trace(&text, None)
            .unwrap_or_else(|e| panic!("case {case} does not load: {e}\n{text}"));
        let sc = Arc::new(sc);
        check_env(sc.clone(), case, 2, 600).unwrap_or_else(|e| panic!("case {case}: {e}\n{text}"));

        // Conservation at every step: each arrived job is in exactly one place.
        let mut env = Env::new(sc.clone());
        let mut router = router_by_name("sed", 0).unwrap();
        env.reset(Some(case));
        loop {
            let c = env.job_counts();
            // Verification follows the answer: a verifying job is answered, not yet final.
            let placed = c.answered + c.routing + c.queued + c.in_slots + c.failing;
            assert_eq!(c.arrived, placed, "case {case}: {c:?}\n{text}");
            assert_eq!(c.answered, c.finalized + c.verifying, "case {case}: {c:?}");
            let action = router.route(env.obs());
            if env.step(action).unwrap().done() {
                // Drained: every job answered and final.
                let c = env.job_counts();
                let placed = c.answered + c.routing + c.queued + c.in_slots + c.failing;
                assert_eq!(c.arrived, placed, "case {case} at the end: {c:?}");
                assert_eq!(c.answered, c.finalized + c.verifying, "case {case}: {c:?}");
                break;
            }
        }

        // Same seed, same metrics.
        let episode = |seed| {
            let mut env = Env::new(sc.clone());
            let mut r = router_by_name("jsq", 0).unwrap();
            let m = run_episode(&mut env, &mut r, Some(seed)).unwrap();
            // Bits, so that a metric that does not apply (NaN) compares equal to itself.
            m.values().iter().map(|v| v.to_bits()).collect::<Vec<u64>>()
        };
        assert_eq!(episode(case), episode(case), "case {case}\n{text}");
    }
}
