//! Prefix KV caches on scenarios small enough to check by hand: hits and their saving, when a
//! hit is taken, what evictions and failures take away, and synthetic sessions.

mod common;

use std::sync::Arc;

use common::{scenario, scenario_with_trace};
use haca_env::{Env, Scenario};

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
