//! The `dale` command: parse, call the library, print, exit code. Exit codes: 0 success,
//! 1 error (bad scene, size, I/O, GPU), 2 bad command line, 3 the run diverged (outputs kept).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dale::backend::select::{self, BackendChoice};
use dale::scene::runner::{run_scene, RunOptions};
use dale::scene::Scene;
use dale::DaleError;

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
        #[arg(long, env = "DALE_BACKEND", default_value = "auto", value_enum)]
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
    /// List every adapter wgpu sees, ranked, and say which one `auto` picks.
    Devices,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            let diverged = matches!(
                e.downcast_ref::<DaleError>(),
                Some(DaleError::Diverged { .. })
            );
            ExitCode::from(if diverged { 3 } else { 1 })
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Devices => devices(),
        Command::Run {
            scene,
            out,
            backend,
            smoke,
            quiet,
            threads,
        } => {
            if let Some(t) = threads {
                anyhow::ensure!(t >= 1, "--threads = {t}; allowed: an integer >= 1");
                rayon::ThreadPoolBuilder::new()
                    .num_threads(t)
                    .build_global()?;
            }
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
    let (_, why) = select::pick(BackendChoice::Auto)?;
    println!("auto picks: {why}");
    Ok(())
}
