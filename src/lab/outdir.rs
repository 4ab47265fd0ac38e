//! Where a lab run writes its results, without ever touching an earlier
//! run's.
//!
//! `--out DIR` (default `reqresp-lab`) holds one folder per complete run,
//! named after the time it started (`2026-11-30T072253Z`, UTC), and a
//! symbolic link `latest` to the newest one:
//!
//! ```text
//! reqresp-lab/
//!   2026-11-30T071502Z/   report.html reqresp.pcap report.txt report.json ladder.svg
//!   2026-11-30T072253Z/   ...
//!   latest -> 2026-11-30T072253Z
//! ```
//!
//! A run builds its files in a hidden `.<stamp>.partial/` folder and renames
//! it into place only once every file is written ([`RunDir::commit`]), so a
//! folder with a plain name is always a complete run. An interrupted or
//! failed run, or one that captured nothing, removes its partial folder
//! when the [`RunDir`] is dropped; a run killed with SIGKILL leaves only
//! the hidden `.partial` folder, which does not look like a result.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The name of the link to the newest complete run.
pub(crate) const LATEST: &str = "latest";

/// One run's output folder while it is being written.
#[derive(Debug)]
pub(crate) struct RunDir {
    base: PathBuf,
    name: String,
    partial: PathBuf,
    committed: bool,
}

impl RunDir {
    /// Creates `base` if needed and a fresh partial folder in it for a run
    /// starting now.
    pub fn create(base: &Path) -> std::io::Result<RunDir> {
        std::fs::create_dir_all(base)?;
        let stamp = stamp(SystemTime::now());
        // Two runs in one second get `-2`, `-3`, ...: creating the partial
        // folder is atomic, and a name is taken only when its final folder
        // does not exist either.
        for n in 1..1000u32 {
            let name = if n == 1 {
                stamp.clone()
            } else {
                format!("{stamp}-{n}")
            };
            if base.join(&name).exists() {
                continue;
            }
            let partial = base.join(format!(".{name}.partial"));
            match std::fs::create_dir(&partial) {
                Ok(()) => {
                    return Ok(RunDir {
                        base: base.to_path_buf(),
                        name,
                        partial,
                        committed: false,
                    });
                }
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(err),
            }
        }
        Err(std::io::Error::other(format!(
            "more than 999 runs started in the second {stamp}"
        )))
    }

    /// The folder the run writes into now.
    pub fn path(&self) -> &Path {
        &self.partial
    }

    /// Where the run's files are once it is complete: `base/<stamp>`.
    pub fn final_path(&self) -> PathBuf {
        self.base.join(&self.name)
    }

    /// The `latest` link in the base folder.
    pub fn latest(&self) -> PathBuf {
        self.base.join(LATEST)
    }

    /// Moves the finished run into place and points `latest` at it; returns
    /// its final folder. The link is replaced atomically (a new link renamed
    /// over the old one), so `latest` always names a complete run.
    pub fn commit(mut self) -> std::io::Result<PathBuf> {
        let done = self.final_path();
        std::fs::rename(&self.partial, &done)?;
        self.committed = true;
        let latest = self.latest();
        if latest.exists() && !latest.is_symlink() {
            // A real file or folder of that name is the user's: leave it.
            return Ok(done);
        }
        let tmp = self.base.join(format!(".{LATEST}.{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&self.name, &tmp)?;
        std::fs::rename(&tmp, &latest)?;
        Ok(done)
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.partial);
        }
    }
}

/// How to render a run's `report.html`: titled with the capture's final
/// path, which the page's "open in Wireshark" commands use (`wireshark -r
/// PATH`).
pub(crate) fn html_options(pcap: &Path) -> crate::report::RenderOptions {
    crate::report::RenderOptions {
        title: Some(pcap.display().to_string()),
        ..crate::report::RenderOptions::default()
    }
}

/// What a run's file is for, as printed after its path ("" when it says
/// itself).
pub(crate) fn describe(file: &str) -> &'static str {
    match file {
        "report.html" => "  (open this one in a browser: the interactive report)",
        "reqresp.pcap" => "  (the capture, for Wireshark or tcpdump -r)",
        "report.txt" => "  (the ladder and summary as printed above)",
        "report.json" => "  (the analysis for programs; docs/json-schema.md)",
        "ladder.svg" => "  (the ladder as a picture)",
        "scenario.json" => {
            "  (what each client sent, got and printed, and how each fault was made)"
        }
        _ => "",
    }
}

/// Under sudo, hands a complete run to the user who ran sudo (the base
/// folder, the run's folder, every file in it and the `latest` link), so
/// Wireshark and a browser open it without root.
pub(crate) fn give_to_sudo_user(base: &Path, dir: &Path, latest: &Path) {
    let id = |var| std::env::var(var).ok().and_then(|v| v.parse::<u32>().ok());
    let (Some(uid), Some(gid)) = (id("SUDO_UID"), id("SUDO_GID")) else {
        return;
    };
    let files = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|entry| entry.path());
    for path in [base.to_path_buf(), dir.to_path_buf()]
        .into_iter()
        .chain(files)
    {
        let _ = std::os::unix::fs::chown(&path, Some(uid), Some(gid));
    }
    let _ = std::os::unix::fs::lchown(latest, Some(uid), Some(gid));
}

/// The folder `latest` points at in `base`, if it is a link to a folder.
pub(crate) fn latest_run(base: &Path) -> Option<PathBuf> {
    let link = base.join(LATEST);
    let target = std::fs::read_link(&link).ok()?;
    let dir = base.join(target);
    dir.is_dir().then_some(dir)
}

/// `2026-11-30T072253Z`: UTC, sortable, no `:` (which some file systems
/// and `scp` treat specially).
pub(crate) fn stamp(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}{:02}{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Year, month, day of a count of days since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, exact for the proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn stamps_are_utc_and_sortable() {
        assert_eq!(stamp(UNIX_EPOCH), "1970-01-01T000000Z");
        // 2000-02-29 12:34:56 UTC: a leap day in a century leap year.
        let t = UNIX_EPOCH + Duration::from_secs(951_827_696);
        assert_eq!(stamp(t), "2000-02-29T123456Z");
        // 2026-11-30 07:22:53 UTC.
        let t = UNIX_EPOCH + Duration::from_secs(1_796_023_373);
        assert_eq!(stamp(t), "2026-11-30T072253Z");
        assert!(stamp(t) > stamp(t - Duration::from_secs(1)));
    }

    #[test]
    fn a_committed_run_gets_its_folder_and_latest_and_keeps_the_earlier_one() {
        let base = tempfile::tempdir().unwrap();
        let first = RunDir::create(base.path()).unwrap();
        std::fs::write(first.path().join("report.txt"), "one").unwrap();
        let first = first.commit().unwrap();
        let second = RunDir::create(base.path()).unwrap();
        assert_ne!(second.final_path(), first, "two runs in one second");
        std::fs::write(second.path().join("report.txt"), "two").unwrap();
        let second = second.commit().unwrap();
        assert_eq!(
            std::fs::read_to_string(first.join("report.txt")).unwrap(),
            "one"
        );
        assert_eq!(latest_run(base.path()).unwrap(), second);
        assert_eq!(
            std::fs::read_to_string(base.path().join("latest/report.txt")).unwrap(),
            "two"
        );
    }

    #[test]
    fn an_uncommitted_run_leaves_nothing_and_latest_unchanged() {
        let base = tempfile::tempdir().unwrap();
        let kept = RunDir::create(base.path()).unwrap().commit().unwrap();
        let run = RunDir::create(base.path()).unwrap();
        std::fs::write(run.path().join("reqresp.pcap"), [0u8; 24]).unwrap();
        drop(run);
        let names: Vec<_> = std::fs::read_dir(base.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert_eq!(latest_run(base.path()).unwrap(), kept);
    }

    #[test]
    fn a_real_latest_folder_of_the_user_is_left_alone() {
        let base = tempfile::tempdir().unwrap();
        std::fs::create_dir(base.path().join(LATEST)).unwrap();
        let done = RunDir::create(base.path()).unwrap().commit().unwrap();
        assert!(done.is_dir());
        assert!(!base.path().join(LATEST).is_symlink());
    }
}
