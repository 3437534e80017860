//! Gob's primitive encodings (unsigned and signed integers, floats) and message framing:
//! every message on a stream is a byte count (gob uint) followed by that many bytes.

use tokio::io::{AsyncRead, AsyncReadExt};

use super::error::{Error, Result, malformed};

/// Appends a gob unsigned integer: one byte below 128, else the negated byte count and the
/// value big-endian without leading zeros.
pub fn put_uint(out: &mut Vec<u8>, x: u64) {
    if x < 0x80 {
        out.push(x as u8);
        return;
    }
    let bytes = x.to_be_bytes();
    let skip = (x.leading_zeros() / 8) as usize;
    let n = 8 - skip;
    out.push((256 - n) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

/// Appends a gob signed integer (zig-zag: sign in the lowest bit).
pub fn put_int(out: &mut Vec<u8>, i: i64) {
    let u = if i < 0 {
        ((!i as u64) << 1) | 1
    } else {
        (i as u64) << 1
    };
    put_uint(out, u);
}

/// Appends a gob float: the IEEE bits byte-reversed, as an unsigned integer.
pub fn put_float(out: &mut Vec<u8>, f: f64) {
    put_uint(out, f.to_bits().swap_bytes());
}

/// Appends a length-prefixed byte string.
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_uint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Appends one framed message (count + body).
pub fn put_message(out: &mut Vec<u8>, body: &[u8]) {
    put_uint(out, body.len() as u64);
    out.extend_from_slice(body);
}

/// Reads primitives from one message body.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts at the beginning of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Reads one byte.
    pub fn byte(&mut self) -> Result<u8> {
        let b = *self.buf.get(self.pos).ok_or(Error::UnexpectedEnd)?;
        self.pos += 1;
        Ok(b)
    }

    /// Reads an unsigned integer.
    pub fn uint(&mut self) -> Result<u64> {
        let b = self.byte()?;
        if b < 0x80 {
            return Ok(b as u64);
        }
        let n = 256 - b as usize;
        if n > 8 {
            return malformed(format!(
                "encoded unsigned integer out of range (length byte {b:#x})"
            ));
        }
        let bytes = self.take(n)?;
        Ok(bytes.iter().fold(0u64, |acc, &b| (acc << 8) | b as u64))
    }

    /// Reads a signed integer.
    pub fn int(&mut self) -> Result<i64> {
        let u = self.uint()?;
        Ok(if u & 1 == 1 {
            !((u >> 1) as i64)
        } else {
            (u >> 1) as i64
        })
    }

    /// Reads a float.
    pub fn float(&mut self) -> Result<f64> {
        Ok(f64::from_bits(self.uint()?.swap_bytes()))
    }

    /// Reads a length that must fit in what is left of the message, counting `unit` bytes
    /// as the least each counted item occupies.
    pub fn count(&mut self, unit: usize) -> Result<usize> {
        let n = self.uint()?;
        let left = self.remaining() as u64;
        if n.saturating_mul(unit as u64) > left {
            return malformed(format!(
                "length {n} exceeds the {left} bytes left in the message"
            ));
        }
        Ok(n as usize)
    }

    /// Reads a length-prefixed byte string.
    pub fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.count(1)?;
        self.take(n)
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(Error::UnexpectedEnd);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
}

/// Reads the next message body from a stream. `Ok(None)` at a clean end of stream (before any
/// byte of a message); a length above `max` is refused before anything is allocated.
pub async fn read_message<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> Result<Option<Vec<u8>>> {
    let mut first = [0u8; 1];
    if r.read(&mut first).await? == 0 {
        return Ok(None);
    }
    let len = if first[0] < 0x80 {
        first[0] as u64
    } else {
        let n = 256 - first[0] as usize;
        if n > 8 {
            return malformed(format!("message length byte {:#x} out of range", first[0]));
        }
        let mut b = [0u8; 8];
        r.read_exact(&mut b[..n]).await?;
        b[..n].iter().fold(0u64, |acc, &x| (acc << 8) | x as u64)
    };
    if len > max as u64 {
        return Err(Error::MessageTooBig(len, max));
    }
    let mut body = vec![0u8; len as usize];
    r.read_exact(&mut body).await?;
    Ok(Some(body))
}

/// Splits a byte buffer into message bodies (for fixtures and tests). Trailing bytes that do
/// not form a whole message are an error.
pub fn split_messages(mut data: &[u8], max: usize) -> Result<Vec<&[u8]>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let mut r = Reader::new(data);
        let len = r.uint()?;
        if len > max as u64 {
            return Err(Error::MessageTooBig(len, max));
        }
        let start = data.len() - r.remaining();
        let body = r.take(len as usize)?;
        out.push(body);
        data = &data[start + len as usize..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_match_go() {
        let cases: &[(u64, &[u8])] = &[
            (5, &[0x05]),
            (130, &[0xff, 0x82]),
            (693, &[0xfe, 0x02, 0xb5]),
            (1552, &[0xfe, 0x06, 0x10]),
            (
                u64::MAX,
                &[0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            ),
        ];
        for (v, bytes) in cases {
            let mut out = Vec::new();
            put_uint(&mut out, *v);
            assert_eq!(&out, bytes);
            assert_eq!(Reader::new(bytes).uint().unwrap(), *v);
        }
        for (i, bytes) in [
            (1i64, vec![0x02]),
            (8, vec![0x10]),
            (65, vec![0xff, 0x82]),
            (-65, vec![0xff, 0x81]),
            (-66, vec![0xff, 0x83]),
        ] {
            let mut out = Vec::new();
            put_int(&mut out, i);
            assert_eq!(out, bytes);
            assert_eq!(Reader::new(&bytes).int().unwrap(), i);
        }
        for i in [i64::MIN, i64::MAX, 0, -1] {
            let mut out = Vec::new();
            put_int(&mut out, i);
            assert_eq!(Reader::new(&out).int().unwrap(), i);
        }
        let mut out = Vec::new();
        put_float(&mut out, 17.5);
        assert_eq!(Reader::new(&out).float().unwrap(), 17.5);
    }

    #[test]
    fn bad_lengths_are_errors() {
        assert!(
            Reader::new(&[0xf7, 1, 2, 3, 4, 5, 6, 7, 8, 9])
                .uint()
                .is_err()
        );
        assert!(matches!(
            Reader::new(&[0xfe, 0x01]).uint(),
            Err(Error::UnexpectedEnd)
        ));
        // a byte string claiming 2^60 bytes
        assert!(
            Reader::new(&[0xf8, 0x10, 0, 0, 0, 0, 0, 0, 0, b'x'])
                .bytes()
                .is_err()
        );
        assert!(split_messages(&[0xf8, 0x10, 0, 0, 0, 0, 0, 0, 0], 1 << 20).is_err());
    }

    #[tokio::test]
    async fn huge_message_length_is_refused_without_allocating() {
        let data: &[u8] = &[0xf8, 0x10, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3];
        let mut r = data;
        assert!(matches!(
            read_message(&mut r, 1 << 20).await,
            Err(Error::MessageTooBig(..))
        ));
        let mut r: &[u8] = &[];
        assert!(read_message(&mut r, 10).await.unwrap().is_none());
        let mut r: &[u8] = &[3, 1, 2];
        assert!(read_message(&mut r, 10).await.is_err(), "truncated body");
    }
}
