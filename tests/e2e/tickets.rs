//! The tickets service's ledger end to end: real server processes killed
//! with SIGKILL and restarted, two servers sharing one ledger file, damaged
//! and unwritable ledgers, and the rule that a client is told about every
//! booking the ledger holds for it, also across SIGTERM.
//!
//! The ledger is read back with SQLite itself (read-only), as an operator
//! would with `sqlite3`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use crate::support::{self, Server};

/// Longest any single read in these tests may wait.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// What the ledger file holds: (total, sold, rows in `bookings`).
fn ledger(db: &Path) -> (i64, i64, i64) {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open the ledger read-only");
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    let (total, sold) = conn
        .query_row("SELECT total, sold FROM stock", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("read the stock");
    let rows = conn
        .query_row("SELECT count(*) FROM bookings", [], |r| r.get(0))
        .unwrap();
    (total, sold, rows)
}

/// Bookings per server process id, from the ledger.
fn sold_by_pid(db: &Path) -> Vec<(u32, i64)> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut stmt = conn
        .prepare("SELECT pid, count(*) FROM bookings GROUP BY pid ORDER BY pid")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn tickets_server(db: &Path, extra: &[&str]) -> Server {
    let mut args = vec!["--service", "tickets", "--tickets-db", db.to_str().unwrap()];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// Runs `reqresp server --listen 127.0.0.1:0 <args>` expecting it to stop by
/// itself (a start-up error); kills it after 20 s if it does not.
fn server_exit(args: &[&str], configure: impl FnOnce(&mut std::process::Command)) -> Output {
    let mut cmd = support::reqresp();
    cmd.args(["server", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    configure(&mut cmd);
    let mut child = cmd.spawn().expect("spawn reqresp server");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the server did not stop with an error; stdout {:?}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// The server's start-up error: exit status 1, nothing on stdout (no
/// `listening on`), the message on stderr.
fn startup_error(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("listening on"),
        "it must not listen: {stderr}"
    );
    stderr
}

fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
    let stream = TcpStream::connect(addr).expect("connect to the server");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    BufReader::new(stream)
}

fn ask(conn: &mut BufReader<TcpStream>, request: &str) -> String {
    conn.get_mut()
        .write_all(format!("{request}\n").as_bytes())
        .unwrap();
    let mut line = String::new();
    conn.read_line(&mut line).expect("read a response");
    assert!(line.ends_with('\n'), "no whole response: {line:?}");
    line.trim_end().to_owned()
}

/// The count left in a confirmation, `None` for anything else.
fn booked(answer: &str) -> Option<u64> {
    answer
        .strip_prefix("Booked one ticket, ")?
        .strip_suffix(" left")?
        .parse()
        .ok()
}

/// `clients` connections to the given servers (round robin), released
/// together, each booking until it is told the stock is sold out (at most
/// `max_each` times). Returns every answer.
fn book_until_sold_out(addrs: &[SocketAddr], clients: usize, max_each: usize) -> Vec<String> {
    let start = Arc::new(Barrier::new(clients));
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            let addr = addrs[i % addrs.len()];
            let start = start.clone();
            thread::spawn(move || {
                let mut conn = connect(addr);
                start.wait();
                let mut answers = Vec::new();
                for _ in 0..max_each {
                    let answer = ask(&mut conn, "book ticket");
                    let done = answer == "Sorry, no tickets left";
                    answers.push(answer);
                    if done {
                        break;
                    }
                }
                answers
            })
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|t| t.join().expect("a client thread"))
        .collect()
}

fn confirmed(answers: &[String]) -> Vec<u64> {
    let mut left: Vec<u64> = answers.iter().filter_map(|a| booked(a)).collect();
    left.sort_unstable();
    left
}

/// Every answer is a confirmation or a sold out, nothing else.
fn assert_only_bookings(answers: &[String]) {
    for a in answers {
        assert!(
            booked(a).is_some() || a == "Sorry, no tickets left",
            "unexpected answer {a:?}"
        );
    }
}

#[test]
fn sigkill_then_restart_sells_exactly_the_stock() {
    const STOCK: u64 = 20;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tickets.db");
    let mut server = tickets_server(&db, &["--tickets", &STOCK.to_string()]);
    let mut conn = connect(server.addr);
    let before: Vec<String> = (0..7).map(|_| ask(&mut conn, "book ticket")).collect();
    assert_eq!(
        confirmed(&before),
        (13..20).collect::<Vec<_>>(),
        "{before:?}"
    );
    server.child.kill().unwrap(); // SIGKILL: no chance to flush anything
    server.child.wait().unwrap();
    drop(conn);
    assert_eq!(
        ledger(&db),
        (20, 7, 7),
        "every confirmed booking is on disk"
    );

    // The same --tickets continues the stock; so does leaving it out.
    let mut server = tickets_server(&db, &["--tickets", &STOCK.to_string()]);
    let more = ask(&mut connect(server.addr), "book ticket");
    assert_eq!(more, "Booked one ticket, 12 left");
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let server = tickets_server(&db, &[]);
    let after = book_until_sold_out(&[server.addr], 30, 20);
    assert_only_bookings(&after);
    // 7 + 1 before, 12 now: exactly the stock, each count left once.
    assert_eq!(confirmed(&after), (0..12).collect::<Vec<_>>());
    assert_eq!(ledger(&db), (20, 20, 20));
}

#[test]
fn sigkill_in_the_middle_of_a_rush_loses_no_confirmed_booking() {
    const STOCK: i64 = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tickets.db");
    let mut server = tickets_server(&db, &["--tickets", &STOCK.to_string()]);
    let addr = server.addr;
    // 16 clients book as fast as they can; the server is killed under them.
    let rush: Vec<_> = (0..16)
        .map(|_| {
            thread::spawn(move || {
                let mut conn = connect(addr);
                let mut confirmed = 0i64;
                for _ in 0..5_000 {
                    let mut line = String::new();
                    if conn.get_mut().write_all(b"book ticket\n").is_err()
                        || conn.read_line(&mut line).unwrap_or(0) == 0
                    {
                        break; // the server is gone
                    }
                    assert!(booked(line.trim_end()).is_some(), "{line:?}");
                    confirmed += 1;
                }
                confirmed
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while ledger(&db).1 < 200 {
        assert!(Instant::now() < deadline, "no bookings in 60 s");
        thread::sleep(Duration::from_millis(10));
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let told: i64 = rush.into_iter().map(|t| t.join().unwrap()).sum();
    let (_, sold, rows) = ledger(&db);
    assert_eq!(sold, rows);
    // Every confirmation a client received is in the ledger. (A booking
    // committed while its answer was still in the server is in the ledger
    // too, without a confirmation: the kill came between the two.)
    assert!(
        told <= sold,
        "{told} confirmed but only {sold} in the ledger"
    );
    assert!(told > 0);

    let server = tickets_server(&db, &[]);
    let mut conn = connect(server.addr);
    assert_eq!(
        ask(&mut conn, "book ticket"),
        format!("Booked one ticket, {} left", STOCK - sold - 1),
        "the restart goes on from the ledger"
    );
}

#[test]
fn two_servers_on_one_ledger_never_oversell_to_200_clients() {
    const STOCK: u64 = 300;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tickets.db");
    let a = tickets_server(&db, &["--tickets", &STOCK.to_string()]);
    let b = tickets_server(&db, &["--tickets", &STOCK.to_string()]);
    // 200 clients, 100 on each server, up to 2 bookings each: 400 tries for
    // 300 tickets. One server's clients can buy at most 200, so both servers
    // must sell, however SQLite hands its write lock between them.
    let answers = book_until_sold_out(&[a.addr, b.addr], 200, 2);
    assert_only_bookings(&answers);
    // Exactly the stock was sold, and no count left was given twice: the two
    // servers never sold the same ticket.
    assert_eq!(confirmed(&answers), (0..STOCK).collect::<Vec<_>>());
    assert_eq!(ledger(&db), (300, 300, 300));
    let by_pid = sold_by_pid(&db);
    assert_eq!(
        by_pid.iter().map(|(pid, _)| *pid).collect::<Vec<_>>(),
        {
            let mut pids = vec![a.child.id(), b.child.id()];
            pids.sort_unstable();
            pids
        },
        "both servers sold tickets: {by_pid:?}"
    );
}

#[test]
fn a_disagreeing_stock_is_refused_and_reset_starts_over() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tickets.db");
    let db_arg = db.to_str().unwrap();
    {
        let server = tickets_server(&db, &["--tickets", "5"]);
        let mut conn = connect(server.addr);
        ask(&mut conn, "book ticket");
        ask(&mut conn, "book ticket");
    }
    let out = server_exit(
        &[
            "--service",
            "tickets",
            "--tickets-db",
            db_arg,
            "--tickets",
            "9",
        ],
        |_| {},
    );
    let err = startup_error(&out);
    assert!(
        err.contains("holds a stock of 5 tickets (2 sold, 3 left)")
            && err.contains("--tickets says 9")
            && err.contains("--reset-tickets"),
        "{err}"
    );
    assert_eq!(ledger(&db), (5, 2, 2), "the refused start changed nothing");

    let server = tickets_server(&db, &["--tickets", "9", "--reset-tickets"]);
    assert_eq!(ledger(&db), (9, 0, 0));
    let answers = book_until_sold_out(&[server.addr], 1, 20);
    assert_eq!(confirmed(&answers), (0..9).collect::<Vec<_>>());
}

#[test]
fn a_corrupt_ledger_is_refused_at_start_up_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();

    // Not a database at all.
    let garbage = dir.path().join("garbage.db");
    let bytes = b"these are not the tickets you are looking for\n".repeat(200);
    std::fs::write(&garbage, &bytes).unwrap();
    let out = server_exit(
        &[
            "--service",
            "tickets",
            "--tickets-db",
            garbage.to_str().unwrap(),
        ],
        |_| {},
    );
    let err = startup_error(&out);
    assert!(
        err.contains("is not a reqresp tickets ledger") && err.contains("--tickets-db"),
        "{err}"
    );
    assert_eq!(std::fs::read(&garbage).unwrap(), bytes, "never overwritten");

    // A real ledger, closed cleanly, then damaged on disk.
    let db = dir.path().join("tickets.db");
    {
        let mut server = tickets_server(&db, &["--tickets", "1000"]);
        let answers = book_until_sold_out(&[server.addr], 4, 50);
        assert_eq!(confirmed(&answers).len(), 200);
        server.signal(libc::SIGTERM);
        assert!(server.wait_exit(Duration::from_secs(20)).is_some());
    }
    assert!(
        !dir.path().join("tickets.db-wal").exists(),
        "closed cleanly"
    );
    let mut file = std::fs::read(&db).unwrap();
    assert!(file.len() >= 3 * 4096, "a ledger of several pages");
    for b in &mut file[4096..3 * 4096] {
        *b = 0xA5;
    }
    std::fs::write(&db, &file).unwrap();
    let out = server_exit(
        &["--service", "tickets", "--tickets-db", db.to_str().unwrap()],
        |_| {},
    );
    let err = startup_error(&out);
    assert!(
        err.contains("is corrupt") && err.contains("backup"),
        "{err}"
    );
    assert_eq!(std::fs::read(&db).unwrap(), file, "never overwritten");
}

#[test]
fn an_unwritable_ledger_is_refused_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // Root writes anywhere: run the server as nobody then.
    let as_user = |cmd: &mut std::process::Command| {
        if support::is_root() {
            cmd.uid(65534).gid(65534);
        }
    };

    // A directory this user cannot write: no ledger can be created there.
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    let db = locked.join("tickets.db");
    let out = server_exit(
        &["--service", "tickets", "--tickets-db", db.to_str().unwrap()],
        as_user,
    );
    let err = startup_error(&out);
    assert!(
        err.contains("cannot write the tickets ledger") && err.contains("writable by this user"),
        "{err}"
    );
    assert!(!db.exists());

    // An existing ledger this user may read but not write.
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    let db = open.join("tickets.db");
    drop(tickets_server(&db, &["--tickets", "3"]));
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).unwrap();
    if support::is_root() {
        // Owned by root, mode 0444 and in a directory nobody cannot write.
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = server_exit(
        &["--service", "tickets", "--tickets-db", db.to_str().unwrap()],
        as_user,
    );
    let err = startup_error(&out);
    assert!(err.contains("cannot write the tickets ledger"), "{err}");
}

#[test]
fn memory_keeps_todays_behaviour_and_says_so_and_the_default_is_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = support::reqresp()
        .args(["server", "--listen", "127.0.0.1:0", "--service", "tickets"])
        .args(["--tickets", "2", "--tickets-db", ":memory:"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .parse()
        .unwrap();
    let mut conn = connect(addr);
    assert_eq!(ask(&mut conn, "book ticket"), "Booked one ticket, 1 left");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    drop(conn);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tickets kept in memory only")
            && stderr.contains("lost when the server stops"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no file written"
    );

    // Without --tickets-db the ledger is reqresp-tickets.db in the working directory.
    let mut child = support::reqresp()
        .args(["server", "--listen", "127.0.0.1:0", "--service", "tickets"])
        .env_remove("REQRESP_TICKETS_DB")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        ask(&mut connect(addr), "book ticket"),
        "Booked one ticket, 4 left"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(ledger(&dir.path().join("reqresp-tickets.db")), (5, 1, 1));
}

/// Issue 9 §4: a client that pipelines bookings and reads late, the server
/// stopped with SIGTERM in the middle. Every booking the ledger holds must
/// have reached the client as a confirmation.
///
/// Fails with the drain of today's handler (seen: 21 483 bookings in the
/// ledger, 21 142 confirmations, then a connection reset). The server log
/// shows why: during the drain the connection goes on reading and booking
/// the client's queued requests until the 60 s drain timeout, is cut there
/// with answers unsent, and closing with unread requests resets the
/// connection, destroying answers already owed. The drain is being reworked
/// for issue 9 §4; run with `--ignored` until that lands, then drop the
/// `ignore`.
#[test]
fn sigterm_pipelined_slow_reader_is_told_about_every_booking_made() {
    const PIPELINED: usize = 200_000;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tickets.db");
    let mut server = tickets_server(&db, &["--tickets", "1000000", "--drain-timeout", "60"]);
    let stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(90)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(90)))
        .unwrap();
    // The writer sends everything at once and stops when the server closes.
    let mut writer = stream.try_clone().unwrap();
    let sender = thread::spawn(move || {
        let requests = b"book ticket\n".repeat(PIPELINED);
        let _ = writer.write_all(&requests);
    });
    // Let the server book a while without reading a single answer.
    let deadline = Instant::now() + Duration::from_secs(60);
    while ledger(&db).1 < 300 {
        assert!(Instant::now() < deadline, "no bookings in 60 s");
        thread::sleep(Duration::from_millis(10));
    }
    server.signal(libc::SIGTERM);
    // Then read slowly until the server closes.
    let mut reader = stream;
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut reset = None;
    loop {
        match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            Err(e) => {
                reset = Some(e);
                break;
            }
        }
        thread::sleep(Duration::from_millis(2));
    }
    let status = server.wait_exit(Duration::from_secs(90));
    assert!(status.is_some_and(|s| s.success()), "exit {status:?}");
    let _ = sender.join();
    let text = String::from_utf8_lossy(&received);
    let confirmations = text
        .split_inclusive('\n')
        .filter(|l| l.ends_with('\n') && booked(l.trim_end()).is_some())
        .count() as i64;
    let (_, sold, rows) = ledger(&db);
    assert_eq!(sold, rows);
    assert_eq!(
        sold, confirmations,
        "bookings in the ledger vs confirmations received (read ended by {reset:?})"
    );
}
