//! Tests of the connection handler over in-memory streams.
use super::*;
use crate::server::registry::Admission;
use crate::server::service::Echo;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};

fn config(framing: Framing, max_request: usize) -> Config {
    Config {
        framing,
        max_request,
        service: Arc::new(Echo::default()),
        ..Config::default()
    }
}

fn peer() -> SocketAddr {
    "127.0.0.1:9".parse().unwrap()
}

fn ticket(registry: &Arc<Registry>) -> Ticket {
    match registry.admit(peer().ip()) {
        Admission::Now(ticket) => ticket,
        _ => panic!("no free slot"),
    }
}

/// The line-framing config most tests start from.
fn lines() -> Config {
    config(Framing::Line, 1024)
}

/// A client end of a 4 KiB in-memory stream whose other end is served
/// with `cfg` in a task; with the registry and the task.
fn open(cfg: Config) -> (DuplexStream, Arc<Registry>, tokio::task::JoinHandle<u64>) {
    let (client, server) = duplex(4096);
    let (registry, task) = spawn(server, cfg);
    (client, registry, task)
}

/// Sends `request` as a line and checks the echo that answers it.
async fn ask(client: &mut DuplexStream, request: &str) {
    client
        .write_all(format!("{request}\n").as_bytes())
        .await
        .unwrap();
    let expected = format!("Echo: {request}\n");
    let mut answer = vec![0u8; expected.len()];
    client.read_exact(&mut answer).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&answer), expected);
}

/// Serves `server` with `cfg` in a task; returns the registry too.
fn spawn(server: DuplexStream, cfg: Config) -> (Arc<Registry>, tokio::task::JoinHandle<u64>) {
    let registry = Registry::new(cfg.max_connections, None);
    let ticket = ticket(&registry);
    let task = tokio::spawn(async move { serve(server, peer(), &cfg, ticket).await });
    (registry, task)
}

#[tokio::test]
async fn answers_until_the_client_closes() {
    let (mut client, _registry, task) = open(lines());
    client.write_all(b"a\nb\r\n").await.unwrap();
    client.shutdown().await.unwrap();
    let mut got = String::new();
    client.read_to_string(&mut got).await.unwrap();
    assert_eq!(got, "Echo: a\nEcho: b\n");
    assert_eq!(task.await.unwrap(), 2);
}

#[tokio::test]
async fn oversize_request_gets_an_error_then_close() {
    let (mut client, server) = duplex(1 << 16);
    let (_registry, task) = spawn(server, config(Framing::Length, 8));
    let mut wire = Vec::new();
    Framing::Length.encode(b"ok", &mut wire).unwrap();
    Framing::Length.encode(&[0; 100], &mut wire).unwrap();
    client.write_all(&wire).await.unwrap();
    let mut got = Vec::new();
    client.read_to_end(&mut got).await.unwrap();
    let (msgs, _, _) = Framing::Length.decode_all(&got, 1024);
    let msgs: Vec<&[u8]> = msgs.into_iter().map(|r| &got[r]).collect();
    assert_eq!(msgs[0], b"Echo: ok");
    assert!(String::from_utf8_lossy(msgs[1]).contains("larger than the server's limit of 8 bytes"));
    assert_eq!(msgs.len(), 2);
    drop(client);
    assert_eq!(task.await.unwrap(), 1);
}

/// Reads until the server closes; returns what came and when it closed.
async fn read_until_closed(client: &mut DuplexStream) -> (Vec<u8>, Instant) {
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).await.unwrap();
    (rest, Instant::now())
}

#[tokio::test(start_paused = true)]
async fn idle_connection_is_closed_at_the_idle_timeout() {
    let cfg = Config {
        idle_timeout: Duration::from_secs(30),
        ..lines()
    };
    let (mut client, _registry, task) = open(cfg);
    ask(&mut client, "hi").await;
    let answered = Instant::now();
    // Paused time jumps ahead: the timeout fires without a real wait.
    let (rest, closed) = read_until_closed(&mut client).await;
    assert!(rest.is_empty());
    assert_eq!(closed - answered, Duration::from_secs(30));
    assert_eq!(task.await.unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_active_connection_outlives_many_idle_timeouts() {
    let cfg = Config {
        idle_timeout: Duration::from_millis(500),
        ..lines()
    };
    let (mut client, _registry, task) = open(cfg);
    // A request every 200 ms for 1.6 s: never idle for 500 ms.
    for i in 0..8 {
        ask(&mut client, &i.to_string()).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let last = Instant::now() - Duration::from_millis(200);
    let (_, closed) = read_until_closed(&mut client).await;
    assert_eq!(closed - last, Duration::from_millis(500));
    assert_eq!(task.await.unwrap(), 8);
}

#[tokio::test(start_paused = true)]
async fn half_a_line_is_closed_at_the_idle_timeout_not_later() {
    // Regression: the partial-line hint (at 2 s) used to re-arm the
    // idle timeout, closing at idle + 2 s.
    let cfg = Config {
        idle_timeout: Duration::from_secs(10),
        request_timeout: Duration::from_secs(60),
        ..lines()
    };
    let (mut client, _registry, task) = open(cfg);
    client.write_all(b"half a li").await.unwrap();
    let sent = Instant::now();
    let (rest, closed) = read_until_closed(&mut client).await;
    assert_eq!(closed - sent, Duration::from_secs(10));
    assert!(String::from_utf8_lossy(&rest).contains("request not complete"));
    assert_eq!(task.await.unwrap(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_trickled_request_is_cut_at_the_request_timeout() {
    let cfg = Config {
        request_timeout: Duration::from_secs(5),
        ..lines()
    };
    let (mut client, _registry, task) = open(cfg);
    // One whole request, then a slowloris: one byte a second.
    ask(&mut client, "ok").await;
    let started = Instant::now();
    let trickle = tokio::spawn(async move {
        let mut sent = 0;
        while client.write_all(b"x").await.is_ok() && sent < 60 {
            sent += 1;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        client
    });
    let mut client = trickle.await.unwrap();
    let (rest, _) = read_until_closed(&mut client).await;
    assert_eq!(
        String::from_utf8_lossy(&rest),
        "error: request not complete within 5 s; closing\n"
    );
    assert_eq!(task.await.unwrap(), 1);
    // The trickle stopped when the server closed: 5 bytes, one a second.
    assert!(Instant::now() - started <= Duration::from_secs(7));
}

#[tokio::test(start_paused = true)]
async fn a_silent_new_connection_is_closed_at_the_first_byte_timeout() {
    let cfg = Config {
        first_byte_timeout: Duration::from_secs(3),
        ..lines()
    };
    let opened = Instant::now();
    let (mut client, _registry, task) = open(cfg);
    let (rest, closed) = read_until_closed(&mut client).await;
    assert!(rest.is_empty());
    assert_eq!(closed - opened, Duration::from_secs(3));
    assert_eq!(task.await.unwrap(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_answered_is_not_cut_by_the_first_byte_timeout() {
    let cfg = Config {
        first_byte_timeout: Duration::from_secs(3),
        idle_timeout: Duration::from_secs(100),
        ..lines()
    };
    let (mut client, _registry, task) = open(cfg);
    ask(&mut client, "hi").await;
    let answered = Instant::now();
    let (_, closed) = read_until_closed(&mut client).await;
    assert_eq!(closed - answered, Duration::from_secs(100));
    assert_eq!(task.await.unwrap(), 1);
}

#[tokio::test]
async fn shutdown_closes_an_idle_connection_cleanly() {
    let (mut client, registry, task) = open(lines());
    ask(&mut client, "before").await;
    registry.start_drain(Instant::now() + Duration::from_secs(5));
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
    drop(client);
    assert_eq!(task.await.unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn draining_delivers_every_answer_made_and_takes_no_new_request() {
    // A small pipe: the server blocks writing answers the client has
    // not read yet, with more requests waiting behind them.
    let (client, server) = duplex(256);
    let (registry, task) = spawn(server, lines());
    let requests: Vec<u8> = (0..2000)
        .flat_map(|i| format!("{i}\n").into_bytes())
        .collect();
    let (mut read_half, mut write_half) = tokio::io::split(client);
    let writer = tokio::spawn(async move {
        let _ = write_half.write_all(&requests).await;
        write_half
    });
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        // Read slowly: 64 bytes, then a pause.
        let mut chunk = [0u8; 64];
        let mut drained = false;
        loop {
            match read_half.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
            if !drained && got.len() > 1000 {
                drained = true;
                registry.start_drain(Instant::now() + Duration::from_secs(60));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        got
    });
    let got = reader.await.unwrap();
    let processed = task.await.unwrap();
    drop(writer.await.unwrap());
    let got = String::from_utf8(got).unwrap();
    let received = got.lines().count() as u64;
    assert!(processed < 2000, "draining must stop taking requests");
    assert_eq!(received, processed, "every answer made is delivered");
    for (i, line) in got.lines().enumerate() {
        assert_eq!(line, format!("Echo: {i}"));
    }
}

#[tokio::test(start_paused = true)]
async fn a_reclaimed_connection_closes_and_frees_its_slot() {
    let cfg = Config {
        max_connections: 1,
        ..lines()
    };
    let (mut client, registry, task) = open(cfg);
    ask(&mut client, "hi").await;
    let Admission::AfterReclaim(pending) = registry.admit(peer().ip()) else {
        panic!("the waiting connection must be reclaimed");
    };
    let (rest, _) = read_until_closed(&mut client).await;
    assert!(rest.is_empty());
    assert!(pending.wait().await.is_some());
    assert_eq!(task.await.unwrap(), 1);
}
