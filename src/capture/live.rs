//! The capture itself: open and filter the interface, then a read loop on a
//! thread that writes each packet to the savefile until it is told to stop.
//!
//! libpcap hands packets over in blocks (TPACKET_V3) that the kernel closes
//! when full or after [`BLOCK_TIMEOUT_MS`]; a packet reaches the file at most
//! that long after it was seen. The handle is read without blocking and the
//! loop waits on the socket with `poll` and a timeout, so it looks at its stop
//! flag, count and deadline several times a second even when no packet
//! arrives: stopping never hangs. Immediate mode was rejected: it switches
//! libpcap to fixed-size ring frames as large as the MTU, and on loopback
//! (MTU 65536) a 2 MB ring then holds 32 packets and drops the rest of a burst.

use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pcap::{Active, Linktype, Precision, Savefile};

use super::errors::{is_permission_message, output_io_error, pcap_message};
use super::{CaptureConfig, CaptureError, CaptureStats, TimestampPrecision};

/// The kernel closes a non-empty block of packets after this long.
const BLOCK_TIMEOUT_MS: i32 = 20;
/// How long the loop waits for a packet before it checks its flags again.
const POLL_TIMEOUT_MS: i32 = 100;
/// Buffered packets are flushed to the file at least this often.
const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// On a stop request, reading goes on this long: packets the kernel saw
/// before the stop are in a block it closes within [`BLOCK_TIMEOUT_MS`].
const DRAIN: Duration = Duration::from_millis(3 * BLOCK_TIMEOUT_MS as u64);

/// Starts live captures; see [`Capture::start`].
pub struct Capture;

/// State shared by the capture thread and its handle.
struct Shared {
    stop: AtomicBool,
    captured: AtomicU64,
    finished: AtomicBool,
}

/// A running capture. Dropping it stops the capture and closes the file.
pub struct CaptureHandle {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Result<CaptureStats, CaptureError>>>,
    link_type: String,
}

impl Capture {
    /// Opens `config.interface`, applies the filter, opens the output and
    /// starts writing packets on a new thread.
    ///
    /// When this returns `Ok`, the capture is active: every packet that
    /// matches the filter from now on is captured. Errors (no privilege,
    /// unknown interface, bad filter, unwritable output) are reported here,
    /// before any thread starts.
    pub fn start(config: CaptureConfig) -> Result<CaptureHandle, CaptureError> {
        let mut cap = open(&config)?;
        apply_filter(&mut cap, &config)?;
        let savefile = open_output(&cap, &config.output)?;
        let link_type = link_type_name(cap.get_datalink());

        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            captured: AtomicU64::new(0),
            finished: AtomicBool::new(false),
        });
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("capture-{}", config.interface))
            .spawn(move || {
                let result = run_loop(cap, savefile, &config, &thread_shared);
                thread_shared.finished.store(true, Ordering::Release);
                result
            })
            .map_err(|err| CaptureError::Thread(err.to_string()))?;
        Ok(CaptureHandle {
            shared,
            thread: Some(thread),
            link_type,
        })
    }
}

/// Opens `config.interface` for a reader of its own (`reqresp watch`): the
/// same handle as [`Capture::start`] (snaplen, buffer, precision, filter,
/// with its errors), non-blocking, and when `write` the savefile
/// `config.output`, created as [`Capture::start`] creates it.
pub fn open_live(
    config: &CaptureConfig,
    write: bool,
) -> Result<(pcap::Capture<Active>, Option<Savefile>), CaptureError> {
    let mut cap = open(config)?;
    apply_filter(&mut cap, config)?;
    let savefile = if write {
        Some(open_output(&cap, &config.output)?)
    } else {
        None
    };
    let cap = cap.setnonblock().map_err(|err| CaptureError::Open {
        interface: config.interface.clone(),
        message: pcap_message(&err),
    })?;
    Ok((cap, savefile))
}

impl CaptureHandle {
    /// Packets written so far.
    pub fn captured(&self) -> u64 {
        self.shared.captured.load(Ordering::Relaxed)
    }

    /// The link-layer header type of the file, as libpcap names it
    /// (`EN10MB`, `LINUX_SLL2`, ...).
    pub fn link_type(&self) -> &str {
        &self.link_type
    }

    /// True once the capture has ended by itself (count or duration reached,
    /// or a read error); [`CaptureHandle::stop`] then returns at once.
    pub fn is_finished(&self) -> bool {
        self.shared.finished.load(Ordering::Acquire)
    }

    /// Stops the capture, writes what the kernel already captured, flushes
    /// and closes the file and returns the counts. Returns within a few
    /// hundred milliseconds.
    pub fn stop(mut self) -> Result<CaptureStats, CaptureError> {
        self.finish()
    }

    /// Waits until the capture ends by itself (count or duration), then
    /// returns as [`CaptureHandle::stop`] does. Without a count or duration
    /// this waits until the interface fails.
    pub fn wait(mut self) -> Result<CaptureStats, CaptureError> {
        self.join()
    }

    fn finish(&mut self) -> Result<CaptureStats, CaptureError> {
        self.shared.stop.store(true, Ordering::Release);
        self.join()
    }

    fn join(&mut self) -> Result<CaptureStats, CaptureError> {
        let thread = self
            .thread
            .take()
            .ok_or_else(|| CaptureError::Thread("the capture was already stopped".into()))?;
        thread
            .join()
            .map_err(|_| CaptureError::Thread("the capture thread panicked".into()))?
    }
}

impl Drop for CaptureHandle {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.finish();
        }
    }
}

/// Compiles and sets `config.filter`, if any.
fn apply_filter(
    cap: &mut pcap::Capture<Active>,
    config: &CaptureConfig,
) -> Result<(), CaptureError> {
    if let Some(filter) = &config.filter {
        cap.filter(filter, true)
            .map_err(|err| CaptureError::BadFilter {
                filter: filter.clone(),
                message: pcap_message(&err),
            })?;
    }
    Ok(())
}

/// Creates and activates the pcap handle, sorting libpcap's failures into
/// the errors a user acts on.
fn open(config: &CaptureConfig) -> Result<pcap::Capture<Active>, CaptureError> {
    let interface = config.interface.as_str();
    let precision = match config.precision {
        TimestampPrecision::Micro => Precision::Micro,
        TimestampPrecision::Nano => Precision::Nano,
    };
    // libpcap takes the snaplen as a C int.
    let snaplen = i32::try_from(config.snaplen).unwrap_or(i32::MAX);
    let opened = pcap::Capture::from_device(interface).and_then(|inactive| {
        inactive
            .snaplen(snaplen)
            .promisc(config.promiscuous)
            .buffer_size(i32::try_from(config.buffer_bytes).unwrap_or(i32::MAX))
            .timeout(BLOCK_TIMEOUT_MS)
            .precision(precision)
            .open()
    });
    let mut cap = opened.map_err(|err| classify_open_error(interface, &err))?;
    if interface == "any" {
        prefer_sll2(&mut cap);
    }
    Ok(cap)
}

/// On `any`, libpcap 1.10 offers Linux cooked v2, which also records the
/// interface each packet was seen on; use it when it is there.
fn prefer_sll2(cap: &mut pcap::Capture<Active>) {
    let offers_sll2 = cap
        .list_datalinks()
        .is_ok_and(|links| links.contains(&Linktype::LINUX_SLL2));
    if offers_sll2 && cap.get_datalink() != Linktype::LINUX_SLL2 {
        // Keeping SLL v1 is fine when switching fails.
        let _ = cap.set_datalink(Linktype::LINUX_SLL2);
    }
}

fn classify_open_error(interface: &str, err: &pcap::Error) -> CaptureError {
    let message = pcap_message(err);
    // An unknown name is checked first: without privilege libpcap fails on
    // the socket before it looks at the name, and "get the capability" would
    // be the wrong advice for a typo.
    if let Ok(devices) = pcap::Device::list() {
        let available: Vec<String> = devices.into_iter().map(|d| d.name).collect();
        if !available.iter().any(|name| name == interface) {
            return CaptureError::UnknownInterface {
                interface: interface.to_string(),
                available,
            };
        }
    }
    if is_permission_message(&message) {
        CaptureError::NoPrivilege {
            interface: interface.to_string(),
            message,
        }
    } else {
        CaptureError::Open {
            interface: interface.to_string(),
            message,
        }
    }
}

fn open_output(cap: &pcap::Capture<Active>, path: &Path) -> Result<Savefile, CaptureError> {
    let output_error = |source| CaptureError::Output {
        path: path.to_path_buf(),
        source,
    };
    if path.as_os_str() == "-" {
        // libpcap's name for stdout.
        return cap
            .savefile("-")
            .map_err(|err| output_error(output_io_error(&err)));
    }
    if path.is_dir() {
        return Err(output_error(std::io::Error::other(
            "it is a directory; give a file name",
        )));
    }
    let file = create_private(path).map_err(output_error)?;
    use std::os::fd::IntoRawFd;
    // SAFETY: the descriptor was just opened and is handed over whole: the
    // savefile owns it from here and closes it.
    unsafe { cap.savefile_raw_fd(file.into_raw_fd()) }
        .map_err(|err| output_error(output_io_error(&err)))
}

/// Creates (or truncates) the capture file the way dumpcap does: a symbolic
/// link planted at `path` is refused rather than followed (`O_NOFOLLOW`),
/// and run as root the file is readable by root only (mode 0600), since a
/// capture holds everyone's traffic. As root, an existing file owned by
/// another user is refused: its owner could read what is written into it.
pub(crate) fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let root = euid == 0;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .mode(if root { 0o600 } else { 0o666 })
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                std::io::Error::other(
                    "it is a symbolic link, which a capture never follows; remove it or pick another name",
                )
            } else {
                e
            }
        })?;
    let meta = file.metadata()?;
    if root && meta.uid() != euid {
        return Err(std::io::Error::other(format!(
            "it exists and belongs to user {}, who could read the capture; remove it or pick another name",
            meta.uid()
        )));
    }
    if root && meta.permissions().mode() & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.set_len(0)?;
    Ok(file)
}

fn link_type_name(link: Linktype) -> String {
    link.get_name()
        .unwrap_or_else(|_| format!("DLT {}", link.0))
}

/// Reads packets and writes them until a limit is reached or a stop is
/// requested, then flushes and returns the counts.
///
/// The handle is non-blocking and the loop waits with its own `poll` and a
/// timeout: libpcap's read timeout does not wake a blocking read when no
/// packet arrives at all (TPACKET_V3 only retires non-empty blocks), which
/// would leave a `--duration` or a stop request unnoticed on a quiet link.
fn run_loop(
    cap: pcap::Capture<Active>,
    mut savefile: Savefile,
    config: &CaptureConfig,
    shared: &Shared,
) -> Result<CaptureStats, CaptureError> {
    let mut cap = cap.setnonblock().map_err(|err| read_error(config, &err))?;
    let deadline = config.duration.map(|d| Instant::now() + d);
    let limit = config.count.unwrap_or(u64::MAX);
    let mut captured = 0u64;
    let mut last_flush = Instant::now();
    let mut unflushed = false;
    let mut drain_until: Option<Instant> = None;
    let flush = |savefile: &mut Savefile| {
        savefile.flush().map_err(|err| CaptureError::Output {
            path: config.output.clone(),
            source: output_io_error(&err),
        })
    };

    while captured < limit {
        let now = Instant::now();
        let time_is_up = deadline.is_some_and(|d| now >= d);
        if drain_until.is_none() && (time_is_up || shared.stop.load(Ordering::Acquire)) {
            // Packets the kernel saw before the stop are still written.
            drain_until = Some(now + DRAIN);
        }
        if drain_until.is_some_and(|d| now >= d) {
            break;
        }
        match cap.next_packet() {
            Ok(packet) => {
                savefile.write(&packet);
                captured += 1;
                unflushed = true;
                shared.captured.store(captured, Ordering::Relaxed);
            }
            // Non-blocking: nothing is waiting in the kernel right now.
            Err(pcap::Error::TimeoutExpired) => {
                if unflushed {
                    flush(&mut savefile)?;
                    last_flush = Instant::now();
                    unflushed = false;
                }
                wait_readable(&cap, drain_until.or(deadline));
            }
            // pcap_breakloop: treat as a stop.
            Err(pcap::Error::NoMorePackets) => break,
            Err(err) => {
                // Keep what was captured before the failure.
                let _ = flush(&mut savefile);
                return Err(read_error(config, &err));
            }
        }
        if unflushed && last_flush.elapsed() >= FLUSH_INTERVAL {
            flush(&mut savefile)?;
            last_flush = Instant::now();
            unflushed = false;
        }
    }

    flush(&mut savefile)?;
    // Closing the savefile closes the file (or stdout) through fclose.
    drop(savefile);
    let stat = cap.stats().map_err(|err| read_error(config, &err))?;
    Ok(CaptureStats {
        captured,
        received: u64::from(stat.received),
        dropped: u64::from(stat.dropped),
        interface_dropped: u64::from(stat.if_dropped),
    })
}

/// Waits until the capture socket has a block of packets, at most
/// [`POLL_TIMEOUT_MS`] and never past `deadline`. Errors (EINTR) just end
/// the wait early.
fn wait_readable(cap: &pcap::Capture<Active>, deadline: Option<Instant>) {
    let mut timeout = POLL_TIMEOUT_MS;
    if let Some(deadline) = deadline {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .as_millis();
        // Round up so the loop does not spin in the last millisecond.
        timeout = timeout.min(i32::try_from(left + 1).unwrap_or(i32::MAX));
    }
    let mut pollfd = libc::pollfd {
        fd: cap.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call; the fd belongs
    // to `cap`, which outlives the call.
    unsafe { libc::poll(&mut pollfd, 1, timeout) };
}

fn read_error(config: &CaptureConfig, err: &pcap::Error) -> CaptureError {
    CaptureError::Read {
        interface: config.interface.clone(),
        message: pcap_message(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_symlink_planted_at_the_output_is_refused_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("victim");
        std::fs::write(&target, b"precious").unwrap();
        let link = dir.path().join("out.pcap");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = create_private(&link).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    }

    #[test]
    fn the_output_is_created_private_to_root_and_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.pcap");
        std::fs::write(&path, b"old contents").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(create_private(&path).unwrap());
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), 0);
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            assert_eq!(meta.permissions().mode() & 0o777, 0o600);
            let fresh = dir.path().join("fresh.pcap");
            drop(create_private(&fresh).unwrap());
            let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
