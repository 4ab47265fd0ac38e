//! End-to-end tests of `reqresp lab`.
