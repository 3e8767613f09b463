//! After warm-up, routing with a policy allocates nothing (counted by a global allocator that
//! only this test binary uses). The count is per thread: the test harness's own threads may
//! allocate at any moment (a regression: a process-wide counter failed under CI load).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use haca_policy::{Architecture, ClusterView, NodeView, Policy, PolicyRouter, Router, Selection};

struct Counting;

thread_local! {
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // try_with: the allocator also runs while thread-locals are being torn down.
    let _ = COUNT.try_with(|c| c.set(c.get() + 1));
}

fn allocations() -> u64 {
    COUNT.with(|c| c.get())
}

// SAFETY: forwards to the system allocator, adding a counter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

#[test]
fn routing_allocates_nothing_after_warm_up() {
    let policy = Arc::new(Policy::random(Architecture::default(), 4));
    let views: Vec<ClusterView> = [3usize, 16, 100]
        .iter()
        .map(|&n| ClusterView {
            nodes: (0..n)
                .map(|i| NodeView {
                    up: true,
                    speed: 1.0 + i as f64 * 0.1,
                    slots: 2,
                    queue_len: (i % 3) as u32,
                    ..Default::default()
                })
                .collect(),
            mask: vec![true; n],
            ..Default::default()
        })
        .collect();
    for selection in [Selection::Greedy, Selection::Sample { temperature: 0.7 }] {
        let mut router = PolicyRouter::new(policy.clone(), selection, 1);
        for v in &views {
            router.route(v); // the buffers grow to the largest network once
        }
        let before = allocations();
        for _ in 0..50 {
            for v in &views {
                std::hint::black_box(router.route(v));
            }
        }
        assert_eq!(allocations() - before, 0, "{selection:?}");
    }
}
