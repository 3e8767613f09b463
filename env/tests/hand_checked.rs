//! Tiny scenarios whose every number can be worked out by hand.

mod common;

use common::{env_with_trace, unit_work_scenario};
use haca_env::Env;

const ONE_NODE: &str = r#"
[[node_classes]]
name = "n"
count = 1
speed = 1.0
slots = 1
memory_gb = 0
"#;

const TWO_NODES_1_2: &str = r#"
[[node_classes]]
name = "slow"
count = 1
speed = 1.0
memory_gb = 0
[[node_classes]]
name = "fast"
count = 1
speed = 2.0
memory_gb = 0
"#;

/// Routes every decision to `pick(decision)` and returns the episode's rewards.
fn drive(env: &mut Env, mut pick: impl FnMut(u64) -> usize) -> Vec<f64> {
    env.reset(Some(0));
    let mut rewards = vec![];
    loop {
        let d = env.info().decisions;
        let step = env.step(pick(d)).unwrap();
        rewards.push(step.reward);
        if step.done() {
            assert!(step.terminated && !step.truncated);
            return rewards;
        }
    }
}

#[test]
fn one_slot_fifo_latencies_are_sums_of_works() {
    // Works 5, 3, 2 arriving at 0, 1, 2 on one unit-speed slot: finishes at 5, 8, 10.
    let csv = "arrival_s,input_tokens,output_tokens\n0,5,0\n1,3,0\n2,2,0\n";
    let mut env = env_with_trace(&unit_work_scenario(ONE_NODE, ""), csv);
    let rewards = drive(&mut env, |_| 0);
    let m = env.info().metrics.unwrap();
    assert_eq!(m.jobs_finished, 3.0);
    assert_eq!(m.episode_time_s, 10.0);
    assert!((m.mean_latency_s - (5.0 + 7.0 + 8.0) / 3.0).abs() < 1e-12);
    assert_eq!(m.p50_latency_s, 7.0);
    // Queueing delay = latency - own work: 0, 4, 6.
    assert!((m.mean_queueing_delay_s - 10.0 / 3.0).abs() < 1e-12);
    // Slowdown against the only (unit-speed) node: 5/5, 7/3, 8/2.
    assert!((m.mean_slowdown - (1.0 + 7.0 / 3.0 + 4.0) / 3.0).abs() < 1e-12);
    // The slot is busy from 0 to 10: no idle capacity, nothing stranded.
    assert_eq!(m.idle_capacity_frac, 0.0);
    assert_eq!(m.stranded_idle_frac, 0.0);
    // Return = -(sum of latencies) = -20, split per decision: [0,1] one job, [1,2] two, rest.
    assert_eq!(rewards, [-1.0, -2.0, -17.0]);
    assert_eq!(m.episode_return, -20.0);
    assert!((m.throughput_jobs_per_s - 0.3).abs() < 1e-12);
    assert_eq!(m.busy_gini, 0.0);
}

#[test]
fn two_nodes_with_known_speeds() {
    // Two jobs of work 4 at t=0: the slow node takes 4 s, the fast one 2 s.
    let csv = "arrival_s,input_tokens,output_tokens\n0,4,0\n0,4,0\n";
    let mut env = env_with_trace(&unit_work_scenario(TWO_NODES_1_2, ""), csv);
    drive(&mut env, |d| d as usize);
    let m = env.info().metrics.unwrap();
    assert_eq!(m.mean_latency_s, 3.0);
    assert_eq!(m.episode_time_s, 4.0);
    // Capacity-time: (1 + 2) * 4 = 12; the fast node idles from 2 to 4: 2 * 2 = 4.
    assert!((m.idle_capacity_frac - 4.0 / 12.0).abs() < 1e-12);
    // Nothing waited in a queue, so that idle capacity was not stranded.
    assert_eq!(m.stranded_idle_frac, 0.0);
    // Slowdown against the fast node (2 s): slow job 4/2, fast job 1.
    assert_eq!(m.mean_slowdown, 1.5);
    // Busy fractions 1 and 0.5: Gini = |1 - 0.5| * 2 / (2 * 2^2 * 0.75) = 1/6.
    assert!((m.busy_gini - 1.0 / 6.0).abs() < 1e-12);
}

#[test]
fn stranded_idle_on_a_hand_built_case() {
    // Two unit-speed nodes. Work 10 at t=0 goes to node 0; work 2 at t=1 also goes to node 0
    // and waits there until 10 while node 1 sits idle: 9 capacity-seconds stranded.
    let csv = "arrival_s,input_tokens,output_tokens\n0,10,0\n1,2,0\n";
    let nodes = r#"
[[node_classes]]
name = "n"
count = 2
speed = 1.0
memory_gb = 0
"#;
    let extra = "[reward]\njobs_weight = 1.0\nstranded_weight = 1.0\n";
    let mut env = env_with_trace(&unit_work_scenario(nodes, extra), csv);
    let rewards = drive(&mut env, |_| 0);
    let m = env.info().metrics.unwrap();
    assert_eq!(m.episode_time_s, 12.0);
    // Capacity-time 2 * 12 = 24; node 1 idles all 12 s; node 0 never.
    assert_eq!(m.idle_capacity_frac, 0.5);
    assert_eq!(m.stranded_idle_frac, 9.0 / 24.0);
    // Jobs in system: 10 + 11 job-seconds, plus 9 stranded slot-seconds of a unit-speed slot.
    assert_eq!(rewards.iter().sum::<f64>(), -30.0);

    // Routing the second job to the idle node strands nothing.
    let mut env = env_with_trace(&unit_work_scenario(nodes, extra), csv);
    drive(&mut env, |d| d as usize);
    let m = env.info().metrics.unwrap();
    assert_eq!(m.stranded_idle_frac, 0.0);
    assert_eq!(m.episode_time_s, 10.0);
}

#[test]
fn cold_start_then_warm_cache() {
    // Load time 2 + 3 GB / 1 GB/s = 5 s. Job 1 (work 1) at t=0 waits for the load: latency 6.
    // Job 2 at t=10 finds the model cached: latency 1.
    let toml = unit_work_scenario(ONE_NODE, "[hosting]\nload_fixed_s = 2\nload_gbps = 1\n")
        .replace("memory_gb = 0\nprefill", "memory_gb = 3\nprefill")
        .replace("[sim]", "[sim]\ninitial_cache = \"empty\"")
        .replace("memory_gb = 0\n", "memory_gb = 10\n");
    let csv = "arrival_s,input_tokens,output_tokens\n0,1,0\n10,1,0\n";
    let mut env = env_with_trace(&toml, csv);
    let first = env.reset(Some(0)).0;
    assert!(!first.nodes[0].model_ready);
    assert_eq!(first.nodes[0].load_s, 5.0);
    let second = env.step(0).unwrap().obs;
    assert!(second.nodes[0].model_ready);
    env.step(0).unwrap();
    let m = env.info().metrics.unwrap();
    assert_eq!(m.cold_starts, 1.0);
    assert_eq!(m.mean_latency_s, 3.5);
    assert_eq!(m.episode_time_s, 11.0);
}

#[test]
fn lru_eviction_and_memory_blocking() {
    // A 10 GB node with two slots and models of 6 GB: only one fits at a time. Job A (model a,
    // work 4) at 0 loads a (1 s) and runs 1-5. Job B (model b, work 1) at 0.5 cannot load b while
    // a is in use: it waits at the head of the queue until A finishes at 5, evicts a, loads b
    // (5-6), runs 6-7.
    let toml = r#"
[sim]
initial_cache = "empty"
size_visibility = "exact"
[hosting]
load_fixed_s = 0
load_gbps = 6
[verification]
verifiers = 0
[[models]]
name = "a"
memory_gb = 6
prefill_cost = 1.0
decode_cost = 0.0
[[models]]
name = "b"
memory_gb = 6
prefill_cost = 1.0
decode_cost = 0.0
[workload]
popularity = [1.0, 0.0]
[arrivals]
process = "trace"
path = "trace.csv"
random_offset = false
[[node_classes]]
name = "n"
count = 1
speed = 1.0
slots = 2
memory_gb = 10
"#;
    // Popularity [1, 0] sends every job to model a; give b weight via a second scenario below.
    let csv = "arrival_s,input_tokens,output_tokens\n0,4,0\n0.5,1,0\n";
    let mut env = env_with_trace(toml, csv);
    env.reset(Some(0));
    env.step(0).unwrap();
    env.step(0).unwrap();
    let m = env.info().metrics.unwrap();
    // Both jobs use model a: one load, the second job shares the cached model.
    assert_eq!(m.cold_starts, 1.0);
    assert_eq!(m.episode_time_s, 5.0);

    let toml_b = toml.replace("popularity = [1.0, 0.0]", "popularity = [1.0, 1.0]");
    // Find a seed whose two jobs use different models, then check the blocking timeline.
    for seed in 0..64 {
        let mut env = env_with_trace(&toml_b, csv);
        let m0 = env.reset(Some(seed)).0.job.model;
        let m1 = env.step(0).unwrap().obs.job.model;
        if m0 == m1 {
            continue;
        }
        env.step(0).unwrap();
        let m = env.info().metrics.unwrap();
        let (work0, work1) = (4.0, 1.0);
        assert_eq!(m.cold_starts, 2.0);
        // A: load 0-1, run 1-5. B: blocked until 5, load 5-6, run 6-7.
        assert_eq!(m.episode_time_s, 1.0 + work0 + 1.0 + work1);
        assert!((m.mean_latency_s - (5.0 + 6.5) / 2.0).abs() < 1e-12);
        return;
    }
    panic!("no seed drew two different models");
}

#[test]
fn verification_multiplier_and_time_to_finality() {
    // A TEE job of base work 2 with multiplier 1.5 runs 3 s on a unit-speed TEE node, is then
    // checked for 0.5 s and settled 1 s later: latency 3, finality 4.5.
    let toml = unit_work_scenario(
        &ONE_NODE.replace("memory_gb = 0", "memory_gb = 0\ntee = true"),
        "[workload]\ntee = 1.0\n",
    )
    .replace(
        "[verification]\nverifiers = 0",
        "[verification]\nverifiers = 1\ntee_multiplier = 1.5\ntee_s = 0.5\nsettle_s = 1.0",
    );
    let csv = "arrival_s,input_tokens,output_tokens\n0,2,0\n";
    let mut env = env_with_trace(&toml, csv);
    let view = env.reset(Some(0)).0;
    assert_eq!(view.job.est_work, 3.0);
    env.step(0).unwrap();
    let m = env.info().metrics.unwrap();
    assert_eq!(m.mean_latency_s, 3.0);
    assert_eq!(m.mean_finality_s, 4.5);
}

#[test]
fn tee_jobs_are_masked_off_plain_nodes() {
    let nodes = r#"
[[node_classes]]
name = "plain"
count = 2
speed = 1.0
memory_gb = 0
[[node_classes]]
name = "tee"
count = 1
speed = 1.0
memory_gb = 0
tee = true
"#;
    let toml = unit_work_scenario(nodes, "[workload]\ntee = 1.0\n");
    let csv = "arrival_s,input_tokens,output_tokens\n0,1,0\n";
    let mut env = env_with_trace(&toml, csv);
    assert_eq!(env.reset(Some(0)).0.mask, [false, false, true]);
    assert!(env.step(0).is_err());
    assert!(env.step(2).unwrap().terminated);
}
