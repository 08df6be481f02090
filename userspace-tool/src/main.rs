//! `ubootctl`: inspect, verify and safely update redundant HAB-signed U-Boot images on i.MX 8M
//! devices (design.md §7).
//!
//! Exit codes (contract): 0 done / decoded, 1 refused / not a valid image / unsafe target
//! (partition, mounted device), 2 usage or I/O error (a closed standard output included); for
//! `update` and `sync`, 128 + the signal number when SIGHUP, SIGINT or SIGTERM stopped the run
//! between two copies.

mod cell_source;
mod cli_commit;
mod cli_emmc;
mod cli_status;
mod cli_update;
mod config;
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
  /etc/ubootctl.toml        defaults of --device, --board, the fuse source and --mem (unless
                            --config or $UBOOTCTL_CONFIG names another file; see `config --help`)
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
  /etc/ubootctl.toml        defaults of --device, --board, the fuse source and --mem (unless
                            --config or $UBOOTCTL_CONFIG names another file; see `config --help`)
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
  ubootctl config                              # the effective settings and their origin
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
and judged as the shim judges them; the shim's policy then predicts the next boot.

On an eMMC (a boot partition as --device, --emmc-ab, or a user area with boot partitions next
to it) status also reports EXT_CSD[179] decoded (BOOT_ACK, the enabled boot partition, the
access bits; read with CMD8 through MMC_IOC_CMD, which needs root) and the copy at 33 KiB of
each boot partition. With --emmc-ab the primary and secondary are the enabled and the disabled
partition's copies (layout (b)).";

const STATUS_AFTER: &str = concat!(
    exit_status!(
        "healthy: running the primary, with an authentic identical secondary behind a valid\n     SIT",
        "degraded: running the secondary, fallback missing, stale or not authentic, SIT invalid,\n     or no boot record; the action to take is printed"
    ),
    "\n",
    "FILES
  /dev/mmcblkN              the boot medium (--device); on an eMMC, EXT_CSD through
                            MMC_IOC_CMD and /dev/mmcblkNboot0, boot1
  /dev/mem                  the shim's boot cell at the board's cell address (--mem)
  /sys/bus/nvmem/devices/imx-ocotp0/nvmem
                            OCOTP fuses (--ocotp)
",
    "\nEXAMPLES
  ubootctl status
  ubootctl status --device /dev/mmcblk2 --json
  ubootctl status --emmc-ab --device /dev/mmcblk2
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
the board's layout (i.MX 8M Mini: 33 KiB, as in the user area). A boot partition given this
way (layout (a), AN12900 inside it, the table fitted to the partition: firstSectorNumber 0xFDF
for 4 MiB) must be the one EXT_CSD[179] enables: the other is refused.

eMMC A/B layout (b), --emmc-ab --device /dev/mmcblkN: one copy at 33 KiB in each of boot0 and
boot1; EXT_CSD[179] BOOT_PARTITION_ENABLE names the active one. The enabled partition is never
written: the new image goes to the other one (header last, read back), then a separate step
switches EXT_CSD[179] with one CMD6 through MMC_IOC_CMD (BOOT_ACK and the access bits kept) and
reads it back, failing when the kernel dropped the write. Running from the other partition
(the enabled one failed), that one is enabled first. force_ro of each boot partition is lowered
for its writes only and is back to its value before every switch.

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
  ubootctl update flash.bin --emmc-ab --device /dev/mmcblk2 --dry-run   # A/B: plan incl. switch
  ubootctl update flash.bin --emmc-ab --device /dev/mmcblk2
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
signals and a closed output as `update`.

With --emmc-ab (layout (b)), sync makes the disabled boot partition's copy equal to the enabled
one's; running from the disabled one (the enabled one failed), it enables that one first, then
copies it to the other.";

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
  ubootctl sync --emmc-ab --device /dev/mmcblk2
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

const CONFIG_LONG: &str = "\
Print the effective value of every configurable option and where it came from: the command
line, the configuration file, or the built-in default.

The configuration file is --config FILE, else $UBOOTCTL_CONFIG, else /etc/ubootctl.toml when it
exists. It is TOML with string values under keys named as the long options:

  device = \"/dev/mmcblk2\"
  board = \"imx8mm-evk\"
  srk-hash = \"/etc/ubootctl/SRK_1_2_3_4_fuse.bin\"   # or fuses = \"...\", or ocotp = \"...\"
  mem = \"/dev/mem\"

Relative paths are taken from the file's directory. Options on the command line override the
file; any of --srk-hash, --fuses and --ocotp replaces the file's whole fuse source. An unknown
key, a value that is not a string, an unknown board, or both srk-hash and fuses is an error
naming the file and the key (exit 2). Mender, SWUpdate and RAUC run ubootctl with this file
only (README, fleet update clients).";

const CONFIG_AFTER: &str = concat!(
    exit_status!("printed", "(not used)"),
    "\nFILES
  /etc/ubootctl.toml        the configuration file, unless --config or $UBOOTCTL_CONFIG names one
",
    "\nEXAMPLES
  ubootctl config
  ubootctl config --json
  UBOOTCTL_CONFIG=/data/ubootctl.toml ubootctl config --device /dev/mmcblk2
"
);

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
    /// The configuration file with the defaults of --device, --board, --srk-hash, --fuses,
    /// --ocotp and --mem [default: $UBOOTCTL_CONFIG, else /etc/ubootctl.toml if it exists].
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
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
        /// Board whose media layout gives the FIT offset inside a flash.bin [default: imx8mm-evk].
        #[arg(long, value_parser = board_names())]
        board: Option<String>,
    },
    /// Decide whether an image is authentic, as the shim will.
    #[command(long_about = VERIFY_LONG, after_long_help = VERIFY_AFTER)]
    Verify {
        /// The image file: a signed FIT or a flash.bin.
        image: PathBuf,
        #[command(flatten)]
        fuses: FuseArgs,
        /// Board: its FIT window bounds the load address, its media layout places the FIT in a
        /// flash.bin [default: imx8mm-evk].
        #[arg(long, value_parser = board_names())]
        board: Option<String>,
        /// Print one JSON document instead of text [default: off].
        #[arg(long)]
        json: bool,
    },
    /// Report the running copy, both copies and the table on the medium, and the next boot.
    #[command(long_about = STATUS_LONG, after_long_help = STATUS_AFTER)]
    Status {
        /// The boot medium [default: /dev/mmcblk1].
        #[arg(long, value_name = "DEV")]
        device: Option<PathBuf>,
        /// Board: media layout, FIT window and cell address [default: imx8mm-evk].
        #[arg(long, value_parser = board_names())]
        board: Option<String>,
        /// Physical memory to read the boot cell from (a file laid out as physical memory in
        /// tests) [default: /dev/mem].
        #[arg(long, value_name = "PATH")]
        mem: Option<PathBuf>,
        #[command(flatten)]
        fuses: FuseArgs,
        /// Print one JSON document instead of the table [default: off].
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        emmc: EmmcArgs,
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
    /// Print the effective settings (command line, configuration file, defaults) and where each
    /// came from.
    #[command(long_about = CONFIG_LONG, after_long_help = CONFIG_AFTER)]
    Config {
        /// The boot medium, as the other commands take it.
        #[arg(long, value_name = "DEV")]
        device: Option<PathBuf>,
        /// Board, as the other commands take it.
        #[arg(long, value_parser = board_names())]
        board: Option<String>,
        /// Physical memory for the boot cell, as the other commands take it.
        #[arg(long, value_name = "PATH")]
        mem: Option<PathBuf>,
        #[command(flatten)]
        fuses: FuseArgs,
        /// Print one JSON document instead of text [default: off].
        #[arg(long)]
        json: bool,
    },
}

/// `commit`'s options: the target read (never written), the fuses, the cell; no `--running`
/// (the running image comes from the boot record only).
#[derive(Debug, clap::Args)]
struct CommitArgs {
    /// The boot medium: the whole SD/eMMC user area (/dev/mmcblkN) or an image file; never a
    /// partition. Read only. Required (here or as `device` in the configuration file).
    #[arg(long, value_name = "DEV")]
    device: Option<PathBuf>,
    /// Board: media layout, cell address, fuse locations [default: imx8mm-evk].
    #[arg(long, value_parser = board_names())]
    board: Option<String>,
    #[command(flatten)]
    fuses: FuseArgs,
    /// Physical memory to read the boot cell from (a file laid out as physical memory in tests)
    /// [default: /dev/mem].
    #[arg(long, value_name = "PATH")]
    mem: Option<PathBuf>,
    /// Print which bits would burn and burn nothing [default: off].
    #[arg(long, conflicts_with = "yes")]
    dry_run: bool,
    /// Burn the fuses (irreversible) [default: off].
    #[arg(long)]
    yes: bool,
    /// Print JSON lines instead of text [default: off].
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    roots: TestRoots,
}

/// The eMMC layout and, for tests, where EXT_CSD comes from.
#[derive(Debug, clap::Args)]
struct EmmcArgs {
    /// eMMC A/B layout (b): one copy in each hardware boot partition, EXT_CSD[179] names the
    /// active one; --device is the eMMC itself (/dev/mmcblkN), its boot0/boot1 are used
    /// [default: off: the copies are on --device, layout (a) when it is a boot partition].
    #[arg(long)]
    emmc_ab: bool,
    /// For tests only: a 512-byte file standing for EXT_CSD instead of `MMC_IOC_CMD`.
    #[arg(long, value_name = "FILE", hide = true)]
    test_ext_csd: Option<PathBuf>,
}

impl EmmcArgs {
    fn options(&self) -> cli_update::EmmcOptions {
        cli_update::EmmcOptions {
            ab: self.emmc_ab,
            test_ext_csd: self.test_ext_csd.clone(),
        }
    }
}

/// Hidden options of the commands that open the medium: where sysfs, procfs and the lock files
/// are (fake trees and a private lock directory in tests).
#[derive(Debug, clap::Args)]
struct TestRoots {
    /// For tests only: the sysfs root (a fake tree describing the device).
    #[arg(long, value_name = "DIR", default_value = ubootctl::sysblock::SYSFS, hide = true)]
    sysfs_root: PathBuf,
    /// For tests only: the procfs root (a fake mountinfo and swaps).
    #[arg(long, value_name = "DIR", default_value = ubootctl::sysblock::PROCFS, hide = true)]
    proc_root: PathBuf,
    /// For tests only: the directory of the per-storage lock files.
    #[arg(long, value_name = "DIR", default_value = ubootctl::storage_lock::LOCK_DIR, hide = true)]
    lock_dir: PathBuf,
}

impl TestRoots {
    fn sys_roots(&self) -> ubootctl::sysblock::SysRoots {
        ubootctl::sysblock::SysRoots {
            sys: self.sysfs_root.clone(),
            proc: self.proc_root.clone(),
        }
    }
}

fn run_commit(a: &CommitArgs, e: &config::Effective) -> Result<(), exit::Failure> {
    let device = e.required_device()?;
    let mem = e.path("mem").unwrap_or_else(|| cell_source::DEV_MEM.into());
    let fuses = load_fuses(e)?;
    let c = cli_update::Common {
        device: &device,
        board: e.board(),
        fuses: fuses.fuses,
        running: None,
        mem: &mem,
        dry_run: a.dry_run,
        json: a.json,
        roots: a.roots.sys_roots(),
        lock_dir: &a.roots.lock_dir,
        step_delay: None,
        emmc: cli_update::EmmcOptions::default(),
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
    /// OCOTP nvmem device to read the fuses from when neither --srk-hash nor --fuses is given
    /// [default: /sys/bus/nvmem/devices/imx-ocotp0/nvmem].
    #[arg(long, value_name = "PATH")]
    ocotp: Option<PathBuf>,
}

/// Where `update` and `sync` write, and how they decide.
#[derive(Debug, clap::Args)]
struct Target {
    /// The boot medium: the whole SD/eMMC user area (/dev/mmcblkN), an eMMC boot partition
    /// (/dev/mmcblkNbootM) or an image file; never a partition. Required (here or as `device`
    /// in the configuration file).
    #[arg(long, value_name = "DEV")]
    device: Option<PathBuf>,
    /// Board: media layout, FIT window and cell address [default: imx8mm-evk].
    #[arg(long, value_parser = board_names())]
    board: Option<String>,
    #[command(flatten)]
    fuses: FuseArgs,
    /// Physical memory to read the boot cell from (a file laid out as physical memory in tests)
    /// [default: /dev/mem].
    #[arg(long, value_name = "PATH")]
    mem: Option<PathBuf>,
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
    #[command(flatten)]
    roots: TestRoots,
    #[command(flatten)]
    emmc: EmmcArgs,
    /// For tests only: pause this many milliseconds before every step of the plan.
    #[arg(long, value_name = "MS", hide = true)]
    test_step_delay_ms: Option<u64>,
}

fn board_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(boards::ALL.iter().map(|b| b.name))
}

fn run_verify(
    image: &std::path::Path,
    fuses: &fuses::FuseValues,
    board: &'static boards::Board,
    json: bool,
) -> Result<(), exit::Failure> {
    if verify::run(image, board, fuses, json)? {
        Ok(())
    } else {
        Err(exit::Failure::Refused(format!(
            "{}: not authentic",
            image.display()
        )))
    }
}

/// The fuse values from the effective fuse source (`--srk-hash`, else `--fuses`, else OCOTP).
fn load_fuses(e: &config::Effective) -> Result<fuses::FuseValues, exit::Failure> {
    let ocotp = e.path("ocotp").unwrap_or_else(|| fuses::OCOTP_NVMEM.into());
    fuses::load(
        e.path("srk-hash").as_ref(),
        e.path("fuses").as_ref(),
        &ocotp,
        e.board(),
    )
    .map_err(|err| match err {
        fuses::FuseError::HashFile(m) | fuses::FuseError::Ocotp(m) => exit::Failure::Usage(m),
        fuses::FuseError::NotProgrammed(m) => exit::Failure::Refused(m),
    })
}

/// What the command line gave for the configurable options.
fn given(
    device: Option<&PathBuf>,
    board: Option<&String>,
    fuses: Option<&FuseArgs>,
    mem: Option<&PathBuf>,
) -> config::Given {
    config::Given {
        device: device.cloned(),
        board: board.cloned(),
        srk_hash: fuses.and_then(|f| f.srk_hash.clone()),
        fuses: fuses.and_then(|f| f.fuses.clone()),
        ocotp: fuses.and_then(|f| f.ocotp.clone()),
        mem: mem.cloned(),
    }
}

fn with_target(
    t: &Target,
    e: &config::Effective,
    f: impl FnOnce(&cli_update::Common<'_>, &fuses::FuseValues) -> Result<(), exit::Failure>,
) -> Result<(), exit::Failure> {
    let device = e.required_device()?;
    let mem = e.path("mem").unwrap_or_else(|| cell_source::DEV_MEM.into());
    let fuses = load_fuses(e)?;
    f(
        &cli_update::Common {
            device: &device,
            board: e.board(),
            fuses: fuses.fuses,
            running: t.running,
            mem: &mem,
            dry_run: t.dry_run,
            json: t.json,
            roots: t.roots.sys_roots(),
            lock_dir: &t.roots.lock_dir,
            step_delay: t.test_step_delay_ms.map(std::time::Duration::from_millis),
            emmc: t.emmc.options(),
        },
        &fuses,
    )
}

/// Runs the command with the configuration file's defaults applied.
fn run(cli: Cli) -> Result<(), exit::Failure> {
    let file = config::load(cli.config.as_deref())?;
    let given = match &cli.command {
        Command::Inspect { board, .. } => given(None, board.as_ref(), None, None),
        Command::Verify { board, fuses, .. } => given(None, board.as_ref(), Some(fuses), None),
        Command::Status {
            device,
            board,
            mem,
            fuses,
            ..
        }
        | Command::Config {
            device,
            board,
            mem,
            fuses,
            ..
        } => given(device.as_ref(), board.as_ref(), Some(fuses), mem.as_ref()),
        Command::Commit(a) => given(
            a.device.as_ref(),
            a.board.as_ref(),
            Some(&a.fuses),
            a.mem.as_ref(),
        ),
        Command::Update { target, .. } | Command::Sync { target } => given(
            target.device.as_ref(),
            target.board.as_ref(),
            Some(&target.fuses),
            target.mem.as_ref(),
        ),
    };
    let e = config::resolve(file, &given);
    match &cli.command {
        Command::Inspect { image, json, .. } => inspect::run(image, e.board(), *json),
        Command::Update { image, target } => with_target(target, &e, |c, f| {
            if !f.rollback_known {
                let _ = writeln!(
                    std::io::stderr(),
                    "ubootctl: note: the rollback fuses were not read ({}): the image's epoch is \
                     not checked against the minimum here; the shim checks it at boot",
                    f.source
                );
            }
            cli_update::update(image, c)
        }),
        Command::Sync { target } => with_target(target, &e, |c, _| cli_update::sync(c)),
        Command::Commit(args) => run_commit(args, &e),
        Command::Status { json, emmc, .. } => {
            let device = e.path("device").expect("device has a default");
            let mem = e.path("mem").expect("mem has a default");
            let f = load_fuses(&e)?;
            if cli_status::run(&device, e.board(), &f, &mem, &emmc.options(), *json)? {
                Ok(())
            } else {
                Err(exit::Failure::Refused(format!(
                    "{}: degraded",
                    device.display()
                )))
            }
        }
        Command::Verify { image, json, .. } => {
            let f = load_fuses(&e)?;
            run_verify(image, &f, e.board(), *json)
        }
        Command::Config { json, .. } => {
            config::print(&e, *json);
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let result = run(Cli::parse());
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
