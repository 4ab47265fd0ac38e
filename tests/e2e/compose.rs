//! End-to-end tests of `reqresp compose`.
