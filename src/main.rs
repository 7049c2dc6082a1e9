//! The `dale` command: parse, call the library, print, exit code. Exit codes: 0 success,
//! 1 error (bad scene, size, I/O, GPU), 2 bad command line, 3 the run diverged (outputs kept).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Parser, Subcommand};
use dale::backend::select::{self, BackendChoice};
use dale::commands::balance::{balance_weights, check_balanced};
use dale::experiments::balance_network::{BalanceSettings, Cost, Solver};
use dale::models::balancing::Topology;
use dale::scene::runner::{run_scene, RunOptions};
use dale::scene::Scene;
use dale::DaleError;

/// A clap parser for one of the library's choices, from the names it accepts (clap stays here).
fn choice<T: std::str::FromStr + Clone + Send + Sync + 'static>(
    names: &'static [&'static str],
) -> impl TypedValueParser<Value = T> {
    PossibleValuesParser::new(names).map(|s| {
        s.parse::<T>()
            .unwrap_or_else(|_| unreachable!("clap accepts only the listed names"))
    })
}

#[derive(Parser)]
#[command(
    name = "dale",
    version,
    about = "GPU simulator for computational neuroscience: the models of five papers on any GPU"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scene (JSON) and write its outputs to --out.
    Run {
        scene: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, env = "DALE_BACKEND", default_value = "auto", value_parser = choice::<BackendChoice>(&BackendChoice::NAMES))]
        backend: BackendChoice,
        /// Run the scene at a reduced size (a few seconds), to check that it works.
        #[arg(long)]
        smoke: bool,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Threads of the CPU backend (default: all cores; RAYON_NUM_THREADS also works).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Balance a network trained elsewhere (paper 001): WEIGHTS is a .npy holding J, or an .npz
    /// holding J and optionally W_in, W_out, sigma2. Writes the balanced weights (same dtype),
    /// h.npy, summary.json and balance.png to --out.
    Balance {
        weights: PathBuf,
        /// With --check: the folder a balance wrote.
        dir: Option<PathBuf>,
        #[arg(long, required_unless_present = "check")]
        out: Option<PathBuf>,
        /// Check DIR against WEIGHTS: run both networks on random inputs, compare the outputs,
        /// and check that signs and zeros were kept.
        #[arg(long, requires = "dir")]
        check: bool,
        #[arg(long, default_value = "power", value_parser = choice::<Cost>(&Cost::NAMES))]
        cost: Cost,
        /// Exponent of the power-law cost |J|^p (robustness: 2; maxabs: 1).
        #[arg(long, default_value_t = 2.0, allow_negative_numbers = true)]
        p: f32,
        /// Default: direct (flow for --cost maxabs).
        #[arg(long, value_parser = choice::<Solver>(&Solver::NAMES))]
        solver: Option<Solver>,
        /// Stop at ||g|| <= tol ||g0||.
        #[arg(long, default_value_t = 1e-6, allow_negative_numbers = true)]
        tol: f64,
        /// Step budget (passes over J).
        #[arg(long, default_value_t = 20_000)]
        max_iterations: usize,
        /// components: balance each strongly connected component, hold neurons on no cycle at
        /// h = 0; whole: the paper's flow on the whole network (no finite balance without strong
        /// connectivity).
        #[arg(long, default_value = "components", value_parser = choice::<Topology>(&Topology::NAMES))]
        topology: Topology,
        #[arg(long, env = "DALE_BACKEND", default_value = "auto", value_parser = choice::<BackendChoice>(&BackendChoice::NAMES))]
        backend: BackendChoice,
    },
    /// List every adapter wgpu sees, ranked, and say which one `auto` picks.
    Devices,
}

fn main() -> ExitCode {
    quiet_wayland_probe();
    let cli = Cli::parse();
    match on_workers(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", with_causes(&e));
            let diverged = matches!(
                e.downcast_ref::<DaleError>(),
                Some(DaleError::Diverged { .. })
            );
            ExitCode::from(if diverged { 3 } else { 1 })
        }
    }
}

/// The error and its chain of causes, each cause once: dale's messages already quote the cause
/// they wrap (`cannot read F: No such file or directory`), and anyhow's `{:#}` would repeat it.
fn with_causes(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
    }
    text
}

/// Mesa's Vulkan drivers ask libwayland whether a compositor is running when wgpu looks for
/// adapters; with no XDG_RUNTIME_DIR (a headless machine) libwayland answers on stderr, twice,
/// with a line that starts "error:" but is none. dale needs no window system, so where neither
/// Wayland variable nor XDG_RUNTIME_DIR is set it points XDG_RUNTIME_DIR at a path that cannot
/// hold a Wayland socket: the probe then fails quietly, as it would have failed anyway. Runs
/// before any thread starts, as changing the environment requires.
fn quiet_wayland_probe() {
    let unset = |var: &str| std::env::var_os(var).is_none();
    if unset("XDG_RUNTIME_DIR") && unset("WAYLAND_DISPLAY") && unset("WAYLAND_SOCKET") {
        std::env::set_var("XDG_RUNTIME_DIR", "/dev/null");
    }
}

/// Runs the command on a worker of rayon's pool, so that the CPU backend's ops start their
/// parallel loops from inside the pool; from outside, each op had to wake a worker and put the
/// calling thread to sleep until it finished, a third of a [1 x 1000] x [1000 x 1000] product
/// (BENCHMARKS.md, issue 24).
fn on_workers(cli: Cli) -> anyhow::Result<()> {
    dale::backend::cpu::simd::Isa::requested().map_err(anyhow::Error::msg)?;
    // The main thread's stack size, which the command's code was written for.
    let mut pool = rayon::ThreadPoolBuilder::new().stack_size(8 << 20);
    if let Command::Run {
        threads: Some(t), ..
    } = cli.command
    {
        anyhow::ensure!(t >= 1, "--threads = {t}; allowed: an integer >= 1");
        pool = pool.num_threads(t);
    }
    pool.build_global()?;
    rayon::scope(|_| run(cli))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Devices => devices(),
        Command::Balance {
            weights,
            dir,
            out,
            check,
            cost,
            p,
            solver,
            tol,
            max_iterations,
            topology,
            backend,
        } => {
            let mut opened = select::open(backend)?;
            let info = opened.backend.info();
            eprintln!(
                "dale: backend {} ({}, {}): {}",
                info.name, info.kind, info.device_type, opened.why
            );
            if check {
                let dir = dir.expect("clap requires DIR with --check");
                let report = check_balanced(opened.backend.as_mut(), &weights, &dir)?;
                println!("{}", serde_json::to_string_pretty(&report)?);
                return Ok(());
            }
            anyhow::ensure!(
                dir.is_none(),
                "an extra argument {:?}: DIR is only for --check",
                dir.unwrap_or_default()
            );
            let out = out.expect("clap requires --out without --check");
            let settings = BalanceSettings {
                cost,
                p,
                solver,
                tol,
                max_iterations,
                topology,
            };
            let (summary, files) = balance_weights(
                opened.backend.as_mut(),
                &weights,
                &out,
                settings,
                &opened.why,
            )?;
            println!(
                "wrote {} files to {}: {}",
                files.len(),
                out.display(),
                files.join(", ")
            );
            println!("{}", serde_json::to_string_pretty(&summary)?);
            Ok(())
        }
        Command::Run {
            scene,
            out,
            backend,
            smoke,
            quiet,
            threads: _,
        } => {
            let parsed = Scene::read(&scene)?;
            let mut opened = select::open(backend)?;
            let info = opened.backend.info();
            eprintln!(
                "dale: backend {} ({}, {}): {}",
                info.name, info.kind, info.device_type, opened.why
            );
            let opts = RunOptions {
                out,
                smoke,
                progress: !quiet,
                backend_why: opened.why.clone(),
                scene_file: Some(scene),
            };
            let report = run_scene(parsed, opened.backend.as_mut(), &opts)?;
            println!(
                "wrote {} files to {}: {}",
                report.files.len(),
                report.out.display(),
                report.files.join(", ")
            );
            println!(
                "{}",
                serde_json::to_string_pretty(&report.summary["figures"])?
            );
            println!(
                "checks: {}",
                serde_json::to_string_pretty(&report.summary["checks"])?
            );
            Ok(())
        }
    }
}

fn devices() -> anyhow::Result<()> {
    let rows = select::list_adapters();
    if rows.is_empty() {
        println!("wgpu sees no adapter.");
    }
    for (i, r) in rows.iter().enumerate() {
        let rank = r
            .rank
            .map(|k| format!("rank {k}"))
            .unwrap_or_else(|| "never picked by auto (software or unknown adapter)".into());
        println!(
            "[{i}] {} ({}, {}) driver: {}",
            r.name, r.backend, r.device_type, r.driver
        );
        println!(
            "    {rank}; largest buffer {} MiB, workgroup memory {} KiB, {} invocations per workgroup, {} workgroups per dimension",
            r.max_buffer_mib, r.max_workgroup_storage_kib, r.max_invocations_per_workgroup, r.max_workgroups_per_dimension
        );
    }
    println!("auto picks: {}", select::auto_choice()?);
    Ok(())
}
