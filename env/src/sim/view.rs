//! The router's view of a decision: every node's state as the router may know it (fresh, or as
//! of the last scrape plus its own dispatches since), the legality mask, and the job.

use haca_policy::{ClusterView, JobView};

use super::cluster::{work_left, CacheState};
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
        let (word, bit) = (job.kind as usize / 64, 1u64 << (job.kind % 64));
        // Node `n`'s entry for this model is `cache[n * models + model]`.
        let cache = c.cache[job.model as usize..].iter().step_by(topo.models());
        let rows = c
            .nodes
            .iter()
            .zip(topo.serve_rows())
            .zip(topo.slot_off.iter());
        let out = view.nodes.iter_mut().zip(view.mask.iter_mut());
        let speeds = sc.nodes.iter().map(|spec| spec.speed);
        let mut any = false;
        // One pass with zipped iterators: no index, so no bounds check per field.
        for ((((node, serve), &off), entry), ((v, legal_out), speed)) in
            rows.zip(cache).zip(out.zip(speeds))
        {
            let legal = node.listed && serve[word] & bit != 0;
            *legal_out = legal;
            any |= legal;
            let ready = entry.state != CacheState::Absent;
            let (busy, queue, work) = if stale {
                (node.snap_busy, node.snap_queue, node.snap_work)
            } else {
                let running = &c.running[off..off + node.busy as usize];
                let work = work_left(node.queued_est(), running, speed, now);
                (node.busy, node.queue.len() as u32, work)
            };
            // Capabilities were written once per network; only the state changes.
            v.up = node.listed;
            v.busy_slots = busy;
            v.queue_len = queue;
            v.work_left = work;
            v.model_ready = ready;
            v.load_s = if ready { 0.0 } else { load_s };
        }
        view.jobs_in_system = self.acc.jobs_in_system;
        if stale {
            // The deciding client adds its own dispatches since the scrape (only its own), and
            // knows which of its requests came back. With fresh views they are in the truth
            // already and `own_*` stay 0.
            let (count, est) = self.clients.row(job.client);
            let (a_count, a_est) = self.clients.answered_row(job.client);
            let sent = count.iter().zip(est);
            let back = a_count.iter().zip(a_est);
            let (mut own, mut back_total) = (0, 0);
            for (v, ((&k, &e), (&ka, &ea))) in view.nodes.iter_mut().zip(sent.zip(back)) {
                v.queue_len += k;
                v.work_left += e;
                v.own_jobs = k;
                v.own_work = e;
                v.own_answered = ka;
                v.own_answered_work = ea;
                own += k;
                back_total += ka;
            }
            // One router sends every job and hears every answer, so it knows how many jobs are
            // in the system; a client of many counts the scrape's jobs, its own dispatches since
            // less those that came back, and the job in its hands: never the others' traffic.
            if sc.clients.count > 1 {
                view.jobs_in_system = (c.snap_jobs + own).saturating_sub(back_total) + 1;
            }
        }
        if let Some(p) = &self.cluster.prefix {
            for (n, (v, &legal)) in view.nodes.iter_mut().zip(&view.mask).enumerate() {
                v.prefix_hit = if legal && job.prefix.1 > 0 {
                    p.hits(topo, n, &job)
                } else {
                    0
                };
            }
        }
        view.now = now;
        view.observed_at = if stale { c.observed_at } else { now };
        view.job = JobView {
            model: job.model,
            model_gb: sc.models[job.model as usize].memory_gb,
            verification: job.mode,
            input_tokens: job.input,
            output_tokens_est: job.est_out,
            size_visibility: sc.size_visibility,
            est_work: job.est_work,
            retries: job.retries,
            failed_on: (job.failed_on != u32::MAX).then_some(job.failed_on),
            prefix_blocks: job.prefix.1,
            block_work: sc.prefix.map_or(0.0, |p| {
                let mult = sc.verification.multiplier[job.mode.index()];
                sc.models[job.model as usize].prefill_cost * p.block_tokens as f64 * mult
            }),
        };
        view.client = job.client;
        view.client_share = sc.clients.share(job.client);
        if any {
            // Only a view that is decided on hands the client its news; a job with no legal
            // node waits for a repair and its client hears at its next decision.
            self.clients.take_feedback(job.client, &mut view.feedback);
        }
        any
    }

    /// Overwrites the node states of `view` (the current decision's view) with the truth: every
    /// node as it is now, with every client's dispatches, and listed nodes that are down masked
    /// while a live legal node remains. What no client sees; a privileged teacher reads it.
    pub(super) fn truth_into(&self, topo: &Topology, view: &mut ClusterView) {
        let c = &self.cluster;
        let now = self.q.now;
        for (n, (node, v)) in c.nodes.iter().zip(view.nodes.iter_mut()).enumerate() {
            v.up = node.up;
            v.busy_slots = node.busy;
            v.queue_len = node.queue.len() as u32;
            v.work_left = c.work_left(topo, n, now);
            v.own_jobs = 0;
            v.own_work = 0.0;
            v.own_answered = 0;
            v.own_answered_work = 0.0;
        }
        if view
            .mask
            .iter()
            .zip(&c.nodes)
            .any(|(&m, node)| m && node.up)
        {
            for (m, node) in view.mask.iter_mut().zip(&c.nodes) {
                *m &= node.up;
            }
        }
        view.observed_at = now;
        view.jobs_in_system = self.acc.jobs_in_system;
        view.client_share = 1.0;
    }
}
