//! Batched settlement: verified results gather in a batch that closes when it holds
//! `batch` results or its oldest is `timeout_s` old; closed batches wait for one of `workers`
//! settlement workers, each taking the block time (`settle_s`) per batch. A result is final when
//! its batch is settled, which is what sets time to finality on the network (DESIGN.md
//! section 1), not the verifier pool.

use std::collections::VecDeque;

use super::events::{Event, EventQueue};
use crate::network::Settlement;

#[derive(Debug, Clone, Default)]
pub(crate) struct Settler {
    /// Arrival times of the results in the open batch.
    open: Vec<f64>,
    /// Identifies the open batch, so a timeout of a batch that already closed is ignored.
    open_id: u64,
    /// Closed batches waiting for a worker, oldest first.
    waiting: VecDeque<Vec<f64>>,
    /// Batches being settled, in the order they will finish (every batch takes the same time).
    settling: VecDeque<Vec<f64>>,
    /// Results verified and not yet final.
    pub pending: u64,
}

impl Settler {
    /// A result of a job that arrived at `arrival` joins the open batch.
    pub fn add(&mut self, s: &Settlement, settle_s: f64, q: &mut EventQueue, arrival: f64) {
        if self.open.is_empty() {
            q.after(
                s.timeout_s,
                Event::SettleTimeout {
                    batch: self.open_id,
                },
            );
        }
        self.open.push(arrival);
        self.pending += 1;
        if self.open.len() >= s.batch as usize {
            self.close(s, settle_s, q);
        }
    }

    /// The timeout of batch `id`: closes it if it is still open.
    pub fn on_timeout(&mut self, s: &Settlement, settle_s: f64, q: &mut EventQueue, id: u64) {
        if id == self.open_id && !self.open.is_empty() {
            self.close(s, settle_s, q);
        }
    }

    fn close(&mut self, s: &Settlement, settle_s: f64, q: &mut EventQueue) {
        let batch = std::mem::take(&mut self.open);
        self.open_id += 1;
        if self.settling.len() < s.workers as usize {
            self.settling.push_back(batch);
            q.after(settle_s, Event::Settled);
        } else {
            self.waiting.push_back(batch);
        }
    }

    /// A worker finished: returns the arrival times of the batch now final, and starts the next
    /// waiting batch.
    pub fn on_settled(&mut self, settle_s: f64, q: &mut EventQueue) -> Vec<f64> {
        let done = self
            .settling
            .pop_front()
            .expect("a batch was being settled");
        self.pending -= done.len() as u64;
        if let Some(next) = self.waiting.pop_front() {
            self.settling.push_back(next);
            q.after(settle_s, Event::Settled);
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(q: &mut EventQueue, st: &mut Settler, s: &Settlement, until: f64) -> Vec<(f64, f64)> {
        let mut out = Vec::new();
        while let Some((t, e)) = q.pop() {
            if t > until {
                break;
            }
            q.now = t;
            match e {
                Event::SettleTimeout { batch } => st.on_timeout(s, 2.0, q, batch),
                Event::Settled => out.extend(st.on_settled(2.0, q).iter().map(|&a| (t, a))),
                _ => unreachable!(),
            }
        }
        out
    }

    #[test]
    fn a_batch_settles_on_size_and_on_timeout() {
        let s = Settlement {
            batch: 3,
            timeout_s: 10.0,
            workers: 1,
        };
        let (mut q, mut st) = (EventQueue::default(), Settler::default());
        // Three results at t = 0 fill the batch: settled at 0 + 2 (block time).
        for a in [0.0, 0.0, 0.0] {
            st.add(&s, 2.0, &mut q, a);
        }
        // One more at t = 1 waits for the timeout of its batch: closes at 11, settled at 13.
        q.now = 1.0;
        st.add(&s, 2.0, &mut q, 1.0);
        assert_eq!(st.pending, 4);
        let done = run(&mut q, &mut st, &s, 100.0);
        assert_eq!(done, [(2.0, 0.0), (2.0, 0.0), (2.0, 0.0), (13.0, 1.0)]);
        assert_eq!(st.pending, 0);
    }

    #[test]
    fn closed_batches_wait_for_a_free_worker() {
        let s = Settlement {
            batch: 1,
            timeout_s: 10.0,
            workers: 1,
        };
        let (mut q, mut st) = (EventQueue::default(), Settler::default());
        st.add(&s, 2.0, &mut q, 0.0);
        st.add(&s, 2.0, &mut q, 0.0);
        // One worker: the second batch starts when the first is settled.
        let done = run(&mut q, &mut st, &s, 100.0);
        assert_eq!(done, [(2.0, 0.0), (4.0, 0.0)]);
    }
}
