//! The configuration file (issue 13): defaults for the options every integration needs, so that
//! Mender, SWUpdate and RAUC run `ubootctl` with no parameters of their own.
//!
//! The file is `--config FILE`, else `$UBOOTCTL_CONFIG`, else `/etc/ubootctl.toml` (optional:
//! its absence means built-in defaults). It is TOML with string values under keys named as the
//! long options: `device`, `board`, `srk-hash`, `fuses`, `ocotp`, `mem`. Relative paths are
//! taken from the file's directory. Options on the command line override the file; for the fuse
//! source (`srk-hash`, `fuses`, `ocotp`) any of them on the command line replaces all three.
//! An unknown key, a value that is not a string, an unknown board or both `srk-hash` and `fuses`
//! is a usage error naming the file and the key (exit 2).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::exit::Failure;

/// The configuration file read when neither `--config` nor `$UBOOTCTL_CONFIG` names one.
pub const DEFAULT_PATH: &str = "/etc/ubootctl.toml";
/// The environment variable naming the configuration file.
pub const ENV: &str = "UBOOTCTL_CONFIG";
/// Largest configuration file read (it holds six short strings).
const MAX_SIZE: u64 = 64 * 1024;
/// The keys, in the order `ubootctl config` prints them.
pub const KEYS: [&str; 6] = ["device", "board", "srk-hash", "fuses", "ocotp", "mem"];
/// The keys naming the fuse source.
const FUSE_KEYS: [&str; 3] = ["srk-hash", "fuses", "ocotp"];

/// How the configuration file was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileFrom {
    /// `--config FILE`.
    Option,
    /// `$UBOOTCTL_CONFIG`.
    Environment,
    /// [`DEFAULT_PATH`].
    Default,
}

impl fmt::Display for FileFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileFrom::Option => "--config",
            FileFrom::Environment => "$UBOOTCTL_CONFIG",
            FileFrom::Default => "default path",
        })
    }
}

/// Where an effective value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The command line.
    CommandLine,
    /// The configuration file.
    File,
    /// The built-in default.
    Default,
    /// Not set anywhere.
    Unset,
    /// Set in the file but not used: the command line names the fuse source.
    Overridden,
}

impl Origin {
    /// The name `ubootctl config` prints.
    pub fn name(&self) -> &'static str {
        match self {
            Origin::CommandLine => "command line",
            Origin::File => "config file",
            Origin::Default => "default",
            Origin::Unset => "not set",
            Origin::Overridden => "not used (the command line names the fuse source)",
        }
    }
}

/// One effective value and its origin.
#[derive(Debug, Clone)]
pub struct Setting {
    /// The value (a path or a board name), if any.
    pub value: Option<String>,
    /// Where it came from.
    pub origin: Origin,
}

/// What the command line gave for the configurable options.
#[derive(Debug, Default, Clone)]
pub struct Given {
    /// `--device`.
    pub device: Option<PathBuf>,
    /// `--board`.
    pub board: Option<String>,
    /// `--srk-hash`.
    pub srk_hash: Option<PathBuf>,
    /// `--fuses`.
    pub fuses: Option<PathBuf>,
    /// `--ocotp`.
    pub ocotp: Option<PathBuf>,
    /// `--mem`.
    pub mem: Option<PathBuf>,
}

/// The configuration file's contents (each key a string).
#[derive(Debug, Default, Clone)]
pub struct FileValues {
    values: Vec<(&'static str, String)>,
}

impl FileValues {
    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The configuration file in use.
#[derive(Debug, Clone)]
pub struct File {
    /// Its path.
    pub path: PathBuf,
    /// How it was chosen.
    pub from: FileFrom,
    /// Its values; `None` when the default path does not exist.
    pub values: Option<FileValues>,
}

/// Chooses the configuration file: `--config`, else `$UBOOTCTL_CONFIG` (when not empty), else
/// [`DEFAULT_PATH`], and reads it. A named file that is missing is an error; a missing default
/// file is not.
pub fn load(option: Option<&Path>) -> Result<File, Failure> {
    let env = std::env::var_os(ENV).filter(|v| !v.is_empty());
    let (path, from) = match (option, env) {
        (Some(p), _) => (p.to_path_buf(), FileFrom::Option),
        (None, Some(e)) => (PathBuf::from(e), FileFrom::Environment),
        (None, None) => (PathBuf::from(DEFAULT_PATH), FileFrom::Default),
    };
    if from == FileFrom::Default && !path.exists() {
        return Ok(File {
            path,
            from,
            values: None,
        });
    }
    let bytes = crate::image_file::read_regular(&path, MAX_SIZE + 1, "a configuration file")
        .map_err(|e| Failure::Usage(format!("configuration file ({from}): {e}")))?;
    if bytes.len() as u64 > MAX_SIZE {
        return Err(Failure::Usage(format!(
            "{}: too large for a configuration file (more than {MAX_SIZE} bytes)",
            path.display()
        )));
    }
    let values = parse(&path, &bytes)?;
    Ok(File {
        path,
        from,
        values: Some(values),
    })
}

/// Parses and checks a configuration file's bytes; `path` names it in errors and anchors
/// relative paths.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<FileValues, Failure> {
    let bad = |what: String| Failure::Usage(format!("{}: {what}", path.display()));
    let text = std::str::from_utf8(bytes).map_err(|e| bad(format!("not UTF-8 text: {e}")))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| bad(format!("not valid TOML: {}", e.message())))?;
    let base = path.parent().unwrap_or(Path::new(""));
    let mut values = Vec::new();
    for (key, value) in &table {
        let Some(&known) = KEYS.iter().find(|k| **k == key.as_str()) else {
            return Err(bad(format!(
                "unknown key `{key}` (the keys are {})",
                KEYS.join(", ")
            )));
        };
        let toml::Value::String(s) = value else {
            return Err(bad(format!(
                "key `{key}`: expected a string, found {}",
                value.type_str()
            )));
        };
        if s.is_empty() {
            return Err(bad(format!("key `{key}`: empty")));
        }
        let s = if known == "board" {
            if boards::by_name(s).is_none() {
                let names: Vec<&str> = boards::ALL.iter().map(|b| b.name).collect();
                return Err(bad(format!(
                    "key `board`: unknown board `{s}` (known: {})",
                    names.join(", ")
                )));
            }
            s.clone()
        } else {
            base.join(s).to_string_lossy().into_owned()
        };
        values.push((known, s));
    }
    let v = FileValues { values };
    if v.get("srk-hash").is_some() && v.get("fuses").is_some() {
        return Err(bad(
            "keys `srk-hash` and `fuses` both name the fuse source: keep one".into(),
        ));
    }
    Ok(v)
}

/// The effective values of every key, command line over file over default.
#[derive(Debug, Clone)]
pub struct Effective {
    /// The configuration file.
    pub file: File,
    /// One setting per key of [`KEYS`], in that order.
    pub settings: Vec<(&'static str, Setting)>,
}

/// Built-in defaults (`device`: the default of `status`; `update` and `sync` need it set).
fn default_of(key: &str) -> Option<&'static str> {
    match key {
        "device" => Some(crate::cli_status::DEFAULT_DEVICE),
        "board" => Some(DEFAULT_BOARD),
        "ocotp" => Some(crate::fuses::OCOTP_NVMEM),
        "mem" => Some(crate::cell_source::DEV_MEM),
        _ => None,
    }
}

/// The board when none is configured.
pub const DEFAULT_BOARD: &str = "imx8mm-evk";

/// Combines the command line `given`, the file and the defaults.
pub fn resolve(file: File, given: &Given) -> Effective {
    let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.to_string_lossy().into_owned());
    let cli = |key: &str| -> Option<String> {
        match key {
            "device" => path(&given.device),
            "board" => given.board.clone(),
            "srk-hash" => path(&given.srk_hash),
            "fuses" => path(&given.fuses),
            "ocotp" => path(&given.ocotp),
            "mem" => path(&given.mem),
            _ => None,
        }
    };
    let cli_fuses = FUSE_KEYS.iter().any(|k| cli(k).is_some());
    let settings = KEYS
        .iter()
        .map(|&key| {
            let from_file = file.values.as_ref().and_then(|v| v.get(key));
            let setting = if let Some(v) = cli(key) {
                Setting {
                    value: Some(v),
                    origin: Origin::CommandLine,
                }
            } else if from_file.is_some() && FUSE_KEYS.contains(&key) && cli_fuses {
                Setting {
                    value: default_of(key).map(str::to_string),
                    origin: if default_of(key).is_some() {
                        Origin::Default
                    } else {
                        Origin::Overridden
                    },
                }
            } else if let Some(v) = from_file {
                Setting {
                    value: Some(v.to_string()),
                    origin: Origin::File,
                }
            } else if let Some(d) = default_of(key) {
                Setting {
                    value: Some(d.to_string()),
                    origin: Origin::Default,
                }
            } else {
                Setting {
                    value: None,
                    origin: Origin::Unset,
                }
            };
            (key, setting)
        })
        .collect();
    Effective { file, settings }
}

impl Effective {
    /// The setting of `key`.
    pub fn get(&self, key: &str) -> &Setting {
        &self
            .settings
            .iter()
            .find(|(k, _)| *k == key)
            .expect("every key is resolved")
            .1
    }

    /// The value of `key` as a path, if set.
    pub fn path(&self, key: &str) -> Option<PathBuf> {
        self.get(key).value.as_ref().map(PathBuf::from)
    }

    /// The board (known: the file's is checked, the command line's by clap).
    pub fn board(&self) -> &'static boards::Board {
        let name = self.get("board").value.as_deref().unwrap_or(DEFAULT_BOARD);
        boards::by_name(name).expect("board names are checked where they are read")
    }

    /// The device for the commands that write: set on the command line or in the file.
    pub fn required_device(&self) -> Result<PathBuf, Failure> {
        match self.get("device") {
            Setting {
                value: Some(v),
                origin: Origin::CommandLine | Origin::File,
            } => Ok(PathBuf::from(v)),
            _ => Err(Failure::Usage(format!(
                "no device: give --device DEV or set `device` in the configuration file ({})",
                self.describe_file()
            ))),
        }
    }

    /// The file in a phrase: its path and how it was chosen, or that there is none.
    pub fn describe_file(&self) -> String {
        match &self.file.values {
            Some(_) => format!("{} ({})", self.file.path.display(), self.file.from),
            None => format!("{} does not exist", self.file.path.display()),
        }
    }
}

/// `ubootctl config`: prints the effective values and their origins.
pub fn print(e: &Effective, json: bool) {
    use crate::output::outln;
    if json {
        let settings: serde_json::Map<String, serde_json::Value> = e
            .settings
            .iter()
            .map(|(k, s)| {
                (
                    (*k).to_string(),
                    serde_json::json!({"value": s.value, "origin": s.origin.name()}),
                )
            })
            .collect();
        let doc = serde_json::json!({
            "config_file": {
                "path": e.file.path,
                "from": e.file.from,
                "exists": e.file.values.is_some(),
            },
            "settings": settings,
        });
        outln!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("plain data serialises")
        );
        return;
    }
    let file = match &e.file.values {
        Some(_) => format!("{} ({})", e.file.path.display(), e.file.from),
        None => format!("none ({} does not exist)", e.file.path.display()),
    };
    outln!("{:<12} {file}", "config file");
    for (key, s) in &e.settings {
        let mut origin = s.origin.name().to_string();
        if *key == "device" && s.origin == Origin::Default {
            origin.push_str(" (status only; update and sync need it set)");
        }
        if s.origin == Origin::File {
            origin = format!("config file {}", e.file.path.display());
        }
        outln!(
            "{key:<12} {:<40} {origin}",
            s.value.as_deref().unwrap_or("-")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<FileValues, String> {
        parse(Path::new("/etc/x/ubootctl.toml"), text.as_bytes()).map_err(|e| e.to_string())
    }

    #[test]
    fn keys_paths_and_board() {
        let v = p("device = \"/dev/mmcblk2\"\nboard = \"qemu-imx8mp\"\nsrk-hash = \"srk.bin\"\n")
            .unwrap();
        assert_eq!(v.get("device"), Some("/dev/mmcblk2"));
        assert_eq!(v.get("board"), Some("qemu-imx8mp"));
        assert_eq!(v.get("srk-hash"), Some("/etc/x/srk.bin"));
        assert_eq!(v.get("mem"), None);
    }

    #[test]
    fn bad_files_name_the_file_and_the_key() {
        for (text, needle) in [
            ("devices = \"/dev/x\"", "unknown key `devices`"),
            (
                "device = 3",
                "key `device`: expected a string, found integer",
            ),
            ("board = \"imx9\"", "key `board`: unknown board `imx9`"),
            (
                "[device]\nx = \"y\"",
                "key `device`: expected a string, found table",
            ),
            ("device = \"\"", "key `device`: empty"),
            (
                "srk-hash = \"a\"\nfuses = \"b\"",
                "both name the fuse source",
            ),
            ("device = \"a\"\ndevice = \"b\"", "not valid TOML"),
            ("device = ", "not valid TOML"),
        ] {
            let e = p(text).unwrap_err();
            assert!(e.starts_with("/etc/x/ubootctl.toml: "), "{e}");
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn command_line_overrides_and_fuse_source_is_one_group() {
        let file = File {
            path: "/c.toml".into(),
            from: FileFrom::Option,
            values: Some(p("device = \"/dev/a\"\nsrk-hash = \"/s\"\nmem = \"/m\"").unwrap()),
        };
        let e = resolve(
            file,
            &Given {
                device: Some("/dev/b".into()),
                fuses: Some("/f".into()),
                ..Given::default()
            },
        );
        assert_eq!(e.get("device").value.as_deref(), Some("/dev/b"));
        assert_eq!(e.get("device").origin, Origin::CommandLine);
        assert_eq!(e.get("srk-hash").value, None);
        assert_eq!(e.get("srk-hash").origin, Origin::Overridden);
        assert_eq!(e.get("fuses").origin, Origin::CommandLine);
        assert_eq!(e.get("mem").origin, Origin::File);
        assert_eq!(e.get("board").origin, Origin::Default);
        assert_eq!(e.board().name, DEFAULT_BOARD);
    }
}
