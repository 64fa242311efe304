//! Helpers shared by gateway integration tests (`mod common;` in the test file).

pub mod quickfix;
