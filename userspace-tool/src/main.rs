//! `ubootctl`: inspect, verify and safely update redundant HAB-signed U-Boot images on i.MX 8M
//! devices (design.md §7).
//!
//! Exit codes (contract): 0 done / decoded, 1 refused / not a valid image, 2 usage or I/O error.

mod cell_source;
mod cli_status;
mod cli_update;
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
    /// Report which copy is running (from the shim's boot cell), the state of the secondary
    /// image table and of both copies on the medium, what the next boot will do, and what to do.
    ///
    /// Exit status: 0 healthy (running the primary, an authentic identical secondary behind a
    /// valid table), 1 degraded (running the secondary, fallback missing, stale or invalid,
    /// table invalid, or no boot record), with the action to take; 2 usage or I/O error.
    Status {
        /// The boot medium.
        #[arg(long, value_name = "DEV", default_value = cli_status::DEFAULT_DEVICE)]
        device: PathBuf,
        /// Board: media layout, FIT window and cell address.
        #[arg(long, default_value = "imx8mm-evk", value_parser = board_names())]
        board: String,
        /// Physical memory to read the boot cell from (a file laid out as physical memory in
        /// tests).
        #[arg(long, value_name = "PATH", default_value = cell_source::DEV_MEM)]
        mem: PathBuf,
        /// The 32-byte SRK hash file; without it the SRK fuses are read from the OCOTP device.
        #[arg(long, value_name = "FILE")]
        srk_hash: Option<PathBuf>,
        /// OCOTP nvmem device to read the fuses from when --srk-hash is not given.
        #[arg(long, value_name = "PATH", default_value = fuses::OCOTP_NVMEM)]
        ocotp: PathBuf,
        /// Print one JSON document instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Install a new signed flash.bin with NXP AN12900's rule, power-cut safe.
    ///
    /// The image is verified first (structure, size within the slot, authenticity against the
    /// fuses, load address in the board's FIT window). Running from the primary: the secondary
    /// is made a copy of the primary (only if it differs), the secondary image table is written
    /// if missing or wrong (after the secondary is complete), then the primary is written.
    /// Running from the secondary: only the primary is written. Each copy is written
    /// header-last, flushed, and read back past the page cache. The device is locked for the
    /// whole run. Exit status: 0 installed (or already installed: nothing written), 1 refused
    /// (nothing written), 2 usage or I/O error (a stopped update leaves a bootable device; run
    /// it again).
    Update {
        /// The signed flash.bin to install.
        image: PathBuf,
        #[command(flatten)]
        target: Target,
    },
    /// Make the secondary a verified copy of the running primary and (re)write the secondary
    /// image table. Exit status as for `update`.
    Sync {
        #[command(flatten)]
        target: Target,
    },
}

/// Where `update` and `sync` write, and how they decide.
#[derive(Debug, clap::Args)]
struct Target {
    /// The boot medium: an SD/eMMC user-area block device (e.g. /dev/mmcblk2) or an image file.
    #[arg(long, value_name = "DEV")]
    device: PathBuf,
    /// Board: media layout, FIT window and cell address.
    #[arg(long, default_value = "imx8mm-evk", value_parser = board_names())]
    board: String,
    /// The 32-byte SRK hash file; without it the SRK fuses are read from the OCOTP device.
    #[arg(long, value_name = "FILE")]
    srk_hash: Option<PathBuf>,
    /// OCOTP nvmem device to read the fuses from when --srk-hash is not given.
    #[arg(long, value_name = "PATH", default_value = fuses::OCOTP_NVMEM)]
    ocotp: PathBuf,
    /// Physical memory to read the boot cell from (a file laid out as physical memory in tests).
    #[arg(long, value_name = "PATH", default_value = cell_source::DEV_MEM)]
    mem: PathBuf,
    /// The slot running now (1 primary, 2 secondary), when the boot cell cannot say.
    #[arg(long, value_name = "SLOT")]
    running: Option<u8>,
    /// Print the plan (which bytes, in which order, why) and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print JSON event lines instead of text and a progress bar.
    #[arg(long)]
    json: bool,
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
    let fuses = load_fuses(srk_hash, ocotp)?;
    if verify::run(image, board, &fuses, json)? {
        Ok(())
    } else {
        Err(exit::Failure::Refused(format!(
            "{}: not authentic",
            image.display()
        )))
    }
}

fn load_fuses(
    srk_hash: Option<&PathBuf>,
    ocotp: &std::path::Path,
) -> Result<fuses::FuseValues, exit::Failure> {
    fuses::load(srk_hash, ocotp).map_err(|e| match e {
        fuses::FuseError::HashFile(m) | fuses::FuseError::Ocotp(m) => exit::Failure::Usage(m),
        fuses::FuseError::NotProgrammed(m) => exit::Failure::Refused(m),
    })
}

fn with_target(
    t: &Target,
    f: impl FnOnce(&cli_update::Common<'_>) -> Result<(), exit::Failure>,
) -> Result<(), exit::Failure> {
    let board = boards::by_name(&t.board).expect("clap restricts --board to known names");
    let fuses = load_fuses(t.srk_hash.as_ref(), &t.ocotp)?;
    f(&cli_update::Common {
        device: &t.device,
        board,
        fuses: fuses.fuses,
        running: t.running,
        mem: &t.mem,
        dry_run: t.dry_run,
        json: t.json,
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect { image, json, board } => {
            let board = boards::by_name(&board).expect("clap restricts --board to known names");
            inspect::run(&image, board, json)
        }
        Command::Update { image, target } => {
            with_target(&target, |c| cli_update::update(&image, c))
        }
        Command::Sync { target } => with_target(&target, cli_update::sync),
        Command::Status {
            device,
            board,
            mem,
            srk_hash,
            ocotp,
            json,
        } => {
            let board = boards::by_name(&board).expect("clap restricts --board to known names");
            load_fuses(srk_hash.as_ref(), &ocotp).and_then(|f| {
                if cli_status::run(&device, board, &f.fuses, &mem, json)? {
                    Ok(())
                } else {
                    Err(exit::Failure::Refused(format!(
                        "{}: degraded",
                        device.display()
                    )))
                }
            })
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
