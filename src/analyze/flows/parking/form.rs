//! A parked connection's bytes (its *form*), and the forms of one block.
//!
//! A form is cut into sections, one per part of the connection's state:
//! the header and the table slot's own fields, the record, the two
//! reassemblers, the pairer, the TCP event detector, the request-ACK
//! tracker, and the payload bytes any of them holds. A block keeps each
//! section of all its forms together (every header, then every record,
//! and so on), so that zstd sees like next to like.
//!
//! Within a section, forms of one length almost always have one layout:
//! the same field at the same place. [`Forms::encode`] writes such a
//! group column by column (every form's first byte, then every form's
//! second byte, …), so a field that is the same in all of them becomes
//! one run and a counter becomes a slowly changing column. zstd alone
//! sees neither across forms: on a million idle connections this (with the
//! payloads aside and `parked_form`'s numbers) takes a parked connection
//! from about 190 to about 100 bytes. (Payload bytes are
//! not a layout: their section is written as it is.)

use std::io;
use std::net::SocketAddr;

use borsh::{BorshDeserialize, BorshSerialize};

use super::super::super::model::{Connection, Timestamp};
use super::super::super::parked_form;
use super::super::key::Key;
use super::super::{Flow, Slot};

/// Sections of a form.
pub(super) const SECTIONS: usize = 7;

/// Header of a form, in its first section: number, latest packet time,
/// whether only a SYN was seen (the shorter timeout), address pair.
pub(super) struct Header {
    pub(super) id: u32,
    pub(super) last_time: Timestamp,
    pub(super) attempt: bool,
    pub(super) key: Key,
}

impl Header {
    fn write(&self, out: &mut Vec<u8>) -> io::Result<()> {
        self.id.serialize(out)?;
        self.last_time.0.serialize(out)?;
        self.attempt.serialize(out)?;
        match &self.key {
            Key::V4(a, b) => (0u8, a, b).serialize(out),
            Key::Other(pair) => (1u8, pair.as_ref()).serialize(out),
        }
    }

    /// The header of a form given by its sections.
    pub(super) fn read_from(parts: [&[u8]; SECTIONS]) -> Option<Header> {
        Header::read(&mut { parts[0] })
    }

    /// Reads a header, leaving `form` at what follows.
    fn read(form: &mut &[u8]) -> Option<Header> {
        let id = u32::deserialize_reader(form).ok()?;
        let last_time = Timestamp(u64::deserialize_reader(form).ok()?);
        let attempt = bool::deserialize_reader(form).ok()?;
        let key = match u8::deserialize_reader(form).ok()? {
            0 => Key::V4(
                u64::deserialize_reader(form).ok()?,
                u64::deserialize_reader(form).ok()?,
            ),
            _ => Key::Other(Box::new(
                <(SocketAddr, SocketAddr)>::deserialize_reader(form).ok()?,
            )),
        };
        Some(Header {
            id,
            last_time,
            attempt,
            key,
        })
    }
}

/// The forms of one block, each section of them in one buffer.
#[derive(Default)]
pub(super) struct Forms {
    /// Each form's length in each section; all 0 for a form taken back
    /// and dropped when its block was compressed again.
    lens: Vec<[u32; SECTIONS]>,
    bufs: [Vec<u8>; SECTIONS],
}

impl Forms {
    /// Bytes of the block about as [`Forms::encode`] writes it for zstd
    /// (each length counted at 4 bytes, not as its varint).
    pub(super) fn raw_len(&self) -> usize {
        4 + self.lens.len() * 4 * SECTIONS + self.bufs.iter().map(Vec::len).sum::<usize>()
    }

    /// Bytes allocated.
    pub(super) fn capacity(&self) -> usize {
        self.lens.capacity() * 4 * SECTIONS + self.bufs.iter().map(Vec::capacity).sum::<usize>()
    }

    /// Empties the block, keeping at most 64 KiB of room per section.
    pub(super) fn clear(&mut self) {
        self.lens.clear();
        for b in &mut self.bufs {
            b.clear();
            if b.capacity() > 64 << 10 {
                b.shrink_to(64 << 10);
            }
        }
    }

    /// Frees the room the buffers have beyond what they hold.
    pub(super) fn shrink_to_fit(&mut self) {
        self.lens.shrink_to_fit();
        self.bufs.iter_mut().for_each(Vec::shrink_to_fit);
    }

    /// Every form's sections, in order (`None` for a dropped one).
    pub(super) fn iter(&self) -> impl Iterator<Item = Option<[&[u8]; SECTIONS]>> {
        let mut at = [0usize; SECTIONS];
        self.lens.iter().map(move |lens| {
            let parts: [&[u8]; SECTIONS] = std::array::from_fn(|s| {
                let start = at[s];
                at[s] += lens[s] as usize;
                self.bufs[s].get(start..at[s]).unwrap_or_default()
            });
            (lens[0] > 0).then_some(parts)
        })
    }

    /// Form `k`'s sections.
    pub(super) fn get(&self, k: usize) -> Option<[&[u8]; SECTIONS]> {
        self.iter().nth(k).flatten()
    }

    /// Form `k`'s header.
    pub(super) fn header(&self, k: usize) -> Option<Header> {
        Header::read_from(self.get(k)?)
    }

    /// Appends a form given by its sections (`None`: a dropped one).
    pub(super) fn push(&mut self, parts: Option<[&[u8]; SECTIONS]>) {
        let mut lens = [0u32; SECTIONS];
        if let Some(parts) = parts {
            for s in 0..SECTIONS {
                lens[s] = parts[s].len() as u32;
                self.bufs[s].extend_from_slice(parts[s]);
            }
        }
        self.lens.push(lens);
    }

    /// Appends the form of `slot` (live) under `header`; `false`, with
    /// nothing appended, when its state has no parked form (an
    /// application protocol's codec) or it is not live.
    pub(super) fn write(&mut self, header: &Header, slot: &Slot) -> bool {
        let before: [usize; SECTIONS] = std::array::from_fn(|s| self.bufs[s].len());
        let [own, record, streams, pairer, events, acks, aside] = &mut self.bufs;
        let sections = [own, record, streams, pairer, events, acks];
        match parked_form::write_with(header.last_time.0, aside, || {
            write_sections(sections, header, slot)
        }) {
            Ok(()) => {
                self.lens.push(std::array::from_fn(|s| {
                    (self.bufs[s].len() - before[s]) as u32
                }));
                true
            }
            Err(_) => {
                for (buf, len) in self.bufs.iter_mut().zip(before) {
                    buf.truncate(len);
                }
                false
            }
        }
    }

    /// Writes the block as bytes: the count, each section's lengths (as
    /// varints), each section (by columns, but the payloads).
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&(self.lens.len() as u32).to_le_bytes());
        for s in 0..SECTIONS {
            for lens in &self.lens {
                // Writing to a Vec cannot fail.
                let _ = parked_form::write_varint(u64::from(lens[s]), out);
            }
        }
        for s in 0..SECTIONS {
            if s == PAYLOADS {
                out.extend_from_slice(&self.bufs[s]);
            } else {
                let start = out.len();
                out.resize(start + self.bufs[s].len(), 0);
                let columns = &mut out[start..];
                let lens: Vec<usize> = self.lens.iter().map(|l| l[s] as usize).collect();
                for_each_column(&lens, |row, at, step| {
                    let to = columns[at..].iter_mut().step_by(step);
                    to.zip(&self.bufs[s][row])
                        .for_each(|(to, from)| *to = *from);
                });
            }
        }
    }

    /// Reads a block written by [`Forms::encode`] into `self`.
    pub(super) fn decode(&mut self, mut raw: &[u8]) -> Option<()> {
        self.lens.clear();
        let count = u32::deserialize_reader(&mut raw).ok()? as usize;
        // Each form takes at least one byte per section's length.
        if count > raw.len() {
            return None;
        }
        self.lens.resize(count, [0; SECTIONS]);
        for s in 0..SECTIONS {
            for lens in &mut self.lens {
                lens[s] = u32::try_from(parked_form::read_varint(&mut raw).ok()?).ok()?;
            }
        }
        for s in 0..SECTIONS {
            let lens: Vec<usize> = self.lens.iter().map(|l| l[s] as usize).collect();
            let total: usize = lens.iter().sum();
            let part = raw.get(..total)?;
            raw = &raw[total..];
            let buf = &mut self.bufs[s];
            buf.clear();
            if s == PAYLOADS {
                buf.extend_from_slice(part);
            } else {
                buf.resize(total, 0);
                for_each_column(&lens, |row, at, step| {
                    let from = part[at..].iter().step_by(step);
                    buf[row]
                        .iter_mut()
                        .zip(from)
                        .for_each(|(to, from)| *to = *from);
                });
            }
        }
        Some(())
    }
}

/// The section of payload bytes, written as it is.
const PAYLOADS: usize = SECTIONS - 1;

/// Lays out a section as [`Forms::encode`] writes it, given each form's
/// length: forms grouped by length (shortest first, in block order within
/// a length), each group column by column. `visit` gets each form's place
/// in the section as it is kept (row after row), and where its bytes are
/// in the columns: from `at`, one every `step` bytes.
fn for_each_column(lens: &[usize], mut visit: impl FnMut(std::ops::Range<usize>, usize, usize)) {
    let mut starts = Vec::with_capacity(lens.len());
    let mut at = 0;
    for len in lens {
        starts.push(at);
        at += len;
    }
    let mut order: Vec<usize> = (0..lens.len()).collect();
    order.sort_by_key(|&k| lens[k]);
    let mut group_at = 0;
    for group in order.chunk_by(|&a, &b| lens[a] == lens[b]) {
        let len = lens[group[0]];
        if len == 0 {
            continue;
        }
        for (i, &k) in group.iter().enumerate() {
            visit(starts[k]..starts[k] + len, group_at + i, group.len());
        }
        group_at += len * group.len();
    }
}

/// Writes each part of a live slot's state into its section.
fn write_sections(out: [&mut Vec<u8>; SECTIONS - 1], h: &Header, slot: &Slot) -> io::Result<()> {
    let (Some(conn), Some(flow)) = (slot.conn.as_deref(), slot.flow.as_deref()) else {
        return Err(io::Error::other("not a live connection"));
    };
    let [own, record, streams, pairer, events, acks] = out;
    h.write(own)?;
    // The sequence numbers' anchors as they are; every other sequence
    // number near them.
    let anchors = flow.events.seq_anchors();
    anchors.serialize(own)?;
    parked_form::set_anchors(anchors);
    let seqs = [
        slot.client_isn,
        slot.server_isn,
        slot.fin_seq[0],
        slot.fin_seq[1],
    ];
    for seq in seqs.iter().chain([&flow.server_isn]) {
        parked_form::write_maybe_seq(seq, own)?;
    }
    slot.client.serialize(own)?;
    (slot.fin_acked, slot.reset, slot.ended).serialize(own)?;
    (flow.last_syn, flow.fin, flow.rst).serialize(own)?;
    (flow.warned_bound, flow.reported).serialize(own)?;
    conn.serialize(record)?;
    flow.streams.serialize(streams)?;
    flow.pairer.serialize(pairer)?;
    flow.events.serialize(events)?;
    flow.request_acks.serialize(acks)
}

/// Reads a form back: its header and the slot, as it was parked (the
/// slot's counts for the budget start again from nothing).
pub(super) fn read(parts: [&[u8]; SECTIONS]) -> Option<(Header, Slot)> {
    let mut own = parts[0];
    let base = Header::read(&mut own)?.last_time.0;
    parked_form::read_with(base, parts[PAYLOADS], || read_sections(parts))
}

fn read_sections(parts: [&[u8]; SECTIONS]) -> Option<(Header, Slot)> {
    fn get<T: BorshDeserialize>(r: &mut &[u8]) -> Option<T> {
        T::deserialize_reader(r).ok()
    }
    let [
        mut own,
        mut record,
        mut streams,
        mut pairer,
        mut events,
        mut acks,
        _,
    ] = parts;
    let h = Header::read(&mut own)?;
    parked_form::set_anchors(get(&mut own)?);
    let mut seqs = [None; 5];
    for seq in &mut seqs {
        *seq = parked_form::read_maybe_seq(&mut own).ok()?;
    }
    let [
        client_isn,
        server_isn,
        fin_client,
        fin_server,
        flow_server_isn,
    ] = seqs;
    let fin_seq = [fin_client, fin_server];
    let client = get(&mut own)?;
    let (fin_acked, reset, ended) = get(&mut own)?;
    let (last_syn, fin, rst) = get(&mut own)?;
    let (warned_bound, reported) = get(&mut own)?;
    // Read in the order written: a frame number is written relative to
    // the one before it.
    let conn: Connection = get(&mut record)?;
    let flow = Flow {
        streams: get(&mut streams)?,
        pairer: get(&mut pairer)?,
        server_isn: flow_server_isn,
        last_syn,
        fin,
        rst,
        warned_bound,
        reported,
        events: get(&mut events)?,
        request_acks: get(&mut acks)?,
    };
    let mut slot = Slot::new(Box::new(conn), client, flow, h.last_time);
    (slot.client_isn, slot.server_isn) = (client_isn, server_isn);
    (slot.fin_seq, slot.fin_acked) = (fin_seq, fin_acked);
    (slot.reset, slot.ended) = (reset, ended);
    Some((h, slot))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forms(list: &[Option<[&[u8]; SECTIONS]>]) -> Forms {
        let mut forms = Forms::default();
        for parts in list {
            forms.push(*parts);
        }
        forms
    }

    fn encoded(forms: &Forms) -> Vec<u8> {
        let mut out = Vec::new();
        forms.encode(&mut out);
        out
    }

    #[test]
    fn a_block_comes_back_the_same_through_its_columns() {
        let a: [&[u8]; SECTIONS] = [b"\x01abc", b"r1", b"", b"pp", b"e", b"", b"payload one"];
        let b: [&[u8]; SECTIONS] = [b"\x02abd", b"r22", b"s", b"pq", b"e", b"k", b""];
        let c: [&[u8]; SECTIONS] = [b"\x03xy", b"r1", b"", b"pr", b"ee", b"", b"two"];
        let block = forms(&[Some(a), None, Some(b), Some(c)]);
        let mut back = Forms::default();
        back.decode(&encoded(&block)).expect("decodes");
        let want: Vec<_> = block.iter().collect();
        assert_eq!(back.iter().collect::<Vec<_>>(), want);
        assert_eq!(back.get(1), None, "a dropped form stays dropped");
        assert_eq!(back.get(3), Some(c));
    }

    #[test]
    fn forms_of_one_length_are_written_column_by_column() {
        let f = |head: &'static [u8]| -> Option<[&[u8]; SECTIONS]> {
            Some([head, b"", b"", b"", b"", b"", b"text"])
        };
        let raw = encoded(&forms(&[
            f(b"\x01\x02\x03"),
            f(b"\x01\x02\x04"),
            f(b"\x01\x02\x05"),
        ]));
        let sections = &raw[raw.len() - 9 - 12..];
        assert_eq!(
            sections, b"\x01\x01\x01\x02\x02\x02\x03\x04\x05texttexttext",
            "the first section by columns, the payloads as they are"
        );
    }

    #[test]
    fn a_cut_or_lying_block_is_refused_without_a_panic() {
        let a: [&[u8]; SECTIONS] = [b"\x01abc", b"r1", b"", b"pp", b"e", b"", b"payload"];
        let raw = encoded(&forms(&[Some(a), Some(a)]));
        for cut in 0..raw.len() {
            assert!(
                Forms::default().decode(&raw[..cut]).is_none(),
                "cut at {cut}"
            );
        }
        let mut lying = raw.clone();
        lying[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Forms::default().decode(&lying).is_none());
    }
}
