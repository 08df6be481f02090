//! `cargo xtask`: build, test and simulation tasks for imx-redundant-boot.
//!
//! Each subcommand is documented by its clap doc comment (`cargo xtask --help`).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::{Parser, Subcommand};

/// Build, test and simulation tasks for imx-redundant-boot.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// The README's test command: format check, clippy (warnings are errors), the `no_std`
    /// builds for aarch64-unknown-none, then every workspace test.
    Test,
}

/// Crates that must build for bare metal without std or alloc.
const NO_STD_CRATES: &[&str] = &["imx-hab", "boards"];
/// The firmware target.
const FIRMWARE_TARGET: &str = "aarch64-unknown-none";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(workspace_root());
    c
}

/// Runs one step, printing what it runs; returns whether it succeeded.
fn step(title: &str, mut cmd: Command) -> bool {
    eprintln!("\n==> {title}\n    $ {cmd:?}");
    match cmd.status() {
        Ok(s) if s.success() => true,
        Ok(s) => {
            eprintln!("xtask: {title} failed ({s})");
            false
        }
        Err(e) => {
            eprintln!("xtask: cannot run {title}: {e}");
            false
        }
    }
}

fn test() -> bool {
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    let mut no_std = cargo();
    no_std.args(["build", "--target", FIRMWARE_TARGET]);
    for c in NO_STD_CRATES {
        no_std.args(["-p", c]);
    }
    let mut tests = cargo();
    tests.args(["test", "--workspace"]);
    step("format check", fmt)
        && step("clippy", clippy)
        && step("no_std build for aarch64-unknown-none", no_std)
        && step("workspace tests", tests)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ok = match cli.task {
        Task::Test => test(),
    };
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
