//! The native part of the `haca` Python package: a thin layer over haca-env, haca-policy and
//! haca-eval. Observations are written into numpy arrays the caller owns (no allocation per
//! step); a vector of envs steps in Rust with the GIL released. Every Rust error becomes a
//! Python `ValueError` carrying the same message as the command-line tools.

mod env;
mod router;
mod vector;

use std::sync::Arc;

use haca_env::{AutoresetMode, Scenario, VecEnv};
use haca_eval::Contender;
use haca_policy::ObsMut;
use numpy::PyReadwriteArrayDyn;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

pub(crate) fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

pub(crate) fn load_scenario(path: &str) -> PyResult<Arc<Scenario>> {
    Scenario::load(path).map(Arc::new).map_err(value_error)
}

/// The caller's four arrays as observation buffers (one observation, or a batch's).
pub(crate) fn obs_mut<'a>(
    nodes: &'a mut PyReadwriteArrayDyn<'_, f32>,
    job: &'a mut PyReadwriteArrayDyn<'_, f32>,
    global: &'a mut PyReadwriteArrayDyn<'_, f32>,
    mask: &'a mut PyReadwriteArrayDyn<'_, bool>,
) -> PyResult<ObsMut<'a>> {
    let bad = |what: &str| value_error(format!("the {what} array must be C-contiguous"));
    Ok(ObsMut {
        nodes: nodes.as_slice_mut().map_err(|_| bad("nodes"))?,
        job: job.as_slice_mut().map_err(|_| bad("job"))?,
        global: global.as_slice_mut().map_err(|_| bad("global"))?,
        mask: mask.as_slice_mut().map_err(|_| bad("action_mask"))?,
    })
}

/// Checks the lengths of `obs` against `rows` observations of `max_nodes` nodes.
pub(crate) fn check_shape(obs: &ObsMut<'_>, rows: usize, max_nodes: usize) -> PyResult<()> {
    use haca_policy::{GLOBAL_FEATURES, JOB_FEATURES, NODE_FEATURES};
    let want = [
        ("nodes", obs.nodes.len(), rows * max_nodes * NODE_FEATURES),
        ("job", obs.job.len(), rows * JOB_FEATURES),
        ("global", obs.global.len(), rows * GLOBAL_FEATURES),
        ("action_mask", obs.mask.len(), rows * max_nodes),
    ];
    for (name, got, need) in want {
        if got != need {
            return Err(value_error(format!(
                "the {name} array holds {got} values, expected {need}"
            )));
        }
    }
    Ok(())
}

/// `haca-eval compare` from Python: heuristics by name (comma-separated, as `--routers`) and
/// policy files (as `--policy`), `episodes` each on the same seeds; the same JSON document as
/// `haca-eval compare --json`, as a string.
#[pyfunction]
#[pyo3(signature = (scenario, routers, policies, episodes, seed))]
fn compare_json(
    py: Python<'_>,
    scenario: &str,
    routers: &str,
    policies: Vec<String>,
    episodes: usize,
    seed: u64,
) -> PyResult<String> {
    let sc = load_scenario(scenario)?;
    let mut contenders = Contender::parse_list(routers).map_err(value_error)?;
    for p in &policies {
        contenders.push(Contender::policy(std::path::Path::new(p)).map_err(value_error)?);
    }
    Contender::disambiguate(&mut contenders);
    let bar = indicatif::ProgressBar::hidden();
    let cmp = py
        .detach(|| haca_eval::compare(&sc, &contenders, episodes, seed, 0, &bar))
        .map_err(value_error)?;
    Ok(cmp.to_json().to_string())
}

/// `derive_seed(base, index)`: the seed of env `index` of a vector reset with `base`.
#[pyfunction]
fn derive_seed(base: u64, index: u64) -> u64 {
    haca_policy::rng::derive_seed(base, index)
}

/// The first legal node of each env's mask, from the flat `[envs, max_nodes]` mask.
fn first_legal(mask: &[bool], max_nodes: usize, actions: &mut [usize]) {
    for (a, row) in actions.iter_mut().zip(mask.chunks_exact(max_nodes)) {
        *a = row.iter().position(|&m| m).unwrap_or(0);
    }
}

/// The Rust `VecEnv` alone (SameStep), reset with `seed` and stepped `steps` times with every
/// env taking its first legal node: each step's rewards, for checking the Python vector
/// against it.
#[pyfunction]
fn reference_rewards(
    path: &str,
    num_envs: usize,
    seed: u64,
    steps: usize,
) -> PyResult<Vec<Vec<f32>>> {
    let mut venv = VecEnv::new(load_scenario(path)?, num_envs, AutoresetMode::SameStep);
    venv.reset(seed);
    let mut actions = vec![0; num_envs];
    let mut out = Vec::with_capacity(steps);
    for _ in 0..steps {
        first_legal(&venv.obs.mask, venv.max_nodes(), &mut actions);
        venv.step(&actions).map_err(value_error)?;
        out.push(venv.outcomes.iter().map(|o| o.reward).collect());
    }
    Ok(out)
}

/// Decisions per second of the Rust `VecEnv` stepped inside rayon's pool with first-legal
/// actions chosen in Rust: the reference for `haca.bench`.
#[pyfunction]
fn rust_decisions_per_s(
    py: Python<'_>,
    path: &str,
    num_envs: usize,
    steps: usize,
) -> PyResult<f64> {
    let sc = load_scenario(path)?;
    Ok(py.detach(|| {
        haca_env::in_pool(|| {
            let mut venv = VecEnv::new(sc, num_envs, AutoresetMode::SameStep);
            venv.reset(0);
            let mut actions = vec![0; num_envs];
            let start = std::time::Instant::now();
            for _ in 0..steps {
                first_legal(&venv.obs.mask, venv.max_nodes(), &mut actions);
                venv.step(&actions).expect("first legal nodes are legal");
            }
            (steps * num_envs) as f64 / start.elapsed().as_secs_f64()
        })
    }))
}

#[pymodule]
fn _haca(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<env::RustEnv>()?;
    m.add_class::<vector::RustVecEnv>()?;
    m.add_class::<router::RustRouter>()?;
    m.add_function(wrap_pyfunction!(compare_json, m)?)?;
    m.add_function(wrap_pyfunction!(derive_seed, m)?)?;
    m.add_function(wrap_pyfunction!(reference_rewards, m)?)?;
    m.add_function(wrap_pyfunction!(rust_decisions_per_s, m)?)?;
    m.add("ROUTER_NAMES", haca_policy::ROUTER_NAMES.to_vec())?;
    Ok(())
}
