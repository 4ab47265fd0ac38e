//! Where packets come from: the [`PacketSource`] trait, implemented by the
//! capture file reader ([`CaptureReader`], over a file or a pipe such as
//! `tcpdump -w - | reqresp analyze -`) and by [`LiveSource`], a live
//! capture through libpcap.
//!
//! A source yields [`Next::Packet`] as packets come, [`Next::Idle`] when
//! none came for a while (only a live source does: a file or pipe read
//! blocks until bytes come), and [`Next::End`]. Idle lets the analyzer be
//! told that time passes without traffic.

use std::io::Read;
use std::os::unix::io::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::model::Timestamp;
use super::reader::{CaptureFormat, CaptureReader, ReadError, Truncation};
use super::segment::RawPacket;

/// What a [`PacketSource`] has next.
#[derive(Debug)]
pub enum Next<'a> {
    /// A packet.
    Packet(RawPacket<'a>),
    /// No packet came for the source's poll interval; the time now.
    Idle(Timestamp),
    /// No more packets: the file ended or the capture stopped.
    End,
}

/// A stream of packets for the analyzer.
pub trait PacketSource {
    /// The next packet, idle time, or the end. An error ends the source.
    fn next_packet(&mut self) -> Result<Next<'_>, ReadError>;
    /// What the packets are read from.
    fn format(&self) -> CaptureFormat;
    /// Bytes consumed so far, for a progress bar (0 when not counted).
    fn position(&self) -> u64 {
        0
    }
    /// Packets arrive as they happen: the pipeline then hands them to the
    /// analyzer at once instead of in large batches.
    fn is_live(&self) -> bool {
        false
    }
    /// Where the input was cut short mid-record, once it ended.
    fn truncation(&self) -> Option<&Truncation> {
        None
    }
}

impl<R: Read> PacketSource for CaptureReader<R> {
    #[inline]
    fn next_packet(&mut self) -> Result<Next<'_>, ReadError> {
        Ok(match CaptureReader::next_packet(self)? {
            Some(packet) => Next::Packet(packet),
            None => Next::End,
        })
    }

    fn format(&self) -> CaptureFormat {
        CaptureReader::format(self)
    }

    fn position(&self) -> u64 {
        self.bytes_consumed()
    }

    fn truncation(&self) -> Option<&Truncation> {
        CaptureReader::truncation(self)
    }
}

/// Largest packet captured live (libpcap's `MAXIMUM_SNAPLEN`).
const LIVE_SNAPLEN: i32 = 262_144;
/// The kernel closes a non-empty block of packets after this long (as
/// `reqresp capture` does).
const BLOCK_TIMEOUT_MS: i32 = 20;
/// Kernel buffer for packets not yet read (tcpdump's default is 2 MiB).
const BUFFER_BYTES: i32 = 16 << 20;

/// A live capture through libpcap, as a [`PacketSource`]: packets as they
/// arrive, [`Next::Idle`] after `poll` without any, [`Next::End`] when
/// libpcap says there are no more.
///
/// The handle is read without blocking and waits with `poll(2)`: libpcap's
/// own read timeout does not wake a blocking read when no packet comes at
/// all (TPACKET_V3 retires only non-empty blocks).
pub struct LiveSource {
    cap: pcap::Capture<pcap::Active>,
    link_type: u32,
    poll: Duration,
    packets: u64,
    stop: Arc<AtomicBool>,
    /// Every packet is also written here (`watch -w`), flushed when idle.
    savefile: Option<pcap::Savefile>,
    unflushed: bool,
    stats: Arc<LiveStats>,
    /// When `stats` were last updated from libpcap.
    stats_at: std::time::Instant,
}

/// Counts of a [`LiveSource`] another thread can read while it runs:
/// packets read, and libpcap's counts, updated a few times a second.
#[derive(Debug, Default)]
pub struct LiveStats {
    /// Packets read from the capture.
    pub packets: std::sync::atomic::AtomicU64,
    /// Packets the kernel dropped because the buffer was full (`ps_drop`).
    pub dropped: std::sync::atomic::AtomicU64,
    /// Packets that passed the filter, as libpcap counted them (`ps_recv`).
    pub received: std::sync::atomic::AtomicU64,
}

/// How often [`LiveStats`] are refreshed from libpcap.
const STATS_EVERY: Duration = Duration::from_millis(250);

/// Ends a [`LiveSource`] from another thread: its next call after
/// [`StopHandle::stop`] (at most one poll interval later) is [`Next::End`].
#[derive(Debug, Clone)]
pub struct StopHandle(Arc<AtomicBool>);

impl StopHandle {
    /// Asks the source to end.
    pub fn stop(&self) {
        self.0.store(true, Ordering::Release);
    }
}

impl LiveSource {
    /// Opens `interface` (as `tcpdump -i`), with a BPF `filter` if given
    /// (tcpdump's syntax), nanosecond timestamps, and `poll` between two
    /// [`Next::Idle`] when nothing arrives. Needs the capture privilege
    /// (root or `CAP_NET_RAW`).
    pub fn open(interface: &str, filter: Option<&str>, poll: Duration) -> Result<Self, ReadError> {
        let live = |what: &str| {
            let what = format!("{what} on {interface}");
            move |source| ReadError::Live { what, source }
        };
        let cap = pcap::Capture::from_device(interface)
            .and_then(|inactive| {
                inactive
                    .snaplen(LIVE_SNAPLEN)
                    .buffer_size(BUFFER_BYTES)
                    .timeout(BLOCK_TIMEOUT_MS)
                    .precision(pcap::Precision::Nano)
                    .open()
            })
            .map_err(live("cannot start a capture"))?;
        let mut cap = cap.setnonblock().map_err(live("cannot start a capture"))?;
        if let Some(filter) = filter {
            cap.filter(filter, true)
                .map_err(live("cannot set the capture filter"))?;
        }
        Ok(Self::from_active(cap, poll, None))
    }

    /// A source over a capture already opened, filtered and made
    /// non-blocking (as [`crate::capture`] opens them, with its errors),
    /// writing every packet to `savefile` too if given.
    pub fn from_active(
        cap: pcap::Capture<pcap::Active>,
        poll: Duration,
        mut savefile: Option<pcap::Savefile>,
    ) -> Self {
        let link_type = cap.get_datalink().0 as u32;
        if let Some(file) = &mut savefile {
            // The file header at once: the file is a capture from the start.
            let _ = file.flush();
        }
        LiveSource {
            cap,
            link_type,
            poll,
            packets: 0,
            stop: Arc::new(AtomicBool::new(false)),
            savefile,
            unflushed: false,
            stats: Arc::default(),
            stats_at: std::time::Instant::now(),
        }
    }

    /// The counts, readable from another thread while the source runs.
    pub fn stats(&self) -> Arc<LiveStats> {
        Arc::clone(&self.stats)
    }

    /// Refreshes [`LiveStats`] from libpcap (at most every [`STATS_EVERY`]
    /// unless `now`), and flushes the savefile when idle.
    fn refresh(&mut self, idle: bool) {
        if idle && self.unflushed {
            if let Some(file) = &mut self.savefile {
                // A failing disk shows in the file; the view goes on.
                let _ = file.flush();
            }
            self.unflushed = false;
        }
        if !idle && self.stats_at.elapsed() < STATS_EVERY {
            return;
        }
        self.stats_at = std::time::Instant::now();
        self.stats.packets.store(self.packets, Ordering::Relaxed);
        if let Ok(s) = self.cap.stats() {
            self.stats
                .dropped
                .store(u64::from(s.dropped), Ordering::Relaxed);
            self.stats
                .received
                .store(u64::from(s.received), Ordering::Relaxed);
        }
    }

    /// A handle that ends this source from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(Arc::clone(&self.stop))
    }

    /// Waits until the capture socket is readable, at most `poll`. Errors
    /// (EINTR) just end the wait early.
    fn wait(&self) {
        let timeout = i32::try_from(self.poll.as_millis()).unwrap_or(i32::MAX);
        let mut pollfd = libc::pollfd {
            fd: self.cap.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call; the fd
        // belongs to `self.cap`, which outlives the call.
        unsafe { libc::poll(&mut pollfd, 1, timeout) };
    }
}

/// The time now, as a capture timestamp.
fn now() -> Timestamp {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp(u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
}

impl PacketSource for LiveSource {
    fn next_packet(&mut self) -> Result<Next<'_>, ReadError> {
        for waited in [false, true] {
            if self.stop.load(Ordering::Acquire) {
                self.refresh(true);
                return Ok(Next::End);
            }
            if self.packets.is_multiple_of(1024) {
                self.refresh(false);
            }
            let cap: *mut pcap::Capture<pcap::Active> = &mut self.cap;
            // SAFETY: `cap` points to `self.cap`, alive and borrowed
            // mutably through `self` for as long as the packet returned is.
            // The packet (in libpcap's ring, no copy) is returned at once;
            // the arms that use `self` again hold no packet, and while it
            // is held only other fields are touched. (The borrow
            // checker cannot see that a borrow returned from one arm of a
            // loop is not alive in the others.)
            let packet = match unsafe { (*cap).next_packet() } {
                Ok(packet) => packet,
                Err(pcap::Error::TimeoutExpired) if !waited => {
                    self.refresh(true);
                    self.wait();
                    continue;
                }
                Err(pcap::Error::TimeoutExpired) => return Ok(Next::Idle(now())),
                Err(pcap::Error::NoMorePackets) => {
                    self.refresh(true);
                    return Ok(Next::End);
                }
                Err(source) => {
                    return Err(ReadError::Live {
                        what: "reading the live capture failed".into(),
                        source,
                    });
                }
            };
            if let Some(file) = &mut self.savefile {
                file.write(&packet);
                self.unflushed = true;
            }
            self.packets += 1;
            let header = *packet.header;
            // Nanosecond precision: tv_usec holds nanoseconds.
            let secs = u64::try_from(header.ts.tv_sec).unwrap_or(0);
            let nanos = u64::try_from(header.ts.tv_usec).unwrap_or(0);
            return Ok(Next::Packet(RawPacket {
                number: self.packets,
                time: Timestamp(secs * 1_000_000_000 + nanos),
                link_type: self.link_type,
                data: packet.data,
                orig_len: header.len,
            }));
        }
        Ok(Next::Idle(now()))
    }

    fn format(&self) -> CaptureFormat {
        CaptureFormat::Live
    }

    fn is_live(&self) -> bool {
        true
    }
}
