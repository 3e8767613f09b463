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

/// Every credit of one episode on node 0 (the only node), credited by `mode`.
fn credits_on_node_0(env: &mut Env, mode: CreditMode) -> Vec<(u64, f64)> {
    env.set_credit_mode(mode);
    env.reset(Some(0));
    while !env.step(0).unwrap().done() {}
    let mut credits = Vec::new();
    env.take_credits(&mut credits);
    credits
}

/// The three jobs of the credit tests below: A (work 2) at 0, B (1) at 0.5, C (1) at 1.
const THREE_JOBS: &str = "arrival_s,input_tokens,output_tokens\n0,2,0\n0.5,1,0\n1,1,0\n";

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
    let mut env = one_unit_node(THREE_JOBS);
    let credits = credits_on_node_0(&mut env, CreditMode::Marginal);
    assert_eq!(credits, vec![(0, 4.5), (1, 3.5), (2, 3.0)]);
    // The same episode credited by latency alone: 2, 2.5, 3.
    let credits = credits_on_node_0(&mut env, CreditMode::Latency);
    assert_eq!(credits, vec![(0, 2.0), (1, 2.5), (2, 3.0)]);
}

/// Displacement credit on the same three jobs: A's hold (0-2) delays both B and C, which start
/// from the queue at 2 and 3 (the queue empties then): 2 + 2 * 2. B's hold delays C: 2.5 + 1.
/// C displaces nobody: 3. Charges for a backlog arrive when its queue empties.
#[test]
fn displacement_credit_charges_a_hold_to_the_whole_backlog_behind_it() {
    let mut env = one_unit_node(THREE_JOBS);
    let credits = credits_on_node_0(&mut env, CreditMode::Displacement);
    assert_eq!(
        credits,
        vec![(0, 2.0), (1, 2.5), (2, 3.0), (0, 4.0), (1, 1.0)]
    );
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

/// Amortized credit: one unit-speed node, a model that takes 1 + 3 GB / 1 GB/s = 4 s to load.
/// Job 0 (t = 0) triggers the load and is answered at 5; jobs 1-3 (t = 10, 20, 30) run warm in
/// 1 s. The load served four jobs, so its decision keeps a quarter of it: refunded 3 s when the
/// episode ends (2 s owed after two jobs, counted among the outstanding credits).
#[test]
fn amortized_credit_shares_a_load_among_the_jobs_it_served() {
    let toml = common::unit_work_scenario(
        "[[node_classes]]\nname = \"n\"\ncount = 1\nspeed = 1.0\nmemory_gb = 10\n",
        "[hosting]\nload_fixed_s = 1\nload_gbps = 1\n",
    )
    .replace("memory_gb = 0\nprefill", "memory_gb = 3\nprefill")
    .replace("[sim]", "[sim]\ninitial_cache = \"empty\"");
    let csv = "arrival_s,input_tokens,output_tokens\n0,1,0\n10,1,0\n20,1,0\n30,1,0\n";
    let mut env = common::env_with_trace(&toml, csv);
    env.set_credit_mode(CreditMode::Amortized);
    env.reset(Some(0));
    let mut open = Vec::new();
    env.step(0).unwrap();
    env.outstanding_credits(&mut open);
    assert!(open.is_empty(), "one job served: the load is all its own");
    env.step(0).unwrap();
    env.outstanding_credits(&mut open);
    assert_eq!(open, vec![(0, -2.0)]);
    while !env.step(0).unwrap().done() {}
    let mut credits = Vec::new();
    env.take_credits(&mut credits);
    assert_eq!(
        credits,
        vec![(0, 5.0), (1, 1.0), (2, 1.0), (3, 1.0), (0, -3.0)]
    );
    assert_eq!(env.metrics().cold_starts, 1.0);
}

/// Copy-value credit: two unit-speed one-slot nodes, a model that takes 4 s to load, held by
/// neither at first. Job 0 (t = 0) loads it on node 0 and is answered at 5; jobs 1 and 2 (t =
/// 10, 20) run there warm in 1 s where node 1 would have loaded first (4 + 1 s): 4 s saved
/// each. Job 3 (t = 30) loads a second copy on node 1; job 4 (t = 40) on node 0 saves nothing,
/// node 1 being warm and idle. Job 5 (t = 50, work 20) holds node 1 until 70; job 6 (t = 51) on
/// node 0 would have waited 19 s there: saved 19 s. Decision 0 is paid 27 s when the episode
/// ends; decision 3 nothing.
#[test]
fn copy_value_credit_pays_a_load_what_its_copy_saved_later_jobs() {
    let toml = common::unit_work_scenario(
        "[[node_classes]]\nname = \"n\"\ncount = 2\nspeed = 1.0\nmemory_gb = 10\n",
        "[hosting]\nload_fixed_s = 1\nload_gbps = 1\n",
    )
    .replace("memory_gb = 0\nprefill", "memory_gb = 3\nprefill")
    .replace("[sim]", "[sim]\ninitial_cache = \"empty\"");
    let csv = "arrival_s,input_tokens,output_tokens\n0,1,0\n10,1,0\n20,1,0\n30,1,0\n40,1,0\n\
               50,20,0\n51,1,0\n";
    let mut env = common::env_with_trace(&toml, csv);
    env.set_credit_mode(CreditMode::CopyValue);
    env.reset(Some(0));
    let mut open = Vec::new();
    for node in [0, 0] {
        env.step(node).unwrap();
    }
    env.outstanding_credits(&mut open);
    assert_eq!(open, vec![(0, -4.0)], "job 1 started warm and saved a load");
    for node in [0, 1, 0, 1] {
        env.step(node).unwrap();
    }
    assert!(env.step(0).unwrap().done());
    let mut credits = Vec::new();
    env.take_credits(&mut credits);
    let jobs = [
        (0, 5.0),
        (1, 1.0),
        (2, 1.0),
        (3, 5.0),
        (4, 1.0),
        (6, 1.0),
        (5, 20.0),
    ];
    assert_eq!(credits[..7], jobs);
    assert_eq!(credits[7..], [(0, -27.0)]);
    assert_eq!(env.metrics().cold_starts, 2.0);
}

/// One episode of seed `seed` routed at random, credited by `mode`: its credits and metrics.
fn random_episode(
    env: &mut Env,
    mode: CreditMode,
    seed: u64,
) -> (Vec<(u64, f64)>, haca_env::EpisodeMetrics) {
    env.set_credit_mode(mode);
    env.reset(Some(seed));
    let mut router = RandomRouter::new(seed);
    let mut credits = Vec::new();
    while !env.step(router.route(env.obs())).unwrap().done() {
        env.take_credits(&mut credits);
    }
    env.take_credits(&mut credits);
    (credits, env.metrics())
}

/// What `credited` holds beyond `base`, which must be a sub-list of it (in order).
fn extras(credited: &[(u64, f64)], base: &[(u64, f64)]) -> Vec<(u64, f64)> {
    let mut rest = base.iter().peekable();
    let extra: Vec<_> = credited
        .iter()
        .filter(|&c| {
            let own = rest.peek() == Some(&c);
            if own {
                rest.next();
            }
            !own
        })
        .copied()
        .collect();
    assert!(rest.next().is_none(), "a job credit went missing");
    extra
}

/// Sharing loads, or paying copies their savings, changes only what load credits add: the
/// same episode (same seed, same routing) credited by `Marginal` and by `Amortized` or
/// `CopyValue` records the same job credits in the same order, plus at most one refund per
/// cold start (amortized: each less than a load's time, and nothing else; copy value also
/// charges each evicting load once).
#[test]
fn load_credits_add_only_refunds_and_eviction_charges_to_marginal_credit() {
    for name in ["haca-churn", "haca-clients"] {
        let sc = common::shipped_scenario(name);
        let longest_load = (0..sc.models.len())
            .map(|m| sc.load_time(m))
            .fold(0.0, f64::max);
        let mut env = Env::new(sc);
        let (marginal, m) = random_episode(&mut env, CreditMode::Marginal, 11);
        for mode in [CreditMode::Amortized, CreditMode::CopyValue] {
            let (credited, m_a) = random_episode(&mut env, mode, 11);
            let cold = m.cold_starts;
            assert_eq!(m, m_a, "{name} {mode:?}: tracking changed the episode");
            let extra = extras(&credited, &marginal);
            let refunds = extra.iter().filter(|c| c.1 < 0.0).count() as f64;
            assert!(cold > 0.0 && refunds > 0.0, "{name} {mode:?}: no refund");
            assert!(refunds <= cold, "{name} {mode:?}");
            assert!(extra.len() as f64 <= 2.0 * cold, "{name} {mode:?}");
            if mode == CreditMode::Amortized {
                assert!(
                    extra.iter().all(|r| r.1 < 0.0 && -r.1 < longest_load),
                    "{name}: {extra:?} (loads take at most {longest_load} s)"
                );
            }
        }
    }
}

/// Displacement only adds charges: per decision, its credits total at least the job's own
/// time (the `Latency` credit of the same episode), and tracking them changes nothing else.
#[test]
fn displacement_credit_adds_only_charges_to_latency_credit() {
    use std::collections::HashMap;
    for name in ["haca-churn", "haca-clients"] {
        let mut env = Env::new(common::shipped_scenario(name));
        let mut run = |mode| {
            let (credits, metrics) = random_episode(&mut env, mode, 5);
            let mut per: HashMap<u64, f64> = HashMap::new();
            credits
                .iter()
                .for_each(|&(d, s)| *per.entry(d).or_default() += s);
            (per, metrics)
        };
        let (latency, m) = run(CreditMode::Latency);
        let (displaced, m_d) = run(CreditMode::Displacement);
        assert_eq!(m, m_d, "{name}: credit tracking changed the episode");
        assert_eq!(latency.len(), displaced.len(), "{name}");
        let extra: f64 = latency.iter().map(|(d, s)| displaced[d] - s).sum();
        assert!(
            latency.iter().all(|(d, s)| displaced[d] >= s - 1e-9),
            "{name}"
        );
        assert!(extra > 0.0, "{name}: no backlog displaced");
    }
}

/// The externality weight scales only what a job's hold did to others: the three jobs above
/// at weight 0.5 give marginal credits 2 + 2.5 / 2, 2.5 + 1 / 2, 3 and displacement charges
/// of 2 and 0.5 where weight 1 gave 4 and 1.
#[test]
fn the_externality_weight_scales_the_charge_for_others_waiting() {
    let mut env = one_unit_node(THREE_JOBS);
    env.set_externality_weight(0.5);
    for (mode, want) in [
        (CreditMode::Marginal, vec![(0, 3.25), (1, 3.0), (2, 3.0)]),
        (
            CreditMode::Displacement,
            vec![(0, 2.0), (1, 2.5), (2, 3.0), (0, 2.0), (1, 0.5)],
        ),
    ] {
        assert_eq!(credits_on_node_0(&mut env, mode), want, "{mode:?}");
    }
}

/// A snapshot taken before the first reset restores to a fresh env; the credit settings made
/// on the env stay (a trainer sets them, then restores its envs from a checkpoint).
#[test]
fn restoring_a_fresh_snapshot_keeps_the_credit_settings() {
    let mut env = one_unit_node(THREE_JOBS);
    let snap = env.snapshot();
    env.set_credit_mode(CreditMode::Marginal);
    env.set_externality_weight(0.5);
    env.restore(&snap).unwrap();
    env.reset(Some(0));
    while !env.step(0).unwrap().done() {}
    let mut credits = Vec::new();
    env.take_credits(&mut credits);
    assert_eq!(credits, vec![(0, 3.25), (1, 3.0), (2, 3.0)]);
}
