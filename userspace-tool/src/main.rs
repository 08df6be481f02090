//! `ubootctl`: inspect, verify and safely update redundant HAB-signed U-Boot images on i.MX 8M
//! devices (design.md §7).
//!
//! Exit codes (contract): 0 done / decoded, 1 refused / not a valid image / unsafe target
//! (partition, mounted device), 2 usage or I/O error (a closed standard output included); for
//! `update` and `sync`, 128 + the signal number when SIGHUP, SIGINT or SIGTERM stopped the run
//! between two copies.

mod cell_source;
mod cli_commit;
mod cli_status;
mod cli_update;
mod exit;
mod fuses;
mod image_file;
mod inspect;
mod output;
mod verify;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Help text shared by every page: what the exit codes mean.
macro_rules! exit_status {
    ($ok:literal, $one:literal) => {
        concat!(
            "EXIT STATUS\n",
            "  0  ", $ok, "\n",
            "  1  ", $one, "\n",
            "  2  usage or I/O error: bad option, unreadable file or device, fuses that cannot be\n",
            "     read, a write or read-back that failed, a standard output that closed (a stopped\n",
            "     update still boots: run it again)\n"
        )
    };
}

/// The FILES section of the commands that write the device (`update`, `sync`): they share the
/// target checks, the `force_ro` handling and the cell read.
macro_rules! files_writers {
    () => {
        "FILES
  /dev/mmcblkN, /dev/mmcblkNbootM
                            the boot medium (--device), or an image file of it
  /sys/block/mmcblkNbootM/force_ro
                            lowered to 0 for the writes to a boot partition, then restored
  /sys/bus/nvmem/devices/imx-ocotp0/nvmem
                            OCOTP fuses (--ocotp), unless --srk-hash is given
  /dev/mem                  the shim's boot cell, for the running slot (--mem)
  /sys/class/block/NAME/{partition,dev,holders}, /proc/self/mountinfo, /proc/swaps
                            to refuse a partition and a device in use
"
    };
}

/// The FILES section of the main page.
macro_rules! files_all {
    () => {
        "FILES
  /dev/mmcblkN              SD/eMMC user area (--device); the ROM reads it raw, never a partition
  /dev/mmcblkNboot0, boot1  eMMC boot partitions (--device); write-protected by the kernel
  /sys/block/mmcblkNbootM/force_ro
                            lowered to 0 for the writes to a boot partition and put back to its
                            previous value on every way out (success, error, refusal, panic)
  /sys/bus/nvmem/devices/imx-ocotp0/nvmem
                            OCOTP fuses: SRK hash at 0x60, SEC_CONFIG at 0x1C (--ocotp)
  /dev/mem                  physical memory: the shim's boot cell at the board's address (--mem)
  /sys/class/block/NAME/{partition,dev,holders}, /proc/self/mountinfo, /proc/swaps
                            to refuse a partition and a device that is mounted, swap or held
"
    };
}

const MAIN_LONG: &str = "\
NAME
  ubootctl - inspect, verify and safely update redundant HAB-signed U-Boot on i.MX 8M boards

DESCRIPTION
  The boot medium holds two copies of flash.bin: the primary at 33 KiB (sector 0x42) and the
  secondary at 2 MiB + 33 KiB, found by the boot ROM through the Secondary Image Table (SIT) at
  sector 0x41. The shim boots the primary when it is authentic and falls back to the secondary
  otherwise.

  `update` follows NXP AN12900's rule so that a power cut at any moment leaves a bootable
  device: running the primary, the secondary is first made a copy of it, the SIT is written
  once that copy is complete, then the new image goes to the primary; running the secondary,
  only the primary is written. The tool never writes the copy it would need to fall back to.
  Each copy is written header-last, flushed and read back from the medium (SHA-256).

  Run `ubootctl COMMAND --help` for each command's page.";

const MAIN_AFTER: &str = concat!(
    exit_status!(
        "success: decoded, authentic, healthy, installed (or already installed)",
        "refused or rejected, nothing written: not a valid or not an authentic image, a degraded\n     device, an unsafe target (a partition, a mounted device)"
    ),
    "\n",
    files_all!(),
    "\nEXAMPLES
  ubootctl inspect flash.bin
  ubootctl verify flash.bin --srk-hash SRK_1_2_3_4_fuse.bin
  ubootctl status --device /dev/mmcblk2
  ubootctl update flash.bin --device /dev/mmcblk2 --dry-run
  ubootctl update flash.bin --device /dev/mmcblk2
"
);

const INSPECT_LONG: &str = "\
Say what an image is and decode it.

IMAGE is detected: a flash.bin (SPL IVT at offset 0, U-Boot FIT at the board layout's FIT
offset), a signed FIT (FIT, zero pad to a 4 KiB boundary, IVT, CSF) or a bare FIT. The report
covers the IVT, the FIT images and default configuration, the CSF commands, the SRK table and
its fuse hash, the certificates and the signatures. Nothing is verified: see `verify`.";

const INSPECT_AFTER: &str = concat!(
    exit_status!(
        "decoded",
        "not a valid image: one line names the structure, the field and the byte offset"
    ),
    "\nEXAMPLES
  ubootctl inspect flash.bin
  ubootctl inspect u-boot-signed.itb --json | jq .csf
"
);

const VERIFY_LONG: &str = "\
Decide whether an image is authentic exactly as the shim does, with the software HAB4 verifier.

The SRK table must hash to the fuses; the installed SRK must exist, be a public key and not be
revoked; the CSF key and image key certificates must be signed by their source key; the CSF and
image signatures (CMS, SHA-256) must verify; the signed blocks must lie inside the image and
cover the FIT, its padding and the IVT; the load address must lie in the board's FIT window.
A flash.bin is checked for its FIT and, when the SPL carries a CSF, for its SPL.";

const VERIFY_AFTER: &str = concat!(
    exit_status!(
        "authentic",
        "rejected: the reason names the check and where (and the HAB status it maps to)"
    ),
    "\n",
    "FILES
  /sys/bus/nvmem/devices/imx-ocotp0/nvmem
                            OCOTP fuses: SRK hash at 0x60, SEC_CONFIG at 0x1C (--ocotp)
",
    "\nEXAMPLES
  ubootctl verify flash.bin --srk-hash SRK_1_2_3_4_fuse.bin
  ubootctl verify flash.bin                  # fuses from the OCOTP nvmem device, on the board
"
);

const STATUS_LONG: &str = "\
Report which copy is running, the state of the medium, what the next boot will do, and what to
do about it.

The running slot comes from the shim's boot cell (word 0 and the checksummed boot record at the
board's cell address in /dev/mem); a cell without a valid record is reported as \"no boot
record\" and never guessed from. The SIT, the primary and the secondary are read from the device
and judged as the shim judges them; the shim's policy then predicts the next boot.";

const STATUS_AFTER: &str = concat!(
    exit_status!(
        "healthy: running the primary, with an authentic identical secondary behind a valid\n     SIT",
        "degraded: running the secondary, fallback missing, stale or not authentic, SIT invalid,\n     or no boot record; the action to take is printed"
    ),
    "\n",
    "FILES
  /dev/mmcblkN              the boot medium (--device)
  /dev/mem                  the shim's boot cell at the board's cell address (--mem)
  /sys/bus/nvmem/devices/imx-ocotp0/nvmem
                            OCOTP fuses (--ocotp)
",
    "\nEXAMPLES
  ubootctl status
  ubootctl status --device /dev/mmcblk2 --json
"
);

const UPDATE_LONG: &str = "\
Install a new signed flash.bin with NXP AN12900's rule, power-cut safe.

The image is verified before anything is written: structure, size within the 2 MiB slot,
authenticity against the fuses, load address in the board's FIT window, board. Then, per
AN12900:
  running the primary (slot 1)    the secondary is made a copy of the primary (only if it
                                  differs), the SIT is written if missing or wrong (only after
                                  the secondary is complete), then the new image is written to
                                  the primary
  running the secondary (slot 2)  only the primary is written; the secondary is the fallback
An image already installed with a valid fallback is not rewritten.

Each copy is written header-last: its first block invalidated and flushed, the body written,
the first block written without its IVT, flushed, then the IVT, flushed; the copy is then read
back bypassing the page cache and compared by SHA-256. Writes and read-back use O_DIRECT in
whole logical blocks (the size from BLKSSZGET), or the page cache where the file system refuses
O_DIRECT; the durability points are exactly the flushes named above: fdatasync, plus BLKFLSBUF
on a block device. The device is locked (flock) and, for a block device, opened with O_EXCL for
the whole run.

SIGINT, SIGTERM and SIGHUP received while writing, and a standard output that closes (a broken
pipe), do not interrupt a copy: the copy being written is completed and read back, then the
update stops before the next one, force_ro is restored, and the exit status is 128 + the signal
number (130 SIGINT, 143 SIGTERM, 129 SIGHUP) or 2 for the closed output. The device boots
either way; running the same command again finishes the update. A signal received while the
last copy is written lets the update complete (exit 0).

The device must be the whole SD/eMMC user area (/dev/mmcblkN) or an eMMC boot partition
(/dev/mmcblkNbootM), never a partition (/dev/mmcblkNpM, /dev/sdXN): the ROM reads the raw
device. A device that is mounted, or has a mounted partition, an active swap area or a
device-mapper holder, is refused. On a boot partition, /sys/block/NAME/force_ro is lowered to 0
for the writes and restored afterwards on every way out; the image offsets there are those of
the board's layout (i.MX 8M Mini: 33 KiB, as in the user area).

The running slot comes from the boot cell; when the cell has no valid record, update refuses
unless --running names the slot.";

const UPDATE_AFTER: &str = concat!(
    exit_status!(
        "installed, or already installed (nothing written)",
        "refused, nothing written: image not valid, not authentic, too large or for another\n     board; device too small; running slot unknown; target is a partition, mounted, swap or\n     held; running copy not authentic and no fallback"
    ),
    "  129, 130, 143\n     stopped by SIGHUP, SIGINT, SIGTERM between two copies (see above); it still boots\n",
    "\n",
    files_writers!(),
    "\nEXAMPLES
  ubootctl update flash.bin --device /dev/mmcblk2 --dry-run     # print the plan, write nothing
  ubootctl update flash.bin --device /dev/mmcblk2
  ubootctl update flash.bin --device /dev/mmcblk2boot0 --json   # eMMC boot partition, JSON events
  ubootctl update flash.bin --device sd.img --srk-hash SRK_1_2_3_4_fuse.bin --running 1

  AN12900's own commands, which this replaces (header first, no checks, no read-back):
    dd if=/dev/mmcblk2 of=/dev/mmcblk2 bs=1k count=2048 skip=33 seek=2081
    dd if=new.bin of=/dev/mmcblk2 bs=1K seek=33 && sync
"
);

const SYNC_LONG: &str = "\
Make the secondary a verified copy of the running primary and (re)write the secondary image
table: the first half of `update`, for a device whose fallback is missing, stale or not
authentic. Running the secondary, sync refuses: the secondary is the fallback and is never
written. Same writing discipline, locking, target checks, force_ro handling and handling of
signals and a closed output as `update`.";

const SYNC_AFTER: &str = concat!(
    exit_status!(
        "the secondary is an authentic copy of the primary behind a valid SIT (or already was)",
        "refused, nothing written: running slot unknown or not the primary, primary not\n     authentic, target is a partition, mounted, swap or held"
    ),
    "  129, 130, 143\n     stopped by SIGHUP, SIGINT, SIGTERM between two copies; it still boots\n",
    "\n",
    files_writers!(),
    "\nEXAMPLES
  ubootctl sync --device /dev/mmcblk2 --dry-run
  ubootctl sync --device /dev/mmcblk2
"
);

const COMMIT_LONG: &str = "\
Advance the anti-rollback minimum: burn rollback fuse bits so that no image whose security
epoch (its FIT's signed `rollback-index`) is below the running image's boots again.

The minimum is the number of burned bits (OCOTP GP1 on silicon, the simulated block's bytes
0x28..0x30 in QEMU); the shim refuses a copy below it and falls back. `commit` advances it only
when (1) the boot record's booted-image identity is the image in the primary, so the new image
has booted, and (2) the secondary holds the same image behind a valid SIT (run `sync` first).
It advances to the lower of the two copies' epochs, so every bootable copy still boots whatever
subset of the bits a power cut lets land. Nothing on the medium is written.

Fuses are irreversible: without --dry-run, --yes is required.";

const COMMIT_AFTER: &str = "\
EXIT STATUS
  0  the minimum is the running image's epoch (burned now, or already), or --dry-run planned it
  1  refused, nothing burned: no boot record naming the running image, a shim that does not
     enforce the fuses, the running image not the primary's, the secondary differs, a copy
     not authentic or unsigned (open part), GP1 write-locked, an eMMC boot partition
  2  usage or I/O error: neither --yes nor --dry-run, no rollback fuses (--srk-hash), fuses
     that cannot be read, a burn that did not read back (the minimum it left is named; run
     it again)

FILES
  /sys/bus/nvmem/devices/imx-ocotp0/nvmem
                            OCOTP: GP1 (bank 14 words 0-1) at 0xE0, LOCK word at 0x0 (--ocotp)
  /dev/mem                  the boot cell (--mem); with --fuses /dev/mem, the simulated fuse
                            block at the board's fuse address

EXAMPLES
  ubootctl commit --device /dev/mmcblk2 --dry-run
  ubootctl commit --device /dev/mmcblk2 --yes
";

/// Inspect, verify and safely update HAB-signed U-Boot images for i.MX 8M redundant boot.
#[derive(Debug, Parser)]
#[command(
    name = "ubootctl",
    version,
    about,
    long_about = MAIN_LONG,
    after_long_help = MAIN_AFTER,
    after_help = "Run `ubootctl --help` or `ubootctl COMMAND --help` for the full pages (exit status, files, examples)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Say what an image is (flash.bin, signed FIT, bare FIT) and decode it.
    #[command(long_about = INSPECT_LONG, after_long_help = INSPECT_AFTER)]
    Inspect {
        /// The image file: a flash.bin or a (signed) U-Boot FIT.
        image: PathBuf,
        /// Print one JSON document instead of text [default: off].
        #[arg(long)]
        json: bool,
        /// Board whose media layout gives the FIT offset inside a flash.bin.
        #[arg(long, default_value = "imx8mm-evk", value_parser = board_names())]
        board: String,
    },
    /// Decide whether an image is authentic, as the shim will.
    #[command(long_about = VERIFY_LONG, after_long_help = VERIFY_AFTER)]
    Verify {
        /// The image file: a signed FIT or a flash.bin.
        image: PathBuf,
        #[command(flatten)]
        fuses: FuseArgs,
        /// Board: its FIT window bounds the load address, its media layout places the FIT in a
        /// flash.bin.
        #[arg(long, default_value = "imx8mm-evk", value_parser = board_names())]
        board: String,
        /// Print one JSON document instead of text [default: off].
        #[arg(long)]
        json: bool,
    },
    /// Report the running copy, both copies and the table on the medium, and the next boot.
    #[command(long_about = STATUS_LONG, after_long_help = STATUS_AFTER)]
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
        #[command(flatten)]
        fuses: FuseArgs,
        /// Print one JSON document instead of the table [default: off].
        #[arg(long)]
        json: bool,
    },
    /// Install a new signed flash.bin with NXP AN12900's rule, power-cut safe.
    #[command(long_about = UPDATE_LONG, after_long_help = UPDATE_AFTER)]
    Update {
        /// The signed flash.bin to install.
        image: PathBuf,
        #[command(flatten)]
        target: Target,
    },
    /// Make the secondary a verified copy of the running primary and (re)write the SIT.
    #[command(long_about = SYNC_LONG, after_long_help = SYNC_AFTER)]
    Sync {
        #[command(flatten)]
        target: Target,
    },
    /// Advance the anti-rollback minimum (burn fuses) once the new image booted from both copies.
    #[command(long_about = COMMIT_LONG, after_long_help = COMMIT_AFTER)]
    Commit(CommitArgs),
}

/// `commit`'s options: the target read (never written), the fuses, the cell; no `--running`
/// (the running image comes from the boot record only).
#[derive(Debug, clap::Args)]
struct CommitArgs {
    /// The boot medium: the whole SD/eMMC user area (/dev/mmcblkN) or an image file; never a
    /// partition. Read only. Required.
    #[arg(long, value_name = "DEV")]
    device: PathBuf,
    /// Board: media layout, cell address, fuse locations.
    #[arg(long, default_value = "imx8mm-evk", value_parser = board_names())]
    board: String,
    #[command(flatten)]
    fuses: FuseArgs,
    /// Physical memory to read the boot cell from (a file laid out as physical memory in tests).
    #[arg(long, value_name = "PATH", default_value = cell_source::DEV_MEM)]
    mem: PathBuf,
    /// Print which bits would burn and burn nothing [default: off].
    #[arg(long, conflicts_with = "yes")]
    dry_run: bool,
    /// Burn the fuses (irreversible) [default: off].
    #[arg(long)]
    yes: bool,
    /// Print JSON lines instead of text [default: off].
    #[arg(long)]
    json: bool,
    /// For tests only: the sysfs root (a fake tree describing the device).
    #[arg(long, value_name = "DIR", default_value = ubootctl::sysblock::SYSFS, hide = true)]
    sysfs_root: PathBuf,
    /// For tests only: the procfs root.
    #[arg(long, value_name = "DIR", default_value = ubootctl::sysblock::PROCFS, hide = true)]
    proc_root: PathBuf,
    /// For tests only: the directory of the per-storage lock files.
    #[arg(long, value_name = "DIR", default_value = ubootctl::storage_lock::LOCK_DIR, hide = true)]
    lock_dir: PathBuf,
}

fn run_commit(a: &CommitArgs) -> Result<(), exit::Failure> {
    let board = boards::by_name(&a.board).expect("clap restricts --board to known names");
    let fuses = load_fuses(&a.fuses, board)?;
    let c = cli_update::Common {
        device: &a.device,
        board,
        fuses: fuses.fuses,
        running: None,
        mem: &a.mem,
        dry_run: a.dry_run,
        json: a.json,
        roots: ubootctl::sysblock::SysRoots {
            sys: a.sysfs_root.clone(),
            proc: a.proc_root.clone(),
        },
        lock_dir: &a.lock_dir,
        step_delay: None,
    };
    cli_commit::commit(&c, &fuses, a.yes)
}

/// Where the fuse values (SRK hash, SEC_CONFIG, SRK revocations) come from.
#[derive(Debug, clap::Args)]
struct FuseArgs {
    /// The 32-byte SRK hash file (`srktool -f 1` output); the part is then taken as closed and
    /// nothing as revoked [default: read the fuses from the OCOTP nvmem device].
    #[arg(long, value_name = "FILE", conflicts_with = "fuses")]
    srk_hash: Option<PathBuf>,
    /// A 64-byte simulated fuse block (qemu-imx8mp contract: SRK hash, SEC_CONFIG,
    /// revocation mask, rollback bits) instead of the OCOTP device: a file, or physical memory
    /// (/dev/mem) holding it at the board's fuse address.
    #[arg(long, value_name = "FILE")]
    fuses: Option<PathBuf>,
    /// OCOTP nvmem device to read the fuses from when neither --srk-hash nor --fuses is given.
    #[arg(long, value_name = "PATH", default_value = fuses::OCOTP_NVMEM)]
    ocotp: PathBuf,
}

/// Where `update` and `sync` write, and how they decide.
#[derive(Debug, clap::Args)]
struct Target {
    /// The boot medium: the whole SD/eMMC user area (/dev/mmcblkN), an eMMC boot partition
    /// (/dev/mmcblkNbootM) or an image file; never a partition. Required.
    #[arg(long, value_name = "DEV")]
    device: PathBuf,
    /// Board: media layout, FIT window and cell address.
    #[arg(long, default_value = "imx8mm-evk", value_parser = board_names())]
    board: String,
    #[command(flatten)]
    fuses: FuseArgs,
    /// Physical memory to read the boot cell from (a file laid out as physical memory in tests).
    #[arg(long, value_name = "PATH", default_value = cell_source::DEV_MEM)]
    mem: PathBuf,
    /// The slot running now, 1 (primary) or 2 (secondary), when the boot cell cannot say
    /// [default: from the boot cell].
    #[arg(long, value_name = "SLOT")]
    running: Option<u8>,
    /// Print the plan (which bytes, in which order, why) and write nothing [default: off].
    #[arg(long)]
    dry_run: bool,
    /// Print JSON event lines instead of text and a progress bar [default: off].
    #[arg(long)]
    json: bool,
    /// For tests only: the sysfs root (a fake tree describing the device).
    #[arg(long, value_name = "DIR", default_value = ubootctl::sysblock::SYSFS, hide = true)]
    sysfs_root: PathBuf,
    /// For tests only: the procfs root (a fake mountinfo and swaps).
    #[arg(long, value_name = "DIR", default_value = ubootctl::sysblock::PROCFS, hide = true)]
    proc_root: PathBuf,
    /// For tests only: the directory of the per-storage lock files.
    #[arg(long, value_name = "DIR", default_value = ubootctl::storage_lock::LOCK_DIR, hide = true)]
    lock_dir: PathBuf,
    /// For tests only: pause this many milliseconds before every step of the plan.
    #[arg(long, value_name = "MS", hide = true)]
    test_step_delay_ms: Option<u64>,
}

fn board_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(boards::ALL.iter().map(|b| b.name))
}

fn run_verify(
    image: &std::path::Path,
    fuse_args: &FuseArgs,
    board: &'static boards::Board,
    json: bool,
) -> Result<(), exit::Failure> {
    let fuses = load_fuses(fuse_args, board)?;
    if verify::run(image, board, &fuses, json)? {
        Ok(())
    } else {
        Err(exit::Failure::Refused(format!(
            "{}: not authentic",
            image.display()
        )))
    }
}

fn load_fuses(a: &FuseArgs, board: &boards::Board) -> Result<fuses::FuseValues, exit::Failure> {
    fuses::load(a.srk_hash.as_ref(), a.fuses.as_ref(), &a.ocotp, board).map_err(|e| match e {
        fuses::FuseError::HashFile(m) | fuses::FuseError::Ocotp(m) => exit::Failure::Usage(m),
        fuses::FuseError::NotProgrammed(m) => exit::Failure::Refused(m),
    })
}

fn with_target(
    t: &Target,
    f: impl FnOnce(&cli_update::Common<'_>, &fuses::FuseValues) -> Result<(), exit::Failure>,
) -> Result<(), exit::Failure> {
    let board = boards::by_name(&t.board).expect("clap restricts --board to known names");
    let fuses = load_fuses(&t.fuses, board)?;
    f(
        &cli_update::Common {
            device: &t.device,
            board,
            fuses: fuses.fuses,
            running: t.running,
            mem: &t.mem,
            dry_run: t.dry_run,
            json: t.json,
            roots: ubootctl::sysblock::SysRoots {
                sys: t.sysfs_root.clone(),
                proc: t.proc_root.clone(),
            },
            lock_dir: &t.lock_dir,
            step_delay: t.test_step_delay_ms.map(std::time::Duration::from_millis),
        },
        &fuses,
    )
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect { image, json, board } => {
            let board = boards::by_name(&board).expect("clap restricts --board to known names");
            inspect::run(&image, board, json)
        }
        Command::Update { image, target } => with_target(&target, |c, f| {
            if !f.rollback_known {
                let _ = writeln!(
                    std::io::stderr(),
                    "ubootctl: note: the rollback fuses were not read ({}): the image's epoch is \
                     not checked against the minimum here; the shim checks it at boot",
                    f.source
                );
            }
            cli_update::update(&image, c)
        }),
        Command::Sync { target } => with_target(&target, |c, _| cli_update::sync(c)),
        Command::Commit(args) => run_commit(&args),
        Command::Status {
            device,
            board,
            mem,
            fuses,
            json,
        } => {
            let board = boards::by_name(&board).expect("clap restricts --board to known names");
            load_fuses(&fuses, board).and_then(|f| {
                if cli_status::run(&device, board, &f, &mem, json)? {
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
            fuses,
            board,
            json,
        } => {
            let board = boards::by_name(&board).expect("clap restricts --board to known names");
            run_verify(&image, &fuses, board, json)
        }
    };
    // Output that could not be written (a closed pipe) is an I/O error once the command is
    // done; a command that failed reports its own failure.
    // Output that could not be written (a closed pipe, a full disk) is an I/O error whatever the
    // command concluded: its answer did not reach the caller.
    let result = match output::take_failure() {
        Some(error) => Err(exit::Failure::Io {
            what: "write to standard output".into(),
            error,
        }),
        None => result,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            // Not eprintln!: with standard error closed too, the exit code still tells.
            let _ = writeln!(std::io::stderr(), "ubootctl: {f}");
            f.exit_code()
        }
    }
}
