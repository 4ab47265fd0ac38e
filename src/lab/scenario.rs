//! The lab's scenarios as data: what each one sets up, which fault it
//! applies, how its clients behave, and what it tells the student in
//! English and Indonesian. [`super::scenario_run`] runs them.

use std::time::Duration;

/// How the clients of a scenario behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// One client, `messages` requests fed one at a time through its stdin,
    /// `gap` apart; `timeout` bounds each request.
    Paced {
        /// Requests sent.
        messages: usize,
        /// Pause after each answer.
        gap: Duration,
        /// The client's `--timeout`.
        timeout: Duration,
    },
    /// One client; the server is killed (SIGKILL) after the first answer,
    /// then the client sends again; then a new client tries to connect.
    Crash,
    /// A 3,000-byte message to a server with raw framing (one `recv(1024)`
    /// is one request), then to one with line framing.
    RecvBug,
    /// Three clients at once against the original lab's Python server (one
    /// client, then exit), then against `reqresp server`.
    OneClientServer,
    /// `clients` clients book at the same moment from a stock of `tickets`.
    TicketsRace {
        /// Clients started together.
        clients: usize,
        /// Stock of the server.
        tickets: u64,
    },
    /// A client that sends large requests and never reads the answers.
    SlowReader,
}

/// One scenario.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// Its name for `--scenario`.
    pub name: &'static str,
    /// One line for `--scenario list`.
    pub summary: &'static str,
    /// The `--fault` it applies (empty: none).
    pub fault: &'static str,
    /// `reqresp server --delay` in milliseconds (0: none).
    pub server_delay_ms: u64,
    /// What the clients do.
    pub plan: Plan,
    /// What happened and what to look at, in English.
    pub explain_en: &'static str,
    /// The same in Indonesian.
    pub explain_id: &'static str,
}

const PACED_5: Plan = Plan::Paced {
    messages: 5,
    gap: Duration::from_millis(100),
    timeout: Duration::from_secs(5),
};

/// Every scenario, in the order `--scenario list` prints them.
pub(crate) const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "happy",
        summary: "no fault: one client, five requests, every answer at once",
        fault: "",
        server_delay_ms: 0,
        plan: PACED_5,
        explain_en: "Nothing went wrong. Each request is one segment from the client, answered by one segment from the server; the handshake RTT and each exchange's latency are a fraction of a millisecond on this bridge. Keep this ladder next to the others: it is what \"normal\" looks like.",
        explain_id: "Tidak ada yang salah. Setiap permintaan adalah satu segmen dari klien, dijawab oleh satu segmen dari server; RTT handshake dan latensi setiap pertukaran hanya sebagian kecil dari satu milidetik di bridge ini. Simpan ladder ini di samping yang lain: beginilah tampilan \"normal\".",
    },
    Scenario {
        name: "loss",
        summary: "15% random loss each way: retransmissions, yet every request is answered",
        fault: "loss=15%",
        server_delay_ms: 0,
        plan: Plan::Paced {
            // 60 data segments at 15%: all through unharmed once in 17,000 runs.
            messages: 30,
            gap: Duration::from_millis(20),
            timeout: Duration::from_secs(20),
        },
        explain_en: "About one segment in seven was dropped on its way into a host. TCP noticed the missing acknowledgment and sent the data again: look for the ⟲ retransmission lines and their delay (at least 200 ms, Linux's minimum RTO), and for the exchanges whose latency jumped. The client still got every answer: TCP hides loss from the application, and turns it into delay.",
        explain_id: "Sekitar satu dari tujuh segmen dibuang saat masuk ke host. TCP menyadari acknowledgment yang hilang lalu mengirim data itu lagi: cari baris ⟲ retransmission dan jedanya (minimal 200 ms, RTO minimum Linux), serta pertukaran yang latensinya melonjak. Klien tetap menerima setiap jawaban: TCP menyembunyikan kehilangan paket dari aplikasi dan mengubahnya menjadi keterlambatan.",
    },
    Scenario {
        name: "delay",
        summary: "50 ms ± 10 ms each way: the RTT and every exchange grow, nothing is lost",
        fault: "delay=50ms±10ms",
        server_delay_ms: 0,
        plan: PACED_5,
        explain_en: "Every packet waited about 50 ms on its way into a host. The capture sits on the bridge, in the middle: it sees the SYN-ACK and each answer about 50 ms after the SYN or request (the way to the server), and the initial RTT, SYN to the client's ACK, about 100 ms (both ways). The time is spent in the network, not in the server: the server answered as soon as the request reached it (the line under each answer splits its latency: about 50 ms network, nearly no server time). There are no retransmissions: late is not lost. Compare with slow-server.",
        explain_id: "Setiap paket menunggu sekitar 50 ms saat masuk ke host. Capture berada di bridge, di tengah: ia melihat SYN-ACK dan setiap jawaban sekitar 50 ms setelah SYN atau permintaan (perjalanan ke server), dan initial RTT, dari SYN sampai ACK klien, sekitar 100 ms (dua arah). Waktunya habis di jaringan, bukan di server: server menjawab begitu permintaan sampai (baris di bawah setiap jawaban membagi latensinya: sekitar 50 ms jaringan, hampir tanpa waktu server). Tidak ada retransmisi: terlambat bukan berarti hilang. Bandingkan dengan slow-server.",
    },
    Scenario {
        name: "slow-server",
        summary: "the server waits 300 ms before each answer: latency is server time, the RTT stays tiny",
        fault: "",
        server_delay_ms: 300,
        plan: PACED_5,
        explain_en: "The server (`reqresp server --delay 300ms`) took 300 ms per answer. The handshake RTT stays a fraction of a millisecond, and the server's kernel acknowledged each request at once (the bare ACK right after it), yet the answer came 300 ms later: the time is spent in the server, not in the network (the line under each answer: network a fraction of a millisecond, server 300 ms). Compare with delay, where the RTT itself grows.",
        explain_id: "Server (`reqresp server --delay 300ms`) butuh 300 ms untuk setiap jawaban. RTT handshake tetap di bawah satu milidetik, dan kernel server langsung meng-ACK setiap permintaan (ACK kosong tepat setelahnya), tetapi jawabannya baru datang 300 ms kemudian: waktunya habis di server, bukan di jaringan (baris di bawah setiap jawaban: jaringan di bawah satu milidetik, server 300 ms). Bandingkan dengan delay, di mana RTT-nya sendiri yang membesar.",
    },
    Scenario {
        name: "crash",
        summary: "the server is killed between two requests: a RST, a refused connection and the client's error",
        fault: "",
        server_delay_ms: 0,
        plan: Plan::Crash,
        explain_en: "After the first answer the server process was killed (SIGKILL). Its kernel closed the socket for it (a FIN), and answered the client's next request with a RST: nobody was there to read it. The client reported the error instead of an answer. A new connection then met a RST to its SYN: connection refused, nothing listens on the port. Look at the close lines and the ⚠ RST events.",
        explain_id: "Setelah jawaban pertama, proses server dimatikan (SIGKILL). Kernel-nya menutup socket atas nama server (FIN), lalu menjawab permintaan berikutnya dari klien dengan RST: tidak ada lagi yang membacanya. Klien melaporkan error, bukan jawaban. Koneksi baru kemudian mendapat RST sebagai balasan SYN-nya: connection refused, tidak ada yang mendengarkan di port itu. Lihat baris penutupan dan event ⚠ RST.",
    },
    Scenario {
        name: "partition",
        summary: "all traffic dropped for 3 s, then restored: retransmissions with exponential backoff",
        fault: "partition=3s@800ms",
        server_delay_ms: 0,
        plan: Plan::Paced {
            messages: 3,
            gap: Duration::from_secs(1),
            timeout: Duration::from_secs(15),
        },
        explain_en: "For 3 seconds the hosts could not reach each other. The client's request went unanswered, so its TCP sent it again, waiting longer each time: the gaps double (exponential backoff: about 0.2, 0.4, 0.8, 1.6 s; Linux's first resend is a tail-loss probe, so the first two gaps are about equal). When the network came back, the next retransmission got through and the request was answered, late. Had the partition outlasted the client's timeout (try --fault partition=8s@1s), the client would have given up with a timeout error.",
        explain_id: "Selama 3 detik kedua host tidak bisa saling mencapai. Permintaan klien tidak dijawab, jadi TCP-nya mengirim ulang, dengan menunggu makin lama setiap kali: jedanya berlipat dua (exponential backoff: sekitar 0,2, 0,4, 0,8, 1,6 s; kirim ulang pertama di Linux adalah tail-loss probe, jadi dua jeda pertama hampir sama). Saat jaringan pulih, retransmisi berikutnya sampai dan permintaan dijawab, terlambat. Seandainya partisi lebih lama dari timeout klien (coba --fault partition=8s@1s), klien akan menyerah dengan error timeout.",
    },
    Scenario {
        name: "recv-bug",
        summary: "a 3,000-byte message: wrong answers with raw framing (recv(1024)), right with line framing",
        fault: "",
        server_delay_ms: 0,
        plan: Plan::RecvBug,
        explain_en: "TCP is a byte stream, not a message stream. The raw server (like the original lab's recv(1024)) took each read as one whole message, so the 3,000-byte request was answered in pieces and the client's answer was wrong (cut short). With line framing the server read up to the newline and answered once, right. Look at the request's segments and at the several responses on the first connection.",
        explain_id: "TCP adalah aliran byte, bukan aliran pesan. Server raw (seperti recv(1024) di lab asli) menganggap setiap pembacaan sebagai satu pesan utuh, sehingga permintaan 3.000 byte dijawab sepotong-sepotong dan jawaban yang diterima klien salah (terpotong). Dengan line framing server membaca sampai newline dan menjawab sekali, dengan benar. Lihat segmen-segmen permintaan dan beberapa respons pada koneksi pertama.",
    },
    Scenario {
        name: "one-client-server",
        summary: "three clients at once: the lab's Python server serves one and exits; reqresp server serves all",
        fault: "",
        server_delay_ms: 0,
        plan: Plan::OneClientServer,
        explain_en: "The original lab's server accepts one client, serves it and exits. The other two clients connected (the kernel completed their handshakes in the listen backlog) but nobody ever read their requests: they were reset when the server exited, or timed out. reqresp server serves every connection concurrently, so all three got their answers. A server must serve clients concurrently, or one slow client blocks everybody.",
        explain_id: "Server lab asli menerima satu klien, melayaninya, lalu keluar. Dua klien lainnya berhasil terhubung (kernel menyelesaikan handshake mereka di antrean listen), tetapi permintaan mereka tidak pernah dibaca: mereka di-reset saat server keluar, atau kehabisan waktu. reqresp server melayani setiap koneksi secara bersamaan, jadi ketiganya mendapat jawaban. Server harus melayani klien secara bersamaan, atau satu klien lambat menghambat semuanya.",
    },
    Scenario {
        name: "tickets-race",
        summary: "20 clients book from 5 tickets; the server is killed mid-race and restarted on its ledger: none sold twice, no confirmed booking lost",
        fault: "",
        server_delay_ms: 0,
        plan: Plan::TicketsRace {
            clients: 20,
            tickets: 5,
        },
        explain_en: "Twenty connections asked for one of five tickets, in two rounds of ten. In the middle of the first round, as soon as one client had its answer, the server was killed (SIGKILL): the clients still waiting saw their connection closed or reset and got no answer. The server was restarted on the same ledger file (an SQLite database on disk) and went on with the tickets already sold; the second round bought the rest and was told \"Sorry\" once they were gone. Compare the notes: the bookings in the ledger against the confirmations the clients received. A booking is confirmed only after it is on disk, so no client holds a \"Booked\" that the restart forgot, and the stock was never oversold. Had the kill fallen between a commit and its answer, the ledger would hold one booking more than the confirmations: a client charged but never told, which is why a client that loses its connection must check before booking again. In the capture, look for the connections cut by the kill and the new server's answers after it.",
        explain_id: "Dua puluh koneksi meminta satu dari lima tiket, dalam dua putaran berisi sepuluh. Di tengah putaran pertama, begitu satu klien mendapat jawabannya, server dimatikan (SIGKILL): klien yang masih menunggu melihat koneksinya ditutup atau di-reset dan tidak mendapat jawaban. Server dijalankan ulang dengan file ledger yang sama (database SQLite di disk) dan melanjutkan dengan tiket yang sudah terjual; putaran kedua membeli sisanya dan diberi tahu \"Sorry\" setelah tiket habis. Bandingkan catatannya: jumlah booking di ledger dengan jumlah konfirmasi yang diterima klien. Sebuah booking baru dikonfirmasi setelah tersimpan di disk, sehingga tidak ada klien yang memegang \"Booked\" yang dilupakan setelah restart, dan stok tidak pernah terjual melebihi jumlahnya. Seandainya kill terjadi di antara commit dan jawabannya, ledger akan berisi satu booking lebih banyak daripada konfirmasi: klien yang ditagih tetapi tidak pernah diberi tahu, karena itulah klien yang kehilangan koneksinya harus memeriksa dulu sebelum memesan lagi. Di capture, cari koneksi yang terputus oleh kill dan jawaban server baru sesudahnya.",
    },
    Scenario {
        name: "slow-reader",
        summary: "a client that stops reading: zero window, the server's probes, then its timeout resets the connection",
        fault: "",
        server_delay_ms: 0,
        plan: Plan::SlowReader,
        explain_en: "The client kept sending large requests but never read the answers. Its receive buffer filled, so its TCP advertised a window of 0: the server may send nothing more. The server's TCP then probed, again and again with doubling gaps, to learn when the window opens: Linux probes with a segment the receiver must refuse or an empty one just below the next sequence number, so they show as ⟲ retransmission and ♡ keep-alive lines (Wireshark names them the same). The server stopped reading too (it cannot answer), so the client's sends hit a zero window as well. After its idle timeout (3 s) the server gave up and reset the connection. Look for the ▮ zero window lines, the probes, and the RST at the end.",
        explain_id: "Klien terus mengirim permintaan besar tetapi tidak pernah membaca jawabannya. Buffer penerimaannya penuh, sehingga TCP-nya mengumumkan window 0: server tidak boleh mengirim apa-apa lagi. TCP server lalu terus mengirim probe, dengan jeda yang berlipat dua, untuk mengetahui kapan window terbuka: Linux mengirim probe berupa segmen yang pasti ditolak penerima atau segmen kosong tepat di bawah nomor urut berikutnya, sehingga tampil sebagai baris ⟲ retransmission dan ♡ keep-alive (Wireshark menamainya sama). Server juga berhenti membaca (ia tidak bisa menjawab), sehingga pengiriman klien pun menemui zero window. Setelah idle timeout-nya (3 s), server menyerah dan me-reset koneksi. Cari baris ▮ zero window, probe-probe itu, dan RST di akhir.",
    },
];

/// The explanation of a run with `--fault` only.
pub(crate) const CUSTOM_EN: &str = "The faults above were applied on the lab's link while the client sent its requests. Loss shows as ⟲ retransmissions, delay as a larger handshake RTT and latency, a partition as retransmissions with growing gaps (or a timeout when it outlasts the client's). Compare the ladder with the happy scenario's.";
/// The same in Indonesian.
pub(crate) const CUSTOM_ID: &str = "Gangguan di atas diterapkan pada link lab selama klien mengirim permintaannya. Kehilangan paket terlihat sebagai ⟲ retransmisi, delay sebagai RTT handshake dan latensi yang lebih besar, partisi sebagai retransmisi dengan jeda yang makin panjang (atau timeout bila lebih lama dari timeout klien). Bandingkan ladder-nya dengan skenario happy.";

/// The scenario called `name`.
pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

/// `--scenario list`: one line each.
pub(crate) fn list() -> String {
    let width = SCENARIOS.iter().map(|s| s.name.len()).max().unwrap_or(0);
    SCENARIOS
        .iter()
        .map(|s| format!("{:<width$}  {}\n", s.name, s.summary))
        .collect()
}

/// The language of the explanation on standard output: the check's
/// [`Lang`](crate::check::Lang), one definition for both.
pub use crate::check::Lang;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::faults::FaultSpec;

    #[test]
    fn every_scenario_is_listed_once_with_a_valid_fault_and_both_languages() {
        let names: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "happy",
                "loss",
                "delay",
                "slow-server",
                "crash",
                "partition",
                "recv-bug",
                "one-client-server",
                "tickets-race",
                "slow-reader"
            ]
        );
        for s in SCENARIOS {
            if !s.fault.is_empty() {
                s.fault.parse::<FaultSpec>().unwrap();
            }
            assert!(
                s.explain_en.len() > 100 && s.explain_id.len() > 100,
                "{}",
                s.name
            );
            assert_ne!(s.explain_en, s.explain_id);
            assert!(find(s.name).is_some());
        }
        assert_eq!(list().lines().count(), SCENARIOS.len());
        assert!(find("nope").is_none());
    }
}
