//! Compiles `tests/route.c` against the built library and runs it on a policy file.

use std::path::{Path, PathBuf};
use std::process::Command;

use haca_policy::{Architecture, Policy};

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
    let out = std::env::temp_dir().join(format!("haca-c-abi-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let exe = out.join("route");
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
    let policy = out.join("p.safetensors");
    Policy::random(Architecture::default(), 3)
        .save(&policy)
        .unwrap();
    let run = Command::new(&exe).arg(&policy).output().unwrap();
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
    println!("{stdout}");
}
