//! The shim → Linux stand-in chain in QEMU (issue 6 item 2): the shim authenticates a FIT whose
//! payload is `test-firmware`'s `linux-stand-in`, hands off at EL3, and the stand-in either behaves
//! like the test payload (no kernel preloaded) or starts the arm64 kernel the harness preloaded
//! with `-device loader` at EL2, with PSCI through SMC.
//!
//! The kernel-less test runs with the workspace tests. The Linux test is ignored: it needs a
//! prepared kernel (`cargo xtask e2e`, in the README's test command, runs the same chain with
//! Debian's kernel). Run it with
//! `cargo test -p workspace-tests --test qemu_linux_stand_in -- --ignored --nocapture` and
//! `STANDIN_KERNEL` = an arm64 `Image` (Debian's `vmlinuz-6.12.*-arm64` is one),
//! `STANDIN_DTB` = the EVK DTB prepared as the stand-in's contract says
//! (`test-firmware/src/bin/linux-stand-in.rs`: `cpu-idle-states` removed, `/memory` = 1 GiB at
//! 0x40000000, `/chosen/bootargs` with `console=ttymxc1,115200 earlycon`, and
//! `linux,initrd-start/end` if `STANDIN_INITRD` is given; that initramfs is loaded at
//! 0x43800000 and its `/init` must end in a shell on the console). Without an initramfs the
//! kernel ends in "VFS: Unable to mount root fs", which still proves it ran at EL2 with console,
//! timer, GIC and PSCI probing; with one, the test also types `reboot -f` (PSCI SYSTEM_RESET →
//! the whole chain boots again) and `poweroff -f` (PSCI SYSTEM_OFF → QEMU exits with 0).

use std::path::{Path, PathBuf};
use std::time::Duration;

use xtask::disk::{DiskSpec, build_disk};
use xtask::qemu::{MarkerWait, Qemu, Stop, run};
use xtask::sim::{SimKit, read_payload};

/// Harness addresses of the stand-in's contract (`linux-stand-in.rs`).
const KERNEL_ADDR: u64 = 0x4048_0000;
const DTB_ADDR: u64 = 0x4300_0000;
const INITRD_ADDR: u64 = 0x4380_0000;

struct Setup {
    _dir: tempfile::TempDir,
    kit: SimKit,
    fuses: PathBuf,
    disk: PathBuf,
}

/// Shim + stand-in (version 1 primary, version 2 secondary) on a fresh SD image.
fn setup() -> Setup {
    xtask::qemu::check_qemu(&xtask::qemu::qemu_binary()).unwrap_or_else(|e| panic!("{e}"));
    let kit = SimKit::build(b"linux stand-in test").unwrap_or_else(|e| panic!("{e}"));
    let elf =
        xtask::firmware::build_test_firmware("linux-stand-in").unwrap_or_else(|e| panic!("{e}"));
    let stand_in = read_payload(&elf).unwrap();
    let v1 = kit.flash_bin_with_payload(&stand_in, 1).unwrap();
    let v2 = kit.flash_bin_with_payload(&stand_in, 2).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fuses = dir.path().join("fuses.bin");
    let disk = dir.path().join("sd.img");
    kit.write_fuses(&fuses).unwrap();
    build_disk(&disk, &DiskSpec::new(v1, v2)).unwrap();
    Setup {
        _dir: dir,
        kit,
        fuses,
        disk,
    }
}

fn loader(file: &Path, addr: u64) -> [String; 2] {
    [
        "-device".into(),
        format!(
            "loader,file={},addr={addr:#x},force-raw=on",
            file.display().to_string().replace(',', ",,")
        ),
    ]
}

#[test]
fn without_a_kernel_the_stand_in_acts_like_the_test_payload() {
    let s = setup();
    let out = run(&s.kit.sim_config(&s.fuses, &s.disk), &Stop::Boot).unwrap();
    println!("{}", out.uart);
    assert!(!out.timed_out, "{}", out.uart);
    assert!(out.uart_has("shim: slot 1 handoff to 0x40200000 (payload)"));
    assert!(
        out.uart_has("stand-in: version 1 slot 1 EL3"),
        "{}",
        out.uart
    );
    assert!(out.uart_has("stand-in: no kernel at 0x40480000"));
    assert_eq!(out.slot_word(), Some(1));
    assert_eq!(out.exit_code(), Some(1), "{}", out.uart);
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).map(PathBuf::from)
}

#[test]
#[ignore = "needs an arm64 kernel and a prepared DTB: STANDIN_KERNEL, STANDIN_DTB [, STANDIN_INITRD]"]
fn the_stand_in_starts_linux_at_el2_with_psci() {
    let (Some(kernel), Some(dtb)) = (env_path("STANDIN_KERNEL"), env_path("STANDIN_DTB")) else {
        panic!("set STANDIN_KERNEL and STANDIN_DTB (module docs)");
    };
    let initrd = env_path("STANDIN_INITRD");
    let s = setup();
    let mut config = s.kit.sim_config(&s.fuses, &s.disk);
    config.extra_args.extend(loader(&kernel, KERNEL_ADDR));
    config.extra_args.extend(loader(&dtb, DTB_ADDR));
    if let Some(initrd) = &initrd {
        config.extra_args.extend(loader(initrd, INITRD_ADDR));
    }
    config.timeout = Duration::from_secs(120);
    let mut q = Qemu::start(&config).unwrap();
    // The end of the boot: a shell prompt with an initramfs, the root-fs panic without.
    let end = [
        "VFS: Unable to mount root fs",
        "Run /init as init process",
        "Kernel panic",
        "Bad mode",
        "Unable to handle kernel",
        "stand-in: no kernel",
        "shim: nothing bootable",
    ];
    let (which, wait) = q.wait_for_any(&end);
    let uart = q.uart();
    println!("{uart}");
    assert!(matches!(wait, MarkerWait::Seen(_)), "{wait:?}\n{uart}");
    assert!(matches!(which, Some(0 | 1)), "{uart}");
    let has = |t: &str| uart.lines().any(|l| l.contains(t));
    for line in [
        "stand-in: version 1 slot 1 EL3",
        "stand-in: PSCI 1.1 via SMC; starting Linux at EL2",
        "Booting Linux on physical CPU 0x0000000000",
        "psci: PSCIv1.1 detected in firmware.",
        "CPU: All CPU(s) started at EL2",
        "arch_timer: cp15 timer(s) running at 8.00MHz",
        "GICv3: 160 SPIs implemented",
    ] {
        assert!(has(line), "no `{line}` on the UART");
    }
    for bad in ["Bad mode", "Unable to handle kernel", "SError"] {
        assert!(!has(bad), "`{bad}` on the UART");
    }
    if initrd.is_none() {
        let _ = q.finish(None, true);
        return;
    }

    // PSCI SYSTEM_RESET from Linux: the watchdog resets the SoC, QEMU reloads the shim and the
    // preloaded blobs, and the chain runs again.
    shell_command(&mut q, "reboot -f");
    expect(&mut q, "stand-in: PSCI SYSTEM_RESET: watchdog reset");
    expect(&mut q, "shim: slot 1 handoff to 0x40200000");
    expect(&mut q, "stand-in: version 1 slot 1 EL3");
    expect(&mut q, "Run /init as init process");
    // PSCI SYSTEM_OFF: SNVS power-off ends QEMU with status 0.
    shell_command(&mut q, "poweroff -f");
    expect(&mut q, "stand-in: PSCI SYSTEM_OFF: SNVS power-off");
    let status = q.wait_exit();
    println!("{}", q.uart());
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{status:?}");
}

fn expect(q: &mut Qemu, marker: &str) {
    let wait = q.wait_for_marker(marker);
    assert!(
        matches!(wait, MarkerWait::Seen(_)),
        "no `{marker}`: {wait:?}\n{}",
        q.uart()
    );
}

/// Waits for the initramfs shell on the console (STANDIN_INITRD's `/init` must end in an
/// interactive shell on the console), then types `command`. The probe's output differs from
/// its echo, so only the shell's answer matches.
fn shell_command(q: &mut Qemu, command: &str) {
    let mut ready = false;
    for _ in 0..30 {
        q.send_uart(b"echo STANDIN-SHELL-$((40+2))\n").unwrap();
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_secs(1) {
            if q.uart().lines().any(|l| l.trim() == "STANDIN-SHELL-42") {
                ready = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if ready {
            break;
        }
    }
    assert!(ready, "no shell on the console\n{}", q.uart());
    q.send_uart(format!("{command}\n").as_bytes()).unwrap();
}
