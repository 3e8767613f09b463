//! Every policy shipped in `checkpoints/` loads, has its card, names a shipped scenario, and
//! routes a whole episode of that scenario and of every scenario its card says it serves.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use haca_env::Scenario;
use haca_eval::Contender;
use haca_policy::Policy;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn every_shipped_policy_loads_has_a_card_and_routes_its_scenario() {
    let dir = repo().join("checkpoints");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    let stems: Vec<String> = files
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for required in ["park", "haca-small"] {
        assert!(
            stems.iter().any(|s| s == required),
            "{required} missing: {stems:?}"
        );
    }
    for (path, stem) in files.iter().zip(&stems) {
        let policy = Policy::load(path).unwrap_or_else(|e| panic!("{e}"));
        let card = std::fs::read_to_string(dir.join(format!("{stem}.md")))
            .unwrap_or_else(|_| panic!("{stem}.safetensors has no card {stem}.md"));
        assert!(
            card.contains("haca-train"),
            "{stem}.md gives no training command"
        );
        assert!(
            dir.join(format!("{stem}-compare.json")).exists(),
            "{stem}: no comparison JSON"
        );
        // The policy's scenario is a shipped one, and the policy routes a whole episode of it
        // and of each scenario its card lists.
        let contender = Contender::policy(path).unwrap();
        let mut names = vec![policy.info.scenario.clone()];
        names.extend(served(&card));
        for name in names {
            let sc_path = repo().join("env/scenarios").join(format!("{name}.toml"));
            let mut sc = Scenario::load(&sc_path).unwrap_or_else(|e| panic!("{stem}: {e}"));
            // haca-large's 100,000 jobs on 512 nodes and the whole Azure trace take a policy
            // minutes: their first 3,000 arrivals are enough to route every kind of job.
            sc.jobs_per_episode = sc.jobs_per_episode.min(3_000);
            let sc = Arc::new(sc);
            let record = haca_eval::run_episode(&sc, &contender, 5, 0, false).unwrap();
            assert_eq!(
                record.metrics.jobs_finished, sc.jobs_per_episode as f64,
                "{stem} on {name}"
            );
        }
    }
}

/// The scenarios a card's `Serves:` line lists (comma-separated shipped scenario names).
fn served(card: &str) -> Vec<String> {
    card.lines()
        .find_map(|l| l.strip_prefix("Serves:"))
        .map(|list| {
            list.split(',')
                .map(|s| s.trim().trim_matches('`').to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}
