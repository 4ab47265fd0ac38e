//! End-to-end tests of `reqresp client`.
