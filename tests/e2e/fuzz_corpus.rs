//! The fuzz targets' seed corpus as ordinary tests on stable. The fuzz
//! workspace (fuzz/) needs nightly and cargo fuzz, so CI does not fuzz; it
//! runs here, through the very harness the targets call (fuzz/harness.rs),
//! every committed seed (fuzz/seeds/<target>/, written by
//! fuzz/make_seeds.py) and every capture fixture of tests/fixtures, so that
//! neither the harness nor a once-fixed input can rot.

use std::path::{Path, PathBuf};

#[path = "../../fuzz/harness.rs"]
mod harness;

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The seeds of `target`, then the capture fixtures.
fn corpus(target: &str) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let seeds = files_in(&root().join("fuzz/seeds").join(target));
    let fixtures: Vec<PathBuf> = files_in(&root().join("tests/fixtures"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    assert!(seeds.len() >= 5, "{target}: seeds missing: {seeds:?}");
    assert!(fixtures.len() >= 5, "fixtures missing: {fixtures:?}");
    (seeds, fixtures)
}

/// Runs `one` on `input`, naming the file when it panics.
fn run(name: &Path, input: &[u8], one: fn(&[u8])) {
    if std::panic::catch_unwind(|| one(input)).is_err() {
        panic!(
            "the fuzz harness panicked on {} ({} bytes)",
            name.display(),
            input.len()
        );
    }
}

#[test]
fn reader_seeds_and_fixtures() {
    let (seeds, fixtures) = corpus("reader");
    for file in seeds.iter().chain(&fixtures) {
        let bytes = std::fs::read(file).unwrap();
        run(file, &bytes, harness::reader);
        // Every prefix of a fixture is a capture cut short somewhere.
        if fixtures.contains(file) {
            for cut in 0..bytes.len() {
                run(file, &bytes[..cut], harness::reader);
            }
        }
    }
}

#[test]
fn analyze_seeds_and_fixtures_with_every_option_byte() {
    let (seeds, fixtures) = corpus("analyze");
    for file in &seeds {
        run(file, &std::fs::read(file).unwrap(), harness::analyze);
    }
    // A fixture becomes an input of the analyze target behind an option
    // byte; every framing, bound and port choice, at two widths.
    for file in &fixtures {
        let bytes = std::fs::read(file).unwrap();
        for pick in (0u8..16).chain([0xF0, 0xFF]) {
            let mut input = vec![pick];
            input.extend_from_slice(&bytes);
            run(file, &input, harness::analyze);
        }
    }
}
