//! `RustVecEnv`: the Rust `VecEnv`, the native side of `haca.VectorEnv`.

use haca_env::{AutoresetMode, VecEnv};
use numpy::{PyReadonlyArray1, PyReadwriteArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::{check_shape, load_scenario, obs_mut, value_error};

/// Many envs stepped in parallel in Rust (`haca.VectorEnv` wraps it).
#[pyclass(module = "haca._haca")]
pub(crate) struct RustVecEnv {
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
