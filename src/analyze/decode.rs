//! Packet decoding: link layer → IP → TCP, from a [`RawPacket`] to a
//! [`TcpSegment`] borrowing the packet's bytes.
//!
//! Link layers: Ethernet (with 802.1Q / 802.1ad / QinQ VLAN tags), Linux
//! cooked capture v1 (SLL, `tcpdump -i any` before libpcap 1.10) and v2
//! (SLL2), BSD loopback/NULL (host byte order, either), OpenBSD LOOP, and raw
//! IP (`LINKTYPE_RAW`, `LINKTYPE_IPV4`, `LINKTYPE_IPV6`). `etherparse` parses
//! Ethernet, VLAN, IPv4, IPv6 (with extension headers) and TCP; the cooked
//! and loopback headers are read by hand because etherparse does not know
//! SLL2 or NULL/LOOP, and all three only need their protocol field.
//!
//! The TCP payload length comes from the IP length fields, not the frame:
//! Ethernet padding is ignored, and bytes a short snaplen cut off are still
//! counted in [`TcpSegment::payload_len`].

use std::net::{Ipv4Addr, SocketAddr};

use etherparse::err::{LenError, ip::LaxHeaderSliceError, tcp::HeaderSliceError};
use etherparse::{Ethernet2Slice, IpNumber, LaxIpSlice, SingleVlanSlice, TcpSlice};

use super::segment::{RawPacket, TcpFlags, TcpSegment};

/// `LINKTYPE_*` values (tcpdump.org/linktypes.html) this module decodes.
pub(crate) mod linktype {
    /// BSD loopback: 4-byte address family in the writer's byte order.
    pub const NULL: u32 = 0;
    /// Ethernet II.
    pub const ETHERNET: u32 = 1;
    /// Raw IP, version from the first nibble.
    pub const RAW: u32 = 101;
    /// OpenBSD loopback: 4-byte address family in network byte order.
    pub const LOOP: u32 = 108;
    /// Linux cooked capture v1 (16-byte header).
    pub const LINUX_SLL: u32 = 113;
    /// Raw IPv4.
    pub const IPV4: u32 = 228;
    /// Raw IPv6.
    pub const IPV6: u32 = 229;
    /// Linux cooked capture v2 (20-byte header).
    pub const LINUX_SLL2: u32 = 276;
}

/// Why a packet yields no TCP segment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Skip {
    /// The interface's link type is not one this module decodes.
    #[error(
        "link type {0} is not supported (Ethernet, Linux cooked v1/v2, loopback and raw IP are)"
    )]
    UnsupportedLink(u32),
    /// The link layer carries something else than IPv4/IPv6.
    #[error("not an IP packet")]
    NotIp,
    /// An IP packet that is not TCP.
    #[error("not a TCP packet")]
    NotTcp,
    /// An IP fragment (IP reassembly is not supported).
    #[error("IP fragment")]
    Fragment,
    /// The snaplen cut the packet before the end of its headers.
    #[error("the snaplen cut the packet inside its {0}")]
    CutBySnaplen(&'static str),
    /// Headers that cannot be valid.
    #[error("{0}")]
    Malformed(String),
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86DD;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88A8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
/// VLAN tags followed before giving up (QinQ uses two).
const MAX_VLAN_TAGS: usize = 4;

/// Decodes one packet into a TCP segment, or says why it has none.
pub(crate) fn decode<'a>(packet: &RawPacket<'a>) -> Result<TcpSegment<'a>, Skip> {
    let data = packet.data;
    // True when the snaplen shortened this packet: a header running past the
    // captured bytes is then a cut, not a lie.
    let cut = (packet.orig_len as usize) > data.len();
    let ip = match packet.link_type {
        // The common case, an untagged IPv4 frame, without building slices.
        linktype::ETHERNET
            if data.len() >= 14 && u16::from_be_bytes([data[12], data[13]]) == ETHERTYPE_IPV4 =>
        {
            &data[14..]
        }
        linktype::ETHERNET => ethernet(data, cut)?,
        linktype::LINUX_SLL => {
            let header = link_header(data, 16, cut, "Linux cooked (SLL) header")?;
            ether_payload(
                u16::from_be_bytes([header[14], header[15]]),
                &data[16..],
                cut,
            )?
        }
        linktype::LINUX_SLL2 => {
            let header = link_header(data, 20, cut, "Linux cooked v2 (SLL2) header")?;
            ether_payload(u16::from_be_bytes([header[0], header[1]]), &data[20..], cut)?
        }
        linktype::NULL | linktype::LOOP => {
            let header = link_header(data, 4, cut, "loopback header")?;
            let family = [header[0], header[1], header[2], header[3]];
            let family = if packet.link_type == linktype::LOOP {
                u32::from_be_bytes(family)
            } else {
                // Host byte order of the machine that wrote it: families
                // are small numbers, so a big value means the other order.
                let le = u32::from_le_bytes(family);
                if le > 0xFFFF { le.swap_bytes() } else { le }
            };
            match family {
                // AF_INET; AF_INET6 on Linux (10), NetBSD/OpenBSD (24), FreeBSD (28), macOS (30).
                2 | 10 | 24 | 28 | 30 => &data[4..],
                _ => return Err(Skip::NotIp),
            }
        }
        linktype::RAW | linktype::IPV4 | linktype::IPV6 => data,
        other => return Err(Skip::UnsupportedLink(other)),
    };
    ip_tcp(packet, ip, cut)
}

fn link_header<'a>(
    data: &'a [u8],
    len: usize,
    cut: bool,
    what: &'static str,
) -> Result<&'a [u8], Skip> {
    if data.len() >= len {
        Ok(&data[..len])
    } else if cut {
        Err(Skip::CutBySnaplen(what))
    } else {
        Err(Skip::Malformed(format!(
            "{what} needs {len} bytes, the packet has {}",
            data.len()
        )))
    }
}

fn ethernet(data: &[u8], cut: bool) -> Result<&[u8], Skip> {
    let frame = Ethernet2Slice::from_slice_without_fcs(data)
        .map_err(|e| len_skip(&e, cut, "Ethernet header"))?;
    let payload = frame.payload();
    ether_payload(payload.ether_type.0, payload.payload, cut)
}

/// Follows VLAN tags from an EtherType to the IP packet.
fn ether_payload(mut ether_type: u16, mut payload: &[u8], cut: bool) -> Result<&[u8], Skip> {
    for _ in 0..=MAX_VLAN_TAGS {
        match ether_type {
            ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => return Ok(payload),
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD => {
                let tag = SingleVlanSlice::from_slice(payload)
                    .map_err(|e| len_skip(&e, cut, "VLAN tag"))?;
                ether_type = tag.ether_type().0;
                payload = tag.payload().payload;
            }
            _ => return Err(Skip::NotIp),
        }
    }
    Err(Skip::Malformed(format!(
        "more than {MAX_VLAN_TAGS} nested VLAN tags"
    )))
}

fn len_skip(error: &LenError, cut: bool, what: &'static str) -> Skip {
    if cut {
        Skip::CutBySnaplen(what)
    } else {
        Skip::Malformed(format!(
            "{what} needs {} bytes, the packet has {}",
            error.required_len, error.len
        ))
    }
}

fn ip_tcp<'a>(packet: &RawPacket<'a>, ip: &'a [u8], cut: bool) -> Result<TcpSegment<'a>, Skip> {
    match ipv4_tcp(packet, ip) {
        Some(segment) => Ok(segment),
        None => ip_tcp_general(packet, ip, cut),
    }
}

/// The fast path for the common packet: a whole, unfragmented IPv4 packet
/// (total length set, within the captured bytes) carrying a well-formed TCP
/// header. Reads the fields directly, which takes a fraction of the
/// instructions of etherparse's slices (the analyzer's reading thread spent
/// about a third of its time there). Anything else — IPv6, fragments, other
/// protocols, a zero or lying total length, a bad TCP data offset, a cut
/// packet — returns `None` and goes through [`ip_tcp_general`], which
/// classifies it; a unit test checks that both paths agree.
fn ipv4_tcp<'a>(packet: &RawPacket<'a>, ip: &'a [u8]) -> Option<TcpSegment<'a>> {
    // Fixed-size arrays: the field reads below need no bounds checks.
    let header: &[u8; 20] = ip.first_chunk()?;
    let header_len = usize::from(header[0] & 0x0F) * 4;
    let total = usize::from(u16::from_be_bytes([header[2], header[3]]));
    if header[0] >> 4 != 4 || header_len < 20 || total < header_len || total > ip.len() {
        return None;
    }
    // More fragments, or a fragment offset: IP reassembly is not done.
    let fragment = u16::from_be_bytes([header[6], header[7]]) & 0x3FFF != 0;
    if fragment || header[9] != IpNumber::TCP.0 {
        return None;
    }
    let segment = ip.get(header_len..total)?;
    let tcp: &[u8; 20] = segment.first_chunk()?;
    let tcp_header_len = usize::from(tcp[12] >> 4) * 4;
    if tcp_header_len < 20 {
        return None;
    }
    let payload = segment.get(tcp_header_len..)?;
    let [s0, s1, s2, s3, d0, d1, d2, d3] = [
        header[12], header[13], header[14], header[15], header[16], header[17], header[18],
        header[19],
    ];
    let flags = tcp[13];
    Some(TcpSegment {
        number: packet.number,
        time: packet.time,
        src: SocketAddr::from((
            Ipv4Addr::new(s0, s1, s2, s3),
            u16::from_be_bytes([tcp[0], tcp[1]]),
        )),
        dst: SocketAddr::from((
            Ipv4Addr::new(d0, d1, d2, d3),
            u16::from_be_bytes([tcp[2], tcp[3]]),
        )),
        seq: u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
        ack: u32::from_be_bytes([tcp[8], tcp[9], tcp[10], tcp[11]]),
        flags: TcpFlags::from_bits(u16::from_be_bytes([tcp[12], tcp[13]])),
        payload,
        // `total` is at most 65 535.
        payload_len: payload.len() as u32,
        window: u16::from_be_bytes([tcp[14], tcp[15]]),
        window_scale: if flags & 0x02 != 0 {
            window_scale(segment.get(20..tcp_header_len)?)
        } else {
            None
        },
    })
}

/// The shift of a window scale option (kind 3) among TCP options, if present.
/// Stops at the end-of-options marker or at an option whose length is wrong.
fn window_scale(mut options: &[u8]) -> Option<u8> {
    loop {
        match *options {
            [] | [0, ..] => return None,
            [1, ref rest @ ..] => options = rest,
            [3, 3, shift, ..] => return Some(shift),
            [_, len, ..] if len >= 2 => options = options.get(usize::from(len)..)?,
            _ => return None,
        }
    }
}

/// Any IP packet, through etherparse: every case the fast path leaves out.
fn ip_tcp_general<'a>(
    packet: &RawPacket<'a>,
    ip: &'a [u8],
    cut: bool,
) -> Result<TcpSegment<'a>, Skip> {
    let (slice, ext_error) = LaxIpSlice::from_slice(ip).map_err(|e| match e {
        LaxHeaderSliceError::Len(e) => len_skip(&e, cut, "IP header"),
        LaxHeaderSliceError::Content(e) => Skip::Malformed(format!("bad IP header: {e}")),
    })?;
    // Length of the IP packet according to its header, when it gives one.
    let claimed_len = match &slice {
        LaxIpSlice::Ipv4(v4) => {
            let header = v4.header();
            let total = usize::from(header.total_len());
            let header_len = header.slice().len();
            if total != 0 && total < header_len {
                return Err(Skip::Malformed(format!(
                    "IPv4 total length {total} is shorter than its {header_len}-byte header"
                )));
            }
            // 0 is what a sender with TCP segmentation offload leaves; use the frame.
            (total != 0).then_some(total)
        }
        LaxIpSlice::Ipv6(v6) => {
            let payload_len = usize::from(v6.header().payload_length());
            // 0 means a jumbogram or segmentation offload: use the frame.
            (payload_len != 0).then_some(40 + payload_len)
        }
    };
    let payload = slice.payload();
    if payload.incomplete && !cut {
        return Err(Skip::Malformed(format!(
            "IP length field claims {} bytes but the packet has only {}",
            claimed_len.unwrap_or(0),
            ip.len()
        )));
    }
    if payload.fragmented {
        return Err(Skip::Fragment);
    }
    if let Some((error, _)) = ext_error {
        return Err(if payload.incomplete {
            Skip::CutBySnaplen("IPv6 extension headers")
        } else {
            Skip::Malformed(format!("bad IPv6 extension header: {error}"))
        });
    }
    if payload.ip_number != IpNumber::TCP {
        return Err(Skip::NotTcp);
    }
    let tcp = TcpSlice::from_slice(payload.payload).map_err(|e| match e {
        HeaderSliceError::Len(_) if payload.incomplete => Skip::CutBySnaplen("TCP header"),
        HeaderSliceError::Len(e) => Skip::Malformed(format!(
            "TCP header of {} bytes runs past the end of the IP packet ({} bytes left)",
            e.required_len, e.len
        )),
        HeaderSliceError::Content(e) => Skip::Malformed(format!("bad TCP header: {e}")),
    })?;
    let tcp_header_len = tcp.header_slice().len();
    // Offset of the TCP header in the IP packet (IP header plus extensions).
    let tcp_offset = payload.payload.as_ptr() as usize - ip.as_ptr() as usize;
    // Unless the snaplen cut it, the IP payload slice already ends where the
    // IP length fields say (Ethernet padding excluded).
    let ip_len = match claimed_len {
        Some(claimed) if payload.incomplete => claimed,
        _ => tcp_offset + payload.payload.len(),
    };
    let payload_len = ip_len.saturating_sub(tcp_offset + tcp_header_len);
    let src = SocketAddr::new(slice.source_addr(), tcp.source_port());
    let dst = SocketAddr::new(slice.destination_addr(), tcp.destination_port());
    Ok(TcpSegment {
        number: packet.number,
        time: packet.time,
        src,
        dst,
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        flags: TcpFlags::from_bits({
            let h = tcp.header_slice();
            u16::from_be_bytes([h[12], h[13]])
        }),
        payload: tcp.payload(),
        payload_len: payload_len as u32,
        window: tcp.window_size(),
        window_scale: if tcp.syn() {
            window_scale(tcp.options())
        } else {
            None
        },
    })
}

/// Packet builders shared by the unit tests of the `analyze` modules.
#[cfg(test)]
pub(crate) mod testing {
    use etherparse::PacketBuilder;

    use super::super::model::Timestamp;
    use super::super::segment::RawPacket;

    /// IPv4 + TCP, 10.0.0.1:40000 → 10.0.0.2:2222, seq 1000, ack 5000, PSH|ACK.
    pub fn tcp_v4(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 2222, 1000, 65535)
            .ack(5000)
            .psh()
            .write_to_vec(&mut out, payload)
            .unwrap();
        out
    }

    /// IPv6 + TCP, [fd00::1]:40000 → [fd00::2]:2222, seq 7, SYN.
    pub fn tcp_v6(payload: &[u8]) -> Vec<u8> {
        let mut a = [0u8; 16];
        a[0] = 0xfd;
        let mut b = a;
        a[15] = 1;
        b[15] = 2;
        let mut out = Vec::new();
        PacketBuilder::ipv6(a, b, 64)
            .tcp(40000, 2222, 7, 65535)
            .syn()
            .write_to_vec(&mut out, payload)
            .unwrap();
        out
    }

    /// An Ethernet II frame around an IP packet.
    pub fn ether_frame(ip: &[u8]) -> Vec<u8> {
        let ether_type: u16 = if ip[0] >> 4 == 6 { 0x86DD } else { 0x0800 };
        let mut out = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        out.extend_from_slice(&ether_type.to_be_bytes());
        out.extend_from_slice(ip);
        out
    }

    /// A packet record of `link_type` holding all of `data`.
    pub fn raw(link_type: u32, data: &[u8]) -> RawPacket<'_> {
        RawPacket {
            number: 1,
            time: Timestamp(0),
            link_type,
            data,
            orig_len: data.len() as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use proptest::prelude::*;

    fn v4_addr(port: u16, last: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, last], port))
    }

    fn assert_v4_segment(segment: &TcpSegment<'_>, payload: &[u8]) {
        assert_eq!(segment.src, v4_addr(40000, 1));
        assert_eq!(segment.dst, v4_addr(2222, 2));
        assert_eq!((segment.seq, segment.ack), (1000, 5000));
        assert!(segment.flags.ack && segment.flags.psh);
        assert!(!segment.flags.syn && !segment.flags.fin && !segment.flags.rst);
        assert_eq!(segment.payload, payload);
        assert_eq!(segment.payload_len as usize, payload.len());
    }

    #[test]
    fn ethernet_ipv4_tcp() {
        let frame = ether_frame(&tcp_v4(b"hello\n"));
        let segment = decode(&raw(linktype::ETHERNET, &frame)).unwrap();
        assert_v4_segment(&segment, b"hello\n");
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        // A bare ACK is 54 bytes; Ethernet pads it to 60 (here with junk).
        let mut frame = ether_frame(&tcp_v4(b""));
        frame.extend_from_slice(&[0xAA; 6]);
        let segment = decode(&raw(linktype::ETHERNET, &frame)).unwrap();
        assert_v4_segment(&segment, b"");
    }

    #[test]
    fn vlan_and_qinq() {
        let ip = tcp_v4(b"vlan");
        let mut single = ether_frame(&ip);
        single.splice(12..12, [0x81, 0x00, 0x00, 0x2a]);
        assert_v4_segment(&decode(&raw(linktype::ETHERNET, &single)).unwrap(), b"vlan");
        let mut double = ether_frame(&ip);
        double.splice(12..12, [0x88, 0xa8, 0x00, 0x07, 0x81, 0x00, 0x00, 0x2a]);
        assert_v4_segment(&decode(&raw(linktype::ETHERNET, &double)).unwrap(), b"vlan");
        let mut too_deep = ether_frame(&ip);
        for _ in 0..6 {
            too_deep.splice(12..12, [0x81, 0x00, 0x00, 0x01]);
        }
        assert!(matches!(
            decode(&raw(linktype::ETHERNET, &too_deep)),
            Err(Skip::Malformed(m)) if m.contains("VLAN")
        ));
    }

    #[test]
    fn linux_cooked_v1_and_v2() {
        let ip = tcp_v4(b"any");
        // SLL: packet type 4 (outgoing), ARPHRD_LOOPBACK 772, addr len 0, addr, protocol.
        let mut sll = vec![0, 4, 0x03, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00];
        sll.extend_from_slice(&ip);
        assert_v4_segment(&decode(&raw(linktype::LINUX_SLL, &sll)).unwrap(), b"any");
        // SLL2: protocol, reserved, ifindex, ARPHRD, packet type, addr len, addr.
        let mut sll2 = vec![0x08, 0x00, 0, 0, 0, 0, 0, 1, 0x03, 0x04, 4, 0];
        sll2.extend_from_slice(&[0; 8]);
        sll2.extend_from_slice(&ip);
        assert_v4_segment(&decode(&raw(linktype::LINUX_SLL2, &sll2)).unwrap(), b"any");
        // A cooked header announcing ARP is not IP.
        sll2[0..2].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(
            decode(&raw(linktype::LINUX_SLL2, &sll2)).unwrap_err(),
            Skip::NotIp
        );
    }

    #[test]
    fn loopback_null_both_byte_orders_and_loop() {
        let v4 = tcp_v4(b"lo");
        let v6 = tcp_v6(b"");
        for (link, family, ip) in [
            (linktype::NULL, 2u32.to_le_bytes(), &v4),
            (linktype::NULL, 2u32.to_be_bytes(), &v4),
            (linktype::NULL, 30u32.to_be_bytes(), &v6),
            (linktype::NULL, 10u32.to_le_bytes(), &v6),
            (linktype::LOOP, 24u32.to_be_bytes(), &v6),
            (linktype::LOOP, 2u32.to_be_bytes(), &v4),
        ] {
            let mut packet = family.to_vec();
            packet.extend_from_slice(ip);
            let segment = decode(&raw(link, &packet)).unwrap();
            assert_eq!(segment.dst.port(), 2222, "link {link} family {family:?}");
        }
        let mut other = 7u32.to_le_bytes().to_vec();
        other.extend_from_slice(&v4);
        assert_eq!(
            decode(&raw(linktype::NULL, &other)).unwrap_err(),
            Skip::NotIp
        );
    }

    #[test]
    fn raw_ip_link_types() {
        let v4 = tcp_v4(b"raw");
        let v6 = tcp_v6(b"six");
        for link in [linktype::RAW, linktype::IPV4] {
            assert_v4_segment(&decode(&raw(link, &v4)).unwrap(), b"raw");
        }
        for link in [linktype::RAW, linktype::IPV6] {
            let segment = decode(&raw(link, &v6)).unwrap();
            assert_eq!(segment.src, "[fd00::1]:40000".parse().unwrap());
            assert_eq!(segment.dst, "[fd00::2]:2222".parse().unwrap());
            assert!(segment.flags.syn && !segment.flags.ack);
            assert_eq!(
                (segment.seq, segment.payload, segment.payload_len),
                (7, &b"six"[..], 3)
            );
        }
    }

    #[test]
    fn ipv6_extension_header_before_tcp() {
        let plain = tcp_v6(b"ext");
        // Insert an 8-byte hop-by-hop header (next header TCP, PadN option).
        let mut ip = plain[..40].to_vec();
        ip[6] = 0; // next header: hop-by-hop
        let payload_len = u16::from_be_bytes([ip[4], ip[5]]) + 8;
        ip[4..6].copy_from_slice(&payload_len.to_be_bytes());
        ip.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
        ip.extend_from_slice(&plain[40..]);
        let segment = decode(&raw(linktype::IPV6, &ip)).unwrap();
        assert_eq!((segment.payload, segment.payload_len), (&b"ext"[..], 3));
    }

    #[test]
    fn snaplen_cut_payload_still_counted() {
        let frame = ether_frame(&tcp_v4(&[b'x'; 1000]));
        let mut packet = raw(linktype::ETHERNET, &frame[..100]);
        packet.orig_len = frame.len() as u32;
        let segment = decode(&packet).unwrap();
        assert_eq!(segment.payload.len(), 100 - 14 - 20 - 20);
        assert_eq!(segment.payload_len, 1000);
        // Cut inside the TCP header: skipped, and said so.
        let mut packet = raw(linktype::ETHERNET, &frame[..40]);
        packet.orig_len = frame.len() as u32;
        assert_eq!(
            decode(&packet).unwrap_err(),
            Skip::CutBySnaplen("TCP header")
        );
    }

    #[test]
    fn fragments_and_other_protocols_are_skipped() {
        let mut v4 = tcp_v4(b"frag");
        v4[6] = 0x20; // more fragments
        assert_eq!(
            decode(&raw(linktype::RAW, &v4)).unwrap_err(),
            Skip::Fragment
        );
        let mut udp = Vec::new();
        etherparse::PacketBuilder::ipv4([1, 1, 1, 1], [2, 2, 2, 2], 9)
            .udp(53, 53)
            .write_to_vec(&mut udp, b"dns")
            .unwrap();
        assert_eq!(decode(&raw(linktype::RAW, &udp)).unwrap_err(), Skip::NotTcp);
        let mut arp = ether_frame(&[0; 28]);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(
            decode(&raw(linktype::ETHERNET, &arp)).unwrap_err(),
            Skip::NotIp
        );
        assert_eq!(
            decode(&raw(127, &arp)).unwrap_err(),
            Skip::UnsupportedLink(127)
        );
    }

    #[test]
    fn ipv6_fragment_header_is_a_fragment() {
        let plain = tcp_v6(b"f");
        let mut ip = plain[..40].to_vec();
        ip[6] = 44;
        let payload_len = u16::from_be_bytes([ip[4], ip[5]]) + 8;
        ip[4..6].copy_from_slice(&payload_len.to_be_bytes());
        // next header TCP, offset 0, more fragments, id 1
        ip.extend_from_slice(&[6, 0, 0, 1, 0, 0, 0, 1]);
        ip.extend_from_slice(&plain[40..]);
        assert_eq!(
            decode(&raw(linktype::IPV6, &ip)).unwrap_err(),
            Skip::Fragment
        );
    }

    fn malformed(link: u32, data: &[u8]) -> String {
        match decode(&raw(link, data)) {
            Err(Skip::Malformed(message)) => message,
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn hostile_headers_are_malformed() {
        let good = tcp_v4(b"data");
        let mut ihl = good.clone();
        ihl[0] = 0x43;
        let message = malformed(linktype::RAW, &ihl);
        assert!(message.contains("internet header length"), "{message}");
        let mut total = good.clone();
        total[2..4].copy_from_slice(&12u16.to_be_bytes());
        assert!(malformed(linktype::RAW, &total).contains("total length 12"));
        let mut claims_more = good.clone();
        claims_more[2..4].copy_from_slice(&900u16.to_be_bytes());
        assert!(malformed(linktype::RAW, &claims_more).contains("claims 900 bytes"));
        let mut small_offset = good.clone();
        small_offset[32] = 3 << 4;
        assert!(malformed(linktype::RAW, &small_offset).contains("data offset"));
        let mut past_end = good.clone();
        past_end[32] = 15 << 4;
        assert!(malformed(linktype::RAW, &past_end).contains("runs past the end"));
        assert!(malformed(linktype::ETHERNET, &[0; 10]).contains("Ethernet header"));
        assert!(malformed(linktype::LINUX_SLL2, &[0; 10]).contains("SLL2"));
        let mut version = good.clone();
        version[0] = 0x55;
        assert!(malformed(linktype::RAW, &version).contains("IP header"));
    }

    #[test]
    fn tso_zero_total_length_uses_the_frame() {
        let mut ip = tcp_v4(b"offload");
        ip[2..4].copy_from_slice(&[0, 0]);
        assert_v4_segment(&decode(&raw(linktype::RAW, &ip)).unwrap(), b"offload");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            link in prop_oneof![Just(0u32), Just(1), Just(101), Just(108), Just(113), Just(228), Just(229), Just(276), any::<u32>()],
            data in proptest::collection::vec(any::<u8>(), 0..200),
            extra in 0u32..2000,
        ) {
            let mut packet = raw(link, &data);
            packet.orig_len = data.len() as u32 + extra;
            if let Ok(segment) = decode(&packet) {
                prop_assert!(segment.payload_len as usize >= segment.payload.len());
            }
        }

        #[test]
        fn mutated_packets_never_panic(
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            flips in proptest::collection::vec((0usize..120, any::<u8>()), 1..6),
        ) {
            let mut frame = ether_frame(&tcp_v4(&payload));
            for (at, value) in flips {
                let at = at % frame.len();
                frame[at] = value;
            }
            if let Ok(segment) = decode(&raw(linktype::ETHERNET, &frame)) {
                prop_assert!(segment.payload_len as usize >= segment.payload.len());
            }
        }

        /// Whatever the fast IPv4 path accepts, etherparse decodes the same.
        #[test]
        fn fast_path_agrees_with_etherparse(
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            flips in proptest::collection::vec((0usize..60, any::<u8>()), 0..4),
            padding in 0usize..8,
        ) {
            let mut ip = tcp_v4(&payload);
            for (at, value) in flips {
                let at = at % ip.len();
                ip[at] = value;
            }
            ip.resize(ip.len() + padding, 0);
            let packet = raw(linktype::RAW, &ip);
            if let Some(fast) = ipv4_tcp(&packet, &ip) {
                let general = ip_tcp_general(&packet, &ip, false);
                prop_assert!(general.is_ok(), "etherparse says {general:?}");
                let general = general.unwrap();
                prop_assert_eq!(
                    (fast.src, fast.dst, fast.seq, fast.ack, fast.flags),
                    (general.src, general.dst, general.seq, general.ack, general.flags)
                );
                prop_assert_eq!(fast.payload, general.payload);
                prop_assert_eq!(fast.payload_len, general.payload_len);
            }
        }
    }

    #[test]
    fn fast_path_takes_plain_ipv4_with_options() {
        let ip = tcp_v4(b"hello");
        assert!(ipv4_tcp(&raw(linktype::RAW, &ip), &ip).is_some());
        // IHL 6: one word of IP options (NOPs) before TCP.
        let mut with_options = ip[..20].to_vec();
        with_options[0] = 0x46;
        let total = u16::from_be_bytes([ip[2], ip[3]]) + 4;
        with_options[2..4].copy_from_slice(&total.to_be_bytes());
        with_options.extend_from_slice(&[1, 1, 1, 1]);
        with_options.extend_from_slice(&ip[20..]);
        let fast = ipv4_tcp(&raw(linktype::RAW, &with_options), &with_options).unwrap();
        assert_eq!((fast.payload, fast.payload_len), (&b"hello"[..], 5));
        // A fragment or a zero total length goes to etherparse.
        let mut fragment = ip.clone();
        fragment[6] = 0x20;
        assert!(ipv4_tcp(&raw(linktype::RAW, &fragment), &fragment).is_none());
        let mut offload = ip.clone();
        offload[2..4].copy_from_slice(&[0, 0]);
        assert!(ipv4_tcp(&raw(linktype::RAW, &offload), &offload).is_none());
    }
}
