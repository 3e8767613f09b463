//! Node failures as clients live them: the jobs a dead node held, and requests sent to a dead
//! node the registry still lists, come back to their clients for another routing.

use haca_policy::Feedback;

use super::Episode;
use crate::sim::events::Event;
use crate::sim::topology::Topology;

impl Episode {
    /// A request to dead node `node` timed out: job `j` goes back to its client for another try.
    pub(super) fn on_fail_return(&mut self, j: u32, node: u32) {
        let at = self.failing.iter().position(|&f| f == j);
        self.failing
            .swap_remove(at.expect("a failing job is listed"));
        self.hand_back(j, node);
    }

    /// Job `j`'s attempt on `node` failed and its client knows: the client hears of it, and the
    /// job waits for another routing.
    fn hand_back(&mut self, j: u32, node: u32) {
        self.credit(j);
        let now = self.q.now;
        let job = &mut self.jobs[j];
        self.clients
            .on_answer(job.client, node as usize, job.est_work);
        // The failed node's prefix saving goes with it: the router sees the job's full work.
        job.work += job.prefix_saved;
        job.est_work += job.prefix_saved;
        job.prefix_saved = 0.0;
        let fb = Feedback {
            node,
            latency_s: now - job.since,
            ok: false,
        };
        job.since = now;
        job.retries += 1;
        job.failed_on = node;
        self.clients.push_feedback(job.client, fb);
        self.acc.retries += 1;
        self.pending.push_back(j);
    }

    pub(super) fn on_node_down(&mut self, topo: &Topology, n: usize) {
        let mut lost = std::mem::take(&mut self.lost);
        self.cluster
            .on_node_down(topo, &mut self.q, &self.jobs, n, &mut lost);
        if let Some(reg) = topo.sc.registry {
            // Its last heartbeat keeps it listed for a while: routers still see it as active.
            let node = &mut self.cluster.nodes[n];
            node.listed = true;
            let t = self
                .heartbeats
                .delist_time(n, self.q.now, reg.heartbeat_s, reg.max_age_s);
            let (node, epoch) = (n as u32, node.epoch);
            self.q.push(t, Event::Delist { node, epoch });
        }
        // Work in progress is lost. Without a registry the failure is known at once and every
        // job goes back to its client now, running ones first; with one, a client learns of it
        // as of a dead listed node: when its request times out. The pooled reference's central
        // queue sees the node die.
        let node = n as u32;
        for &j in &lost {
            match topo.sc.registry.filter(|_| !self.pooled) {
                Some(reg) => {
                    self.failing.push(j);
                    self.q
                        .after(reg.fail_timeout_s, Event::FailReturn { job: j, node });
                }
                None => self.hand_back(j, node),
            }
        }
        lost.clear();
        self.lost = lost;
    }
}
