//! Golden trajectories: a digest of every observation, reward and end-of-episode metric on every
//! shipped scenario, compared with `tests/golden.txt`. A restructuring of the simulator must not
//! move a single bit; a change that means to alter the dynamics or a random stream regenerates
//! the file (`HACA_GOLDEN_UPDATE=1 cargo test --release -p haca-env --test golden`) and says
//! why in its commit. The digest covers IEEE bit patterns, so it is tied to this platform's libm
//! (x86_64 Linux here).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use haca_env::{CreditMode, Env, EpisodeMetrics};
use haca_policy::{router_by_name, ClusterView};

/// FNV-1a over 64-bit words: small, stable across Rust versions (unlike `DefaultHasher`).
struct Fnv(u64);

impl Fnv {
    fn word(&mut self, x: u64) {
        for b in x.to_le_bytes() {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x100_0000_01b3);
        }
    }
    fn f(&mut self, x: f64) {
        self.word(x.to_bits());
    }
}

fn hash_view(h: &mut Fnv, v: &ClusterView) {
    h.f(v.now);
    h.f(v.observed_at);
    h.word(v.jobs_in_system as u64);
    for (n, &legal) in v.mask.iter().enumerate() {
        h.word(legal as u64);
        let node = &v.nodes[n];
        h.word(node.up as u64);
        h.word(node.busy_slots as u64);
        h.word(node.queue_len as u64);
        h.f(node.work_left);
        h.word(node.model_ready as u64);
        h.f(node.load_s);
    }
    let j = &v.job;
    h.word(j.model as u64);
    h.word(j.verification.index() as u64);
    h.word(j.input_tokens as u64);
    h.f(j.output_tokens_est);
    h.f(j.est_work);
    h.word(j.retries as u64);
}

fn hash_metrics(h: &mut Fnv, m: &EpisodeMetrics) {
    for x in [
        m.idle_capacity_frac,
        m.stranded_idle_frac,
        m.mean_latency_s,
        m.p99_latency_s,
        m.mean_queueing_delay_s,
        m.mean_slowdown,
        m.cold_starts,
        m.retries,
        m.mean_finality_s,
        m.busy_gini,
        m.mean_jobs_in_system,
        m.jobs_finished,
        m.decisions,
        m.episode_time_s,
        m.episode_return,
    ] {
        h.f(x);
    }
}

/// Digest of `episodes` episodes of `router` (at most `max_steps` decisions each) plus one
/// pooled episode.
fn digest(path: &Path, router: &str, episodes: u32, max_steps: u64) -> u64 {
    let mut env = Env::from_file(path).unwrap();
    let mut router = router_by_name(router, 11).unwrap();
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    env.set_credit_mode(CreditMode::Latency);
    env.record_stranded_series(Some(30.0));
    let mut credits = Vec::new();
    for ep in 0..episodes {
        let (view, info) = env.reset((ep == 0).then_some(5));
        router.reset(info.episode_seed);
        hash_view(&mut h, view);
        let mut action = router.route(view);
        for _ in 0..max_steps {
            let step = env.step(action).unwrap();
            h.f(step.reward);
            hash_view(&mut h, step.obs);
            if let Some(m) = &step.info.metrics {
                hash_metrics(&mut h, m);
            }
            if step.done() {
                break;
            }
            action = router.route(step.obs);
        }
        let counts = env.job_counts();
        for c in [
            counts.arrived,
            counts.answered,
            counts.routing,
            counts.queued,
        ] {
            h.word(c);
        }
        for b in env.busy_fractions() {
            h.f(b);
        }
        env.take_credits(&mut credits);
        env.outstanding_credits(&mut credits);
        for (decision, seconds) in credits.drain(..) {
            h.word(decision);
            h.f(seconds);
        }
        for (t, stranded) in env.stranded_series() {
            h.f(t);
            h.f(stranded);
        }
    }
    let pooled = env.run_pooled(Some(9)).unwrap();
    hash_metrics(&mut h, &pooled);
    h.0
}

fn scenarios() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn trajectories_match_the_golden_digests() {
    let mut out = String::new();
    for path in scenarios() {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let (episodes, max_steps) = if name == "haca-large" {
            (1, 3_000)
        } else {
            (2, 20_000)
        };
        for router in ["jsq", "affinity", "po2", "round_robin"] {
            let d = digest(&path, router, episodes, max_steps);
            writeln!(out, "{name} {router} {d:016x}").unwrap();
        }
    }
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden.txt");
    if std::env::var_os("HACA_GOLDEN_UPDATE").is_some() {
        std::fs::write(&file, &out).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&file)
        .expect("tests/golden.txt: run with HACA_GOLDEN_UPDATE=1 to create it");
    let mismatches: Vec<String> = want
        .lines()
        .zip(out.lines())
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("want {a}\n got {b}"))
        .collect();
    assert!(
        mismatches.is_empty() && want.lines().count() == out.lines().count(),
        "trajectories changed (regenerate with HACA_GOLDEN_UPDATE=1 only if the change is meant):\n{}",
        mismatches.join("\n")
    );
}
