//! Who holds a connection slot, and which connection gives its slot up when
//! a new client arrives and none is free.
//!
//! The [`Registry`] counts slots with a semaphore of `--max-connections`
//! permits and keeps one [`Entry`] per served connection. An entry records
//! whether its connection is waiting for input and, if so, since when it
//! has made no progress (its last answered request, or its accept). When the
//! slots are all taken, a new connection reclaims the slot of the waiting
//! connection that has gone longest without progress, the way nginx drops
//! its oldest keep-alive connections when it runs out: a connection that
//! never sent anything, or that trickles a request byte by byte, makes no
//! progress and goes first; a client answered a moment ago goes last, and a
//! connection busy answering, or writing to a client that does not read, is
//! never picked. (Its last answer's write counts as waiting when it goes out
//! at once: a client that has its answer never finds its connection busy.)
//!
//! Under pressure it does not wait for the last slot: once fewer than a
//! sixteenth of the slots are free, each new connection also reclaims one,
//! so a client arriving during an attack finds a free slot at once.
//!
//! The registry also counts connections per source address (for
//! `--max-connections-per-ip`) and carries the drain deadline that tells
//! every connection the server is stopping.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// How long a new connection waits for the slot of the connection it
/// reclaimed (that connection only has to notice and let go).
const RECLAIM_WAIT: Duration = Duration::from_secs(1);

/// Marks an entry whose connection is busy (reading a request it is
/// answering, or writing): never reclaimed.
const BUSY: u64 = u64::MAX;

/// One served connection as the registry sees it.
#[derive(Debug)]
pub(crate) struct Entry {
    /// Microseconds since the registry's epoch of the connection's last
    /// progress while it waits for input; [`BUSY`] otherwise.
    since: AtomicU64,
    /// Set when the connection's slot was reclaimed.
    reclaimed: AtomicBool,
    /// Woken once: the slot was reclaimed, or the server is draining.
    pub(crate) stop: Notify,
}

impl Entry {
    /// The connection waits for input; its last progress was at `at`.
    pub(crate) fn set_waiting(&self, registry: &Registry, at: Instant) {
        self.since.store(registry.micros(at), Ordering::Relaxed);
    }

    /// The connection is working (answering, or waiting for its client to
    /// read): not reclaimable.
    pub(crate) fn set_busy(&self) {
        self.since.store(BUSY, Ordering::Relaxed);
    }

    /// True when the stop was a reclaim rather than the server draining.
    pub(crate) fn reclaimed(&self) -> bool {
        self.reclaimed.load(Ordering::Relaxed)
    }
}

/// Why a connection is refused at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Every slot is taken by a busy connection (or too many new ones are
    /// already waiting for reclaimed slots).
    Busy,
    /// The source address holds `--max-connections-per-ip` connections.
    PerIp,
    /// The server is shutting down.
    ShuttingDown,
}

/// What the accept loop does with a new connection.
pub(crate) enum Admission {
    /// A slot is free: serve now.
    Now(Ticket),
    /// A waiting connection was told to give up its slot; serve once it has.
    AfterReclaim(Pending),
    /// No slot can be had.
    Refused(Refusal),
}

/// The server's book of connections and slots.
#[derive(Debug)]
pub(crate) struct Registry {
    slots: Arc<Semaphore>,
    max_per_ip: Option<usize>,
    /// New connections allowed to wait for a reclaimed slot at once.
    max_pending: usize,
    /// Below this many free slots, each new connection reclaims one more
    /// (1/16 of the slots; none for fewer than 16).
    reserve: usize,
    pending: AtomicUsize,
    /// Connections told to give up their slot that still hold it.
    reclaiming: AtomicUsize,
    epoch: Instant,
    inner: Mutex<Inner>,
    drain_deadline: OnceLock<Instant>,
    draining: AtomicBool,
    /// Answers processed but not delivered because the drain timeout cut
    /// their connection, and bytes left unacknowledged in the kernel then.
    dropped_answers: AtomicU64,
    unacked_bytes: AtomicU64,
    reclaims: AtomicU64,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    entries: HashMap<u64, Arc<Entry>>,
    per_ip: HashMap<IpAddr, usize>,
}

impl Registry {
    /// A registry of `max_connections` slots.
    pub(crate) fn new(max_connections: usize, max_per_ip: Option<usize>) -> Arc<Registry> {
        Arc::new(Registry {
            slots: Arc::new(Semaphore::new(max_connections)),
            max_per_ip,
            max_pending: (max_connections / 8).max(16),
            reserve: max_connections / 16,
            pending: AtomicUsize::new(0),
            reclaiming: AtomicUsize::new(0),
            epoch: Instant::now(),
            inner: Mutex::new(Inner::default()),
            drain_deadline: OnceLock::new(),
            draining: AtomicBool::new(false),
            dropped_answers: AtomicU64::new(0),
            unacked_bytes: AtomicU64::new(0),
            reclaims: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The lock guards plain counters; a panic cannot leave them torn.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn micros(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_micros() as u64
    }

    /// Decides what happens to a new connection from `ip`.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Admission {
        if self.draining() {
            return Admission::Refused(Refusal::ShuttingDown);
        }
        {
            let mut inner = self.lock();
            let count = inner.per_ip.entry(ip).or_insert(0);
            if self.max_per_ip.is_some_and(|max| *count >= max) {
                return Admission::Refused(Refusal::PerIp);
            }
            *count += 1;
        }
        let claim = Claim {
            registry: self.clone(),
            ip,
        };
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            // Nearly full: free one more slot ahead of need, so the next
            // client finds one at once instead of waiting for a reclaim.
            if self.slots.available_permits() < self.reserve {
                self.reclaim_one();
            }
            return Admission::Now(claim.into_ticket(permit));
        }
        // Wait for a slot when one is being reclaimed for this connection,
        // or when slots reclaimed earlier are still on their way back for
        // more connections than already wait.
        let waiting = self.pending.fetch_add(1, Ordering::AcqRel);
        if waiting >= self.max_pending
            || !(self.reclaim_one() || waiting < self.reclaiming.load(Ordering::Acquire))
        {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            return Admission::Refused(Refusal::Busy);
        }
        Admission::AfterReclaim(Pending { claim })
    }

    /// Tells the waiting connection that has gone longest without progress
    /// to give up its slot. False when every connection is busy.
    fn reclaim_one(&self) -> bool {
        let inner = self.lock();
        let victim = inner
            .entries
            .values()
            .filter(|e| !e.reclaimed.load(Ordering::Relaxed))
            .map(|e| (e.since.load(Ordering::Relaxed), e))
            .filter(|(since, _)| *since != BUSY)
            .min_by_key(|(since, _)| *since);
        let Some((_, entry)) = victim else {
            return false;
        };
        entry.reclaimed.store(true, Ordering::Relaxed);
        self.reclaiming.fetch_add(1, Ordering::AcqRel);
        entry.stop.notify_one();
        self.reclaims.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Connections open: served, closing, or waiting for a slot.
    pub(crate) fn connections(&self) -> usize {
        self.lock().per_ip.values().sum()
    }

    /// Connections reclaimed so far.
    pub(crate) fn reclaims(&self) -> u64 {
        self.reclaims.load(Ordering::Relaxed)
    }

    /// Starts the drain: every connection is told to stop, and must be done
    /// by `deadline`. New connections are refused from now on.
    pub(crate) fn start_drain(&self, deadline: Instant) {
        let _ = self.drain_deadline.set(deadline);
        // Under the lock, so a connection registering now either sees the
        // flag or is in the map and gets notified.
        let inner = self.lock();
        self.draining.store(true, Ordering::Release);
        self.slots.close();
        for entry in inner.entries.values() {
            entry.stop.notify_one();
        }
    }

    /// True once the drain has started.
    pub(crate) fn draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// When draining connections must be done.
    pub(crate) fn drain_deadline(&self) -> Option<Instant> {
        self.drain_deadline.get().copied()
    }

    /// Records answers the drain timeout kept from their client.
    pub(crate) fn record_dropped(&self, answers: u64, unacked_bytes: u64) {
        self.dropped_answers.fetch_add(answers, Ordering::Relaxed);
        self.unacked_bytes
            .fetch_add(unacked_bytes, Ordering::Relaxed);
    }

    /// Answers not delivered, and bytes left unacknowledged, at the drain's end.
    pub(crate) fn dropped(&self) -> (u64, u64) {
        (
            self.dropped_answers.load(Ordering::Relaxed),
            self.unacked_bytes.load(Ordering::Relaxed),
        )
    }
}

/// A connection counted against its address, not yet holding a slot.
struct Claim {
    registry: Arc<Registry>,
    ip: IpAddr,
}

impl Claim {
    fn into_ticket(self, permit: OwnedSemaphorePermit) -> Ticket {
        let entry = Arc::new(Entry {
            since: AtomicU64::new(BUSY),
            reclaimed: AtomicBool::new(false),
            stop: Notify::new(),
        });
        let id = {
            let mut inner = self.registry.lock();
            let id = inner.next_id;
            inner.next_id += 1;
            inner.entries.insert(id, entry.clone());
            if self.registry.draining() {
                entry.stop.notify_one();
            }
            id
        };
        Ticket {
            claim: self,
            id,
            entry,
            permit: Some(permit),
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut inner = self.registry.lock();
        if let Some(count) = inner.per_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                inner.per_ip.remove(&self.ip);
            }
        }
    }
}

/// A new connection waiting for a reclaimed slot.
pub(crate) struct Pending {
    claim: Claim,
}

impl Pending {
    /// Waits (briefly) for a slot; `None` when none came free in time or
    /// the server started draining.
    pub(crate) async fn wait(self) -> Option<Ticket> {
        let registry = self.claim.registry.clone();
        let acquired =
            tokio::time::timeout(RECLAIM_WAIT, registry.slots.clone().acquire_owned()).await;
        registry.pending.fetch_sub(1, Ordering::AcqRel);
        match acquired {
            Ok(Ok(permit)) => Some(self.claim.into_ticket(permit)),
            _ => None,
        }
    }
}

/// A served connection's slot and registry entry; released when dropped.
pub(crate) struct Ticket {
    claim: Claim,
    id: u64,
    entry: Arc<Entry>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Ticket {
    /// The connection's entry.
    pub(crate) fn entry(&self) -> &Entry {
        &self.entry
    }

    /// The registry.
    pub(crate) fn registry(&self) -> &Registry {
        &self.claim.registry
    }

    /// Frees the slot (and leaves the reclaim candidates) while the
    /// connection finishes closing.
    pub(crate) fn release_slot(&mut self) {
        self.entry.set_busy();
        let registry = &self.claim.registry;
        if registry.lock().entries.remove(&self.id).is_some() && self.entry.reclaimed() {
            registry.reclaiming.fetch_sub(1, Ordering::AcqRel);
        }
        self.permit = None;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.permit.is_some() {
            self.release_slot();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn admitted(admission: Admission) -> Ticket {
        match admission {
            Admission::Now(ticket) => ticket,
            _ => panic!("expected a free slot"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_waiting_connection_without_progress_longest_is_reclaimed() {
        let registry = Registry::new(3, None);
        let silent = admitted(registry.admit(IP));
        let answered = admitted(registry.admit(IP));
        let busy = admitted(registry.admit(IP));
        let opened = Instant::now();
        silent.entry().set_waiting(&registry, opened);
        tokio::time::advance(Duration::from_secs(5)).await;
        answered.entry().set_waiting(&registry, Instant::now());
        busy.entry().set_busy();

        let Admission::AfterReclaim(pending) = registry.admit(IP) else {
            panic!("a full registry with a waiting connection must reclaim");
        };
        assert!(silent.entry().reclaimed());
        assert!(!answered.entry().reclaimed() && !busy.entry().reclaimed());
        drop(silent);
        assert!(pending.wait().await.is_some());
        assert_eq!(registry.reclaims(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn busy_connections_are_never_reclaimed() {
        let registry = Registry::new(1, None);
        let busy = admitted(registry.admit(IP));
        busy.entry().set_busy();
        assert!(matches!(
            registry.admit(IP),
            Admission::Refused(Refusal::Busy)
        ));
        assert!(!busy.entry().reclaimed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_reclaimed_slot_that_is_not_freed_in_time_means_busy() {
        let registry = Registry::new(1, None);
        let stuck = admitted(registry.admit(IP));
        stuck.entry().set_waiting(&registry, Instant::now());
        let Admission::AfterReclaim(pending) = registry.admit(IP) else {
            panic!("expected a reclaim");
        };
        assert!(pending.wait().await.is_none());
        drop(stuck);
        assert!(matches!(registry.admit(IP), Admission::Now(_)));
    }

    #[tokio::test(start_paused = true)]
    async fn nearly_full_each_new_connection_frees_one_more_slot() {
        let registry = Registry::new(32, None);
        let mut held = Vec::new();
        for _ in 0..31 {
            let ticket = admitted(registry.admit(IP));
            ticket.entry().set_waiting(&registry, Instant::now());
            tokio::time::advance(Duration::from_millis(1)).await;
            held.push(ticket);
        }
        // 31 of 32 taken: fewer free than the reserve of 2, the oldest gives way.
        assert_eq!(registry.reclaims(), 1);
        assert!(held[0].entry().reclaimed());
        assert!(!held[1].entry().reclaimed());
    }

    #[tokio::test]
    async fn per_address_cap_counts_only_that_address() {
        let registry = Registry::new(10, Some(2));
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let a = admitted(registry.admit(IP));
        let _b = admitted(registry.admit(IP));
        assert!(matches!(
            registry.admit(IP),
            Admission::Refused(Refusal::PerIp)
        ));
        let _c = admitted(registry.admit(other));
        drop(a);
        assert!(matches!(registry.admit(IP), Admission::Now(_)));
    }

    #[tokio::test]
    async fn draining_stops_every_connection_and_refuses_new_ones() {
        let registry = Registry::new(4, None);
        let ticket = admitted(registry.admit(IP));
        registry.start_drain(Instant::now());
        ticket.entry().stop.notified().await;
        assert!(!ticket.entry().reclaimed());
        assert!(matches!(
            registry.admit(IP),
            Admission::Refused(Refusal::ShuttingDown)
        ));
    }
}
