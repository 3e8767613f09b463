//! Checkpoints: model, optimizer, step counters, every RNG state, the envs (as replayable
//! snapshots) and the config, so that `--resume` continues the run bit-identically.

use std::path::Path;
use std::sync::Arc;

use burn::module::Module;
use burn::optim::AdamConfig;
use haca_env::Scenario;

use crate::config::TrainConfig;
use crate::model::Net;
use crate::ppo::{device, TrainState, Trainer};

impl Trainer {
    /// Saves model, optimizer, state and config into `dir` (write then rename each file).
    pub fn save_checkpoint(&self, dir: &Path) -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let tmp = dir.join("checkpoint.tmp");
        std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
        self.net
            .clone()
            .save_file(tmp.join("model.bpk"))
            .map_err(|e| format!("saving the model: {e:?}"))?;
        self.optim
            .save(tmp.join("optimizer.bpk"))
            .map_err(|e| format!("saving the optimizer: {e:?}"))?;
        let mut state = self.state.clone();
        (state.envs, state.pending) = self.venv.snapshot();
        let state = serde_json::to_string(&state).map_err(|e| e.to_string())?;
        std::fs::write(tmp.join("state.json"), state).map_err(|e| e.to_string())?;
        let cfg = serde_json::to_string_pretty(&self.cfg).map_err(|e| e.to_string())?;
        std::fs::write(tmp.join("config.json"), cfg).map_err(|e| e.to_string())?;
        let final_dir = dir.join("checkpoint");
        let _ = std::fs::remove_dir_all(&final_dir);
        std::fs::rename(&tmp, &final_dir).map_err(|e| format!("{}: {e}", final_dir.display()))
    }

    /// Restores a run from `dir/checkpoint`.
    pub fn load_checkpoint(dir: &Path, scenario: Arc<Scenario>) -> Result<Trainer, String> {
        let ck = dir.join("checkpoint");
        let read = |name: &str| {
            std::fs::read_to_string(ck.join(name)).map_err(|e| {
                format!(
                    "{}: {e}: is this a haca-train run folder?",
                    ck.join(name).display()
                )
            })
        };
        let cfg: TrainConfig = serde_json::from_str(&read("config.json")?)
            .map_err(|e| format!("{}: {e}", ck.join("config.json").display()))?;
        let state: TrainState = serde_json::from_str(&read("state.json")?)
            .map_err(|e| format!("{}: {e}", ck.join("state.json").display()))?;
        let device = device(&cfg.device)?;
        let net = Net::new(cfg.architecture(), 0, &device).load_file(ck.join("model.bpk"));
        let optim = AdamConfig::new()
            .with_epsilon(1e-5)
            .init()
            .load(ck.join("optimizer.bpk"))
            .map_err(|e| format!("{}: {e:?}", ck.join("optimizer.bpk").display()))?;
        Trainer::assemble(cfg, scenario, device, net, optim, state)
    }
}
