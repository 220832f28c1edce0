//! Kubernetes' WebSocket channel framing (apimachinery wsstream): each
//! message carries one channel's bytes, prefixed by the channel number — a
//! raw byte in binary protocols, an ASCII digit followed by base64 in the
//! base64 ones. Pure: no I/O.

use base64::Engine;
use bytes::Bytes;
use tokio_tungstenite::tungstenite::Message;

/// v5: the client's "close this stream" signal, `[255, channel]`.
pub const CLOSE_SIGNAL: u8 = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Binary,
    Base64,
}

/// What a subprotocol means to a remote-command session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteCommandProtocol {
    /// The name echoed in Sec-WebSocket-Protocol ("" when none was offered).
    pub name: &'static str,
    pub encoding: Encoding,
    /// v4+ write the status as JSON.
    pub json_status: bool,
    /// v5 accepts the close-stream signal.
    pub close_signal: bool,
}

const fn rc(
    name: &'static str,
    encoding: Encoding,
    json: bool,
    close: bool,
) -> RemoteCommandProtocol {
    RemoteCommandProtocol {
        name,
        encoding,
        json_status: json,
        close_signal: close,
    }
}

/// Remote-command subprotocols, newest first (preferred when a client
/// offers several, as client-go does).
const REMOTE_COMMAND: [RemoteCommandProtocol; 5] = [
    rc("v5.channel.k8s.io", Encoding::Binary, true, true),
    rc("v4.channel.k8s.io", Encoding::Binary, true, false),
    rc("v4.base64.channel.k8s.io", Encoding::Base64, true, false),
    rc("channel.k8s.io", Encoding::Binary, false, false),
    rc("base64.channel.k8s.io", Encoding::Base64, false, false),
];

/// Port-forward subprotocols: the channel forms kubelet serves.
const PORT_FORWARD: [(&str, Encoding); 5] = [
    ("v4.channel.k8s.io", Encoding::Binary),
    ("v4.base64.channel.k8s.io", Encoding::Base64),
    ("portforward.k8s.io", Encoding::Binary),
    ("channel.k8s.io", Encoding::Binary),
    ("base64.channel.k8s.io", Encoding::Base64),
];

/// The remote-command subprotocols served, newest first.
pub fn remote_command_names() -> Vec<&'static str> {
    REMOTE_COMMAND.iter().map(|p| p.name).collect()
}

/// The port-forward subprotocols served (the channel forms).
pub fn port_forward_names() -> Vec<&'static str> {
    PORT_FORWARD.iter().map(|(name, _)| *name).collect()
}

/// The subprotocols a client offered, from every Sec-WebSocket-Protocol
/// header (comma-separated lists).
pub fn offered<'a>(headers: impl Iterator<Item = &'a str>) -> Vec<String> {
    headers
        .flat_map(|h| h.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Picks a remote-command protocol: binary without a name when the client
/// offered none; otherwise the newest one both sides know.
pub fn negotiate_remote_command(offered: &[String]) -> Option<RemoteCommandProtocol> {
    if offered.is_empty() {
        return Some(rc("", Encoding::Binary, false, false));
    }
    REMOTE_COMMAND
        .iter()
        .find(|p| offered.iter().any(|o| o == p.name))
        .copied()
}

pub fn negotiate_port_forward(offered: &[String]) -> Option<(&'static str, Encoding)> {
    if offered.is_empty() {
        return Some(("", Encoding::Binary));
    }
    PORT_FORWARD
        .iter()
        .find(|(name, _)| offered.iter().any(|o| o == name))
        .copied()
}

/// One message carrying `data` on `channel`.
pub fn encode(encoding: Encoding, channel: u8, data: &[u8]) -> Message {
    encode_parts(encoding, channel, &[data])
}

/// One message carrying the concatenation of `parts` on `channel`, copied
/// once.
pub fn encode_parts<B: AsRef<[u8]>>(encoding: Encoding, channel: u8, parts: &[B]) -> Message {
    let len: usize = parts.iter().map(|p| p.as_ref().len()).sum();
    match encoding {
        Encoding::Binary => {
            let mut frame = Vec::with_capacity(len + 1);
            frame.push(channel);
            for part in parts {
                frame.extend_from_slice(part.as_ref());
            }
            Message::Binary(Bytes::from(frame))
        }
        Encoding::Base64 => {
            // Base64 of a concatenation is not the concatenation of the
            // parts' base64 (padding), so join first.
            let mut joined = Vec::with_capacity(len);
            for part in parts {
                joined.extend_from_slice(part.as_ref());
            }
            let mut text = String::with_capacity(len * 4 / 3 + 5);
            text.push(char::from(b'0'.wrapping_add(channel)));
            base64::engine::general_purpose::STANDARD.encode_string(&joined, &mut text);
            Message::text(text)
        }
    }
}

/// A frame as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Data(u8, Bytes),
    /// v5: the client closed its side of this channel.
    Close(u8),
    /// Nothing to deliver (empty or control message).
    Skip,
}

/// Reads one client message. Malformed data is an error naming why.
pub fn decode(
    encoding: Encoding,
    close_signal: bool,
    message: Message,
) -> Result<Frame, &'static str> {
    let (channel, payload) = match (encoding, message) {
        (Encoding::Binary, Message::Binary(data)) => {
            let Some(&channel) = data.first() else {
                return Ok(Frame::Skip);
            };
            (channel, data.slice(1..))
        }
        (Encoding::Base64, Message::Text(text)) => {
            let bytes = text.as_bytes();
            let Some(&digit) = bytes.first() else {
                return Ok(Frame::Skip);
            };
            let channel = digit.wrapping_sub(b'0');
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(&bytes[1..])
                .map_err(|_| "invalid base64 in a text frame")?;
            (channel, Bytes::from(decoded))
        }
        (_, Message::Binary(_) | Message::Text(_)) => {
            return Err("frame type does not match the negotiated protocol");
        }
        _ => return Ok(Frame::Skip),
    };
    if close_signal && channel == CLOSE_SIGNAL {
        return match payload.as_ref() {
            [closed] => Ok(Frame::Close(*closed)),
            _ => Err("a close signal names exactly one channel"),
        };
    }
    Ok(Frame::Data(channel, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_round_trip() {
        let m = encode(Encoding::Binary, 2, b"err");
        assert_eq!(m, Message::Binary(Bytes::from_static(b"\x02err")));
        assert_eq!(
            decode(Encoding::Binary, false, m),
            Ok(Frame::Data(2, Bytes::from_static(b"err")))
        );
    }

    #[test]
    fn parts_are_joined_into_one_message() {
        let parts = [&b"ab"[..], b"", b"cde"];
        assert_eq!(
            encode_parts(Encoding::Binary, 1, &parts),
            Message::Binary(Bytes::from_static(b"\x01abcde"))
        );
        // "abcde" as one base64 text, not "YWI=" + "Y2Rl".
        assert_eq!(
            encode_parts(Encoding::Base64, 2, &parts),
            Message::text("2YWJjZGU=")
        );
    }

    #[test]
    fn base64_frames_carry_a_digit_and_base64() {
        let m = encode(Encoding::Base64, 1, b"hello");
        assert_eq!(m, Message::text("1aGVsbG8="));
        assert_eq!(
            decode(Encoding::Base64, false, Message::text("0aGk=")),
            Ok(Frame::Data(0, Bytes::from_static(b"hi")))
        );
        assert!(decode(Encoding::Base64, false, Message::text("0!!")).is_err());
        // An empty ready frame is just the digit.
        assert_eq!(encode(Encoding::Base64, 3, b""), Message::text("3"));
    }

    #[test]
    fn empty_and_control_messages_are_skipped() {
        assert_eq!(
            decode(Encoding::Binary, true, Message::Binary(Bytes::new())),
            Ok(Frame::Skip)
        );
        assert_eq!(
            decode(Encoding::Binary, true, Message::Ping(Bytes::new())),
            Ok(Frame::Skip)
        );
        assert!(decode(Encoding::Binary, false, Message::text("1x")).is_err());
    }

    #[test]
    fn v5_close_signal() {
        let close = Message::Binary(Bytes::from_static(&[255, 0]));
        assert_eq!(
            decode(Encoding::Binary, true, close.clone()),
            Ok(Frame::Close(0))
        );
        // Before v5, 255 is only an unknown channel.
        assert_eq!(
            decode(Encoding::Binary, false, close),
            Ok(Frame::Data(255, Bytes::from_static(&[0])))
        );
        assert!(
            decode(
                Encoding::Binary,
                true,
                Message::Binary(Bytes::from_static(&[255]))
            )
            .is_err()
        );
    }

    #[test]
    fn negotiation_prefers_the_newest_shared_protocol() {
        let o = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let got = negotiate_remote_command(&o(&["v4.channel.k8s.io", "v5.channel.k8s.io"]));
        assert_eq!(got.unwrap().name, "v5.channel.k8s.io");
        let got = negotiate_remote_command(&o(&["base64.channel.k8s.io"])).unwrap();
        assert_eq!((got.encoding, got.json_status), (Encoding::Base64, false));
        assert_eq!(negotiate_remote_command(&[]).unwrap().name, "");
        assert!(negotiate_remote_command(&o(&["SPDY/3.1+portforward.k8s.io"])).is_none());
        assert_eq!(
            negotiate_port_forward(&o(&["v4.base64.channel.k8s.io"])),
            Some(("v4.base64.channel.k8s.io", Encoding::Base64))
        );
        assert_eq!(
            offered(["a, b", "c"].into_iter()),
            vec!["a".to_string(), "b".into(), "c".into()]
        );
    }
}
