//! JSON writing for the big artifacts (manifest.json, plan.json): a serde serializer whose output
//! is byte for byte serde_json's (`to_writer` / `to_writer_pretty`, with the crate's
//! `preserve_order`), written straight into a `Vec<u8>`.
//!
//! serde_json passes every fragment through `io::Write` and looks at a string a byte at a time
//! through a table; plan.json is mostly SQL text (newlines, `"quoted"."names"`), so escaping is
//! where its time goes. Here a string is read eight bytes at a time: a few integer operations on
//! the word find the bytes to escape (SWAR), and the word is copied with one eight-byte store (see
//! `push_word`).
//!
//! What is serde_json's own is left to it: floats are written by its `CompactFormatter` (the
//! shortest round-trip digits with a signed exponent, `1e+16`, where ryu would write `1e16`), and
//! the errors for map keys JSON cannot have are its own errors. Its `arbitrary_precision` and
//! `raw_value` features (off in this crate) are not supported.

use std::fmt::{self, Display};
use std::io::{self, Write};

use serde::ser::{self, Error as _, Impossible, Serialize};
use serde_json::Error;
use serde_json::ser::{CompactFormatter, Formatter};

/// The streaming forms hand their buffer to the writer once it holds this much, at the end of
/// the element that crossed it.
const FLUSH_AT: usize = 64 * 1024;

/// Appends the compact JSON of `value` to `out` (what serde_json::to_writer writes).
pub fn to_vec_into<T: ?Sized + Serialize>(out: &mut Vec<u8>, value: &T) -> Result<(), Error> {
    value.serialize(&mut Serializer::<false>::new(out, None))
}

/// Appends the pretty JSON of `value` to `out` (what serde_json::to_writer_pretty writes: two
/// spaces of indent, `": "` after a key, empty arrays and objects as `[]` and `{}`).
pub fn pretty_into<T: ?Sized + Serialize>(out: &mut Vec<u8>, value: &T) -> Result<(), Error> {
    value.serialize(&mut Serializer::<true>::new(out, None))
}

/// Streams compact JSON to `w`, buffering internally and flushing to `w` in blocks of about
/// 64 KiB at element boundaries (so a 33 MB document never sits in memory whole). Like
/// serde_json's, it does not call `w.flush()`.
pub fn to_writer<W: ?Sized + Write, T: ?Sized + Serialize>(w: &mut W, value: &T) -> Result<(), Error> {
    stream::<false, W, T>(w, value)
}

/// Streams pretty JSON to `w`, as [`to_writer`] streams compact JSON.
pub fn to_writer_pretty<W: ?Sized + Write, T: ?Sized + Serialize>(w: &mut W, value: &T) -> Result<(), Error> {
    stream::<true, W, T>(w, value)
}

/// The name [`Raw`] gives its newtype, by which this module's serializer knows it.
const RAW: &str = "$orrery::json::Raw";

/// JSON written before, spliced into compact output as it is: a value written once and repeated
/// (a config most nodes share) is escaped once. Only this module's compact serializer knows it:
/// the pretty one refuses it, and any other serializer would write the bytes as an array of
/// numbers, so a type serializes a `Raw` only where it is written with [`to_vec_into`] or
/// [`to_writer`]. The bytes must be one complete JSON value.
pub struct Raw<'a>(pub &'a [u8]);

impl Serialize for Raw<'_> {
    fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Bytes<'a>(&'a [u8]);
        impl Serialize for Bytes<'_> {
            fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_bytes(self.0)
            }
        }
        serializer.serialize_newtype_struct(RAW, &Bytes(self.0))
    }
}

/// Appends `s` as a JSON string literal (quotes included), escaped as serde_json escapes it.
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    push_escaped(out, s.as_bytes());
    out.push(b'"');
}

fn stream<const PRETTY: bool, W: ?Sized + Write, T: ?Sized + Serialize>(w: &mut W, value: &T) -> Result<(), Error> {
    // Room for a block and the element that crosses into the next one, mostly.
    let mut buf = Vec::with_capacity(2 * FLUSH_AT);
    let mut sink = SizedWriter(w);
    value.serialize(&mut Serializer::<PRETTY>::new(&mut buf, Some(&mut sink)))?;
    sink.0.write_all(&buf).map_err(Error::io)
}

/// `&mut W` as a sized writer, so that a `W` that is itself unsized (`dyn Write`) can be held as
/// `&mut dyn Write`: the serializer is then generic over compact/pretty only, not over writers.
struct SizedWriter<'w, W: ?Sized>(&'w mut W);

impl<W: ?Sized + Write> Write for SizedWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

// ---------------------------------------------------------------------------------------------
// String escaping

/// Every byte with its high bit cleared / set, and 0x01 in every byte.
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const HIGH: u64 = 0x8080_8080_8080_8080;
const ONES: u64 = 0x0101_0101_0101_0101;

/// The high bit of each byte of `word` that JSON must escape: a control character (< 0x20),
/// `"` or `\`. Exact for every byte (the additions stay within a byte, no carry crosses into
/// the next), so every set bit is one escape. Bytes of multi-byte UTF-8 characters have their
/// high bit set and are never flagged.
fn escape_mask(word: u64) -> u64 {
    // A byte below 0x20: its low seven bits plus 0x60 stay below 0x80 and its high bit is clear.
    let control = !(((word & LOW7) + ONES * 0x60) | word);
    // A byte equal to `c`: after xor with `c` it is zero, and a zero plus 0x7f stays below 0x80.
    let equal = |c: u8| {
        let x = word ^ (ONES * u64::from(c));
        !(((x & LOW7) + LOW7) | x)
    };
    (control | equal(b'"') | equal(b'\\')) & HIGH
}

/// Appends `bytes` (UTF-8) escaped, without quotes: word by word, then the last bytes (fewer
/// than eight) as part of the string's last word, or, in a string shorter than a word, as a word
/// of their own.
fn push_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut i = 0;
    while let Some(chunk) = bytes[i..].first_chunk::<8>() {
        push_word(out, chunk, 0, 8);
        i += 8;
    }
    let rest = bytes.len() - i;
    if rest == 0 {
        return;
    }
    match bytes.last_chunk::<8>() {
        // Its first `8 - rest` bytes are written already.
        Some(last) => push_word(out, last, 8 - rest, 8),
        None => push_word(out, &short_word(bytes).to_le_bytes(), 0, rest),
    }
}

/// The bytes of a string shorter than a word as the low bytes of one: two loads of the widest
/// size that fits, one from each end, overlapping in the middle (copying them into a zeroed
/// word would be a `memcpy` call, and many keys are this short: `name`, `tags`, `config`...).
fn short_word(bytes: &[u8]) -> u64 {
    let n = bytes.len();
    if let (Some(head), Some(tail)) = (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
        u64::from(u32::from_le_bytes(*head)) | u64::from(u32::from_le_bytes(*tail)) << (8 * (n - 4))
    } else if let (Some(head), Some(tail)) = (bytes.first_chunk::<2>(), bytes.last_chunk::<2>()) {
        u64::from(u16::from_le_bytes(*head)) | u64::from(u16::from_le_bytes(*tail)) << (8 * (n - 2))
    } else {
        bytes.first().map_or(0, |&b| u64::from(b))
    }
}

/// Appends `chunk[from..to]` escaped.
///
/// The bytes are copied a whole word at a time, in one store (copying each run between escapes
/// exactly would be a `memcpy` call of a few bytes, and in SQL text a run is a dozen bytes or
/// so), then cut back: to the first byte to escape, whose escape is appended, then the rest of the
/// word again behind it, and so on for each byte the word's one mask flags. What stays in `out` is
/// the bytes with the flagged (ASCII) ones replaced by their escapes, so it is still UTF-8.
#[inline(always)]
fn push_word(out: &mut Vec<u8>, chunk: &[u8; 8], mut from: usize, to: usize) {
    let word = u64::from_le_bytes(*chunk);
    // The bytes to escape in from..to (1 <= to <= 8, from < 8).
    let mut mask = escape_mask(word) & (u64::MAX >> (8 * (8 - to))) & (u64::MAX << (8 * from));
    out.extend_from_slice(&(word >> (8 * from)).to_le_bytes());
    while mask != 0 {
        // `out` ends with eight bytes: chunk[from..], then padding. Keep chunk[from..at].
        // Little-endian: the lowest set bit is the first byte to escape.
        let at = (mask.trailing_zeros() / 8) as usize;
        out.truncate(out.len() - 8 + (at - from));
        push_escape(out, chunk[at]);
        from = at + 1;
        out.extend_from_slice(&word.checked_shr(8 * from as u32).unwrap_or(0).to_le_bytes());
        mask &= mask - 1;
    }
    out.truncate(out.len() - 8 + (to - from));
}

/// The letter after the backslash of the bytes JSON escapes in two characters, by byte; 0 for
/// the others.
static SHORT_ESCAPES: [u8; 256] = {
    let mut table = [0; 256];
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table[b'\n' as usize] = b'n';
    table[b'\r' as usize] = b'r';
    table[b'\t' as usize] = b't';
    table[0x08] = b'b';
    table[0x0c] = b'f';
    table
};

/// Appends the escape of `byte` (one [`escape_mask`] flags): the two-character forms JSON has,
/// else `\u00XX` in lowercase hex, as serde_json writes it. A table, not a `match`: the `match`
/// compiled to a jump table, an indirect branch mispredicted at every change of escaped byte
/// (quote, newline, quote...).
#[inline]
fn push_escape(out: &mut Vec<u8>, byte: u8) {
    match SHORT_ESCAPES[usize::from(byte)] {
        0 => push_unicode_escape(out, byte),
        letter => out.extend_from_slice(&[b'\\', letter]),
    }
}

#[cold]
fn push_unicode_escape(out: &mut Vec<u8>, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let (high, low) = (HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 0xf)]);
    out.extend_from_slice(&[b'\\', b'u', b'0', b'0', high, low]);
}

// ---------------------------------------------------------------------------------------------
// The serializer

/// JSON appended to `out`, compact or (`PRETTY`) laid out as serde_json's `PrettyFormatter` lays
/// it out. With a `sink` (the streaming forms), `out` is handed to it and emptied whenever it
/// holds [`FLUSH_AT`] bytes at the end of an element.
struct Serializer<'a, const PRETTY: bool> {
    out: &'a mut Vec<u8>,
    sink: Option<&'a mut dyn Write>,
    /// Pretty only: the nesting depth (the indent is two spaces per level).
    depth: usize,
    /// Pretty only: whether a value was written since the last `[` or `{` opened, i.e. whether
    /// the container now closing goes on a line of its own. One flag for the whole document, as
    /// serde_json keeps it, so that even a `Serialize` that lies about its length comes out alike.
    has_value: bool,
    /// Inside a [`Raw`]: its bytes are written as they are.
    raw: bool,
}

/// Spaces for an indent, copied in one piece up to 64 levels deep.
const SPACES: &[u8; 128] = &[b' '; 128];

impl<'a, const PRETTY: bool> Serializer<'a, PRETTY> {
    fn new(out: &'a mut Vec<u8>, sink: Option<&'a mut dyn Write>) -> Self {
        Serializer { out, sink, depth: 0, has_value: false, raw: false }
    }

    /// Opens an array or object (`bracket` is `[` or `{`).
    fn open(&mut self, bracket: u8) {
        self.out.push(bracket);
        if PRETTY {
            self.depth += 1;
            self.has_value = false;
        }
    }

    /// Closes an array or object; pretty, on a new line unless it is empty.
    fn close(&mut self, bracket: u8) {
        if PRETTY {
            self.depth -= 1;
            if self.has_value {
                self.newline();
            }
        }
        self.out.push(bracket);
    }

    /// Before an array element or object key: the comma after the one before it; pretty, a new
    /// line at the depth.
    fn element(&mut self, first: bool) {
        if !first {
            self.out.push(b',');
        }
        if PRETTY {
            self.newline();
        }
    }

    /// Between an object key and its value.
    fn colon(&mut self) {
        if PRETTY {
            self.out.extend_from_slice(b": ");
        } else {
            self.out.push(b':');
        }
    }

    /// After an array element or object value: the point where the streaming forms flush.
    fn element_done(&mut self) -> Result<(), Error> {
        if PRETTY {
            self.has_value = true;
        }
        if self.out.len() >= FLUSH_AT
            && let Some(sink) = &mut self.sink
        {
            sink.write_all(self.out).map_err(Error::io)?;
            self.out.clear();
        }
        Ok(())
    }

    fn newline(&mut self) {
        self.out.push(b'\n');
        let mut spaces = 2 * self.depth;
        while spaces > 0 {
            let n = spaces.min(SPACES.len());
            self.out.extend_from_slice(&SPACES[..n]);
            spaces -= n;
        }
    }

    /// `{"variant":`, the opening of an externally tagged newtype, tuple or struct variant.
    fn variant_key(&mut self, variant: &str) {
        self.open(b'{');
        self.element(true);
        self.key(variant);
    }

    /// A string key and the colon after it, `"key":` (pretty, `"key": `): a struct's field
    /// name or a variant's, written without going through [`MapKey`].
    fn key(&mut self, key: &str) {
        self.out.reserve(key.len() + 4);
        self.out.push(b'"');
        push_escaped(self.out, key.as_bytes());
        let end: &[u8] = if PRETTY { b"\": " } else { b"\":" };
        self.out.extend_from_slice(end);
    }

    fn integer<I: itoa::Integer>(&mut self, value: I) {
        self.out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    /// A finite float, written by serde_json's own formatter, so that it is the same text
    /// (`0.1`, `1.0`, `1e+16`: not ryu's `1e16`).
    fn f32(&mut self, value: f32) -> Result<(), Error> {
        CompactFormatter.write_f32(self.out, value).map_err(Error::io)
    }

    fn f64(&mut self, value: f64) -> Result<(), Error> {
        CompactFormatter.write_f64(self.out, value).map_err(Error::io)
    }

    fn null(&mut self) {
        self.out.extend_from_slice(b"null");
    }
}

impl<'s, 'a, const PRETTY: bool> ser::Serializer for &'s mut Serializer<'a, PRETTY> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'s, 'a, PRETTY>;
    type SerializeTuple = Compound<'s, 'a, PRETTY>;
    type SerializeTupleStruct = Compound<'s, 'a, PRETTY>;
    type SerializeTupleVariant = Compound<'s, 'a, PRETTY>;
    type SerializeMap = Compound<'s, 'a, PRETTY>;
    type SerializeStruct = Compound<'s, 'a, PRETTY>;
    type SerializeStructVariant = Compound<'s, 'a, PRETTY>;

    fn serialize_bool(self, value: bool) -> Result<(), Error> {
        let text: &[u8] = if value { b"true" } else { b"false" };
        self.out.extend_from_slice(text);
        Ok(())
    }

    fn serialize_i8(self, value: i8) -> Result<(), Error> {
        self.integer(value);
        Ok(())
    }

    fn serialize_i16(self, value: i16) -> Result<(), Error> {
        self.integer(value);
        Ok(())
    }

    fn serialize_i32(self, value: i32) -> Result<(), Error> {
        self.integer(value);
        Ok(())
    }

    fn serialize_i64(self, value: i64) -> Result<(), Error> {
        self.integer(value);
        Ok(())
    }

    fn serialize_i128(self, value: i128) -> Result<(), Error> {
        self.integer(value);
        Ok(())
    }

    fn serialize_u8(self, value: u8) -> Result<(), Error> {
        self.integer(value);
        Ok(())
    }

    fn serialize_u16(self, value: u16) -> Result<(), Error> {
        self.integer(value);
        Ok(())
    }

    fn serialize_u32(self, value: u32) -> Result<(), Error> {
        self.integer(value);
        Ok(())
    }

    fn serialize_u64(self, value: u64) -> Result<(), Error> {
        self.integer(value);
        Ok(())
    }

    fn serialize_u128(self, value: u128) -> Result<(), Error> {
        self.integer(value);
        Ok(())
    }

    /// NaN and the infinities as `null`, as serde_json writes them.
    fn serialize_f32(self, value: f32) -> Result<(), Error> {
        if value.is_finite() {
            self.f32(value)
        } else {
            self.null();
            Ok(())
        }
    }

    fn serialize_f64(self, value: f64) -> Result<(), Error> {
        if value.is_finite() {
            self.f64(value)
        } else {
            self.null();
            Ok(())
        }
    }

    fn serialize_char(self, value: char) -> Result<(), Error> {
        push_str(self.out, value.encode_utf8(&mut [0; 4]));
        Ok(())
    }

    fn serialize_str(self, value: &str) -> Result<(), Error> {
        push_str(self.out, value);
        Ok(())
    }

    /// Bytes as an array of numbers.
    fn serialize_bytes(self, value: &[u8]) -> Result<(), Error> {
        if self.raw {
            self.out.extend_from_slice(value);
            return Ok(());
        }
        self.open(b'[');
        for (i, &byte) in value.iter().enumerate() {
            self.element(i == 0);
            self.integer(byte);
            self.element_done()?;
        }
        self.close(b']');
        Ok(())
    }

    fn serialize_none(self) -> Result<(), Error> {
        self.null();
        Ok(())
    }

    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Error> {
        self.null();
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.null();
        Ok(())
    }

    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Result<(), Error> {
        push_str(self.out, variant);
        Ok(())
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, name: &'static str, value: &T) -> Result<(), Error> {
        if name == RAW {
            if PRETTY {
                return Err(Error::custom("raw JSON is written into compact output only"));
            }
            self.raw = true;
            let written = value.serialize(&mut *self);
            self.raw = false;
            return written;
        }
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.variant_key(variant);
        value.serialize(&mut *self)?;
        self.element_done()?;
        self.close(b'}');
        Ok(())
    }

    /// `[`; with a length of zero, `[]` at once (and nothing at the end), as serde_json does.
    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'s, 'a, PRETTY>, Error> {
        self.open(b'[');
        Ok(Compound::opened(self, len, b']'))
    }

    fn serialize_tuple(self, len: usize) -> Result<Compound<'s, 'a, PRETTY>, Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Compound<'s, 'a, PRETTY>, Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'s, 'a, PRETTY>, Error> {
        self.variant_key(variant);
        self.serialize_seq(Some(len))
    }

    /// `{`; with a length of zero, `{}` at once, as for a sequence.
    fn serialize_map(self, len: Option<usize>) -> Result<Compound<'s, 'a, PRETTY>, Error> {
        self.open(b'{');
        Ok(Compound::opened(self, len, b'}'))
    }

    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<Compound<'s, 'a, PRETTY>, Error> {
        self.serialize_map(Some(len))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'s, 'a, PRETTY>, Error> {
        self.variant_key(variant);
        self.serialize_map(Some(len))
    }

    /// `value`'s `Display` escaped as it is written, without a `String` in between. serde_json
    /// panics when a `Display` fails without an I/O error; this returns an error.
    fn collect_str<T: ?Sized + Display>(self, value: &T) -> Result<(), Error> {
        /// Escapes each piece `Display` writes into the output.
        struct Escaping<'v>(&'v mut Vec<u8>);

        impl fmt::Write for Escaping<'_> {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                push_escaped(self.0, s.as_bytes());
                Ok(())
            }
        }

        self.out.push(b'"');
        fmt::write(&mut Escaping(self.out), format_args!("{value}"))
            .map_err(|_| Error::custom("a Display implementation returned an error"))?;
        self.out.push(b'"');
        Ok(())
    }
}

/// Where an array or object is: closed already (it was opened with a length of zero), before its
/// first element, or after one. Tracked as serde_json tracks it, so output matches even for a
/// `Serialize` that gives a wrong length.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Empty,
    First,
    Rest,
}

/// An open array or object (or variant's payload), for serde's `Serialize*` traits.
struct Compound<'s, 'a, const PRETTY: bool> {
    ser: &'s mut Serializer<'a, PRETTY>,
    state: State,
}

impl<'s, 'a, const PRETTY: bool> Compound<'s, 'a, PRETTY> {
    /// The container just opened; one of length zero is closed at once.
    fn opened(ser: &'s mut Serializer<'a, PRETTY>, len: Option<usize>, bracket: u8) -> Self {
        if len == Some(0) {
            ser.close(bracket);
            Compound { ser, state: State::Empty }
        } else {
            Compound { ser, state: State::First }
        }
    }

    /// The comma (and pretty, the new line) before an element or key.
    fn element(&mut self) {
        self.ser.element(self.state == State::First);
        self.state = State::Rest;
    }

    fn array_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        self.element();
        self.value(value)
    }

    fn field<T: ?Sized + Serialize>(&mut self, key: &str, value: &T) -> Result<(), Error> {
        self.element();
        self.ser.key(key);
        self.value(value)
    }

    /// An object's value, after its key and colon, or an array's element.
    fn value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(&mut *self.ser)?;
        self.ser.element_done()
    }

    /// Closes the container (unless it was closed when opened) and gives the serializer back.
    fn finish(self, bracket: u8) -> &'s mut Serializer<'a, PRETTY> {
        if self.state != State::Empty {
            self.ser.close(bracket);
        }
        self.ser
    }

    /// Closes a variant's payload, then the `{"variant": ...}` around it.
    fn finish_variant(self, bracket: u8) -> Result<(), Error> {
        let ser = self.finish(bracket);
        ser.element_done()?;
        ser.close(b'}');
        Ok(())
    }
}

impl<const PRETTY: bool> ser::SerializeSeq for Compound<'_, '_, PRETTY> {
    type Ok = ();
    type Error = Error;

    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        self.array_element(value)
    }

    fn end(self) -> Result<(), Error> {
        self.finish(b']');
        Ok(())
    }
}

impl<const PRETTY: bool> ser::SerializeTuple for Compound<'_, '_, PRETTY> {
    type Ok = ();
    type Error = Error;

    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        self.array_element(value)
    }

    fn end(self) -> Result<(), Error> {
        self.finish(b']');
        Ok(())
    }
}

impl<const PRETTY: bool> ser::SerializeTupleStruct for Compound<'_, '_, PRETTY> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        self.array_element(value)
    }

    fn end(self) -> Result<(), Error> {
        self.finish(b']');
        Ok(())
    }
}

impl<const PRETTY: bool> ser::SerializeTupleVariant for Compound<'_, '_, PRETTY> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        self.array_element(value)
    }

    fn end(self) -> Result<(), Error> {
        self.finish_variant(b']')
    }
}

impl<const PRETTY: bool> ser::SerializeMap for Compound<'_, '_, PRETTY> {
    type Ok = ();
    type Error = Error;

    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), Error> {
        self.element();
        key.serialize(MapKey { ser: &mut *self.ser })
    }

    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        self.ser.colon();
        self.value(value)
    }

    fn end(self) -> Result<(), Error> {
        self.finish(b'}');
        Ok(())
    }
}

impl<const PRETTY: bool> ser::SerializeStruct for Compound<'_, '_, PRETTY> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        self.field(key, value)
    }

    fn end(self) -> Result<(), Error> {
        self.finish(b'}');
        Ok(())
    }
}

impl<const PRETTY: bool> ser::SerializeStructVariant for Compound<'_, '_, PRETTY> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        self.field(key, value)
    }

    fn end(self) -> Result<(), Error> {
        self.finish_variant(b'}')
    }
}

// ---------------------------------------------------------------------------------------------
// Map keys

/// A map key, by serde_json's rules: strings, chars and unit variants as strings; integers,
/// bools and finite floats as their JSON text in quotes; newtypes and `Some` as what they hold;
/// anything else an error.
struct MapKey<'s, 'a, const PRETTY: bool> {
    ser: &'s mut Serializer<'a, PRETTY>,
}

impl<const PRETTY: bool> MapKey<'_, '_, PRETTY> {
    fn quoted(self, text: &[u8]) -> Result<(), Error> {
        let out = &mut *self.ser.out;
        out.push(b'"');
        out.extend_from_slice(text);
        out.push(b'"');
        Ok(())
    }

    fn integer<I: itoa::Integer>(self, value: I) -> Result<(), Error> {
        self.quoted(itoa::Buffer::new().format(value).as_bytes())
    }
}

/// serde_json's error for a key it cannot write, taken from serde_json itself (the constructor is
/// private) by writing a one-entry map with `key`: the same message and category.
fn key_error<K: Serialize>(key: K) -> Error {
    struct OneEntry<K>(K);

    impl<K: Serialize> Serialize for OneEntry<K> {
        fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_map([(&self.0, ())])
        }
    }

    match serde_json::to_writer(io::sink(), &OneEntry(key)) {
        Err(error) => error,
        Ok(()) => Error::custom("key must be a string"),
    }
}

/// "key must be a string"
fn key_must_be_a_string() -> Error {
    key_error(())
}

/// "float key must be finite (got NaN or +/-inf)"
fn float_key_must_be_finite() -> Error {
    key_error(f64::NAN)
}

impl<const PRETTY: bool> ser::Serializer for MapKey<'_, '_, PRETTY> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_str(self, value: &str) -> Result<(), Error> {
        push_str(self.ser.out, value);
        Ok(())
    }

    fn serialize_char(self, value: char) -> Result<(), Error> {
        push_str(self.ser.out, value.encode_utf8(&mut [0; 4]));
        Ok(())
    }

    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Result<(), Error> {
        push_str(self.ser.out, variant);
        Ok(())
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _name: &'static str, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn collect_str<T: ?Sized + Display>(self, value: &T) -> Result<(), Error> {
        ser::Serializer::collect_str(self.ser, value)
    }

    fn serialize_bool(self, value: bool) -> Result<(), Error> {
        let text: &[u8] = if value { b"true" } else { b"false" };
        self.quoted(text)
    }

    fn serialize_i8(self, value: i8) -> Result<(), Error> {
        self.integer(value)
    }

    fn serialize_i16(self, value: i16) -> Result<(), Error> {
        self.integer(value)
    }

    fn serialize_i32(self, value: i32) -> Result<(), Error> {
        self.integer(value)
    }

    fn serialize_i64(self, value: i64) -> Result<(), Error> {
        self.integer(value)
    }

    fn serialize_i128(self, value: i128) -> Result<(), Error> {
        self.integer(value)
    }

    fn serialize_u8(self, value: u8) -> Result<(), Error> {
        self.integer(value)
    }

    fn serialize_u16(self, value: u16) -> Result<(), Error> {
        self.integer(value)
    }

    fn serialize_u32(self, value: u32) -> Result<(), Error> {
        self.integer(value)
    }

    fn serialize_u64(self, value: u64) -> Result<(), Error> {
        self.integer(value)
    }

    fn serialize_u128(self, value: u128) -> Result<(), Error> {
        self.integer(value)
    }

    fn serialize_f32(self, value: f32) -> Result<(), Error> {
        if !value.is_finite() {
            return Err(float_key_must_be_finite());
        }
        self.ser.out.push(b'"');
        self.ser.f32(value)?;
        self.ser.out.push(b'"');
        Ok(())
    }

    fn serialize_f64(self, value: f64) -> Result<(), Error> {
        if !value.is_finite() {
            return Err(float_key_must_be_finite());
        }
        self.ser.out.push(b'"');
        self.ser.f64(value)?;
        self.ser.out.push(b'"');
        Ok(())
    }

    fn serialize_bytes(self, _value: &[u8]) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_none(self) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_unit(self) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Impossible<(), Error>, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_tuple(self, _len: usize) -> Result<Impossible<(), Error>, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Impossible<(), Error>, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Impossible<(), Error>, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Impossible<(), Error>, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Impossible<(), Error>, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Impossible<(), Error>, Error> {
        Err(key_must_be_a_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::path::Path;

    use indexmap::IndexMap;
    use serde::Serialize;
    use serde_json::{Value, json};

    /// Ours and serde_json's result are the same bytes, or the same error.
    fn same(what: &str, ours: Result<Vec<u8>, Error>, theirs: Result<Vec<u8>, Error>) {
        match (ours, theirs) {
            (Ok(ours), Ok(theirs)) => {
                assert_eq!(String::from_utf8(ours).unwrap(), String::from_utf8(theirs).unwrap(), "{what}")
            }
            (Err(ours), Err(theirs)) => {
                assert_eq!(ours.to_string(), theirs.to_string(), "{what}");
                assert_eq!(ours.classify(), theirs.classify(), "{what}");
            }
            (ours, theirs) => panic!("{what}: ours {ours:?}, serde_json's {theirs:?}"),
        }
    }

    /// `value` written all four ways, each compared with serde_json's `to_writer` /
    /// `to_writer_pretty`; the `_into` forms append after what the buffer holds already.
    fn check<T: ?Sized + Serialize>(value: &T) {
        let theirs = |pretty: bool| {
            let mut out = Vec::new();
            let result = if pretty { serde_json::to_writer_pretty(&mut out, value) } else { serde_json::to_writer(&mut out, value) };
            result.map(|()| out)
        };
        let appended = |f: fn(&mut Vec<u8>, &T) -> Result<(), Error>| {
            let mut out = b"prefix".to_vec();
            f(&mut out, value).map(|()| out.split_off(6))
        };
        let streamed = |f: fn(&mut Vec<u8>, &T) -> Result<(), Error>| {
            let mut out = Vec::new();
            f(&mut out, value).map(|()| out)
        };
        same("to_vec_into", appended(to_vec_into), theirs(false));
        same("pretty_into", appended(pretty_into), theirs(true));
        same("to_writer", streamed(to_writer), theirs(false));
        same("to_writer_pretty", streamed(to_writer_pretty), theirs(true));
    }

    fn check_str(s: &str) {
        let mut out = Vec::new();
        push_str(&mut out, s);
        assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(s).unwrap(), "{s:?}");
    }

    /// Fillers: one-byte, two-, three- and four-byte characters, and all of them in turn, so
    /// that multi-byte characters straddle the eight-byte words.
    const FILLERS: &[&[char]] = &[&['a'], &['é'], &['€'], &['😀'], &['a', 'é', 'x', '€', '😀', 'y', 'z']];

    #[test]
    fn every_string_up_to_40_characters_with_one_special_anywhere_escapes_as_serde_json() {
        let specials: Vec<char> = (0u8..=0x7f).map(char::from).chain(['é', '€', '😀', '\u{80}', '\u{2028}']).collect();
        for len in 0..=40 {
            for filler in FILLERS {
                let base: Vec<char> = filler.iter().copied().cycle().take(len).collect();
                check_str(&base.iter().collect::<String>());
                for &special in &specials {
                    for at in 0..=len {
                        let mut chars = base.clone();
                        chars.insert(at, special);
                        check_str(&chars.iter().collect::<String>());
                    }
                    check_str(&std::iter::repeat_n(special, len).collect::<String>());
                }
            }
        }
    }

    /// xorshift64: deterministic pseudo-random numbers without a crate.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn pseudo_random_strings_escape_as_serde_json() {
        let palette: Vec<char> = "abcdefgh \"\\\n\r\t/.,'é€😀\u{7f}\u{1}\u{1f}\u{8}\u{c}\u{0}".chars().collect();
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..5000 {
            let len = rng.below(100);
            let s: String = (0..len)
                .map(|_| {
                    // Mostly plain text, as SQL is, with the palette's specials between.
                    if rng.below(3) == 0 { palette[rng.below(palette.len())] } else { char::from(b'a' + rng.below(26) as u8) }
                })
                .collect();
            check_str(&s);
            check(&s);
        }
    }

    fn json_files(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                json_files(&path, found);
            } else if path.extension().is_some_and(|e| e == "json") {
                found.push(path);
            }
        }
    }

    #[test]
    fn the_json_fixtures_and_schemas_come_out_as_serde_json_writes_them() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        json_files(&root.join("tests/fixtures"), &mut files);
        json_files(&root.join("schemas"), &mut files);
        assert!(files.len() >= 10, "{files:?}");
        for file in files {
            let value: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
            check(&value);
        }
    }

    #[test]
    fn hand_built_values_with_empty_containers_floats_and_big_integers() {
        let mut deep = json!([]);
        for i in 0..100 {
            deep = if i % 2 == 0 { json!([deep, {}]) } else { json!({ "k": deep, "e": [] }) };
        }
        let values = [
            json!(null),
            json!(true),
            json!([]),
            json!({}),
            json!([[]]),
            json!([{}]),
            json!({"a": {}}),
            json!({"a": [], "b": {}, "c": [[], {}, [[]], {"x": {}}], "d": [{"e": [[], [1]]}], "": ""}),
            json!([0.0, -0.0, 1.0, 0.1, 1.5, 1e15, 1e16, 1e17, 1e-5, 1e-6, 1e-7, 1e21, 1e22, 1e300, 5e-324]),
            json!([f64::MAX, f64::MIN, f64::MIN_POSITIVE, 123_456_789.125, -2.5e-8, 9_007_199_254_740_993.0]),
            json!([u64::MAX, i64::MIN, i64::MAX, 0, -1, 1, -9_007_199_254_740_993_i64]),
            json!({"sql": "select \"a\".\"b\"\nfrom t\twhere x = '\\'", "ctl": "\u{0}\u{1f}\u{7f}", "u": "é€😀"}),
            deep,
        ];
        for value in &values {
            check(value);
        }
    }

    #[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
    struct UnitStruct;

    #[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
    struct Newtype(u32);

    #[derive(Serialize)]
    struct TupleStruct(i32, &'static str, Option<bool>);

    #[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
    enum Key {
        Unit,
        Newtype(i32),
    }

    #[derive(Serialize)]
    enum Shape {
        Empty,
        Circle(f64),
        Point(i32, i32),
        Rect {
            w: f32,
            h: f32,
        },
        NoFields {},
        NoElements(),
        Nested(Vec<Shape>),
        Boxed {
            inner: Box<Shape>,
            tags: Vec<String>,
        },
        #[serde(rename = "quoted \"variant\"\n")]
        Quoted {
            x: u8,
        },
    }

    /// Bytes, as serde_bytes writes them: through `serialize_bytes`.
    struct Bytes(&'static [u8]);

    impl Serialize for Bytes {
        fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_bytes(self.0)
        }
    }

    /// A sequence and a map of unknown length (`serialize_seq(None)`, `serialize_map(None)`).
    struct Unsized(Vec<(i32, &'static str)>);

    impl Serialize for Unsized {
        fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            use ser::{SerializeMap, SerializeSeq};
            let mut outer = serializer.serialize_seq(None)?;
            outer.serialize_element(&Iter(&self.0))?;
            outer.serialize_element(&MapOf(&self.0))?;
            outer.serialize_element(&MapOf(&[]))?;
            outer.serialize_element(&Iter(&[]))?;
            return outer.end();

            struct Iter<'v>(&'v [(i32, &'static str)]);
            impl Serialize for Iter<'_> {
                fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                    let mut seq = serializer.serialize_seq(None)?;
                    for (n, s) in self.0 {
                        seq.serialize_element(n)?;
                        seq.serialize_element(s)?;
                    }
                    seq.end()
                }
            }
            struct MapOf<'v>(&'v [(i32, &'static str)]);
            impl Serialize for MapOf<'_> {
                fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                    let mut map = serializer.serialize_map(None)?;
                    for (n, s) in self.0 {
                        map.serialize_entry(s, n)?;
                        map.serialize_key(n)?;
                        map.serialize_value(s)?;
                    }
                    map.end()
                }
            }
        }
    }

    /// A value written with `collect_str`.
    struct Shown(&'static str);

    impl Serialize for Shown {
        fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_str(&format_args!("<{}>\n\"{}\"", self.0, self.0.len()))
        }
    }

    #[derive(Serialize)]
    struct AllSkipped {
        #[serde(skip_serializing_if = "Option::is_none")]
        a: Option<i32>,
        #[serde(skip)]
        #[allow(dead_code)]
        b: i32,
    }

    #[derive(Serialize)]
    struct Everything {
        unit: (),
        unit_struct: UnitStruct,
        newtype: Newtype,
        tuple_struct: TupleStruct,
        tuple: (u8, &'static str, char, bool),
        shapes: Vec<Shape>,
        some: Option<String>,
        none: Option<i32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped_none: Option<i32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        kept_some: Option<i32>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        skipped_empty: Vec<i32>,
        #[serde(skip)]
        #[allow(dead_code)]
        never: i32,
        all_skipped: AllSkipped,
        integers: (i8, i16, i32, i64, u8, u16, u32, u64),
        i128s: [i128; 3],
        u128s: [u128; 2],
        f32s: Vec<f32>,
        f64s: Vec<f64>,
        bytes: Bytes,
        no_bytes: Bytes,
        nested: Vec<Vec<IndexMap<String, Vec<i32>>>>,
        by_name: IndexMap<String, Shape>,
        by_int: BTreeMap<i64, Vec<u8>>,
        by_u128: BTreeMap<u128, ()>,
        by_char: BTreeMap<char, &'static str>,
        by_bool: BTreeMap<bool, bool>,
        by_unit_variant: BTreeMap<Key, i32>,
        by_newtype: BTreeMap<Newtype, i32>,
        by_some: BTreeMap<Option<&'static str>, i32>,
        unsized_: Unsized,
        shown: Shown,
        shown_key: IndexMap<ShownKey, i32>,
        value: Value,
        #[serde(rename = "renamed \"field\"\t\\")]
        renamed: i32,
    }

    #[derive(PartialEq, Eq, Hash)]
    struct ShownKey(&'static str);

    impl Serialize for ShownKey {
        fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_str(self.0)
        }
    }

    fn everything() -> Everything {
        let nan_inf = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY];
        Everything {
            unit: (),
            unit_struct: UnitStruct,
            newtype: Newtype(7),
            tuple_struct: TupleStruct(-3, "t\"s", None),
            tuple: (255, "", '\n', false),
            shapes: vec![
                Shape::Empty,
                Shape::Circle(0.1),
                Shape::Point(-1, 2),
                Shape::Rect { w: 1.5, h: f32::NAN },
                Shape::NoFields {},
                Shape::NoElements(),
                Shape::Nested(vec![]),
                Shape::Nested(vec![Shape::Empty, Shape::Nested(vec![Shape::NoFields {}])]),
                Shape::Boxed { inner: Box::new(Shape::Circle(1e16)), tags: vec![] },
                Shape::Quoted { x: 1 },
            ],
            some: Some("x".into()),
            none: None,
            skipped_none: None,
            kept_some: Some(0),
            skipped_empty: vec![],
            never: 1,
            all_skipped: AllSkipped { a: None, b: 2 },
            integers: (i8::MIN, i16::MIN, i32::MIN, i64::MIN, u8::MAX, u16::MAX, u32::MAX, u64::MAX),
            i128s: [i128::MIN, i128::MAX, 0],
            u128s: [u128::MAX, 1],
            f32s: vec![0.0, -0.0, 1.0, 0.1, 1e16, 1e-7, 16_777_217.0, f32::MAX, f32::MIN_POSITIVE, f32::NAN, f32::INFINITY],
            f64s: [0.0, -0.0, 1.0, 0.1, 1e16, 1e-7, 0.3, 2.0f64.powi(60), f64::EPSILON].into_iter().chain(nan_inf).collect(),
            bytes: Bytes(&[0, 1, 127, 128, 255]),
            no_bytes: Bytes(&[]),
            nested: vec![vec![], vec![IndexMap::new(), IndexMap::from([("z".into(), vec![]), ("a".into(), vec![1, 2])])]],
            by_name: IndexMap::from([("second".into(), Shape::Point(0, 0)), ("first".into(), Shape::Empty)]),
            by_int: BTreeMap::from([(-5, vec![]), (0, vec![1]), (i64::MAX, vec![2, 3])]),
            by_u128: BTreeMap::from([(u128::MAX, ())]),
            by_char: BTreeMap::from([('"', "quote"), ('\u{1}', "ctl"), ('😀', "smile")]),
            by_bool: BTreeMap::from([(false, true), (true, false)]),
            by_unit_variant: BTreeMap::from([(Key::Unit, 1)]),
            by_newtype: BTreeMap::from([(Newtype(3), 3)]),
            by_some: BTreeMap::from([(Some("s"), 1)]),
            unsized_: Unsized(vec![(1, "one"), (2, "two\n")]),
            shown: Shown("a\"b"),
            shown_key: IndexMap::from([(ShownKey("k\t1"), 1), (ShownKey(""), 2)]),
            value: json!({"nested": [{}, [], {"n": [1, -1, 1.5]}]}),
            renamed: -1,
        }
    }

    #[test]
    fn derived_types_come_out_as_serde_json_writes_them() {
        let everything = everything();
        check(&everything);
        check(&vec![everything, self::everything()]);
        check(&Shape::Empty);
        check(&Shape::Point(1, 2));
        check(&Shape::NoFields {});
        check(&UnitStruct);
        check(&Newtype(1));
        check(&Some(Newtype(1)));
        check(&Bytes(b"x"));
        check(&'c');
        check(&u128::MAX);
        check(&i128::MIN);
        check(&f32::NAN);
        check(&-0.0f64);
        check(&1e16f32);
    }

    /// A one-entry map with `key`: keys of any type.
    struct OneEntry<K>(K);

    impl<K: Serialize> Serialize for OneEntry<K> {
        fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_map([(&self.0, 1)])
        }
    }

    #[test]
    fn map_keys_are_written_or_refused_as_serde_json_does() {
        // Written.
        check(&OneEntry("s"));
        check(&OneEntry('"'));
        check(&OneEntry(true));
        check(&OneEntry(-7i8));
        check(&OneEntry(u128::MAX));
        check(&OneEntry(i128::MIN));
        check(&OneEntry(1.5f32));
        check(&OneEntry(0.1f32));
        check(&OneEntry(1e16f64));
        check(&OneEntry(-0.0f64));
        check(&OneEntry(Newtype(4)));
        check(&OneEntry(Some(Some("nested"))));
        check(&OneEntry(Key::Unit));
        check(&OneEntry(ShownKey("shown\u{0}")));
        // Refused, with serde_json's errors.
        check(&OneEntry(()));
        check(&OneEntry(UnitStruct));
        check(&OneEntry(None::<&str>));
        check(&OneEntry(Key::Newtype(1)));
        check(&OneEntry(Bytes(b"b")));
        check(&OneEntry(vec![1]));
        check(&OneEntry((1, 2)));
        check(&OneEntry(TupleStruct(1, "", None)));
        check(&OneEntry(Shape::Point(1, 2)));
        check(&OneEntry(Shape::Rect { w: 1.0, h: 1.0 }));
        check(&OneEntry(BTreeMap::from([(1, 2)])));
        check(&OneEntry(AllSkipped { a: None, b: 0 }));
        check(&OneEntry(f64::NAN));
        check(&OneEntry(f32::INFINITY));
        check(&OneEntry(f64::NEG_INFINITY));
        // A refused key in a derived map, deep in a document.
        check(&json!([{"a": 1}, [BTreeMap::from([(1, 2)])]]));
        check(&(json!([{"a": 1}]), vec![BTreeMap::from([(UnitStruct, 1)])]));
    }

    #[test]
    fn raw_json_is_spliced_into_compact_output_as_it_is() {
        let inner = json!({"a": [1, "x\"y", null], "b": {}});
        let written = serde_json::to_vec(&inner).unwrap();
        #[derive(Serialize)]
        struct Outer<'a> {
            before: &'a str,
            raw: Raw<'a>,
            bytes: &'a [u8],
            after: Vec<Raw<'a>>,
        }
        let outer = Outer { before: "b", raw: Raw(&written), bytes: b"\x01\x02", after: vec![Raw(b"1"), Raw(b"true")] };
        let expected = json!({"before": "b", "raw": inner, "bytes": [1, 2], "after": [1, true]});
        let mut ours = Vec::new();
        to_vec_into(&mut ours, &outer).unwrap();
        assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(&expected).unwrap());
        let mut streamed = Vec::new();
        to_writer(&mut streamed, &outer).unwrap();
        assert_eq!(String::from_utf8(streamed).unwrap(), serde_json::to_string(&expected).unwrap());
        // Pretty output would need the bytes indented: refused, not written wrong.
        assert!(pretty_into(&mut Vec::new(), &outer).is_err());
    }

    #[test]
    fn a_failing_display_is_an_error_not_a_panic() {
        struct Failing;
        impl Display for Failing {
            fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
                Err(fmt::Error)
            }
        }
        struct Collected;
        impl Serialize for Collected {
            fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(&Failing)
            }
        }
        assert!(to_vec_into(&mut Vec::new(), &Collected).is_err());
        assert!(pretty_into(&mut Vec::new(), &Collected).is_err());
    }

    /// A plan-like document of `n` entries, SQL text in each.
    fn big_document(n: usize) -> Value {
        let entries: Vec<Value> = (0..n)
            .map(|i| {
                json!({
                    "unique_id": format!("model.pkg.m{i}"),
                    "statements": [format!("create table \"db\".\"s\".\"m{i}\" as (\n  select \"a\", 'x'\n  from t\n)"), ""],
                    "depends_on": {"nodes": [], "macros": {}},
                    "n": i,
                })
            })
            .collect();
        json!({ "entries": entries })
    }

    /// A writer that keeps what it is given, block by block.
    #[derive(Default)]
    struct Blocks(Vec<Vec<u8>>);

    impl Write for Blocks {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.push(buf.to_vec());
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_streaming_forms_write_the_same_bytes_in_blocks_of_about_64_kib() {
        let document = big_document(5000);
        for pretty in [false, true] {
            let mut whole = Vec::new();
            let mut blocks = Blocks::default();
            if pretty {
                pretty_into(&mut whole, &document).unwrap();
                to_writer_pretty(&mut blocks, &document).unwrap();
            } else {
                to_vec_into(&mut whole, &document).unwrap();
                to_writer(&mut blocks, &document).unwrap();
            }
            assert!(whole.len() > 8 * FLUSH_AT, "{}", whole.len());
            assert!(blocks.0.len() >= 8, "{}", blocks.0.len());
            let (last, full) = blocks.0.split_last().unwrap();
            for block in full {
                assert!((FLUSH_AT..FLUSH_AT + 1024).contains(&block.len()), "{}", block.len());
            }
            assert!(last.len() < FLUSH_AT + 1024);
            assert_eq!(blocks.0.concat(), whole);
        }
        // Through an unsized writer as well.
        let mut out = Vec::new();
        let writer: &mut dyn Write = &mut out;
        to_writer(writer, &document).unwrap();
        assert_eq!(out, serde_json::to_vec(&document).unwrap());
    }

    /// A writer that takes `room` bytes, then fails.
    struct Full {
        room: usize,
    }

    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::other("disk full"));
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failing_writer_is_an_error() {
        let big = big_document(2000);
        let small = json!({"a": [1, 2, 3]});
        for room in [0, 10, 3 * FLUSH_AT + 5] {
            for document in [&big, &small] {
                if room >= serde_json::to_vec(document).unwrap().len() {
                    continue;
                }
                let compact = to_writer(&mut Full { room }, document);
                let pretty = to_writer_pretty(&mut Full { room }, document);
                for result in [compact, pretty] {
                    let error = result.unwrap_err();
                    assert!(error.is_io(), "{error}");
                    assert!(error.to_string().contains("disk full"), "{error}");
                }
            }
        }
    }
}
