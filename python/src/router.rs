//! `RustRouter`: a heuristic or an exported policy, the native side of `haca.Router`.

use std::sync::{Arc, Mutex};

use haca_policy::{Policy, PolicyRouter, Router, Selection};
use pyo3::prelude::*;

use crate::value_error;

/// A router (heuristic by name, or an exported policy) acting on a `RustEnv`'s current view.
#[pyclass(module = "haca._haca")]
pub(crate) struct RustRouter {
    // Routers are `Send` but not `Sync`; Python objects may be shared between threads.
    router: Mutex<Box<dyn Router>>,
}

impl RustRouter {
    fn new(router: Box<dyn Router>) -> RustRouter {
        RustRouter {
            router: Mutex::new(router),
        }
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Box<dyn Router>> {
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
