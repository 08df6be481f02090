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
    /// Figures: the firmware's `.text`/`.rodata`/`.bss` (it links the software HAB4 verifier),
    /// then the host benchmarks (`cargo bench -p imx-hab`: 2 MiB verification against
    /// `openssl dgst` + `openssl cms -verify`, SHA-256 against `sha256sum`).
    Bench,
}

/// Crates that must build for bare metal without std or alloc.
const NO_STD_CRATES: &[&str] = &["imx-hab", "boards", "spl-shim"];
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
    no_std.args(["clippy", "--target", FIRMWARE_TARGET]);
    for c in NO_STD_CRATES {
        no_std.args(["-p", c]);
    }
    no_std.args(["--", "-D", "warnings"]);
    // The firmware link proves the no_std crates need no allocator (none is defined).
    let mut firmware = cargo();
    firmware.args([
        "build",
        "--profile",
        "firmware",
        "-p",
        "spl-shim",
        "--target",
        FIRMWARE_TARGET,
    ]);
    let mut tests = cargo();
    tests.args(["test", "--workspace"]);
    step("format check", fmt)
        && step("clippy", clippy)
        && step(
            "no_std crates for aarch64-unknown-none (clippy, includes the ROM binding)",
            no_std,
        )
        && step("firmware link without an allocator", firmware)
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

/// Builds the firmware in release and prints its section sizes.
fn firmware_sizes() -> bool {
    let mut build = cargo();
    build.args([
        "build",
        "--profile",
        "firmware",
        "-p",
        "spl-shim",
        "--target",
        FIRMWARE_TARGET,
    ]);
    if !step("firmware build (profile firmware: opt-level s, LTO)", build) {
        return false;
    }
    let elf = workspace_root()
        .join("target")
        .join(FIRMWARE_TARGET)
        .join("firmware")
        .join("spl-shim");
    let data = match std::fs::read(&elf) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("xtask: cannot read {}: {e}", elf.display());
            return false;
        }
    };
    let file = match object::File::parse(&*data) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("xtask: {} is not an ELF file: {e}", elf.display());
            return false;
        }
    };
    use object::{Object, ObjectSection};
    println!(
        "\nfirmware {} (links the SHA-256 + P-256 + DER software verifier):",
        elf.display()
    );
    for name in [".text", ".rodata", ".data", ".bss", ".stack"] {
        let size = file.section_by_name(name).map_or(0, |s| s.size());
        println!(
            "  {name:<8} {size:>8} bytes ({:.1} KiB)",
            size as f64 / 1024.0
        );
    }
    true
}

fn bench() -> bool {
    let mut b = cargo();
    b.args([
        "bench",
        "-p",
        "imx-hab",
        "--features",
        "sign",
        "--bench",
        "hab",
    ]);
    firmware_sizes() && step("host benchmarks", b)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ok = match cli.task {
        Task::Test => test(),
        Task::Bench => bench(),
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
