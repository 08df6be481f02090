//! `ubootctl inspect --json` says the same as NXP's `csf_parser` about every IVT word, CSF
//! command, record and extracted file: first against the output recorded with the fixtures,
//! then against `csf_parser` run live on the fixtures and on modified images.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use common::{SETS, array, hex, num, read, read_fixture, set_dir, signed_bin, text};
use serde_json::Value;

/// One `NAME VALUE DEFINITION DESCRIPTION` section of `parsed_output.txt`, with its first value.
#[derive(Debug)]
struct Section {
    name: String,
    value: Option<u64>,
}

/// A header, command or record of `parsed_output.txt`: the sections from one `TAG` to the next.
#[derive(Debug)]
struct Block {
    sections: Vec<Section>,
}

impl Block {
    fn value(&self, name: &str) -> u64 {
        self.sections
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.value)
            .unwrap_or_else(|| panic!("csf_parser block has no {name} value: {self:?}"))
    }

    fn tag(&self) -> u64 {
        self.value("TAG")
    }
}

/// Splits `parsed_output.txt` into blocks of sections.
fn parse_parsed_output(txt: &str) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    for line in txt.lines() {
        let mut words = line.split_whitespace();
        let (first, second) = (words.next(), words.next());
        if let (Some(name), Some("VALUE")) = (first, second) {
            let section = Section {
                name: name.to_owned(),
                value: None,
            };
            if name == "TAG" {
                blocks.push(Block {
                    sections: vec![section],
                });
            } else {
                blocks
                    .last_mut()
                    .unwrap_or_else(|| panic!("section {name} before the first TAG"))
                    .sections
                    .push(section);
            }
        } else if let Some(v) = first.filter(|w| w.starts_with("0x")) {
            // Only the first value line of a section counts (ENG_CFG and FEATURE list the
            // bits after it).
            if let Some(s) = blocks.last_mut().and_then(|b| b.sections.last_mut())
                && s.value.is_none()
            {
                s.value = Some(common::parse_num(v));
            }
        }
    }
    assert!(!blocks.is_empty(), "parsed_output.txt has no TAG section");
    blocks
}

/// What `debug_log.txt` says.
#[derive(Debug, Default)]
struct DebugLog {
    /// `IVT : HEADER = …`, `START`, `RES1`, `DCD`, `BOOT DATA`, `SELF`, `CSF`, `RES2`.
    ivt: HashMap<String, u64>,
    ivt_offset: Option<u64>,
    csf_offset: Option<u64>,
    csf_tag: Option<u64>,
    csf_total_size: Option<u64>,
    /// `CSF TAG: 0x..` items (header, commands, records) with their raw bytes.
    items: Vec<(u64, Vec<u8>)>,
    /// `Region N: address: …, size: …`.
    regions: Vec<(u64, u64)>,
}

fn value_after<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_once(key)
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .map(|v| v.trim_end_matches(','))
}

fn parse_debug_log(txt: &str) -> DebugLog {
    let mut d = DebugLog::default();
    let mut in_ivt = false;
    for line in txt.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("IVT :") {
            in_ivt = true;
            let (k, v) = rest.split_once('=').expect("IVT : NAME = value");
            d.ivt.insert(k.trim().to_owned(), common::parse_num(v));
        } else if in_ivt && t.contains('=') && !t.contains("found") {
            let (k, v) = t.split_once('=').expect("NAME = value");
            d.ivt.insert(k.trim().to_owned(), common::parse_num(v));
        } else if t.starts_with("IVT found at offset") {
            in_ivt = false;
            d.ivt_offset = value_after(t, "=").map(common::parse_num);
        } else if t.starts_with("CSF found at offset") {
            d.csf_offset = value_after(t, "=").map(common::parse_num);
        } else if t.starts_with("CSF TAG =") {
            d.csf_tag = value_after(t, "CSF TAG =").map(common::parse_num);
            d.csf_total_size = value_after(t, "Total size =").map(common::parse_num);
        } else if let Some(tag) = t.strip_prefix("CSF TAG:") {
            d.items.push((common::parse_num(tag), Vec::new()));
        } else if t.starts_with("Region ") {
            let a = value_after(t, "address:").map(common::parse_num);
            let s = value_after(t, "size:").map(common::parse_num);
            d.regions
                .push((a.expect("region address"), s.expect("region size")));
        } else if !t.is_empty()
            && t.split_whitespace().all(|w| w.starts_with("0x"))
            && let Some((_, bytes)) = d.items.last_mut().filter(|(_, b)| b.is_empty())
        {
            *bytes = t
                .split_whitespace()
                .map(|w| u8::try_from(common::parse_num(w)).expect("a byte"))
                .collect();
        }
    }
    d
}

/// Collects disagreements instead of stopping at the first one.
struct Checker {
    context: String,
    errors: Vec<String>,
}

impl Checker {
    fn eq(&mut self, what: &str, ours: u64, theirs: u64) {
        if ours != theirs {
            self.errors.push(format!(
                "{what}: ubootctl {ours:#x}, csf_parser {theirs:#x}"
            ));
        }
    }

    fn bytes(&mut self, what: &str, ours: &[u8], theirs: &[u8]) {
        if ours != theirs {
            let first = ours.iter().zip(theirs).position(|(a, b)| a != b);
            self.errors.push(format!(
                "{what}: {} bytes from ubootctl's offsets, {} bytes from csf_parser, first difference at {first:?}",
                ours.len(),
                theirs.len()
            ));
        }
    }

    fn fail(&mut self, msg: String) {
        self.errors.push(msg);
    }

    fn finish(self) {
        assert!(
            self.errors.is_empty(),
            "{}: ubootctl and csf_parser disagree:\n  {}",
            self.context,
            self.errors.join("\n  ")
        );
    }
}

fn slice(image: &[u8], from: u64, len: u64) -> &[u8] {
    let (from, len) = (from as usize, len as usize);
    image
        .get(from..from + len)
        .unwrap_or_else(|| panic!("{from:#x}+{len:#x} is outside the image"))
}

/// Compares one command of the JSON with its `parsed_output.txt` block and `debug_log.txt`
/// bytes.
fn compare_command(
    c: &mut Checker,
    i: usize,
    ours: &Value,
    theirs: &Block,
    raw: Option<&[u8]>,
    image: &[u8],
    csf_offset: u64,
) {
    let name = format!("command {i} ({})", text(ours, "/name"));
    c.eq(&format!("{name} TAG"), num(ours, "/tag"), theirs.tag());
    c.eq(
        &format!("{name} LEN"),
        num(ours, "/length"),
        theirs.value("LEN"),
    );
    let mut covered = vec!["csf_offset", "tag", "name", "length"];
    let mut block = 0;
    for s in &theirs.sections[1..] {
        let Some(v) = s.value else {
            c.fail(format!(
                "{name}: csf_parser section {} has no value",
                s.name
            ));
            continue;
        };
        let (field, ptr) = match s.name.as_str() {
            "LEN" => continue,
            "FLG" => ("flags", "/flags".to_owned()),
            "PCL" => ("protocol", "/protocol".to_owned()),
            "ALG" => ("algorithm", "/algorithm".to_owned()),
            "SRC" | "VRF" => ("source", "/source".to_owned()),
            "TGT" => ("target", "/target".to_owned()),
            "KEY_DAT" => ("key_dat", "/key_dat".to_owned()),
            "KEY" => ("key", "/key".to_owned()),
            "ENG" => ("engine", "/engine".to_owned()),
            "ENG_CFG" => ("engine_config", "/engine_config".to_owned()),
            "SIG_LOC" => ("aut_start", "/aut_start".to_owned()),
            "BLK_SRT" => ("blocks", format!("/blocks/{block}/start")),
            "BLK_LEN" => {
                block += 1;
                ("blocks", format!("/blocks/{}/length", block - 1))
            }
            "FEATURE" => ("words", "/words/0".to_owned()),
            other => {
                c.fail(format!(
                    "{name}: csf_parser section {other} = {v:#x} has no ubootctl counterpart"
                ));
                continue;
            }
        };
        covered.push(field);
        match ours.pointer(&ptr).and_then(Value::as_u64) {
            Some(o) => c.eq(&format!("{name} {} ({ptr})", s.name), o, v),
            None => c.fail(format!(
                "{name}: csf_parser has {} = {v:#x}, ubootctl JSON has no {ptr}",
                s.name
            )),
        }
    }
    if let Some(blocks) = ours.get("blocks").and_then(Value::as_array) {
        // An empty list (Authenticate CSF) is checked by this count alone.
        covered.push("blocks");
        if blocks.len() != block {
            c.fail(format!(
                "{name}: ubootctl has {} blocks, csf_parser {block}",
                blocks.len()
            ));
        }
    }
    // Every field ubootctl decodes must have been checked against csf_parser.
    for key in ours.as_object().expect("a command is an object").keys() {
        if !covered.contains(&key.as_str()) {
            c.fail(format!(
                "{name}: ubootctl field `{key}` = {} has no csf_parser section",
                ours[key]
            ));
        }
    }
    let at = csf_offset + num(ours, "/csf_offset");
    match raw {
        Some(raw) => c.bytes(
            &format!("{name} raw bytes in debug_log.txt"),
            slice(image, at, num(ours, "/length")),
            raw,
        ),
        None => c.fail(format!("{name}: debug_log.txt has no item for it")),
    }
}

/// Compares one record of the JSON with its `parsed_output.txt` block and `debug_log.txt` bytes.
fn compare_record(
    c: &mut Checker,
    i: usize,
    ours: &Value,
    theirs: &Block,
    raw: Option<&[u8]>,
    image: &[u8],
    csf_offset: u64,
) {
    let name = format!("record {i} ({})", text(ours, "/role"));
    c.eq(&format!("{name} TAG"), num(ours, "/tag"), theirs.tag());
    c.eq(
        &format!("{name} LEN"),
        num(ours, "/length"),
        theirs.value("LEN"),
    );
    c.eq(
        &format!("{name} VER"),
        num(ours, "/version"),
        theirs.value("VER"),
    );
    let offset_section = match text(ours, "/kind") {
        "signature" => "SIG",
        _ => "CERT",
    };
    match theirs.sections.iter().find(|s| s.name == offset_section) {
        Some(s) => c.eq(
            &format!("{name} {offset_section} (body_csf_offset)"),
            num(ours, "/body_csf_offset"),
            s.value.unwrap_or(u64::MAX),
        ),
        None => c.fail(format!(
            "{name}: csf_parser has no {offset_section} section: {theirs:?}"
        )),
    }
    let at = csf_offset + num(ours, "/csf_offset");
    match raw {
        Some(raw) => c.bytes(
            &format!("{name} raw bytes in debug_log.txt"),
            slice(image, at, num(ours, "/length")),
            raw,
        ),
        None => c.fail(format!("{name}: debug_log.txt has no item for it")),
    }
}

/// A file `csf_parser` extracts: name, whether it is the whole record (or its body only), what
/// it is, and which record of the JSON it comes from (by role).
type ExtractedFile = (&'static str, bool, &'static str, fn(&str) -> bool);

/// Compares `ubootctl inspect --json` of `image_path` with the csf_parser output in `out`.
/// `srk_fuse` is the expected SRK hash, when known.
fn compare(context: &str, image_path: &Path, out: &Path, srk_fuse: Option<&[u8]>) {
    let image = read(image_path);
    let json = common::inspect_json(image_path, &[]);
    let mut c = Checker {
        context: context.to_owned(),
        errors: Vec::new(),
    };
    let fit = common::at(&json, "/fit");
    let csf = common::at(fit, "/csf");
    let csf_offset = num(csf, "/offset");

    // debug_log.txt: IVT words, IVT and CSF offsets, raw bytes.
    let log = parse_debug_log(&String::from_utf8_lossy(&read(&out.join("debug_log.txt"))));
    for (word, field) in [
        ("HEADER", "header"),
        ("START", "entry"),
        ("RES1", "reserved1"),
        ("DCD", "dcd"),
        ("BOOT DATA", "boot_data"),
        ("SELF", "self"),
        ("CSF", "csf"),
        ("RES2", "reserved2"),
    ] {
        match log.ivt.get(word) {
            Some(&v) => c.eq(
                &format!("IVT {word} (fit.ivt.{field})"),
                num(fit, &format!("/ivt/{field}")),
                v,
            ),
            None => c.fail(format!("debug_log.txt has no IVT {word}")),
        }
    }
    if log.ivt.len() != 8 {
        c.fail(format!("debug_log.txt IVT words: {:?}", log.ivt));
    }
    c.eq(
        "IVT offset",
        num(fit, "/ivt/offset"),
        log.ivt_offset.unwrap_or(u64::MAX),
    );
    c.eq("CSF offset", csf_offset, log.csf_offset.unwrap_or(u64::MAX));
    c.eq("CSF TAG", num(csf, "/tag"), log.csf_tag.unwrap_or(u64::MAX));
    // csf_parser's "Total size" is everything from the CSF to the end of the file; the file
    // ends after the last record and at most 3 bytes of its padding.
    let total = log.csf_total_size.unwrap_or(u64::MAX);
    c.eq("CSF total size", num(&json, "/size") - csf_offset, total);
    let extent = num(csf, "/extent");
    if !(extent <= total && total - extent < 4) {
        c.fail(format!(
            "CSF extent {extent:#x} is not csf_parser's total size {total:#x} less up to 3 bytes of padding"
        ));
    }

    // parsed_output.txt: header, commands, records in order.
    let blocks = parse_parsed_output(&String::from_utf8_lossy(&read(
        &out.join("parsed_output.txt"),
    )));
    let header = &blocks[0];
    c.eq("CSF header TAG", num(csf, "/tag"), header.tag());
    c.eq("CSF header LEN", num(csf, "/length"), header.value("LEN"));
    c.eq("CSF header VER", num(csf, "/version"), header.value("VER"));
    let is_record = |b: &&Block| matches!(b.tag(), 0xD7 | 0xD8);
    let their_commands: Vec<&Block> = blocks[1..].iter().filter(|b| !is_record(b)).collect();
    let their_records: Vec<&Block> = blocks[1..].iter().filter(is_record).collect();
    let our_commands = array(csf, "/commands");
    let our_records = array(csf, "/records");
    c.eq(
        "number of commands",
        our_commands.len() as u64,
        their_commands.len() as u64,
    );
    c.eq(
        "number of records",
        our_records.len() as u64,
        their_records.len() as u64,
    );
    c.eq(
        "number of debug_log.txt items (header + commands + records)",
        (1 + our_commands.len() + our_records.len()) as u64,
        log.items.len() as u64,
    );
    let raw = |i: usize| log.items.get(i).map(|(_, b)| b.as_slice());
    if let Some((tag, bytes)) = log.items.first() {
        c.eq("debug_log.txt first item tag", num(csf, "/tag"), *tag);
        c.bytes("CSF header raw bytes", slice(&image, csf_offset, 4), bytes);
    }
    for (i, (ours, theirs)) in our_commands.iter().zip(&their_commands).enumerate() {
        compare_command(&mut c, i, ours, theirs, raw(1 + i), &image, csf_offset);
    }
    for (i, (ours, theirs)) in our_records.iter().zip(&their_records).enumerate() {
        let item = raw(1 + our_commands.len() + i);
        compare_record(&mut c, i, ours, theirs, item, &image, csf_offset);
    }
    let our_blocks: Vec<(u64, u64)> = our_commands
        .iter()
        .filter_map(|c| c.get("blocks").and_then(Value::as_array))
        .flatten()
        .map(|b| (num(b, "/start"), num(b, "/length")))
        .collect();
    if our_blocks != log.regions {
        c.fail(format!(
            "Authenticate Data blocks {our_blocks:x?}, debug_log.txt regions {:x?}",
            log.regions
        ));
    }

    // Extracted files: the record bytes at ubootctl's offsets.
    c.bytes(
        "csf.bin",
        &image[csf_offset as usize..],
        &read(&out.join("csf.bin")),
    );
    let record = |role: fn(&str) -> bool| {
        our_records
            .iter()
            .find(|r| role(text(r, "/role")))
            .map(|r| (csf_offset + num(r, "/csf_offset"), num(r, "/length"), r))
    };
    // (file, whole record or body only, what, which record)
    let files: [ExtractedFile; 5] = [
        ("SRKTable.bin", true, "SRK table record", |r| {
            r == "SRK table"
        }),
        ("cert0.der", false, "CSFK certificate", |r| r == "CSFK"),
        ("cert1.der", false, "image key certificate", |r| {
            r.starts_with("IMGK")
        }),
        ("sig0.bin", false, "CSF signature", |r| r == "CSF signature"),
        ("sig1.bin", false, "image signature", |r| {
            r.starts_with("image signature")
        }),
    ];
    for (file, whole, what, role) in files {
        let Some((at, len, rec)) = record(role) else {
            c.fail(format!("ubootctl reports no {what} record"));
            continue;
        };
        let theirs = read(&out.join(file));
        let ours = if whole {
            slice(&image, at, len)
        } else {
            slice(&image, at + 4, len - 4)
        };
        c.bytes(&format!("{file} ({what} at {at:#x})"), ours, &theirs);
        if let Some(der) = rec
            .pointer("/certificate/der_length")
            .or_else(|| rec.pointer("/signature/der_length"))
            .and_then(Value::as_u64)
        {
            c.eq(&format!("{file} DER length"), der, theirs.len() as u64);
        }
    }
    if let Some(fuse) = srk_fuse {
        let ours = csf.get("srk_hash").and_then(Value::as_str).unwrap_or("-");
        if ours != hex(fuse) {
            c.fail(format!("srk_hash {ours}, srk_fuse.bin {}", hex(fuse)));
        }
    }
    c.finish();
}

#[test]
fn inspect_agrees_with_csf_parser() {
    for set in SETS {
        let dir = set_dir(set.name);
        compare(
            &format!("{} (recorded csf_parser output)", set.name),
            &signed_bin(set.name),
            &dir.join("csf_parser"),
            Some(&read_fixture(set.name, "srk_fuse.bin")),
        );
    }
}

/// Runs `csf_parser -d -s IMAGE` in a fresh directory; `None` when it is not installed.
fn run_csf_parser(image: &Path) -> Option<tempfile::TempDir> {
    let cwd = tempfile::tempdir().expect("tempdir");
    let image = std::path::absolute(image).expect("absolute path");
    let out = match Command::new("csf_parser")
        .arg("-d")
        .arg("-s")
        .arg(&image)
        .current_dir(cwd.path())
        .output()
    {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("cannot run csf_parser: {e}"),
    };
    assert!(
        out.status.success(),
        "csf_parser -d -s {} failed: {}",
        image.display(),
        common::describe(&out)
    );
    for f in ["parsed_output.txt", "debug_log.txt", "SRKTable.bin"] {
        assert!(
            cwd.path().join("output").join(f).is_file(),
            "csf_parser wrote no output/{f} for {}",
            image.display()
        );
    }
    Some(cwd)
}

fn put_be32(b: &mut [u8], at: u64, v: u32) {
    b[at as usize..at as usize + 4].copy_from_slice(&v.to_be_bytes());
}

/// The fixture with bytes changed that csf_parser ignores (a byte of the `uboot` payload) or
/// decodes (the IVT entry word, the Install Key target slot, the Authenticate Data key and
/// block length), all of which `ubootctl` still decodes.
fn modified(set: &str, json: &Value) -> (Vec<u8>, u32, u32) {
    let mut b = read(&signed_bin(set));
    let csf = common::at(json, "/fit/csf");
    let csf_offset = num(csf, "/offset");
    let cmd = |name: &str| {
        array(csf, "/commands")
            .iter()
            .find(|c| text(c, "/name") == name)
            .map(|c| csf_offset + num(c, "/csf_offset"))
            .unwrap_or_else(|| panic!("{set}: no {name} command"))
    };
    let payload = num(json, "/fit/images/0/data_offset") + 0x1234;
    b[payload as usize] ^= 0x5A;
    let ivt = num(json, "/fit/ivt/offset");
    let entry = num(json, "/fit/ivt/entry") as u32 + 0x100;
    b[ivt as usize + 4..ivt as usize + 8].copy_from_slice(&entry.to_le_bytes());
    // Install Key: be 00 0c flg | pcl alg src tgt | key_dat; Authenticate Data: ca 00 14 flg |
    // key pcl eng cfg | aut_start | start | length.
    b[cmd("Install Key") as usize + 7] = 3;
    let aut = cmd("Authenticate Data");
    b[aut as usize + 4] = 3;
    let len =
        u32::from_be_bytes(b[aut as usize + 16..aut as usize + 20].try_into().unwrap()) - 0x20;
    put_be32(&mut b, aut + 16, len);
    (b, entry, len)
}

#[test]
fn inspect_agrees_with_live_csf_parser() {
    for set in SETS {
        let image = signed_bin(set.name);
        let Some(run) = run_csf_parser(&image) else {
            println!("skipped: csf_parser is not on PATH (Debian package imx-code-signing-tool)");
            return;
        };
        let fuse = read_fixture(set.name, "srk_fuse.bin");
        compare(
            &format!("{} (live csf_parser)", set.name),
            &image,
            &run.path().join("output"),
            Some(&fuse),
        );

        let json = common::inspect_json(&image, &[]);
        let (bytes, entry, len) = modified(set.name, &json);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("modified.bin");
        std::fs::write(&path, &bytes).expect("write modified image");
        let run = run_csf_parser(&path).expect("csf_parser ran a moment ago");
        let out = run.path().join("output");
        // The changes are visible to both tools, so the comparison below is not the recorded one.
        let parsed = String::from_utf8_lossy(&read(&out.join("parsed_output.txt"))).into_owned();
        assert!(
            parsed.contains(&format!("0x{len:X}")),
            "{}: csf_parser does not show the changed block length {len:#x}",
            set.name
        );
        let ours = common::inspect_json(&path, &[]);
        assert_eq!(
            num(&ours, "/fit/ivt/entry"),
            u64::from(entry),
            "{}",
            set.name
        );
        assert_eq!(
            num(&ours, "/fit/csf/commands/4/blocks/0/length"),
            u64::from(len),
            "{}",
            set.name
        );
        assert_eq!(num(&ours, "/fit/csf/commands/3/target"), 3, "{}", set.name);
        compare(
            &format!("{} (live csf_parser, modified image)", set.name),
            &path,
            &out,
            Some(&fuse),
        );
    }
}
