//! Durations for people, in one style for every output: the reports and
//! ladders, the client's round-trip times, `reqresp bench` and
//! `reqresp check`.
//!
//! Milliseconds with three decimals (`0.150 ms`, `12.345 ms`) below one
//! second, seconds with three decimals (`12.346 s`) above. One unit down a
//! column or a ladder compares at a glance, and three decimals of a
//! millisecond are the microsecond resolution of the capture timestamps
//! students check against Wireshark. Nothing over TCP answers in under a
//! microsecond, so a finer unit would only add digits.

use std::time::Duration;

/// Formats a duration given in microseconds: `0.150 ms`, `999.999 ms`,
/// `12.346 s`, `4521 s` from 1,000 s on; `n/a` for a value that is not a
/// number.
pub(crate) fn format_micros(us: f64) -> String {
    if !us.is_finite() {
        return "n/a".to_owned();
    }
    let ms = us / 1_000.0;
    // Rounding happens in the format: 999.9996 ms would show as "1000.000 ms".
    if (ms.abs() * 1_000.0).round() < 1_000_000.0 {
        format!("{ms:.3} ms")
    } else if ms.abs() < 1_000_000.0 {
        format!("{:.3} s", ms / 1_000.0)
    } else {
        format!("{:.0} s", ms / 1_000.0)
    }
}

/// Formats a [`Duration`] as [`format_micros`] does: `0.210 ms`, `1.520 s`.
pub(crate) fn format_duration(d: Duration) -> String {
    format_micros(d.as_secs_f64() * 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_unit_below_a_second_then_seconds() {
        assert_eq!(format_micros(150.0), "0.150 ms");
        assert_eq!(format_micros(12.03), "0.012 ms");
        assert_eq!(format_micros(999_999.0), "999.999 ms");
        assert_eq!(format_micros(999_999.6), "1.000 s");
        assert_eq!(format_micros(12_345_678.0), "12.346 s");
        assert_eq!(format_micros(4_521_000_000.0), "4521 s");
        assert_eq!(format_micros(-150.0), "-0.150 ms");
        assert_eq!(format_micros(f64::NAN), "n/a");
        assert_eq!(format_duration(Duration::from_micros(210)), "0.210 ms");
        assert_eq!(format_duration(Duration::from_millis(1520)), "1.520 s");
    }
}
