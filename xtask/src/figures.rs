//! Firmware figures measured in QEMU (issue 4 §9), printed by `cargo xtask bench`:
//! entry-to-handoff time of a boot with a U-Boot-sized FIT, split as the shim reports it (media
//! read, SHA-256 over signed content, signature checks, the rest), and SHA-256 throughput of the
//! firmware's hash backends (ARMv8 SHA instructions vs the `sha2` crate's software backends).
//!
//! Timings come from the generic timer inside the guest (it tracks host time under TCG,
//! docs/qemu-imx8mp.md §6): they describe QEMU on this host, not a Cortex-A53.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::disk::{DiskSpec, build_disk};
use crate::firmware::{FIRMWARE_PROFILE, FIRMWARE_TARGET, TEST_FIRMWARE_PACKAGE, cargo};
use crate::qemu::{Stop, machine_args, qemu_binary, run};
use crate::sim::SimKit;
use crate::{Context, Error, Result, workspace_root};

/// The shim's timing line (`spl-shim/src/bin/spl-shim.rs`, `report_time`), parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootTime {
    /// Entry to handoff, µs.
    pub total_us: u64,
    /// Media reads, µs.
    pub read_us: u64,
    /// Bytes read.
    pub read_bytes: u64,
    /// SHA-256 over signed content, µs.
    pub hash_us: u64,
    /// Bytes hashed.
    pub hash_bytes: u64,
    /// Signature checks and the rest of authentication, µs.
    pub signature_us: u64,
    /// Everything else (card init, console, copies), µs.
    pub other_us: u64,
    /// Of `other_us`: copying the images to their load addresses, µs.
    pub copy_us: u64,
}

impl BootTime {
    /// Parses `shim: time entry-to-handoff T us: media read R us (B bytes), hashing H us (HB
    /// bytes), signatures S us, other O us (image copies C us)`.
    pub fn parse(line: &str) -> Option<Self> {
        let rest = line.split("shim: time entry-to-handoff ").nth(1)?;
        let nums: Vec<u64> = rest
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.parse().ok())
            .collect();
        let [
            total_us,
            read_us,
            read_bytes,
            hash_us,
            hash_bytes,
            signature_us,
            other_us,
            copy_us,
        ] = nums[..]
        else {
            return None;
        };
        Some(BootTime {
            total_us,
            read_us,
            read_bytes,
            hash_us,
            hash_bytes,
            signature_us,
            other_us,
            copy_us,
        })
    }

    /// Share of entry-to-handoff not spent reading the medium.
    pub fn beyond_read_share(&self) -> f64 {
        self.total_us.saturating_sub(self.read_us) as f64 / self.total_us.max(1) as f64
    }
}

/// Bytes of filler added to the test payload so the FIT is the size of a real U-Boot FIT
/// (u-boot-nodtb.bin + bl31 + DT: about 1 MiB for imx8mm_evk).
pub const UBOOT_SIZED_PADDING: usize = 1 << 20;

/// Boots a disk whose primary holds a U-Boot-sized FIT `runs` times; returns each run's figures.
pub fn boot_times(kit: &SimKit, dir: &Path, runs: usize) -> Result<Vec<BootTime>> {
    let mut payload = kit.payload.clone();
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    payload.extend((0..UBOOT_SIZED_PADDING).map(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    }));
    let image = kit.flash_bin_with_payload(&payload, 1)?;
    let fuses = dir.join("fuses.bin");
    let disk = dir.join("sd.img");
    kit.write_fuses(&fuses)?;
    build_disk(&disk, &DiskSpec::new(image.clone(), image))?;
    let mut out = Vec::new();
    for _ in 0..runs {
        let o = run(&kit.sim_config(&fuses, &disk), &Stop::Boot)?;
        let t =
            o.uart.lines().find_map(BootTime::parse).ok_or_else(|| {
                Error::msg(format!("no timing line in the UART output:\n{}", o.uart))
            })?;
        out.push(t);
    }
    Ok(out)
}

/// UART bytes of the shim's log in one QEMU boot of each kind (issue 16): a normal boot
/// (primary authentic) and a fallback boot (primary FIT damaged, the secondary booted through
/// the SIT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsoleBytes {
    /// Normal boot: bytes of the shim's log up to its handoff.
    pub normal: u64,
    /// Fallback boot.
    pub fallback: u64,
    /// Lines the shim logged in the normal boot.
    pub normal_lines: usize,
    /// defmt frames those lines came in (0 for the text build).
    pub normal_frames: u64,
}

/// Boots `kit` (its shim, defmt or text build) normally and through the fallback once each
/// and counts the shim's UART bytes ([`crate::qemu::UartStats::shim_bytes`]).
pub fn console_bytes(kit: &SimKit, dir: &Path) -> Result<ConsoleBytes> {
    let fuses = dir.join("fuses.bin");
    kit.write_fuses(&fuses)?;
    let spec = DiskSpec::new(kit.flash_bin(1)?, kit.flash_bin(2)?);
    let mut bytes = [0u64; 2];
    let (mut normal_lines, mut normal_frames) = (0, 0);
    for (i, damaged) in [false, true].into_iter().enumerate() {
        let disk = dir.join(format!("sd{i}.img"));
        build_disk(&disk, &spec)?;
        if damaged {
            crate::disk::flip_byte(&disk, crate::disk::primary_fit_data_offset(&disk)?)?;
        }
        let o = run(&kit.sim_config(&fuses, &disk), &Stop::Boot)?;
        let slot = if damaged { 2 } else { 1 };
        if o.slot_word() != Some(slot) {
            return Err(Error::msg(format!(
                "expected a boot from slot {slot}, cell slot word {:?}:\n{}",
                o.slot_word(),
                o.uart
            )));
        }
        bytes[i] = o.uart_stats.shim_bytes;
        if !damaged {
            normal_lines = o.uart.lines().filter(|l| l.contains("shim: ")).count();
            normal_frames = o.uart_stats.frames;
        }
    }
    Ok(ConsoleBytes {
        normal: bytes[0],
        fallback: bytes[1],
        normal_lines,
        normal_frames,
    })
}

/// A `sha2` backend of the firmware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShaBackend {
    /// ARMv8 SHA-256 instructions (`-C target-feature=+sha2`, the shim's build).
    Instructions,
    /// `sha2`'s default software backend (unrolled).
    Software,
    /// `sha2`'s size-optimised software backend (`--cfg sha2_backend_soft="compact"`).
    SoftwareCompact,
}

impl ShaBackend {
    /// Every backend, in report order.
    pub const ALL: [ShaBackend; 3] = [
        ShaBackend::Instructions,
        ShaBackend::Software,
        ShaBackend::SoftwareCompact,
    ];

    /// Report label.
    pub const fn label(self) -> &'static str {
        match self {
            ShaBackend::Instructions => "ARMv8 SHA instructions",
            ShaBackend::Software => "software (sha2 default)",
            ShaBackend::SoftwareCompact => "software (sha2 compact)",
        }
    }

    fn rustflags(self) -> Option<&'static str> {
        match self {
            ShaBackend::Instructions => None,
            ShaBackend::Software => Some("-C target-feature=-sha2"),
            ShaBackend::SoftwareCompact => {
                Some("-C target-feature=-sha2 --cfg sha2_backend_soft=\"compact\"")
            }
        }
    }

    fn target_dir(self) -> PathBuf {
        let root = workspace_root().join("target");
        match self {
            ShaBackend::Instructions => root,
            ShaBackend::Software => root.join("sha-soft"),
            ShaBackend::SoftwareCompact => root.join("sha-compact"),
        }
    }
}

/// How the guest's generic timer advances while `sha-bench` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestTime {
    /// QEMU's default: the counter follows host time, so a figure is what TCG costs on this
    /// host (each SHA instruction is a helper call there, dearer than a dozen integer
    /// instructions).
    Host,
    /// `-icount shift=0,sleep=off`: the counter advances 1 ns per guest instruction
    /// executed, so a figure counts instructions (a model of a 1 GHz in-order core that
    /// retires one instruction per cycle, closer to a Cortex-A53 than TCG's host time).
    Instructions,
}

impl GuestTime {
    /// Report label.
    pub const fn label(self) -> &'static str {
        match self {
            GuestTime::Host => "host time (TCG)",
            GuestTime::Instructions => "instruction count (-icount shift=0: 1 ns each)",
        }
    }
}

/// Builds the `sha-bench` firmware with `backend`; returns the ELF's path.
pub fn build_sha_bench(backend: ShaBackend) -> Result<PathBuf> {
    let target_dir = backend.target_dir();
    let mut build = cargo();
    build
        .args([
            "build",
            "--profile",
            FIRMWARE_PROFILE,
            "-p",
            TEST_FIRMWARE_PACKAGE,
        ])
        .args(["--target", FIRMWARE_TARGET, "--bin", "sha-bench"])
        .arg("--target-dir")
        .arg(&target_dir);
    if let Some(flags) = backend.rustflags() {
        build.env("CARGO_TARGET_AARCH64_UNKNOWN_NONE_RUSTFLAGS", flags);
    }
    let status = build.status().context("cargo build sha-bench")?;
    if !status.success() {
        return Err(Error::msg(format!(
            "building sha-bench ({}) failed",
            backend.label()
        )));
    }
    Ok(target_dir
        .join(FIRMWARE_TARGET)
        .join(FIRMWARE_PROFILE)
        .join("sha-bench"))
}

/// Runs a `sha-bench` ELF in QEMU and returns the µs for 2 MiB (best of its runs) and the
/// digest it printed.
pub fn sha_throughput(elf: &Path, time: GuestTime) -> Result<(u64, String)> {
    crate::qemu::check_qemu(&qemu_binary())?;
    let mut qemu = Command::new(qemu_binary());
    qemu.args(machine_args("1G"));
    if time == GuestTime::Instructions {
        qemu.args(["-icount", "shift=0,sleep=off"]);
    }
    let out = qemu
        .arg("-device")
        .arg(format!("loader,file={},cpu-num=0", elf.display()))
        .output()
        .context("running QEMU")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("sha-bench:"))
        .ok_or_else(|| Error::msg(format!("sha-bench printed no result:\n{text}")))?;
    let us = line
        .split(" bytes in ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| Error::msg(format!("unparsable sha-bench line: {line}")))?;
    let digest = line.rsplit(' ').next().unwrap_or_default().to_string();
    Ok((us, digest))
}

/// Median of a non-empty list.
pub fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shims_timing_line_parses() {
        let t = BootTime::parse(
            "shim: time entry-to-handoff 1200000 us: media read 1100000 us (1100000 bytes), \
             hashing 40000 us (1050000 bytes), signatures 36000 us, other 24000 us (image copies \
             2000 us)",
        )
        .unwrap();
        assert_eq!(t.total_us, 1_200_000);
        assert_eq!((t.read_us, t.read_bytes), (1_100_000, 1_100_000));
        assert_eq!((t.hash_us, t.hash_bytes), (40_000, 1_050_000));
        assert_eq!((t.signature_us, t.other_us), (36_000, 24_000));
        assert_eq!(t.copy_us, 2_000);
        assert!((t.beyond_read_share() - 100_000.0 / 1_200_000.0).abs() < 1e-9);
        assert_eq!(BootTime::parse("shim: time entry-to-handoff 5 us"), None);
        assert_eq!(BootTime::parse("payload: version 1"), None);
    }

    #[test]
    fn median_of_odd_and_even_lists() {
        assert_eq!(median(vec![3, 1, 2]), 2);
        assert_eq!(median(vec![4, 1, 3, 2]), 3);
    }
}
