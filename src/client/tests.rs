//! Tests of `client`.

use super::*;
use tokio::net::TcpListener;

/// A one-connection server that reads `expect` bytes, then writes each
/// chunk of `reply` with a short pause (so the client sees them as
/// separate reads), then closes or, with `hold`, waits for the client's FIN.
async fn serve_once(expect: usize, reply: Vec<Vec<u8>>, hold: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut got = vec![0u8; expect];
        sock.read_exact(&mut got).await.unwrap();
        for chunk in reply {
            sock.write_all(&chunk).await.unwrap();
            sock.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if hold {
            let mut rest = Vec::new();
            let _ = sock.read_to_end(&mut rest).await;
        }
    });
    addr
}

async fn connect(addr: SocketAddr, framing: Framing) -> Client {
    Client::connect(&addr.to_string(), framing, Duration::from_secs(5))
        .await
        .unwrap()
}

#[test]
fn default_port_is_added_only_when_missing() {
    assert_eq!(with_default_port("localhost"), "localhost:2222");
    assert_eq!(with_default_port("reqresp-server"), "reqresp-server:2222");
    assert_eq!(with_default_port("10.0.0.2"), "10.0.0.2:2222");
    assert_eq!(with_default_port("::1"), "[::1]:2222");
    assert_eq!(with_default_port("[::1]"), "[::1]:2222");
    assert_eq!(with_default_port("[::1]:7"), "[::1]:7");
    assert_eq!(with_default_port("host:9000"), "host:9000");
}

#[tokio::test]
async fn line_response_split_over_reads_is_reassembled() {
    let addr = serve_once(
        b"hi\n".len(),
        vec![b"Ec".to_vec(), b"ho: h".to_vec(), b"i\r\n".to_vec()],
        false,
    )
    .await;
    let mut client = connect(addr, Framing::Line).await;
    let response = client.request(b"hi").await.unwrap();
    assert_eq!(&response.bytes[..], b"Echo: hi");
    assert!(
        response.rtt >= Duration::from_millis(40),
        "{:?}",
        response.rtt
    );
}

#[tokio::test]
async fn length_response_split_inside_the_prefix_is_reassembled() {
    let addr = serve_once(4 + 3, vec![vec![0, 0], vec![0, 3, 0xff], vec![0, 1]], false).await;
    let mut client = connect(addr, Framing::Length).await;
    let response = client.request(&[1, 2, 3]).await.unwrap();
    assert_eq!(&response.bytes[..], &[0xff, 0, 1]);
}

#[tokio::test]
async fn two_responses_in_one_read_are_handed_out_one_by_one() {
    let addr = serve_once(4, vec![b"Echo: a\nEcho: b\n".to_vec()], false).await;
    let mut client = connect(addr, Framing::Line).await;
    client.send(b"a").await.unwrap();
    client.send(b"b").await.unwrap();
    assert_eq!(&client.receive().await.unwrap()[..], b"Echo: a");
    assert_eq!(&client.receive().await.unwrap()[..], b"Echo: b");
}

#[tokio::test]
async fn raw_takes_one_read_and_shows_why_it_is_unreliable() {
    // The server's answer arrives in two reads: raw framing has no way to
    // know it is one message, so it returns the first part alone, and the
    // rest is taken as the next response.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (first_seen, wait_first) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut got = [0u8; 2];
        sock.read_exact(&mut got).await.unwrap();
        sock.write_all(b"Echo: ").await.unwrap();
        wait_first.await.unwrap();
        sock.write_all(b"hi").await.unwrap();
        let _ = sock.read_to_end(&mut Vec::new()).await;
    });
    let mut client = connect(addr, Framing::Raw).await;
    assert_eq!(&client.request(b"hi").await.unwrap().bytes[..], b"Echo: ");
    first_seen.send(()).unwrap();
    assert_eq!(&client.receive().await.unwrap()[..], b"hi");
}

#[tokio::test]
async fn close_before_answering_is_reported() {
    let addr = serve_once(3, vec![], false).await;
    let mut client = connect(addr, Framing::Line).await;
    let err = client.request(b"hi").await.unwrap_err();
    assert!(
        matches!(err, ClientError::Closed { partial: 0, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("closed the connection before answering")
    );
}

#[tokio::test]
async fn close_mid_response_reports_the_partial_bytes() {
    let addr = serve_once(3, vec![b"Echo: h".to_vec()], false).await;
    let mut client = connect(addr, Framing::Line).await;
    let err = client.request(b"hi").await.unwrap_err();
    assert!(
        matches!(err, ClientError::Closed { partial: 7, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("in the middle of a response (7 bytes")
    );
}

#[tokio::test]
async fn silent_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let timeout = Duration::from_millis(300);
    let mut client = Client::connect(&addr.to_string(), Framing::Line, timeout)
        .await
        .unwrap();
    let (_held, _) = listener.accept().await.unwrap();
    let started = Instant::now();
    let err = client.request(b"hi").await.unwrap_err();
    assert!(started.elapsed() >= timeout);
    assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("no response from {addr} within 0.3 s")),
        "{err}"
    );
}

#[tokio::test]
async fn refused_connection_names_the_address_and_a_fix() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let err = Client::connect(&addr.to_string(), Framing::Line, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("cannot connect to {addr}: connection refused — is `reqresp server` running?")
    );
}

#[tokio::test]
async fn unresolvable_name_is_reported_as_such() {
    // `.invalid` never resolves (RFC 6761); the resolver answers locally.
    let err = Client::connect(
        "no-such-host.invalid",
        Framing::Line,
        Duration::from_secs(5),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Resolve { .. } | ClientError::ResolveTimeout { .. }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("cannot resolve no-such-host.invalid:2222")
    );
}

#[tokio::test]
async fn unsendable_requests_fail_before_anything_is_written() {
    let addr = serve_once(0, vec![], true).await;
    let mut line = connect(addr, Framing::Line).await;
    assert!(matches!(
        line.request(b"a\nb").await,
        Err(ClientError::Request(FrameError::NewlineInLine))
    ));
    let addr = serve_once(0, vec![], true).await;
    let mut raw = connect(addr, Framing::Raw).await;
    assert!(matches!(raw.request(b"").await, Err(ClientError::EmptyRaw)));
}

#[tokio::test]
async fn oversize_length_prefix_is_refused_without_buffering_it() {
    let addr = serve_once(5, vec![vec![0x7f, 0xff, 0xff, 0xff, b'x']], true).await;
    let mut client = connect(addr, Framing::Length).await.with_max_response(1024);
    let err = client.request(b"x").await.unwrap_err();
    assert!(
        matches!(err, ClientError::ResponseTooLarge { limit: 1024, .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("--max-response"), "{message}");
    assert!(!message.contains("--max-request"), "{message}");
    assert!(client.inbuf.capacity() < 64 * 1024);
}

#[tokio::test]
async fn a_connection_the_server_closed_while_idle_is_reopened() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        // The first connection is closed at once, as an idle timeout would.
        drop(listener.accept().await.unwrap());
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 3];
        sock.read_exact(&mut buf).await.unwrap();
        sock.write_all(b"Echo: hi\n").await.unwrap();
        sock
    });
    let mut client = connect(addr, Framing::Line).await;
    // Until the FIN has arrived the connection still looks open.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !client.reconnect_if_closed().await.unwrap() {
        assert!(tokio::time::Instant::now() < deadline, "no reconnect");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let response = client.request(b"hi").await.unwrap();
    assert_eq!(&response.bytes[..], b"Echo: hi");
    assert!(!client.reconnect_if_closed().await.unwrap());
    drop(server.await.unwrap());
}

#[tokio::test]
async fn close_sends_fin_and_waits_for_the_server() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut rest = Vec::new();
        // read_to_end returns Ok only on a FIN; a RST would be an error.
        sock.read_to_end(&mut rest).await.map(|_| rest)
    });
    let client = connect(addr, Framing::Line).await;
    client.close().await.unwrap();
    assert_eq!(server.await.unwrap().unwrap(), b"");
}

#[test]
fn printable_escapes_terminal_controls_and_bad_utf8() {
    assert_eq!(printable(b"Echo: hi"), "Echo: hi");
    assert_eq!(printable(b"a\tb"), "a\tb");
    assert_eq!(printable(b"\x1b[2Jx\n"), "\\u{1b}[2Jx\\n");
    assert_eq!(printable(&[b'a', 0xff]), "a\u{fffd}");
}
