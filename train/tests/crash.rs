//! A run killed at any moment, including inside a checkpoint save, resumes from a good
//! checkpoint and loses at most one checkpoint interval; a damaged checkpoint is a one-line
//! error or a fallback to the previous one, never a panic.

#[path = "../../testutil/temp_path.rs"]
mod temp_path;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use temp_path::TempPath;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_haca-train"));
    c.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
    c.env_remove("HACA_TRAIN_CRASH_AT");
    c
}

fn out_dir(tag: &str) -> TempPath {
    TempPath::new("haca-crash", tag)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// 8 updates of 128 steps, a checkpoint after every update, evaluation off.
fn run(dir: &Path, steps: u64) -> Command {
    let mut c = bin();
    c.args(["--total-steps", &steps.to_string(), "--envs", "4"])
        .args(["--steps-per-rollout", "32", "--init-from", "none"])
        .args(["--eval-episodes", "2", "--set", "eval_every=0"])
        .args(["--set", "hidden=8", "--set", "eval_episodes=2"])
        .args(["--set", "checkpoint_every=1", "--set", "select_top=0"])
        .arg("--out")
        .arg(dir);
    c
}

fn resume(dir: &Path) -> Output {
    bin()
        .arg("--resume")
        .arg(dir)
        .args(["--eval-episodes", "2"])
        .output()
        .unwrap()
}

/// The update a resume started from, from its `resuming ... from update U` line.
fn resumed_from(o: &Output) -> u64 {
    let out = text(o);
    let at = out.find("from update ").unwrap_or_else(|| panic!("{out}")) + 12;
    out[at..].split(' ').next().unwrap().parse().unwrap()
}

/// The save in progress at crash point `n` (1-based) and whether that point is its last one
/// (the new checkpoint in place). The first save has 2 points (nothing to rotate), later
/// saves 4: staged, previous removed, rotated, in place.
fn save_at(n: u64) -> (u64, bool) {
    if n <= 2 {
        return (1, n == 2);
    }
    let k = 2 + (n - 3) / 4;
    (k, (n - 3) % 4 == 3)
}

#[test]
fn a_crash_between_any_two_steps_of_a_save_loses_at_most_one_interval() {
    for n in [1, 2, 3, 4, 5, 6, 7, 8, 9, 14, 21, 32] {
        let dir = out_dir(&format!("at{n}"));
        let o = run(&dir, 1024)
            .env("HACA_TRAIN_CRASH_AT", n.to_string())
            .output()
            .unwrap();
        assert!(!o.status.success(), "crash point {n} was not reached");
        let (save, complete) = save_at(n);
        let r = resume(&dir);
        if save == 1 && !complete {
            // Killed before the first checkpoint existed: nothing to resume, said in one line.
            let err = text(&r);
            assert!(!r.status.success());
            assert!(err.contains("no readable checkpoint"), "{err}");
            assert!(!err.contains("panicked"), "{err}");
            continue;
        }
        assert!(r.status.success(), "crash point {n}: {}", text(&r));
        assert!(text(&r).contains("trained 1024 steps"), "{}", text(&r));
        let from = resumed_from(&r);
        let newest = if complete { save } else { save - 1 };
        assert_eq!(from, newest, "crash point {n}: {}", text(&r));
        // Between the rotation and the new one's arrival only the previous one exists, and
        // the resume says it fell back to it.
        let rotated = n >= 3 && (n - 3) % 4 == 2;
        assert_eq!(
            text(&r).contains("warning: resuming from the previous checkpoint"),
            rotated,
            "crash point {n}: {}",
            text(&r)
        );
    }
}

/// The update of the newest checkpoint, if one is readable now.
fn newest_update(dir: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join("checkpoint/state.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["update"].as_u64()
}

/// Waits (up to a minute) until the newest checkpoint is past `update`.
fn wait_past(dir: &Path, update: u64) {
    let start = std::time::Instant::now();
    while newest_update(dir).is_none_or(|u| u <= update) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no new checkpoint"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Real SIGKILLs of a running run, each once it has saved a new checkpoint and then some
/// milliseconds nobody chose (so inside an update or a save), then resumes until it is done.
#[test]
fn sigkill_at_any_moment_then_resume_finishes_the_run() {
    let dir = out_dir("sigkill");
    let steps = 65_536;
    let mut child = run(&dir, steps)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut kills = 0;
    let mut last = 0;
    for delay in [40, 150, 90, 230, 60, 310] {
        wait_past(&dir, last);
        std::thread::sleep(Duration::from_millis(delay));
        if child.try_wait().unwrap().is_none() {
            kills += 1;
        }
        let _ = child.kill();
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!err.contains("panicked"), "{err}");
        if let Some(at) = err.find("from update ") {
            let from: u64 = err[at + 12..].split(' ').next().unwrap().parse().unwrap();
            assert!(from >= last, "went back from {last} to {from}: {err}");
        }
        last = newest_update(&dir)
            .or_else(|| {
                // Killed between the rotation and the rename: the previous one is the newest.
                let text = std::fs::read_to_string(dir.join("checkpoint.prev/state.json")).ok()?;
                serde_json::from_str::<serde_json::Value>(&text).ok()?["update"].as_u64()
            })
            .expect("a checkpoint survives every kill");
        child = bin()
            .arg("--resume")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(kills >= 5, "only {kills} of 6 kills hit a running run");
    let r = resume(&dir);
    assert!(r.status.success(), "{}", text(&r));
    assert!(
        text(&r).contains(&format!("trained {steps} steps")),
        "{}",
        text(&r)
    );
}

/// A save after a resume that fell back past a damaged newest checkpoint sets that one aside
/// and keeps the good previous one until the new one is in place: a crash inside that save
/// still leaves a checkpoint to resume from.
#[test]
fn a_save_after_a_fallback_keeps_the_good_checkpoint() {
    let dir = out_dir("after-fallback");
    assert!(run(&dir, 512).output().unwrap().status.success());
    damage_file(&dir.join("checkpoint/model.bpk"), "garble");
    // Resume to more steps, and die right after setting the damaged one aside (crash points:
    // staged, old one removed, set aside).
    let o = bin()
        .arg("--resume")
        .arg(&dir)
        .args(["--total-steps", "1024"])
        .env("HACA_TRAIN_CRASH_AT", "3")
        .output()
        .unwrap();
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("warning: resuming from the previous checkpoint"));
    assert!(dir.join("checkpoint.damaged").exists() && dir.join("checkpoint.prev").exists());
    let r = bin()
        .arg("--resume")
        .arg(&dir)
        .args(["--total-steps", "1024", "--eval-episodes", "2"])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", text(&r));
    assert!(text(&r).contains("trained 1024 steps"), "{}", text(&r));
}

/// A truncated or garbled file of the newest checkpoint: resume says which file and falls back
/// to the previous checkpoint; with both damaged it is a one-line error.
#[test]
fn a_damaged_checkpoint_falls_back_and_never_panics() {
    let dir = out_dir("damaged");
    assert!(run(&dir, 512).output().unwrap().status.success());
    for (file, damage) in [
        ("model.bpk", "truncate"),
        ("model.bpk", "garble"),
        ("optimizer.bpk", "truncate"),
        ("optimizer.bpk", "garble"),
        ("state.json", "truncate"),
        ("config.json", "garble"),
        // Found by haca-fuzz: a valid-looking config asking for a network of 10^8 units.
        ("config.json", "huge"),
    ] {
        let copy = out_dir(&format!("damaged-{file}-{damage}"));
        copy_dir(&dir, &copy);
        damage_file(&copy.join("checkpoint").join(file), damage);
        let r = resume(&copy);
        let out = text(&r);
        assert!(!out.contains("panicked"), "{file} {damage}: {out}");
        assert!(r.status.success(), "{file} {damage}: {out}");
        assert!(
            out.contains("warning: resuming from the previous checkpoint") && out.contains(file),
            "{file} {damage}: {out}"
        );
        // The resumed run ended with a new checkpoint; damage both of a fresh copy.
        let copy = out_dir(&format!("both-{file}-{damage}"));
        copy_dir(&dir, &copy);
        damage_file(&copy.join("checkpoint").join(file), damage);
        damage_file(&copy.join("checkpoint.prev").join(file), damage);
        let r = resume(&copy);
        let out = text(&r);
        assert!(!r.status.success() && !out.contains("panicked"), "{out}");
        let last = out.trim_end().lines().last().unwrap();
        assert!(
            last.starts_with("error:") && last.contains("no readable checkpoint"),
            "{file} {damage}: {out}"
        );
    }
}

fn damage_file(path: &Path, how: &str) {
    let mut bytes = std::fs::read(path).unwrap();
    if how == "huge" {
        let text = String::from_utf8(bytes).unwrap();
        let text = text.replace("\"hidden\": 8", "\"hidden\": 100000000");
        assert!(text.contains("100000000"));
        std::fs::write(path, text).unwrap();
        // Re-stamped as if written so: past the manifest, the config's validation refuses it.
        return haca_train::stamp_manifest(path.parent().unwrap()).unwrap();
    }
    if how == "truncate" {
        bytes.truncate(bytes.len() / 2);
    } else {
        for i in (0..bytes.len()).step_by(7) {
            bytes[i] ^= 0x5a;
        }
    }
    std::fs::write(path, bytes).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}
