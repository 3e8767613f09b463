//! Model memory: which models a node holds, LRU eviction of idle ones, and cold loads finishing.

use super::{CacheEntry, CacheState, Cluster};
use crate::sim::events::EventQueue;
use crate::sim::jobs::Jobs;
use crate::sim::topology::Topology;

impl Cluster {
    #[inline]
    pub fn cache_entry(&self, topo: &Topology, n: usize, model: u32) -> &CacheEntry {
        &self.cache[n * topo.models() + model as usize]
    }

    /// Evicts least recently used idle models until `size` GB fit; false if they cannot. An
    /// evicted model's prefix KV blocks go with it (they lived in its GPU memory).
    pub(super) fn make_room(&mut self, topo: &Topology, n: usize, size: f64) -> bool {
        let models = &topo.sc.models;
        let m = models.len();
        let memory = topo.sc.nodes[n].memory_gb;
        let entries = &mut self.cache[n * m..(n + 1) * m];
        let evictable = |e: &CacheEntry| e.state == CacheState::Ready && e.pins == 0;
        let spare: f64 = entries
            .iter()
            .zip(models)
            .filter(|(e, _)| evictable(e))
            .map(|(_, md)| md.memory_gb)
            .sum();
        let node = &mut self.nodes[n];
        if node.mem_used - spare + size > memory + 1e-9 {
            return false;
        }
        while node.mem_used + size > memory + 1e-9 {
            let victim = (0..m)
                .filter(|&mi| evictable(&entries[mi]))
                .min_by(|&a, &b| entries[a].last_used.total_cmp(&entries[b].last_used))
                .expect("evictable memory was counted above");
            entries[victim].state = CacheState::Absent;
            if let Some(l) = &mut self.loads {
                l.settle(n * m + victim);
                l.evicted(topo.load_time[victim] * self.externality);
            }
            node.mem_used -= models[victim].memory_gb;
            if let Some(p) = &mut self.prefix {
                p.on_model_evicted(topo, n, victim);
            }
        }
        true
    }

    pub fn on_load_done(
        &mut self,
        topo: &Topology,
        q: &mut EventQueue,
        jobs: &Jobs,
        n: usize,
        model: u32,
    ) {
        self.cache[n * topo.models() + model as usize].state = CacheState::Ready;
        // Slot order keeps the scheduling of simultaneous finishes reproducible.
        let off = topo.slot_off[n];
        for i in off..off + self.nodes[n].busy as usize {
            let r = self.running[i];
            if r.start.is_infinite() && jobs[r.job].model == model {
                self.running[i].start = q.now;
                self.schedule_finish(topo, q, jobs, n, r.job);
            }
        }
    }
}
