//! End-to-end tests of `reqresp server`.
