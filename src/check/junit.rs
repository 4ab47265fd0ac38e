//! The `junit` report for CI systems: one `<testsuite>` whose
//! `<testcase>`s are the cases. A failed case has a `<failure>` with the
//! reason as its message and the rule and client-side ladder as its text;
//! a skipped case has `<skipped>`; a warn passes with the reason in
//! `<system-out>` (with `--strict` it is a failure).
//!
//! Written by hand: the format is a few elements, and the only subtlety is
//! escaping, including the control characters XML 1.0 cannot carry.

use std::fmt::Write as _;

use super::runner::LADDER_CONNECTIONS;
use super::trace;
use super::{CheckReport, Lang, Outcome};

/// `text` escaped for XML: markup characters as entities, characters XML
/// 1.0 does not allow (most C0 controls) as `\u{..}`.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// The report as JUnit XML.
pub fn render(report: &CheckReport, lang: Lang) -> String {
    let counts = report.counts();
    let suite = escape(&format!("reqresp check {}", report.target));
    let mut out = String::new();
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"reqresp check\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\">",
        report.cases.len(),
        counts.fail,
        counts.skip,
        report.duration.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{suite}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\">",
        report.cases.len(),
        counts.fail,
        counts.skip,
        report.duration.as_secs_f64()
    );
    let _ = writeln!(out, "    <properties>");
    for (name, value) in [
        ("server", report.server.to_string()),
        ("framing", report.framing.to_string()),
        ("service", report.service_name().to_string()),
        ("strict", report.strict.to_string()),
    ] {
        let _ = writeln!(
            out,
            "      <property name=\"{name}\" value=\"{}\"/>",
            escape(&value)
        );
    }
    let _ = writeln!(out, "    </properties>");
    for c in &report.cases {
        let _ = write!(
            out,
            "    <testcase name=\"{}\" classname=\"reqresp.check\" time=\"{:.3}\"",
            escape(c.case.name()),
            c.duration.as_secs_f64()
        );
        match c.outcome {
            Outcome::Pass => {
                let _ = writeln!(out, "/>");
            }
            Outcome::Skip => {
                let _ = writeln!(out, ">");
                let _ = writeln!(out, "      <skipped message=\"{}\"/>", escape(&c.reason));
                let _ = writeln!(out, "    </testcase>");
            }
            Outcome::Warn => {
                let _ = writeln!(out, ">");
                let _ = writeln!(
                    out,
                    "      <system-out>{}</system-out>",
                    escape(&format!("warn: {}", c.reason))
                );
                let _ = writeln!(out, "    </testcase>");
            }
            Outcome::Fail => {
                let _ = writeln!(out, ">");
                let mut body = format!("{}\n\n{}\n", c.case.rule(lang), c.reason);
                if !c.traces.is_empty() {
                    body.push('\n');
                    body.push_str(&trace::ladder(
                        &c.traces,
                        &report.server.to_string(),
                        LADDER_CONNECTIONS,
                    ));
                }
                if let Some(file) = c.capture.as_ref().and_then(|k| k.file.as_ref()) {
                    let _ = writeln!(body, "\ncapture: {}", file.display());
                }
                let _ = writeln!(
                    out,
                    "      <failure message=\"{}\" type=\"{}\">{}</failure>",
                    escape(&c.reason),
                    if c.strict_failure {
                        "warn-strict"
                    } else {
                        "fail"
                    },
                    escape(&body)
                );
                let _ = writeln!(out, "    </testcase>");
            }
        }
    }
    let _ = writeln!(out, "  </testsuite>");
    let _ = writeln!(out, "</testsuites>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_controls() {
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
        assert_eq!(escape("x\u{0}y\u{1b}"), "x\\u{0}y\\u{1b}");
        assert_eq!(escape("tab\tnl\n"), "tab\tnl\n");
    }

    #[test]
    fn parses_as_xml_with_the_cases() {
        let report = crate::check::text::tests::sample();
        let xml = render(&report, Lang::En);
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let suite = doc
            .descendants()
            .find(|n| n.has_tag_name("testsuite"))
            .unwrap();
        assert_eq!(suite.attribute("tests"), Some("4"));
        assert_eq!(suite.attribute("failures"), Some("1"));
        assert_eq!(suite.attribute("skipped"), Some("1"));
        let cases: Vec<_> = suite
            .children()
            .filter(|n| n.has_tag_name("testcase"))
            .collect();
        assert_eq!(cases.len(), 4);
        let failure = cases[1]
            .children()
            .find(|n| n.has_tag_name("failure"))
            .unwrap();
        assert_eq!(
            failure.attribute("message"),
            Some("3 messages sent in one write got one answer <&> \"quoted\"")
        );
        assert!(failure.text().unwrap().contains("write 27 B"));
        assert!(cases[3].children().any(|n| n.has_tag_name("skipped")));
        assert!(cases[2].children().any(|n| n.has_tag_name("system-out")));
    }
}
