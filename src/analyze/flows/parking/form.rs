//! A parked connection's bytes (its *form*), and the forms of one block.
//!
//! A form is cut into sections, one per part of the connection's state:
//! the header and the table slot's own fields, the record, the two
//! reassemblers, the pairer, the TCP event detector, the request-ACK
//! tracker. A block keeps each section of all its forms together (every
//! header, then every record, and so on), so that zstd sees like next to
//! like: for connections of one kind it stores a block a fifth smaller
//! than with the forms one after the other.

use std::io;
use std::net::SocketAddr;

use borsh::{BorshDeserialize, BorshSerialize};

use super::super::super::model::{Connection, Timestamp};
use super::super::super::parked_form;
use super::super::key::Key;
use super::super::{Flow, Slot};

/// Sections of a form.
pub(super) const SECTIONS: usize = 6;

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
    /// Bytes of the block as [`Forms::encode`] writes it for zstd.
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
        let bufs = &mut self.bufs;
        match parked_form::with_base(header.last_time.0, || write_sections(bufs, header, slot)) {
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

    /// Writes the block as bytes: the count, the lengths, the sections.
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&(self.lens.len() as u32).to_le_bytes());
        for lens in &self.lens {
            for len in lens {
                out.extend_from_slice(&len.to_le_bytes());
            }
        }
        for b in &self.bufs {
            out.extend_from_slice(b);
        }
    }

    /// Reads a block written by [`Forms::encode`] into `self`.
    pub(super) fn decode(&mut self, mut raw: &[u8]) -> Option<()> {
        self.lens.clear();
        let count = u32::deserialize_reader(&mut raw).ok()? as usize;
        let table = raw.get(..count.checked_mul(4 * SECTIONS)?)?;
        raw = &raw[table.len()..];
        let mut sums = [0usize; SECTIONS];
        for chunk in table.chunks_exact(4 * SECTIONS) {
            let lens: [u32; SECTIONS] = std::array::from_fn(|s| {
                u32::from_le_bytes(chunk[4 * s..4 * s + 4].try_into().unwrap_or_default())
            });
            for s in 0..SECTIONS {
                sums[s] += lens[s] as usize;
            }
            self.lens.push(lens);
        }
        for s in 0..SECTIONS {
            let part = raw.get(..sums[s])?;
            self.bufs[s].clear();
            self.bufs[s].extend_from_slice(part);
            raw = &raw[sums[s]..];
        }
        Some(())
    }
}

/// Writes each part of a live slot's state into its section.
fn write_sections(out: &mut [Vec<u8>; SECTIONS], h: &Header, slot: &Slot) -> io::Result<()> {
    let (Some(conn), Some(flow)) = (slot.conn.as_deref(), slot.flow.as_deref()) else {
        return Err(io::Error::other("not a live connection"));
    };
    let [own, record, streams, pairer, events, acks] = out;
    h.write(own)?;
    (slot.client, slot.client_isn, slot.server_isn).serialize(own)?;
    (slot.fin_seq, slot.fin_acked, slot.reset, slot.ended).serialize(own)?;
    (flow.server_isn, flow.last_syn, flow.fin, flow.rst).serialize(own)?;
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
    parked_form::with_base(base, || read_sections(parts))
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
    ] = parts;
    let h = Header::read(&mut own)?;
    let (client, client_isn, server_isn) = get(&mut own)?;
    let (fin_seq, fin_acked, reset, ended) = get(&mut own)?;
    let (flow_server_isn, last_syn, fin, rst) = get(&mut own)?;
    let (warned_bound, reported) = get(&mut own)?;
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
    let conn: Connection = get(&mut record)?;
    let mut slot = Slot::new(Box::new(conn), client, flow, h.last_time);
    (slot.client_isn, slot.server_isn) = (client_isn, server_isn);
    (slot.fin_seq, slot.fin_acked) = (fin_seq, fin_acked);
    (slot.reset, slot.ended) = (reset, ended);
    Some((h, slot))
}
