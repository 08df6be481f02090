//! The configuration file and `ubootctl config` (issue 13): defaults from `--config`,
//! `$UBOOTCTL_CONFIG` or `/etc/ubootctl.toml`, overridden by the command line; bad files are a
//! usage error (exit 2) naming the file and the key, and nothing on the device changes.

mod fleet;
mod medium;

use std::process::Command;

use fleet::{Rig, describe, run};
use medium::{board, image};

fn ubootctl(rig: &Rig) -> Command {
    rig.command(env!("CARGO_BIN_EXE_ubootctl"))
}

fn json(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", describe(o)))
}

#[test]
fn status_and_update_take_everything_from_the_file() {
    let rig = Rig::healthy();
    // `rig.command` sets $UBOOTCTL_CONFIG; paths in the file are relative to its directory.
    let o = run(ubootctl(&rig).args(["status", "--json"]).current_dir("/"));
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    assert_eq!(json(&o)["board"], board().name);
    let v2 = rig.file("v2.bin", image(2));
    let o = run(ubootctl(&rig).arg("update").arg(&v2).current_dir("/"));
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    assert!(rig.primary_holds(image(2)));
}

#[test]
fn the_command_line_overrides_the_file_and_config_says_where_each_value_came_from() {
    let rig = Rig::healthy();
    let other = rig.file("other.img", &rig.disk_bytes());
    let o = run(ubootctl(&rig)
        .args(["config", "--json", "--device"])
        .arg(&other)
        .args(["--fuses", "/nonexistent/fuses.bin"]));
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let v = json(&o);
    assert_eq!(v["config_file"]["from"], "environment");
    assert_eq!(v["config_file"]["exists"], true);
    let s = &v["settings"];
    assert_eq!(s["device"]["origin"], "command line");
    assert_eq!(s["device"]["value"], other.to_str().unwrap());
    assert_eq!(s["board"]["origin"], "config file");
    assert_eq!(s["mem"]["origin"], "config file");
    assert_eq!(
        s["mem"]["value"],
        rig.dir.path().join("mem.bin").to_str().unwrap()
    );
    // A fuse option on the command line replaces the file's fuse source.
    assert_eq!(s["fuses"]["origin"], "command line");
    assert_eq!(s["srk-hash"]["value"], serde_json::Value::Null);
    assert!(
        s["srk-hash"]["origin"]
            .as_str()
            .unwrap()
            .starts_with("not used"),
        "{s}"
    );
    assert_eq!(s["ocotp"]["origin"], "default");
    // --config beats $UBOOTCTL_CONFIG; text output names the file and the origins.
    let second = rig.file("second.toml", b"board = \"imx8mm-evk\"\n");
    let o = run(ubootctl(&rig).arg("config").arg("--config").arg(&second));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains(&format!("{} (--config)", second.display())),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("board")
            && l.contains("imx8mm-evk")
            && l.contains("config file")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("device") && l.contains("default")),
        "{text}"
    );
    // The override is used: status reads the other device, not the file's.
    let o = run(ubootctl(&rig)
        .args(["status", "--json", "--device"])
        .arg(&other));
    assert_eq!(json(&o)["device"], other.to_str().unwrap());
}

#[test]
fn bad_files_are_usage_errors_naming_the_file_and_the_key_and_change_nothing() {
    let rig = Rig::healthy();
    let before = rig.disk_bytes();
    let v2 = rig.file("v2.bin", image(2));
    let big = format!("# {}\n", "x".repeat(70_000));
    for (name, text, needle) in [
        (
            "unknown.toml",
            "device = \"disk.img\"\ndevcie = \"x\"\n",
            "unknown key `devcie`",
        ),
        (
            "type.toml",
            "device = \"disk.img\"\nmem = 5\n",
            "key `mem`: expected a string, found integer",
        ),
        (
            "array.toml",
            "device = [\"disk.img\"]\n",
            "key `device`: expected a string, found array",
        ),
        (
            "board.toml",
            "device = \"disk.img\"\nboard = \"imx8mq-evk\"\n",
            "key `board`: unknown board `imx8mq-evk`",
        ),
        (
            "both.toml",
            "device = \"disk.img\"\nsrk-hash = \"srk.bin\"\nfuses = \"f.bin\"\n",
            "keys `srk-hash` and `fuses`",
        ),
        ("syntax.toml", "device = \"disk.img\n", "not valid TOML"),
        ("binary.toml", "device = \"\u{0}\u{ff}", "not valid TOML"),
        ("big.toml", big.as_str(), "too large"),
    ] {
        let path = rig.file(name, text.as_bytes());
        for args in [
            vec!["config"],
            vec!["update", v2.to_str().unwrap()],
            vec!["status"],
        ] {
            let o = run(ubootctl(&rig).arg("--config").arg(&path).args(&args));
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(
                o.status.code(),
                Some(2),
                "{name} {args:?}: {}",
                describe(&o)
            );
            assert!(
                err.contains(path.to_str().unwrap()),
                "{name}: names the file: {err}"
            );
            assert!(
                err.to_lowercase().contains(&needle.to_lowercase()),
                "{name}: {err}"
            );
        }
    }
    // A missing or unreadable named file, and a directory or FIFO, at once.
    let fifo = rig.dir.path().join("fifo.toml");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    for path in [
        rig.dir.path().join("missing.toml"),
        rig.dir.path().to_path_buf(),
        fifo,
    ] {
        let o = run(ubootctl(&rig)
            .arg("update")
            .arg(&v2)
            .env("UBOOTCTL_CONFIG", &path));
        assert_eq!(
            o.status.code(),
            Some(2),
            "{}: {}",
            path.display(),
            describe(&o)
        );
        assert!(String::from_utf8_lossy(&o.stderr).contains(path.to_str().unwrap()));
    }
    assert!(rig.disk_bytes() == before, "nothing written");
}

#[test]
fn update_without_a_device_anywhere_is_a_usage_error() {
    let rig = Rig::healthy();
    let empty = rig.file("empty.toml", b"# nothing set\n");
    let v2 = rig.file("v2.bin", image(2));
    let o = run(ubootctl(&rig)
        .arg("update")
        .arg(&v2)
        .arg("--config")
        .arg(&empty));
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no device") && err.contains("empty.toml"),
        "{err}"
    );
}
