//! The clock and the event queue: events in time order, ties broken by the order they were
//! scheduled (so runs are reproducible), and the next arrival kept outside the heap.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Something that happens at a time. Node events carry the node's epoch when they were
/// scheduled: a node that failed since has a newer epoch, and its old events are stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    Arrival,
    Finish {
        node: u32,
        job: u32,
        epoch: u32,
    },
    LoadDone {
        node: u32,
        model: u32,
        epoch: u32,
    },
    NodeDown {
        node: u32,
    },
    NodeUp {
        node: u32,
    },
    VerifyDone {
        job: u32,
    },
    Scrape,
    /// A node down since its failure `epoch` drops out of the registry.
    Delist {
        node: u32,
        epoch: u32,
    },
    /// A job sent to a dead node, or held by one when it died (with a registry, when routed),
    /// comes back to its client after the timeout.
    FailReturn {
        job: u32,
        node: u32,
    },
    /// A settlement batch's timeout.
    SettleTimeout {
        batch: u64,
    },
    /// A settlement worker finished its batch.
    Settled,
}

/// An event and its key: the time, as an integer that orders as `f64::total_cmp` does, above
/// the sequence number, so that one integer comparison orders by time, then by scheduling order.
#[derive(Debug, Clone, Copy)]
struct Scheduled {
    key: u128,
    event: Event,
}

impl Scheduled {
    fn new(t: f64, seq: u64, event: Event) -> Scheduled {
        // `total_cmp`'s own mapping (negative values flip their other bits), then the sign bit
        // flipped so that unsigned order is signed order.
        let bits = t.to_bits() as i64;
        let ordered = (bits ^ ((((bits >> 63) as u64) >> 1) as i64)) as u64 ^ (1 << 63);
        Scheduled {
            key: ((ordered as u128) << 64) | seq as u128,
            event,
        }
    }

    fn t(&self) -> f64 {
        let ordered = ((self.key >> 64) as u64 ^ (1 << 63)) as i64;
        f64::from_bits((ordered ^ ((((ordered >> 63) as u64) >> 1) as i64)) as u64)
    }
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    // Reversed: BinaryHeap is a max-heap and we want the earliest event first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.key.cmp(&self.key)
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct EventQueue {
    pub now: f64,
    seq: u64,
    heap: BinaryHeap<Scheduled>,
    /// The next arrival, kept out of the heap: there is at most one and it is known in advance,
    /// which saves a heap push and pop per job.
    next_arrival: Option<Scheduled>,
}

impl EventQueue {
    #[inline]
    pub fn push(&mut self, t: f64, event: Event) {
        self.seq += 1;
        self.heap.push(Scheduled::new(t, self.seq, event));
    }

    /// Schedules `event` `dt` seconds from now.
    #[inline]
    pub fn after(&mut self, dt: f64, event: Event) {
        self.push(self.now + dt, event);
    }

    /// Sets the time of the next arrival (there is at most one pending).
    pub fn set_next_arrival(&mut self, t: f64) {
        self.seq += 1;
        self.next_arrival = Some(Scheduled::new(t, self.seq, Event::Arrival));
    }

    /// The earliest event and its time: the heap's top or the pending arrival (the order is
    /// reversed for the max-heap, so the earlier one compares greater). The clock does not move.
    #[inline]
    pub fn pop(&mut self) -> Option<(f64, Event)> {
        let next = match (self.heap.peek(), self.next_arrival) {
            (Some(top), Some(arr)) if *top > arr => self.heap.pop(),
            (_, Some(_)) => self.next_arrival.take(),
            (Some(_), None) => self.heap.pop(),
            (None, None) => None,
        };
        next.map(|s| (s.t(), s.event))
    }
}

#[cfg(test)]
mod tests {
    use super::{Event, EventQueue, Scheduled};

    #[test]
    fn keys_order_as_total_cmp_and_give_the_time_back() {
        let times = [
            f64::NEG_INFINITY,
            -3.5,
            -0.0,
            0.0,
            1e-300,
            2.0,
            f64::INFINITY,
            f64::NAN,
            -f64::NAN,
        ];
        for &a in &times {
            let ka = Scheduled::new(a, 0, Event::Scrape);
            assert_eq!(ka.t().to_bits(), a.to_bits());
            for &b in &times {
                let kb = Scheduled::new(b, 0, Event::Scrape);
                assert_eq!(ka.key.cmp(&kb.key), a.total_cmp(&b), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn events_pop_in_time_order_then_in_scheduling_order() {
        let mut q = EventQueue::default();
        q.push(2.0, Event::Scrape);
        q.push(1.0, Event::NodeUp { node: 1 });
        q.set_next_arrival(1.0);
        q.push(1.0, Event::NodeDown { node: 2 });
        q.push(0.5, Event::VerifyDone { job: 7 });
        let order: Vec<(f64, Event)> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(
            order,
            vec![
                (0.5, Event::VerifyDone { job: 7 }),
                (1.0, Event::NodeUp { node: 1 }),
                (1.0, Event::Arrival),
                (1.0, Event::NodeDown { node: 2 }),
                (2.0, Event::Scrape),
            ]
        );
    }
}
