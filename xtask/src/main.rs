//! `cargo xtask`: build, test and simulation tasks for imx-redundant-boot.
//!
//! Each subcommand is documented by its clap doc comment (`cargo xtask --help`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

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
        && run_tests(tests)
}

/// Runs `cargo test`, passing its output through, and closes with one line that totals every
/// test binary's `test result:` line (cargo's own last line is often an empty doc-test run).
fn run_tests(mut cmd: Command) -> bool {
    eprintln!("\n==> workspace tests\n    $ {cmd:?}");
    let child = cmd.stdout(Stdio::piped()).spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            eprintln!("xtask: cannot run cargo test: {e}");
            return false;
        }
    };
    let (mut passed, mut failed) = (0u64, 0u64);
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            println!("{line}");
            if let Some((p, f)) = parse_result_line(&line) {
                passed += p;
                failed += f;
            }
        }
    }
    let ok = child.wait().is_ok_and(|s| s.success());
    println!("\ntests: {passed} passed, {failed} failed");
    ok && failed == 0
}

/// Reads `test result: ok. 5 passed; 0 failed; ...` into (passed, failed).
fn parse_result_line(line: &str) -> Option<(u64, u64)> {
    let rest = line.strip_prefix("test result: ")?;
    let num = |word: &str| {
        rest.split(';')
            .find_map(|part| {
                part.trim()
                    .trim_start_matches("ok. ")
                    .trim_start_matches("FAILED. ")
                    .strip_suffix(word)
            })
            .and_then(|n| n.trim().parse::<u64>().ok())
    };
    Some((num(" passed")?, num(" failed")?))
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

#[cfg(test)]
mod tests {
    use super::parse_result_line;

    #[test]
    fn totals_come_from_cargo_result_lines() {
        let ok = "test result: ok. 23 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.2s";
        assert_eq!(parse_result_line(ok), Some((23, 0)));
        let bad = "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out";
        assert_eq!(parse_result_line(bad), Some((3, 2)));
        assert_eq!(parse_result_line("running 3 tests"), None);
    }
}
