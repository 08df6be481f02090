//! `cargo xtask build-spl --board B` prints a path that keeps holding board B's firmware after
//! the other board is built (both link to the same cargo output path; `build_spl` keeps a copy
//! per board).

use object::Object;
use xtask::firmware::build_spl;

fn entry(path: &std::path::Path) -> u64 {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    object::File::parse(&*data)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .entry()
}

#[test]
fn each_board_keeps_its_own_elf() {
    let mini = build_spl("imx8mm-evk").unwrap_or_else(|e| panic!("{e}"));
    let mini_entry = entry(&mini);
    let qemu = build_spl("qemu-imx8mp").unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(mini, qemu, "both boards printed the same path");
    assert!(mini.ends_with("imx8mm-evk/spl-shim"), "{}", mini.display());
    assert!(qemu.ends_with("qemu-imx8mp/spl-shim"), "{}", qemu.display());
    // The boards load the shim at different OCRAM addresses (linker/imx8mm-evk.ld,
    // linker/qemu-imx8mp.ld), so the entry point tells the two builds apart.
    assert_ne!(mini_entry, entry(&qemu));
    assert_eq!(
        entry(&mini),
        mini_entry,
        "building qemu-imx8mp replaced the imx8mm-evk ELF at {}",
        mini.display()
    );
    let err = build_spl("imx8mq-evk").unwrap_err().to_string();
    assert!(err.contains("unknown board `imx8mq-evk`"), "{err}");
}
