//! Update benchmark (issue 5, item 7): `ubootctl`'s update of a 2 MiB-slot signed image against
//! NXP AN12900's two `dd` commands, on the same target, on a regular file and on a loop device.
//!
//! Run with `cargo bench -p ubootctl --bench update`. Each case starts from the same medium:
//! running slot 1, an authentic primary (version 1), a secondary that differs (version 0) behind
//! a valid SIT, so that the AN12900 rule writes both copies. Ours is the library pipeline the CLI
//! runs (open with the lock and O_DIRECT, verify the new image, read and judge the medium, plan,
//! write header-last with flushes, read every copy back bypassing the page cache and compare by
//! SHA-256). AN12900's is
//! `dd if=DEV of=DEV bs=1k count=2048 skip=33 seek=2081; dd if=new.bin of=DEV bs=1K seek=33 && sync`
//! as real processes. Medians over several runs; one line per target with the ratio. Before
//! every timed run the target's page cache is dropped (`UBOOTCTL_BENCH_CACHE=warm`: filled),
//! so that both tools start from the same cache state.

#[path = "../tests/medium/mod.rs"]
mod medium;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use boot_core::policy::Slot;
use medium::{Layout, board, fuses, image, write_layout};
use ubootctl::blockdev::{BlockDevice, FileDevice};
use ubootctl::exec::{self, ExecOptions, NoProgress};

const RUNS: usize = 9;

/// The new image: version 2 of the test flash.bin (about 0.7 MiB: fake SPL area + signed FIT)
/// padded with a non-zero pattern to the full 2 MiB slot, so that both tools write 2 MiB of new
/// image. (The copy of the running primary to the secondary is 0.7 MiB for ubootctl, which
/// copies the primary's authentic extent, and 2 MiB for AN12900's `dd count=2048`.)
fn new_image() -> &'static [u8] {
    static IMG: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    IMG.get_or_init(|| {
        let mut v = image(2).to_vec();
        let slot = ubootctl::media::slot_bytes(&board().media) as usize;
        v.extend((v.len()..slot).map(|i| (i % 251) as u8 | 1));
        v
    })
}

/// Lays the starting medium onto `dev`, makes it durable, and puts the target's page cache in
/// the same state for both tools: cold (dropped, what a device's raw boot area is after boot)
/// or, with `UBOOTCTL_BENCH_CACHE=warm`, the whole target read into it.
fn reset(dev: &Path) {
    lay_out(dev);
    let f = std::fs::File::open(dev).expect("open the target");
    f.sync_all().unwrap();
    rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed).unwrap();
    if std::env::var_os("UBOOTCTL_BENCH_CACHE").is_some_and(|v| v == "warm") {
        std::io::copy(&mut &f, &mut std::io::sink()).unwrap();
    }
}

fn lay_out(dev: &Path) {
    let mut d = FileDevice::open(dev).expect("open the target");
    let zero = vec![0u8; 0x40_0000];
    d.write_at(0x8000, &zero).unwrap();
    write_layout(
        &mut d,
        Layout {
            primary: Some(image(1)),
            secondary: Some(image(0)),
            sit: true,
        },
    );
    d.flush().unwrap();
}

fn ours(dev: &Path) -> Duration {
    let t = Instant::now();
    let mut d = FileDevice::open(dev).expect("open the target");
    let out = exec::update(
        &mut d,
        board(),
        &fuses(),
        new_image().to_vec(),
        Some(Slot::Primary),
        &ExecOptions::default(),
        &mut NoProgress,
    )
    .expect("update");
    drop(d);
    let el = t.elapsed();
    assert_eq!(out.plan.regions_written().len(), 2, "both copies written");
    el
}

fn dd(args: &[String]) {
    let st = Command::new("dd")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run dd");
    assert!(st.success(), "dd {args:?}");
}

fn an12900(dev: &Path, new: &Path) -> Duration {
    let dev = dev.display().to_string();
    let t = Instant::now();
    dd(&[
        format!("if={dev}"),
        format!("of={dev}"),
        "bs=1k".into(),
        "count=2048".into(),
        "skip=33".into(),
        "seek=2081".into(),
        "conv=notrunc".into(),
    ]);
    dd(&[
        format!("if={}", new.display()),
        format!("of={dev}"),
        "bs=1K".into(),
        "seek=33".into(),
        "conv=notrunc".into(),
    ]);
    let st = Command::new("sync").status().expect("run sync");
    assert!(st.success());
    t.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Times both on `dev`, alternating, and prints the line.
fn compare(what: &str, dev: &Path, new: &Path) {
    // Warm-up: page cache, the signer's cached images, dd's binary.
    reset(dev);
    ours(dev);
    reset(dev);
    an12900(dev, new);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        reset(dev);
        a.push(ours(dev));
        reset(dev);
        b.push(an12900(dev, new));
    }
    let (a, b) = (median(a), median(b));
    println!(
        "update {:.1} MiB image, {what}: ubootctl {:.1} ms, AN12900 dd {:.1} ms, ratio {:.2}x (goal <= 1.0x)",
        new_image().len() as f64 / (1 << 20) as f64,
        ms(a),
        ms(b),
        ms(a) / ms(b)
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported and is ignored.
    let dir = tempfile::tempdir_in(
        std::env::var_os("UBOOTCTL_BENCH_DIR")
            .unwrap_or_else(|| std::env::temp_dir().into_os_string()),
    )
    .expect("temporary directory");
    let new = dir.path().join("new.bin");
    std::fs::write(&new, new_image()).unwrap();
    let file = dir.path().join("sd.img");
    std::fs::write(&file, vec![0u8; 8 << 20]).unwrap();
    println!(
        "target: {} (8 MiB), image {} bytes, {RUNS} runs each, medians",
        file.display(),
        new_image().len()
    );
    compare("file", &file, &new);

    let backing = dir.path().join("loop.img");
    std::fs::write(&backing, vec![0u8; 8 << 20]).unwrap();
    match medium::Loop::attach(&backing) {
        Ok(lo) => compare(&format!("loop {}", lo.0), Path::new(&lo.0), &new),
        Err(why) => println!("loop device: skipped: {why}"),
    }
}
