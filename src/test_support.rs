//! Helpers for the library's own unit tests (compiled only under `cfg(test)`).
//!
//! The end-to-end tests have theirs in `tests/e2e/support.rs`; unit tests
//! cannot reach that file, so the one rule both must share lives here too:
//! a test that cannot run says so visibly, and with `REQRESP_NO_SKIP=1` (set
//! by `.ci/run`, where every tool is installed and the tests run as root) a
//! skip is a failure, because there it means the environment is broken.

/// The environment variable that turns every skip into a failure.
pub(crate) const NO_SKIP: &str = "REQRESP_NO_SKIP";

/// True when `REQRESP_NO_SKIP` asks for skips to fail (set and not `0` or empty).
pub(crate) fn skips_fail() -> bool {
    std::env::var(NO_SKIP).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Reports that the calling test cannot run here, for `why`; use as
/// `if !cond { return skip("why"); }`. Written to the stderr handle
/// directly: the harness captures `eprintln!` of passing tests, which would
/// hide the skip.
///
/// # Panics
/// When `REQRESP_NO_SKIP` is set: the skip becomes the test's failure.
pub(crate) fn skip(why: &str) {
    if skips_fail() {
        panic!("{NO_SKIP} is set, so this skip is a failure: {why}");
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
}
