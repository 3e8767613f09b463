//! The native part of the `haca` Python package: a thin layer over haca-env, haca-policy and
//! haca-eval. Observations are written into numpy arrays the caller owns (no allocation per
//! step); a vector of envs steps in Rust with the GIL released. Every Rust error becomes a
//! Python `ValueError` carrying the same message as the command-line tools.

use std::sync::{Arc, Mutex};

use haca_env::{AutoresetMode, Env, Scenario, VecEnv};
use haca_eval::Contender;
use haca_policy::{ObsMut, Policy, PolicyRouter, Router, Selection};
use numpy::{PyReadonlyArray1, PyReadwriteArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn load_scenario(path: &str) -> PyResult<Arc<Scenario>> {
    Scenario::load(path).map(Arc::new).map_err(value_error)
}

/// The caller's four arrays as observation buffers (one observation, or a batch's).
fn obs_mut<'a>(
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
fn check_shape(obs: &ObsMut<'_>, rows: usize, max_nodes: usize) -> PyResult<()> {
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

/// One env (`haca.make` wraps it as a `gymnasium.Env`).
#[pyclass(module = "haca._haca")]
struct RustEnv {
    env: Env,
}

#[pymethods]
impl RustEnv {
    #[new]
    fn new(path: &str) -> PyResult<Self> {
        Ok(RustEnv {
            env: Env::new(load_scenario(path)?),
        })
    }

    #[getter]
    fn max_nodes(&self) -> usize {
        self.env.max_nodes()
    }

    #[getter]
    fn name(&self) -> String {
        self.env.scenario().name.clone()
    }

    /// Starts an episode (`seed` reseeds the episode stream) and writes its first observation.
    /// Returns the info dict.
    #[pyo3(signature = (seed, nodes, job, global_, mask))]
    fn reset<'py>(
        &mut self,
        py: Python<'py>,
        seed: Option<u64>,
        mut nodes: PyReadwriteArrayDyn<'py, f32>,
        mut job: PyReadwriteArrayDyn<'py, f32>,
        mut global_: PyReadwriteArrayDyn<'py, f32>,
        mut mask: PyReadwriteArrayDyn<'py, bool>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let obs = obs_mut(&mut nodes, &mut job, &mut global_, &mut mask)?;
        check_shape(&obs, 1, self.env.max_nodes())?;
        self.env.reset(seed);
        self.env.encode(obs);
        info_dict(py, &self.env)
    }

    /// Routes the current job to node `action`; writes the next observation. Returns (reward,
    /// terminated, truncated, info). A masked or out-of-range node raises `ValueError` naming
    /// it and why; the env is left as it was.
    #[pyo3(signature = (action, nodes, job, global_, mask))]
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        action: i64,
        mut nodes: PyReadwriteArrayDyn<'py, f32>,
        mut job: PyReadwriteArrayDyn<'py, f32>,
        mut global_: PyReadwriteArrayDyn<'py, f32>,
        mut mask: PyReadwriteArrayDyn<'py, bool>,
    ) -> PyResult<(f64, bool, bool, Bound<'py, PyDict>)> {
        let obs = obs_mut(&mut nodes, &mut job, &mut global_, &mut mask)?;
        check_shape(&obs, 1, self.env.max_nodes())?;
        let action = usize::try_from(action).map_err(|_| {
            value_error(format!(
                "action {action} is not a node index (0 to {})",
                self.env.max_nodes() - 1
            ))
        })?;
        let (reward, terminated, truncated) = {
            let step = self.env.step(action).map_err(value_error)?;
            (step.reward, step.terminated, step.truncated)
        };
        self.env.encode(obs);
        Ok((reward, terminated, truncated, info_dict(py, &self.env)?))
    }

    /// The node `router` picks for the current decision.
    fn route(&self, router: &RustRouter) -> usize {
        router.lock().route(self.env.obs())
    }
}

/// The info dict: time, decisions, episode seed, and the episode's metrics once it is over
/// (only what the episode determines: same seed and actions, same info).
fn info_dict<'py>(py: Python<'py>, env: &Env) -> PyResult<Bound<'py, PyDict>> {
    let info = env.info();
    let d = PyDict::new(py);
    d.set_item("time", info.time)?;
    d.set_item("jobs_in_system", info.jobs_in_system)?;
    d.set_item("decisions", info.decisions)?;
    d.set_item("episode_seed", info.episode_seed)?;
    d.set_item("nodes", info.nodes)?;
    if let Some(m) = &info.metrics {
        let metrics = PyDict::new(py);
        for (name, v) in m.pairs() {
            metrics.set_item(name, v)?;
        }
        d.set_item("metrics", metrics)?;
    }
    Ok(d)
}

/// A router (heuristic by name, or an exported policy) acting on a `RustEnv`'s current view.
#[pyclass(module = "haca._haca")]
struct RustRouter {
    // Routers are `Send` but not `Sync`; Python objects may be shared between threads.
    router: Mutex<Box<dyn Router>>,
}

impl RustRouter {
    fn new(router: Box<dyn Router>) -> RustRouter {
        RustRouter {
            router: Mutex::new(router),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Box<dyn Router>> {
        // A router that panicked mid-decision left no state worth refusing.
        self.router.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[pymethods]
impl RustRouter {
    /// A heuristic by name (`haca.ROUTERS`), seeded.
    #[staticmethod]
    fn heuristic(name: &str, seed: u64) -> PyResult<Self> {
        let router = haca_policy::router_by_name(name, seed).ok_or_else(|| {
            value_error(format!(
                "unknown router `{name}`: expected one of {}",
                haca_policy::ROUTER_NAMES.join(", ")
            ))
        })?;
        Ok(RustRouter::new(router))
    }

    /// An exported policy file; greedy, or sampling from its distribution.
    #[staticmethod]
    fn policy(path: &str, sample: bool, seed: u64) -> PyResult<Self> {
        let policy = Policy::load(path).map_err(value_error)?;
        let selection = if sample {
            Selection::Sample { temperature: 1.0 }
        } else {
            Selection::Greedy
        };
        let router = PolicyRouter::new(Arc::new(policy), selection, seed);
        Ok(RustRouter::new(Box::new(router)))
    }

    #[getter]
    fn name(&self) -> String {
        self.lock().name().to_string()
    }

    /// Called at each episode's start, as the Rust evaluation does.
    fn reset(&self, seed: u64) {
        self.lock().reset(seed);
    }
}

/// Many envs stepped in parallel in Rust (`haca.VectorEnv` wraps it).
#[pyclass(module = "haca._haca")]
struct RustVecEnv {
    venv: VecEnv,
}

#[pymethods]
impl RustVecEnv {
    #[new]
    fn new(path: &str, num_envs: usize, next_step: bool) -> PyResult<Self> {
        if num_envs == 0 {
            return Err(value_error("num_envs must be at least 1"));
        }
        let mode = if next_step {
            AutoresetMode::NextStep
        } else {
            AutoresetMode::SameStep
        };
        Ok(RustVecEnv {
            venv: VecEnv::new(load_scenario(path)?, num_envs, mode),
        })
    }

    #[getter]
    fn max_nodes(&self) -> usize {
        self.venv.max_nodes()
    }

    #[getter]
    fn num_envs(&self) -> usize {
        self.venv.num_envs()
    }

    /// Resets every env (env `e` seeded with `derive_seed(seed, e)`, as the Rust `VecEnv`).
    fn reset(&mut self, py: Python<'_>, seed: u64) {
        py.detach(|| haca_env::in_pool(|| self.venv.reset(seed)));
    }

    /// Resets the envs where `mask` is true (seeded with `derive_seed(seed, e)` when a seed is
    /// given, else continuing their streams).
    fn reset_some(
        &mut self,
        py: Python<'_>,
        mask: PyReadonlyArray1<'_, bool>,
        seed: Option<u64>,
    ) -> PyResult<()> {
        let mask = mask.as_slice().map_err(value_error)?.to_vec();
        if mask.len() != self.venv.num_envs() {
            return Err(value_error(format!(
                "reset_mask has {} entries for {} envs",
                mask.len(),
                self.venv.num_envs()
            )));
        }
        let venv = &mut self.venv;
        py.detach(|| haca_env::in_pool(|| venv.reset_some(&mask, seed)));
        Ok(())
    }

    /// Steps every env with `actions` (one node index each) with the GIL released, writing the
    /// observations straight into the caller's arrays (no copy), then the rewards and flags.
    /// An illegal action raises `ValueError` naming the env, the node and why.
    #[allow(clippy::too_many_arguments)]
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        actions: PyReadonlyArray1<'py, i64>,
        mut nodes: PyReadwriteArrayDyn<'py, f32>,
        mut job: PyReadwriteArrayDyn<'py, f32>,
        mut global_: PyReadwriteArrayDyn<'py, f32>,
        mut mask: PyReadwriteArrayDyn<'py, bool>,
        mut rewards: PyReadwriteArrayDyn<'py, f32>,
        mut terminated: PyReadwriteArrayDyn<'py, bool>,
        mut truncated: PyReadwriteArrayDyn<'py, bool>,
    ) -> PyResult<()> {
        let n = self.venv.num_envs();
        if actions.len() != n {
            return Err(value_error(format!(
                "{} actions for {n} envs",
                actions.len()
            )));
        }
        let raw = actions.as_slice().map_err(value_error)?;
        let mut acts = Vec::with_capacity(n);
        for (e, &a) in raw.iter().enumerate() {
            acts.push(
                usize::try_from(a)
                    .map_err(|_| value_error(format!("env {e}: action {a} is not a node index")))?,
            );
        }
        let (r, te, tr) = (
            rewards.as_slice_mut().map_err(value_error)?,
            terminated.as_slice_mut().map_err(value_error)?,
            truncated.as_slice_mut().map_err(value_error)?,
        );
        if r.len() != n || te.len() != n || tr.len() != n {
            return Err(value_error("rewards and flags need one entry per env"));
        }
        let obs = obs_mut(&mut nodes, &mut job, &mut global_, &mut mask)?;
        check_shape(&obs, n, self.venv.max_nodes())?;
        let venv = &mut self.venv;
        py.detach(|| haca_env::in_pool(|| venv.step_into(&acts, obs)))
            .map_err(value_error)?;
        for (e, o) in self.venv.outcomes.iter().enumerate() {
            r[e] = o.reward;
            te[e] = o.terminated;
            tr[e] = o.truncated;
        }
        Ok(())
    }

    /// Copies the observations of the envs where `rows` is true (all when `None`) into the
    /// caller's arrays: after a reset, which writes into the vector's own buffers.
    fn copy_obs<'py>(
        &self,
        mut nodes: PyReadwriteArrayDyn<'py, f32>,
        mut job: PyReadwriteArrayDyn<'py, f32>,
        mut global_: PyReadwriteArrayDyn<'py, f32>,
        mut mask: PyReadwriteArrayDyn<'py, bool>,
        rows: Option<PyReadonlyArray1<'py, bool>>,
    ) -> PyResult<()> {
        let mut obs = obs_mut(&mut nodes, &mut job, &mut global_, &mut mask)?;
        let v = &self.venv;
        check_shape(&obs, v.num_envs(), v.max_nodes())?;
        let rows = match &rows {
            Some(r) => r.as_slice().map_err(value_error)?.to_vec(),
            None => vec![true; v.num_envs()],
        };
        if rows.len() != v.num_envs() {
            return Err(value_error(format!(
                "{} rows for {} envs",
                rows.len(),
                v.num_envs()
            )));
        }
        for (e, _) in rows.iter().enumerate().filter(|(_, &copy)| copy) {
            obs.reborrow()
                .into_row(e, v.max_nodes())
                .copy_from(v.obs.get(e));
        }
        Ok(())
    }

    /// Metrics of the episodes that ended in the last step: `{env index: {metric: value}}`.
    fn final_metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (e, o) in self.venv.outcomes.iter().enumerate() {
            if let Some(m) = &o.final_metrics {
                let metrics = PyDict::new(py);
                for (name, v) in m.pairs() {
                    metrics.set_item(name, v)?;
                }
                d.set_item(e, metrics)?;
            }
        }
        Ok(d)
    }
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
    m.add_class::<RustEnv>()?;
    m.add_class::<RustVecEnv>()?;
    m.add_class::<RustRouter>()?;
    m.add_function(wrap_pyfunction!(compare_json, m)?)?;
    m.add_function(wrap_pyfunction!(derive_seed, m)?)?;
    m.add_function(wrap_pyfunction!(reference_rewards, m)?)?;
    m.add_function(wrap_pyfunction!(rust_decisions_per_s, m)?)?;
    m.add("ROUTER_NAMES", haca_policy::ROUTER_NAMES.to_vec())?;
    Ok(())
}
