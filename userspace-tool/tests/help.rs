//! `--help` reads like a man page (issue 5, "Done when"): every page has its description, the
//! exit status section with all three codes, and examples; update and sync name the files they
//! touch and the AN12900 rule.

use std::process::Command;

fn help(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_ubootctl"))
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{args:?} --help");
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn every_help_page_has_exit_status_and_examples() {
    for cmd in [
        &[][..],
        &["inspect"],
        &["verify"],
        &["status"],
        &["update"],
        &["sync"],
    ] {
        let h = help(cmd);
        for needle in [
            "EXIT STATUS",
            "\n  0  ",
            "\n  1  ",
            "\n  2  ",
            "EXAMPLES",
            "Usage: ubootctl",
        ] {
            assert!(h.contains(needle), "{cmd:?} --help lacks {needle:?}:\n{h}");
        }
        let examples = h.split("EXAMPLES").nth(1).unwrap();
        assert!(
            examples.contains("ubootctl "),
            "{cmd:?}: no example command"
        );
    }
}

#[test]
fn main_page_has_name_description_and_files() {
    let h = help(&[]);
    for needle in [
        "NAME\n  ubootctl - ",
        "DESCRIPTION",
        "AN12900",
        "FILES",
        "/dev/mem",
        "force_ro",
        "imx-ocotp0/nvmem",
    ] {
        assert!(h.contains(needle), "--help lacks {needle:?}:\n{h}");
    }
}

#[test]
fn update_and_sync_pages_state_the_rule_every_option_default_and_the_files() {
    for cmd in ["update", "sync"] {
        let h = help(&[cmd]);
        for needle in [
            "FILES",
            "/sys/block/mmcblkNbootM/force_ro",
            "/dev/mem",
            "imx-ocotp0/nvmem",
            "--device <DEV>",
            "[default: imx8mm-evk]",
            "[default: /dev/mem]",
            "[default: /sys/bus/nvmem/devices/imx-ocotp0/nvmem]",
            "[default: from the boot cell]",
            "[default: off]",
            "partition",
            "mounted",
            "/proc/self/mountinfo",
        ] {
            assert!(h.contains(needle), "{cmd} --help lacks {needle:?}:\n{h}");
        }
        // The test-only roots stay out of the page.
        assert!(
            !h.contains("--sysfs-root"),
            "{cmd} --help shows --sysfs-root"
        );
    }
    let h = help(&["update"]);
    for needle in [
        "running the primary (slot 1)",
        "running the secondary (slot 2)",
        "header-last",
        "SHA-256",
        "seek=2081",
    ] {
        assert!(h.contains(needle), "update --help lacks {needle:?}:\n{h}");
    }
}
