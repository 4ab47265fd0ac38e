//! End-to-end tests of `reqresp capture`.
