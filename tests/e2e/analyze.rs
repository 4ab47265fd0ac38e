//! End-to-end tests of `reqresp analyze`.
