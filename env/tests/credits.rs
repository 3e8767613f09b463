//! Per-job credits: an episode's credits are its jobs integral, job by job.

mod common;

use haca_env::{CreditMode, Env};
use haca_policy::{RandomRouter, Router};

/// Runs one episode with credits on; returns (sum of credits, sum of job-seconds from the
/// steps' `info.job_seconds`, the credits).
fn episode(env: &mut Env, seed: u64) -> (f64, f64, Vec<(u64, f64)>) {
    env.set_credit_mode(CreditMode::Latency);
    env.reset(Some(seed));
    let mut router = RandomRouter::new(seed);
    let (mut credits, mut job_seconds) = (Vec::new(), 0.0);
    loop {
        let a = router.route(env.obs());
        let step = env.step(a).unwrap();
        job_seconds += step.info.job_seconds;
        let done = step.done();
        env.take_credits(&mut credits);
        if done {
            break;
        }
    }
    (credits.iter().map(|c| c.1).sum(), job_seconds, credits)
}

#[test]
fn credits_sum_to_the_jobs_integral_with_and_without_failures() {
    for name in ["haca-small", "haca-churn"] {
        let mut env = Env::new(common::shipped_scenario(name));
        let (credits, job_seconds, list) = episode(&mut env, 3);
        assert!(
            (credits - job_seconds).abs() < 1e-6 * job_seconds,
            "{name}: credits {credits} vs jobs integral {job_seconds}"
        );
        // The reward's jobs part is the same integral (weight 1, norm 1 in these scenarios).
        let ret = env.metrics().episode_return;
        assert!(
            (ret + job_seconds).abs() < 1e-6 * job_seconds,
            "{name}: {ret}"
        );
        let decisions = env.info().decisions;
        assert!(list.iter().all(|&(d, s)| d < decisions && s >= 0.0));
        if name == "haca-churn" {
            assert!(
                list.len() as u64 > env.metrics().jobs_finished as u64,
                "failures hand jobs back: more placements than answers"
            );
        }
    }
}

/// One unit-speed, one-slot node fed by the trace `csv` (work in units of input tokens).
fn one_unit_node(csv: &str) -> Env {
    let toml = common::unit_work_scenario(
        "[[node_classes]]\nname = \"n\"\ncount = 1\nspeed = 1.0\nmemory_gb = 0\n",
        "",
    );
    common::env_with_trace(&toml, csv)
}

/// Two jobs of work 5 and 3 on one unit-speed node, at t = 0 and t = 1: the first is answered
/// at 5 (credit 5), the second waits and is answered at 8 (credit 7).
#[test]
fn credits_are_each_jobs_own_time_in_the_system() {
    let csv = "arrival_s,input_tokens,output_tokens\n0,5,0\n1,3,0\n";
    let mut env = one_unit_node(csv);
    env.set_credit_mode(CreditMode::Latency);
    env.reset(Some(0));
    let mut credits = Vec::new();
    env.step(0).unwrap();
    env.take_credits(&mut credits);
    assert!(credits.is_empty(), "nothing answered by t = 1");
    let mut open = Vec::new();
    env.outstanding_credits(&mut open);
    assert_eq!(open, vec![(0, 1.0)], "job 0 has been in the system 1 s");
    let last = env.step(0).unwrap();
    assert!(last.terminated);
    env.take_credits(&mut credits);
    assert_eq!(credits, vec![(0, 5.0), (1, 7.0)]);
}

/// Marginal credit on one unit-speed slot: A (work 2) at 0, B (1) at 0.5, C (1) at 1. A runs
/// 0-2 while B waits 1.5 s and C 1 s behind it: 2 + 2.5. B runs 2-3 while C waits 1 s: 2.5 + 1.
/// C runs 3-4 with nobody behind: 3.
#[test]
fn marginal_credit_adds_the_waiting_a_job_imposed_on_the_queue() {
    let csv = "arrival_s,input_tokens,output_tokens\n0,2,0\n0.5,1,0\n1,1,0\n";
    let mut env = one_unit_node(csv);
    env.set_credit_mode(CreditMode::Marginal);
    env.reset(Some(0));
    let mut credits = Vec::new();
    while !env.step(0).unwrap().done() {}
    env.take_credits(&mut credits);
    assert_eq!(credits, vec![(0, 4.5), (1, 3.5), (2, 3.0)]);
    // The same episode credited by latency alone: 2, 2.5, 3.
    env.set_credit_mode(CreditMode::Latency);
    env.reset(Some(0));
    credits.clear();
    while !env.step(0).unwrap().done() {}
    env.take_credits(&mut credits);
    assert_eq!(credits, vec![(0, 2.0), (1, 2.5), (2, 3.0)]);
}

/// With registry liveness, a job sent to a dead listed node waits out the fail timeout: it is
/// still owed to the decision that sent it, so it is among the outstanding credits, as every
/// queued and running job is.
#[test]
fn outstanding_credits_cover_every_placed_job_failing_ones_included() {
    let mut env = Env::new(common::shipped_scenario("haca-clients"));
    env.set_credit_mode(CreditMode::Latency);
    let (mut open, mut seen_failing) = (Vec::new(), 0);
    for seed in 0..4 {
        env.reset(Some(seed));
        let mut router = RandomRouter::new(seed);
        let mut step = 0u64;
        loop {
            if step % 16 == 0 {
                open.clear();
                env.outstanding_credits(&mut open);
                let c = env.job_counts();
                assert_eq!(open.len() as u64, c.queued + c.in_slots + c.failing);
                seen_failing += c.failing;
            }
            step += 1;
            let a = router.route(env.obs());
            if env.step(a).unwrap().done() {
                break;
            }
        }
    }
    assert!(seen_failing > 0, "no request met a dead listed node");
}
