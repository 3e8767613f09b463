#![allow(dead_code)]
//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use haca_env::{Env, Scenario, ScenarioError};

/// Writes `toml` as `scenario.toml` (and `csv`, if given, as `trace.csv`) in a fresh temporary
/// folder, loads it and removes the folder (a scenario holds its trace once loaded).
pub fn scenario_with_trace(toml: &str, csv: Option<&str>) -> Result<Scenario, ScenarioError> {
    let dir = tempfile::tempdir().unwrap();
    if let Some(csv) = csv {
        std::fs::write(dir.path().join("trace.csv"), csv).unwrap();
    }
    let path = dir.path().join("scenario.toml");
    std::fs::write(&path, toml).unwrap();
    Scenario::load(&path)
}

pub fn env_with_trace(toml: &str, csv: &str) -> Env {
    Env::new(Arc::new(scenario_with_trace(toml, Some(csv)).unwrap()))
}

/// The shipped scenarios.
pub fn shipped() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

pub fn shipped_scenario(name: &str) -> Arc<Scenario> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.toml"));
    Arc::new(Scenario::load(path).unwrap())
}

/// A one-model scenario whose job work equals its input tokens, replaying `trace.csv`.
/// `nodes` is TOML for the `[[node_classes]]` tables; `extra` is appended.
pub fn unit_work_scenario(nodes: &str, extra: &str) -> String {
    unit_work_scenario_with("", "", &format!("{nodes}\n{extra}"))
}

/// [`unit_work_scenario`] with more lines for its `[sim]` and `[verification]` tables; `rest`
/// holds the node classes and any other tables.
pub fn unit_work_scenario_with(sim: &str, verification: &str, rest: &str) -> String {
    format!(
        r#"
[episode]
drain = true
[sim]
size_visibility = "exact"
{sim}
[verification]
verifiers = 0
{verification}
[[models]]
name = "m"
memory_gb = 0
prefill_cost = 1.0
decode_cost = 0.0
[arrivals]
process = "trace"
path = "trace.csv"
random_offset = false
{rest}
"#
    )
}

/// Unit work per input token on unit-speed nodes, replaying `trace.csv`; `extra` holds the
/// node classes and any other tables, `sim` more lines of `[sim]`.
pub fn scenario(sim: &str, extra: &str, csv: &str) -> Arc<Scenario> {
    scenario_v(sim, "", extra, csv)
}

/// [`scenario`] with more lines of `[verification]`.
pub fn scenario_v(sim: &str, verification: &str, extra: &str, csv: &str) -> Arc<Scenario> {
    let toml = unit_work_scenario_with(sim, verification, extra);
    Arc::new(scenario_with_trace(&toml, Some(csv)).unwrap())
}
