//! `haca-eval`: compare routing policies on HACA scenarios.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use haca_env::Scenario;
use haca_eval::{plots, Contender, SweepAxis};
use indicatif::{ProgressBar, ProgressStyle};

/// Counts heap allocations, so `bench policy` can show that a decision makes none.
struct CountingAlloc;

static ALLOCATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; only a counter is added.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

#[derive(Parser)]
#[command(
    name = "haca-eval",
    version,
    about = "Compare HACA routing policies against the heuristics production routers use"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Every router on the same seeded episodes: a table of means with 95% confidence intervals.
    Compare(CompareArgs),
    /// Each metric against offered load, per router.
    Sweep(SweepArgs),
    /// For each router, the smallest network (scaling the scenario's node mix) meeting a p99
    /// latency SLO: how much hardware each routing policy wastes.
    Capacity(CapacityArgs),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Args)]
struct Common {
    /// Scenario TOML file (see env/scenarios/).
    #[arg(long)]
    scenario: PathBuf,
    /// Comma-separated routers, `pooled` for the central-queue reference, or `all` (every
    /// heuristic: random, round_robin, jsq, lwl, sed, po2, jiq, affinity, sdk, reputation, lsq,
    /// prefix; and pooled).
    #[arg(long, default_value = "all")]
    routers: String,
    /// Base seed; episode i of every router uses the same seed derived from it.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// An exported policy file to evaluate beside the routers (repeatable); reported as
    /// `policy:<file stem>`.
    #[arg(long)]
    policy: Vec<PathBuf>,
    /// Also evaluate each --policy sampling from its softmax at this temperature (reported as
    /// `policy:<stem>~sample` at 1), beside the greedy one: the behaviour training optimizes.
    #[arg(long, value_name = "TEMPERATURE")]
    sample: Option<f32>,
}

impl Common {
    /// The routers, then the policies.
    fn contenders(&self) -> Result<Vec<Contender>> {
        let mut c = Contender::parse_list(&self.routers)?;
        if let Some(t) = self.sample {
            if !(t.is_finite() && t > 0.0) {
                bail!("--sample {t}: the temperature must be a positive number");
            }
        }
        for p in &self.policy {
            let greedy = Contender::policy(p)?;
            let sampled = self.sample.and_then(|t| greedy.sampled(t));
            c.push(greedy);
            c.extend(sampled);
        }
        Contender::disambiguate(&mut c);
        Ok(c)
    }
}

#[derive(Args)]
struct CompareArgs {
    #[command(flatten)]
    common: Common,
    /// Episodes per router.
    #[arg(long, default_value_t = 32)]
    episodes: usize,
    /// Write the results as JSON (schema in README.md).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write `router,metric,mean,ci95` rows.
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Write charts (SVG and PNG) into this folder: latency CDF, busy fraction per node,
    /// stranded capacity over time, and the latency/stranded frontier of every router.
    #[arg(long)]
    plots: Option<PathBuf>,
    /// Scale every node class's count by this factor (rounded, at least one node per class),
    /// keeping the arrival rate: e.g. to run a policy on a larger network than it trained on.
    #[arg(long)]
    node_scale: Option<f64>,
    /// Set the offered load (applied after --node-scale).
    #[arg(long)]
    load: Option<f64>,
    /// Set the number of clients routing for themselves (the scenario's demand split kept).
    #[arg(long)]
    clients: Option<u32>,
}

#[derive(Args)]
struct SweepArgs {
    #[command(flatten)]
    common: Common,
    /// Offered loads as start:stop:step, e.g. 0.5:0.95:0.05.
    #[arg(long, conflicts_with = "clients", required_unless_present = "clients")]
    load: Option<String>,
    /// Numbers of clients routing for themselves, e.g. 1,10,100 (the scenario's demand split
    /// kept): the picture of herding.
    #[arg(long)]
    clients: Option<String>,
    /// Episodes per router and point.
    #[arg(long, default_value_t = 8)]
    episodes: usize,
    #[arg(long)]
    json: Option<PathBuf>,
    #[arg(long)]
    plots: Option<PathBuf>,
}

#[derive(Args)]
struct CapacityArgs {
    #[command(flatten)]
    common: Common,
    /// The SLO: mean p99 response latency, seconds.
    #[arg(long = "slo-p99")]
    slo_p99: f64,
    /// Episodes per router and network size.
    #[arg(long, default_value_t = 8)]
    episodes: usize,
    #[arg(long)]
    json: Option<PathBuf>,
    #[arg(long)]
    plots: Option<PathBuf>,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Routing decisions per second of the simulator (round-robin router).
    Env(BenchEnvArgs),
    /// Decision latency of an exported policy (p50, p99) and allocations per decision.
    Policy(BenchPolicyArgs),
}

#[derive(Args)]
struct BenchPolicyArgs {
    /// Exported policy file (.safetensors).
    #[arg(long)]
    policy: PathBuf,
    /// Network sizes, comma-separated.
    #[arg(long, default_value = "16,128,1024", value_delimiter = ',')]
    nodes: Vec<usize>,
    /// Timed decisions per size.
    #[arg(long, default_value_t = 20_000)]
    decisions: usize,
    #[arg(long)]
    json: PathBuf,
}

#[derive(Args)]
struct BenchEnvArgs {
    #[arg(long)]
    scenario: PathBuf,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Decisions per repetition.
    #[arg(long, default_value_t = 2_000_000)]
    decisions: u64,
    /// Repetitions (the median is reported).
    #[arg(long, default_value_t = 5)]
    repetitions: usize,
    #[arg(long)]
    json: PathBuf,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", haca_eval::error_line(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

fn set_threads(threads: Option<usize>) -> Result<()> {
    if let Some(n) = threads {
        if n == 0 {
            return Err(anyhow!("--threads must be at least 1"));
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .context("cannot start the worker threads")?;
    }
    Ok(())
}

fn load(path: &Path) -> Result<Arc<Scenario>> {
    Ok(Arc::new(Scenario::load(path)?))
}

fn progress(total: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} episodes, {per_sec}, eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

fn write(path: &Path, text: &str) -> Result<()> {
    // Reports go to stdout, file notes to stderr: flush so they interleave in order.
    std::io::Write::flush(&mut std::io::stdout())?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("{}: cannot write", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    write(path, &(serde_json::to_string_pretty(value)? + "\n"))
}

fn save_chart(chart: &plots::LineChart, dir: &Path, stem: &str) -> Result<()> {
    std::io::Write::flush(&mut std::io::stdout())?;
    for p in plots::save(chart, dir, stem).map_err(|e| anyhow!(e))? {
        eprintln!("wrote {}", p.display());
    }
    Ok(())
}

/// Each exported policy's recorded verdict (or that it has none), before a report.
fn print_verdicts(contenders: &[Contender]) {
    let notes: Vec<String> = contenders
        .iter()
        .filter_map(Contender::verdict_note)
        .collect();
    for note in &notes {
        println!("{note}");
    }
    if !notes.is_empty() {
        println!();
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Compare(a) => {
            set_threads(a.common.threads)?;
            let mut sc = load(&a.common.scenario)?;
            if let Some(f) = a.node_scale {
                if !(f.is_finite() && f > 0.0) {
                    bail!("--node-scale {f}: must be a positive number");
                }
                sc = Arc::new(sc.with_node_scale(f));
            }
            if let Some(l) = a.load {
                if !(l.is_finite() && l > 0.0) {
                    bail!("--load {l}: must be a positive number");
                }
                sc = Arc::new(sc.with_load(l));
            }
            if let Some(c) = a.clients {
                let max = haca_env::MAX_CLIENTS;
                if !(1..=max).contains(&c) {
                    bail!("--clients {c}: must be 1 to {max}");
                }
                sc = Arc::new(sc.with_clients(c));
            }
            let contenders = a.common.contenders()?;
            let bar = progress(
                contenders.len() * a.episodes,
                &format!("compare {}", sc.name),
            );
            let detailed = if a.plots.is_some() { 1 } else { 0 };
            let cmp =
                haca_eval::compare(&sc, &contenders, a.episodes, a.common.seed, detailed, &bar)?;
            bar.finish_and_clear();
            println!("scenario {} ({})\n", sc.name, sc.summary());
            print_verdicts(&contenders);
            print!("{}", cmp.table());
            if let Some(p) = &a.json {
                write_json(p, &cmp.to_json())?;
            }
            if let Some(p) = &a.csv {
                write(p, &cmp.to_csv())?;
            }
            if let Some(dir) = &a.plots {
                for (stem, chart) in plots::comparison_charts(&cmp) {
                    save_chart(&chart, dir, stem)?;
                }
                let frontier = haca_eval::frontier::Frontier::of(&cmp);
                for p in frontier.save(dir, "frontier").map_err(|e| anyhow!(e))? {
                    eprintln!("wrote {}", p.display());
                }
            }
        }
        Command::Sweep(a) => {
            set_threads(a.common.threads)?;
            let (axis, xs) = match (&a.load, &a.clients) {
                (Some(l), _) => (SweepAxis::Load, haca_eval::parse_range(l)?),
                (None, Some(c)) => (SweepAxis::Clients, haca_eval::parse_clients(c)?),
                (None, None) => unreachable!("clap requires --load or --clients"),
            };
            let sc = load(&a.common.scenario)?;
            let contenders = a.common.contenders()?;
            let bar = progress(
                xs.len() * contenders.len() * a.episodes,
                &format!("sweep {}", sc.name),
            );
            let seed = a.common.seed;
            let sw = haca_eval::sweep(&sc, axis, &xs, &contenders, a.episodes, seed, &bar)?;
            bar.finish_and_clear();
            print_verdicts(&contenders);
            print!("{}", sw.table());
            if let Some(p) = &a.json {
                write_json(p, &sw.to_json())?;
            }
            if let Some(dir) = &a.plots {
                for (stem, chart) in sw.charts() {
                    save_chart(&chart, dir, &stem)?;
                }
            }
        }
        Command::Capacity(a) => {
            set_threads(a.common.threads)?;
            let sc = load(&a.common.scenario)?;
            let contenders = a.common.contenders()?;
            let bar = ProgressBar::new_spinner();
            bar.set_message(format!("capacity {}", sc.name));
            let res =
                haca_eval::capacity(&sc, &contenders, a.slo_p99, a.episodes, a.common.seed, &bar)?;
            bar.finish_and_clear();
            print_verdicts(&contenders);
            print!(
                "{}",
                haca_eval::capacity_table(&res, sc.nodes.len(), a.slo_p99)
            );
            if let Some(p) = &a.json {
                write_json(
                    p,
                    &haca_eval::capacity_json(&sc.name, a.slo_p99, a.episodes, a.common.seed, &res),
                )?;
            }
            if let Some(dir) = &a.plots {
                save_chart(
                    &haca_eval::capacity_chart(&sc.name, a.slo_p99, &res),
                    dir,
                    "capacity",
                )?;
            }
        }
        Command::Bench(BenchCommand::Policy(a)) => {
            if a.decisions == 0 || a.nodes.contains(&0) {
                return Err(anyhow!(
                    "--decisions and every --nodes size must be at least 1"
                ));
            }
            let policy = Arc::new(haca_policy::Policy::load(&a.policy)?);
            let allocs = || ALLOCATIONS.load(std::sync::atomic::Ordering::Relaxed);
            let v = haca_eval::bench::bench_policy(&policy, &a.nodes, a.decisions, &allocs);
            println!(
                "policy {} (hidden {}, layers {}, {} parameters), one thread:",
                a.policy.display(),
                policy.info.arch.hidden,
                policy.info.arch.layers,
                policy.info.arch.parameter_count()
            );
            println!(
                "{:>7} {:>10} {:>10} {:>18}",
                "nodes", "p50 us", "p99 us", "allocs/decision"
            );
            for r in v["results"].as_array().into_iter().flatten() {
                println!(
                    "{:>7} {:>10.2} {:>10.2} {:>18}",
                    r["nodes"].as_u64().unwrap_or(0),
                    r["p50_us"].as_f64().unwrap_or(f64::NAN),
                    r["p99_us"].as_f64().unwrap_or(f64::NAN),
                    r["allocations_per_decision"].as_f64().unwrap_or(f64::NAN)
                );
            }
            write_json(&a.json, &v)?;
        }
        Command::Bench(BenchCommand::Env(a)) => {
            set_threads(a.threads)?;
            if a.repetitions == 0 || a.decisions == 0 {
                return Err(anyhow!("--repetitions and --decisions must be at least 1"));
            }
            let sc = load(&a.scenario)?;
            let v = haca_eval::bench::bench_env(&sc, a.decisions, a.repetitions);
            println!(
                "{}: {:.2} M decisions/s on one thread, {:.2} M on {} threads ({:.2}x), VecEnv {:.2} M",
                sc.name,
                v["single_thread_decisions_per_s"].as_f64().unwrap_or(0.0) / 1e6,
                v["all_threads_decisions_per_s"].as_f64().unwrap_or(0.0) / 1e6,
                v["threads"],
                v["scaling"].as_f64().unwrap_or(0.0),
                v["vec_env_decisions_per_s"].as_f64().unwrap_or(0.0) / 1e6,
            );
            write_json(&a.json, &v)?;
        }
    }
    Ok(())
}
