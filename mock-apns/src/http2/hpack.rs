//! Strict, allocation-light HPACK (RFC 7541) header block decoder for the HTTP/2 server,
//! with a table-driven Huffman decoder, plus a minimal response encoder that never
//! indexes anything (no dynamic table, no Huffman on the encode side).

use std::collections::VecDeque;
use std::fmt;

/// A decoded header list: fields stored in one buffer, no allocation per field.
#[derive(Default, Debug)]
pub struct HeaderList {
    /// Names and values back to back: field `i` is `buf[start..start + name_len + value_len]`.
    buf: Vec<u8>,
    /// `(start, name_len, value_len)` per stored field, in block order.
    fields: Vec<(u32, u32, u32)>,
    size: usize,
    oversized: bool,
}

impl HeaderList {
    /// Empties the list, keeping its capacity.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.fields.clear();
        self.size = 0;
        self.oversized = false;
    }

    /// The stored `(name, value)` pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.fields.iter().filter_map(move |&(start, nl, vl)| {
            let rest = self.buf.get(usize::try_from(start).ok()?..)?;
            let (name, rest) = rest.split_at_checked(usize::try_from(nl).ok()?)?;
            let value = rest.get(..usize::try_from(vl).ok()?)?;
            Some((name, value))
        })
    }

    /// Number of stored fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True if no field is stored.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// RFC 9113 header list size so far: sum of name.len() + value.len() + 32 per field.
    ///
    /// Counts every field decoded from the block, including those not stored because the
    /// list was oversized (saturating at `usize::MAX`).
    pub fn size(&self) -> usize {
        self.size
    }

    /// True once a field would have pushed size() over the limit given to decode(); fields
    /// after that are not stored.
    pub fn oversized(&self) -> bool {
        self.oversized
    }

    /// Accounts for a field of the given lengths; returns true if it must be stored.
    #[inline]
    fn admit(&mut self, name_len: usize, value_len: usize, limit: usize) -> bool {
        let field = name_len.saturating_add(value_len).saturating_add(32);
        self.size = self.size.saturating_add(field);
        if self.oversized || self.size > limit {
            self.oversized = true;
            return false;
        }
        true
    }

    /// Records the field whose name is `buf[start..name_end]` and value `buf[name_end..]`,
    /// or drops its bytes if it does not fit.
    #[inline]
    fn commit(&mut self, start: usize, name_end: usize, limit: usize) {
        let end = self.buf.len();
        let nl = name_end.saturating_sub(start);
        let vl = end.saturating_sub(name_end);
        if self.admit(nl, vl, limit) {
            if let (Ok(s), Ok(n), Ok(v)) =
                (u32::try_from(start), u32::try_from(nl), u32::try_from(vl))
            {
                self.fields.push((s, n, v));
                return;
            }
            self.oversized = true;
        }
        self.buf.truncate(start);
    }

    /// Records a field copied from the static or dynamic table.
    #[inline]
    fn push_copy(&mut self, name: &[u8], value: &[u8], limit: usize) {
        if !self.admit(name.len(), value.len(), limit) {
            return;
        }
        let start = self.buf.len();
        if let (Ok(s), Ok(n), Ok(v)) = (
            u32::try_from(start),
            u32::try_from(name.len()),
            u32::try_from(value.len()),
        ) {
            self.buf.extend_from_slice(name);
            self.buf.extend_from_slice(value);
            self.fields.push((s, n, v));
        } else {
            self.oversized = true;
        }
    }
}

/// Why a header block could not be decoded. Every variant is a connection error of type
/// COMPRESSION_ERROR for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The block ended inside a representation.
    Truncated,
    /// An integer over 2^32 - 1.
    IntegerOverflow,
    /// Index 0, or past the static + dynamic table.
    BadIndex(u32),
    /// A Huffman string with the EOS symbol, padding over 7 bits, or padding not all ones.
    BadHuffman,
    /// A dynamic table size update over the limit the server advertised.
    TableSizeTooLarge(u32),
    /// A dynamic table size update after the first field of a block (RFC 7541 §4.2).
    LateTableSizeUpdate,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => {
                f.write_str("HPACK: header block ends inside a representation")
            }
            DecodeError::IntegerOverflow => f.write_str("HPACK: integer over 2^32 - 1"),
            DecodeError::BadIndex(i) => write!(f, "HPACK: invalid table index {i}"),
            DecodeError::BadHuffman => f.write_str("HPACK: invalid Huffman-coded string"),
            DecodeError::TableSizeTooLarge(s) => {
                write!(
                    f,
                    "HPACK: dynamic table size update to {s} exceeds the advertised limit"
                )
            }
            DecodeError::LateTableSizeUpdate => {
                f.write_str("HPACK: dynamic table size update after the first header field")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// RFC 7541 Appendix A.
static STATIC_TABLE: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// Entry overhead added to name + value length (RFC 7541 §4.1).
const ENTRY_OVERHEAD: usize = 32;

/// The dynamic table: entry bytes appended to one buffer, evicted from its front.
#[derive(Debug, Default)]
struct DynamicTable {
    /// Entry bytes in insertion order; bytes before the oldest live entry are dead until
    /// the next compaction.
    data: Vec<u8>,
    /// `(offset in data, name len, value len)`, newest first.
    entries: VecDeque<(usize, usize, usize)>,
    /// Sum of entry sizes (name + value + 32).
    size: usize,
    /// Current maximum size (last size update, or the advertised limit).
    max_size: usize,
}

impl DynamicTable {
    /// Entry `i` (0 = newest).
    #[inline]
    fn get(&self, i: usize) -> Option<(&[u8], &[u8])> {
        let &(off, nl, vl) = self.entries.get(i)?;
        let (name, rest) = self.data.get(off..)?.split_at_checked(nl)?;
        Some((name, rest.get(..vl)?))
    }

    fn evict_to(&mut self, limit: usize) {
        while self.size > limit {
            match self.entries.pop_back() {
                Some((_, nl, vl)) => {
                    let entry = nl.saturating_add(vl).saturating_add(ENTRY_OVERHEAD);
                    self.size = self.size.saturating_sub(entry);
                }
                None => self.size = 0,
            }
        }
        if self.entries.is_empty() {
            self.data.clear();
        }
    }

    fn set_max_size(&mut self, max_size: usize) {
        self.max_size = max_size;
        self.evict_to(max_size);
    }

    /// Adds an entry, evicting as needed; an entry larger than the table empties it (§4.4).
    fn insert(&mut self, name: &[u8], value: &[u8]) {
        let entry = name
            .len()
            .saturating_add(value.len())
            .saturating_add(ENTRY_OVERHEAD);
        if entry > self.max_size {
            self.entries.clear();
            self.data.clear();
            self.size = 0;
            return;
        }
        self.evict_to(self.max_size - entry);
        // Compact once the dead prefix is at least as large as the live bytes: each byte
        // is moved at most once per byte appended, and `data` stays under twice the table.
        if let Some(&(head, _, _)) = self.entries.back() {
            if head > 0 && head >= self.data.len().saturating_sub(head) {
                self.data.drain(..head);
                for e in self.entries.iter_mut() {
                    e.0 = e.0.saturating_sub(head);
                }
            }
        }
        let off = self.data.len();
        self.data.extend_from_slice(name);
        self.data.extend_from_slice(value);
        self.entries.push_front((off, name.len(), value.len()));
        self.size = self.size.saturating_add(entry);
    }
}

/// HPACK decoder state for one connection (the peer's request header compression context).
#[derive(Debug)]
pub struct Decoder {
    /// SETTINGS_HEADER_TABLE_SIZE advertised by the server: the ceiling for size updates.
    max_table_size: usize,
    table: DynamicTable,
}

/// Reads an integer with an `N`-bit prefix (§5.1) whose first octet `first` was already
/// consumed; `pos` points after it.
#[inline]
fn read_int<const N: u32>(block: &[u8], pos: &mut usize, first: u8) -> Result<u32, DecodeError> {
    let mask: u8 = ((1u16 << N) - 1) as u8;
    let prefix = first & mask;
    if prefix < mask {
        return Ok(u32::from(prefix));
    }
    let mut value = u64::from(mask);
    let mut shift = 0u32;
    loop {
        let b = *block.get(*pos).ok_or(DecodeError::Truncated)?;
        *pos += 1;
        // shift <= 28 here, so this stays far below u64::MAX.
        value += u64::from(b & 0x7f) << shift;
        if value > u64::from(u32::MAX) {
            return Err(DecodeError::IntegerOverflow);
        }
        if b & 0x80 == 0 {
            return u32::try_from(value).map_err(|_| DecodeError::IntegerOverflow);
        }
        shift += 7;
        if shift > 28 {
            // A sixth continuation octet can only overflow or be redundant padding.
            return Err(DecodeError::IntegerOverflow);
        }
    }
}

/// Reads a string literal (§5.2) at `pos`, appending its decoded bytes to `dst`.
#[inline]
fn read_string(block: &[u8], pos: &mut usize, dst: &mut Vec<u8>) -> Result<(), DecodeError> {
    let first = *block.get(*pos).ok_or(DecodeError::Truncated)?;
    *pos += 1;
    let len =
        usize::try_from(read_int::<7>(block, pos, first)?).map_err(|_| DecodeError::Truncated)?;
    let end = pos.checked_add(len).ok_or(DecodeError::Truncated)?;
    let s = block.get(*pos..end).ok_or(DecodeError::Truncated)?;
    *pos = end;
    if first & 0x80 != 0 {
        huffman_decode(s, dst)
    } else {
        dst.extend_from_slice(s);
        Ok(())
    }
}

impl Decoder {
    /// `max_table_size`: the SETTINGS_HEADER_TABLE_SIZE the server advertised (4096 by default).
    pub fn new(max_table_size: usize) -> Self {
        Decoder {
            max_table_size,
            table: DynamicTable {
                data: Vec::with_capacity(max_table_size.min(1 << 16)),
                entries: VecDeque::new(),
                size: 0,
                max_size: max_table_size,
            },
        }
    }

    /// Looks up a static (1..=61) or dynamic (62..) table index.
    #[inline]
    fn lookup(&self, index: u32) -> Result<(&[u8], &[u8]), DecodeError> {
        let i = usize::try_from(index).map_err(|_| DecodeError::BadIndex(index))?;
        let found = match i.checked_sub(1) {
            None => None,
            Some(s) if s < STATIC_TABLE.len() => STATIC_TABLE.get(s).copied(),
            Some(s) => self.table.get(s - STATIC_TABLE.len()),
        };
        found.ok_or(DecodeError::BadIndex(index))
    }

    /// Appends the name of a literal representation (indexed or literal, §6.2) to `dst`.
    #[inline]
    fn read_name<const N: u32>(
        &self,
        block: &[u8],
        pos: &mut usize,
        first: u8,
        dst: &mut Vec<u8>,
    ) -> Result<(), DecodeError> {
        let index = read_int::<N>(block, pos, first)?;
        if index == 0 {
            read_string(block, pos, dst)
        } else {
            dst.extend_from_slice(self.lookup(index)?.0);
            Ok(())
        }
    }

    /// Decodes one complete header block (HEADERS + CONTINUATION payloads joined) into `out`
    /// (which it clears first). Fields beyond `max_list_size` (RFC 9113 list size) are not
    /// stored and set `out.oversized()`, but decoding continues to the end so the dynamic table
    /// stays in sync with the peer's encoder. Any DecodeError is a connection error
    /// (COMPRESSION_ERROR) for the caller.
    pub fn decode(
        &mut self,
        block: &[u8],
        out: &mut HeaderList,
        max_list_size: usize,
    ) -> Result<(), DecodeError> {
        out.clear();
        let mut pos = 0usize;
        let mut seen_field = false;
        while let Some(&b) = block.get(pos) {
            pos += 1;
            if b & 0x80 != 0 {
                // §6.1 indexed header field.
                let index = read_int::<7>(block, &mut pos, b)?;
                let (name, value) = self.lookup(index)?;
                out.push_copy(name, value, max_list_size);
            } else if b & 0x40 != 0 {
                // §6.2.1 literal with incremental indexing.
                let start = out.buf.len();
                self.read_name::<6>(block, &mut pos, b, &mut out.buf)?;
                let name_end = out.buf.len();
                read_string(block, &mut pos, &mut out.buf)?;
                if let Some((name, value)) = out
                    .buf
                    .get(start..)
                    .and_then(|f| f.split_at_checked(name_end - start))
                {
                    self.table.insert(name, value);
                }
                out.commit(start, name_end, max_list_size);
            } else if b & 0x20 != 0 {
                // §6.3 dynamic table size update.
                if seen_field {
                    return Err(DecodeError::LateTableSizeUpdate);
                }
                let size = read_int::<5>(block, &mut pos, b)?;
                match usize::try_from(size) {
                    Ok(s) if s <= self.max_table_size => self.table.set_max_size(s),
                    _ => return Err(DecodeError::TableSizeTooLarge(size)),
                }
                continue;
            } else {
                // §6.2.2 without indexing (0000) and §6.2.3 never indexed (0001).
                let start = out.buf.len();
                self.read_name::<4>(block, &mut pos, b, &mut out.buf)?;
                let name_end = out.buf.len();
                read_string(block, &mut pos, &mut out.buf)?;
                out.commit(start, name_end, max_list_size);
            }
            seen_field = true;
        }
        Ok(())
    }
}

/// Appends an integer with an `prefix_bits`-bit prefix (§5.1); `flags` holds the bits above it.
fn encode_int(value: usize, prefix_bits: u32, flags: u8, out: &mut Vec<u8>) {
    let max = (1usize << prefix_bits) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    let mut rest = value - max;
    while rest >= 0x80 {
        out.push(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// Appends a plain (non-Huffman) string literal (§5.2).
fn encode_str(s: &[u8], out: &mut Vec<u8>) {
    encode_int(s.len(), 7, 0, out);
    out.extend_from_slice(s);
}

/// Response encoding (no dynamic table, no Huffman: the server never indexes anything).
/// `:status` — use the static-table indexed representation for 200, 204, 206, 304, 400, 404, 500,
/// otherwise "literal without indexing, indexed name" (static index 8) with the 3 digits.
/// (A value outside 100..=999 is written as its decimal digits; it is not a valid status.)
pub fn encode_status(status: u16, out: &mut Vec<u8>) {
    let index = match status {
        200 => 8,
        204 => 9,
        206 => 10,
        304 => 11,
        400 => 12,
        404 => 13,
        500 => 14,
        _ => 0,
    };
    if index != 0 {
        out.push(0x80 | index);
        return;
    }
    let mut digits = [0u8; 5];
    let mut n = status;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    out.push(0x08);
    encode_str(digits.get(i..).unwrap_or_default(), out);
}

/// "Literal header field never indexed — new name" (0x10 prefix), plain (non-Huffman) strings.
pub fn encode_never_indexed(name: &[u8], value: &[u8], out: &mut Vec<u8>) {
    out.push(0x10);
    encode_str(name, out);
    encode_str(value, out);
}

/// "Literal header field without indexing — new name" (0x00 prefix), plain strings.
pub fn encode_literal(name: &[u8], value: &[u8], out: &mut Vec<u8>) {
    out.push(0x00);
    encode_str(name, out);
    encode_str(value, out);
}

// ---------------------------------------------------------------------------------------
// Huffman decoding (§5.2, Appendix B).
//
// Fast path: a 4096-entry table indexed by the next 12 bits of input yields one or two
// whole symbols (codes of at most 12 bits, which cover every printable ASCII byte except
// a few punctuation marks). Longer codes (13-30 bits) fall back to a canonical-range
// search per code length. The last < 30 bits are decoded one symbol at a time with the
// missing bits filled with ones, so the padding rules can be checked exactly.

/// (code, bit length) for symbols 0..=255 and EOS (256), RFC 7541 Appendix B.
#[rustfmt::skip]
const HUFFMAN_CODES: [(u32, u8); 257] = [
    (0x1ff8, 13), (0x7fffd8, 23), (0xfffffe2, 28), (0xfffffe3, 28), (0xfffffe4, 28),
    (0xfffffe5, 28), (0xfffffe6, 28), (0xfffffe7, 28), (0xfffffe8, 28), (0xffffea, 24),
    (0x3ffffffc, 30), (0xfffffe9, 28), (0xfffffea, 28), (0x3ffffffd, 30), (0xfffffeb, 28),
    (0xfffffec, 28), (0xfffffed, 28), (0xfffffee, 28), (0xfffffef, 28), (0xffffff0, 28),
    (0xffffff1, 28), (0xffffff2, 28), (0x3ffffffe, 30), (0xffffff3, 28), (0xffffff4, 28),
    (0xffffff5, 28), (0xffffff6, 28), (0xffffff7, 28), (0xffffff8, 28), (0xffffff9, 28),
    (0xffffffa, 28), (0xffffffb, 28), (0x14, 6), (0x3f8, 10), (0x3f9, 10),
    (0xffa, 12), (0x1ff9, 13), (0x15, 6), (0xf8, 8), (0x7fa, 11),
    (0x3fa, 10), (0x3fb, 10), (0xf9, 8), (0x7fb, 11), (0xfa, 8),
    (0x16, 6), (0x17, 6), (0x18, 6), (0x0, 5), (0x1, 5),
    (0x2, 5), (0x19, 6), (0x1a, 6), (0x1b, 6), (0x1c, 6),
    (0x1d, 6), (0x1e, 6), (0x1f, 6), (0x5c, 7), (0xfb, 8),
    (0x7ffc, 15), (0x20, 6), (0xffb, 12), (0x3fc, 10), (0x1ffa, 13),
    (0x21, 6), (0x5d, 7), (0x5e, 7), (0x5f, 7), (0x60, 7),
    (0x61, 7), (0x62, 7), (0x63, 7), (0x64, 7), (0x65, 7),
    (0x66, 7), (0x67, 7), (0x68, 7), (0x69, 7), (0x6a, 7),
    (0x6b, 7), (0x6c, 7), (0x6d, 7), (0x6e, 7), (0x6f, 7),
    (0x70, 7), (0x71, 7), (0x72, 7), (0xfc, 8), (0x73, 7),
    (0xfd, 8), (0x1ffb, 13), (0x7fff0, 19), (0x1ffc, 13), (0x3ffc, 14),
    (0x22, 6), (0x7ffd, 15), (0x3, 5), (0x23, 6), (0x4, 5),
    (0x24, 6), (0x5, 5), (0x25, 6), (0x26, 6), (0x27, 6),
    (0x6, 5), (0x74, 7), (0x75, 7), (0x28, 6), (0x29, 6),
    (0x2a, 6), (0x7, 5), (0x2b, 6), (0x76, 7), (0x2c, 6),
    (0x8, 5), (0x9, 5), (0x2d, 6), (0x77, 7), (0x78, 7),
    (0x79, 7), (0x7a, 7), (0x7b, 7), (0x7ffe, 15), (0x7fc, 11),
    (0x3ffd, 14), (0x1ffd, 13), (0xffffffc, 28), (0xfffe6, 20), (0x3fffd2, 22),
    (0xfffe7, 20), (0xfffe8, 20), (0x3fffd3, 22), (0x3fffd4, 22), (0x3fffd5, 22),
    (0x7fffd9, 23), (0x3fffd6, 22), (0x7fffda, 23), (0x7fffdb, 23), (0x7fffdc, 23),
    (0x7fffdd, 23), (0x7fffde, 23), (0xffffeb, 24), (0x7fffdf, 23), (0xffffec, 24),
    (0xffffed, 24), (0x3fffd7, 22), (0x7fffe0, 23), (0xffffee, 24), (0x7fffe1, 23),
    (0x7fffe2, 23), (0x7fffe3, 23), (0x7fffe4, 23), (0x1fffdc, 21), (0x3fffd8, 22),
    (0x7fffe5, 23), (0x3fffd9, 22), (0x7fffe6, 23), (0x7fffe7, 23), (0xffffef, 24),
    (0x3fffda, 22), (0x1fffdd, 21), (0xfffe9, 20), (0x3fffdb, 22), (0x3fffdc, 22),
    (0x7fffe8, 23), (0x7fffe9, 23), (0x1fffde, 21), (0x7fffea, 23), (0x3fffdd, 22),
    (0x3fffde, 22), (0xfffff0, 24), (0x1fffdf, 21), (0x3fffdf, 22), (0x7fffeb, 23),
    (0x7fffec, 23), (0x1fffe0, 21), (0x1fffe1, 21), (0x3fffe0, 22), (0x1fffe2, 21),
    (0x7fffed, 23), (0x3fffe1, 22), (0x7fffee, 23), (0x7fffef, 23), (0xfffea, 20),
    (0x3fffe2, 22), (0x3fffe3, 22), (0x3fffe4, 22), (0x7ffff0, 23), (0x3fffe5, 22),
    (0x3fffe6, 22), (0x7ffff1, 23), (0x3ffffe0, 26), (0x3ffffe1, 26), (0xfffeb, 20),
    (0x7fff1, 19), (0x3fffe7, 22), (0x7ffff2, 23), (0x3fffe8, 22), (0x1ffffec, 25),
    (0x3ffffe2, 26), (0x3ffffe3, 26), (0x3ffffe4, 26), (0x7ffffde, 27), (0x7ffffdf, 27),
    (0x3ffffe5, 26), (0xfffff1, 24), (0x1ffffed, 25), (0x7fff2, 19), (0x1fffe3, 21),
    (0x3ffffe6, 26), (0x7ffffe0, 27), (0x7ffffe1, 27), (0x3ffffe7, 26), (0x7ffffe2, 27),
    (0xfffff2, 24), (0x1fffe4, 21), (0x1fffe5, 21), (0x3ffffe8, 26), (0x3ffffe9, 26),
    (0xffffffd, 28), (0x7ffffe3, 27), (0x7ffffe4, 27), (0x7ffffe5, 27), (0xfffec, 20),
    (0xfffff3, 24), (0xfffed, 20), (0x1fffe6, 21), (0x3fffe9, 22), (0x1fffe7, 21),
    (0x1fffe8, 21), (0x7ffff3, 23), (0x3fffea, 22), (0x3fffeb, 22), (0x1ffffee, 25),
    (0x1ffffef, 25), (0xfffff4, 24), (0xfffff5, 24), (0x3ffffea, 26), (0x7ffff4, 23),
    (0x3ffffeb, 26), (0x7ffffe6, 27), (0x3ffffec, 26), (0x3ffffed, 26), (0x7ffffe7, 27),
    (0x7ffffe8, 27), (0x7ffffe9, 27), (0x7ffffea, 27), (0x7ffffeb, 27), (0xffffffe, 28),
    (0x7ffffec, 27), (0x7ffffed, 27), (0x7ffffee, 27), (0x7ffffef, 27), (0x7fffff0, 27),
    (0x3ffffee, 26), (0x3fffffff, 30),
];

/// Bits looked at by one fast-table lookup.
const LUT_BITS: u32 = 12;
const LUT_SIZE: usize = 1 << LUT_BITS;

/// For each `LUT_BITS`-bit window: 0 if its first code is longer than `LUT_BITS`, else
/// `total_len | count << 6 | sym1 << 8 | sym2 << 16 | len1 << 24`, where a second symbol
/// (count 2) is included when it also fits in the window.
static HUFFMAN_LUT: [u32; LUT_SIZE] = build_pair_lut(&build_single_lut());

/// `len << 8 | sym` for the first code in each window, 0 if it is longer than `LUT_BITS`.
const fn build_single_lut() -> [u16; LUT_SIZE] {
    let mut t = [0u16; LUT_SIZE];
    let mut s = 0;
    while s < 256 {
        let (code, len) = HUFFMAN_CODES[s];
        if len as u32 <= LUT_BITS {
            let shift = LUT_BITS - len as u32;
            let base = (code as usize) << shift;
            let mut i = 0;
            while i < (1 << shift) {
                t[base + i] = ((len as u16) << 8) | s as u16;
                i += 1;
            }
        }
        s += 1;
    }
    t
}

const fn build_pair_lut(single: &[u16; LUT_SIZE]) -> [u32; LUT_SIZE] {
    let mut t = [0u32; LUT_SIZE];
    let mut v = 0;
    while v < LUT_SIZE {
        let e1 = single[v] as u32;
        let len1 = e1 >> 8;
        if len1 != 0 {
            let sym1 = e1 & 0xff;
            // The window's remaining bits, moved to the top with zeros below.
            let e2 = single[(v << len1) & (LUT_SIZE - 1)] as u32;
            let len2 = e2 >> 8;
            t[v] = if len2 != 0 && len1 + len2 <= LUT_BITS {
                (len1 + len2) | 2 << 6 | sym1 << 8 | (e2 & 0xff) << 16 | len1 << 24
            } else {
                len1 | 1 << 6 | sym1 << 8 | len1 << 24
            };
        }
        v += 1;
    }
    t
}

/// Codes of each length form one consecutive range (the code is canonical):
/// `first[len]`, `count[len]`, and `offset[len]` into `symbols` (sorted by code).
struct Canonical {
    first: [u32; 31],
    count: [u32; 31],
    offset: [u32; 31],
    symbols: [u16; 257],
}

static CANONICAL: Canonical = build_canonical();

const fn build_canonical() -> Canonical {
    let mut c = Canonical {
        first: [u32::MAX; 31],
        count: [0; 31],
        offset: [0; 31],
        symbols: [0; 257],
    };
    let mut s = 0;
    while s < 257 {
        let (code, len) = HUFFMAN_CODES[s];
        let l = len as usize;
        c.count[l] += 1;
        if code < c.first[l] {
            c.first[l] = code;
        }
        s += 1;
    }
    let mut l = 1;
    while l < 31 {
        c.offset[l] = c.offset[l - 1] + c.count[l - 1];
        l += 1;
    }
    s = 0;
    while s < 257 {
        let (code, len) = HUFFMAN_CODES[s];
        let l = len as usize;
        c.symbols[(c.offset[l] + code - c.first[l]) as usize] = s as u16;
        s += 1;
    }
    c
}

/// Decodes the code longer than `LUT_BITS` at the top of `bits`: (symbol, length).
#[cold]
#[inline(never)]
fn decode_long(bits: u64) -> Option<(u16, u32)> {
    let c = &CANONICAL;
    for len in (LUT_BITS + 1)..=30 {
        let code = (bits >> (64 - len)) as u32;
        let l = len as usize;
        let (first, count, offset) = (*c.first.get(l)?, *c.count.get(l)?, *c.offset.get(l)?);
        if let Some(k) = code.checked_sub(first) {
            if k < count {
                let sym = *c.symbols.get(usize::try_from(offset + k).ok()?)?;
                return Some((sym, len));
            }
        }
    }
    None
}

/// Appends the Huffman decoding of `src` to `dst`.
fn huffman_decode(src: &[u8], dst: &mut Vec<u8>) -> Result<(), DecodeError> {
    let start = dst.len();
    // Every code is at least 5 bits; +2 leaves room for the two-byte stores.
    let room = src
        .len()
        .checked_mul(8)
        .map(|bits| bits / 5 + 2)
        .and_then(|n| n.checked_add(start))
        .ok_or(DecodeError::BadHuffman)?;
    dst.resize(room, 0);
    let result = match dst.get_mut(start..) {
        Some(out) => huffman_decode_into(src, out),
        None => Err(DecodeError::BadHuffman),
    };
    match result {
        Ok(n) => {
            dst.truncate(start.saturating_add(n));
            Ok(())
        }
        Err(e) => {
            dst.truncate(start);
            Err(e)
        }
    }
}

/// Decodes `src` into `out` (large enough for `8 * src.len() / 5 + 2` bytes); returns the
/// decoded length.
#[inline]
fn huffman_decode_into(src: &[u8], out: &mut [u8]) -> Result<usize, DecodeError> {
    // `acc` holds `nbits` (<= 63) unread bits at its top. Bits below them are either zero or
    // the true following input bits, so refills can OR the same bits in again.
    let mut acc: u64 = 0;
    let mut nbits: u32 = 0;
    let mut pos = 0usize;
    let mut o = 0usize;
    loop {
        if let Some(chunk) = src.get(pos..).and_then(|s| s.first_chunk::<8>()) {
            acc |= u64::from_be_bytes(*chunk) >> nbits;
            let n = (63 - nbits) >> 3;
            pos += n as usize;
            nbits += n << 3;
        } else {
            while nbits <= 55 {
                let Some(&b) = src.get(pos) else { break };
                acc |= u64::from(b) << (56 - nbits);
                nbits += 8;
                pos += 1;
            }
        }
        if nbits < 30 {
            // Input exhausted: fewer bits left than the longest code.
            break;
        }
        while nbits >= 30 {
            let e = HUFFMAN_LUT[(acc >> (64 - LUT_BITS)) as usize];
            if e != 0 {
                let d = out
                    .get_mut(o..)
                    .and_then(|s| s.first_chunk_mut::<2>())
                    .ok_or(DecodeError::BadHuffman)?;
                // Total length in the low bits: the shift needs no extraction.
                let used = e & 0x3f;
                *d = [(e >> 8) as u8, (e >> 16) as u8];
                o += ((e >> 6) & 3) as usize;
                acc <<= used;
                nbits -= used;
            } else {
                let (sym, len) = decode_long(acc).ok_or(DecodeError::BadHuffman)?;
                let byte = u8::try_from(sym).map_err(|_| DecodeError::BadHuffman)?; // EOS
                *out.get_mut(o).ok_or(DecodeError::BadHuffman)? = byte;
                o += 1;
                acc <<= len;
                nbits -= len;
            }
        }
    }
    // Tail: the last < 30 bits, one symbol at a time, missing bits taken as ones.
    while nbits > 0 {
        if nbits <= 7 && acc >> (64 - nbits) == (1u64 << nbits) - 1 {
            // Padding: a strict prefix of EOS, at most 7 bits.
            return Ok(o);
        }
        let padded = acc | (u64::MAX >> nbits);
        let e = HUFFMAN_LUT[(padded >> (64 - LUT_BITS)) as usize];
        let (sym, len) = if e != 0 {
            (((e >> 8) & 0xff) as u16, e >> 24)
        } else {
            decode_long(padded).ok_or(DecodeError::BadHuffman)?
        };
        if len > nbits {
            // The remaining bits are not a whole code, and not valid padding either.
            return Err(DecodeError::BadHuffman);
        }
        let byte = u8::try_from(sym).map_err(|_| DecodeError::BadHuffman)?; // EOS
        *out.get_mut(o).ok_or(DecodeError::BadHuffman)? = byte;
        o += 1;
        acc <<= len;
        nbits -= len;
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s
            .bytes()
            .filter(u8::is_ascii_hexdigit)
            .map(|c| match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                _ => c - b'A' + 10,
            })
            .collect();
        digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
    }

    fn fields(list: &HeaderList) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect()
    }

    fn table(d: &Decoder) -> Vec<(String, String)> {
        (0..d.table.entries.len())
            .map(|i| {
                let (n, v) = d.table.get(i).unwrap();
                (
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    /// Decodes `block`, checking the fields, then the dynamic table (newest first) and size.
    fn check(
        d: &mut Decoder,
        block: &str,
        want: &[(&str, &str)],
        tbl: &[(&str, &str)],
        size: usize,
    ) {
        let mut out = HeaderList::default();
        d.decode(&hex(block), &mut out, usize::MAX).unwrap();
        assert_eq!(fields(&out), pairs(want));
        assert_eq!(table(d), pairs(tbl));
        assert_eq!(d.table.size, size);
        let list_size: usize = want.iter().map(|(n, v)| n.len() + v.len() + 32).sum();
        assert_eq!(out.size(), list_size);
        assert!(!out.oversized());
    }

    fn decode_err(d: &mut Decoder, block: &[u8]) -> DecodeError {
        let mut out = HeaderList::default();
        d.decode(block, &mut out, usize::MAX).unwrap_err()
    }

    /// Test-only Huffman encoder (Appendix B codes, padded with ones).
    fn huff_encode(src: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut acc: u64 = 0;
        let mut bits = 0u32;
        for &b in src {
            let (code, len) = HUFFMAN_CODES[usize::from(b)];
            acc = acc << len | u64::from(code);
            bits += u32::from(len);
            while bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        }
        if bits > 0 {
            out.push((acc << (8 - bits)) as u8 | (0xff >> bits));
        }
        out
    }

    fn huff_decode(src: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let mut v = b"prefix".to_vec();
        huffman_decode(src, &mut v)?;
        assert!(v.starts_with(b"prefix"));
        Ok(v.split_off(6))
    }

    #[test]
    fn c2_literal_representations() {
        let mut d = Decoder::new(4096);
        check(
            &mut d,
            "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
            &[("custom-key", "custom-header")],
            &[("custom-key", "custom-header")],
            55,
        );
        let mut d = Decoder::new(4096);
        check(
            &mut d,
            "040c 2f73 616d 706c 652f 7061 7468",
            &[(":path", "/sample/path")],
            &[],
            0,
        );
        check(
            &mut d,
            "1008 7061 7373 776f 7264 0673 6563 7265 74",
            &[("password", "secret")],
            &[],
            0,
        );
        check(&mut d, "82", &[(":method", "GET")], &[], 0);
    }

    fn c3_c4(blocks: [&str; 3]) {
        let mut d = Decoder::new(4096);
        check(
            &mut d,
            blocks[0],
            &[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
            ],
            &[(":authority", "www.example.com")],
            57,
        );
        check(
            &mut d,
            blocks[1],
            &[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
                ("cache-control", "no-cache"),
            ],
            &[
                ("cache-control", "no-cache"),
                (":authority", "www.example.com"),
            ],
            110,
        );
        check(
            &mut d,
            blocks[2],
            &[
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/index.html"),
                (":authority", "www.example.com"),
                ("custom-key", "custom-value"),
            ],
            &[
                ("custom-key", "custom-value"),
                ("cache-control", "no-cache"),
                (":authority", "www.example.com"),
            ],
            164,
        );
    }

    #[test]
    fn c3_requests_without_huffman() {
        c3_c4([
            "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
            "8286 84be 5808 6e6f 2d63 6163 6865",
            "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
        ]);
    }

    #[test]
    fn c4_requests_with_huffman() {
        c3_c4([
            "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
            "8286 84be 5886 a8eb 1064 9cbf",
            "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
        ]);
    }

    fn c5_c6(blocks: [&str; 3]) {
        let mut d = Decoder::new(256);
        let date1 = ("date", "Mon, 21 Oct 2013 20:13:21 GMT");
        let loc = ("location", "https://www.example.com");
        let private = ("cache-control", "private");
        check(
            &mut d,
            blocks[0],
            &[(":status", "302"), private, date1, loc],
            &[loc, date1, private, (":status", "302")],
            222,
        );
        check(
            &mut d,
            blocks[1],
            &[(":status", "307"), private, date1, loc],
            &[(":status", "307"), loc, date1, private],
            222,
        );
        let date2 = ("date", "Mon, 21 Oct 2013 20:13:22 GMT");
        let cookie = (
            "set-cookie",
            "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
        );
        check(
            &mut d,
            blocks[2],
            &[
                (":status", "200"),
                private,
                date2,
                loc,
                ("content-encoding", "gzip"),
                cookie,
            ],
            &[cookie, ("content-encoding", "gzip"), date2],
            215,
        );
    }

    #[test]
    fn c5_responses_without_huffman() {
        c5_c6([
            "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
             2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
             6c65 2e63 6f6d",
            "4803 3330 37c1 c0bf",
            "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
             54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
             5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
             3d31",
        ]);
    }

    #[test]
    fn c6_responses_with_huffman() {
        c5_c6([
            "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
             2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
            "4883 640e ffc1 c0bf",
            "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
             77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
             9587 3160 65c0 03ed 4ee5 b106 3d50 07",
        ]);
    }

    #[test]
    fn error_truncated() {
        let mut d = Decoder::new(4096);
        assert_eq!(decode_err(&mut d, &[0x40]), DecodeError::Truncated);
        assert_eq!(
            decode_err(&mut d, &[0x40, 0x0a, b'c']),
            DecodeError::Truncated
        );
        assert_eq!(decode_err(&mut d, &[0xff]), DecodeError::Truncated);
        assert_eq!(decode_err(&mut d, &[0x04]), DecodeError::Truncated);
        assert_eq!(
            decode_err(&mut d, &[0x04, 0x7f, 0x80]),
            DecodeError::Truncated
        );
    }

    #[test]
    fn error_integer_overflow() {
        let mut d = Decoder::new(4096);
        // 127 + (2^28 - 1) + 15 * 2^28 = 2^32 + 126.
        assert_eq!(
            decode_err(&mut d, &[0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]),
            DecodeError::IntegerOverflow
        );
        // Six continuation octets.
        assert_eq!(
            decode_err(&mut d, &[0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]),
            DecodeError::IntegerOverflow
        );
        // Largest string length, 2^32 - 1 = 127 + 0xffffff80: decodes, then truncated.
        assert_eq!(
            decode_err(&mut d, &[0x00, 0x7f, 0x80, 0xff, 0xff, 0xff, 0x0f]),
            DecodeError::Truncated
        );
        let mut pos = 1;
        assert_eq!(
            read_int::<7>(&[0x7f, 0x80, 0xff, 0xff, 0xff, 0x0f], &mut pos, 0x7f),
            Ok(u32::MAX)
        );
    }

    #[test]
    fn error_bad_index() {
        let mut d = Decoder::new(4096);
        assert_eq!(decode_err(&mut d, &[0x80]), DecodeError::BadIndex(0));
        assert_eq!(decode_err(&mut d, &[0xbe]), DecodeError::BadIndex(62));
        assert_eq!(decode_err(&mut d, &[0x7e, 0x00]), DecodeError::BadIndex(62));
        assert_eq!(
            decode_err(&mut d, &[0x0f, 0x2f, 0x00]),
            DecodeError::BadIndex(62)
        );
        let mut out = HeaderList::default();
        d.decode(&[0xbd, 0x0f, 0x2e, 0x00], &mut out, usize::MAX)
            .unwrap();
        assert_eq!(
            fields(&out),
            pairs(&[("www-authenticate", ""), ("www-authenticate", "")])
        );
    }

    #[test]
    fn error_bad_huffman() {
        let mut d = Decoder::new(4096);
        // 'a' (00011) followed by zero padding.
        assert_eq!(
            decode_err(&mut d, &[0x04, 0x81, 0x18]),
            DecodeError::BadHuffman
        );
        let mut out = HeaderList::default();
        d.decode(&[0x04, 0x81, 0x1f], &mut out, usize::MAX).unwrap();
        assert_eq!(fields(&out), pairs(&[(":path", "a")]));
    }

    #[test]
    fn error_table_size_too_large() {
        let mut d = Decoder::new(4096);
        // 31 + 0x62 + (0x1f << 7) = 4097.
        assert_eq!(
            decode_err(&mut d, &[0x3f, 0xe2, 0x1f]),
            DecodeError::TableSizeTooLarge(4097)
        );
        let mut out = HeaderList::default();
        d.decode(&[0x3f, 0xe1, 0x1f, 0x82], &mut out, usize::MAX)
            .unwrap();
        assert_eq!(d.table.max_size, 4096);
    }

    #[test]
    fn error_late_table_size_update() {
        let mut d = Decoder::new(4096);
        assert_eq!(
            decode_err(&mut d, &[0x82, 0x20]),
            DecodeError::LateTableSizeUpdate
        );
        assert_eq!(
            decode_err(&mut d, &[0x20, 0x82, 0x3f, 0xe1, 0x1f]),
            DecodeError::LateTableSizeUpdate
        );
    }

    #[test]
    fn display_messages() {
        for e in [
            DecodeError::Truncated,
            DecodeError::IntegerOverflow,
            DecodeError::BadIndex(0),
            DecodeError::BadHuffman,
            DecodeError::TableSizeTooLarge(1),
            DecodeError::LateTableSizeUpdate,
        ] {
            let e: Box<dyn std::error::Error> = Box::new(e);
            assert!(e.to_string().starts_with("HPACK: "));
        }
    }

    #[test]
    fn size_updates_at_block_start() {
        let mut d = Decoder::new(4096);
        check(
            &mut d,
            "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
            &[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
            ],
            &[(":authority", "www.example.com")],
            57,
        );
        // Two updates in a row: 0 (evicts everything), then back to 4096.
        check(&mut d, "20 3fe1 1f 82", &[(":method", "GET")], &[], 0);
        assert_eq!(d.table.max_size, 4096);
        assert_eq!(decode_err(&mut d, &[0xbe]), DecodeError::BadIndex(62));
        // An update alone is a valid (empty) block.
        check(&mut d, "3f 21", &[], &[], 0);
        assert_eq!(d.table.max_size, 64);
    }

    #[test]
    fn eviction() {
        let mut d = Decoder::new(4096);
        // Table of 70: room for two 34-byte entries.
        check(
            &mut d,
            "3f 27 40 0161 0162",
            &[("a", "b")],
            &[("a", "b")],
            34,
        );
        check(
            &mut d,
            "40 0163 0164",
            &[("c", "d")],
            &[("c", "d"), ("a", "b")],
            68,
        );
        check(
            &mut d,
            "40 0165 0166 bf",
            &[("e", "f"), ("c", "d")],
            &[("e", "f"), ("c", "d")],
            68,
        );
        assert_eq!(decode_err(&mut d, &[0xc0]), DecodeError::BadIndex(64));
        // Indexed name from the entry being evicted by its own insertion (§4.4).
        check(
            &mut d,
            "7f 00 0178",
            &[("c", "x")],
            &[("c", "x"), ("e", "f")],
            68,
        );
        // Shrinking evicts the oldest.
        check(&mut d, "3f 04 be", &[("c", "x")], &[("c", "x")], 34);
        // An entry larger than the table empties it.
        check(&mut d, "40 0561 6161 6161 00", &[("aaaaa", "")], &[], 0);
        // Many insertions through a small table: compaction keeps storage bounded.
        let mut out = HeaderList::default();
        for i in 0..10_000u32 {
            let mut block = vec![0x3f, 0x27, 0x40, 0x04];
            block.extend_from_slice(&i.to_be_bytes());
            block.extend_from_slice(&[0x01, b'v', 0xbe]);
            d.decode(&block, &mut out, usize::MAX).unwrap();
            let got: Vec<_> = out.iter().collect();
            assert_eq!(got[1], (&i.to_be_bytes()[..], &b"v"[..]));
        }
        assert_eq!(d.table.entries.len(), 1);
        assert!(d.table.data.len() <= 2 * 70);
    }

    #[test]
    fn oversized_list_keeps_table_in_sync() {
        let mut d = Decoder::new(4096);
        let mut out = HeaderList::default();
        // :method GET (42) fits in 50; custom-key: custom-header (55) does not.
        let block = hex("82 400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572 84");
        d.decode(&block, &mut out, 50).unwrap();
        assert!(out.oversized());
        assert_eq!(fields(&out), pairs(&[(":method", "GET")]));
        assert_eq!(out.size(), 42 + 55 + 38);
        assert_eq!(table(&d), pairs(&[("custom-key", "custom-header")]));
        d.decode(&[0xbe], &mut out, 4096).unwrap();
        assert!(!out.oversized());
        assert_eq!(fields(&out), pairs(&[("custom-key", "custom-header")]));
        assert_eq!(out.len(), 1);
        out.clear();
        assert!(out.is_empty() && out.size() == 0);
        // A limit of 0 stores nothing but still decodes everything.
        d.decode(&[0x82, 0xbe], &mut out, 0).unwrap();
        assert!(out.oversized() && out.is_empty());
        assert_eq!(out.size(), 42 + 55);
    }

    #[test]
    fn huffman_round_trip_all_bytes() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(huff_decode(&huff_encode(&all)).unwrap(), all);
        let rev: Vec<u8> = (0..=255).rev().collect();
        assert_eq!(huff_decode(&huff_encode(&rev)).unwrap(), rev);
        for b in 0..=255u8 {
            for n in 1..=9 {
                let s = vec![b; n];
                assert_eq!(huff_decode(&huff_encode(&s)).unwrap(), s, "byte {b} x{n}");
            }
        }
        assert_eq!(huff_decode(&[]).unwrap(), b"");
        // Pseudo-random strings of every length up to 300 mixing short and long codes.
        let mut rng = XorShift(0x1234_5678_9abc_def1);
        for len in 0..300 {
            let s: Vec<u8> = (0..len)
                .map(|_| {
                    let r = rng.next();
                    if r & 3 == 0 {
                        (r >> 8) as u8
                    } else {
                        b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."
                            [(r >> 8) as usize % 65]
                    }
                })
                .collect();
            assert_eq!(huff_decode(&huff_encode(&s)).unwrap(), s);
        }
    }

    #[test]
    fn huffman_tables_are_consistent() {
        for (sym, &(code, len)) in HUFFMAN_CODES.iter().enumerate() {
            let bits = u64::from(code) << (64 - u32::from(len));
            let (s, l) = if u32::from(len) <= LUT_BITS {
                let e = HUFFMAN_LUT[(bits >> (64 - LUT_BITS)) as usize];
                (((e >> 8) & 0xff) as u16, e >> 24)
            } else {
                assert_eq!(HUFFMAN_LUT[(bits >> (64 - LUT_BITS)) as usize], 0);
                decode_long(bits).unwrap()
            };
            assert_eq!((usize::from(s), l), (sym, u32::from(len)));
        }
    }

    #[test]
    fn huffman_rejects_eos_and_bad_padding() {
        // 'a' then EOS (30 bits) then 'b', padded.
        let mut acc: u128 = 0;
        let mut bits = 0;
        for &(code, len) in &[HUFFMAN_CODES[97], HUFFMAN_CODES[256], HUFFMAN_CODES[98]] {
            acc = acc << len | u128::from(code);
            bits += u32::from(len);
        }
        let pad = (8 - bits % 8) % 8;
        acc = acc << pad | ((1 << pad) - 1);
        let n = ((bits + pad) / 8) as usize;
        let bytes = acc.to_be_bytes()[16 - n..].to_vec();
        assert_eq!(huff_decode(&bytes), Err(DecodeError::BadHuffman));
        // EOS alone, and EOS padded to a byte (32 bits of ones).
        assert_eq!(
            huff_decode(&[0xff, 0xff, 0xff, 0xfc]),
            Err(DecodeError::BadHuffman)
        );
        assert_eq!(
            huff_decode(&[0xff, 0xff, 0xff, 0xff]),
            Err(DecodeError::BadHuffman)
        );
        // Eight '0's (40 bits) then a full byte of ones: 8 bits of padding.
        let mut s = huff_encode(b"00000000");
        assert_eq!(s.len(), 5);
        assert_eq!(huff_decode(&s).unwrap(), b"00000000");
        s.push(0xff);
        assert_eq!(huff_decode(&s), Err(DecodeError::BadHuffman));
        assert_eq!(huff_decode(&[0xff]), Err(DecodeError::BadHuffman));
        // Padding bits that are not all ones, short and after a long input.
        assert_eq!(huff_decode(&[0x18]), Err(DecodeError::BadHuffman));
        assert_eq!(huff_decode(&[0x1e]), Err(DecodeError::BadHuffman));
        let mut long = huff_encode(&[b'a'; 41]);
        *long.last_mut().unwrap() &= 0xfe;
        assert_eq!(huff_decode(&long), Err(DecodeError::BadHuffman));
        // Short padding is fine: 'a' + 3 ones; five 'a's (25 bits) + 7 ones.
        assert_eq!(huff_decode(&[0x1f]).unwrap(), b"a");
        let five = huff_encode(b"aaaaa");
        assert_eq!(five, [0x18, 0xc6, 0x31, 0xff]);
        assert_eq!(huff_decode(&five).unwrap(), b"aaaaa");
    }

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn no_panic_on_random_and_mutated_blocks() {
        let corpus: Vec<Vec<u8>> = [
            "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
            "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
            "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
            "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
             2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
            "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
             77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
             9587 3160 65c0 03ed 4ee5 b106 3d50 07",
            "1008 7061 7373 776f 7264 0673 6563 7265 74",
            "3fe1 1f 82",
            "20 3f 21 86",
        ]
        .iter()
        .map(|s| hex(s))
        .collect();
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut d = Decoder::new(4096);
        let mut out = HeaderList::default();
        let (mut ok, mut err) = (0u32, 0u32);
        for i in 0..200_000u32 {
            let r = rng.next();
            let block: Vec<u8> = if i % 2 == 0 {
                let len = (r % 48) as usize;
                (0..len).map(|_| rng.next() as u8).collect()
            } else {
                let mut b = corpus[(r % corpus.len() as u64) as usize].clone();
                for _ in 0..1 + (r >> 8) % 3 {
                    let x = rng.next();
                    if b.is_empty() {
                        break;
                    }
                    let at = (x % b.len() as u64) as usize;
                    match (x >> 32) % 4 {
                        0 => b[at] ^= 1 << ((x >> 40) % 8),
                        1 => b[at] = (x >> 40) as u8,
                        2 => b.truncate(at),
                        _ => b.insert(at, (x >> 40) as u8),
                    }
                }
                b
            };
            let limit = if r & 0x10_0000 != 0 { 64 } else { usize::MAX };
            match d.decode(&block, &mut out, limit) {
                Ok(()) => ok += 1,
                Err(_) => err += 1,
            }
            assert!(d.table.size <= d.table.max_size);
            assert!(d.table.max_size <= 4096);
            for (n, v) in out.iter() {
                let _ = (n.len(), v.len());
            }
        }
        assert!(ok > 1000 && err > 1000, "ok {ok} err {err}");
    }

    #[test]
    fn encoders_round_trip() {
        let mut block = Vec::new();
        let statuses = [
            200u16, 204, 206, 304, 400, 404, 500, 201, 302, 418, 503, 999, 100,
        ];
        for s in statuses {
            encode_status(s, &mut block);
        }
        assert_eq!(block[..7], [0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e]);
        assert_eq!(block[7..12], [0x08, 0x03, b'2', b'0', b'1']);
        let long_value = vec![b'x'; 300];
        encode_never_indexed(
            b"apns-id",
            b"123e4567-e89b-12d3-a456-426614174000",
            &mut block,
        );
        encode_literal(b"apns-unique-id", &long_value, &mut block);
        encode_literal(b"", b"", &mut block);
        encode_never_indexed(&[b'n'; 127], &[0u8, 0xff, b'\n'], &mut block);
        let mut d = Decoder::new(4096);
        let mut out = HeaderList::default();
        d.decode(&block, &mut out, usize::MAX).unwrap();
        let got: Vec<(Vec<u8>, Vec<u8>)> =
            out.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
        let mut want: Vec<(Vec<u8>, Vec<u8>)> = statuses
            .iter()
            .map(|s| (b":status".to_vec(), s.to_string().into_bytes()))
            .collect();
        want.push((
            b"apns-id".to_vec(),
            b"123e4567-e89b-12d3-a456-426614174000".to_vec(),
        ));
        want.push((b"apns-unique-id".to_vec(), long_value));
        want.push((Vec::new(), Vec::new()));
        want.push((vec![b'n'; 127], vec![0u8, 0xff, b'\n']));
        assert_eq!(got, want);
        assert!(d.table.entries.is_empty());
        let mut odd = Vec::new();
        encode_status(65535, &mut odd);
        encode_status(7, &mut odd);
        d.decode(&odd, &mut out, usize::MAX).unwrap();
        assert_eq!(
            fields(&out),
            pairs(&[(":status", "65535"), (":status", "7")])
        );
    }
}
