//! Streaming framing of JSON-RPC as OVSDB sends it.
//!
//! An OVSDB connection carries JSON values one after another with no delimiter between them
//! (whitespace between values is allowed). A [`Framer`] collects the bytes as they arrive, in
//! pieces split at any byte, and hands out each complete top-level value as one [`Bytes`] frame.
//!
//! The scan is incremental: the framer remembers how far it has looked, its bracket depth and
//! whether it stands inside a string (or just after a backslash in one), so each byte is
//! examined once however the message is chopped up. A 50 MB reply arriving in 64 KiB reads is
//! scanned once, not once per read.
//!
//! The framer only finds the boundaries. Brackets are counted, not matched, and the frame's
//! content (UTF-8, escapes, numbers) is checked by the JSON decoder that reads it
//! ([`crate::jsonrpc::Message::decode`]). Multi-byte UTF-8 needs no special care: none of its
//! bytes is below 0x80, so none can be taken for a quote, a backslash or a bracket.
//!
//! ```
//! use ovsdb::framing::Framer;
//!
//! let mut framer = Framer::new();
//! framer.extend(br#"{"id":1,"result":["a{"#);
//! assert!(framer.next_frame()?.is_none());
//! framer.extend(br#""],"error":null} {"id":2"#);
//! let frame = framer.next_frame()?.expect("one complete message");
//! assert_eq!(&frame[..], br#"{"id":1,"result":["a{"],"error":null}"#);
//! assert!(framer.next_frame()?.is_none());
//! # Ok::<(), ovsdb::framing::FramingError>(())
//! ```

use bytes::{Bytes, BytesMut};

/// The largest message a [`Framer`] accepts unless told otherwise: 1 GiB.
pub const DEFAULT_MAX_MESSAGE_LEN: usize = 1 << 30;

/// The stream cannot be split into JSON values.
///
/// Every variant is fatal for the connection: after one, the framer can no longer find message
/// boundaries and keeps returning the same error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FramingError {
    /// Between messages there was a byte that cannot start a JSON-RPC message (only `{` or `[`
    /// and whitespace may appear there).
    #[error("unexpected byte 0x{byte:02x} between messages at stream offset {offset}")]
    UnexpectedByte {
        /// The offending byte.
        byte: u8,
        /// Its offset from the start of the stream.
        offset: u64,
    },
    /// A message grew past the configured limit before it was complete.
    #[error("message longer than the limit of {limit} bytes")]
    MessageTooLong {
        /// The limit in force ([`Framer::with_max_message_len`]).
        limit: usize,
    },
    /// The bracket nesting went deeper than [`MAX_DEPTH`].
    #[error("message nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// The deepest bracket nesting a message may have. OVSDB messages nest a handful of levels;
/// the JSON decoder behind the framer refuses more than 128.
pub const MAX_DEPTH: u32 = 1024;

/// Splits a byte stream into complete top-level JSON values (objects or arrays).
///
/// Feed bytes with [`Framer::extend`] (or read straight into [`Framer::buffer_mut`]) and take
/// frames with [`Framer::next_frame`] until it returns `Ok(None)`.
#[derive(Debug)]
pub struct Framer {
    buf: BytesMut,
    /// Bytes at the front of `buf` already examined.
    scanned: usize,
    /// Nesting depth of the value being scanned; 0 between values.
    depth: u32,
    in_string: bool,
    escaped: bool,
    max_len: usize,
    /// Stream offset of `buf[0]`, for error messages.
    consumed: u64,
    failed: Option<FramingError>,
}

impl Default for Framer {
    fn default() -> Self {
        Self::new()
    }
}

impl Framer {
    /// A framer accepting messages up to [`DEFAULT_MAX_MESSAGE_LEN`] bytes.
    pub fn new() -> Self {
        Self::with_max_message_len(DEFAULT_MAX_MESSAGE_LEN)
    }

    /// A framer refusing any message longer than `max_len` bytes.
    pub fn with_max_message_len(max_len: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            scanned: 0,
            depth: 0,
            in_string: false,
            escaped: false,
            max_len,
            consumed: 0,
            failed: None,
        }
    }

    /// Appends received bytes.
    pub fn extend(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The receive buffer, for reading into it without a copy. Only append to it: bytes
    /// already there belong to a message being assembled.
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Bytes held that do not yet form a complete message.
    pub fn buffered_len(&self) -> usize {
        self.buf.len()
    }

    /// Whether the framer holds the start of a message that is not complete yet. At the end of
    /// the stream this means the peer closed in the middle of a message.
    pub fn is_mid_message(&self) -> bool {
        self.depth > 0
    }

    /// The next complete message, `Ok(None)` if more bytes are needed.
    ///
    /// Whitespace before a message is dropped. The frame holds exactly the bytes from the
    /// opening `{` or `[` to the matching closing bracket.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, FramingError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        match self.scan() {
            Ok(Some(end)) if end > self.max_len => Err(self.fail(FramingError::MessageTooLong {
                limit: self.max_len,
            })),
            Ok(Some(end)) => {
                let frame = self.buf.split_to(end).freeze();
                self.consumed += end as u64;
                self.scanned = 0;
                Ok(Some(frame))
            }
            Ok(None) => {
                if self.buf.len() > self.max_len {
                    return Err(self.fail(FramingError::MessageTooLong {
                        limit: self.max_len,
                    }));
                }
                Ok(None)
            }
            Err(err) => Err(self.fail(err)),
        }
    }

    fn fail(&mut self, err: FramingError) -> FramingError {
        self.failed = Some(err.clone());
        err
    }

    /// Scans from `self.scanned`; returns the end (exclusive) of a complete value.
    fn scan(&mut self) -> Result<Option<usize>, FramingError> {
        if self.depth == 0 {
            self.skip_whitespace()?;
        }
        let bytes = &self.buf[..];
        let mut i = self.scanned;
        let mut depth = self.depth;
        let mut in_string = self.in_string;
        let mut escaped = self.escaped;
        let mut result = Ok(None);
        while i < bytes.len() {
            let b = bytes[i];
            i += 1;
            if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        result = Err(FramingError::TooDeep);
                        break;
                    }
                }
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        result = Ok(Some(i));
                        break;
                    }
                }
                _ => {}
            }
        }
        self.scanned = i;
        self.depth = depth;
        self.in_string = in_string;
        self.escaped = escaped;
        result
    }

    /// Between values: drops whitespace and checks that a value starts with `{` or `[`.
    fn skip_whitespace(&mut self) -> Result<(), FramingError> {
        let skip = self
            .buf
            .iter()
            .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            .unwrap_or(self.buf.len());
        let _ = self.buf.split_to(skip);
        self.consumed += skip as u64;
        self.scanned = 0;
        match self.buf.first() {
            None | Some(b'{') | Some(b'[') => Ok(()),
            Some(&byte) => Err(FramingError::UnexpectedByte {
                byte,
                offset: self.consumed,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(framer: &mut Framer) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(f) = framer.next_frame().expect("valid stream") {
            out.push(String::from_utf8(f.to_vec()).expect("utf-8"));
        }
        out
    }

    #[test]
    fn splits_concatenated_values_with_and_without_whitespace() {
        let mut f = Framer::new();
        f.extend(b" {\"a\":1}{\"b\":[2]}\n\t[3] ");
        assert_eq!(frames(&mut f), ["{\"a\":1}", "{\"b\":[2]}", "[3]"]);
        assert_eq!(f.buffered_len(), 0);
        assert!(!f.is_mid_message());
    }

    #[test]
    fn brackets_and_escaped_quotes_inside_strings_do_not_count() {
        let mut f = Framer::new();
        let msg = br#"{"s":"}]{[\"\\","t":"\\\"}"}"#;
        f.extend(msg);
        assert_eq!(frames(&mut f), [String::from_utf8(msg.to_vec()).unwrap()]);
    }

    #[test]
    fn byte_by_byte_feed_yields_the_same_frames() {
        let stream = "{\"é\":\"ü{\"}[\"\\u00e9\",\"日本\"]{}".as_bytes();
        let mut f = Framer::new();
        let mut got = Vec::new();
        for b in stream {
            f.extend(&[*b]);
            got.extend(frames(&mut f));
        }
        assert_eq!(got, ["{\"é\":\"ü{\"}", "[\"\\u00e9\",\"日本\"]", "{}"]);
    }

    #[test]
    fn garbage_between_messages_is_fatal_and_sticky() {
        let mut f = Framer::new();
        f.extend(b"{} x{}");
        assert_eq!(frames_until_err(&mut f), 1);
        let err = FramingError::UnexpectedByte {
            byte: b'x',
            offset: 3,
        };
        assert_eq!(f.next_frame(), Err(err.clone()));
        f.extend(b"{}");
        assert_eq!(f.next_frame(), Err(err));
    }

    fn frames_until_err(f: &mut Framer) -> usize {
        let mut n = 0;
        while let Ok(Some(_)) = f.next_frame() {
            n += 1;
        }
        n
    }

    #[test]
    fn over_long_message_is_refused() {
        let mut f = Framer::with_max_message_len(8);
        f.extend(b"{\"abc\":");
        assert_eq!(f.next_frame(), Ok(None));
        f.extend(b"\"defgh");
        assert_eq!(
            f.next_frame(),
            Err(FramingError::MessageTooLong { limit: 8 })
        );
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut f = Framer::new();
        f.extend(&vec![b'['; MAX_DEPTH as usize + 1]);
        assert_eq!(f.next_frame(), Err(FramingError::TooDeep));
    }

    #[test]
    fn scan_state_survives_feeds_so_each_byte_is_scanned_once() {
        let mut f = Framer::new();
        f.extend(b"{\"k\":\"");
        assert_eq!(f.next_frame(), Ok(None));
        assert_eq!(f.scanned, 6);
        assert!(f.in_string);
        f.extend(b"v\"");
        assert_eq!(f.next_frame(), Ok(None));
        assert_eq!(f.scanned, 8);
        assert!(!f.in_string);
        f.extend(b"}");
        assert_eq!(frames(&mut f), ["{\"k\":\"v\"}"]);
    }
}
