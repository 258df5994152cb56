//! (postgresql: being written.)

use crate::infer::MessageKind;
use crate::{Head, ParseError};

/// Whether the bytes start a postgresql message, and which kind when they tell.
pub fn infer(_payload: &[u8]) -> Option<MessageKind> {
    None
}

/// The head of the postgresql message at the start of `payload`.
pub fn parse(_payload: &[u8], _kind: MessageKind) -> Result<Head<'_>, ParseError> {
    Err(ParseError::Mismatch)
}

/// Whether a whole syscall's bytes end a message of unknown length.
pub fn ends_message(_payload: &[u8], _kind: MessageKind) -> bool {
    false
}
