//! `RustEnv`: one env, the native side of `haca.make`.

use haca_env::Env;
use numpy::PyReadwriteArrayDyn;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::router::RustRouter;
use crate::{check_shape, load_scenario, obs_mut, value_error};

/// One env (`haca.make` wraps it as a `gymnasium.Env`).
#[pyclass(module = "haca._haca")]
pub(crate) struct RustEnv {
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

    /// The node `router` picks for the current decision: on the deciding client's view, or,
    /// with `oracle`, on the truth (`Env::oracle_view`: every node now, every client's
    /// dispatches, dead listed nodes masked while a live legal node remains), the label a
    /// privileged teacher gives.
    #[pyo3(signature = (router, oracle = false))]
    fn route(&self, router: &RustRouter, oracle: bool) -> usize {
        if oracle {
            let mut truth = self.env.obs().clone();
            self.env.oracle_view(&mut truth);
            router.lock().route(&truth)
        } else {
            router.lock().route(self.env.obs())
        }
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
