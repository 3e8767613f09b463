//! The C ABI of `haca-policy`: load a policy file and route jobs from any language.
//! The header is `include/haca_policy.h`; its structs mirror [`HacaNode`] and [`HacaJob`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_char, CStr, CString};
use std::sync::Arc;

use haca_policy::{
    ClusterView, JobView, NodeView, Policy, PolicyRouter, Router, Selection, SizeVisibility,
    Verification,
};

/// Mirrors `HacaNode` in the header.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct HacaNode {
    pub speed: f64,
    pub work_left: f64,
    pub memory_gb: f64,
    pub load_s: f64,
    pub slots: u32,
    pub busy_slots: u32,
    pub queue_len: u32,
    pub legal: u8,
    pub up: u8,
    pub tee: u8,
    pub zk: u8,
    pub model_ready: u8,
}

/// Mirrors `HacaJob` in the header.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct HacaJob {
    pub model_gb: f64,
    pub output_tokens_est: f64,
    pub est_work: f64,
    pub model: u32,
    pub verification: u32,
    pub size_visibility: u32,
    pub input_tokens: u32,
    pub retries: u32,
}

/// Mirrors `HacaNodeClient` in the header: what the deciding client knows of a node beyond the
/// shared scrape.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct HacaNodeClient {
    pub own_work: f64,
    pub own_jobs: u32,
    pub prefix_hit: u32,
    pub own_answered_work: f64,
    pub own_answered: u32,
}

/// Mirrors `HacaClient` in the header: the deciding client and the job's prefix.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct HacaClient {
    pub share: f64,
    pub block_work: f64,
    pub prefix_blocks: u32,
    pub clients: u32,
}

/// A loaded policy and the buffers it routes with (reused across calls).
pub struct HacaPolicy {
    router: PolicyRouter,
    view: ClusterView,
    /// The policy's metadata (`Policy::metadata`), for `haca_policy_metadata`.
    metadata: HashMap<String, String>,
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_error(msg: impl Into<String>) {
    let msg = CString::new(msg.into().replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = msg);
}

/// # Safety
/// `path` must be a valid NUL-terminated string (or NULL, which is an error).
#[no_mangle]
pub unsafe extern "C" fn haca_policy_load(path: *const c_char) -> *mut HacaPolicy {
    if path.is_null() {
        set_error("haca_policy_load: path is NULL");
        return std::ptr::null_mut();
    }
    // SAFETY: the caller passes a NUL-terminated string.
    let path = unsafe { CStr::from_ptr(path) }
        .to_string_lossy()
        .into_owned();
    match Policy::load(&path) {
        Ok(policy) => {
            set_error("");
            let scales = policy.info.scales;
            let metadata = policy.metadata();
            Box::into_raw(Box::new(HacaPolicy {
                metadata,
                router: PolicyRouter::new(Arc::new(policy), Selection::Greedy, 0),
                view: ClusterView {
                    scales,
                    ..Default::default()
                },
            }))
        }
        Err(e) => {
            set_error(e.to_string());
            std::ptr::null_mut()
        }
    }
}

/// # Safety
/// `policy` must come from `haca_policy_load`; `nodes` must point to `num_nodes` nodes and
/// `job` to one job.
#[no_mangle]
pub unsafe extern "C" fn haca_policy_route(
    policy: *mut HacaPolicy,
    nodes: *const HacaNode,
    num_nodes: usize,
    job: *const HacaJob,
    now: f64,
    observed_at: f64,
    jobs_in_system: u32,
) -> i32 {
    // SAFETY: the caller's pointers, as the contract above says.
    unsafe {
        route(
            "haca_policy_route",
            policy,
            (nodes, std::ptr::null(), num_nodes),
            (job, std::ptr::null()),
            (now, observed_at, jobs_in_system),
        )
    }
}

/// [`haca_policy_route`] for a client routing for itself: `node_client` (`num_nodes` entries,
/// parallel to `nodes`) holds its own dispatches since `observed_at` and each node's cached
/// prefix blocks, `client` its share of the demand and the job's prefix. The features a
/// many-client policy reads (`ln_local_delay`, `prefix_hit_frac`, `ln_inv_share`, `ln_clients`)
/// come from them; `haca_policy_route` is this call with no dispatches of its own, no prefix caches and
/// share 1.
///
/// # Safety
/// As [`haca_policy_route`]; `node_client` must point to `num_nodes` entries and `client` to
/// one.
#[no_mangle]
pub unsafe extern "C" fn haca_policy_route_client(
    policy: *mut HacaPolicy,
    nodes: *const HacaNode,
    node_client: *const HacaNodeClient,
    num_nodes: usize,
    job: *const HacaJob,
    client: *const HacaClient,
    now: f64,
    observed_at: f64,
    jobs_in_system: u32,
) -> i32 {
    let name = "haca_policy_route_client";
    if client.is_null() || (node_client.is_null() && num_nodes > 0) {
        set_error(format!("{name}: a NULL pointer was passed"));
        return -1;
    }
    // SAFETY: the caller's pointers, as the contract above says.
    unsafe {
        route(
            name,
            policy,
            (nodes, node_client, num_nodes),
            (job, client),
            (now, observed_at, jobs_in_system),
        )
    }
}

/// Makes the handle sample from `softmax(logits / temperature)`, its draws seeded with `seed`
/// (the same seed and calls give the same choices), or, with `temperature` 0, choose the
/// highest-scoring legal node (greedy, the default). Policies trained for many clients route
/// best sampled: clients that read the same scrape then spread instead of herding (their
/// cards say which). Returns 0, or -1 for a NULL handle or a negative or non-finite
/// temperature.
///
/// # Safety
/// `policy` must come from `haca_policy_load`.
#[no_mangle]
pub unsafe extern "C" fn haca_policy_set_sampling(
    policy: *mut HacaPolicy,
    temperature: f64,
    seed: u64,
) -> i32 {
    if policy.is_null() {
        set_error("haca_policy_set_sampling: a NULL pointer was passed");
        return -1;
    }
    if !(temperature.is_finite() && temperature >= 0.0) {
        set_error(format!(
            "haca_policy_set_sampling: temperature {temperature}: use 0 (greedy) or a positive number"
        ));
        return -1;
    }
    // SAFETY: non-null, from `haca_policy_load`.
    let p = unsafe { &mut *policy };
    let selection = if temperature == 0.0 {
        Selection::Greedy
    } else {
        Selection::Sample {
            temperature: temperature as f32,
        }
    };
    p.router = PolicyRouter::new(p.router.policy().clone(), selection, seed);
    0
}

/// The `len` entries at `ptr`; empty when `ptr` is NULL or `len` is 0.
///
/// # Safety
/// A non-null `ptr` must point to `len` valid entries that outlive the returned slice.
unsafe fn array<'a, T>(ptr: *const T, len: usize) -> &'a [T] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}

/// The body of both route calls; `node_client` and `client` may be NULL (a single router).
///
/// # Safety
/// Non-null pointers must be valid for `num_nodes` nodes (and entries) and one job (and client).
unsafe fn route(
    name: &str,
    policy: *mut HacaPolicy,
    (nodes, node_client, num_nodes): (*const HacaNode, *const HacaNodeClient, usize),
    (job, client): (*const HacaJob, *const HacaClient),
    (now, observed_at, jobs_in_system): (f64, f64, u32),
) -> i32 {
    if policy.is_null() || job.is_null() || (nodes.is_null() && num_nodes > 0) {
        set_error(format!("{name}: a NULL pointer was passed"));
        return -1;
    }
    // SAFETY: non-null pointers from the caller, valid per the contract above.
    let (p, job) = unsafe { (&mut *policy, &*job) };
    // SAFETY: non-null arrays hold `num_nodes` entries, per the contract above.
    let (nodes, own) = unsafe { (array(nodes, num_nodes), array(node_client, num_nodes)) };
    let client = (!client.is_null()).then(|| unsafe { *client });
    if !nodes.iter().any(|n| n.legal != 0) {
        set_error(format!("{name}: no node is legal for this job"));
        return -1;
    }
    if let Some(c) = client.filter(|c| !(c.share > 0.0 && c.share <= 1.0)) {
        set_error(format!(
            "{name}: client share {}: it must be in (0, 1] (1 for a single router)",
            c.share
        ));
        return -1;
    }
    let v = &mut p.view;
    v.nodes.clear();
    v.mask.clear();
    for (i, n) in nodes.iter().enumerate() {
        let mine = own.get(i).copied().unwrap_or_default();
        v.nodes.push(NodeView {
            up: n.up != 0,
            speed: n.speed,
            slots: n.slots,
            busy_slots: n.busy_slots,
            queue_len: n.queue_len,
            work_left: n.work_left,
            memory_gb: n.memory_gb,
            tee: n.tee != 0,
            zk: n.zk != 0,
            model_ready: n.model_ready != 0,
            load_s: n.load_s,
            prefix_hit: mine.prefix_hit,
            own_jobs: mine.own_jobs,
            own_work: mine.own_work,
            own_answered: mine.own_answered,
            own_answered_work: mine.own_answered_work,
        });
        v.mask.push(n.legal != 0);
    }
    v.now = now;
    v.observed_at = observed_at;
    v.jobs_in_system = jobs_in_system;
    v.client_share = client.map_or(1.0, |c| c.share);
    v.clients = client.map_or(1, |c| c.clients.max(1));
    v.job = JobView {
        model: job.model,
        model_gb: job.model_gb,
        verification: match job.verification {
            1 => Verification::Tee,
            2 => Verification::Zkml,
            _ => Verification::Vanilla,
        },
        input_tokens: job.input_tokens,
        output_tokens_est: job.output_tokens_est,
        size_visibility: match job.size_visibility {
            0 => SizeVisibility::Exact,
            1 => SizeVisibility::Estimate,
            _ => SizeVisibility::Hidden,
        },
        est_work: job.est_work,
        retries: job.retries,
        prefix_blocks: client.map_or(0, |c| c.prefix_blocks),
        block_work: client.map_or(0.0, |c| c.block_work),
        ..JobView::default()
    };
    p.router.route(&p.view) as i32
}

/// Copies the metadata value for `key` (`format_version`, `scenario`, `evaluation`, `verdict`,
/// ...) into `buf` as a NUL-terminated string, truncated to `buf_len - 1` bytes if needed, and
/// returns the value's full length in bytes (without the NUL), as `snprintf` does: call with
/// `buf_len` 0 (and `buf` NULL) to size the buffer. Returns `usize::MAX` (`(size_t)-1`) and sets
/// the last error when the key is absent or `policy` or `key` is NULL (or `buf` is NULL with a
/// non-zero `buf_len`). The values are `Policy::metadata` of the loaded policy: keys outside
/// `policy/FORMAT.md` are not kept, and `created_by` names this library.
///
/// # Safety
/// `policy` must come from `haca_policy_load`, `key` must be a NUL-terminated string, and `buf`
/// must point to `buf_len` writable bytes (it may be NULL when `buf_len` is 0).
#[no_mangle]
pub unsafe extern "C" fn haca_policy_metadata(
    policy: *const HacaPolicy,
    key: *const c_char,
    buf: *mut c_char,
    buf_len: usize,
) -> usize {
    if policy.is_null() || key.is_null() || (buf.is_null() && buf_len > 0) {
        set_error("haca_policy_metadata: a NULL pointer was passed");
        return usize::MAX;
    }
    // SAFETY: non-null pointers from the caller, valid per the contract above.
    let (p, key) = unsafe { (&*policy, CStr::from_ptr(key)) };
    let key = key.to_string_lossy();
    let Some(value) = p.metadata.get(key.as_ref()) else {
        let mut keys: Vec<&str> = p.metadata.keys().map(String::as_str).collect();
        keys.sort_unstable();
        set_error(format!(
            "haca_policy_metadata: the policy has no metadata `{key}` (it has {})",
            keys.join(", ")
        ));
        return usize::MAX;
    };
    let bytes = value.as_bytes();
    if buf_len > 0 {
        let n = bytes.len().min(buf_len - 1);
        // SAFETY: `buf` holds `buf_len > n` bytes; the source is a distinct Rust allocation.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), n);
            *buf.add(n) = 0;
        }
    }
    bytes.len()
}

/// # Safety
/// `policy` must come from `haca_policy_load` and not be used afterwards (NULL is ignored).
#[no_mangle]
pub unsafe extern "C" fn haca_policy_free(policy: *mut HacaPolicy) {
    if !policy.is_null() {
        // SAFETY: the pointer came from Box::into_raw in haca_policy_load.
        drop(unsafe { Box::from_raw(policy) });
    }
}

/// The last error on this thread ("" if none); valid until the next call on this thread.
#[no_mangle]
pub extern "C" fn haca_policy_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}
