//! The one list of warnings of an analysis, reader's and analyzer's alike:
//! the first [`MAX_WARNINGS`] are kept, the rest only counted, and the
//! report ends the list with one line saying how many were not shown.

use std::ops::Deref;

/// Warnings kept; later ones are only counted.
pub(crate) const MAX_WARNINGS: usize = 100;

/// Warnings, the first [`MAX_WARNINGS`] kept in order, every one counted.
/// Reads as the slice of those kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Warnings {
    kept: Vec<String>,
    total: u64,
}

impl Warnings {
    /// Adds a warning (kept if there is room, counted anyway).
    pub fn push(&mut self, warning: String) {
        self.total += 1;
        if self.kept.len() < MAX_WARNINGS {
            self.kept.push(warning);
        }
    }

    /// How many warnings there were in all, kept or not.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Adds `other`'s warnings after these, under the same cap.
    pub fn extend(&mut self, other: Warnings) {
        let dropped = other.total - other.kept.len() as u64;
        for warning in other.kept {
            self.push(warning);
        }
        self.total += dropped;
    }

    /// The warnings kept, with a last line counting those that were not.
    pub fn into_lines(self) -> Vec<String> {
        let mut lines = self.kept;
        let dropped = self.total - lines.len() as u64;
        if dropped > 0 {
            lines.push(format!("... and {dropped} more warnings not shown"));
        }
        lines
    }
}

impl Deref for Warnings {
    type Target = [String];

    fn deref(&self) -> &[String] {
        &self.kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some(n: usize, what: &str) -> Warnings {
        let mut w = Warnings::default();
        for i in 0..n {
            w.push(format!("{what} {i}"));
        }
        w
    }

    #[test]
    fn one_cap_and_one_line_for_the_rest_across_joined_lists() {
        let mut analyzer = some(80, "analyzer");
        analyzer.extend(some(150, "reader"));
        assert_eq!(analyzer.len(), MAX_WARNINGS);
        assert_eq!(analyzer.total(), 230);
        assert_eq!(analyzer[79], "analyzer 79");
        assert_eq!(analyzer[80], "reader 0");
        let lines = analyzer.into_lines();
        assert_eq!(lines.len(), MAX_WARNINGS + 1);
        assert_eq!(lines[MAX_WARNINGS], "... and 130 more warnings not shown");
        assert_eq!(
            some(3, "x").into_lines().len(),
            3,
            "no line when none dropped"
        );
    }
}
