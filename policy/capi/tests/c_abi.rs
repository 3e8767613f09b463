//! Compiles `tests/route.c` against the built library and runs it on policy files, and calls
//! the ABI's metadata reader directly.

use std::ffi::{c_char, CStr, CString};
use std::path::{Path, PathBuf};
use std::process::Command;

use haca_policy::{Architecture, Policy};
use haca_policy_c::{
    haca_policy_free, haca_policy_last_error, haca_policy_load, haca_policy_metadata,
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
