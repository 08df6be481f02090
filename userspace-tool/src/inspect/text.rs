//! Text rendering of the inspect report.

use std::fmt::Write;

use imx_hab::codes;

use super::model::{CommandReport, CsfReport, FitReport, IvtReport, RecordReport, Report};

/// Renders `r` as the human-readable report.
pub fn render(r: &Report) -> String {
    let mut o = String::new();
    // Writing to a String cannot fail.
    let _ = write_report(&mut o, r);
    o
}

fn write_report(o: &mut String, r: &Report) -> std::fmt::Result {
    writeln!(o, "{}: {} ({} bytes)", r.file, r.kind, r.size)?;
    if let Some(spl) = &r.spl {
        writeln!(o, "\nSPL")?;
        write_ivt(o, &spl.ivt, "  ")?;
        if let Some(bd) = &spl.boot_data {
            writeln!(
                o,
                "  boot data at {:#x}: start {:#010x} size {:#x} plugin {}",
                bd.offset, bd.start, bd.size, bd.plugin
            )?;
        }
        match (&spl.csf, spl.csf_slot_offset) {
            (Some(csf), _) => write_csf(o, csf, "  ")?,
            (None, Some(at)) => {
                writeln!(o, "  CSF slot at {at:#x} is empty: the SPL is not signed")?
            }
            (None, None) => writeln!(o, "  no CSF: the SPL is not signed")?,
        }
    }
    write_fit(o, &r.fit)
}

fn write_fit(o: &mut String, f: &FitReport) -> std::fmt::Result {
    writeln!(
        o,
        "\nFIT at {:#x}: totalsize {:#x}, {}",
        f.offset,
        f.totalsize,
        if f.signed { "signed" } else { "not signed" }
    )?;
    if let Some(d) = &f.description {
        writeln!(o, "  description: {d}")?;
    }
    if let Some(l) = f.load_address {
        writeln!(o, "  signed for load address {l:#x}")?;
    }
    writeln!(o, "  images:")?;
    for i in &f.images {
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        let addr = |v: Option<u64>| v.map_or("-".into(), |a| format!("{a:#x}"));
        writeln!(
            o,
            "    {:<10} type {:<9} arch {:<6} os {:<22} load {:<11} entry {:<11} data {:#x}+{:#x}{}",
            i.name,
            opt(&i.image_type),
            opt(&i.arch),
            opt(&i.os),
            addr(i.load),
            addr(i.entry),
            i.data_offset,
            i.data_size,
            if i.embedded { "" } else { " (external)" }
        )?;
    }
    if let Some(c) = &f.configuration {
        let none = || "-".to_owned();
        writeln!(
            o,
            "  default configuration {}: firmware {}, loadables [{}], fdt {}{}, epoch {}",
            c.name,
            c.firmware.clone().unwrap_or_else(none),
            c.loadables.join(", "),
            c.fdt.clone().unwrap_or_else(none),
            c.kernel
                .as_ref()
                .map(|k| format!(", kernel {k}"))
                .unwrap_or_default(),
            c.rollback_index
                .map_or("0 (no rollback-index)".to_owned(), |e| e.to_string())
        )?;
    }
    if let Some(ivt) = &f.ivt {
        write_ivt(o, ivt, "  ")?;
    }
    if let Some(csf) = &f.csf {
        write_csf(o, csf, "  ")?;
    }
    Ok(())
}

fn write_ivt(o: &mut String, v: &IvtReport, p: &str) -> std::fmt::Result {
    writeln!(
        o,
        "{p}IVT at {:#x}: header {:#010X} (tag 0xD1, length 0x20, version {:#04x})",
        v.offset, v.header, v.version
    )?;
    writeln!(
        o,
        "{p}  entry {:#010x}  reserved1 {:#x}  dcd {:#x}  boot_data {:#x}  self {:#010x}  csf {:#010x}  reserved2 {:#x}",
        v.entry, v.reserved1, v.dcd, v.boot_data, v.self_addr, v.csf, v.reserved2
    )
}

fn name_of(code: u8, f: fn(u8) -> Option<&'static str>) -> String {
    match f(code) {
        Some(n) => format!("{code:#04x} ({n})"),
        None => format!("{code:#04x}"),
    }
}

fn write_command(o: &mut String, c: &CommandReport, p: &str) -> std::fmt::Result {
    write!(
        o,
        "{p}  +{:#05x} {:<18} len {:#04x}",
        c.csf_offset, c.name, c.length
    )?;
    if let Some(f) = c.flags {
        write!(o, "  flags {f:#04x}")?;
        if c.tag == codes::CMD_INS_KEY && f != 0 {
            write!(
                o,
                " [{}]",
                codes::install_key_flag_names(f)
                    .collect::<Vec<_>>()
                    .join("|")
            )?;
        }
    }
    if let Some(k) = c.key {
        write!(o, "  key {k}")?;
    }
    if let Some(v) = c.protocol {
        write!(o, "  pcl {}", name_of(v, codes::protocol_name))?;
    }
    if let Some(v) = c.algorithm {
        write!(o, "  alg {}", name_of(v, codes::algorithm_name))?;
    }
    if let Some(v) = c.source {
        write!(o, "  src {v}")?;
    }
    if let Some(v) = c.target {
        write!(o, "  tgt {v}")?;
    }
    if let Some(v) = c.key_dat {
        write!(o, "  key_dat +{v:#x}")?;
    }
    if let Some(v) = c.engine {
        write!(o, "  eng {}", name_of(v, codes::engine_name))?;
    }
    if let Some(v) = c.engine_config {
        write!(o, "  cfg {v:#04x}")?;
    }
    if let Some(v) = c.aut_start {
        write!(o, "  sig +{v:#x}")?;
    }
    if let Some(w) = &c.words {
        write!(
            o,
            "  words [{}]",
            w.iter()
                .map(|x| format!("{x:#x}"))
                .collect::<Vec<_>>()
                .join(", ")
        )?;
    }
    if let Some(m) = c.mid {
        write!(
            o,
            "  MID bank {} row {} bit {} fuses {}",
            m[0], m[1], m[2], m[3]
        )?;
    }
    if let (Some(a), Some(m)) = (c.address, c.mask) {
        write!(
            o,
            "  width {}  address {a:#010x} mask {m:#010x}",
            c.width.unwrap_or(0)
        )?;
        if let Some(n) = c.count {
            write!(o, " count {n}")?;
        }
    }
    if let Some(pairs) = &c.pairs {
        for (a, v) in pairs {
            write!(o, "  [{a:#010x}] = {v:#010x}")?;
        }
    }
    if let Some(h) = &c.hash {
        write!(o, "  hash {h}")?;
    }
    writeln!(o)?;
    if let Some(blocks) = &c.blocks {
        for (i, b) in blocks.iter().enumerate() {
            writeln!(
                o,
                "{p}         block {i}: {:#010x}+{:#x}",
                b.start, b.length
            )?;
        }
    }
    Ok(())
}

fn write_record(o: &mut String, r: &RecordReport, p: &str) -> std::fmt::Result {
    writeln!(
        o,
        "{p}  +{:#05x} {} (tag {:#04x}, length {:#x}, version {:#04x})",
        r.csf_offset, r.role, r.tag, r.length, r.version
    )?;
    if let Some(t) = &r.srk_table {
        for k in &t.keys {
            let mark = if usize::from(t.installed_index) == k.index {
                " <- installed"
            } else {
                ""
            };
            writeln!(
                o,
                "{p}         SRK{} [{}] {}{}  digest {}{mark}",
                k.index + 1,
                k.index,
                k.key,
                if k.ca { ", CA" } else { "" },
                k.digest
            )?;
        }
    }
    if let Some(c) = &r.certificate {
        writeln!(o, "{p}         subject {}", c.subject)?;
        writeln!(o, "{p}         issuer  {}  serial {}", c.issuer, c.serial)?;
        writeln!(
            o,
            "{p}         key {}{}, signed with {} ({} bytes), DER {} bytes",
            c.key,
            if c.ca { ", CA" } else { "" },
            c.signature_algorithm,
            c.signature_length,
            c.der_length
        )?;
    }
    if let Some(s) = &r.signature {
        writeln!(
            o,
            "{p}         CMS SignedData{}, signer {} serial {}",
            if s.detached { " (detached)" } else { "" },
            s.signer_issuer,
            s.signer_serial
        )?;
        writeln!(
            o,
            "{p}         digest {}, {} value {} bytes, DER {} bytes",
            s.digest_algorithm, s.signature_algorithm, s.signature_length, s.der_length
        )?;
        if let Some(md) = &s.message_digest {
            writeln!(o, "{p}         messageDigest {md}")?;
        }
    }
    Ok(())
}

fn write_csf(o: &mut String, c: &CsfReport, p: &str) -> std::fmt::Result {
    writeln!(
        o,
        "{p}CSF at {:#x}: version {:#04x} (HAB {}.{}), header+commands {:#x} bytes, records end at +{:#x}",
        c.offset,
        c.version,
        c.version >> 4,
        c.version & 0xF,
        c.length,
        c.extent
    )?;
    writeln!(o, "{p}  commands:")?;
    for cmd in &c.commands {
        write_command(o, cmd, p)?;
    }
    writeln!(o, "{p}  records:")?;
    for r in &c.records {
        write_record(o, r, p)?;
    }
    if let (Some(h), Some(w)) = (&c.srk_hash, &c.srk_fuse_words) {
        writeln!(o, "{p}SRK hash {h}")?;
        writeln!(
            o,
            "{p}  fuse words (bank 6 w0-3, bank 7 w0-3): {}",
            w.iter()
                .map(|x| format!("{x:08X}"))
                .collect::<Vec<_>>()
                .join(" ")
        )?;
    }
    Ok(())
}
