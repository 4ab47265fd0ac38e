//! The named cases of `reqresp check`: their names, the rule each one
//! checks and why it matters (in English and Indonesian), and when a case
//! does not apply (a framing or service that cannot express it).
//!
//! What each case does on the wire lives in `cases.rs`; this file is the
//! catalogue a user reads (`--only`, the report's rule sentences).

use std::fmt;
use std::str::FromStr;

use crate::protocol::Framing;
use crate::server::ServiceKind;

/// One case of the suite, in the order the suite runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CaseId {
    /// A request gets the expected answer, twice on one connection.
    Echo,
    /// An empty message gets its answer.
    Empty,
    /// A message with multi-byte UTF-8 characters comes back intact.
    Utf8,
    /// A message with every byte value (length framing only).
    Binary,
    /// One message written in 1-byte pieces with pauses.
    Split,
    /// Several messages in one write, each answered in order.
    Merged,
    /// Messages of 1,500 B, 10 KB and 64 KB.
    Large,
    /// 2, 10 and 100 clients at once while a slow client holds half a message.
    Concurrent,
    /// After one client leaves, the next is served.
    Sequential,
    /// The client sends, then shuts down its writing side.
    HalfClose,
    /// A client resets mid-request; the server keeps serving others.
    Abort,
    /// After the client's FIN, the server closes with FIN, not RST.
    Close,
    /// An idle connection does not stop others from being served.
    Idle,
    /// p50 and p99 round-trip times at light load.
    Latency,
    /// Racing clients never book more tickets than the stock.
    Tickets,
}

impl CaseId {
    /// Every case, in the order of the suite.
    pub const ALL: [CaseId; 15] = [
        CaseId::Echo,
        CaseId::Empty,
        CaseId::Utf8,
        CaseId::Binary,
        CaseId::Split,
        CaseId::Merged,
        CaseId::Large,
        CaseId::Concurrent,
        CaseId::Sequential,
        CaseId::HalfClose,
        CaseId::Abort,
        CaseId::Close,
        CaseId::Idle,
        CaseId::Latency,
        CaseId::Tickets,
    ];

    /// The name used by `--only` and in every report.
    pub fn name(self) -> &'static str {
        match self {
            CaseId::Echo => "echo",
            CaseId::Empty => "empty",
            CaseId::Utf8 => "utf8",
            CaseId::Binary => "binary",
            CaseId::Split => "split",
            CaseId::Merged => "merged",
            CaseId::Large => "large",
            CaseId::Concurrent => "concurrent",
            CaseId::Sequential => "sequential",
            CaseId::HalfClose => "half-close",
            CaseId::Abort => "abort",
            CaseId::Close => "close",
            CaseId::Idle => "idle",
            CaseId::Latency => "latency",
            CaseId::Tickets => "tickets",
        }
    }

    /// The rule the case checks and why it matters, in one sentence.
    pub fn rule(self, lang: Lang) -> &'static str {
        match lang {
            Lang::En => self.rule_en(),
            Lang::Id => self.rule_id(),
        }
    }

    fn rule_en(self) -> &'static str {
        match self {
            CaseId::Echo => {
                "A request gets the expected answer, and the connection stays open for the next one, because a client may send more than one request."
            }
            CaseId::Empty => {
                "An empty message is a message too and must be answered, because a server that waits for content would leave the client hanging."
            }
            CaseId::Utf8 => {
                "Text with multi-byte UTF-8 characters must come back byte for byte, because a server that decodes and re-encodes carelessly garbles names in other scripts."
            }
            CaseId::Binary => {
                "Every byte value, newline and zero included, must come back intact, because length framing promises to carry any payload."
            }
            CaseId::Split => {
                "A message that arrives in many small pieces must be put together before it is answered, because TCP may deliver one message over several reads."
            }
            CaseId::Merged => {
                "Several messages that arrive in one read must each get their own answer, in order, because TCP may deliver many messages in one read."
            }
            CaseId::Large => {
                "Messages of 1,500 B, 10 KB and 64 KB must be answered whole, because one recv(1024) reads only part of a large message."
            }
            CaseId::Concurrent => {
                "Many clients at once must each get their own answers, and a slow client must not block the others, because real servers have more than one user."
            }
            CaseId::Sequential => {
                "After one client leaves, the next client must still be served, because a server that exits after one client serves nobody else."
            }
            CaseId::HalfClose => {
                "When the client has sent its request and shut down its writing side, the answer must still arrive, because the end of the client's data is not the end of the conversation."
            }
            CaseId::Abort => {
                "A client that resets in the middle of a request must not stop the server from serving others, because one crashed client must not take the service down."
            }
            CaseId::Close => {
                "After the client closes, the server closes with FIN, not RST, because an RST can destroy answers still in flight."
            }
            CaseId::Idle => {
                "A connected client that sends nothing must not stop others from being served, because a server that waits on one silent client serves nobody."
            }
            CaseId::Latency => {
                "At light load, answers come quickly (p50 and p99 reported, warn above the threshold), because a correct but slow server is still a poor one."
            }
            CaseId::Tickets => {
                "Clients booking at the same moment never book more tickets than the stock, because a race between reading and updating the stock sells a ticket twice."
            }
        }
    }

    fn rule_id(self) -> &'static str {
        match self {
            CaseId::Echo => {
                "Sebuah permintaan mendapat jawaban yang diharapkan dan koneksi tetap terbuka untuk permintaan berikutnya, karena klien bisa mengirim lebih dari satu permintaan."
            }
            CaseId::Empty => {
                "Pesan kosong tetap sebuah pesan dan harus dijawab, karena server yang menunggu isi akan membuat klien menunggu tanpa akhir."
            }
            CaseId::Utf8 => {
                "Teks dengan karakter UTF-8 multi-byte harus kembali byte demi byte, karena server yang men-decode dan meng-encode ulang sembarangan merusak nama dalam aksara lain."
            }
            CaseId::Binary => {
                "Setiap nilai byte, termasuk baris baru dan nol, harus kembali utuh, karena framing panjang menjanjikan dapat membawa payload apa pun."
            }
            CaseId::Split => {
                "Pesan yang tiba dalam banyak potongan kecil harus disatukan dulu sebelum dijawab, karena TCP bisa mengirim satu pesan lewat beberapa kali baca."
            }
            CaseId::Merged => {
                "Beberapa pesan yang tiba dalam satu kali baca masing-masing harus mendapat jawabannya sendiri, berurutan, karena TCP bisa mengirim banyak pesan dalam satu kali baca."
            }
            CaseId::Large => {
                "Pesan 1.500 B, 10 KB dan 64 KB harus dijawab utuh, karena satu recv(1024) hanya membaca sebagian dari pesan besar."
            }
            CaseId::Concurrent => {
                "Banyak klien sekaligus masing-masing harus mendapat jawabannya sendiri, dan klien yang lambat tidak boleh menghambat yang lain, karena server sungguhan punya lebih dari satu pengguna."
            }
            CaseId::Sequential => {
                "Setelah satu klien pergi, klien berikutnya tetap harus dilayani, karena server yang berhenti setelah satu klien tidak melayani siapa pun lagi."
            }
            CaseId::HalfClose => {
                "Setelah klien mengirim permintaan dan menutup sisi tulisnya, jawaban tetap harus sampai, karena akhir data klien bukan akhir percakapan."
            }
            CaseId::Abort => {
                "Klien yang melakukan reset di tengah permintaan tidak boleh menghentikan server melayani klien lain, karena satu klien yang rusak tidak boleh menjatuhkan layanan."
            }
            CaseId::Close => {
                "Setelah klien menutup koneksi, server menutup dengan FIN, bukan RST, karena RST bisa menghapus jawaban yang masih dalam perjalanan."
            }
            CaseId::Idle => {
                "Klien yang terhubung tetapi diam tidak boleh menghentikan server melayani yang lain, karena server yang menunggu satu klien diam tidak melayani siapa pun."
            }
            CaseId::Latency => {
                "Pada beban ringan jawaban datang cepat (p50 dan p99 dilaporkan, peringatan di atas ambang), karena server yang benar tetapi lambat tetap server yang buruk."
            }
            CaseId::Tickets => {
                "Klien yang memesan pada saat yang sama tidak pernah memesan lebih banyak tiket daripada stok, karena race antara membaca dan memperbarui stok menjual satu tiket dua kali."
            }
        }
    }

    /// Why the case cannot run with this framing and service, if it cannot.
    pub fn not_applicable(self, framing: Framing, service: ServiceKind) -> Option<&'static str> {
        match self {
            CaseId::Empty if framing == Framing::Raw => {
                Some("raw framing cannot send an empty message: zero bytes never reach the server")
            }
            CaseId::Binary if framing != Framing::Length => Some(
                "needs --framing length: a line cannot hold a newline, and raw framing cannot tell where a message ends",
            ),
            CaseId::Tickets if service != ServiceKind::Tickets => {
                Some("only with --service tickets")
            }
            _ => None,
        }
    }

    /// The cases to run, in order: `only` (or every case), with `tickets`
    /// first when the service is tickets, so the other cases do not sell
    /// the stock before the race is tested.
    pub fn plan(only: Option<&[CaseId]>, service: ServiceKind) -> Vec<CaseId> {
        let mut cases: Vec<CaseId> = CaseId::ALL
            .into_iter()
            .filter(|c| only.is_none_or(|o| o.contains(c)))
            .collect();
        if service == ServiceKind::Tickets {
            cases.sort_by_key(|c| *c != CaseId::Tickets);
        }
        cases
    }
}

impl fmt::Display for CaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A case name that `--only` does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown case `{0}`; the cases are: {list}", list = CaseId::ALL.map(CaseId::name).join(", "))]
pub struct UnknownCase(pub String);

impl FromStr for CaseId {
    type Err = UnknownCase;

    fn from_str(s: &str) -> Result<CaseId, UnknownCase> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        CaseId::ALL
            .into_iter()
            .find(|c| c.name() == wanted || (wanted == "halfclose" && *c == CaseId::HalfClose))
            .ok_or_else(|| UnknownCase(s.trim().to_string()))
    }
}

/// The language of the report's fixed words and rule sentences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// English.
    #[default]
    En,
    /// Indonesian (Bahasa Indonesia), the original lab's language.
    Id,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_unknown_names_list_the_cases() {
        for case in CaseId::ALL {
            assert_eq!(case.name().parse::<CaseId>(), Ok(case));
        }
        assert_eq!("Half_Close".parse::<CaseId>(), Ok(CaseId::HalfClose));
        let err = "bogus".parse::<CaseId>().unwrap_err().to_string();
        assert!(
            err.contains("bogus") && err.contains("half-close, abort"),
            "{err}"
        );
    }

    #[test]
    fn every_case_has_a_one_sentence_rule_in_both_languages() {
        for case in CaseId::ALL {
            for lang in [Lang::En, Lang::Id] {
                let rule = case.rule(lang);
                assert!(rule.ends_with('.'), "{case} {lang:?}");
                assert_eq!(rule.matches(". ").count(), 0, "one sentence: {rule}");
            }
            assert_ne!(case.rule(Lang::En), case.rule(Lang::Id));
        }
    }

    #[test]
    fn plan_respects_only_and_puts_tickets_first_for_the_tickets_service() {
        let all = CaseId::plan(None, ServiceKind::Echo);
        assert_eq!(all, CaseId::ALL.to_vec());
        let tickets = CaseId::plan(None, ServiceKind::Tickets);
        assert_eq!(tickets[0], CaseId::Tickets);
        assert_eq!(tickets.len(), CaseId::ALL.len());
        let only = CaseId::plan(Some(&[CaseId::Large, CaseId::Echo]), ServiceKind::Echo);
        assert_eq!(only, vec![CaseId::Echo, CaseId::Large]);
    }

    #[test]
    fn cases_that_a_framing_cannot_express_are_not_applicable() {
        use Framing::*;
        assert!(
            CaseId::Binary
                .not_applicable(Line, ServiceKind::Echo)
                .is_some()
        );
        assert!(
            CaseId::Binary
                .not_applicable(Length, ServiceKind::Echo)
                .is_none()
        );
        assert!(
            CaseId::Empty
                .not_applicable(Raw, ServiceKind::Echo)
                .is_some()
        );
        assert!(
            CaseId::Empty
                .not_applicable(Line, ServiceKind::Echo)
                .is_none()
        );
        assert!(
            CaseId::Tickets
                .not_applicable(Line, ServiceKind::Echo)
                .is_some()
        );
        assert!(
            CaseId::Tickets
                .not_applicable(Line, ServiceKind::Tickets)
                .is_none()
        );
    }
}
