//! A minimal valid SDP offer/answer (RFC 4566): one PCMU audio stream on a given address.

use std::net::SocketAddr;

/// `application/sdp` body for one PCMU audio stream at `media` (no RTP is actually sent).
pub fn minimal_sdp(media: SocketAddr, session_id: u64) -> String {
    let (net, ip) = match media.ip() {
        std::net::IpAddr::V4(v4) => ("IP4", v4.to_string()),
        std::net::IpAddr::V6(v6) => ("IP6", v6.to_string()),
    };
    format!(
        "v=0\r\no=- {session_id} {session_id} IN {net} {ip}\r\ns=pushbench\r\nc=IN {net} {ip}\r\nt=0 0\r\nm=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
        media.port()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdp_has_the_mandatory_lines_in_order() {
        let s = minimal_sdp("[::1]:4000".parse().unwrap(), 7);
        let kinds: Vec<char> = s.lines().map(|l| l.chars().next().unwrap()).collect();
        assert_eq!(kinds, vec!['v', 'o', 's', 'c', 't', 'm', 'a']);
        assert!(s.contains("c=IN IP6 ::1\r\n"));
        assert!(s.contains("m=audio 4000 RTP/AVP 0"));
    }
}
