//! The `plugin-host` command line.

use anyhow::Context;
use clap::{Parser, Subcommand};
use plugin_host::{PluginProcess, PluginSpec, runner};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "plugin-host",
    version,
    about = "Run untrusted WebAssembly media plugins, each in its own sandboxed process"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show a plugin's name, version, frame formats and parameters.
    Inspect {
        plugin: PathBuf,
        /// Print JSON for tools.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    if std::env::args_os().nth(1).is_some_and(|a| a == runner::RUNNER_ARG) {
        return runner::main();
    }
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_target(false).init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Inspect { plugin, json } => {
            let name = plugin.file_stem().map_or_else(|| "plugin".into(), |s| s.to_string_lossy().into_owned());
            let process = PluginProcess::spawn(PluginSpec::new(name, &plugin, 4096))?;
            let d = process.description().clone();
            process.shutdown()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&d).context("encoding the description")?);
            } else {
                println!("{} {}\n{}\nformats: {}", d.name, d.version, d.description, d.formats.join(", "));
                for p in &d.params {
                    println!(
                        "  {} ({}, default {:?}): {} — {}",
                        p.name,
                        p.kind.type_name(),
                        p.kind.default_value(),
                        p.kind.allowed(),
                        p.help
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
