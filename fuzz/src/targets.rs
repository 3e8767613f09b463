//! What each fuzz target does with one input: the loader under test, and for a scenario that
//! loads, the start of an episode. `Ok` and `Err` are both fine outcomes; a panic, a hang or a
//! blow-up is a finding.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use haca_env::{Env, Scenario};
use haca_policy::{router_by_name, Policy};
use haca_train::{TrainConfig, Trainer};

/// The files a checkpoint holds, in the order a checkpoint input's first byte picks them.
pub const CHECKPOINT_FILES: [&str; 4] = ["config.json", "state.json", "model.bpk", "optimizer.bpk"];

pub enum Target {
    /// Scenario text (parse, validate), then up to 300 decisions of `sed` on it.
    Scenario,
    /// Trace CSV text.
    Trace,
    /// A policy file's bytes. The seeds as loaded: a mutated file that loads must be one of
    /// them (the content digest admits changes of form, such as the header's whitespace, but
    /// not of content).
    Policy { seeds: Vec<Policy> },
    /// One file of a checkpoint folder (first byte: which), the rest intact; then `--resume`'s
    /// reader.
    Checkpoint { dir: PathBuf, scratch: PathBuf },
}

impl Target {
    pub fn name(&self) -> &'static str {
        match self {
            Target::Scenario => "scenario",
            Target::Trace => "trace",
            Target::Policy { .. } => "policy",
            Target::Checkpoint { .. } => "checkpoint",
        }
    }

    /// Runs one input; the error text when the loader refused it.
    pub fn run(&self, input: &[u8]) -> Result<(), String> {
        match self {
            Target::Scenario => scenario(input),
            Target::Trace => {
                let text = String::from_utf8_lossy(input);
                haca_env::Trace::parse(&text, Path::new("fuzz.csv"))
                    .map(|_| ())
                    .map_err(|(_, m)| m)
            }
            Target::Policy { seeds } => {
                let p = Policy::from_bytes(input, Path::new("fuzz.safetensors"))
                    .map_err(|e| e.to_string())?;
                assert!(
                    seeds.contains(&p),
                    "a changed policy file loaded as a different policy"
                );
                Ok(())
            }
            Target::Checkpoint { dir, scratch } => checkpoint(dir, scratch, input),
        }
    }
}

fn scenario(input: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(input);
    // Relative trace paths resolve beside the shipped scenarios.
    let file = Path::new("env/scenarios/fuzz.toml");
    let sc = Scenario::from_toml_str(&text, file).map_err(|e| e.to_string())?;
    let mut env = Env::new(Arc::new(sc));
    let mut router = router_by_name("sed", 0).expect("a router");
    env.reset(Some(7));
    router.reset(7);
    for _ in 0..300 {
        let action = router.route(env.obs());
        let step = env.step(action).map_err(|e| e.to_string())?;
        if step.done() {
            break;
        }
    }
    Ok(())
}

fn checkpoint(dir: &Path, scratch: &Path, input: &[u8]) -> Result<(), String> {
    let (which, bytes) = input.split_first().unwrap_or((&0, &[]));
    let file = CHECKPOINT_FILES[*which as usize % CHECKPOINT_FILES.len()];
    let ck = scratch.join("checkpoint");
    for f in CHECKPOINT_FILES {
        let from = dir.join("checkpoint").join(f);
        std::fs::copy(&from, ck.join(f)).map_err(|e| format!("copying {}: {e}", from.display()))?;
    }
    std::fs::write(ck.join(file), bytes).map_err(|e| e.to_string())?;
    // As if the damaged file had been written so: past the manifest, into the parsers.
    haca_train::stamp_manifest(&ck)?;
    Trainer::load_checkpoint(scratch, |cfg: &TrainConfig| {
        Scenario::load(&cfg.scenario)
            .map(Arc::new)
            .map_err(|e| e.to_string())
    })
    .map(|_| ())
}

/// A small checkpoint to mutate (a tiny network after two updates), its files as seeds,
/// and a scratch run folder to load mutated copies from.
pub fn checkpoint_target(work: &Path) -> Result<(Target, Vec<Vec<u8>>), String> {
    let dir = work.join("seed-run");
    let scratch = work.join("scratch-run");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(scratch.join("checkpoint")).map_err(|e| e.to_string())?;
    let cfg = TrainConfig {
        scenario: "env/scenarios/haca-small.toml".into(),
        envs: 2,
        input_groups: 1,
        steps_per_rollout: 8,
        minibatches: 1,
        hidden: 4,
        init_from: None,
        ..Default::default()
    };
    let sc = Arc::new(Scenario::load(&cfg.scenario).map_err(|e| e.to_string())?);
    // Two updates, so the optimizer has state and the envs have actions to replay.
    let mut trainer = Trainer::new(cfg, sc)?;
    for _ in 0..2 {
        trainer.update()?;
    }
    trainer.save_checkpoint(&dir)?;
    let mut seeds = Vec::new();
    for (i, f) in CHECKPOINT_FILES.iter().enumerate() {
        let mut bytes = vec![i as u8];
        bytes.extend(std::fs::read(dir.join("checkpoint").join(f)).map_err(|e| e.to_string())?);
        seeds.push(bytes);
    }
    Ok((Target::Checkpoint { dir, scratch }, seeds))
}
