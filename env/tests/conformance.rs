//! Every shipped scenario passes the conformance check, conserves jobs at every step, and runs
//! under both simple routers.

mod common;

use std::sync::Arc;

use haca_env::{check_env, run_episode, Env, Scenario};
use haca_policy::{RandomRouter, RoundRobinRouter};

#[test]
fn every_shipped_scenario_passes_check_env() {
    let paths = common::shipped();
    let names: Vec<String> = paths
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "park",
        "haca-small",
        "haca-bursty",
        "haca-zkml",
        "haca-churn",
        "haca-large",
        "trace-azure-conv",
        "trace-mooncake",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "scenario {expected} is missing: {names:?}"
        );
    }
    for path in paths {
        let sc = Arc::new(Scenario::load(&path).unwrap_or_else(|e| panic!("{e}")));
        // Full episodes where they are short; the first 3,000 decisions of the long ones.
        let report = check_env(sc.clone(), 7, 2, 3_000).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report.episodes, 2);
        assert!(report.decisions > 0, "{}", sc.name);
    }
}

#[test]
fn jobs_are_conserved_at_every_step_across_failures() {
    let sc = common::shipped_scenario("haca-churn");
    let mut env = Env::new(sc.clone());
    let mut router = RandomRouter::new(3);
    let mut total_retries = 0.0;
    for ep in 0..3 {
        env.reset((ep == 0).then_some(11));
        loop {
            let c = env.job_counts();
            assert_eq!(
                c.arrived,
                c.answered + c.routing + c.queued + c.in_slots + c.failing,
                "{c:?}"
            );
            assert_eq!(c.answered, c.finalized + c.verifying, "{c:?}");
            assert_eq!(env.info().jobs_in_system as u64, c.arrived - c.answered);
            use haca_policy::Router;
            let a = router.route(env.obs());
            if env.step(a).unwrap().done() {
                break;
            }
        }
        let m = env.info().metrics.unwrap();
        let c = env.job_counts();
        assert_eq!(c.arrived, sc.jobs_per_episode);
        assert_eq!(c.answered, c.arrived, "no job is lost");
        assert_eq!(c.finalized, c.arrived, "every job is verified and settled");
        // Every retry is one more decision than there were arrivals.
        assert_eq!(m.decisions, m.jobs_arrived + m.retries);
        total_retries += m.retries;
    }
    assert!(
        total_retries > 0.0,
        "the churn scenario should make nodes fail"
    );
}

#[test]
fn both_simple_routers_finish_every_job_on_every_shipped_scenario() {
    for path in common::shipped() {
        let sc = Arc::new(Scenario::load(&path).unwrap());
        if sc.jobs_per_episode > 20_000 {
            continue; // haca-large: covered by check_env's bounded run
        }
        let mut env = Env::new(sc.clone());
        for m in [
            run_episode(&mut env, &mut RoundRobinRouter::default(), Some(1)).unwrap(),
            run_episode(&mut env, &mut RandomRouter::new(1), Some(1)).unwrap(),
        ] {
            assert_eq!(m.jobs_finished, sc.jobs_per_episode as f64, "{}", sc.name);
            assert!(m.mean_latency_s > 0.0 && m.p99_latency_s >= m.p50_latency_s);
            assert!((0.0..=1.0).contains(&m.idle_capacity_frac));
            assert!(m.stranded_idle_frac <= m.idle_capacity_frac + 1e-12);
            assert!((0.0..1.0).contains(&m.busy_gini));
        }
    }
}

#[test]
fn same_seed_same_metrics_and_routing_does_not_shift_the_workload() {
    let sc = common::shipped_scenario("haca-churn");
    let mut a = Env::new(sc.clone());
    let mut b = Env::new(sc.clone());
    let ma = run_episode(&mut a, &mut RandomRouter::new(5), Some(42)).unwrap();
    let mb = run_episode(&mut b, &mut RandomRouter::new(5), Some(42)).unwrap();
    assert_eq!(ma, mb);
    // Common random numbers: another router sees the same arrivals (times, sizes, models).
    let arrivals = |env: &mut Env, rr: bool| {
        let mut seen = vec![];
        let mut r1 = RoundRobinRouter::default();
        let mut r2 = RandomRouter::new(9);
        env.reset(Some(42));
        loop {
            let v = env.obs();
            if v.job.retries == 0 {
                seen.push((
                    v.now.to_bits(),
                    v.job.input_tokens,
                    v.job.model,
                    v.job.verification,
                ));
            }
            use haca_policy::Router;
            let act = if rr { r1.route(v) } else { r2.route(v) };
            if env.step(act).unwrap().done() {
                return seen;
            }
        }
    };
    assert_eq!(arrivals(&mut a, true), arrivals(&mut b, false));
}
