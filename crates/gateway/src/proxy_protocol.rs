//! PROXY protocol v1 (text) and v2 (binary) headers, as sent by load
//! balancers (HAProxy, AWS NLB) in front of the gateway.
//!
//! Only read from trusted peers; [`read_header`] peeks until the header is
//! complete, then consumes exactly its bytes, so the TLS or HTTP bytes that
//! follow are untouched.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// Longest v1 header, CRLF included (the specification's figure).
const V1_MAX: usize = 107;
/// Largest v2 header we accept (16-byte preamble plus addresses and TLVs).
const V2_MAX: usize = 16 + 512;

/// What a header said.
#[derive(Debug, PartialEq, Eq)]
pub enum Header {
    /// The original client's address.
    Proxied(SocketAddr),
    /// A health check or local connection: keep the peer address.
    Local,
}

/// A header that is not a valid PROXY protocol header.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("PROXY protocol: {0}")]
pub struct ProxyError(pub &'static str);

/// Parses a complete header at the start of `buf`. `Ok(None)`: more bytes
/// are needed. `Ok(Some((header, len)))`: the header and its length.
pub fn parse(buf: &[u8]) -> Result<Option<(Header, usize)>, ProxyError> {
    if buf.len() < 6 {
        return if b"PROXY ".starts_with(buf) || V2_SIGNATURE.starts_with(buf) {
            Ok(None)
        } else {
            Err(ProxyError("missing header"))
        };
    }
    if buf.starts_with(b"PROXY ") {
        return parse_v1(buf);
    }
    if buf.len() < 16 {
        return if V2_SIGNATURE.starts_with(&buf[..buf.len().min(12)]) {
            Ok(None)
        } else {
            Err(ProxyError("missing header"))
        };
    }
    if &buf[..12] == V2_SIGNATURE {
        return parse_v2(buf);
    }
    Err(ProxyError("missing header"))
}

fn parse_v1(buf: &[u8]) -> Result<Option<(Header, usize)>, ProxyError> {
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
        return if buf.len() >= V1_MAX { Err(ProxyError("v1 header too long")) } else { Ok(None) };
    };
    let line = std::str::from_utf8(&buf[..end]).map_err(|_| ProxyError("v1 header is not ASCII"))?;
    let mut parts = line.split(' ');
    parts.next(); // "PROXY"
    let header = match parts.next() {
        Some("UNKNOWN") => Header::Local,
        Some(family @ ("TCP4" | "TCP6")) => {
            let src: IpAddr = parts.next().and_then(|s| s.parse().ok()).ok_or(ProxyError("v1 bad source address"))?;
            let _dst: IpAddr =
                parts.next().and_then(|s| s.parse().ok()).ok_or(ProxyError("v1 bad destination address"))?;
            let sport: u16 = parts.next().and_then(|s| s.parse().ok()).ok_or(ProxyError("v1 bad source port"))?;
            let _dport: u16 = parts.next().and_then(|s| s.parse().ok()).ok_or(ProxyError("v1 bad destination port"))?;
            if parts.next().is_some() || (family == "TCP4") != src.is_ipv4() {
                return Err(ProxyError("v1 malformed"));
            }
            Header::Proxied(SocketAddr::new(src, sport))
        }
        _ => return Err(ProxyError("v1 unknown protocol family")),
    };
    Ok(Some((header, end + 2)))
}

fn parse_v2(buf: &[u8]) -> Result<Option<(Header, usize)>, ProxyError> {
    let ver_cmd = buf[12];
    if ver_cmd >> 4 != 2 {
        return Err(ProxyError("v2 unsupported version"));
    }
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    let total = 16 + len;
    if total > V2_MAX {
        return Err(ProxyError("v2 header too long"));
    }
    if buf.len() < total {
        return Ok(None);
    }
    let body = &buf[16..total];
    let header = match ver_cmd & 0x0f {
        0 => Header::Local,
        1 => match buf[13] {
            // AF_INET, STREAM
            0x11 => {
                let a = body.get(..12).ok_or(ProxyError("v2 short IPv4 block"))?;
                let ip = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
                Header::Proxied(SocketAddr::new(ip.into(), u16::from_be_bytes([a[8], a[9]])))
            }
            // AF_INET6, STREAM
            0x21 => {
                let a = body.get(..36).ok_or(ProxyError("v2 short IPv6 block"))?;
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&a[..16]);
                Header::Proxied(SocketAddr::new(Ipv6Addr::from(octets).into(), u16::from_be_bytes([a[32], a[33]])))
            }
            // UNSPEC or other families: keep the peer address.
            _ => Header::Local,
        },
        _ => return Err(ProxyError("v2 unknown command")),
    };
    Ok(Some((header, total)))
}

/// Reads a PROXY header from `stream` within `timeout`, consuming exactly
/// its bytes.
pub async fn read_header(stream: &mut TcpStream, timeout: Duration) -> Result<Header, ProxyError> {
    let work = async {
        let mut buf = vec![0u8; V2_MAX];
        let mut last = 0;
        loop {
            let n = stream.peek(&mut buf).await.map_err(|_| ProxyError("connection failed"))?;
            if n == 0 {
                return Err(ProxyError("connection closed before header"));
            }
            if let Some((header, len)) = parse(&buf[..n])? {
                let mut sink = vec![0u8; len];
                stream.read_exact(&mut sink).await.map_err(|_| ProxyError("connection failed"))?;
                return Ok(header);
            }
            if n == last {
                // Nothing new arrived yet: wait a little before peeking again.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            last = n;
        }
    };
    tokio::time::timeout(timeout, work).await.map_err(|_| ProxyError("timed out"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_tcp4_and_tcp6() {
        let (h, n) = parse(b"PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\nGET").unwrap().unwrap();
        assert_eq!(h, Header::Proxied("192.0.2.1:56324".parse().unwrap()));
        assert_eq!(n, 45);
        let (h, _) = parse(b"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n").unwrap().unwrap();
        assert_eq!(h, Header::Proxied("[2001:db8::1]:1".parse().unwrap()));
        let (h, _) = parse(b"PROXY UNKNOWN\r\n").unwrap().unwrap();
        assert_eq!(h, Header::Local);
    }

    #[test]
    fn v1_incomplete_and_malformed() {
        assert_eq!(parse(b"PROXY TCP4 192.0.2.1").unwrap(), None);
        assert_eq!(parse(b"PRO").unwrap(), None);
        assert!(parse(b"GET / HTTP/1.1\r\n").is_err());
        assert!(parse(b"PROXY TCP4 192.0.2.1 198.51.100.1 99999 443\r\n").is_err());
        assert!(parse(b"PROXY TCP4 2001:db8::1 198.51.100.1 1 443\r\n").is_err());
        assert!(parse(&[b'P', b'R', b'O', b'X', b'Y', b' ', b'T', b'C', b'P', b'4'].repeat(20)).is_err());
    }

    fn v2(cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
        let mut v = V2_SIGNATURE.to_vec();
        v.push(0x20 | cmd);
        v.push(fam);
        v.extend_from_slice(&(body.len() as u16).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn v2_ipv4_ipv6_and_local() {
        let mut body = vec![192, 0, 2, 7, 10, 0, 0, 1];
        body.extend_from_slice(&4000u16.to_be_bytes());
        body.extend_from_slice(&443u16.to_be_bytes());
        let bytes = v2(1, 0x11, &body);
        let (h, n) = parse(&bytes).unwrap().unwrap();
        assert_eq!(h, Header::Proxied("192.0.2.7:4000".parse().unwrap()));
        assert_eq!(n, bytes.len());
        let mut body6 = vec![0u8; 36];
        body6[0] = 0x20;
        body6[1] = 0x01;
        body6[15] = 9;
        body6[33] = 80;
        let (h, _) = parse(&v2(1, 0x21, &body6)).unwrap().unwrap();
        assert_eq!(h, Header::Proxied("[2001::9]:80".parse().unwrap()));
        assert_eq!(parse(&v2(0, 0, &[])).unwrap().unwrap().0, Header::Local);
    }

    #[test]
    fn v2_truncated_and_oversized() {
        let bytes = v2(1, 0x11, &[1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2]);
        for cut in 0..bytes.len() {
            assert_eq!(parse(&bytes[..cut]).unwrap(), None, "cut at {cut}");
        }
        assert!(parse(&v2(1, 0x11, &[1, 2, 3])).is_err());
        let mut huge = V2_SIGNATURE.to_vec();
        huge.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        assert!(parse(&huge).is_err());
    }
}
