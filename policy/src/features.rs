//! The fixed-width `f32` encoding of a [`ClusterView`]: what a learned policy reads.
//!
//! An observation is three blocks plus a mask:
//! - one row of [`NODE_FEATURES`] values per node (rows past the network's size are zero padding
//!   and masked);
//! - [`JOB_FEATURES`] values describing the job being routed;
//! - [`GLOBAL_FEATURES`] values describing the whole network.
//!
//! Normalization is fixed per scenario so that one policy can run on networks of any size:
//! times are divided by the scenario's time unit `T = scales.work / scales.speed` (the mean
//! service time of a job on a mean slot), work by `scales.work`, speeds by `scales.speed`.
//! Counts and long-tailed quantities go through `ln(1 + x)`. The names below are the columns, in
//! order; any change to them, their order or their normalization must bump
//! [`FEATURE_SCHEMA_VERSION`], because exported policies record the version they were trained on.
//!
//! | node column | value |
//! |---|---|
//! | `speed` | `speed / scales.speed` |
//! | `ln_slots` | `ln(1 + slots)` |
//! | `busy_frac` | `busy_slots / slots` |
//! | `ln_queue` | `ln(1 + queue_len)` |
//! | `ln_drain` | `ln(1 + work_left / (speed * slots) / T)` |
//! | `ln_expected_delay` | `ln(1 + expected_delay(job) / T)` (see `NodeView::expected_delay`) |
//! | `model_ready` | 1 if the job's model is cached or loading there |
//! | `ln_load` | `ln(1 + load_s / T)` |
//! | `tee` | 1 if TEE-capable |
//! | `zk` | 1 if zk-capable |
//! | `idle` | 1 if a slot is idle and nothing is queued |
//! | `model_mem_frac` | `model_gb / memory_gb` (0 when the node reports no memory) |
//! | `ln_local_delay` | `ln(1 + dispatch_expected_delay(job, client_share) / T)`: the deciding client's estimate with its own dispatches since the scrape counted `1 / share` times (equals `ln_expected_delay` with one client or fresh observations; see `NodeView::dispatch_expected_delay`) |
//! | `prefix_hit_frac` | cached blocks of the job's prefix here / its prefix blocks (0 without prefix caching) |
//! | `ln_answered_delay` | `ln(1 + local_expected_delay(job, client_share) / T)`: `ln_local_delay`'s estimate less the client's own requests that came back from the node since the scrape (`lsq`'s estimate; equals `ln_expected_delay` with fresh observations; see `NodeView::local_expected_delay`) |
//! | `ln_own_answered` | `ln(1 + own_answered)`: the client's requests that came back from the node since the scrape (0 with fresh observations) |
//!
//! | job column | value |
//! |---|---|
//! | `ln_input` | `ln(1 + input_tokens) / 10` |
//! | `ln_output_est` | `ln(1 + output_tokens_est) / 10` |
//! | `size_confidence` | 1 exact, 0.5 estimate, 0 hidden |
//! | `est_work` | `est_work / scales.work` |
//! | `vanilla`, `tee`, `zkml` | one-hot verification mode |
//! | `ln_retries` | `ln(1 + retries)` |
//!
//! | global column | value |
//! |---|---|
//! | `ln_legal` | `ln(1 + number of legal nodes)` |
//! | `load_per_slot` | `jobs_in_system / slots of up nodes` |
//! | `staleness` | `(now - observed_at) / T` |
//! | `up_frac` | fraction of nodes up |
//! | `busy_frac` | busy slots / slots, over up nodes |
//! | `ln_inv_share` | `ln(1 / client_share)`: how much of the network's demand the deciding client does not see (0 with one client) |
//! | `ln_clients` | `ln(clients)`: how many clients route for themselves in the network (0 with one) |

use crate::obs::ObsMut;
use crate::view::{ClusterView, Verification};

/// Version of the feature layout and normalization below. Version 2 appended the node columns
/// `ln_local_delay` and `prefix_hit_frac` and the global column `ln_inv_share`; version 3 the
/// node columns `ln_answered_delay` and `ln_own_answered`; version 4 the global column
/// `ln_clients`. Files of versions 1 to 3 still load (see `crate::schema`).
pub const FEATURE_SCHEMA_VERSION: u32 = 4;

pub const NODE_FEATURE_NAMES: [&str; 16] = [
    "speed",
    "ln_slots",
    "busy_frac",
    "ln_queue",
    "ln_drain",
    "ln_expected_delay",
    "model_ready",
    "ln_load",
    "tee",
    "zk",
    "idle",
    "model_mem_frac",
    "ln_local_delay",
    "prefix_hit_frac",
    "ln_answered_delay",
    "ln_own_answered",
];
pub const JOB_FEATURE_NAMES: [&str; 8] = [
    "ln_input",
    "ln_output_est",
    "size_confidence",
    "est_work",
    "vanilla",
    "tee",
    "zkml",
    "ln_retries",
];
pub const GLOBAL_FEATURE_NAMES: [&str; 7] = [
    "ln_legal",
    "load_per_slot",
    "staleness",
    "up_frac",
    "busy_frac",
    "ln_inv_share",
    "ln_clients",
];

pub const NODE_FEATURES: usize = NODE_FEATURE_NAMES.len();
pub const JOB_FEATURES: usize = JOB_FEATURE_NAMES.len();
pub const GLOBAL_FEATURES: usize = GLOBAL_FEATURE_NAMES.len();

/// `ln(1 + x)` for `x >= 0` (negative inputs and NaN give 0), as `f32`.
///
/// libm's `log1p` was a third of the encoding's cost; `ln` of `1 + x` is table-driven and several
/// times faster, and loses nothing at `f32` resolution except for tiny `x`, where `x` itself is
/// the answer. Zero, the common case (empty queue, cached model), short-cuts. Other
/// implementations of the encoding may use any `ln1p` accurate to `f32`.
#[inline]
pub fn ln1p(x: f64) -> f32 {
    if x.is_nan() || x <= 0.0 {
        0.0
    } else if x < 1e-8 {
        x as f32
    } else {
        (1.0 + x).ln() as f32
    }
}

/// `ln(1 + k)` for counts (slots, queue lengths, retries): a table for the small values that
/// dominate, the same value [`ln1p`] gives.
#[inline]
fn ln1p_count(k: u32) -> f32 {
    static TABLE: std::sync::LazyLock<[f32; 256]> =
        std::sync::LazyLock::new(|| std::array::from_fn(|k| ln1p(k as f64)));
    match TABLE.get(k as usize) {
        Some(&v) => v,
        None => ln1p(k as f64),
    }
}

#[inline]
fn flag(b: bool) -> f32 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// Writes the encoding of `view` into `out`.
///
/// `out` must have `max_nodes >= view.nodes.len()` node rows; the rows past the network's size
/// are zeroed and masked. Panics if a block has the wrong length: that is a programming error,
/// not bad input.
pub fn encode(view: &ClusterView, out: ObsMut<'_>) {
    encode_with_scales(view, view.scales, out);
}

/// [`encode`] with explicit normalization scales: a learned policy encodes with the scales it
/// was trained with (stored in its file), whatever the scheduler's view carries.
pub fn encode_with_scales(view: &ClusterView, scales: crate::view::Scales, out: ObsMut<'_>) {
    let ObsMut {
        nodes,
        job,
        global,
        mask,
    } = out;
    let max_nodes = mask.len();
    let n = view.nodes.len();
    assert!(n <= max_nodes, "{n} nodes do not fit in {max_nodes} rows");
    assert_eq!(nodes.len(), max_nodes * NODE_FEATURES);
    assert_eq!(job.len(), JOB_FEATURES);
    assert_eq!(global.len(), GLOBAL_FEATURES);

    let t = scales.time();
    let (inv_t, inv_speed) = (1.0 / t, 1.0 / scales.speed);
    let j = &view.job;
    let (mut legal, mut up, mut slots_up, mut busy_up) = (0usize, 0usize, 0u32, 0u32);
    for (i, (node, row)) in view
        .nodes
        .iter()
        .zip(nodes.chunks_exact_mut(NODE_FEATURES))
        .enumerate()
    {
        let cap = node.capacity();
        let slots = node.slots.max(1) as f64;
        row[0] = (node.speed * inv_speed) as f32;
        row[1] = ln1p_count(node.slots);
        row[2] = (node.busy_slots as f64 / slots) as f32;
        row[3] = ln1p_count(node.queue_len);
        row[4] = if cap > 0.0 {
            ln1p(node.work_left / cap * inv_t)
        } else {
            0.0
        };
        row[5] = if cap > 0.0 {
            ln1p(node.expected_delay(j) * inv_t)
        } else {
            0.0
        };
        row[6] = flag(node.model_ready);
        row[7] = ln1p(node.load_s * inv_t);
        row[8] = flag(node.tee);
        row[9] = flag(node.zk);
        row[10] = flag(node.has_idle_slot() && node.queue_len == 0);
        row[11] = if node.memory_gb > 0.0 {
            (j.model_gb / node.memory_gb) as f32
        } else {
            0.0
        };
        row[12] = if node.own_jobs == 0 {
            row[5]
        } else if cap > 0.0 {
            ln1p(node.dispatch_expected_delay(j, view.client_share) * inv_t)
        } else {
            0.0
        };
        row[13] = if j.prefix_blocks > 0 {
            node.prefix_hit as f32 / j.prefix_blocks as f32
        } else {
            0.0
        };
        row[14] = if node.own_answered == 0 {
            row[12]
        } else if cap > 0.0 {
            ln1p(node.local_expected_delay(j, view.client_share) * inv_t)
        } else {
            0.0
        };
        row[15] = ln1p_count(node.own_answered);
        mask[i] = view.mask[i];
        legal += view.mask[i] as usize;
        if node.up {
            up += 1;
            slots_up += node.slots;
            busy_up += node.busy_slots;
        }
    }
    nodes[n * NODE_FEATURES..].fill(0.0);
    mask[n..].fill(false);

    job[0] = ln1p(j.input_tokens as f64) / 10.0;
    job[1] = ln1p(j.output_tokens_est) / 10.0;
    job[2] = j.size_visibility.confidence();
    job[3] = (j.est_work / scales.work) as f32;
    job[4] = flag(j.verification == Verification::Vanilla);
    job[5] = flag(j.verification == Verification::Tee);
    job[6] = flag(j.verification == Verification::Zkml);
    job[7] = ln1p_count(j.retries);

    global[0] = ln1p_count(legal as u32);
    global[1] = if slots_up > 0 {
        view.jobs_in_system as f32 / slots_up as f32
    } else {
        0.0
    };
    global[2] = ((view.now - view.observed_at) * inv_t) as f32;
    global[3] = if n > 0 { up as f32 / n as f32 } else { 0.0 };
    global[4] = if slots_up > 0 {
        busy_up as f32 / slots_up as f32
    } else {
        0.0
    };
    global[5] = if view.client_share > 0.0 && view.client_share < 1.0 {
        -(view.client_share.ln()) as f32
    } else {
        0.0
    };
    global[6] = if view.clients > 1 {
        (view.clients as f32).ln()
    } else {
        0.0
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::{JobView, NodeView, Scales, SizeVisibility};

    fn two_node_view() -> ClusterView {
        let node = NodeView {
            up: true,
            speed: 2.0,
            slots: 1,
            busy_slots: 1,
            queue_len: 1,
            work_left: 8.0,
            memory_gb: 40.0,
            tee: true,
            zk: false,
            model_ready: false,
            load_s: 2.0,
            prefix_hit: 0,
            own_jobs: 0,
            own_work: 0.0,
            own_answered: 0,
            own_answered_work: 0.0,
        };
        ClusterView {
            now: 10.0,
            observed_at: 8.0,
            nodes: vec![node, NodeView { up: false, ..node }],
            mask: vec![true, false],
            job: JobView {
                model: 0,
                model_gb: 10.0,
                verification: Verification::Tee,
                input_tokens: 100,
                output_tokens_est: 20.0,
                size_visibility: SizeVisibility::Exact,
                est_work: 4.0,
                retries: 0,
                ..Default::default()
            },
            jobs_in_system: 3,
            scales: Scales {
                work: 4.0,
                speed: 2.0,
            },
            ..Default::default()
        }
    }

    /// The node rows and the global block of `view` (two rows).
    fn encode_nodes(view: &ClusterView) -> (Vec<f32>, [f32; GLOBAL_FEATURES]) {
        let mut nodes = vec![0.0; 2 * NODE_FEATURES];
        let (mut job, mut global, mut mask) =
            ([0.0; JOB_FEATURES], [0.0; GLOBAL_FEATURES], [true; 2]);
        let out = ObsMut {
            nodes: &mut nodes,
            job: &mut job,
            global: &mut global,
            mask: &mut mask,
        };
        encode(view, out);
        (nodes, global)
    }

    #[test]
    fn local_delay_counts_own_dispatches_for_the_unseen_others_and_prefix_hits_are_fractions() {
        let mut view = two_node_view();
        // Share 1/4: each own dispatch stands for 3 more. Queue 1 + 3, work 8 + 3 * 2 = 14:
        // wait 14 / 2 = 7 s, load 2, service 2: 11 s = 5.5 T.
        view.client_share = 0.25;
        view.nodes[0].own_jobs = 1;
        view.nodes[0].own_work = 2.0;
        view.nodes[0].prefix_hit = 3;
        view.job.prefix_blocks = 4;
        let (nodes, global) = encode_nodes(&view);
        assert!((nodes[12] - 6.5f32.ln()).abs() < 1e-6, "{}", nodes[12]);
        assert_eq!(nodes[13], 0.75);
        assert_eq!(nodes[14], nodes[12], "no answers: the same estimate");
        assert_eq!(nodes[15], 0.0);
        // The scheduler's own estimate (`ln_expected_delay`) is unchanged by the share.
        assert!((nodes[5] - 5f32.ln()).abs() < 1e-6);
        assert!((global[5] - 4f32.ln()).abs() < 1e-6);
        assert_eq!(global[6], 0.0, "one client (the view's default): ln 1");
        view.clients = 10;
        let (_, global) = encode_nodes(&view);
        assert!((global[6] - 10f32.ln()).abs() < 1e-6, "{}", global[6]);
    }

    #[test]
    fn answered_delay_takes_the_clients_returned_requests_off_its_estimate() {
        let mut view = two_node_view();
        view.client_share = 0.25;
        view.nodes[0].own_jobs = 1;
        view.nodes[0].own_work = 2.0;
        // Two answers (6 units) off queue 4 and work 14: queue 2, work 8, wait 4 s, load 2,
        // service 2: 8 s = 4 T. `ln_local_delay` (dispatches alone) stays at 5.5 T.
        view.nodes[0].own_answered = 2;
        view.nodes[0].own_answered_work = 6.0;
        let nodes = encode_nodes(&view).0;
        assert!((nodes[14] - 5f32.ln()).abs() < 1e-6, "{}", nodes[14]);
        assert!((nodes[15] - 3f32.ln()).abs() < 1e-6);
        assert!((nodes[12] - 6.5f32.ln()).abs() < 1e-6);
        // Five answers empty the queue and free its one slot: no wait, 4 s = 2 T.
        view.nodes[0].own_answered = 5;
        view.nodes[0].own_answered_work = 20.0;
        let nodes = encode_nodes(&view).0;
        assert!((nodes[14] - 3f32.ln()).abs() < 1e-6, "{}", nodes[14]);
    }

    #[test]
    fn encodes_hand_computed_values_and_pads() {
        let view = two_node_view();
        let mut nodes = vec![f32::NAN; 3 * NODE_FEATURES];
        let (mut job, mut global, mut mask) =
            ([0.0; JOB_FEATURES], [0.0; GLOBAL_FEATURES], [true; 3]);
        encode(
            &view,
            ObsMut {
                nodes: &mut nodes,
                job: &mut job,
                global: &mut global,
                mask: &mut mask,
            },
        );
        let row = &nodes[..NODE_FEATURES];
        // T = 4 / 2 = 2 s. drain = 8 / 2 / 2 = 2; delay = 8/2 + 2 + 4/2 = 8 s = 4 T.
        let expected = [
            1.0,
            2f32.ln(),
            1.0,
            2f32.ln(),
            3f32.ln(),
            5f32.ln(),
            0.0,
            2f32.ln(),
            1.0,
            0.0,
            0.0,
            0.25,
            5f32.ln(),
            0.0,
            5f32.ln(),
            0.0,
        ];
        assert_eq!(expected.len(), NODE_FEATURES);
        for (a, b) in row.iter().zip(expected) {
            assert!((a - b).abs() < 1e-6, "{row:?}");
        }
        assert!(nodes[2 * NODE_FEATURES..].iter().all(|&x| x == 0.0));
        assert_eq!(mask, [true, false, false]);
        assert_eq!(&job[4..7], &[0.0, 1.0, 0.0]);
        assert!((job[0] - 101f32.ln() / 10.0).abs() < 1e-6);
        assert_eq!(job[3], 1.0);
        // one legal node; 3 jobs over 1 up slot; 2 s stale = 1 T; half the nodes up.
        assert!((global[0] - 2f32.ln()).abs() < 1e-6);
        assert_eq!(&global[1..], &[3.0, 1.0, 0.5, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn ln1p_matches_std() {
        let mut x: f64 = 1e-12;
        while x < 1e12 {
            for k in [1.0, 1.37, 2.5, 7.9] {
                let v = x * k;
                let exact = v.ln_1p();
                let got = ln1p(v) as f64;
                assert!(
                    (got - exact).abs() <= 1e-7 * exact.max(1e-30) + 1e-12,
                    "{v}: {got} vs {exact}"
                );
            }
            x *= 3.0;
        }
        assert_eq!(ln1p(0.0), 0.0);
        assert_eq!(ln1p(-3.0), 0.0);
        assert_eq!(ln1p(f64::NAN), 0.0);
        assert!(ln1p(f64::INFINITY).is_infinite());
        for k in [0, 1, 7, 255, 256, 100_000] {
            assert_eq!(ln1p_count(k), ln1p(k as f64));
        }
    }

    #[test]
    #[should_panic(expected = "do not fit")]
    fn too_few_rows_is_a_programming_error() {
        let view = two_node_view();
        let mut nodes = vec![0.0; NODE_FEATURES];
        encode(
            &view,
            ObsMut {
                nodes: &mut nodes,
                job: &mut [0.0; JOB_FEATURES],
                global: &mut [0.0; GLOBAL_FEATURES],
                mask: &mut [false],
            },
        );
    }
}
