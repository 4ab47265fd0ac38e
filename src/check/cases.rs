//! What each case does on the wire, and how it decides pass, warn or fail.
//!
//! Every case opens its own connections (through [`Probe`], which traces
//! them), every wait is bounded by the timeout, and every failure becomes a
//! one-line reason that says what happened and, where the pattern is
//! known, why (a `recv(1024)`, no framing, one client then exit).

use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::catalog::CaseId;
use super::expect::{self, Expectation};
use super::probe::{CloseSeen, Failure, Link, Probe};
use super::trace::preview;
use super::{Outcome, Verdict};
use crate::human::format_duration;
use crate::protocol::Framing;

/// Pause between the 1-byte writes of `split`.
const SPLIT_PAUSE: Duration = Duration::from_millis(3);
/// Sizes of the `large` messages.
pub(crate) const LARGE_SIZES: [usize; 3] = [1_500, 10_000, 64_000];
/// Client counts of the `concurrent` rounds.
pub(crate) const CONCURRENT_ROUNDS: [usize; 3] = [2, 10, 100];
/// Requests each `concurrent` client sends.
const REQUESTS_PER_CLIENT: usize = 3;
/// Requests of the `latency` run, at most.
pub(crate) const LATENCY_REQUESTS: usize = 200;
/// How long the `latency` run lasts, at most.
const LATENCY_BUDGET: Duration = Duration::from_secs(1);
/// Clients racing in `tickets`.
pub(crate) const TICKET_CLIENTS: usize = 10;
/// The largest remaining stock `tickets` tries to sell out.
pub(crate) const MAX_TICKET_STOCK: u64 = 2_000;
/// A short pause that lets a server notice a close (or exit) before the
/// next client comes.
const SETTLE: Duration = Duration::from_millis(30);

/// What every case needs.
#[derive(Clone)]
pub(crate) struct Ctx {
    /// Server, framing, timeout, clock and trace collector.
    pub link: Link,
    /// What a good answer is.
    pub expect: Expectation,
    /// `latency` warns when p99 is above this.
    pub latency_warn: Duration,
}

/// A timeout as words: `2 s`, `0.5 s`.
pub(crate) fn secs(d: Duration) -> String {
    format!("{} s", (d.as_secs_f64() * 1000.0).round() / 1000.0)
}

impl Ctx {
    fn raw(&self) -> bool {
        self.link.framing == Framing::Raw
    }

    async fn connect(&self, label: impl Into<String>) -> Result<Probe, String> {
        Probe::connect(&self.link, label)
            .await
            .map_err(|f| f.describe(self.link.timeout))
    }

    /// A failure of `what` on `p`, in words, with what had arrived.
    fn fail(&self, p: &mut Probe, what: &str, f: &Failure) -> String {
        p.mark_failed();
        let mut reason = format!("{what}: {}", f.describe(self.link.timeout));
        if matches!(f, Failure::Timeout { partial, .. } | Failure::Closed { partial, .. } if *partial > 0)
        {
            reason.push_str(&format!(", received \"{}\"", preview(p.pending(), 40)));
        }
        reason
    }

    /// Sends `request` as one message and checks its answer; returns the
    /// round-trip time.
    async fn exchange(
        &self,
        p: &mut Probe,
        request: &[u8],
        what: &str,
    ) -> Result<Duration, String> {
        let started = Instant::now();
        if let Err(f) = p.send_message(request).await {
            return Err(self.fail(p, what, &f));
        }
        self.answer(p, request, what).await?;
        Ok(started.elapsed())
    }

    /// Reads the answer to `request` and checks it.
    async fn answer(&self, p: &mut Probe, request: &[u8], what: &str) -> Result<Vec<u8>, String> {
        let got = self.receive(p, request, what).await?;
        // With raw framing `receive` only returns an answer that is whole
        // and correct (`raw_complete`), possibly in several pieces.
        if self.raw() {
            return Ok(got);
        }
        if let Err(why) = self.expect.check(request, &got) {
            p.mark_failed();
            return Err(format!("{what}: {why}"));
        }
        Ok(got)
    }

    /// Reads one answer: a framed message, or with raw framing the bytes
    /// that make a whole answer to `request`.
    async fn receive(&self, p: &mut Probe, request: &[u8], what: &str) -> Result<Vec<u8>, String> {
        let result = if self.raw() {
            let expect = self.expect.clone();
            let request = request.to_vec();
            p.receive_until("answer", move |got| expect.raw_complete(&request, got))
                .await
        } else {
            p.receive("answer").await
        };
        result.map_err(|f| self.fail(p, what, &f))
    }
}

/// Runs one case.
pub async fn run(case: CaseId, ctx: &Ctx) -> Verdict {
    let result = match case {
        CaseId::Echo => echo(ctx).await,
        CaseId::Empty => single(ctx, b"", "the empty message").await,
        CaseId::Utf8 => {
            single(
                ctx,
                "héllo wörld ✓ こんにちは 👋 Ω".as_bytes(),
                "the UTF-8 message",
            )
            .await
        }
        CaseId::Binary => {
            let all: Vec<u8> = (0..=255u8).collect();
            single(ctx, &all, "the message with all 256 byte values").await
        }
        CaseId::Split => split(ctx).await,
        CaseId::Merged => merged(ctx).await,
        CaseId::Large => large(ctx).await,
        CaseId::Concurrent => concurrent(ctx).await,
        CaseId::Sequential => sequential(ctx).await,
        CaseId::HalfClose => half_close(ctx).await,
        CaseId::Abort => abort(ctx).await,
        CaseId::Close => close(ctx).await,
        CaseId::Idle => idle(ctx).await,
        CaseId::Latency => latency(ctx).await,
        CaseId::Tickets => tickets(ctx).await,
    };
    result.unwrap_or_else(Verdict::fail)
}

type CaseResult = Result<Verdict, String>;

async fn echo(ctx: &Ctx) -> CaseResult {
    let mut p = ctx.connect("client").await?;
    ctx.exchange(&mut p, b"hello from reqresp check", "request 1")
        .await?;
    ctx.exchange(
        &mut p,
        b"a second request on the same connection",
        "request 2 on the same connection",
    )
    .await?;
    p.close();
    Ok(Verdict::pass(
        "2 requests on one connection got their expected answers",
    ))
}

async fn single(ctx: &Ctx, request: &[u8], what: &str) -> CaseResult {
    let mut p = ctx.connect("client").await?;
    ctx.exchange(&mut p, request, what).await?;
    p.close();
    Ok(Verdict::pass(format!(
        "{what} ({} B) got its expected answer",
        request.len()
    )))
}

/// After the answers a case waited for, one more request: its answer must
/// come next, so an extra answer (a message answered twice, in pieces)
/// shows up. Not with raw framing, where answers have no boundaries.
async fn follow_up(ctx: &Ctx, p: &mut Probe, what: &str) -> Result<(), String> {
    if ctx.raw() {
        return Ok(());
    }
    ctx.exchange(p, b"one more message", what).await.map(|_| ())
}

async fn split(ctx: &Ctx) -> CaseResult {
    let request = b"this message arrives one byte at a time";
    let mut p = ctx.connect("client").await?;
    let wire = p.wire(request).map_err(|f| f.describe(ctx.link.timeout))?;
    if let Err(f) = p.send_pieces(&wire, 1, SPLIT_PAUSE).await {
        return Err(ctx.fail(&mut p, "writing the message 1 byte at a time", &f));
    }
    ctx.answer(&mut p, request, "the message written 1 byte at a time")
        .await?;
    follow_up(ctx, &mut p, "the next message").await?;
    p.close();
    Ok(Verdict::pass(if ctx.raw() {
        format!(
            "a message written in {} pieces of 1 byte was answered, every byte once and in order (raw framing: no boundaries to check)",
            wire.len()
        )
    } else {
        format!(
            "a message written in {} pieces of 1 byte got one whole answer",
            wire.len()
        )
    }))
}

async fn merged(ctx: &Ctx) -> CaseResult {
    let requests: [&[u8]; 3] = [b"merged 1", b"merged 2", b"merged 3"];
    let mut p = ctx.connect("client").await?;
    let mut wire = Vec::new();
    for r in requests {
        wire.extend(p.wire(r).map_err(|f| f.describe(ctx.link.timeout))?);
    }
    if let Err(f) = p.send(&wire).await {
        return Err(ctx.fail(&mut p, "writing 3 messages at once", &f));
    }
    if ctx.raw() {
        // Raw framing has no boundaries: the write is one request.
        ctx.answer(&mut p, &wire, "the answer to 3 messages in one write")
            .await?;
        p.close();
        return Ok(Verdict::pass(
            "every byte of 3 messages written at once was answered, in order (raw framing: no boundaries to check)",
        ));
    }
    for (k, request) in requests.iter().enumerate() {
        let what = format!("answer {} of 3", k + 1);
        if let Err(reason) = ctx.answer(&mut p, request, &what).await {
            return Err(diagnose_merged(ctx, &p, &wire, k, reason));
        }
    }
    follow_up(ctx, &mut p, "a message after the 3").await?;
    p.close();
    Ok(Verdict::pass(
        "3 messages written at once got 3 answers, in order",
    ))
}

/// Names the cause when the answers to a merged write went wrong.
fn diagnose_merged(ctx: &Ctx, p: &Probe, wire: &[u8], good: usize, reason: String) -> String {
    if let Some(whole) = ctx.expect.echo_of(wire)
        && p.received().starts_with(&whole)
    {
        return format!(
            "3 messages sent in one write got one answer, \"{}\": the server takes whatever one recv() returns as one message; it has no framing and must cut what it reads into messages (at each \\n for line framing)",
            preview(&whole, 40)
        );
    }
    if good > 0 && reason.contains("no answer within") {
        return format!(
            "only {good} of 3 messages sent in one write were answered ({reason}): the server answers the first message of each read and drops the rest; it must answer every whole message it has read"
        );
    }
    reason
}

fn size_words(size: usize) -> String {
    let s = size.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    format!("{out}-byte message")
}

async fn large(ctx: &Ctx) -> CaseResult {
    let mut p = ctx.connect("client").await?;
    for size in LARGE_SIZES {
        let request = crate::bench::payload(size);
        ctx.exchange(&mut p, &request, &format!("the {}", size_words(size)))
            .await?;
    }
    follow_up(ctx, &mut p, "a small message after the large ones").await?;
    p.close();
    Ok(Verdict::pass(
        "messages of 1,500, 10,000 and 64,000 bytes each got one whole answer",
    ))
}

async fn one_client(ctx: &Ctx, i: usize, n: usize) -> Result<(), String> {
    let label = format!("client {i} of {n}");
    let mut p = ctx
        .connect(label.clone())
        .await
        .map_err(|e| format!("{label}: {e}"))?;
    for j in 1..=REQUESTS_PER_CLIENT {
        let request = format!("client {i} of {n}, message {j}");
        ctx.exchange(&mut p, request.as_bytes(), &format!("{label}, message {j}"))
            .await?;
    }
    p.close();
    Ok(())
}

async fn concurrent(ctx: &Ctx) -> CaseResult {
    let request = b"the slow client's message, sent in two halves";
    let mut slow = ctx.connect("slow client").await?;
    // Served once first, so a server that serves one client at a time is
    // now busy with the slow client.
    ctx.exchange(
        &mut slow,
        b"the slow client says hello",
        "the slow client's first request",
    )
    .await?;
    let wire = slow
        .wire(request)
        .map_err(|f| f.describe(ctx.link.timeout))?;
    let half = wire.len() / 2;
    if let Err(f) = slow.send(&wire[..half]).await {
        return Err(ctx.fail(&mut slow, "the slow client's first half", &f));
    }
    let mut problem = None;
    let mut served = 0;
    for n in CONCURRENT_ROUNDS {
        let mut set = JoinSet::new();
        for i in 1..=n {
            let ctx = ctx.clone();
            set.spawn(async move { one_client(&ctx, i, n).await });
        }
        let mut failures = Vec::new();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok(Ok(())) => served += 1,
                Ok(Err(reason)) => failures.push(reason),
                Err(err) => failures.push(format!("a client task failed: {err}")),
            }
        }
        if !failures.is_empty() {
            failures.sort();
            problem = Some((n, failures));
            break;
        }
    }
    // The slow client finishes its message and must get its own answer.
    let slow_result = match slow.send(&wire[half..]).await {
        Err(f) => Err(ctx.fail(&mut slow, "the slow client's second half", &f)),
        Ok(()) => ctx
            .answer(&mut slow, request, "the slow client's answer")
            .await
            .map(|_| ()),
    };
    slow.close();
    if let Some((n, failures)) = problem {
        let blocked = failures
            .iter()
            .all(|f| f.contains("no answer") || f.contains("could not connect"));
        let cause = if blocked {
            ": the server waits for one client (it serves one client at a time, or blocks reading the slow client's half message); it must serve every connection as its data arrives (a thread or task per client, or select/poll without blocking reads)"
        } else {
            ""
        };
        return Err(format!(
            "with {n} clients at once while a slow client held half a message, {} of {n} were not served right ({}{}){cause}",
            failures.len(),
            failures[0],
            if failures.len() > 1 { "; …" } else { "" }
        ));
    }
    slow_result?;
    Ok(Verdict::pass(format!(
        "{served} clients in rounds of 2, 10 and 100 each got their own {REQUESTS_PER_CLIENT} answers while a slow client held half a message; then the slow client got its answer"
    ))
    .with_figure("clients", served as f64))
}

async fn sequential(ctx: &Ctx) -> CaseResult {
    for i in 1..=3 {
        let label = format!("client {i}");
        let result = async {
            let mut p = ctx.connect(label.clone()).await?;
            ctx.exchange(
                &mut p,
                format!("client {i} says hello").as_bytes(),
                "its request",
            )
            .await?;
            p.close();
            Ok::<(), String>(())
        }
        .await;
        if let Err(e) = result {
            if i == 1 {
                return Err(format!("client 1: {e}"));
            }
            return Err(format!(
                "client {i}, after client {} left: {e}: the server stops serving after its first client; it must go back to accept() for the next one (the original lab's server exits after one client)",
                i - 1
            ));
        }
        tokio::time::sleep(SETTLE).await;
    }
    Ok(Verdict::pass(
        "3 clients one after another were each served",
    ))
}

async fn half_close(ctx: &Ctx) -> CaseResult {
    let request = b"the last request before the client's FIN";
    let mut p = ctx.connect("client").await?;
    if let Err(f) = p.send_message(request).await {
        return Err(ctx.fail(&mut p, "the request", &f));
    }
    if let Err(f) = p.shutdown_write().await {
        return Err(ctx.fail(&mut p, "shutdown(write)", &f));
    }
    ctx.answer(&mut p, request, "the answer after the client's FIN")
        .await
        .map_err(|e| {
            format!("{e}: a server must answer what it has read before it closes, even when recv() then returns 0")
        })?;
    p.close();
    Ok(Verdict::pass(
        "the answer arrived after the client shut down its writing side",
    ))
}

async fn abort(ctx: &Ctx) -> CaseResult {
    let request = b"a request the client will not wait for";
    let mut a = ctx.connect("client resetting mid-request").await?;
    let wire = a.wire(request).map_err(|f| f.describe(ctx.link.timeout))?;
    if let Err(f) = a.send(&wire[..wire.len() / 2]).await {
        return Err(ctx.fail(&mut a, "half a request", &f));
    }
    a.abort();
    let mut b = ctx.connect("client resetting before its answer").await?;
    if let Err(f) = b.send_message(request).await {
        return Err(ctx.fail(&mut b, "the request", &f));
    }
    b.abort();
    tokio::time::sleep(SETTLE).await;
    let cause = "the server died or stopped serving after clients reset their connections; it must handle errors on one connection (ECONNRESET, EPIPE) by closing that connection only";
    let mut c = ctx.connect("next client").await.map_err(|e| {
        format!("after 2 clients reset their connections, the next client {e}: {cause}")
    })?;
    for k in 1..=2 {
        ctx.exchange(
            &mut c,
            b"is anyone still there?",
            &format!("the next client's request {k}"),
        )
        .await
        .map_err(|e| format!("after 2 clients reset their connections, {e}: {cause}"))?;
    }
    c.close();
    Ok(Verdict::pass(
        "after 2 clients reset mid-request, the next client was served",
    ))
}

async fn close(ctx: &Ctx) -> CaseResult {
    let mut p = ctx.connect("client").await?;
    ctx.exchange(&mut p, b"goodbye soon", "the request").await?;
    if let Err(f) = p.shutdown_write().await {
        return Err(ctx.fail(&mut p, "shutdown(write)", &f));
    }
    let seen = p.await_close().await;
    let verdict = match seen {
        CloseSeen::Fin => Ok(Verdict::pass(
            "after the client's FIN the server closed with FIN",
        )),
        CloseSeen::Reset => Err(
            "after the client's FIN the server closed with RST (connection reset) instead of FIN: an RST can destroy answers still in flight; close the socket normally (no SO_LINGER 0), after reading what the client sent"
                .to_string(),
        ),
        CloseSeen::Data(n) => Err(format!(
            "after its answer and the client's FIN the server sent {n} more bytes (\"{}\") instead of closing",
            preview(p.pending(), 40)
        )),
        CloseSeen::Timeout => Ok(Verdict {
            outcome: Outcome::Warn,
            reason: format!(
                "the server kept the connection open {} after the client's FIN: it should close when recv() returns 0 (the end of the client's data)",
                secs(ctx.link.timeout)
            ),
            figures: Vec::new(),
        }),
        CloseSeen::Error(e) => Err(format!("after the client's FIN: {e}")),
    };
    if !matches!(&verdict, Ok(v) if v.outcome == Outcome::Pass) {
        p.mark_failed();
    }
    p.close();
    verdict
}

async fn idle(ctx: &Ctx) -> CaseResult {
    let mut quiet = ctx.connect("idle client").await?;
    // Lets a server that serves one client at a time take the idle one first.
    tokio::time::sleep(SETTLE).await;
    let mut other = ctx.connect("other client").await.map_err(|e| {
        format!("while another client was connected and silent, the other client {e}")
    })?;
    ctx.exchange(&mut other, b"hello while someone idles", "the other client's request")
        .await
        .map_err(|e| {
            format!(
                "while another client was connected and silent, {e}: the server waits on the idle connection; it must serve whichever connection has data"
            )
        })?;
    other.close();
    ctx.exchange(
        &mut quiet,
        b"the idle client speaks at last",
        "the idle client's late request",
    )
    .await?;
    quiet.close();
    Ok(Verdict::pass(
        "a client was served while another sat idle, and the idle one was served when it spoke",
    ))
}

/// The value at `pct` percent of sorted `values` (nearest rank).
fn percentile(sorted: &[Duration], pct: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (sorted.len() * pct).div_ceil(100).max(1);
    sorted[rank - 1]
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

async fn latency(ctx: &Ctx) -> CaseResult {
    let mut p = ctx.connect("client").await?;
    let deadline = Instant::now() + LATENCY_BUDGET;
    let mut rtts = Vec::with_capacity(LATENCY_REQUESTS);
    for i in 0..LATENCY_REQUESTS {
        if Instant::now() >= deadline {
            break;
        }
        let request = format!("latency probe {i}");
        rtts.push(
            ctx.exchange(&mut p, request.as_bytes(), &format!("request {}", i + 1))
                .await?,
        );
    }
    p.close();
    rtts.sort();
    let (p50, p99, max) = (
        percentile(&rtts, 50),
        percentile(&rtts, 99),
        rtts.last().copied().unwrap_or_default(),
    );
    let figures = format!(
        "p50 {}, p99 {}, max {} over {} requests, one at a time on one connection",
        format_duration(p50),
        format_duration(p99),
        format_duration(max),
        rtts.len()
    );
    let verdict = if p99 > ctx.latency_warn {
        Verdict {
            outcome: Outcome::Warn,
            reason: format!(
                "{figures}: p99 is above the warning threshold of {}",
                format_duration(ctx.latency_warn)
            ),
            figures: Vec::new(),
        }
    } else {
        Verdict::pass(figures)
    };
    Ok(verdict
        .with_figure("requests", rtts.len() as f64)
        .with_figure("p50_ms", ms(p50))
        .with_figure("p99_ms", ms(p99))
        .with_figure("max_ms", ms(max))
        .with_figure("warn_ms", ms(ctx.latency_warn)))
}

/// One booking's answer.
#[derive(Debug, PartialEq, Eq)]
enum Booking {
    Booked(u64),
    SoldOut,
}

fn parse_booking(answer: &[u8]) -> Result<Booking, String> {
    let text = String::from_utf8_lossy(answer);
    if text.starts_with(expect::SOLD_OUT) {
        return Ok(Booking::SoldOut);
    }
    text.strip_prefix(expect::BOOKED)
        .and_then(|rest| rest.trim_start_matches(',').trim().strip_suffix("left"))
        .and_then(|n| n.trim().parse().ok())
        .map(Booking::Booked)
        .ok_or_else(|| {
            format!(
                "the answer to \"book ticket\" was \"{}\", neither \"{}, N left\" nor \"{}\"",
                preview(answer, 40),
                expect::BOOKED,
                expect::SOLD_OUT
            )
        })
}

async fn book(ctx: &Ctx, p: &mut Probe, what: &str) -> Result<Booking, String> {
    let request = b"book ticket";
    if let Err(f) = p.send_message(request).await {
        return Err(ctx.fail(p, what, &f));
    }
    let answer = ctx.answer(p, request, what).await?;
    parse_booking(&answer).inspect_err(|_| p.mark_failed())
}

async fn tickets(ctx: &Ctx) -> CaseResult {
    let mut first = ctx.connect("first client").await?;
    let left = match book(ctx, &mut first, "the first booking").await? {
        Booking::Booked(left) => left,
        Booking::SoldOut => {
            return Ok(Verdict {
                outcome: Outcome::Warn,
                reason: "the stock is already sold out, so the race cannot be tested: restart the server with tickets in stock and check again".into(),
                figures: Vec::new(),
            });
        }
    };
    first.close();
    if left > MAX_TICKET_STOCK {
        return Ok(Verdict {
            outcome: Outcome::Warn,
            reason: format!(
                "{left} tickets are left, more than the {MAX_TICKET_STOCK} the check sells in its time bound: restart the server with a smaller stock (--tickets 50)"
            ),
            figures: Vec::new(),
        });
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(TICKET_CLIENTS));
    let mut set = JoinSet::new();
    for i in 1..=TICKET_CLIENTS {
        let ctx = ctx.clone();
        let barrier = barrier.clone();
        set.spawn(async move {
            let label = format!("client {i} of {TICKET_CLIENTS}");
            let probe = ctx.connect(label.clone()).await;
            // Everyone waits at the barrier, connected or not, so no task hangs.
            barrier.wait().await;
            let mut p = probe.map_err(|e| format!("{label}: {e}"))?;
            let mut booked = Vec::new();
            for k in 0..=left {
                match book(&ctx, &mut p, &format!("{label}, booking {}", k + 1)).await? {
                    Booking::Booked(n) => booked.push(n),
                    Booking::SoldOut => break,
                }
            }
            p.close();
            Ok::<Vec<u64>, String>(booked)
        });
    }
    let mut counts = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(Ok(booked)) => counts.extend(booked),
            Ok(Err(reason)) => return Err(reason),
            Err(err) => return Err(format!("a client task failed: {err}")),
        }
    }
    let total = counts.len() as u64;
    counts.sort_unstable();
    let twice = counts.windows(2).find(|w| w[0] == w[1]).map(|w| w[0]);
    let verdict = if total > left {
        Err(format!(
            "{TICKET_CLIENTS} clients booking at once booked {total} tickets but only {left} were left: {} sold twice; reading and updating the stock must be one atomic step (a lock or an atomic counter)",
            total - left
        ))
    } else if let Some(n) = twice {
        Err(format!(
            "two bookings were both told \"{n} left\": the same ticket was sold twice; reading and updating the stock must be one atomic step"
        ))
    } else if total < left {
        Err(format!(
            "{TICKET_CLIENTS} clients booked only {total} of the {left} tickets left before being told they were sold out"
        ))
    } else {
        Ok(Verdict::pass(format!(
            "{TICKET_CLIENTS} clients racing booked exactly the {left} tickets left, then were told the stock was sold out"
        )))
    };
    verdict.map(|v| {
        v.with_figure("clients", TICKET_CLIENTS as f64)
            .with_figure("stock_left", left as f64)
            .with_figure("booked", total as f64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50), Duration::from_millis(50));
        assert_eq!(percentile(&v, 99), Duration::from_millis(99));
        assert_eq!(percentile(&v[..1], 99), Duration::from_millis(1));
        assert_eq!(percentile(&[], 50), Duration::ZERO);
    }

    #[test]
    fn bookings_parse_and_other_answers_are_refused() {
        assert_eq!(
            parse_booking(b"Booked one ticket, 4 left"),
            Ok(Booking::Booked(4))
        );
        assert_eq!(
            parse_booking(b"Sorry, no tickets left"),
            Ok(Booking::SoldOut)
        );
        assert!(parse_booking(b"Booked one ticket").is_err());
        assert!(parse_booking(b"ok").is_err());
    }

    #[test]
    fn sizes_read_like_numbers() {
        assert_eq!(size_words(1500), "1,500-byte message");
        assert_eq!(size_words(64000), "64,000-byte message");
        assert_eq!(size_words(15), "15-byte message");
    }
}
