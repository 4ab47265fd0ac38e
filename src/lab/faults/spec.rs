//! The `--fault` language: `loss=15%,delay=50ms±10ms,partition=2s@1s`.
//!
//! A pure parser, no I/O: a comma-separated list of `name=value`, each name
//! at most once. Every error names the piece that is wrong and shows the
//! form that works.

use std::fmt;
use std::time::Duration;

/// Longest delay, jitter or partition accepted: longer ones would only make
/// a lab run hang for no lesson.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(60);

/// A composed fault, as given to `--fault`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FaultSpec {
    /// Random loss in each direction, as a fraction (0.15 for 15%).
    pub loss: Option<f64>,
    /// Delay in each direction, with its jitter.
    pub delay: Option<Delay>,
    /// Every packet between the hosts dropped for a while.
    pub partition: Option<Partition>,
}

/// A delay of `base` ± `jitter` (uniform), each direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delay {
    /// Mean delay.
    pub base: Duration,
    /// Half the spread: each packet waits between `base - jitter` and `base + jitter`.
    pub jitter: Duration,
}

/// All traffic dropped from `start` (after the client starts) for `length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// How long the hosts cannot reach each other.
    pub length: Duration,
    /// When it begins, counted from the client's start.
    pub start: Duration,
}

/// Why a `--fault` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultSpecError {
    /// Nothing given.
    #[error("--fault is empty; give e.g. loss=15%,delay=50ms±10ms,partition=2s@1s")]
    Empty,
    /// A piece without `=`.
    #[error("`{0}` has no `=`; each fault is name=value, e.g. loss=15%")]
    NoValue(String),
    /// A name that is not a fault.
    #[error("unknown fault `{0}`; the faults are loss, delay and partition")]
    UnknownName(String),
    /// A name given twice.
    #[error("`{0}` is given twice; give each fault once")]
    Twice(String),
    /// A loss that is not a percentage from 0 to 100.
    #[error("loss `{0}` is not a percentage from 0% to 100% (e.g. loss=15%)")]
    BadLoss(String),
    /// A duration that cannot be read.
    #[error("`{0}` is not a duration; write e.g. 50ms, 1.5s or 0")]
    BadDuration(String),
    /// A duration over `MAX_DURATION`.
    #[error("`{0}` is longer than the 60 s a lab fault may last")]
    TooLong(String),
    /// Jitter larger than the delay.
    #[error(
        "jitter {jitter} is larger than the delay {base}; a packet cannot leave before it was sent"
    )]
    JitterOverDelay {
        /// The delay as written.
        base: String,
        /// The jitter as written.
        jitter: String,
    },
    /// A partition without `@start`, or of zero length.
    #[error("partition `{0}` must be LENGTH@START with a length over 0, e.g. partition=2s@1s")]
    BadPartition(String),
}

/// Reads a duration: `300ms`, `1.5s`, `2s`, `250us`, or `0`.
pub fn parse_duration(text: &str) -> Result<Duration, FaultSpecError> {
    let t = text.trim();
    let bad = || FaultSpecError::BadDuration(text.to_string());
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    let (number, unit) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix("us").or_else(|| t.strip_suffix("µs")) {
        (n, 1e-6)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else {
        return Err(bad());
    };
    let value: f64 = number.trim().parse().map_err(|_| bad())?;
    if !value.is_finite() || value < 0.0 {
        return Err(bad());
    }
    let secs = value * unit;
    if secs > MAX_DURATION.as_secs_f64() {
        return Err(FaultSpecError::TooLong(text.to_string()));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_loss(text: &str) -> Result<f64, FaultSpecError> {
    let bad = || FaultSpecError::BadLoss(text.to_string());
    let number = text.trim().strip_suffix('%').ok_or_else(bad)?;
    let percent: f64 = number.trim().parse().map_err(|_| bad())?;
    if !(0.0..=100.0).contains(&percent) {
        return Err(bad());
    }
    Ok(percent / 100.0)
}

fn parse_delay(text: &str) -> Result<Delay, FaultSpecError> {
    // `±` is the natural form; `+-` and `~` are accepted for keyboards without it.
    let (base_text, jitter_text) = match text
        .split_once('±')
        .or_else(|| text.split_once("+-"))
        .or_else(|| text.split_once('~'))
    {
        Some((b, j)) => (b, Some(j)),
        None => (text, None),
    };
    let base = parse_duration(base_text)?;
    let jitter = jitter_text
        .map(parse_duration)
        .transpose()?
        .unwrap_or_default();
    if jitter > base {
        return Err(FaultSpecError::JitterOverDelay {
            base: base_text.trim().to_string(),
            jitter: jitter_text.unwrap_or_default().trim().to_string(),
        });
    }
    Ok(Delay { base, jitter })
}

fn parse_partition(text: &str) -> Result<Partition, FaultSpecError> {
    let (length, start) = text
        .split_once('@')
        .ok_or_else(|| FaultSpecError::BadPartition(text.to_string()))?;
    let length = parse_duration(length)?;
    if length.is_zero() {
        return Err(FaultSpecError::BadPartition(text.to_string()));
    }
    Ok(Partition {
        length,
        start: parse_duration(start)?,
    })
}

impl std::str::FromStr for FaultSpec {
    type Err = FaultSpecError;

    fn from_str(text: &str) -> Result<FaultSpec, FaultSpecError> {
        let mut spec = FaultSpec::default();
        let mut any = false;
        for piece in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            any = true;
            let (name, value) = piece
                .split_once('=')
                .ok_or_else(|| FaultSpecError::NoValue(piece.to_string()))?;
            let name = name.trim().to_ascii_lowercase();
            let twice = || FaultSpecError::Twice(name.clone());
            match name.as_str() {
                "loss" if spec.loss.is_some() => return Err(twice()),
                "loss" => spec.loss = Some(parse_loss(value)?),
                "delay" if spec.delay.is_some() => return Err(twice()),
                "delay" => spec.delay = Some(parse_delay(value)?),
                "partition" if spec.partition.is_some() => return Err(twice()),
                "partition" => spec.partition = Some(parse_partition(value)?),
                _ => return Err(FaultSpecError::UnknownName(name)),
            }
        }
        if !any {
            return Err(FaultSpecError::Empty);
        }
        Ok(spec)
    }
}

/// A duration as the user wrote it: `50ms`, `1.5s`.
pub(crate) fn show(d: Duration) -> String {
    if d.is_zero() {
        "0".into()
    } else if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) && d.as_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(loss) = self.loss {
            parts.push(format!("loss={}%", loss * 100.0));
        }
        if let Some(d) = self.delay {
            if d.jitter.is_zero() {
                parts.push(format!("delay={}", show(d.base)));
            } else {
                parts.push(format!("delay={}±{}", show(d.base), show(d.jitter)));
            }
        }
        if let Some(p) = self.partition {
            parts.push(format!("partition={}@{}", show(p.length), show(p.start)));
        }
        if parts.is_empty() {
            return f.write_str("none");
        }
        f.write_str(&parts.join(","))
    }
}

impl FaultSpec {
    /// True when no fault is asked for.
    pub fn is_empty(&self) -> bool {
        self.loss.is_none() && self.delay.is_none() && self.partition.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_example_of_the_help_parses() {
        let spec: FaultSpec = "loss=15%,delay=50ms±10ms,partition=2s@1s".parse().unwrap();
        assert_eq!(spec.loss, Some(0.15));
        assert_eq!(
            spec.delay,
            Some(Delay {
                base: ms(50),
                jitter: ms(10)
            })
        );
        assert_eq!(
            spec.partition,
            Some(Partition {
                length: ms(2000),
                start: ms(1000)
            })
        );
        assert_eq!(spec.to_string(), "loss=15%,delay=50ms±10ms,partition=2s@1s");
    }

    #[test]
    fn ascii_jitter_and_spaces_are_accepted() {
        let spec: FaultSpec = " delay = 1.5s+-250ms , loss=0.5% ".parse().unwrap();
        assert_eq!(spec.delay.unwrap().base, ms(1500));
        assert_eq!(spec.delay.unwrap().jitter, ms(250));
        assert_eq!(spec.loss, Some(0.005));
    }

    #[test]
    fn bad_input_gets_an_error_that_names_it() {
        let cases = [
            ("", "empty"),
            ("loss", "has no `=`"),
            ("lose=5%", "unknown fault `lose`"),
            ("loss=5", "not a percentage"),
            ("loss=150%", "not a percentage"),
            ("loss=-1%", "not a percentage"),
            ("loss=1%,loss=2%", "twice"),
            ("delay=50", "not a duration"),
            ("delay=fast", "not a duration"),
            ("delay=10ms±50ms", "larger than the delay"),
            ("delay=NaNs", "not a duration"),
            ("delay=1e30s", "longer than"),
            ("partition=2s", "LENGTH@START"),
            ("partition=0@1s", "LENGTH@START"),
            ("partition=2s@soon", "not a duration"),
        ];
        for (input, expected) in cases {
            let err = input.parse::<FaultSpec>().unwrap_err().to_string();
            assert!(err.contains(expected), "{input:?}: {err}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("300ms").unwrap(), ms(300));
        assert_eq!(parse_duration("250us").unwrap(), Duration::from_micros(250));
        assert_eq!(parse_duration("2s").unwrap(), ms(2000));
        assert!(parse_duration("61s").is_err());
        assert_eq!(show(ms(50)), "50ms");
        assert_eq!(show(ms(1500)), "1.5s");
    }

    #[test]
    fn arbitrary_text_never_panics() {
        for input in [
            "=",
            ",,,",
            "loss=%",
            "delay=±",
            "partition=@",
            "delay=ms",
            "ß=ü",
            "loss=1e400%",
        ] {
            let _ = input.parse::<FaultSpec>();
        }
    }
}
