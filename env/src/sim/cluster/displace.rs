//! Displacement credit ([`crate::CreditMode::Displacement`]): what a job's slot hold did to the
//! jobs that queued behind it, counted to the end of the queue it fed.
//!
//! Marginal credit charges a job the queue's job-seconds while it held its slot. On a node that
//! stays backed up that is short of what the hold cost: every job that starts from the queue
//! later in the same backlog starts later by the hold (shared by the node's slots), also those
//! that arrived after the job left. Charging the waiting that happened during the hold misses
//! them, so it can under-price joining a busy node. Here a job that finished
//! is charged its hold over the node's slots times the jobs that started from the node's queue
//! after it took its slot, until the queue next emptied (the first-order delay of a FIFO
//! backlog, which overstates it where idle slack would have absorbed part of the hold).

use super::Cluster;
use crate::sim::jobs::Jobs;
use crate::sim::topology::Topology;

#[derive(Debug, Clone, Default)]
pub(crate) struct Displacement {
    /// Per node: jobs started from its queue so far.
    starts: Vec<u64>,
    /// Per job: its node's `starts` when it took its slot.
    marks: Vec<u64>,
    /// Per node: (decision, hold per slot, mark) of jobs that finished with the queue not
    /// empty, charged when it empties.
    pending: Vec<Vec<(u64, f64, u64)>>,
    /// Charges settled since the episode last took its credits.
    pub settled: Vec<(u64, f64)>,
}

impl Displacement {
    pub fn new(nodes: usize) -> Displacement {
        Displacement {
            starts: vec![0; nodes],
            pending: vec![Vec::new(); nodes],
            ..Default::default()
        }
    }

    /// Job `j` took a slot on node `n`; again with `from_queue` once it is known to have
    /// come from the node's queue (it then counts as a start of the backlog, not its own).
    pub fn took_slot(&mut self, n: usize, j: u32, from_queue: bool) {
        if from_queue {
            self.starts[n] += 1;
        }
        let j = j as usize;
        if self.marks.len() <= j {
            self.marks.resize(j + 1, 0);
        }
        self.marks[j] = self.starts[n];
    }

    /// Job `j` (placed by `decision`) left node `n` after holding a slot `hold_per_slot`
    /// seconds over the node's slot count. Returns its charge now if the queue is empty, else
    /// keeps it until the queue empties.
    pub fn finished(
        &mut self,
        n: usize,
        j: u32,
        decision: u64,
        hold_per_slot: f64,
        queue_empty: bool,
    ) -> f64 {
        let mark = self.marks[j as usize];
        if queue_empty {
            hold_per_slot * (self.starts[n] - mark) as f64
        } else {
            if decision != u64::MAX {
                self.pending[n].push((decision, hold_per_slot, mark));
            }
            0.0
        }
    }

    /// Node `n`'s queue emptied (or the node went down): its pending charges settle.
    pub fn queue_emptied(&mut self, n: usize) {
        let starts = self.starts[n];
        for (d, hold, mark) in self.pending[n].drain(..) {
            self.settled.push((d, hold * (starts - mark) as f64));
        }
    }

    /// The episode ends: every pending charge settles.
    pub fn settle_all(&mut self) {
        (0..self.starts.len()).for_each(|n| self.queue_emptied(n));
    }

    /// The pending charges as they stand now, without settling them.
    pub fn outstanding(&self, out: &mut Vec<(u64, f64)>) {
        for (n, pending) in self.pending.iter().enumerate() {
            let starts = self.starts[n];
            out.extend(
                pending
                    .iter()
                    .map(|&(d, hold, mark)| (d, hold * (starts - mark) as f64)),
            );
        }
    }
}

impl Cluster {
    /// With displacement credit: job `j` left node `n` (released at `now`, its slot taken at
    /// `taken`); returns the charge due now.
    pub(super) fn displaced(
        &mut self,
        topo: &Topology,
        jobs: &Jobs,
        n: usize,
        j: u32,
        taken: f64,
        now: f64,
    ) -> f64 {
        let Some(d) = &mut self.displacement else {
            return 0.0;
        };
        let queue_empty = self.nodes[n].queue.is_empty();
        let hold = self.externality * (now - taken) / topo.sc.nodes[n].slots as f64;
        d.finished(n, j, jobs[j].decision, hold, queue_empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One slot: A holds 0-2 while B and C queue; B starts from the queue at 2, C at 3, and
    /// the queue empties. A displaced both (2 s each), B displaced C (1 s), C nobody.
    #[test]
    fn a_hold_is_charged_for_every_later_start_of_its_backlog() {
        let mut d = Displacement::new(1);
        d.took_slot(0, 0, false);
        assert_eq!(d.finished(0, 0, 10, 2.0, false), 0.0, "B and C still queue");
        d.took_slot(0, 1, true);
        let mut open = Vec::new();
        d.outstanding(&mut open);
        assert_eq!(open, vec![(10, 2.0)]);
        assert_eq!(d.finished(0, 1, 11, 1.0, false), 0.0);
        d.took_slot(0, 2, true);
        d.queue_emptied(0);
        assert_eq!(d.settled, vec![(10, 4.0), (11, 1.0)]);
        assert_eq!(d.finished(0, 2, 12, 1.0, true), 0.0);
    }
}
