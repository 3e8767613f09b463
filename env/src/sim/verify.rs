//! The verification layer: answered jobs wait for one of a pool of verifiers (FIFO), are
//! checked for their mode's time, then settle. A scenario without verifiers, or a mode without
//! a check, settles at once.

use std::collections::VecDeque;

use super::events::{Event, EventQueue};
use super::jobs::Jobs;
use super::topology::Topology;

#[derive(Debug, Clone, Default)]
pub(crate) struct Verifier {
    queue: VecDeque<u32>,
    busy: u32,
    /// Jobs answered and not yet checked (queued or being checked).
    pub in_verification: u64,
    pub finalized: u64,
}

impl Verifier {
    /// Job `j` was answered. Returns true when it settles without a check.
    pub fn submit(&mut self, topo: &Topology, q: &mut EventQueue, jobs: &Jobs, j: u32) -> bool {
        let layer = &topo.sc.verification;
        let check = layer.check_s[jobs[j].mode.index()];
        if layer.verifiers == 0 || check <= 0.0 {
            return true;
        }
        self.in_verification += 1;
        if self.busy < layer.verifiers {
            self.busy += 1;
            q.after(check, Event::VerifyDone { job: j });
        } else {
            self.queue.push_back(j);
        }
        false
    }

    /// Job `j`'s check is done: the verifier takes the next job waiting, if any.
    pub fn done(&mut self, topo: &Topology, q: &mut EventQueue, jobs: &Jobs) {
        self.in_verification -= 1;
        match self.queue.pop_front() {
            Some(next) => {
                let check = topo.sc.verification.check_s[jobs[next].mode.index()];
                q.after(check, Event::VerifyDone { job: next });
            }
            None => self.busy -= 1,
        }
    }
}
