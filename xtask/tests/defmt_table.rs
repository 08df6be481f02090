//! The shim's two log builds (issue 16): the product build carries a defmt table with every
//! message of the boot, including the panic and exception reports, at their levels; the
//! `text-log` build carries none, and its messages are text in the image.

use std::path::PathBuf;
use std::sync::Mutex;

use defmt_decoder::Table;
use xtask::firmware::{Log, build_spl_with};

/// Both builds link to one cargo path before they are copied per board and log format: build
/// one at a time (the tests run in parallel threads).
fn build(board: &str, log: Log) -> PathBuf {
    static BUILD: Mutex<()> = Mutex::new(());
    let _one = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    build_spl_with(board, log).unwrap_or_else(|e| panic!("{e}"))
}

/// (level tag, format string or a line of it) as defmt's macros intern them.
const EXPECTED: &[(&str, &str)] = &[
    ("defmt_info", "\nwatchdog armed, {=u32} ms\n"),
    (
        "defmt_info",
        "\nslot {=u8} handoff to {=u64:#x} ({=str}) at EL3",
    ),
    ("defmt_warn", "{=istr} at {=u64:#x}: rejected ({=istr}): {}"),
    // A name fixed at compile time, interned (`boot_core::name!`).
    ("defmt_str", "image-signature"),
    ("defmt_error", "panic: {}"),
    ("defmt_error", "*** EL3 exception: {} ***"),
    ("defmt_error", "ELR_EL3  {:#x}"),
    ("defmt_error", "halted"),
];

#[test]
fn the_defmt_build_interns_every_message_including_panic_and_exceptions() {
    for board in ["qemu-imx8mp", "imx8mm-evk"] {
        let elf = build(board, Log::Defmt);
        let bytes = std::fs::read(&elf).unwrap();
        let table = Table::parse(&bytes)
            .unwrap()
            .unwrap_or_else(|| panic!("{board}: no defmt table in {}", elf.display()));
        let symbols: Vec<&str> = table.raw_symbols().collect();
        let b = boards::by_name(board).unwrap();
        let banner = format!("{} ({})", b.name, b.soc.name());
        for (tag, format) in EXPECTED
            .iter()
            .copied()
            .chain([("defmt_str", banner.as_str())])
        {
            let data = serde_json::to_string(format).unwrap();
            let data = data.trim_matches('"');
            assert!(
                symbols
                    .iter()
                    .any(|s| s.contains(&format!("\"tag\":\"{tag}\"")) && s.contains(data)),
                "{board}: no {tag} {format:?} in the table"
            );
        }
        // The format strings and names are in the table (symbol names), not in what is
        // loaded.
        assert!(!loaded_contains(&elf, b"watchdog armed"), "{board}");
        assert!(!loaded_contains(&elf, b"image-signature"), "{board}");
    }
}

#[test]
fn the_text_build_has_no_table_and_prints_text() {
    let elf = build("qemu-imx8mp", Log::Text);
    let bytes = std::fs::read(&elf).unwrap();
    assert!(Table::parse(&bytes).unwrap().is_none());
    assert!(loaded_contains(&elf, b"shim: watchdog armed, "));
}

/// In the simulation the ROM model prints text before it starts the shim (design.md §5.1): a
/// console reading text first takes those lines as text, and the shim's log starts at its
/// delimiter.
#[test]
fn the_rom_models_text_before_the_shims_delimiter_stays_text() {
    let elf = build("qemu-imx8mp", Log::Defmt);
    let mut c = xtask::console::Console::for_elf(&elf).unwrap().text_first();
    let lines = c.feed(b"rom: starting the primary SPL from 0x8400\r\n\0");
    assert_eq!(lines, ["rom: starting the primary SPL from 0x8400"]);
    assert!(c.is_defmt());
    assert_eq!(c.shim_bytes(), 1, "the shim's log begins at its delimiter");
    // Without text_first the same bytes would be taken for a frame.
    let mut c = xtask::console::Console::for_elf(&elf).unwrap();
    let lines = c.feed(b"rom: x\r\n\0");
    assert!(
        lines[0].starts_with("xtask: undecodable defmt frame"),
        "{lines:?}"
    );
}

/// Whether the loadable segments of `elf` contain `needle`.
fn loaded_contains(elf: &std::path::Path, needle: &[u8]) -> bool {
    let (segments, _) = xtask::probe::load_segments(elf).unwrap();
    segments
        .iter()
        .any(|(_, b)| b.windows(needle.len()).any(|w| w == needle))
}
