//! Checkpoints: model, optimizer, step counters, every RNG state, the envs (as replayable
//! snapshots) and the config, so that `--resume` continues the run bit-identically.
//!
//! A save never leaves a run without a good checkpoint, whenever the process dies (SIGKILL,
//! power loss): the new one is written completely into `checkpoint.tmp/` and fsynced, the
//! current one becomes `checkpoint.prev/`, and only then does the new one take the name
//! `checkpoint/`. `--resume` reads `checkpoint/`, and falls back to `checkpoint.prev/` (saying
//! so) when the newest is missing or unreadable: at most one checkpoint interval is lost.

use std::fs::File;
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use burn::module::Module;
use burn::optim::{AdamConfig, ModuleOptimizer};
use haca_env::Scenario;

use crate::config::TrainConfig;
use crate::model::Net;
use crate::ppo::{device, TrainState, Trainer};

/// The newest checkpoint of a run folder.
pub const CURRENT: &str = "checkpoint";
/// The one before it, kept until a newer one is in place.
pub const PREVIOUS: &str = "checkpoint.prev";
/// Where a checkpoint is written before it is complete.
const STAGING: &str = "checkpoint.tmp";
/// Where a damaged newest checkpoint is set aside by the next save, for inspection.
const DAMAGED: &str = "checkpoint.damaged";
/// Every file of a checkpoint, each listed with its SHA-256 in `MANIFEST`.
const FILES: [&str; 4] = ["config.json", "state.json", "model.bpk", "optimizer.bpk"];
const MANIFEST: &str = "manifest.json";

/// A restored run, and a line saying so when the newest checkpoint could not be used.
pub struct Restored {
    pub trainer: Trainer,
    pub fallback: Option<String>,
}

impl Trainer {
    /// Saves model, optimizer, state and config as the run's newest checkpoint in `dir`,
    /// keeping the previous one until the new one is complete and durable.
    pub fn save_checkpoint(&self, dir: &Path) -> Result<(), String> {
        let staging = dir.join(STAGING);
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
        }
        std::fs::create_dir_all(&staging).map_err(io(&staging))?;
        self.write_parts(&staging)?;
        sync_dir(&staging)?;
        crash_point();
        let (current, previous) = (dir.join(CURRENT), dir.join(PREVIOUS));
        if current.exists() {
            // A damaged newest checkpoint (a resume fell back past it) must not replace the
            // good previous one: it is set aside instead, and the previous one stays.
            let aside = if verify_manifest(&current).is_ok() {
                previous
            } else {
                dir.join(DAMAGED)
            };
            if aside.exists() {
                std::fs::remove_dir_all(&aside).map_err(io(&aside))?;
            }
            crash_point();
            std::fs::rename(&current, &aside).map_err(io(&current))?;
            crash_point();
        }
        std::fs::rename(&staging, &current).map_err(io(&staging))?;
        sync_dir(dir)?;
        crash_point();
        Ok(())
    }

    fn write_parts(&self, into: &Path) -> Result<(), String> {
        let model = into.join("model.bpk");
        self.net
            .clone()
            .save_file(&model)
            .map_err(|e| format!("{}: saving the model: {e:?}", model.display()))?;
        let optimizer = into.join("optimizer.bpk");
        self.optim
            .save(&optimizer)
            .map_err(|e| format!("{}: saving the optimizer: {e:?}", optimizer.display()))?;
        for file in [&model, &optimizer] {
            File::open(file)
                .and_then(|f| f.sync_all())
                .map_err(io(file))?;
        }
        let mut state = self.state.clone();
        (state.envs, state.pending) = self.venv.snapshot();
        let state = serde_json::to_string(&state).map_err(|e| e.to_string())?;
        write_synced(&into.join("state.json"), state.as_bytes())?;
        let cfg = serde_json::to_string_pretty(&self.cfg).map_err(|e| e.to_string())?;
        write_synced(&into.join("config.json"), cfg.as_bytes())?;
        stamp_manifest(into)
    }

    /// Restores a run from `dir/checkpoint`, or from `dir/checkpoint.prev` when the newest is
    /// missing or unreadable. `scenario_for` loads the scenario the saved config names (its
    /// errors are returned as they are: they are not the checkpoint's fault).
    pub fn load_checkpoint(
        dir: &Path,
        scenario_for: impl Fn(&TrainConfig) -> Result<Arc<Scenario>, String>,
    ) -> Result<Restored, String> {
        let mut failures = Vec::new();
        for name in [CURRENT, PREVIOUS] {
            let ck = dir.join(name);
            if !ck.exists() {
                failures.push(format!("{}: missing", ck.display()));
                continue;
            }
            let parts = match read_parts(&ck) {
                Ok(parts) => parts,
                Err(e) => {
                    failures.push(e);
                    continue;
                }
            };
            let scenario = scenario_for(&parts.cfg)?;
            let trainer = match Trainer::assemble(
                parts.cfg,
                scenario,
                parts.device,
                parts.net,
                parts.optim,
                parts.state,
            ) {
                Ok(t) => t,
                Err(e) => {
                    failures.push(format!("{}: {e}", ck.display()));
                    continue;
                }
            };
            let fallback = (!failures.is_empty()).then(|| {
                format!(
                    "resuming from the previous checkpoint {} (update {}): {}",
                    ck.display(),
                    trainer.state.update,
                    failures.join("; ")
                )
            });
            return Ok(Restored { trainer, fallback });
        }
        Err(format!(
            "{}: no readable checkpoint ({}): --resume needs a run folder written by haca-train",
            dir.display(),
            failures.join("; ")
        ))
    }
}

/// Everything of a checkpoint but the scenario.
struct Parts {
    cfg: TrainConfig,
    state: TrainState,
    device: burn::tensor::Device,
    net: Net,
    optim: ModuleOptimizer,
}

fn read_parts(ck: &Path) -> Result<Parts, String> {
    verify_manifest(ck)?;
    let cfg = read_config(ck)?;
    let state_path = ck.join("state.json");
    let text = std::fs::read_to_string(&state_path).map_err(io(&state_path))?;
    let state: TrainState = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not a training state: {e}", state_path.display()))?;
    let per_env = [
        ("actor_rngs", state.actor_rngs.len()),
        ("returns", state.returns.len()),
    ];
    if let Some((name, n)) = per_env.iter().find(|(_, n)| *n != cfg.envs) {
        return Err(format!(
            "{}: `{name}` has {n} entries for the config's {} envs: the state is not this run's",
            state_path.display(),
            cfg.envs
        ));
    }
    let device = device(&cfg.device)?;
    let model = ck.join("model.bpk");
    let net = Net::new(cfg.architecture(), 0, &device)
        .try_load_file(&model)
        .map_err(|e| format!("{}: not this run's model: {e:?}", model.display()))?;
    let optimizer = ck.join("optimizer.bpk");
    // burn panics (instead of erring) on a record whose tensors lack parameter ids; the
    // manifest makes that unreachable by damage, this keeps a crafted file from crashing.
    let loaded =
        without_panic_message(|| AdamConfig::new().with_epsilon(1e-5).init().load(&optimizer));
    let optim = match loaded {
        Some(Ok(o)) => o,
        Some(Err(e)) => {
            return Err(format!(
                "{}: not this run's optimizer: {e:?}",
                optimizer.display()
            ))
        }
        None => {
            return Err(format!(
                "{}: not this run's optimizer (its tensors lack parameter ids)",
                optimizer.display()
            ))
        }
    };
    Ok(Parts {
        cfg,
        state,
        device,
        net,
        optim,
    })
}

fn read_config(ck: &Path) -> Result<TrainConfig, String> {
    let path = ck.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let cfg: TrainConfig = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not a training config: {e}", path.display()))?;
    // The warm-start teacher ran before the first update: a resume needs its file no more.
    cfg.validate_ranges()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(cfg)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut f = File::create(path).map_err(io(path))?;
    f.write_all(bytes).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

/// Makes the entries of `dir` (new files, renames) durable.
fn sync_dir(dir: &Path) -> Result<(), String> {
    File::open(dir).and_then(|f| f.sync_all()).map_err(io(dir))
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

/// Test hook: with `HACA_TRAIN_CRASH_AT=N` in the environment the process aborts (no clean-up,
/// like SIGKILL) at the N-th step boundary of the checkpoint saves it makes, counted from 1,
/// so a test can kill a run between any two steps of a save.
fn crash_point() {
    static SEEN: AtomicU64 = AtomicU64::new(0);
    let Some(at) = std::env::var("HACA_TRAIN_CRASH_AT")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    if SEEN.fetch_add(1, Ordering::SeqCst) + 1 == at {
        std::process::abort();
    }
}

/// Writes `MANIFEST` (each file's SHA-256), fsynced: the last file of a checkpoint, so a
/// checkpoint whose manifest verifies is complete and unchanged. Public for tools that edit
/// a checkpoint on purpose (the fuzzer).
pub fn stamp_manifest(ck: &Path) -> Result<(), String> {
    let mut files = serde_json::Map::new();
    for name in FILES {
        let path = ck.join(name);
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        files.insert(name.into(), haca_policy::sha256_hex(&bytes).into());
    }
    let text = serde_json::to_string_pretty(&files).map_err(|e| e.to_string())?;
    write_synced(&ck.join(MANIFEST), text.as_bytes())
}

/// Every file is present and, when the checkpoint has a manifest (those written before
/// manifests have none), unchanged since it was saved.
fn verify_manifest(ck: &Path) -> Result<(), String> {
    let manifest = ck.join(MANIFEST);
    let listed: Option<serde_json::Map<String, serde_json::Value>> = match std::fs::read(&manifest)
    {
        Ok(bytes) => Some(
            serde_json::from_slice(&bytes)
                .map_err(|e| format!("{}: not a checkpoint manifest: {e}", manifest.display()))?,
        ),
        Err(_) => None,
    };
    for name in FILES {
        let path = ck.join(name);
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let Some(listed) = &listed else { continue };
        if listed.get(name).and_then(|v| v.as_str()) != Some(&haca_policy::sha256_hex(&bytes)) {
            return Err(format!(
                "{}: changed since it was saved (its SHA-256 is not the manifest's)",
                path.display()
            ));
        }
    }
    Ok(())
}

/// Runs `f`, turning a panic into `None` without printing the panic message.
fn without_panic_message<T>(f: impl FnOnce() -> T) -> Option<T> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok();
    std::panic::set_hook(hook);
    out
}
