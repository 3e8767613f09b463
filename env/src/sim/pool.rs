//! The pooled reference: one central queue served by the first free compatible slot, the
//! routing-free ideal that the stranded-idle metric is measured against.

use super::cluster::CacheState;
use super::episode::Episode;
use super::topology::Topology;

impl Episode {
    /// Hands waiting jobs, oldest first, to free compatible slots. A job that fits nowhere yet
    /// is skipped, not blocking the ones behind it, so no compatible slot idles while a job
    /// waits: stranded idle is zero by construction.
    pub(super) fn pool_dispatch(&mut self, topo: &Topology) {
        if self.pending.is_empty() {
            return;
        }
        // Kinds some free slot can serve: jobs of other kinds are skipped in O(1), so a long
        // queue costs little while the free slots are on nodes it cannot use.
        let mut free: u32 = 0;
        let mut servable = std::mem::take(&mut self.servable);
        servable.clear();
        servable.resize(topo.words, 0);
        for (n, node) in self.cluster.nodes.iter().enumerate() {
            let idle = topo.sc.nodes[n].slots - node.busy;
            if node.up && idle > 0 {
                free += idle;
                let row = topo.serve_row(n);
                servable.iter_mut().zip(row).for_each(|(a, b)| *a |= b);
            }
        }
        let mut i = 0;
        while free > 0 && i < self.pending.len() {
            let kind = self.jobs[self.pending[i]].kind as usize;
            let (word, bit) = (kind / 64, 1u64 << (kind % 64));
            if servable[word] & bit != 0 && self.pool_place(topo, self.pending[i]) {
                self.pending.remove(i);
                self.acc.decisions += 1;
                free -= 1;
            } else {
                // The oldest job of a kind did not fit: no younger one of that kind will.
                servable[word] &= !bit;
                i += 1;
            }
        }
        self.servable = servable;
    }

    /// Starts job `j` on a free compatible slot if there is one: a node with the model ready
    /// first, then the fastest, then the lowest index.
    fn pool_place(&mut self, topo: &Topology, j: u32) -> bool {
        let job = self.jobs[j];
        let c = &self.cluster;
        let mut cand = std::mem::take(&mut self.candidates);
        cand.clear();
        cand.extend((0..topo.nodes()).filter(|&n| {
            c.nodes[n].up && c.nodes[n].busy < topo.sc.nodes[n].slots && topo.serves(n, job.kind)
        }));
        let ready = |n: usize| c.cache_entry(topo, n, job.model).state != CacheState::Absent;
        let speed = |n: usize| topo.sc.nodes[n].speed;
        cand.sort_by(|&a, &b| {
            ready(b)
                .cmp(&ready(a))
                .then(speed(b).total_cmp(&speed(a)))
                .then(a.cmp(&b))
        });
        let mut placed = false;
        for &n in &cand {
            self.jobs[j].node = n as u32;
            if self
                .cluster
                .start(topo, &mut self.q, &mut self.jobs, n, j, true)
            {
                self.cluster.refresh(topo, n);
                placed = true;
                break;
            }
        }
        self.candidates = cand;
        placed
    }
}
