//! `ubootctl`: inspect, verify and safely update redundant HAB-signed U-Boot images on i.MX 8M
//! devices (design.md §7).
//!
//! Exit codes (contract): 0 done / decoded, 1 refused / not a valid image, 2 usage or I/O error.

mod exit;
mod inspect;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Inspect and verify HAB-signed U-Boot images for i.MX 8M redundant boot.
#[derive(Debug, Parser)]
#[command(name = "ubootctl", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Say what an image is (flash.bin, signed FIT, bare FIT) and decode it: IVT, FIT images
    /// and default configuration, CSF commands, SRK table and hash, certificates, signatures.
    ///
    /// Exit status: 0 decoded, 1 not a valid image (the message names the structure, field
    /// and byte offset), 2 usage or I/O error.
    Inspect {
        /// The image file: a flash.bin or a (signed) U-Boot FIT.
        image: PathBuf,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
        /// Board whose media layout gives the FIT offset inside a flash.bin.
        #[arg(long, default_value = "imx8mm-evk", value_parser = board_names())]
        board: String,
    },
}

fn board_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(boards::ALL.iter().map(|b| b.name))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect { image, json, board } => {
            let board = boards::by_name(&board).expect("clap restricts --board to known names");
            inspect::run(&image, board, json)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("ubootctl: {f}");
            f.exit_code()
        }
    }
}
