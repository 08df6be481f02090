//! The probe-rs side of issue 16, offline: the i.MX 8M Mini chip description parses with
//! probe-rs's own types and validation, its memory map agrees with the boards crate, the shim
//! fits its on-chip RAM, and `cargo xtask run --probe` without a probe fails with exit 2.

use std::process::Command;

use probe_rs_target::{CoreAccessOptions, CoreType};
use xtask::probe::{
    CHIPS, check_memory_map, check_on_chip, chip_for, load_segments, parse_family, ram_regions,
};

fn description() -> (String, &'static str) {
    let (path, variant) = chip_for("imx8mm-evk").expect("imx8mm-evk has a chip description");
    let yaml = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (yaml, variant)
}

#[test]
fn the_description_parses_with_probe_rs_types() {
    let (yaml, variant) = description();
    let family = parse_family(&yaml).unwrap_or_else(|e| panic!("{e}"));
    let chip = family.variants.iter().find(|c| c.name == variant).unwrap();
    assert_eq!(chip.cores.len(), 4);
    for (n, core) in chip.cores.iter().enumerate() {
        assert_eq!(core.core_type, CoreType::Armv8a, "{}", core.name);
        let CoreAccessOptions::Arm(arm) = &core.core_access_options else {
            panic!("{}: not an Arm core", core.name)
        };
        // APB-AP 1; debug and CTI blocks 1 MiB apart per core.
        assert_eq!(arm.debug_base, Some(0x8041_0000 + n as u64 * 0x10_0000));
        assert_eq!(arm.cti_base, Some(0x8042_0000 + n as u64 * 0x10_0000));
    }
    // probe-rs's registry takes it as it would with --chip-description-path.
    let mut registry = probe_rs::config::Registry::new();
    let name = registry.add_target_family_from_yaml(&yaml).unwrap();
    assert_eq!(name, "MIMX8MM");
    let target = registry.get_target_by_name(variant).unwrap();
    assert_eq!(target.cores.len(), 4);
}

#[test]
fn a_broken_description_is_refused() {
    let (yaml, _) = description();
    // A core without a CTI cannot be halted on Armv8-A: probe-rs's validation says so.
    let no_cti = yaml.replacen("      cti_base: 0x80420000\n", "", 1);
    assert!(parse_family(&no_cti).is_err());
    assert!(parse_family(&yaml.replace("type: armv8a", "type: armv9z")).is_err());
}

#[test]
fn the_memory_map_agrees_with_the_boards_crate() {
    let (yaml, variant) = description();
    let family = parse_family(&yaml).unwrap();
    let board = boards::by_name("imx8mm-evk").unwrap();
    check_memory_map(&family, variant, board).unwrap_or_else(|e| panic!("{e}"));
    let regions = ram_regions(&family, variant).unwrap();
    assert!(
        regions
            .iter()
            .any(|(n, r)| n == "TCM" && *r == (0x7E_0000..0x82_0000))
    );
    // A description that disagrees is caught, either region.
    for (from, to) in [
        ("end: 0x940000", "end: 0x950000"),
        ("end: 0xc0000000", "end: 0x140000000"),
    ] {
        let moved = parse_family(&yaml.replace(from, to)).unwrap();
        let err = check_memory_map(&moved, variant, board)
            .unwrap_err()
            .to_string();
        assert!(err.contains("the boards crate says"), "{err}");
    }
    // Every board with a description is in the boards crate.
    for (board, _, _) in CHIPS {
        assert!(boards::by_name(board).is_some(), "{board}");
    }
}

#[test]
fn the_shim_for_the_board_loads_into_on_chip_ram() {
    let elf = xtask::firmware::build_spl("imx8mm-evk").unwrap_or_else(|e| panic!("{e}"));
    let (segments, entry) = load_segments(&elf).unwrap();
    assert!(!segments.is_empty());
    assert!(
        segments
            .iter()
            .any(|(a, b)| *a <= entry && entry < a + b.len() as u64)
    );
    let (yaml, variant) = description();
    let family = parse_family(&yaml).unwrap();
    check_on_chip(&family, variant, &segments).unwrap_or_else(|e| panic!("{e}"));
    // A segment in DRAM (not initialised before the shim runs) is refused.
    let err = check_on_chip(&family, variant, &[(0x4020_0000, vec![0; 16])]).unwrap_err();
    assert!(err.to_string().contains("not in on-chip RAM"), "{err}");
}

fn xtask_run(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("run")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn without_a_probe_run_fails_with_exit_2_and_says_why() {
    // No probe is attached on CI (nor here); if one were, this test would try to use it.
    let probes = probe_rs::probe::list::Lister::new().list_all();
    if !probes.is_empty() {
        eprintln!("a debug probe is attached ({}): skipping", probes[0]);
        return;
    }
    let elf = xtask::firmware::build_spl("imx8mm-evk").unwrap();
    let elf = elf.to_str().unwrap();
    let (code, err) = xtask_run(&["--board", "imx8mm-evk", "--probe", "--elf", elf]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no debug probe found"), "{err}");
    assert!(err.contains("JTAG"), "{err}");
}

#[test]
fn run_usage_errors_exit_2() {
    let (code, err) = xtask_run(&["--board", "imx8mm-evk"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("needs --probe"), "{err}");
    let (code, err) = xtask_run(&["--board", "qemu-imx8mp", "--probe"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("no probe-rs chip description for board `qemu-imx8mp`"),
        "{err}"
    );
    let (code, err) = xtask_run(&["--board", "imx8mm-evk", "--probe", "--elf", "/nonexistent"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("/nonexistent"), "{err}");
}
