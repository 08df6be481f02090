//! `ubootctl`: inspect, verify and safely update redundant HAB-signed U-Boot images on i.MX 8M
//! devices (design.md §7).
//!
//! Exit codes (contract): 0 done / decoded, 1 refused / not a valid image, 2 usage or I/O error.

mod exit;
mod fuses;
mod inspect;
mod verify;

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
    /// Decide whether an image is authentic, as the shim will: SRK table hash against the
    /// fuses, certificates, CSF and image signatures, coverage of FIT, padding and IVT.
    ///
    /// IMAGE is a signed FIT or a flash.bin (its FIT, and its SPL when the SPL carries a CSF).
    /// Exit status: 0 authentic, 1 rejected (the reason names the check and where), 2 usage or
    /// I/O error (including fuses that cannot be read).
    Verify {
        /// The image file.
        image: PathBuf,
        /// The 32-byte SRK hash file (`srktool -f 1` output). Without it the SRK fuses are read
        /// from the OCOTP nvmem device.
        #[arg(long, value_name = "FILE")]
        srk_hash: Option<PathBuf>,
        /// OCOTP nvmem device to read the fuses from when --srk-hash is not given.
        #[arg(long, value_name = "PATH", default_value = fuses::OCOTP_NVMEM)]
        ocotp: PathBuf,
        /// Board: its FIT window bounds the load address, its media layout places the FIT in a
        /// flash.bin.
        #[arg(long, default_value = "imx8mm-evk", value_parser = board_names())]
        board: String,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn board_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(boards::ALL.iter().map(|b| b.name))
}

fn run_verify(
    image: &std::path::Path,
    srk_hash: Option<&PathBuf>,
    ocotp: &std::path::Path,
    board: &'static boards::Board,
    json: bool,
) -> Result<(), exit::Failure> {
    let fuses = fuses::load(srk_hash, ocotp).map_err(|e| match e {
        fuses::FuseError::HashFile(m) | fuses::FuseError::Ocotp(m) => exit::Failure::Usage(m),
        fuses::FuseError::NotProgrammed(m) => exit::Failure::Refused(m),
    })?;
    if verify::run(image, board, &fuses, json)? {
        Ok(())
    } else {
        Err(exit::Failure::Refused(format!(
            "{}: not authentic",
            image.display()
        )))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect { image, json, board } => {
            let board = boards::by_name(&board).expect("clap restricts --board to known names");
            inspect::run(&image, board, json)
        }
        Command::Verify {
            image,
            srk_hash,
            ocotp,
            board,
            json,
        } => {
            let board = boards::by_name(&board).expect("clap restricts --board to known names");
            run_verify(&image, srk_hash.as_ref(), &ocotp, board, json)
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
