//! Every policy shipped in `checkpoints/` loads, has its card, names a shipped scenario, and
//! routes a whole episode of that scenario and of every scenario its card says it serves.
//!
//! A policy at the top level has its own card `{stem}.md` and comparison `{stem}-compare.json`;
//! a family in a subfolder (e.g. `checkpoints/frontier/`) shares the folder's `README.md`, which
//! names every member file, and `compare.json`, which evaluated every member.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use haca_env::Scenario;
use haca_eval::Contender;
use haca_policy::Policy;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `.safetensors` files of `dir`, sorted.
fn policies_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    files
}

fn stem(path: &Path) -> String {
    path.file_stem().unwrap().to_string_lossy().into_owned()
}

#[test]
fn every_shipped_policy_loads_has_a_card_and_routes_its_scenario() {
    let dir = repo().join("checkpoints");
    let files = policies_in(&dir);
    let stems: Vec<String> = files.iter().map(|p| stem(p)).collect();
    for required in ["park", "haca-small", "haca-general"] {
        assert!(
            stems.iter().any(|s| s == required),
            "{required} missing: {stems:?}"
        );
    }
    for path in &files {
        let stem = stem(path);
        let card = std::fs::read_to_string(dir.join(format!("{stem}.md")))
            .unwrap_or_else(|_| panic!("{stem}.safetensors has no card {stem}.md"));
        assert!(
            dir.join(format!("{stem}-compare.json")).exists(),
            "{stem}: no comparison JSON"
        );
        check_policy(path, &card);
    }
}

#[test]
fn every_shipped_family_has_one_card_naming_each_member_and_a_comparison_of_all() {
    let families: Vec<PathBuf> = std::fs::read_dir(repo().join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().path())
        // A folder of policies is a family; others (evaluation tables) are not.
        .filter(|p| p.is_dir() && !policies_in(p).is_empty())
        .collect();
    assert!(
        families.iter().any(|f| f.ends_with("frontier")),
        "the frontier family is missing: {families:?}"
    );
    for family in families {
        let card = std::fs::read_to_string(family.join("README.md"))
            .unwrap_or_else(|_| panic!("{}: no README.md card", family.display()));
        let compare = std::fs::read_to_string(family.join("compare.json"))
            .unwrap_or_else(|_| panic!("{}: no compare.json", family.display()));
        let members = policies_in(&family);
        assert!(members.len() >= 2, "{}: a family of one", family.display());
        for path in &members {
            let stem = stem(path);
            assert!(
                card.contains(&format!("{stem}.safetensors")),
                "{}: the card does not name {stem}.safetensors",
                family.display()
            );
            assert!(
                compare.contains(&format!("policy:{stem}\"")),
                "{}: compare.json did not evaluate {stem}",
                family.display()
            );
            check_policy(path, &card);
        }
    }
}

/// The policy loads with a verified digest, its card gives the training command, and it routes a whole episode of its
/// scenario and of each scenario the card lists.
fn check_policy(path: &Path, card: &str) {
    let stem = stem(path);
    let policy = Policy::load(path).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        policy.digest().is_some(),
        "{stem}: no content digest: re-stamp it (policy/FORMAT.md)"
    );
    assert!(
        card.contains("haca-train"),
        "{stem}: its card gives no training command"
    );
    let contender = Contender::policy(path).unwrap();
    let mut names = vec![policy.info.scenario.clone()];
    names.extend(served(card));
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
