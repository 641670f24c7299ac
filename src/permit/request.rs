//! A citizen's text becomes a [`PermitRequest`], or a [`ParseError`] that knows what hint
//! the reply should carry.

use crate::permit::document::{Document, DocumentKind};

/// What a citizen asked for: a permit of `code` for `document`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermitRequest {
    /// The permit code, e.g. 2 for food, medicine, bank or post.
    pub code: u8,
    /// The identity document the permit is for.
    pub document: Document,
    /// Words after the document (a car plate, a note), kept for the record; empty if none.
    pub extra: String,
}

/// Why a text is not a permit request; each variant maps to a reply with a hint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Placeholder until the parser lands.
    #[error("empty message")]
    Empty,
}

/// Parses texts against the document kinds and codes of one rules snapshot.
#[derive(Debug, Clone)]
pub struct Parser {
    kinds: Vec<DocumentKind>,
    codes: Vec<u8>,
}

impl Parser {
    /// A parser for these document kinds and permit codes.
    pub fn new(kinds: &[DocumentKind], codes: impl IntoIterator<Item = u8>) -> Self {
        Parser {
            kinds: kinds.to_vec(),
            codes: codes.into_iter().collect(),
        }
    }

    /// Parses one text.
    pub fn parse(&self, text: &str) -> Result<PermitRequest, ParseError> {
        let _ = (&self.kinds, &self.codes, text);
        Err(ParseError::Empty)
    }
}
