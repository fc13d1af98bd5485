//! Errors of the event input layer. Every variant names the input and, where it applies, the
//! byte offset and what was expected there, so a user can open the file at that place.

use std::io;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The bytes at `offset` are not what the format requires.
    #[error("{input}: at byte {offset}: {what}")]
    Malformed { input: String, offset: u64, what: String },

    /// The input ended inside a header or a packet.
    #[error("{input}: truncated at byte {offset}: expected {expected}")]
    Truncated { input: String, offset: u64, expected: String },

    /// A length read from the input is beyond what we accept.
    #[error("{input}: at byte {offset}: {what} is {value} bytes, over the limit of {limit}")]
    TooLarge { input: String, offset: u64, what: &'static str, value: u64, limit: u64 },

    #[error("{input}: unrecognised event format (first bytes {head:?}); expected one of: {expected}")]
    UnknownFormat { input: String, head: String, expected: &'static str },

    #[error("{input}: no stream {wanted}; the streams are: {available}")]
    UnknownStream { input: String, wanted: String, available: String },

    #[error("{input}: {what}")]
    Unsupported { input: String, what: String },

    // The message carries the OS error, so it is not also a `source` (anyhow's `{:#}` would
    // print it twice).
    #[error("{input}: at byte {offset}: {err}")]
    Io { input: String, offset: u64, err: io::Error },
}

/// A cursor's view of where we are in an input: carried by every decoder so that each error can
/// say which input and which byte.
#[derive(Debug, Clone)]
pub struct Place {
    pub input: String,
    pub offset: u64,
}

impl Place {
    pub fn new(input: impl Into<String>) -> Self {
        Place { input: input.into(), offset: 0 }
    }

    pub fn malformed(&self, what: impl Into<String>) -> EventError {
        self.malformed_at(self.offset, what)
    }

    pub fn malformed_at(&self, offset: u64, what: impl Into<String>) -> EventError {
        EventError::Malformed { input: self.input.clone(), offset, what: what.into() }
    }

    pub fn truncated(&self, expected: impl Into<String>) -> EventError {
        EventError::Truncated { input: self.input.clone(), offset: self.offset, expected: expected.into() }
    }

    pub fn too_large(&self, what: &'static str, value: u64, limit: u64) -> EventError {
        EventError::TooLarge { input: self.input.clone(), offset: self.offset, what, value, limit }
    }

    pub fn io(&self, err: io::Error) -> EventError {
        EventError::Io { input: self.input.clone(), offset: self.offset, err }
    }

    pub fn unsupported(&self, what: impl Into<String>) -> EventError {
        EventError::Unsupported { input: self.input.clone(), what: what.into() }
    }
}
