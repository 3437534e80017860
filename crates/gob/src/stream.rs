//! Reading gob values from an async byte stream.

use tokio::io::AsyncRead;

use super::decode::{Decoder, Limits};
use super::error::{Error, Result};
use super::value::Value;
use super::wire::read_message;

/// A [`Decoder`] fed from an async reader.
#[derive(Debug)]
pub struct StreamDecoder<R> {
    reader: R,
    decoder: Decoder,
}

impl<R: AsyncRead + Unpin> StreamDecoder<R> {
    /// Reads from `reader` with the default limits.
    pub fn new(reader: R) -> Self {
        Self::with_limits(reader, Limits::default())
    }

    /// Reads from `reader` with the given limits.
    pub fn with_limits(reader: R, limits: Limits) -> Self {
        StreamDecoder {
            reader,
            decoder: Decoder::with_limits(limits),
        }
    }

    /// The next value; `Ok(None)` when the stream ends cleanly between values.
    pub async fn next(&mut self) -> Result<Option<Value>> {
        loop {
            if let Some(v) = self.decoder.next_value()? {
                return Ok(Some(v));
            }
            let max = self.decoder.limits().max_message;
            match read_message(&mut self.reader, max).await? {
                Some(body) => self.decoder.push_message(body)?,
                None if self.decoder.has_pending() => return Err(Error::UnexpectedEnd),
                None => return Ok(None),
            }
        }
    }
}
