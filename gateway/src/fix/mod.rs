//! FIX 4.4 tag=value order entry: framing, zero-copy parsing, the data dictionary
//! (`gateway/fix/FIX44-sable.xml`, QuickFIX format) and validation, message writing, the session
//! layer and the conversion to and from engine commands and reports.

pub(crate) mod convert;
pub mod dictionary;
pub mod frame;
pub mod message;
pub mod queue;
pub mod session;
pub(crate) mod sessions;
pub mod tags;
pub mod writer;
