//! Helpers for the library's own unit tests (compiled only under `cfg(test)`).
//!
//! The rule every test that cannot run follows, in the unit tests and (this
//! file is a module of `tests/e2e/support.rs` too, by `#[path]`) in the
//! end-to-end tests: it says so visibly, and with `REQRESP_NO_SKIP=1` (set
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Only a subject for the test below: skips when `REQRESP_SKIP_PROBE` is set.
    #[test]
    fn skip_probe() {
        if std::env::var_os("REQRESP_SKIP_PROBE").is_some() {
            skip("probe");
        }
    }

    #[test]
    fn no_skip_makes_a_skip_fail_and_without_it_the_skip_is_visible() {
        // The probe's name in whichever test binary holds this file (the
        // library's or the end-to-end tests'): its path without the crate.
        let (_crate, here) = module_path!().split_once("::").expect("inside a crate");
        let probe = format!("{here}::skip_probe");
        let run = |no_skip: bool| {
            let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
            cmd.args(["--exact", &probe]).env("REQRESP_SKIP_PROBE", "1");
            if no_skip {
                cmd.env(NO_SKIP, "1");
            } else {
                cmd.env_remove(NO_SKIP);
            }
            let out = cmd.output().expect("run the test binary");
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            (out.status.success(), all)
        };
        let (ok, out) = run(true);
        assert!(!ok, "with {NO_SKIP}=1 the skip must fail:\n{out}");
        assert!(out.contains("so this skip is a failure: probe"), "{out}");
        let (ok, out) = run(false);
        assert!(ok, "without {NO_SKIP} a skip passes:\n{out}");
        assert!(
            out.contains("SKIPPED: probe") && out.contains("1 passed"),
            "{out}"
        );
    }
}
