//! The static tables of one network, derived once from its scenario: which node serves which
//! (model, verification) kind, where each node's slots live in the flat slot buffer, load times
//! and the samplers of the job mix. Shared (behind an `Arc`) by every episode on that network.

use std::sync::Arc;

use haca_policy::{ClusterView, NodeView, Verification};

use crate::scenario::Scenario;

#[derive(Debug)]
pub(crate) struct Topology {
    pub sc: Arc<Scenario>,
    /// 64-bit words per node in `serve`.
    pub words: usize,
    /// Node `n` serves kind `k` (`model * 3 + mode`) when bit `k` of row `n` is set.
    serve: Vec<u64>,
    /// The fastest speed serving each kind (a job's best possible service time, for slowdown).
    pub best_speed: Vec<f64>,
    /// Each model's cold-load time, quantized.
    pub load_time: Vec<f64>,
    pub mode_cdf: [f64; 3],
    pub model_cdf: [Vec<f64>; 3],
    /// Models by overall popularity, most popular first (the initial cache fills in this order).
    pub popularity_order: Vec<usize>,
    /// Node `n`'s slots are `slot_off[n]..slot_off[n] + slots` of the flat slot buffer.
    pub slot_off: Vec<usize>,
    pub total_slots: usize,
}

impl Topology {
    pub fn new(sc: Arc<Scenario>) -> Topology {
        let m = sc.models.len();
        let kinds = m * 3;
        let words = kinds.div_ceil(64);
        let mut serve = vec![0u64; sc.nodes.len() * words];
        let mut best_speed = vec![0.0f64; kinds];
        for (i, node) in sc.nodes.iter().enumerate() {
            for (mi, model) in sc.models.iter().enumerate() {
                for mode in Verification::ALL {
                    if node.can_serve(model, mode) {
                        let k = mi * 3 + mode.index();
                        serve[i * words + k / 64] |= 1 << (k % 64);
                        best_speed[k] = best_speed[k].max(node.speed);
                    }
                }
            }
        }
        let load_time = (0..m)
            .map(|mi| quantize(sc.load_time(mi), sc.time_quantum_s))
            .collect();
        let mix = &sc.workload.mix;
        let mode_cdf: [f64; 3] = cdf(mix).try_into().expect("three modes");
        let model_cdf = std::array::from_fn(|v| {
            let p = &sc.workload.model_probs[v];
            if p.iter().sum::<f64>() > 0.0 {
                cdf(p)
            } else {
                vec![f64::INFINITY; m]
            }
        });
        let overall: Vec<f64> = (0..m)
            .map(|mi| {
                (0..3)
                    .map(|v| mix[v] * sc.workload.model_probs[v][mi])
                    .sum()
            })
            .collect();
        let mut popularity_order: Vec<usize> = (0..m).collect();
        popularity_order.sort_by(|&a, &b| overall[b].total_cmp(&overall[a]).then(a.cmp(&b)));
        let mut slot_off = Vec::with_capacity(sc.nodes.len());
        let mut total_slots = 0;
        for node in &sc.nodes {
            slot_off.push(total_slots);
            total_slots += node.slots as usize;
        }
        Topology {
            words,
            serve,
            best_speed,
            load_time,
            mode_cdf,
            model_cdf,
            popularity_order,
            slot_off,
            total_slots,
            sc,
        }
    }

    pub fn nodes(&self) -> usize {
        self.sc.nodes.len()
    }

    pub fn models(&self) -> usize {
        self.sc.models.len()
    }

    /// The kinds node `n` serves, as a bit row.
    #[inline]
    pub fn serve_row(&self, n: usize) -> &[u64] {
        &self.serve[n * self.words..(n + 1) * self.words]
    }

    /// Every node's bit row of the kinds it serves, in node order.
    pub fn serve_rows(&self) -> std::slice::ChunksExact<'_, u64> {
        self.serve.chunks_exact(self.words)
    }

    #[inline]
    pub fn serves(&self, n: usize, kind: u32) -> bool {
        let k = kind as usize;
        self.serve[n * self.words + k / 64] & (1 << (k % 64)) != 0
    }

    /// `work` on node `n`, quantized to the scenario's time step.
    #[inline]
    pub fn service_time(&self, n: usize, work: f64) -> f64 {
        quantize(work / self.sc.nodes[n].speed, self.sc.time_quantum_s)
    }

    /// A view with every node's capabilities written: only the state changes per decision.
    pub fn empty_view(&self) -> ClusterView {
        let sc = &self.sc;
        ClusterView {
            nodes: sc
                .nodes
                .iter()
                .map(|spec| NodeView {
                    speed: spec.speed,
                    slots: spec.slots,
                    memory_gb: spec.memory_gb,
                    tee: spec.tee,
                    zk: spec.zk,
                    ..Default::default()
                })
                .collect(),
            mask: vec![false; sc.nodes.len()],
            scales: sc.scales,
            clients: sc.clients.count,
            client_share: sc.clients.share(0),
            ..Default::default()
        }
    }
}

#[inline]
pub(crate) fn quantize(x: f64, q: f64) -> f64 {
    if q > 0.0 {
        (x / q).floor() * q
    } else {
        x
    }
}

/// Cumulative distribution for sampling with `partition_point(|c| c <= u)`, `u` in [0, 1). From
/// the last positive weight on the bounds are infinite, so rounding can never select a trailing
/// zero-weight entry (a model a mode cannot be served with).
fn cdf(weights: &[f64]) -> Vec<f64> {
    let total: f64 = weights.iter().sum();
    let mut acc = 0.0;
    let mut out: Vec<f64> = weights
        .iter()
        .map(|w| {
            acc += w / total;
            acc
        })
        .collect();
    let last = weights.iter().rposition(|&w| w > 0.0).unwrap_or(0);
    out[last..].fill(f64::INFINITY);
    out
}

#[cfg(test)]
mod tests {
    use super::cdf;

    #[test]
    fn cdf_never_selects_a_trailing_zero_weight() {
        let c = cdf(&[0.3, 0.0, 0.7, 0.0]);
        assert_eq!(c[0], 0.3);
        assert_eq!(c[1], 0.3);
        assert_eq!(c[2], f64::INFINITY);
        let pick = |u: f64| c.partition_point(|&x| x <= u);
        assert_eq!(pick(0.0), 0);
        assert_eq!(
            pick(0.3),
            2,
            "the zero-weight entry in the middle is skipped"
        );
        assert_eq!(pick(0.999_999_999_999), 2);
        // Shares that do not sum exactly to one still never reach the zero-weight tail.
        let c = cdf(&[1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0, 0.0]);
        assert_eq!(c.partition_point(|&x| x <= 0.999_999_999_999_999_9), 2);
    }
}
