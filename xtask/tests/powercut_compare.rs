//! `cargo xtask powercut-compare --quick` (issue 13), the default test's version: the four
//! writers run for real under strace from every starting state, a sample of their cut points
//! judged by the shim's judgement, one real SIGKILL cut per run checked against the replay.
//! The README's table comes from the full run (`cargo xtask powercut-compare`).

use xtask::powercut::{Options, Row, Start, Writer, build_ubootctl, run, table};

fn row(rows: &[Row], w: Writer, s: Start) -> &Row {
    rows.iter()
        .find(|r| r.writer == w && r.start == s)
        .expect("every writer runs from every state")
}

#[test]
fn the_comparison_separates_ubootctl_from_the_writers_that_brick() {
    let out = tempfile::Builder::new()
        .prefix("powercut-compare-")
        .tempdir()
        .unwrap();
    let rows = run(&Options {
        out: out.path().to_path_buf(),
        quick: true,
        ubootctl: build_ubootctl().unwrap_or_else(|e| panic!("{e}")),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    println!("{}", table(&rows));
    assert_eq!(rows.len(), Writer::ALL.len() * Start::ALL.len());
    for r in &rows {
        assert!(r.real_cuts >= 1 && r.judged >= 1, "{r:?}");
        if matches!(r.writer, Writer::Ubootctl | Writer::RaucHook) {
            assert_eq!((r.no_bootable, r.only_never_booted), (0, 0), "{r:?}");
        }
    }
    // RAUC's boot-raw-fallback rewrites the only good copy first when the primary's header
    // still looks like data; it writes the primary first when that block is blank.
    for s in [Start::FitCorrupt, Start::IvtZeroed] {
        assert!(row(&rows, Writer::RaucBootRawFallback, s).no_bootable > 0);
    }
    assert_eq!(
        row(&rows, Writer::RaucBootRawFallback, Start::FirstBlockZeroed).no_bootable,
        0
    );
    // From a healthy device it never bricks, but both halves end up holding the new image.
    let healthy = row(&rows, Writer::RaucBootRawFallback, Start::Healthy);
    assert_eq!(healthy.no_bootable, 0);
    assert!(healthy.only_never_booted > 0);
    // AN12900's first dd copies a broken primary over the good secondary.
    assert!(row(&rows, Writer::An12900Dd, Start::FitCorrupt).no_bootable > 0);
    assert_eq!(row(&rows, Writer::An12900Dd, Start::Healthy).no_bootable, 0);
}
