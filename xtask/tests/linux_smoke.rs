//! The Linux smoke run of issue 6 (`xtask::linux::smoke`): downloads Debian's arm64 kernel and
//! busybox into `target/e2e-cache` (apt-get, root the first time), builds a static ubootctl and
//! boots Linux in QEMU. Slow and needs the network once: `cargo test -p xtask --test
//! linux_smoke -- --ignored` (or `cargo xtask e2e --smoke`).

use xtask::linux::{CMDLINE, ChainDt, SmokeOptions, cache_dir, chain_dtb, smoke};

#[test]
#[ignore = "downloads Debian packages, builds ubootctl for musl and boots Linux in QEMU"]
fn ubootctl_status_in_linux_reports_slot_one() {
    let work = tempfile::tempdir().unwrap();
    let opts = SmokeOptions {
        cache: cache_dir(),
        work: work.path().to_path_buf(),
        echo: None,
    };
    let r = smoke(&opts, &mut |s| eprintln!("e2e: {s}")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status["running"], 1);
    assert_eq!(r.status["primary"]["authentic"], true);
    assert_eq!(r.status["secondary"]["authentic"], true);
    assert_eq!(r.outcome.mmc_device().as_deref(), Some("/dev/mmcblk1"));
    assert!(r.outcome.exit_status.is_some_and(|s| s.success()));

    // The chain's device tree (for a bootloader-started kernel) compiles from the real DTB.
    let original = std::fs::read(&r.artifacts.original_dtb).unwrap();
    let chain = ChainDt {
        bootargs: CMDLINE.into(),
        initrd: Some((0x4380_0000, 0x20_0000)),
        memory: 1 << 30,
    };
    let dtb = chain_dtb(&original, &chain).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(&dtb[..4], &0xd00d_feed_u32.to_be_bytes());
}
