//! The clock and the event queue: events in time order, ties broken by the order they were
//! scheduled (so runs are reproducible), and the next arrival kept outside the heap.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Something that happens at a time. Node events carry the node's epoch when they were
/// scheduled: a node that failed since has a newer epoch, and its old events are stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    Arrival,
    Finish { node: u32, job: u32, epoch: u32 },
    LoadDone { node: u32, model: u32, epoch: u32 },
    NodeDown { node: u32 },
    NodeUp { node: u32 },
    VerifyDone { job: u32 },
    Scrape,
}

#[derive(Debug, Clone, Copy)]
struct Scheduled {
    t: f64,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
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
        other
            .t
            .total_cmp(&self.t)
            .then_with(|| other.seq.cmp(&self.seq))
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
        self.heap.push(Scheduled {
            t,
            seq: self.seq,
            event,
        });
    }

    /// Schedules `event` `dt` seconds from now.
    #[inline]
    pub fn after(&mut self, dt: f64, event: Event) {
        self.push(self.now + dt, event);
    }

    /// Sets the time of the next arrival (there is at most one pending).
    pub fn set_next_arrival(&mut self, t: f64) {
        self.seq += 1;
        self.next_arrival = Some(Scheduled {
            t,
            seq: self.seq,
            event: Event::Arrival,
        });
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
        next.map(|s| (s.t, s.event))
    }
}

#[cfg(test)]
mod tests {
    use super::{Event, EventQueue};

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
