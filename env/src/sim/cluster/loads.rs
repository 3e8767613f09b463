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
//!
//! Copy-value credit ([`crate::CreditMode::CopyValue`]) prices what amortized credit leaves
//! out: a copy's worth to the later jobs it serves. Each job that starts on a copy some
//! decision loaded is saved, against the best other node that serves it (by expected delay on
//! the truth as it starts: the wait for a slot, a load where that node lacks the model, its own
//! service), and the loading decision is paid those savings when the copy leaves memory. The
//! copies a load evicts are priced only roughly: the load is charged their load times at once
//! (what reloading them would cost). Without that charge PPO loaded 9-15 times per episode at
//! 10 clients; with it, PPO still swings between too few and too many loads (the
//! haca-clients card).

use super::{CacheState, Cluster};
use crate::sim::jobs::Job;
use crate::sim::topology::Topology;

/// The decision that loaded a model copy, the load's time, and how many jobs it served.
#[derive(Debug, Clone, Copy)]
struct Share {
    decision: u64,
    load_s: f64,
    served: u32,
    /// Seconds the later jobs on the copy saved (copy-value credit).
    saved: f64,
}

impl Share {
    /// The refund owed to the loading decision (seconds, as a negative credit): all of the
    /// load but its own share, or, with `value`, what the copy saved the jobs it served.
    fn refund(&self, value: bool) -> Option<(u64, f64)> {
        let owed = if value {
            self.saved
        } else {
            self.load_s * (1.0 - 1.0 / self.served.max(1) as f64)
        };
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
    /// Copy-value credit: refund the copies' savings, not the loads' unshared part.
    value: bool,
    /// Load seconds of the copies evicted to make room for the load about to start.
    evicted_s: f64,
}

impl LoadShares {
    pub fn new(entries: usize, value: bool) -> LoadShares {
        LoadShares {
            shares: vec![None; entries],
            settled: Vec::new(),
            value,
            evicted_s: 0.0,
        }
    }

    /// Whether a job starting on entry `ci` should be told what it saved (copy-value credit,
    /// and a decision loaded that copy).
    #[inline]
    pub fn values(&self, ci: usize) -> bool {
        self.value && self.shares[ci].is_some()
    }

    /// A copy whose reload takes `reload_s` (weighted) left memory to make room for a load.
    pub fn evicted(&mut self, reload_s: f64) {
        if self.value {
            self.evicted_s += reload_s;
        }
    }

    /// Decision `decision` started a load of `load_s` seconds into entry `ci`; with copy-value
    /// credit it is charged the reloads of what it evicted.
    pub fn loaded(&mut self, ci: usize, decision: u64, load_s: f64) {
        self.settle(ci);
        if self.evicted_s > 0.0 {
            self.settled.push((decision, self.evicted_s));
            self.evicted_s = 0.0;
        }
        self.shares[ci] = Some(Share {
            decision,
            load_s,
            served: 1,
            saved: 0.0,
        });
    }

    /// Another job started on entry `ci` (warm, or while it loads), saving `saved` seconds.
    #[inline]
    pub fn served(&mut self, ci: usize, saved: f64) {
        if let Some(s) = &mut self.shares[ci] {
            s.served += 1;
            s.saved += saved;
        }
    }

    /// Entry `ci` leaves memory: its loader gets its refund.
    pub fn settle(&mut self, ci: usize) {
        let value = self.value;
        if let Some(refund) = self.shares[ci].take().and_then(|s| s.refund(value)) {
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
        out.extend(
            self.shares
                .iter()
                .flatten()
                .filter_map(|s| s.refund(self.value)),
        );
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

    /// Job `job` starts on entry `ci` of node `n`: it loaded the copy, or it is served by it
    /// (and saved what [`Cluster::copy_saving`] says).
    #[inline(never)]
    pub(super) fn note_load_share(
        &mut self,
        topo: &Topology,
        job: &Job,
        n: usize,
        ci: usize,
        loads: bool,
        now: f64,
    ) {
        let values = !loads && self.loads.as_ref().is_some_and(|l| l.values(ci));
        let saved = if values {
            self.copy_saving(topo, job, n, now)
        } else {
            0.0
        };
        let Some(l) = &mut self.loads else { return };
        if loads {
            l.loaded(ci, job.decision, topo.load_time[job.model as usize]);
        } else {
            l.served(ci, saved);
        }
    }

    /// The seconds `job` saves by starting on node `n` now rather than at the best other up
    /// node that serves it (0 where none does), by expected delay on the truth, weighted like
    /// every other externality.
    pub(super) fn copy_saving(&self, topo: &Topology, job: &Job, n: usize, now: f64) -> f64 {
        let model = job.model as usize;
        let mut alt = f64::INFINITY;
        for (k, node) in self.nodes.iter().enumerate() {
            if k == n || !node.up || !topo.serves(k, job.kind) {
                continue;
            }
            let spec = &topo.sc.nodes[k];
            let wait = if node.busy < spec.slots && node.queue.is_empty() {
                0.0
            } else {
                self.work_left(topo, k, now) / (spec.speed * spec.slots as f64)
            };
            let load = match self.cache[k * topo.models() + model].state {
                CacheState::Absent => topo.load_time[model],
                CacheState::Loading | CacheState::Ready => 0.0,
            };
            alt = alt.min(wait + load + topo.service_time(k, job.work));
        }
        let saved = alt - topo.service_time(n, job.work);
        if saved.is_finite() {
            saved.max(0.0) * self.externality
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_load_that_served_four_jobs_costs_its_decision_a_quarter() {
        let mut l = LoadShares::new(2, false);
        l.loaded(1, 7, 8.0);
        for _ in 0..3 {
            l.served(1, 5.0);
        }
        l.served(0, 5.0); // entry 0 was never loaded by a decision: nothing to share
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
        let mut l = LoadShares::new(1, false);
        l.loaded(0, 3, 5.0);
        l.settle_all();
        assert!(l.settled.is_empty());
        // A reload settles the copy it replaces first.
        l.loaded(0, 4, 2.0);
        l.served(0, 0.0);
        l.loaded(0, 5, 2.0);
        assert_eq!(l.settled, vec![(4, -1.0)]);
    }

    #[test]
    fn copy_value_refunds_what_the_copy_saved_its_later_jobs() {
        let mut l = LoadShares::new(2, true);
        assert!(!l.values(1), "no decision loaded it");
        l.loaded(1, 7, 8.0);
        assert!(l.values(1));
        l.served(1, 2.5);
        l.served(1, 0.0);
        l.served(1, 1.5);
        let mut open = Vec::new();
        l.outstanding(&mut open);
        assert_eq!(
            open,
            vec![(7, -4.0)],
            "the savings, not the load's unshared part"
        );
        l.loaded(0, 8, 3.0);
        l.settle_all();
        assert_eq!(
            l.settled,
            vec![(7, -4.0)],
            "a copy that saved nothing owes nothing"
        );
    }
}
