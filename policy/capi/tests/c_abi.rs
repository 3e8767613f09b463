//! Compiles `tests/route.c` against the built library and runs it on policy files, and calls
//! the ABI's metadata reader and many-client route directly.

use std::ffi::{c_char, CStr, CString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use haca_policy::{
    Architecture, ClusterView, JobView, NodeView, Policy, PolicyRouter, Router, Selection,
    SizeVisibility,
};
use haca_policy_c::{
    haca_policy_free, haca_policy_last_error, haca_policy_load, haca_policy_metadata,
    haca_policy_route, haca_policy_route_client, haca_policy_set_sampling, HacaClient, HacaJob,
    HacaNode, HacaNodeClient,
};

const VERDICT: &str = r#"{"line":"policy beats sed: mean latency -3.1 ± 1.2 s (paired 95%, 64 episodes)","outcome":"beats","baseline":"sed","metric":"mean_latency_s","paired_mean":-3.1,"paired_ci95":1.2,"policy_mean":8.2,"baseline_mean":11.3,"episodes":64,"seed":0}"#;

/// A fresh temporary folder, removed when dropped.
fn temp_dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("haca-c-abi-{tag}-"))
        .tempdir()
        .unwrap()
}

/// Where cargo put the library: beside this test binary in `deps/` under `cargo test`, one
/// level up after `cargo build`.
fn find_library() -> Option<PathBuf> {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap().to_path_buf();
    let dirs = [deps.clone(), deps.parent().unwrap().to_path_buf()];
    dirs.iter()
        .flat_map(|d| ["libhaca_policy_c.so", "libhaca_policy_c.dylib"].map(|n| d.join(n)))
        .find(|p| p.exists())
}

#[test]
fn c_program_routes_through_the_abi() {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    if Command::new(&cc).arg("--version").output().is_err() {
        println!("SKIPPED: no C compiler (`{cc}`) to build the C test program");
        return;
    }
    let lib = find_library().expect("cargo builds the cdylib with the tests");
    let lib_dir = lib.parent().unwrap().to_path_buf();
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = temp_dir("c");
    let exe = out.path().join("route");
    let status = Command::new(&cc)
        .arg(here.join("tests/route.c"))
        .arg("-I")
        .arg(here.join("include"))
        .arg("-Wall")
        .arg("-Werror")
        .arg(&lib)
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-o")
        .arg(&exe)
        .status()
        .unwrap();
    assert!(status.success(), "compiling route.c failed");
    let mut p = Policy::random(Architecture::default(), 3);
    let plain = out.path().join("p.safetensors");
    p.save(&plain).unwrap();
    p.info.verdict = Some(VERDICT.into());
    let judged = out.path().join("judged.safetensors");
    p.save(&judged).unwrap();
    for (policy, verdict_line) in [
        (
            &plain,
            "c abi: format_version 2, no verdict recorded".to_string(),
        ),
        (
            &judged,
            format!(
                "c abi: format_version 2, verdict ({} bytes): {VERDICT}",
                VERDICT.len()
            ),
        ),
    ] {
        let run = Command::new(&exe).arg(policy).output().unwrap();
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(
            run.status.success(),
            "{}{}",
            stdout,
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(
            stdout.starts_with("c abi: routed to node 2 of 4"),
            "{stdout}"
        );
        assert!(stdout.contains(&verdict_line), "{stdout}");
        println!("{stdout}");
    }
}

fn last_error() -> String {
    unsafe { CStr::from_ptr(haca_policy_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// Reads `key` the way a C caller would: size it, then read it into a buffer of that size.
fn metadata(p: *const haca_policy_c::HacaPolicy, key: &str) -> Option<String> {
    let key = CString::new(key).unwrap();
    let len = unsafe { haca_policy_metadata(p, key.as_ptr(), std::ptr::null_mut(), 0) };
    if len == usize::MAX {
        return None;
    }
    let mut buf = vec![0x7f as c_char; len + 1];
    let again = unsafe { haca_policy_metadata(p, key.as_ptr(), buf.as_mut_ptr(), buf.len()) };
    assert_eq!(again, len);
    Some(
        unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned(),
    )
}

#[test]
fn metadata_reads_any_key_snprintf_style() {
    let out = temp_dir("meta");
    let mut p = Policy::random(Architecture::default(), 5);
    p.info.scenario = "haca-small".into();
    p.info.verdict = Some(VERDICT.into());
    let path = out.path().join("m.safetensors");
    p.save(&path).unwrap();
    let c_path = CString::new(path.to_str().unwrap()).unwrap();
    let h = unsafe { haca_policy_load(c_path.as_ptr()) };
    assert!(!h.is_null(), "{}", last_error());

    assert_eq!(metadata(h, "format_version").as_deref(), Some("2"));
    assert!(metadata(h, "digest").unwrap().starts_with("sha256:"));
    assert_eq!(metadata(h, "scenario").as_deref(), Some("haca-small"));
    assert_eq!(metadata(h, "evaluation").as_deref(), Some("{}"));
    assert_eq!(metadata(h, "verdict").as_deref(), Some(VERDICT));
    for (key, value) in p.metadata() {
        if key != "created_by" {
            assert_eq!(metadata(h, &key), Some(value), "{key}");
        }
    }

    // Truncated to buf_len - 1 bytes and NUL-terminated; the full length comes back.
    let key = CString::new("format").unwrap();
    let mut small = [0x7f as c_char; 5];
    let n = unsafe { haca_policy_metadata(h, key.as_ptr(), small.as_mut_ptr(), small.len()) };
    assert_eq!(n, "haca-policy".len());
    assert_eq!(
        unsafe { CStr::from_ptr(small.as_ptr()) }.to_bytes(),
        b"haca"
    );
    let mut one = [0x7f as c_char; 1];
    let n = unsafe { haca_policy_metadata(h, key.as_ptr(), one.as_mut_ptr(), 1) };
    assert_eq!((n, one[0]), ("haca-policy".len(), 0));

    // An absent key, and NULL arguments, are (size_t)-1 with the cause.
    assert_eq!(metadata(h, "no_such_key"), None);
    let e = last_error();
    assert!(
        e.contains("no metadata `no_such_key`") && e.contains("format_version"),
        "{e}"
    );
    let mut buf = [0 as c_char; 8];
    let null =
        |p, k: *const c_char, b: *mut c_char, len| unsafe { haca_policy_metadata(p, k, b, len) };
    assert_eq!(
        null(std::ptr::null(), key.as_ptr(), buf.as_mut_ptr(), 8),
        usize::MAX
    );
    assert!(last_error().contains("NULL"));
    assert_eq!(null(h, std::ptr::null(), buf.as_mut_ptr(), 8), usize::MAX);
    assert_eq!(null(h, key.as_ptr(), std::ptr::null_mut(), 8), usize::MAX);

    // No verdict recorded: the key is absent.
    p.info.verdict = None;
    p.save(&path).unwrap();
    let g = unsafe { haca_policy_load(c_path.as_ptr()) };
    assert!(!g.is_null(), "{}", last_error());
    assert_eq!(metadata(g, "verdict"), None);
    assert!(last_error().contains("no metadata `verdict`"));
    unsafe {
        haca_policy_free(h);
        haca_policy_free(g);
    }
}

/// A file changed after it was written does not load through the ABI either: NULL, and the
/// last error names the file and the digest mismatch.
#[test]
fn a_tampered_file_is_refused_with_the_cause() {
    let out = temp_dir("tamper");
    let path = out.path().join("t.safetensors");
    Policy::random(Architecture::default(), 6)
        .save(&path)
        .unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x10;
    std::fs::write(&path, bytes).unwrap();
    let c_path = CString::new(path.to_str().unwrap()).unwrap();
    let h = unsafe { haca_policy_load(c_path.as_ptr()) };
    assert!(h.is_null());
    let e = last_error();
    assert!(
        e.contains("t.safetensors") && e.contains("content digest does not match"),
        "{e}"
    );
}

/// A view as a many-client simulator would hand it over: a stale scrape plus the client's own
/// dispatches and answers, prefix hits, a share below 1, and its C mirror.
fn random_view(
    rng: &mut haca_policy::Rng,
    scales: haca_policy::Scales,
) -> (
    ClusterView,
    Vec<HacaNode>,
    Vec<HacaNodeClient>,
    HacaJob,
    HacaClient,
) {
    let n = 2 + rng.below(10) as usize;
    let mut v = ClusterView {
        scales,
        now: 100.0 + rng.uniform() * 10.0,
        observed_at: 100.0,
        jobs_in_system: rng.below(50) as u32,
        client_share: 0.01 + 0.99 * rng.uniform(),
        clients: 1 + rng.below(300) as u32,
        ..Default::default()
    };
    let (mut c_nodes, mut c_own) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let own_jobs = rng.below(3) as u32;
        let own_answered = rng.below(3) as u32;
        let node = NodeView {
            up: true,
            speed: 0.4 + rng.uniform(),
            slots: 1 + rng.below(4) as u32,
            busy_slots: rng.below(2) as u32,
            queue_len: rng.below(5) as u32 + own_jobs,
            work_left: rng.uniform() * 20.0,
            memory_gb: 80.0,
            tee: rng.below(2) == 1,
            zk: false,
            model_ready: rng.below(2) == 1,
            load_s: rng.uniform() * 30.0,
            prefix_hit: rng.below(4) as u32,
            own_jobs,
            own_work: own_jobs as f64 * 1.5,
            own_answered,
            own_answered_work: own_answered as f64 * 1.5,
        };
        let legal = rng.below(4) != 0;
        c_nodes.push(HacaNode {
            speed: node.speed,
            work_left: node.work_left,
            memory_gb: node.memory_gb,
            load_s: node.load_s,
            slots: node.slots,
            busy_slots: node.busy_slots,
            queue_len: node.queue_len,
            legal: legal as u8,
            up: 1,
            tee: node.tee as u8,
            zk: 0,
            model_ready: node.model_ready as u8,
        });
        c_own.push(HacaNodeClient {
            own_work: node.own_work,
            own_jobs: node.own_jobs,
            prefix_hit: node.prefix_hit,
            own_answered_work: node.own_answered_work,
            own_answered: node.own_answered,
        });
        v.nodes.push(node);
        v.mask.push(legal);
    }
    v.mask[0] = true;
    c_nodes[0].legal = 1;
    v.job = JobView {
        model_gb: 16.0,
        input_tokens: 1000,
        output_tokens_est: 200.0,
        size_visibility: SizeVisibility::Hidden,
        est_work: 2.0,
        prefix_blocks: 4,
        block_work: 0.1,
        ..Default::default()
    };
    let job = HacaJob {
        model_gb: 16.0,
        output_tokens_est: 200.0,
        est_work: 2.0,
        model: 0,
        verification: 0,
        size_visibility: 2,
        input_tokens: 1000,
        retries: 0,
    };
    let client = HacaClient {
        share: v.client_share,
        block_work: 0.1,
        prefix_blocks: 4,
        clients: v.clients,
    };
    (v, c_nodes, c_own, job, client)
}

/// `haca_policy_route_client` routes exactly as the Rust `PolicyRouter` on the same view, greedy
/// and sampled (same seed, same choices), on views that exercise every client column; bad
/// arguments are -1 with the cause.
#[test]
fn route_client_matches_the_rust_router_greedy_and_sampled() {
    let out = temp_dir("client");
    let policy = Policy::random(Architecture::default(), 11);
    let scales = policy.info.scales;
    let path = out.path().join("c.safetensors");
    policy.save(&path).unwrap();
    let policy = Arc::new(policy);
    let c_path = CString::new(path.to_str().unwrap()).unwrap();
    let h = unsafe { haca_policy_load(c_path.as_ptr()) };
    assert!(!h.is_null(), "{}", last_error());
    let mut rng = haca_policy::Rng::new(5);
    let route = |h, v: &ClusterView, nodes: &[HacaNode], own: &[HacaNodeClient], job, client| unsafe {
        haca_policy_route_client(
            h,
            nodes.as_ptr(),
            own.as_ptr(),
            nodes.len(),
            job,
            client,
            v.now,
            v.observed_at,
            v.jobs_in_system,
        )
    };
    for (selection, temperature) in [
        (Selection::Greedy, 0.0),
        (Selection::Sample { temperature: 1.0 }, 1.0),
    ] {
        let mut rust = PolicyRouter::new(policy.clone(), selection, 99);
        assert_eq!(unsafe { haca_policy_set_sampling(h, temperature, 99) }, 0);
        let mut moved = 0;
        for _ in 0..500 {
            let (v, nodes, own, job, client) = random_view(&mut rng, scales);
            let c = route(h, &v, &nodes, &own, &job, &client);
            assert_eq!(c, rust.route(&v) as i32, "{selection:?}: {}", last_error());
            // The client columns matter: without them the greedy choice changes somewhere.
            if selection == Selection::Greedy {
                let alone = unsafe {
                    let (n, t) = (nodes.as_ptr(), v.observed_at);
                    haca_policy_route(h, n, nodes.len(), &job, v.now, t, v.jobs_in_system)
                };
                moved += (alone != c) as usize;
            }
        }
        if selection == Selection::Greedy {
            assert!(moved > 0, "the client columns never changed a choice");
        }
    }
    let (v, nodes, own, job, mut client) = random_view(&mut rng, scales);
    client.share = 0.0;
    assert_eq!(route(h, &v, &nodes, &own, &job, &client), -1);
    assert!(last_error().contains("client share 0"), "{}", last_error());
    assert_eq!(route(h, &v, &nodes, &own, &job, std::ptr::null()), -1);
    assert!(last_error().contains("NULL"));
    assert_eq!(unsafe { haca_policy_set_sampling(h, -1.0, 0) }, -1);
    assert!(last_error().contains("temperature -1"), "{}", last_error());
    unsafe { haca_policy_free(h) };
}
