//! Capture file builders shared by the unit tests of the `analyze` modules.

/// A pcap file: `records` are (seconds, fraction, captured data, original length).
pub fn pcap(
    nanosecond: bool,
    big_endian: bool,
    link_type: u32,
    snaplen: u32,
    records: &[(u32, u32, &[u8], u32)],
) -> Vec<u8> {
    let u16b = |v: u16| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let u32b = |v: u32| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut out = Vec::new();
    out.extend_from_slice(&u32b(if nanosecond { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
    out.extend_from_slice(&u16b(2));
    out.extend_from_slice(&u16b(4));
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&u32b(snaplen));
    out.extend_from_slice(&u32b(link_type));
    for &(sec, frac, data, orig_len) in records {
        for v in [sec, frac, data.len() as u32, orig_len] {
            out.extend_from_slice(&u32b(v));
        }
        out.extend_from_slice(data);
    }
    out
}

/// pcapng building blocks, in one byte order.
pub struct Ng {
    /// Write big-endian.
    pub big_endian: bool,
}

impl Ng {
    fn u16(&self, v: u16) -> [u8; 2] {
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn u32(&self, v: u32) -> [u8; 4] {
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    /// A block of `block_type` around `body` (padded to 4 bytes).
    pub fn block(&self, block_type: u32, body: &[u8]) -> Vec<u8> {
        let mut body = body.to_vec();
        body.resize(body.len().div_ceil(4) * 4, 0);
        let len = body.len() as u32 + 12;
        let mut out = self.u32(block_type).to_vec();
        out.extend_from_slice(&self.u32(len));
        out.extend_from_slice(&body);
        out.extend_from_slice(&self.u32(len));
        out
    }

    /// One option (code, value), padded, for a block body.
    pub fn option(&self, code: u16, value: &[u8]) -> Vec<u8> {
        let mut out = self.u16(code).to_vec();
        out.extend_from_slice(&self.u16(value.len() as u16));
        out.extend_from_slice(value);
        out.resize(4 + value.len().div_ceil(4) * 4, 0);
        out
    }

    /// A Section Header Block.
    pub fn shb(&self) -> Vec<u8> {
        let mut body = self.u32(0x1A2B_3C4D).to_vec();
        body.extend_from_slice(&self.u16(1));
        body.extend_from_slice(&self.u16(0));
        body.extend_from_slice(&[0xff; 8]);
        body.extend(self.option(4, b"reqresp tests"));
        body.extend(self.option(0, b""));
        self.block(0x0A0D_0D0A, &body)
    }

    /// An Interface Description Block with extra `options`.
    pub fn idb(&self, link_type: u16, snaplen: u32, options: &[u8]) -> Vec<u8> {
        let mut body = self.u16(link_type).to_vec();
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&self.u32(snaplen));
        body.extend_from_slice(options);
        self.block(1, &body)
    }

    /// An Enhanced Packet Block.
    pub fn epb(&self, interface: u32, ticks: u64, data: &[u8], orig_len: u32) -> Vec<u8> {
        let mut body = self.u32(interface).to_vec();
        body.extend_from_slice(&self.u32((ticks >> 32) as u32));
        body.extend_from_slice(&self.u32(ticks as u32));
        body.extend_from_slice(&self.u32(data.len() as u32));
        body.extend_from_slice(&self.u32(orig_len));
        body.extend_from_slice(data);
        body.resize(body.len().div_ceil(4) * 4, 0);
        body.extend(self.option(1, &self.u32(1))); // epb_flags: inbound
        self.block(6, &body)
    }

    /// A Simple Packet Block.
    pub fn spb(&self, data: &[u8]) -> Vec<u8> {
        let mut body = self.u32(data.len() as u32).to_vec();
        body.extend_from_slice(data);
        self.block(3, &body)
    }
}
