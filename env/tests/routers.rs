//! Every router on every shipped scenario, and the known ordering of heuristics on Park.

mod common;

use std::sync::Arc;

use haca_env::{run_episode, Env, Scenario};
use haca_policy::{router_by_name, ROUTER_NAMES};

#[test]
fn every_router_is_legal_and_finishes_every_job_on_every_shipped_scenario() {
    for path in common::shipped() {
        let sc = Arc::new(Scenario::load(&path).unwrap());
        if sc.jobs_per_episode > 20_000 {
            continue; // haca-large's 100k-job episodes: check_env covers its first decisions
        }
        let mut env = Env::new(sc.clone());
        for name in ROUTER_NAMES {
            let mut router = router_by_name(name, 1).unwrap();
            // run_episode fails on any illegal action.
            let m = run_episode(&mut env, &mut router, Some(3))
                .unwrap_or_else(|e| panic!("{}: {e}", sc.name));
            assert_eq!(
                m.jobs_finished, sc.jobs_per_episode as f64,
                "{} {name}",
                sc.name
            );
            let c = env.job_counts();
            assert_eq!(c.finalized, c.arrived, "{} {name}", sc.name);
        }
    }
}

#[test]
fn on_park_sed_and_lwl_beat_random_by_far_and_jsq_lies_between() {
    let sc = common::shipped_scenario("park");
    let mut env = Env::new(sc);
    let mean_latency = |env: &mut Env, name: &str| {
        let mut r = router_by_name(name, 0).unwrap();
        let eps = 12;
        (0..eps)
            .map(|ep| {
                run_episode(env, &mut r, (ep == 0).then_some(100))
                    .unwrap()
                    .mean_latency_s
            })
            .sum::<f64>()
            / eps as f64
    };
    let random = mean_latency(&mut env, "random");
    let jsq = mean_latency(&mut env, "jsq");
    let sed = mean_latency(&mut env, "sed");
    let lwl = mean_latency(&mut env, "lwl");
    assert!(sed < random / 4.0, "sed {sed} vs random {random}");
    assert!(lwl < random / 4.0, "lwl {lwl} vs random {random}");
    assert!(
        jsq < random && jsq > sed.min(lwl),
        "jsq {jsq} between (sed {sed}, lwl {lwl}) and random {random}"
    );
}

#[test]
fn pooled_reference_on_a_hand_built_case() {
    // Two unit-speed nodes; work 10 at t=0 and work 2 at t=1. The central queue sends the second
    // job to the idle node at once: latencies 10 and 2, nothing stranded, node 1 idle for
    // [0, 1] and [3, 10]: 8 of 20 capacity-seconds.
    let csv = "arrival_s,input_tokens,output_tokens\n0,10,0\n1,2,0\n";
    let toml = common::unit_work_scenario(
        "[[node_classes]]\nname = \"n\"\ncount = 2\nspeed = 1.0\nmemory_gb = 0\n",
        "",
    );
    let mut env = common::env_with_trace(&toml, csv);
    let m = env.run_pooled(Some(0)).unwrap();
    assert_eq!(m.mean_latency_s, 6.0);
    assert_eq!(m.stranded_idle_frac, 0.0);
    assert_eq!(m.idle_capacity_frac, 0.4);
    assert_eq!(m.decisions, 2.0);
    assert_eq!(m.episode_return, -12.0);
    // The env still routes afterwards.
    env.reset(Some(0));
    assert!(!env.step(0).unwrap().done());
}

#[test]
fn pooled_has_zero_stranded_idle_and_finishes_every_job_on_every_shipped_scenario() {
    for path in common::shipped() {
        let sc = Arc::new(Scenario::load(&path).unwrap());
        if sc.jobs_per_episode > 20_000 {
            continue;
        }
        let mut env = Env::new(sc.clone());
        let m = env.run_pooled(Some(3)).unwrap();
        assert_eq!(m.stranded_idle_frac, 0.0, "{}", sc.name);
        assert_eq!(m.jobs_finished, sc.jobs_per_episode as f64, "{}", sc.name);
        let c = env.job_counts();
        assert_eq!(c.finalized, c.arrived, "{}", sc.name);
        // Same workload as a routed episode with the same seed.
        let routed =
            run_episode(&mut env, &mut router_by_name("sed", 0).unwrap(), Some(3)).unwrap();
        assert_eq!(routed.jobs_arrived, m.jobs_arrived);
        assert!(
            routed.stranded_idle_frac > m.stranded_idle_frac,
            "{}: routing strands more than the pooled queue",
            sc.name
        );
    }
}
