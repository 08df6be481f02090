//! The shim's hardware drivers under QEMU: builds the `hw-selftest` firmware, runs it on the
//! `imx8mp-evk` machine with an SDSC (64 MiB) and an SDHC (4 GiB, sparse) card image holding a
//! known pattern, and checks what it prints on UART2 against hashes computed here, plus its
//! semihosting exit code.
//!
//! Runs our QEMU build (`xtask::qemu::qemu_binary`, built on first use; README "Our QEMU").

use boards::SECTOR_SIZE;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Hard limit for one QEMU run (the self-test itself takes about 2 s).
const QEMU_TIMEOUT: Duration = Duration::from_secs(60);
/// Bytes of pattern written at the start of each image (covers every read but the last).
const PATTERN_HEAD: u64 = 4 << 20;
/// Bytes of pattern written at the end of each image (the self-test reads the last 2 blocks).
const PATTERN_TAIL: u64 = 64 << 10;

/// The reads `hw-selftest` does, as (first block, block count); the last-two-blocks read is
/// added per image. Keep in step with `READS` in `test-firmware/src/bin/hw-selftest.rs`.
const SELFTEST_READS: &[(u64, u64)] = &[(0, 1), (5, 1), (1, 8), (3, 37), (100, 250), (0, 4096)];

/// Builds the self-test once per test process and returns the ELF path (from cargo's JSON
/// messages, so a custom CARGO_TARGET_DIR works too).
fn selftest_elf() -> &'static Path {
    static ELF: OnceLock<PathBuf> = OnceLock::new();
    ELF.get_or_init(|| {
        xtask::firmware::build_test_firmware("hw-selftest")
            .unwrap_or_else(|e| panic!("building hw-selftest: {e}"))
    })
}

fn require_qemu() {
    xtask::qemu::check_qemu(&xtask::qemu::qemu_binary()).unwrap_or_else(|e| panic!("{e}"));
}

/// The pattern byte at image offset `off` for image `seed`: differs per byte, per block and
/// per image, so a wrong address (byte vs block) or a shifted word shows up in the hashes.
fn pattern_byte(seed: u64, off: u64) -> u8 {
    let mut x = (off / 4).wrapping_add(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 29;
    (x >> (8 * (off % 4))) as u8
}

/// Expected content of `[start, start + len)`: the pattern in the head and tail areas, zero
/// elsewhere (a sparse hole reads as zeros).
fn expected(seed: u64, size: u64, start: u64, len: u64) -> Vec<u8> {
    (start..start + len)
        .map(|o| {
            if o < PATTERN_HEAD || o >= size - PATTERN_TAIL {
                pattern_byte(seed, o)
            } else {
                0
            }
        })
        .collect()
}

/// Creates a sparse image of `size` bytes with the pattern at its head and tail.
fn make_image(path: &Path, seed: u64, size: u64) {
    let mut f = File::create(path).expect("create image");
    f.set_len(size).expect("size image");
    f.write_all(&expected(seed, size, 0, PATTERN_HEAD))
        .expect("write head");
    f.seek(SeekFrom::Start(size - PATTERN_TAIL)).expect("seek");
    f.write_all(&expected(seed, size, size - PATTERN_TAIL, PATTERN_TAIL))
        .expect("write tail");
}

/// Runs QEMU exactly as the simulation contract says and returns (exit code, UART2 output).
/// `extra` arguments go before the drive; no `image`: no card in the slot.
fn run_qemu(elf: &Path, image: Option<&Path>, extra: &[&str]) -> (Option<i32>, String, Duration) {
    let mut child = Command::new(xtask::qemu::qemu_binary())
        .args(xtask::qemu::machine_args("1G"))
        .arg("-device")
        .arg(format!("loader,file={},cpu-num=0", elf.display()))
        .args(extra)
        .args(
            image
                .map(|i| {
                    [
                        "-drive".to_string(),
                        format!("if=sd,bus=1,file={},format=raw", i.display()),
                    ]
                })
                .into_iter()
                .flatten(),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start qemu");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stdout.read_to_end(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait for qemu") {
            break Some(st);
        }
        if start.elapsed() > QEMU_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = String::from_utf8_lossy(&reader.join().expect("reader thread")).into_owned();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    match status {
        None => panic!("QEMU ran longer than {QEMU_TIMEOUT:?}; output:\n{out}\nstderr:\n{err}"),
        Some(st) => {
            if !err.trim().is_empty() {
                eprintln!("qemu stderr:\n{err}");
            }
            (st.code(), out, start.elapsed())
        }
    }
}

/// One `read: lba=.. blocks=.. sha256=.. us=..` line.
struct ReadLine {
    lba: u64,
    blocks: u64,
    sha256: String,
    us: u64,
}

fn parse_reads(out: &str) -> Vec<ReadLine> {
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("read: "))
        .map(|rest| {
            let field = |k: &str| {
                rest.split_whitespace()
                    .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
                    .unwrap_or_else(|| panic!("no {k} in read line {rest:?}"))
                    .to_string()
            };
            ReadLine {
                lba: field("lba").parse().expect("lba"),
                blocks: field("blocks").parse().expect("blocks"),
                sha256: field("sha256"),
                us: field("us").parse().expect("us"),
            }
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Builds, runs and checks the self-test on an image of `size` bytes.
fn selftest_on(size: u64, seed: u64, kind: &str) {
    require_qemu();
    let elf = selftest_elf();
    let dir = tempfile::tempdir().expect("temp dir");
    let image = dir.path().join("disk.img");
    make_image(&image, seed, size);

    let (code, out, _) = run_qemu(elf, Some(&image), &[]);
    eprintln!("--- UART2 ({kind}) ---\n{out}");
    assert_eq!(code, Some(0), "hw-selftest exit code; output:\n{out}");
    assert!(out.contains("hw-selftest: PASS"), "no PASS line:\n{out}");

    let blocks = size / SECTOR_SIZE;
    let card_line = format!("card: {kind} blocks={blocks} ");
    assert!(
        out.contains(&card_line),
        "expected {card_line:?} in:\n{out}"
    );
    assert!(
        out.contains("out-of-range: ok"),
        "out-of-range check missing:\n{out}"
    );
    assert!(
        out.contains("card state after reads: TRAN"),
        "CMD13 check missing:\n{out}"
    );
    // The handoff's image copy at 16 x 16 offsets and 10 lengths (hw-selftest's copy_check).
    assert!(
        out.contains("copy: ok (2560 cases)"),
        "copy check missing:\n{out}"
    );

    let reads = parse_reads(&out);
    let mut wanted: Vec<(u64, u64)> = SELFTEST_READS.to_vec();
    wanted.push((blocks - 2, 2));
    let got: Vec<(u64, u64)> = reads.iter().map(|r| (r.lba, r.blocks)).collect();
    assert_eq!(got, wanted, "reads done by hw-selftest");
    for r in &reads {
        let data = expected(seed, size, r.lba * SECTOR_SIZE, r.blocks * SECTOR_SIZE);
        assert_eq!(
            r.sha256,
            hex(&Sha256::digest(&data)),
            "{kind}: SHA-256 of {} blocks at {}",
            r.blocks,
            r.lba
        );
    }
    let big = reads.iter().find(|r| r.blocks == 4096).expect("2 MiB read");
    eprintln!("{kind}: 2 MiB PIO read took {} ms", big.us / 1000);
}

#[test]
fn drivers_read_an_sdsc_card() {
    selftest_on(64 << 20, 1, "SDSC");
}

#[test]
fn drivers_read_an_sdhc_card() {
    selftest_on(4 << 30, 2, "SDHC");
}

/// Without a card, initialisation must fail cleanly (no hang) with `NoCard` and exit code 1.
#[test]
fn drivers_report_a_missing_card() {
    require_qemu();
    let (code, out, _) = run_qemu(selftest_elf(), None, &[]);
    assert_eq!(code, Some(1), "exit code; output:\n{out}");
    assert!(
        out.contains("hw-selftest: FAIL: card initialisation: no card in the slot"),
        "{out}"
    );
}

/// Fault mode of hw-selftest (see its docs): a read past the end of DRAM must be reported by
/// the EL3 vectors on the console, and the armed watchdog (1 s) must then reset the SoC, which
/// ends QEMU because of `-no-reboot` (qemu-imx8mp.md §7).
#[test]
fn exception_vectors_report_an_abort_and_the_watchdog_resets() {
    require_qemu();
    let elf = selftest_elf();
    let dir = tempfile::tempdir().expect("temp dir");
    let image = dir.path().join("disk.img");
    make_image(&image, 3, 64 << 20);
    // -m 1G: DRAM is 0x40000000..0x80000000, so the first address past it is 0x80000000.
    let dram_end: u64 = 0x4000_0000 + (1 << 30);
    let mode_addr = 0x4000_0000u64 + 0x0FF0_0000;
    let plant = format!("loader,addr={mode_addr:#x},data=0xfa170001,data-len=4");
    let (code, out, took) = run_qemu(elf, Some(&image), &["-no-reboot", "-device", &plant]);
    eprintln!("--- UART2 (fault) ---\n{out}");
    assert_eq!(
        code,
        Some(0),
        "QEMU should end through the watchdog reset:\n{out}"
    );
    assert!(
        out.contains(&format!("fault-test: reading {dram_end:#x}")),
        "{out}"
    );
    assert!(
        out.contains("*** EL3 exception: synchronous, current EL, SP_ELx ***"),
        "no exception report:\n{out}"
    );
    // Data abort at the current EL (EC 0x25), synchronous external abort (ISS DFSC 0x10).
    let esr = field_after(&out, "ESR_EL3");
    assert_eq!(esr >> 26, 0x25, "ESR_EL3 {esr:#x}");
    assert_eq!(esr & 0x3F, 0x10, "ESR_EL3 {esr:#x}");
    assert_eq!(field_after(&out, "FAR_EL3"), dram_end);
    let elr = field_after(&out, "ELR_EL3");
    assert!(
        (0x0091_0000..0x0097_0000).contains(&elr),
        "ELR_EL3 {elr:#x} outside the image"
    );
    assert!(out.contains("halted"), "{out}");
    assert!(!out.contains("hw-selftest: PASS"), "{out}");
    assert!(
        took < Duration::from_secs(30),
        "watchdog reset took {took:?}"
    );
}

/// The hex value after `name` on its report line.
fn field_after(out: &str, name: &str) -> u64 {
    // The report comes through `boot_core::shim_log!` (text build: `shim: ` lines).
    let line = out
        .lines()
        .map(|l| l.strip_prefix("shim: ").unwrap_or(l))
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name} line in:\n{out}"));
    let hexv = line[name.len()..]
        .split_whitespace()
        .next()
        .and_then(|v| v.strip_prefix("0x"))
        .unwrap_or_else(|| panic!("bad {name} line {line:?}"));
    u64::from_str_radix(hexv, 16).expect("hex value")
}
