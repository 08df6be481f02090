//! `cargo bench -p imx-hab --features sign --bench hab` (run by `cargo xtask bench`).
//!
//! Verification of a 2 MiB signed FIT by the software HAB4 verifier against the same checks
//! done with stock `openssl` on the same bytes (`openssl dgst -sha256` of the signed block plus
//! `openssl cms -verify` of the CSF and image signatures), and SHA-256 throughput against
//! `sha256sum`. Figures are medians of several runs, printed; the goal is at most 1.5x openssl.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use dtoolkit::model::{DeviceTree, DeviceTreeNode, DeviceTreeProperty};
use imx_hab::csf::Referenced;
use imx_hab::hab::Fuses;
use imx_hab::hab::software::verify;
use imx_hab::image::SignedFit;
use imx_hab::sign::{Pki, SignOptions, TestPkiOptions, sign_fit};
use sha2::{Digest, Sha256};

const LOAD: u32 = 0x4400_0000;
const RUNS: usize = 15;

/// Deterministic filler (xorshift) so the payload does not compress or repeat.
fn payload(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

fn prop<T: dtoolkit::ToPropertyValue>(name: &str, v: T) -> DeviceTreeProperty {
    DeviceTreeProperty::new(name, v).expect("valid property")
}

fn node(name: &str) -> dtoolkit::model::DeviceTreeNodeBuilder {
    DeviceTreeNode::builder(name).expect("valid node name")
}

/// A U-Boot-shaped FIT (uboot + atf + fdt, embedded data) of about `size` bytes.
fn fit(size: usize) -> Vec<u8> {
    let uboot = node("uboot")
        .property(prop("data", payload(size - 48 * 1024, 1)))
        .property(prop("type", "firmware"))
        .property(prop("arch", "arm64"))
        .property(prop("os", "u-boot"))
        .property(prop("compression", "none"))
        .property(prop("load", 0x4020_0000u32))
        .build();
    let atf = node("atf")
        .property(prop("data", payload(40 * 1024, 2)))
        .property(prop("type", "firmware"))
        .property(prop("arch", "arm64"))
        .property(prop("os", "arm-trusted-firmware"))
        .property(prop("compression", "none"))
        .property(prop("load", 0x0097_0000u32))
        .property(prop("entry", 0x0097_0000u32))
        .build();
    let conf = node("conf-1")
        .property(prop("firmware", "uboot"))
        .property(prop("loadables", "atf"))
        .build();
    let mut tree = DeviceTree::new();
    tree.root.add_property(prop("description", "bench FIT"));
    tree.root.add_property(prop("#address-cells", 1u32));
    tree.root
        .add_child(node("images").child(uboot).child(atf).build());
    tree.root.add_child(
        node("configurations")
            .property(prop("default", "conf-1"))
            .child(conf)
            .build(),
    );
    tree.to_dtb()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<F: FnMut() -> bool>(runs: usize, mut f: F) -> Option<Duration> {
    let mut v = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        if !f() {
            return None;
        }
        v.push(t.elapsed());
    }
    Some(median(v))
}

fn run(cmd: &mut Command) -> bool {
    cmd.output().map(|o| o.status.success()).unwrap_or(false)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let dir = tempdir();
    let pki = Pki::generate_p256(b"imx-hab bench", &TestPkiOptions::default()).expect("PKI");
    let fuses = Fuses::open_with(pki.srk_hash().expect("SRK hash"));
    let image = sign_fit(&fit(2 << 20), LOAD, &pki, &SignOptions::default()).expect("signed");
    let s = SignedFit::parse(&image).expect("parses");
    println!(
        "2 MiB verification: signed FIT of {} bytes, {} bytes signed",
        image.len(),
        s.ivt_offset + 0x20
    );

    verify(&image, LOAD.into(), &fuses).expect("verifies");
    let ours = time(RUNS, || verify(&image, LOAD.into(), &fuses).is_ok()).expect("verifies");
    println!("  imx-hab software verifier        {:>8.2} ms", ms(ours));

    // The same bytes as files for openssl: the signed block, the CSF commands, certificates and
    // CMS signatures (record bodies).
    let signed_len = (s.ivt_offset + 0x20) as usize;
    let data = dir.join("data.bin");
    let cmds = dir.join("csf_cmds.bin");
    std::fs::write(&data, &image[..signed_len]).unwrap();
    std::fs::write(&cmds, s.csf.signed_bytes()).unwrap();
    let mut certs = Vec::new();
    let mut sigs = Vec::new();
    for c in s.csf.commands() {
        match s.csf.referenced(&c) {
            Some(Referenced::Certificate(r)) => certs.push(r.certificate.der.to_vec()),
            Some(Referenced::Signature(r)) => sigs.push(r.signature.der.to_vec()),
            _ => {}
        }
    }
    let paths: Vec<_> = ["csfk.der", "imgk.der", "csf_sig.der", "img_sig.der"]
        .iter()
        .map(|n| dir.join(n))
        .collect();
    for (p, b) in paths.iter().zip(certs.iter().chain(sigs.iter())) {
        std::fs::write(p, b).unwrap();
    }
    for (der, pem) in [(&paths[0], "csfk.pem"), (&paths[1], "imgk.pem")] {
        let ok = run(Command::new("openssl")
            .args(["x509", "-inform", "DER", "-in"])
            .arg(der)
            .arg("-out")
            .arg(dir.join(pem)));
        if !ok {
            println!("  openssl not available: baseline skipped");
            return sha_bench(&dir);
        }
    }
    let cms = |sig: &Path, content: &Path, cert: &str| {
        run(Command::new("openssl")
            .args([
                "cms",
                "-verify",
                "-binary",
                "-inform",
                "DER",
                "-noverify",
                "-out",
                "/dev/null",
                "-in",
            ])
            .arg(sig)
            .arg("-content")
            .arg(content)
            .arg("-certfile")
            .arg(dir.join(cert)))
    };
    let openssl = time(RUNS, || {
        run(Command::new("openssl").args(["dgst", "-sha256"]).arg(&data))
            && cms(&paths[2], &cmds, "csfk.pem")
            && cms(&paths[3], &data, "imgk.pem")
    });
    // Process start-up dominates small openssl runs: measure it and report the net time too.
    let startup = time(RUNS, || run(Command::new("openssl").arg("version"))).unwrap_or_default();
    match openssl {
        Some(o) => {
            let net = o.saturating_sub(startup * 3);
            println!(
                "  openssl dgst + 2x cms -verify    {:>8.2} ms (three processes)",
                ms(o)
            );
            println!(
                "  openssl start-up                 {:>8.2} ms each (openssl version)",
                ms(startup)
            );
            println!("  openssl net of 3 start-ups       {:>8.2} ms", ms(net));
            let whole = ours.as_secs_f64() / o.as_secs_f64();
            println!("  ratio imx-hab / openssl (whole)  {whole:>8.2}x (goal <= 1.5x)");
            if !net.is_zero() {
                let r = ours.as_secs_f64() / net.as_secs_f64();
                println!("  ratio imx-hab / openssl (net)    {r:>8.2}x");
            }
        }
        None => println!("  openssl cms -verify failed: baseline skipped"),
    }
    sha_bench(&dir);
}

fn sha_bench(dir: &Path) {
    let len = 64 << 20;
    let buf = payload(len, 3);
    let file = dir.join("sha.bin");
    std::fs::write(&file, &buf).unwrap();
    let ours = time(5, || {
        std::hint::black_box(Sha256::digest(std::hint::black_box(&buf)));
        true
    })
    .expect("hashing cannot fail");
    let mbps = |d: Duration| len as f64 / d.as_secs_f64() / 1e6;
    println!("SHA-256 of 64 MiB:");
    println!(
        "  sha2 (imx-hab's backend)          {:>8.2} ms  {:>8.0} MB/s",
        ms(ours),
        mbps(ours)
    );
    let empty = dir.join("empty.bin");
    std::fs::write(&empty, b"").unwrap();
    let start = time(5, || run(Command::new("sha256sum").arg(&empty)));
    match (time(5, || run(Command::new("sha256sum").arg(&file))), start) {
        (Some(t), Some(st)) => {
            let net = t.saturating_sub(st);
            println!(
                "  sha256sum (whole process)         {:>8.2} ms  {:>8.0} MB/s",
                ms(t),
                mbps(t)
            );
            println!(
                "  sha256sum minus process start     {:>8.2} ms  {:>8.0} MB/s",
                ms(net),
                mbps(net)
            );
            let r = ours.as_secs_f64() / net.as_secs_f64();
            println!("  ratio sha2 / sha256sum (net)      {r:>8.2}x");
        }
        _ => println!("  sha256sum not available"),
    }
    if let Some(t) = time(5, || {
        run(Command::new("openssl").args(["dgst", "-sha256"]).arg(&file))
    }) {
        println!(
            "  openssl dgst -sha256 (process)    {:>8.2} ms  {:>8.0} MB/s",
            ms(t),
            mbps(t)
        );
    }
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("imx-hab-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}
