//! The router's view of a decision: every node's state as the router may know it (fresh, or as
//! of the last scrape plus its own dispatches since), the legality mask, and the job.

use haca_policy::{ClusterView, JobView};

use super::cluster::CacheState;
use super::episode::Episode;
use super::topology::Topology;

impl Episode {
    /// Writes the view of job `j`'s decision, mask included, in one pass over the nodes;
    /// returns whether some node is legal.
    pub(super) fn fill_view(&mut self, topo: &Topology, view: &mut ClusterView, j: u32) -> bool {
        let job = self.jobs[j];
        let sc = &topo.sc;
        let stale = sc.scrape_interval_s > 0.0;
        let now = self.q.now;
        let c = &self.cluster;
        let load_s = topo.load_time[job.model as usize];
        let mut any = false;
        for (n, node) in c.nodes.iter().enumerate() {
            let legal = node.up && topo.serves(n, job.kind);
            view.mask[n] = legal;
            any |= legal;
            let ready = c.cache_entry(topo, n, job.model).state != CacheState::Absent;
            let (busy, queue, work) = if stale {
                (
                    node.snap_busy,
                    node.snap_queue + node.disp_count,
                    node.snap_work + node.disp_est,
                )
            } else {
                (
                    node.busy,
                    node.queue.len() as u32,
                    c.work_left(topo, n, now),
                )
            };
            // Capabilities were written once per network; only the state changes.
            let v = &mut view.nodes[n];
            v.up = node.up;
            v.busy_slots = busy;
            v.queue_len = queue;
            v.work_left = work;
            v.model_ready = ready;
            v.load_s = if ready { 0.0 } else { load_s };
        }
        view.now = now;
        view.observed_at = if stale { c.observed_at } else { now };
        view.jobs_in_system = self.acc.jobs_in_system;
        view.job = JobView {
            model: job.model,
            model_gb: sc.models[job.model as usize].memory_gb,
            verification: job.mode,
            input_tokens: job.input,
            output_tokens_est: job.est_out,
            size_visibility: sc.size_visibility,
            est_work: job.est_work,
            retries: job.retries,
        };
        any
    }
}
