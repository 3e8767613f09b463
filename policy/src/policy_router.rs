//! A loaded policy behind the [`Router`] trait.

use std::sync::Arc;

use crate::features::{self, GLOBAL_FEATURES, JOB_FEATURES, NODE_FEATURES};
use crate::file::Policy;
use crate::model::{softmax, Scratch};
use crate::obs::{Obs, ObsMut};
use crate::rng::Rng;
use crate::router::Router;
use crate::view::ClusterView;

/// How a [`PolicyRouter`] turns scores into a node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Selection {
    /// The highest-scoring legal node (ties to the lowest index).
    Greedy,
    /// Sample from the softmax of `logits / temperature`.
    Sample { temperature: f32 },
}

/// Routes with a learned policy. Encodes the view with the scales the policy was trained with,
/// scores every node, and picks one; all buffers are reused, so after the first decision on a
/// network of a given size a decision allocates nothing.
#[derive(Debug, Clone)]
pub struct PolicyRouter {
    policy: Arc<Policy>,
    selection: Selection,
    rng: Rng,
    name: String,
    scratch: Scratch,
    nodes: Vec<f32>,
    job: [f32; JOB_FEATURES],
    global: [f32; GLOBAL_FEATURES],
    mask: Vec<bool>,
    logits: Vec<f32>,
    probs: Vec<f32>,
}

impl PolicyRouter {
    pub fn new(policy: Arc<Policy>, selection: Selection, seed: u64) -> PolicyRouter {
        PolicyRouter {
            policy,
            selection,
            rng: Rng::new(seed),
            name: "policy".into(),
            scratch: Scratch::default(),
            nodes: Vec::new(),
            job: [0.0; JOB_FEATURES],
            global: [0.0; GLOBAL_FEATURES],
            mask: Vec::new(),
            logits: Vec::new(),
            probs: Vec::new(),
        }
    }

    /// The name used in reports (default `policy`).
    pub fn with_name(mut self, name: impl Into<String>) -> PolicyRouter {
        self.name = name.into();
        self
    }

    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// Scores the nodes of `view`; returns the logits (`-inf` for masked nodes) and the value.
    pub fn scores(&mut self, view: &ClusterView) -> (&[f32], f32) {
        let n = view.nodes.len();
        self.nodes.resize(n * NODE_FEATURES, 0.0);
        self.mask.resize(n, false);
        self.logits.resize(n, 0.0);
        let out = ObsMut {
            nodes: &mut self.nodes,
            job: &mut self.job,
            global: &mut self.global,
            mask: &mut self.mask,
        };
        features::encode_with_scales(view, self.policy.info.scales, out);
        let obs = Obs::new(&self.nodes, &self.job, &self.global, &self.mask);
        let value = self
            .policy
            .network
            .forward(obs, &mut self.scratch, &mut self.logits);
        (&self.logits, value)
    }
}

impl Router for PolicyRouter {
    fn name(&self) -> &str {
        &self.name
    }

    fn reset(&mut self, seed: u64) {
        self.rng = Rng::new(seed);
    }

    fn route(&mut self, view: &ClusterView) -> usize {
        self.scores(view);
        let (logits, probs) = (&mut self.logits, &mut self.probs);
        self.selection
            .pick(logits, &self.mask, probs, &mut self.rng)
    }
}

impl Selection {
    /// The node these logits choose among the legal ones (`mask`): the highest (ties to the
    /// lowest index), or a draw from `softmax(logits / temperature)` with one number of `rng`
    /// (`logits` are divided in place; `probs` is scratch). Panics when no node is legal.
    #[inline]
    pub fn pick(
        self,
        logits: &mut [f32],
        mask: &[bool],
        probs: &mut Vec<f32>,
        rng: &mut Rng,
    ) -> usize {
        match self {
            Selection::Greedy => {
                let mut best = None;
                for (i, &l) in logits.iter().enumerate() {
                    if mask[i] && best.is_none_or(|(_, b)| l > b) {
                        best = Some((i, l));
                    }
                }
                best.expect("route called with no legal node").0
            }
            Selection::Sample { temperature } => {
                let t = temperature.max(1e-6);
                probs.resize(logits.len(), 0.0);
                logits.iter_mut().for_each(|l| *l /= t);
                softmax(logits, probs);
                let u = rng.uniform() as f32;
                let mut acc = 0.0;
                let mut last = None;
                for (i, &p) in probs.iter().enumerate() {
                    if mask[i] && p > 0.0 {
                        acc += p;
                        last = Some(i);
                        if u < acc {
                            return i;
                        }
                    }
                }
                // Rounding left u above the running sum: the last legal node.
                last.or_else(|| mask.iter().position(|&m| m))
                    .expect("route called with no legal node")
            }
        }
    }
}
