//! Many clients, registry liveness and batched settlement, on scenarios small enough to check
//! by hand.

mod common;

use std::sync::Arc;

use common::scenario_with_trace;
use haca_env::{run_episode, Env, Scenario};
use haca_policy::router_by_name;

/// Unit work per input token on unit-speed nodes, replaying `trace.csv`; `extra` holds the
/// node classes and any other tables, `sim` more lines of `[sim]`.
fn scenario(sim: &str, extra: &str, csv: &str) -> Arc<Scenario> {
    scenario_v(sim, "", extra, csv)
}

/// [`scenario`] with more lines of `[verification]`.
fn scenario_v(sim: &str, verification: &str, extra: &str, csv: &str) -> Arc<Scenario> {
    let toml = common::unit_work_scenario_with(sim, verification, extra);
    Arc::new(scenario_with_trace(&toml, Some(csv)).unwrap())
}

/// One unit-speed single-slot node caching `blocks` prefix blocks of 2 tokens, replaying `csv`.
fn one_prefix_node(blocks: u32, csv: &str) -> Arc<Scenario> {
    let extra = format!(
        "[prefix]\nblock_tokens = 2\ncache_blocks = {blocks}\n[[node_classes]]\nname = \"n\"\ncount = 1\nspeed = 1.0\nmemory_gb = 0\n"
    );
    scenario("", &extra, csv)
}

/// One unit-speed single-slot node caching `blocks` prefix blocks of 2 tokens, replaying `csv`
/// (with `hash_ids`); the job's prefix blocks and the node's `prefix_hit` at each decision, and
/// the episode's metrics.
fn prefix_hits_on_one_node(blocks: u32, csv: &str) -> (Vec<(u32, u32)>, haca_env::EpisodeMetrics) {
    let (hits, _, m) = prefix_views_on_one_node(blocks, csv);
    (hits, m)
}

/// [`prefix_hits_on_one_node`] with the node's `work_left` at each decision.
fn prefix_views_on_one_node(
    blocks: u32,
    csv: &str,
) -> (Vec<(u32, u32)>, Vec<f64>, haca_env::EpisodeMetrics) {
    let mut env = Env::new(one_prefix_node(blocks, csv));
    env.reset(Some(0));
    let (mut hits, mut work) = (Vec::new(), Vec::new());
    loop {
        let v = env.obs();
        hits.push((v.job.prefix_blocks, v.nodes[0].prefix_hit));
        work.push(v.nodes[0].work_left);
        let step = env.step(0).unwrap();
        if step.done() {
            return (hits, work, step.info.metrics.unwrap());
        }
    }
}

/// `n` jobs of `work` units arriving every `gap` seconds.
fn regular_trace(n: usize, gap: f64, work: u32) -> String {
    let mut csv = String::from("arrival_s,input_tokens,output_tokens\n");
    for i in 0..n {
        csv.push_str(&format!("{},{work},0\n", i as f64 * gap));
    }
    csv
}

#[test]
fn two_clients_each_see_only_their_own_dispatches() {
    // Long jobs on two nodes, no scrape during the episode's arrivals: each client's view of node
    // 0 is the snapshot at 0 (empty) plus its own dispatches, never the other client's.
    let sc = scenario(
        "scrape_interval_s = 1000",
        r#"
[clients]
count = 2
[[node_classes]]
name = "n"
count = 2
speed = 1.0
memory_gb = 0
"#,
        &regular_trace(12, 1.0, 100),
    );
    let mut env = Env::new(sc);
    env.reset(Some(3));
    let mut sent = [0u32; 2];
    let mut seen = [false; 2];
    let mut truth = env.obs().clone();
    loop {
        // The privileged teacher's view has both clients' dispatches, as of now.
        env.oracle_view(&mut truth);
        let all = sent[0] + sent[1];
        let n0 = &truth.nodes[0];
        assert_eq!(
            (n0.busy_slots, n0.queue_len),
            (all.min(1), all.saturating_sub(1))
        );
        assert_eq!((truth.observed_at, n0.own_jobs), (env.obs().now, 0));
        assert_eq!(
            truth.client,
            env.obs().client,
            "the deciding client as in the obs"
        );
        let v = env.obs();
        let c = v.client as usize;
        seen[c] = true;
        assert_eq!(v.clients, 2);
        assert_eq!(v.client_share, 0.5);
        assert_eq!(v.observed_at, 0.0);
        assert_eq!(v.nodes[0].queue_len, sent[c], "client {c} at t = {}", v.now);
        assert_eq!(v.nodes[0].busy_slots, 0, "the snapshot at 0 is empty");
        assert!(v.feedback.is_empty(), "no job finishes before t = 100");
        sent[c] += 1;
        if env.step(0).unwrap().done() {
            break;
        }
    }
    assert!(seen[0] && seen[1], "both clients decided");
    assert_eq!(sent[0] + sent[1], 12);
}

#[test]
fn a_client_hears_of_its_own_answers_only() {
    // Short jobs on one node: every answer reaches the client that sent the job, once.
    let sc = scenario(
        "",
        r#"
[clients]
count = 3
[[node_classes]]
name = "n"
count = 1
speed = 1.0
memory_gb = 0
"#,
        &regular_trace(300, 1.0, 1),
    );
    let mut env = Env::new(sc);
    env.reset(Some(1));
    let (mut sent, mut heard) = ([0u32; 3], [0u32; 3]);
    loop {
        let v = env.obs();
        let c = v.client as usize;
        heard[c] += v.feedback.len() as u32;
        assert!(v
            .feedback
            .iter()
            .all(|f| f.ok && f.node == 0 && f.latency_s == 1.0));
        // It cannot have heard of more than it sent before this decision.
        assert!(heard[c] <= sent[c]);
        sent[c] += 1;
        if env.step(0).unwrap().done() {
            break;
        }
    }
    // Each client hears of all but the answers that came after its last decision.
    for c in 0..3 {
        assert!(
            heard[c] + 2 >= sent[c],
            "client {c}: sent {sent:?}, heard {heard:?}"
        );
    }
}

const PREFER_A: &str = r#"
[[node_classes]]
name = "a"
count = 1
speed = 1.0
memory_gb = 0
mtbf_s = 30
mttr_s = 100000
[[node_classes]]
name = "b"
count = 1
speed = 1.0
memory_gb = 0
"#;

const REGISTRY: &str = r#"
[registry]
heartbeat_s = 20
max_age_s = 40
fail_timeout_s = 5
"#;

/// One decision: (now, node 0 legal, the node its last attempt failed on, retries, node 0 legal
/// in the privileged teacher's view, jobs waiting out a failure).
type Decision = (f64, bool, Option<u32>, u32, bool, u64);

/// Routes to node 0 whenever it is legal; returns every decision and the jobs finished.
fn prefer_a(env: &mut Env, seed: u64) -> (Vec<Decision>, f64) {
    env.reset(Some(seed));
    let mut truth = env.obs().clone();
    let mut log = Vec::new();
    loop {
        let v = env.obs();
        env.oracle_view(&mut truth);
        let c = env.job_counts();
        log.push((
            v.now,
            v.mask[0],
            v.job.failed_on,
            v.job.retries,
            truth.mask[0],
            c.failing,
        ));
        assert_eq!(
            c.arrived,
            c.answered + c.routing + c.queued + c.in_slots + c.failing
        );
        let pick = if v.mask[0] { 0 } else { 1 };
        let step = env.step(pick).unwrap();
        if step.done() {
            let m = step.info.metrics.as_ref().unwrap();
            return (log, m.jobs_finished);
        }
    }
}

#[test]
fn a_dead_node_stays_listed_until_its_heartbeat_ages_out_and_its_jobs_come_back() {
    let csv = regular_trace(400, 1.0, 1);
    let truth = scenario("", PREFER_A, &csv);
    let listed = scenario("", &format!("{PREFER_A}{REGISTRY}"), &csv);
    let (mut checked, mut held_checked) = (0, 0);
    for seed in 0..20 {
        let (twin, _) = prefer_a(&mut Env::new(truth.clone()), seed);
        // Without a registry node 0 is masked from the first decision after its failure.
        let Some(down) = twin.iter().position(|d| !d.1) else {
            continue; // it did not fail within the episode
        };
        if down == 0 {
            continue;
        }
        let (t_lo, t_hi) = (twin[down - 1].0, twin[down].0);
        let (log, finished) = prefer_a(&mut Env::new(listed.clone()), seed);
        assert_eq!(
            finished, 400.0,
            "seed {seed}: every job answered, none lost"
        );
        // Identical until the failure.
        assert_eq!(&log[..down], &twin[..down], "seed {seed}");
        // The dead node is listed, but the privileged teacher's view knows it is down.
        assert!(log[down].1 && !log[down].4, "seed {seed}");
        // Still listed after it died, until its last heartbeat (at most 20 s before the
        // failure) is 40 s old.
        let delisted = log.iter().position(|d| !d.1).expect("delisted in time");
        let t_d = log[delisted].0;
        assert!(
            t_d > t_lo + 20.0 && t_d <= t_hi + 40.0 + 1.0,
            "seed {seed}: {t_lo} {t_hi} {t_d}"
        );
        // Requests sent to it meanwhile fail after 5 s and come back as retries.
        let sent_to_dead: Vec<f64> = log[down..delisted].iter().map(|d| d.0).collect();
        let returns: Vec<&Decision> = log
            .iter()
            .filter(|d| d.2 == Some(0) && d.0 > t_hi)
            .collect();
        assert!(!returns.is_empty(), "seed {seed}");
        // The twin's decision at t_hi is a held job handed back at the failure: the node held
        // jobs when it died, exactly at t_hi.
        let died_holding = twin[down].2 == Some(0);
        for r in &returns {
            assert!(r.3 >= 1);
            let held = died_holding && r.0 == t_hi + 5.0;
            assert!(
                held || sent_to_dead.iter().any(|&t| t + 5.0 == r.0),
                "seed {seed}: a return at {} neither 5 s after a dispatch to the dead node nor 5 s \
                 after its failure at {t_hi}",
                r.0
            );
        }
        // So do the jobs it held when it died: without a registry they came back at the failure
        // (the twin's decision at t_hi); with one their clients learn of it only by the
        // timeout: no decision then, the jobs wait out the failure, and come back 5 s later on
        // their first retry.
        if died_holding {
            assert!(log[down].0 > t_hi && log[down].5 >= 1, "seed {seed}");
            assert!(
                returns.iter().any(|r| r.0 == t_hi + 5.0 && r.3 == 1),
                "seed {seed}"
            );
            held_checked += 1;
        }
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} seeds had a failure to check");
    assert!(
        held_checked > 0,
        "no seed had a job on the node when it died"
    );
}

#[test]
fn the_pooled_reference_learns_of_a_failure_at_once_even_with_a_registry() {
    // The central queue sees every node: a job the dead node held goes to the other node now,
    // not after a client's timeout, so the registry changes nothing for it.
    let csv = regular_trace(400, 1.0, 1);
    let truth = scenario("", PREFER_A, &csv);
    let listed = scenario("", &format!("{PREFER_A}{REGISTRY}"), &csv);
    let mut failed_holding = 0;
    for seed in 0..10 {
        let a = Env::new(truth.clone()).run_pooled(Some(seed)).unwrap();
        let b = Env::new(listed.clone()).run_pooled(Some(seed)).unwrap();
        assert_eq!(a.mean_latency_s, b.mean_latency_s, "seed {seed}");
        assert_eq!(a.retries, b.retries, "seed {seed}");
        failed_holding += (b.retries > 0.0) as u32;
    }
    assert!(failed_holding > 0, "no seed had node 0 die holding a job");
}

#[test]
fn settlement_batches_close_on_size_and_on_timeout() {
    // One unit-speed slot, three unit jobs at 0: answered at 1, 2, 3. Batches of 2 or 10 s, a
    // 2 s block: the first two settle at 2 + 2 = 4; the third's batch times out at 3 + 10 and
    // settles at 15, which is when the drained episode ends.
    let sc = scenario_v(
        "",
        "settle_s = 2\nsettle_batch = 2\nsettle_timeout_s = 10",
        r#"
[[node_classes]]
name = "n"
count = 1
speed = 1.0
memory_gb = 0
"#,
        "arrival_s,input_tokens,output_tokens\n0,1,0\n0,1,0\n0,1,0\n",
    );
    let mut env = Env::new(sc);
    let mut r = router_by_name("jsq", 0).unwrap();
    let m = run_episode(&mut env, &mut r, Some(0)).unwrap();
    assert!(
        (m.mean_finality_s - (4.0 + 4.0 + 15.0) / 3.0).abs() < 1e-12,
        "{m:?}"
    );
    assert_eq!(m.episode_time_s, 15.0);
    let c = env.job_counts();
    assert_eq!((c.finalized, c.settling), (3, 0));
}

#[test]
fn one_client_table_reproduces_the_scenario_without_it() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/haca-churn.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let with = format!("{text}\n[clients]\ncount = 1\ndemand = \"zipf\"\n");
    let a = Arc::new(Scenario::load(&path).unwrap());
    let b = Arc::new(Scenario::from_toml_str(&with, &path).unwrap());
    for name in ["sed", "po2", "sdk", "lsq"] {
        let run = |sc: &Arc<Scenario>| {
            let mut env = Env::new(sc.clone());
            let mut r = router_by_name(name, 4).unwrap();
            (0..2)
                .map(|ep| run_episode(&mut env, &mut r, Some(ep)).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(&a), run(&b), "{name}");
    }
}

#[test]
fn demand_splits_over_clients_by_their_zipf_shares() {
    let sc = scenario(
        "",
        r#"
[clients]
count = 4
demand = "zipf"
zipf = 1.0
[[node_classes]]
name = "n"
count = 4
speed = 1.0
memory_gb = 0
"#,
        &regular_trace(20_000, 0.5, 1),
    );
    let mut env = Env::new(sc.clone());
    env.reset(Some(2));
    let mut counts = [0f64; 4];
    loop {
        counts[env.obs().client as usize] += 1.0;
        if env.step(0).unwrap().done() {
            break;
        }
    }
    let total: f64 = counts.iter().sum();
    for c in 0..4 {
        let share = sc.clients.share(c as u32);
        assert!((counts[c] / total - share).abs() < 0.01, "{counts:?}");
    }
}

#[test]
fn many_clients_with_liveness_faults_are_deterministic_and_conserve_jobs() {
    let sc = common::shipped_scenario("haca-clients");
    let run = || {
        let mut env = Env::new(sc.clone());
        let mut r = router_by_name("sdk", 9).unwrap();
        env.reset(Some(17));
        r.reset(1);
        let mut rewards = Vec::new();
        let mut failing_seen = false;
        loop {
            let c = env.job_counts();
            failing_seen |= c.failing > 0;
            assert_eq!(
                c.arrived,
                c.answered + c.routing + c.queued + c.in_slots + c.failing
            );
            let a = r.route(env.obs());
            let step = env.step(a).unwrap();
            rewards.push(step.reward);
            if step.done() {
                let m = step.info.metrics.unwrap();
                assert_eq!(m.jobs_finished, m.jobs_arrived);
                return (rewards, m, failing_seen);
            }
        }
    };
    let (a, ma, failing) = run();
    let (b, mb, _) = run();
    assert_eq!(a, b);
    assert_eq!(ma, mb);
    assert!(
        failing,
        "the episode exercised requests to dead listed nodes"
    );
}

#[test]
fn a_prefix_hit_shortens_prefill_by_the_cached_blocks() {
    // Unit prefill per token, 2-token blocks, one unit-speed slot. A (4 tokens, blocks 1 2)
    // runs 4 s; B (6 tokens, blocks 1 2 3) finds 1 2 cached and skips 4 tokens: 2 s; C (blocks
    // 5 1 2) shares no leading block: its full 6 s.
    const TRACE: &str =
        "arrival_s,input_tokens,output_tokens,hash_ids\n0,4,0,1 2\n10,6,0,1 2 3\n20,6,0,5 1 2\n";
    let (hits, m) = prefix_hits_on_one_node(16, TRACE);
    assert_eq!(hits, [(2, 0), (3, 2), (3, 0)]);
    assert!(
        (m.mean_latency_s - (4.0 + 2.0 + 6.0) / 3.0).abs() < 1e-12,
        "{m:?}"
    );
    assert_eq!(m.prefix_hit_rate, 2.0 / 8.0);
    // The pooled reference takes the same hits.
    let pooled = Env::new(one_prefix_node(16, TRACE))
        .run_pooled(Some(0))
        .unwrap();
    assert_eq!(
        (pooled.prefix_hit_rate, pooled.mean_latency_s),
        (m.prefix_hit_rate, m.mean_latency_s)
    );
    // Slowdown is over the full work (the hit is the router's doing): B's 2 s over 6 s.
    assert!(
        (m.mean_slowdown - (1.0 + 2.0 / 6.0 + 1.0) / 3.0).abs() < 1e-12,
        "{m:?}"
    );
}

#[test]
fn a_job_placed_behind_an_earlier_turn_finds_its_blocks_and_is_queued_with_the_saving() {
    // One unit-speed slot, 2-token blocks. A (blocks 9 10) runs 0-4. B (blocks 1 2) arrives at
    // 0.5 and waits behind A. C (blocks 1 2 3, 6 tokens) arrives at 1 while B is still queued:
    // B starts before C on this FIFO node, so C will find B's blocks; the router sees those 2
    // hits, and C queues with 2 tokens of work left: 8-10. E (blocks 50, 2 tokens) at 2 sees
    // the node's work as A's 2 left + B's 4 + C's 2 = 8, and runs 10-12. F (blocks 60) at 9
    // sees C running with 1 left (its reduced work) + E's 2 = 3, and runs 12-14. D (blocks 1 2
    // 3 4, 8 tokens) at 20: 3 hits, 2 s.
    let (hits, work, m) = prefix_views_on_one_node(
        16,
        "arrival_s,input_tokens,output_tokens,hash_ids\n0,4,0,9 10\n0.5,4,0,1 2\n1,6,0,1 2 3\n2,2,0,50\n9,2,0,60\n20,8,0,1 2 3 4\n",
    );
    assert_eq!(hits, [(2, 0), (2, 0), (3, 2), (1, 0), (1, 0), (4, 3)]);
    assert_eq!((work[3], work[4]), (8.0, 3.0));
    let latencies = [4.0, 8.0 - 0.5, 10.0 - 1.0, 12.0 - 2.0, 14.0 - 9.0, 2.0];
    assert!(
        (m.mean_latency_s - latencies.iter().sum::<f64>() / 6.0).abs() < 1e-12,
        "{m:?}"
    );
    assert_eq!(m.prefix_hit_rate, 5.0 / 13.0);
}

#[test]
fn a_job_lost_with_its_node_comes_back_with_its_full_work() {
    // Node a (index 0, failing) and node b, unit speed, 2-token blocks. A (blocks 1 2) runs on a
    // 0-4; B (blocks 1 2 3, 6 tokens) goes to a at 10 and finds 2 blocks: 2 tokens of work. On
    // seeds where a dies while B runs, B comes back to be routed again with its full 6: the
    // saving was a's cache, which died with it.
    let extra = "[prefix]\nblock_tokens = 2\ncache_blocks = 16\n[[node_classes]]\nname = \"a\"\ncount = 1\nspeed = 1.0\nmemory_gb = 0\nmtbf_s = 30\nmttr_s = 100000\n[[node_classes]]\nname = \"b\"\ncount = 1\nspeed = 1.0\nmemory_gb = 0\n";
    let csv = "arrival_s,input_tokens,output_tokens,hash_ids\n0,4,0,1 2\n10,6,0,1 2 3\n";
    let sc = scenario("", extra, csv);
    let mut retried = 0;
    for seed in 0..200 {
        let mut env = Env::new(sc.clone());
        env.reset(Some(seed));
        loop {
            let v = env.obs();
            let (job, hit) = (v.job, v.nodes[0].prefix_hit);
            if job.prefix_blocks == 3 && job.retries == 0 && v.mask[0] {
                assert_eq!((hit, job.est_work), (2, 6.0), "seed {seed}: first routing");
            }
            if job.prefix_blocks == 3 && job.retries > 0 {
                assert_eq!(job.est_work, 6.0, "seed {seed}: the retry");
                retried += 1;
            }
            let n = if v.mask[0] { 0 } else { 1 };
            if env.step(n).unwrap().done() {
                break;
            }
        }
    }
    assert!(retried > 0, "no seed lost B with node a");
}

#[test]
fn an_evicted_model_takes_its_prefix_blocks_with_it() {
    // One 10 GB node, two 6 GB models: one fits at a time. X (model a) computes blocks k 1000;
    // Y (model b) evicts a; Z, X's conversation again (model a), finds a cold model and no
    // cached blocks: the KV cache lived in the evicted model's memory.
    let toml = |csv_blocks: &str| {
        let extra = "[prefix]\nblock_tokens = 2\ncache_blocks = 16\n[hosting]\nload_fixed_s = 0\nload_gbps = 6\n[workload]\npopularity = [1.0, 1.0]\n[[models]]\nname = \"b\"\nmemory_gb = 6\nprefill_cost = 1.0\ndecode_cost = 0.0\n[[node_classes]]\nname = \"n\"\ncount = 1\nspeed = 1.0\nmemory_gb = 10\n";
        let sim = "initial_cache = \"empty\"";
        let text = common::unit_work_scenario_with(sim, "", extra)
            .replace("name = \"m\"\nmemory_gb = 0", "name = \"a\"\nmemory_gb = 6");
        Arc::new(scenario_with_trace(&text, Some(csv_blocks)).unwrap())
    };
    // A conversation's model follows its first block: find one of each.
    let model_of = |k: u64| {
        let csv = format!("arrival_s,input_tokens,output_tokens,hash_ids\n0,4,0,{k} 1000\n");
        let mut env = Env::new(toml(&csv));
        env.reset(Some(0)).0.job.model
    };
    let ka = (1..64)
        .find(|&k| model_of(k) == 0)
        .expect("a block for model a");
    let kb = (1..64)
        .find(|&k| model_of(k) == 1)
        .expect("a block for model b");
    let csv = format!(
        "arrival_s,input_tokens,output_tokens,hash_ids\n0,4,0,{ka} 1000\n20,4,0,{kb} 2000\n40,4,0,{ka} 1000\n"
    );
    let mut env = Env::new(toml(&csv));
    env.reset(Some(0));
    let mut seen = Vec::new();
    loop {
        let v = env.obs();
        seen.push((v.job.model, v.nodes[0].model_ready, v.nodes[0].prefix_hit));
        if env.step(0).unwrap().done() {
            break;
        }
    }
    assert_eq!(seen, [(0, false, 0), (1, false, 0), (0, false, 0)]);
    assert_eq!(env.info().metrics.unwrap().prefix_hit_rate, 0.0);
}

#[test]
fn a_client_counts_its_own_dispatches_with_their_prefix_saving() {
    // No scrape after the start: the client's view is the empty node plus its own dispatches.
    // A (4 tokens) and B (blocks 1 2 3, hitting A's 1 2: 2 tokens) are its own: C sees 6.
    let extra = "[prefix]\nblock_tokens = 2\ncache_blocks = 16\n[[node_classes]]\nname = \"n\"\ncount = 1\nspeed = 1.0\nmemory_gb = 0\n";
    let csv = "arrival_s,input_tokens,output_tokens,hash_ids\n0,4,0,1 2\n0,6,0,1 2 3\n0,2,0,9\n";
    let mut env = Env::new(scenario("scrape_interval_s = 1000", extra, csv));
    env.reset(Some(0));
    env.step(0).unwrap();
    env.step(0).unwrap();
    let v = env.obs();
    assert_eq!((v.nodes[0].own_jobs, v.nodes[0].own_work), (2, 6.0));
}

#[test]
fn a_small_prefix_cache_evicts_its_least_recently_used_blocks() {
    // Capacity 2 blocks: after C (blocks 7 8) the cache holds 7 8 only, so D (1 2) misses.
    let (hits, _) = prefix_hits_on_one_node(
        2,
        "arrival_s,input_tokens,output_tokens,hash_ids\n0,4,0,1 2\n10,4,0,1 2\n20,4,0,7 8\n30,4,0,1 2\n",
    );
    let hits: Vec<u32> = hits.iter().map(|h| h.1).collect();
    assert_eq!(hits, [0, 2, 0, 0]);
}

/// (verification mode, model) of the first `n` jobs of haca-small with synthetic prefixes
/// (`[prefix]` with `extra`).
fn models_with_prefix(extra: &str, n: usize) -> Vec<(usize, u32)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/haca-small.toml");
    let text = format!(
        "{}\n[prefix]\nblock_tokens = 64\n{extra}\n",
        std::fs::read_to_string(&path).unwrap()
    );
    let mut env = Env::new(Arc::new(Scenario::from_toml_str(&text, &path).unwrap()));
    env.reset(Some(7));
    let mut models = Vec::new();
    while models.len() < n {
        let job = &env.obs().job;
        models.push((job.verification.index(), job.model));
        let legal = env.obs().mask.iter().position(|&m| m).unwrap();
        if env.step(legal).unwrap().done() {
            break;
        }
    }
    models
}

#[test]
fn a_synthetic_session_keeps_its_model() {
    // haca-small's catalog has four models (Zipf popularity): without sessions jobs draw
    // them independently; one session means one conversation, hence one model per verification
    // mode (each mode draws from the models it can run); three sessions at most three.
    let distinct = |m: &[(usize, u32)]| {
        let mut d = m.to_vec();
        d.sort_unstable();
        d.dedup();
        (0..3)
            .map(|mode| d.iter().filter(|x| x.0 == mode).count())
            .max()
            .unwrap()
    };
    assert_eq!(distinct(&models_with_prefix("", 300)), 4);
    let one = models_with_prefix("sessions = 1", 300);
    assert_eq!((one.len(), distinct(&one)), (300, 1));
    assert!(distinct(&models_with_prefix("sessions = 3", 300)) <= 3);
    assert_eq!(distinct(&models_with_prefix("sessions = 1000", 300)), 4);
}
