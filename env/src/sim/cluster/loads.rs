//! Load shares for amortized credit ([`crate::CreditMode::Amortized`]): a cold load is an
//! investment that the jobs it serves share.
//!
//! A job that triggers a load waits the load time, and a per-decision credit charges its
//! decision the whole of it; the jobs that later run warm on that model pay nothing for it, and
//! a one-decision credit (`gamma = 0`) never sees that they were saved a load, so it prices a
//! load that pays for itself many times over as dearly as one that serves a single job. Here
//! the loading decision is charged its share instead: the load time over the number of jobs
//! that started on the model while it stayed in memory (the loading job included), the rest
//! refunded when the copy is evicted, lost with its node, or the episode ends. A load that serves one job costs its decision the whole load; one that serves a
//! hundred, a hundredth of it. Evicting copies that serve few jobs to load others (thrashing)
//! stays expensive for the same reason.

use super::Cluster;
use crate::sim::topology::Topology;

/// The decision that loaded a model copy, the load's time, and how many jobs it served.
#[derive(Debug, Clone, Copy)]
struct Share {
    decision: u64,
    load_s: f64,
    served: u32,
}

impl Share {
    /// The refund owed to the loading decision (seconds, as a negative credit): all of the
    /// load but its own share.
    fn refund(&self) -> Option<(u64, f64)> {
        let owed = self.load_s * (1.0 - 1.0 / self.served.max(1) as f64);
        (self.decision != u64::MAX && owed > 0.0).then_some((self.decision, -owed))
    }
}

/// Per cache entry (`n * models + m`), the share of the copy in memory, if a routed job
/// loaded it.
#[derive(Debug, Clone, Default)]
pub(crate) struct LoadShares {
    shares: Vec<Option<Share>>,
    /// Refunds settled since the episode last took its credits.
    pub settled: Vec<(u64, f64)>,
}

impl LoadShares {
    pub fn new(entries: usize) -> LoadShares {
        LoadShares {
            shares: vec![None; entries],
            settled: Vec::new(),
        }
    }

    /// Decision `decision` started a load of `load_s` seconds into entry `ci`.
    pub fn loaded(&mut self, ci: usize, decision: u64, load_s: f64) {
        self.settle(ci);
        self.shares[ci] = Some(Share {
            decision,
            load_s,
            served: 1,
        });
    }

    /// Another job started on entry `ci` (warm, or while it loads).
    #[inline]
    pub fn served(&mut self, ci: usize) {
        if let Some(s) = &mut self.shares[ci] {
            s.served += 1;
        }
    }

    /// Entry `ci` leaves memory: its loader gets its refund.
    pub fn settle(&mut self, ci: usize) {
        if let Some(refund) = self.shares[ci].take().and_then(|s| s.refund()) {
            self.settled.push(refund);
        }
    }

    /// Every entry leaves memory (the episode ends).
    pub fn settle_all(&mut self) {
        for ci in 0..self.shares.len() {
            self.settle(ci);
        }
    }

    /// The refunds owed if every copy left memory now, without settling them (a rollout that
    /// ends mid-episode charges what it has seen).
    pub fn outstanding(&self, out: &mut Vec<(u64, f64)>) {
        out.extend(self.shares.iter().flatten().filter_map(Share::refund));
    }
}

impl Cluster {
    /// Settles node `n`'s copies (it went down: its memory is empty).
    pub(super) fn settle_node_loads(&mut self, topo: &Topology, n: usize) {
        if let Some(l) = &mut self.loads {
            let m = topo.models();
            (n * m..(n + 1) * m).for_each(|ci| l.settle(ci));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_load_that_served_four_jobs_costs_its_decision_a_quarter() {
        let mut l = LoadShares::new(2);
        l.loaded(1, 7, 8.0);
        for _ in 0..3 {
            l.served(1);
        }
        l.served(0); // entry 0 was never loaded by a decision: nothing to share
        let mut open = Vec::new();
        l.outstanding(&mut open);
        assert_eq!(open, vec![(7, -6.0)]);
        assert!(l.settled.is_empty(), "outstanding settles nothing");
        l.settle(1);
        l.settle(1);
        assert_eq!(l.settled, vec![(7, -6.0)], "settled once");
    }

    #[test]
    fn a_load_that_served_only_its_own_job_is_charged_in_full() {
        let mut l = LoadShares::new(1);
        l.loaded(0, 3, 5.0);
        l.settle_all();
        assert!(l.settled.is_empty());
        // A reload settles the copy it replaces first.
        l.loaded(0, 4, 2.0);
        l.served(0);
        l.loaded(0, 5, 2.0);
        assert_eq!(l.settled, vec![(4, -1.0)]);
    }
}
