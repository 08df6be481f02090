//! Firmware builds (`cargo build --profile firmware --target aarch64-unknown-none`), ELF → flat
//! binary, and a hand-assembled placeholder payload.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{Context, Error, Result, bail, workspace_root};

/// The firmware target triple.
pub const FIRMWARE_TARGET: &str = "aarch64-unknown-none";
/// The cargo profile of firmware builds (opt-level z with the P-256 and SHA-256 crates at 3, LTO,
/// panic abort; see the workspace `Cargo.toml`).
pub const FIRMWARE_PROFILE: &str = "firmware";
/// The package holding the product firmware (the shim, binary `spl-shim`).
pub const FIRMWARE_PACKAGE: &str = "spl-shim";
/// The package holding the test firmware: `test-payload`, `linux-stand-in`, `hw-selftest`,
/// `sha-bench`.
pub const TEST_FIRMWARE_PACKAGE: &str = "test-firmware";
/// Boards `build_spl` knows, with the cargo features that select them.
pub const BOARDS: &[(&str, &[&str])] = &[("qemu-imx8mp", &[]), ("imx8mm-evk", &["imx8mm-evk"])];

/// A `cargo` command run from the workspace root (honours `$CARGO`).
pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(workspace_root());
    c
}

/// Builds the shim for `board` (`qemu-imx8mp` or `imx8mm-evk`) and returns the path of a copy
/// of the ELF kept per board (`target/aarch64-unknown-none/firmware/<board>/spl-shim`).
///
/// Cargo links both boards to the same path (a feature selects the board), so the path it
/// reports holds whichever board was built last; the per-board copy keeps a printed path valid
/// after building the other board. (Two processes building different boards at the same
/// moment could still race between link and copy; xtask and the tests build one at a time.)
pub fn build_spl(board: &str) -> Result<PathBuf> {
    build_spl_with(board, Log::Defmt)
}

/// How the shim logs (`spl-shim`'s `text-log` feature, `boot_core::log`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Log {
    /// defmt frames, decoded with the ELF (the product build).
    Defmt,
    /// `shim: ` text lines (feature `text-log`).
    Text,
}

/// [`build_spl`] with the log format `log`; the text build's copy is kept in
/// `<board>-text/spl-shim`.
pub fn build_spl_with(board: &str, log: Log) -> Result<PathBuf> {
    let Some((_, board_features)) = BOARDS.iter().find(|(name, _)| *name == board) else {
        let known: Vec<&str> = BOARDS.iter().map(|(n, _)| *n).collect();
        bail!("unknown board `{board}` (known: {})", known.join(", "));
    };
    let mut features = board_features.to_vec();
    let sub = match log {
        Log::Defmt => board.to_string(),
        Log::Text => {
            features.push("text-log");
            format!("{board}-text")
        }
    };
    let built = build_firmware_bin(FIRMWARE_PACKAGE, "spl-shim", &features)?;
    let dir = built
        .parent()
        .map_or_else(|| PathBuf::from(&sub), |d| d.join(&sub));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let elf = dir.join("spl-shim");
    std::fs::copy(&built, &elf)
        .with_context(|| format!("cannot copy {} to {}", built.display(), elf.display()))?;
    Ok(elf)
}

/// Whether firmware package `package` (a directory of the workspace root, [`FIRMWARE_PACKAGE`]
/// or [`TEST_FIRMWARE_PACKAGE`]) has a binary `bin` (`<package>/src/bin/<bin>.rs` or a
/// `[[bin]]` of that name in its manifest).
pub fn firmware_bin_exists(package: &str, bin: &str) -> bool {
    let pkg = workspace_root().join(package);
    if pkg.join("src/bin").join(format!("{bin}.rs")).is_file()
        || pkg.join("src/bin").join(bin).join("main.rs").is_file()
    {
        return true;
    }
    std::fs::read_to_string(pkg.join("Cargo.toml"))
        .is_ok_and(|m| m.contains(&format!("name = \"{bin}\"")) && m.contains("[[bin]]"))
}

/// Runs `cargo build --profile firmware -p PACKAGE --target aarch64-unknown-none --bin BIN
/// [--features F,...]` and returns the path of the linked ELF (taken from cargo's JSON
/// messages, so a custom `CARGO_TARGET_DIR` is honoured). Cargo's diagnostics go to stderr.
pub fn build_firmware_bin(package: &str, bin: &str, features: &[&str]) -> Result<PathBuf> {
    let mut cmd = cargo();
    cmd.args([
        "build",
        "--profile",
        FIRMWARE_PROFILE,
        "-p",
        package,
        "--target",
        FIRMWARE_TARGET,
        "--bin",
        bin,
    ]);
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    let executable = cargo_build_executable(cmd, bin, &format!("firmware build of `{bin}`"))?;
    let exe = executable.unwrap_or_else(|| default_elf_path(bin));
    if !exe.is_file() {
        bail!("cargo built `{bin}` but {} does not exist", exe.display());
    }
    Ok(exe)
}

/// Builds test firmware binary `bin` ([`TEST_FIRMWARE_PACKAGE`], for QEMU's imx8mp-evk) like
/// [`build_firmware_bin`] and returns the ELF's path.
pub fn build_test_firmware(bin: &str) -> Result<PathBuf> {
    build_firmware_bin(TEST_FIRMWARE_PACKAGE, bin, &[])
}

/// Runs `cmd`, a `cargo build` that builds binary `name`, with cargo's JSON messages on stdout
/// (diagnostics still rendered on stderr), and returns the executable cargo reports for it, so
/// a custom target directory is honoured. A failed build is an error naming `what`.
pub fn cargo_build_executable(mut cmd: Command, name: &str, what: &str) -> Result<Option<PathBuf>> {
    cmd.arg("--message-format=json-render-diagnostics")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().with_context(|| format!("cannot run {cmd:?}"))?;
    let mut executable = None;
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out)
            .lines()
            .map_while(std::result::Result::ok)
        {
            let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if msg["reason"] == "compiler-artifact"
                && msg["target"]["name"] == name
                && let Some(exe) = msg["executable"].as_str()
            {
                executable = Some(PathBuf::from(exe));
            }
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("{what} failed ({status}): {cmd:?}");
    }
    Ok(executable)
}

/// Where cargo puts firmware binary `bin` with the default target directory.
pub fn default_elf_path(bin: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target
        .join(FIRMWARE_TARGET)
        .join(FIRMWARE_PROFILE)
        .join(bin)
}

/// A flat memory image: `bytes` belong at `load_addr`; execution starts at `entry`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlatImage {
    /// Physical address of `bytes[0]`.
    pub load_addr: u64,
    /// Entry point.
    pub entry: u64,
    /// The bytes (gaps between segments zero-filled, nothing past the last file-backed byte).
    pub bytes: Vec<u8>,
}

impl FlatImage {
    /// Address one past the last byte.
    pub fn end(&self) -> u64 {
        self.load_addr + self.bytes.len() as u64
    }
}

/// Reads an ELF file into a [`FlatImage`] ([`elf_bytes_to_flat`]).
pub fn elf_to_flat(elf: &Path) -> Result<FlatImage> {
    let data = std::fs::read(elf).with_context(|| format!("reading {}", elf.display()))?;
    elf_bytes_to_flat(&data).with_context(|| elf.display())
}

/// Turns an ELF image into a flat binary from its `PT_LOAD` segments at their physical
/// addresses: gaps between segments are zero-filled, and each segment contributes only its
/// file-backed bytes (`.bss`/`NOBITS` beyond `p_filesz` is left out; the firmware clears it).
pub fn elf_bytes_to_flat(data: &[u8]) -> Result<FlatImage> {
    use object::elf::{FileHeader64, PT_LOAD};
    use object::read::elf::{FileHeader, ProgramHeader};
    let not_elf = |e: object::Error| Error::msg(format!("not a 64-bit little-endian ELF: {e}"));
    let hdr = FileHeader64::<object::LittleEndian>::parse(data).map_err(not_elf)?;
    let endian = hdr.endian().map_err(not_elf)?;
    let mut segs: Vec<(u64, &[u8])> = Vec::new();
    for ph in hdr.program_headers(endian, data).map_err(not_elf)? {
        if ph.p_type(endian) != PT_LOAD {
            continue;
        }
        // File-backed bytes only: p_memsz beyond p_filesz is .bss, cleared by the firmware.
        let bytes = ph
            .data(endian, data)
            .map_err(|()| Error::msg("a PT_LOAD segment lies outside the file"))?;
        if !bytes.is_empty() {
            segs.push((ph.p_paddr(endian), bytes));
        }
    }
    if segs.is_empty() {
        bail!("the ELF has no loadable bytes");
    }
    segs.sort_by_key(|s| s.0);
    let start = segs[0].0;
    let end = segs
        .iter()
        .map(|(a, b)| a + b.len() as u64)
        .max()
        .unwrap_or(start);
    if end - start > 64 << 20 {
        bail!(
            "loadable segments span {:#x} bytes: not a firmware image",
            end - start
        );
    }
    let mut bytes = vec![0u8; (end - start) as usize];
    for (addr, data) in &segs {
        let off = (addr - start) as usize;
        if bytes[off..off + data.len()].iter().any(|&b| b != 0) {
            bail!("loadable segments overlap at {addr:#x}");
        }
        bytes[off..off + data.len()].copy_from_slice(data);
    }
    Ok(FlatImage {
        load_addr: start,
        entry: hdr.e_entry(endian),
        bytes,
    })
}

/// Writes a minimal ELF64 (AArch64, little endian, `ET_EXEC`) with one `PT_LOAD` segment
/// holding `image` at its load address: what `-device loader,file=X.elf` needs. For tests and
/// for running flat payloads as "the shim".
pub fn flat_to_elf(image: &FlatImage) -> Vec<u8> {
    const EHDR: usize = 64;
    const PHDR: usize = 56;
    let data_off = 0x1000usize;
    let mut out = vec![0u8; data_off];
    out[..4].copy_from_slice(b"\x7fELF");
    out[4] = 2; // ELFCLASS64
    out[5] = 1; // little endian
    out[6] = 1; // EV_CURRENT
    let put16 =
        |o: &mut Vec<u8>, at: usize, v: u16| o[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let put32 =
        |o: &mut Vec<u8>, at: usize, v: u32| o[at..at + 4].copy_from_slice(&v.to_le_bytes());
    let put64 =
        |o: &mut Vec<u8>, at: usize, v: u64| o[at..at + 8].copy_from_slice(&v.to_le_bytes());
    put16(&mut out, 16, 2); // ET_EXEC
    put16(&mut out, 18, 183); // EM_AARCH64
    put32(&mut out, 20, 1);
    put64(&mut out, 24, image.entry);
    put64(&mut out, 32, EHDR as u64); // e_phoff
    put64(&mut out, 40, 0); // e_shoff
    put16(&mut out, 52, EHDR as u16);
    put16(&mut out, 54, PHDR as u16);
    put16(&mut out, 56, 1); // e_phnum
    put16(&mut out, 58, 64); // e_shentsize
    let p = EHDR;
    put32(&mut out, p, 1); // PT_LOAD
    put32(&mut out, p + 4, 7); // RWX
    put64(&mut out, p + 8, data_off as u64);
    put64(&mut out, p + 16, image.load_addr);
    put64(&mut out, p + 24, image.load_addr);
    put64(&mut out, p + 32, image.bytes.len() as u64);
    put64(&mut out, p + 40, image.bytes.len() as u64);
    put64(&mut out, p + 48, 0x1000);
    out.extend_from_slice(&image.bytes);
    out
}

/// What the placeholder payload does after printing its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaceholderEnd {
    /// `wfe` forever: the harness reads memory over QMP, then quits QEMU.
    Wait,
    /// Semihosting `SYS_EXIT` (ADP_Stopped_ApplicationExit) with this exit code; needs
    /// `-semihosting-config enable=on` (part of the QEMU contract).
    Exit(u32),
}

/// A position-independent AArch64 blob (a few instructions, assembled by hand and checked
/// against `llvm-mc`) that enables UART2 (0x3089_0000, UCR1 = 1, UCR2 = 0x4027), prints
/// `message` (a trailing newline is added), then waits or exits through semihosting.
///
/// It stands in for the test payload until `test-firmware`'s `test-payload` binary exists.
pub fn placeholder_payload(message: &str, end: PlaceholderEnd) -> Vec<u8> {
    let mut code: Vec<u32> = vec![
        0x1000_0281, // 0x00 adr  x1, msg (0x50)
        0xD2A6_1122, // 0x04 movz x2, #0x3089, lsl #16
        0x5280_0025, // 0x08 movz w5, #1
        0xB900_8045, // 0x0C str  w5, [x2, #0x80]    UCR1 = UARTEN
        0x5288_04E5, // 0x10 movz w5, #0x4027
        0xB900_8445, // 0x14 str  w5, [x2, #0x84]    UCR2 = SRST|TXEN|RXEN|WS|IRTS
        0x3840_1423, // 0x18 loop: ldrb w3, [x1], #1
        0x3400_00A3, // 0x1C cbz  w3, done (0x30)
        0xB940_B444, // 0x20 wait: ldr w4, [x2, #0xB4]   UTS
        0x3727_FFE4, // 0x24 tbnz w4, #4, wait         TXFULL
        0xB900_4043, // 0x28 str  w3, [x2, #0x40]      UTXD
        0x17FF_FFFB, // 0x2C b    loop
    ];
    let code_at_done: [u32; 4] = match end {
        PlaceholderEnd::Wait => [
            0xD503_205F, // 0x30 done: wfe
            0x17FF_FFFF, // 0x34 b    done
            0xD503_201F, // nop
            0xD503_201F, // nop
        ],
        PlaceholderEnd::Exit(_) => [
            0xD280_0300, // 0x30 done: movz x0, #0x18 (SYS_EXIT)
            0x1000_0061, // 0x34 adr  x1, block (0x40)
            0xD45E_0000, // 0x38 hlt  #0xF000
            0x1400_0000, // 0x3C b    .
        ],
    };
    code.extend_from_slice(&code_at_done);
    let mut out: Vec<u8> = code.iter().flat_map(|w| w.to_le_bytes()).collect();
    let exit_code = match end {
        PlaceholderEnd::Wait => 0,
        PlaceholderEnd::Exit(c) => u64::from(c),
    };
    out.extend_from_slice(&0x20026u64.to_le_bytes()); // 0x40 ADP_Stopped_ApplicationExit
    out.extend_from_slice(&exit_code.to_le_bytes()); // 0x48
    debug_assert_eq!(out.len(), 0x50);
    out.extend(message.bytes().filter(|&b| b != 0));
    out.extend_from_slice(b"\n\0");
    out.resize(out.len().next_multiple_of(8), 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_elf_round_trips() {
        let img = FlatImage {
            load_addr: 0x0091_0000,
            entry: 0x0091_0000,
            bytes: (0..5000u32).map(|i| (i * 7) as u8).collect(),
        };
        let elf = flat_to_elf(&img);
        assert_eq!(elf_bytes_to_flat(&elf).unwrap(), img);
    }

    #[test]
    fn placeholder_layout() {
        let p = placeholder_payload("hello", PlaceholderEnd::Exit(3));
        assert_eq!(&p[0x50..0x57], b"hello\n\0");
        assert_eq!(u64::from_le_bytes(p[0x48..0x50].try_into().unwrap()), 3);
        assert!(p.len().is_multiple_of(8));
    }

    #[test]
    fn unknown_board_is_an_error() {
        assert!(
            build_spl("imx8mq-evk")
                .unwrap_err()
                .message()
                .contains("unknown board")
        );
    }
}
