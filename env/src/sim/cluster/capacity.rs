//! Idle and stranded capacity, kept up to date per node so that the cluster totals cost O(1)
//! per change, the lazily integrated busy time behind per-node busy fractions, and the jobs the
//! nodes hold.

use super::Cluster;
use crate::sim::topology::Topology;

impl Cluster {
    /// Brings node `n`'s lazily integrated busy and up time to `now`; call before changing them.
    #[inline]
    pub(super) fn touch(&mut self, n: usize, now: f64) {
        let node = &mut self.nodes[n];
        let dt = now - node.last_t;
        if node.up {
            node.busy_int += dt * node.busy as f64;
            node.up_int += dt;
        }
        node.last_t = now;
    }

    /// Brings every node's integrals to `now` (at the end of an episode).
    pub fn touch_all(&mut self, now: f64) {
        for n in 0..self.nodes.len() {
            self.touch(n, now);
        }
    }

    /// Recomputes node `n`'s idle and stranded capacity and updates the cluster totals.
    #[inline]
    pub fn refresh(&mut self, topo: &Topology, n: usize) {
        let spec = &topo.sc.nodes[n];
        let node = &self.nodes[n];
        let idle = if node.up {
            spec.speed * (spec.slots - node.busy) as f64
        } else {
            0.0
        };
        let stranded = if idle > 0.0 && node.queue.is_empty() && self.could_take_waiting(topo, n) {
            idle
        } else {
            0.0
        };
        let node = &mut self.nodes[n];
        self.cap_idle += idle - node.idle_cap;
        self.cap_stranded += stranded - node.stranded_cap;
        node.idle_cap = idle;
        node.stranded_cap = stranded;
    }

    /// Whether some job waiting in a queue is of a kind node `n` can serve.
    #[inline]
    fn could_take_waiting(&self, topo: &Topology, n: usize) -> bool {
        let row = topo.serve_row(n);
        row.iter().zip(&self.waiting_bits).any(|(a, b)| a & b != 0)
    }

    /// Recomputes every node and the totals from scratch (when the set of waiting kinds changed;
    /// also removes any floating-point drift of the incremental totals).
    fn refresh_all(&mut self, topo: &Topology) {
        for n in 0..self.nodes.len() {
            self.refresh(topo, n);
        }
        self.cap_idle = self.nodes.iter().map(|x| x.idle_cap).sum();
        self.cap_stranded = self.nodes.iter().map(|x| x.stranded_cap).sum();
    }

    #[inline]
    pub(super) fn waiting_add(&mut self, topo: &Topology, kind: u32) {
        let k = kind as usize;
        self.waiting[k] += 1;
        if self.waiting[k] == 1 {
            self.waiting_bits[k / 64] |= 1 << (k % 64);
            self.refresh_all(topo);
        }
    }

    #[inline]
    pub(super) fn waiting_remove(&mut self, topo: &Topology, kind: u32) {
        let k = kind as usize;
        self.waiting[k] -= 1;
        if self.waiting[k] == 0 {
            self.waiting_bits[k / 64] &= !(1 << (k % 64));
            self.refresh_all(topo);
        }
    }

    /// Node `n`'s busy slot-seconds over its slot-seconds up; `None` if it was never up.
    pub fn busy_fraction(&self, topo: &Topology, n: usize) -> Option<f64> {
        let node = &self.nodes[n];
        (node.up_int > 0.0).then(|| node.busy_int / (node.up_int * topo.sc.nodes[n].slots as f64))
    }

    /// Jobs in node queues, and jobs holding slots (loading or running).
    pub fn held(&self) -> (u64, u64) {
        let queued: usize = self.nodes.iter().map(|n| n.queue.len()).sum();
        let in_slots: usize = self.nodes.iter().map(|n| n.busy as usize).sum();
        (queued as u64, in_slots as u64)
    }
}
