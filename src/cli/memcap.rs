//! `--memcap`, shared by `analyze` and `watch`: the analyzer's memory
//! budget for tracked connections (see `analyze::flows::memory`).

use clap::Args;

/// The analyzer's memory budget, as a command-line option.
#[derive(Debug, Clone, Args)]
pub(crate) struct Memcap {
    /// Memory budget for tracked connections and their out-of-order data
    /// (like Suricata's stream.memcap), e.g. 64MiB, 1GiB. Past half of it
    /// idle connections are parked (compressed, taken back exactly at
    /// their next packet); past all of it the connections idle the longest
    /// are evicted: reported with what was seen, state "evicted", and
    /// counted in a warning.
    #[arg(long = "memcap", value_name = "SIZE", value_parser = parse_size, default_value = DEFAULT_MEMCAP)]
    pub bytes: usize,
}

/// The default of `--memcap`: `analyze::flows::DEFAULT_MEMCAP` as written
/// (a test checks that they agree).
const DEFAULT_MEMCAP: &str = "128MiB";

/// A size: a number with an optional unit, `B`, `KiB`, `MiB`, `GiB` (or
/// `K`, `M`, `G`, the same), `KB`, `MB`, `GB` (powers of 1000); at least 1 MiB.
fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: usize = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size: write e.g. 256MiB or 1GiB"))?;
    let unit_bytes: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {s:?}: use B, KiB, MiB or GiB"
            ));
        }
    };
    let bytes = n
        .checked_mul(unit_bytes)
        .ok_or_else(|| format!("{s:?} is too large"))?;
    if bytes < 1 << 20 {
        return Err(format!(
            "{s:?} is too small: the budget must be at least 1MiB"
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn memcap_sizes_are_read_with_their_units() {
        use super::parse_size;
        assert_eq!(
            parse_size(super::DEFAULT_MEMCAP),
            Ok(reqresp::analyze::flows::DEFAULT_MEMCAP)
        );
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("2000000"), Ok(2_000_000));
        assert_eq!(parse_size("5 MB"), Ok(5_000_000));
        assert!(parse_size("12KiB").unwrap_err().contains("at least 1MiB"));
        assert!(
            parse_size("3 parsecs")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(parse_size("MiB").unwrap_err().contains("not a size"));
        assert!(parse_size("99999999999999999999GiB").is_err());
    }
}
