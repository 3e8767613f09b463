//! Many clients, registry liveness and batched settlement, on scenarios small enough to check
//! by hand.

mod common;

use std::sync::Arc;

use common::{scenario, scenario_v};
use haca_env::{run_episode, Env, Scenario};
use haca_policy::router_by_name;

/// `n` jobs of `work` units arriving every `gap` seconds.
fn regular_trace(n: usize, gap: f64, work: u32) -> String {
    let mut csv = String::from("arrival_s,input_tokens,output_tokens\n");
    for i in 0..n {
        csv.push_str(&format!("{},{work},0\n", i as f64 * gap));
    }
    csv
}

/// Two clients on `nodes` unit-speed nodes, scraped at 0 and not again during `trace`.
fn two_clients_unscraped(nodes: u32, trace: &str) -> Env {
    let table = format!(
        "[clients]\ncount = 2\n[[node_classes]]\nname = \"n\"\ncount = {nodes}\nspeed = 1.0\nmemory_gb = 0\n"
    );
    Env::new(scenario("scrape_interval_s = 1000", &table, trace))
}

#[test]
fn two_clients_each_see_only_their_own_dispatches() {
    // Long jobs on two nodes, no scrape during the episode's arrivals: each client's view of node
    // 0 is the snapshot at 0 (empty) plus its own dispatches, never the other client's.
    let mut env = two_clients_unscraped(2, &regular_trace(12, 1.0, 100));
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
        // It counts its own jobs and the one in its hands; the teacher counts everyone's.
        assert_eq!(v.jobs_in_system, sent[c] + 1);
        assert_eq!(truth.jobs_in_system, all + 1);
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

#[test]
fn a_client_takes_its_answered_requests_off_its_estimate() {
    // One node, no scrape after 0, jobs of 1 s every 2 s: each is answered before the next
    // arrives, so every client's requests since the scrape have all come back. `lsq` takes them
    // off its estimate once; what it imagines the other client sent (its own again, share 1/2)
    // stays. Its dispatches alone count all of them twice.
    let mut env = two_clients_unscraped(1, &regular_trace(20, 2.0, 1));
    env.reset(Some(5));
    let mut sent = [0u32; 2];
    loop {
        let v = env.obs();
        let (c, n0) = (v.client as usize, v.nodes[0]);
        assert_eq!((n0.own_jobs, n0.own_answered), (sent[c], sent[c]));
        assert_eq!(n0.own_answered_work, n0.own_work);
        // Speed 1, one slot: a second of service per unit of estimated work.
        let service = v.job.est_work;
        let local = n0.local_expected_delay(&v.job, v.client_share);
        assert_eq!(local, service + n0.own_work, "client {c} at {}", v.now);
        let unanswered = n0.dispatch_expected_delay(&v.job, v.client_share);
        assert_eq!(unanswered, service + 2.0 * n0.own_work);
        assert_eq!(
            v.jobs_in_system, 1,
            "all its requests came back: only the job in hand"
        );
        sent[c] += 1;
        if env.step(0).unwrap().done() {
            break;
        }
    }
    assert!(sent[0] > 0 && sent[1] > 0);
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
