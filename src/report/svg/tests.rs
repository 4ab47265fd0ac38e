//! Tests of the SVG ladder: well-formed XML, layout invariants, caps.

use std::process::Command;

use super::*;
use crate::analyze::model::Analysis;
use crate::report::sample;

fn svg(analysis: &Analysis, options: &RenderOptions) -> String {
    let mut out = Vec::new();
    crate::report::render(analysis, crate::report::Format::Svg, options, &mut out).expect("render");
    String::from_utf8(out).expect("utf-8")
}

/// The text content of every `<text>` element, in document order.
fn texts(doc: &roxmltree::Document<'_>) -> Vec<String> {
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or_default().to_owned())
        .collect()
}

fn position(texts: &[String], from: usize, needle: &str) -> usize {
    from + texts[from..]
        .iter()
        .position(|t| t.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not found after text {from}"))
}

#[test]
fn well_formed_with_the_story_in_order() {
    let out = svg(&sample::analysis(), &RenderOptions::default());
    let doc = roxmltree::Document::parse(&out).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    let height: f64 = root
        .attribute("height")
        .expect("height")
        .parse()
        .expect("number");
    let t = texts(&doc);
    let mut i = position(
        &t,
        0,
        "3 connections · 6 exchanges · latency p50 0.210 ms · p99 0.400 ms · max 0.400 ms",
    );
    i = position(&t, i, "Connection 1 · line framing");
    i = position(&t, i, "10.0.0.2:51234");
    i = position(&t, i, "10.0.0.3:2222");
    i = position(&t, i, "SYN");
    i = position(&t, i, "SYN-ACK");
    i = position(&t, i, "RTT 0.045 ms");
    i = position(&t, i, "ACK");
    i = position(&t, i, "\"hello\" (5 B)");
    i = position(&t, i, "+1.000 ms");
    i = position(&t, i, "\"Echo: hello\" (11 B)");
    i = position(&t, i, "0.150 ms");
    i = position(&t, i, "2 requests arrived in one segment");
    i = position(&t, i, "FIN");
    i = position(&t, i, "Connection 2");
    i = position(&t, i, "capture began mid-connection");
    i = position(&t, i, "1,200 B from server not captured");
    i = position(&t, i, "\"x;#<b>\"&%%y\" (11 B)");
    i = position(&t, i, "RST");
    i = position(&t, i, "[2001:db8:85a3::8a2e:370:7334]:50000");
    i = position(&t, i, "no response");
    i = position(&t, i, "still open at end of capture");
    i = position(&t, i, "! packet 17");
    position(&t, i, "Legend");

    // Nothing is drawn outside the canvas.
    for n in doc.descendants().filter(|n| n.is_element()) {
        for attr in ["x", "x1", "x2"] {
            if let Some(v) = n.attribute(attr).and_then(|v| v.parse::<f64>().ok()) {
                assert!((0.0..=WIDTH).contains(&v), "{attr}={v} outside");
            }
        }
        for attr in ["y", "y1", "y2"] {
            if let Some(v) = n.attribute(attr).and_then(|v| v.parse::<f64>().ok()) {
                assert!((0.0..=height).contains(&v), "{attr}={v} outside");
            }
        }
    }
    // Arrows: 3 handshake + 3 requests + 3 responses + 2 FIN (conn 1),
    // 2 + 2 + RST + 2 TCP events (conn 2), 3 handshake + 1 request
    // (conn 3), 6 in the legend.
    let arrows = doc
        .descendants()
        .filter(|n| n.has_tag_name("line") && n.attribute("marker-end").is_some())
        .count();
    assert_eq!(arrows, 11 + 7 + 4 + 6);
}

#[test]
fn labels_stay_between_the_lifelines() {
    let mut a = sample::analysis();
    a.connections[0].exchanges[0].request_preview = "W".repeat(500);
    let out = svg(&a, &RenderOptions::default());
    let doc = roxmltree::Document::parse(&out).expect("well-formed XML");
    for n in doc.descendants().filter(|n| n.has_tag_name("text")) {
        let family = n.attribute("font-family").unwrap_or_default();
        if family != MONO || n.attribute("text-anchor") != Some("middle") {
            continue;
        }
        let x: f64 = n.attribute("x").expect("x").parse().expect("number");
        let size: f64 = n
            .attribute("font-size")
            .expect("size")
            .parse()
            .expect("number");
        let w = n.text().unwrap_or_default().chars().count() as f64 * size * 0.602;
        if (x - (CLIENT_X + SERVER_X) / 2.0).abs() < 1.0 {
            assert!(
                x - w / 2.0 >= CLIENT_X && x + w / 2.0 <= SERVER_X,
                "label too wide: {:?}",
                n.text()
            );
        }
    }
    assert!(out.contains("WWWW…&quot; (5 B)"));
}

#[test]
fn hostile_text_is_escaped() {
    let mut a = sample::analysis();
    a.connections[0].exchanges[0].request_preview = "</text><script>x()</script>\u{1}&amp;".into();
    let out = svg(
        &a,
        &RenderOptions {
            title: Some("a <b> & \"c\"\u{1}".into()),
            ..RenderOptions::default()
        },
    );
    assert!(!out.contains("<script>"));
    let doc = roxmltree::Document::parse(&out).expect("well-formed XML");
    let t = texts(&doc);
    assert!(
        t.iter()
            .any(|s| s.contains("</text><script>x()</script>\\x{1}&amp;"))
    );
    assert_eq!(t[0], "a <b> & \"c\"\u{FFFD}");
}

#[test]
fn caps_and_empty() {
    let out = svg(
        &sample::many_exchanges(200),
        &RenderOptions {
            max_exchanges: Some(20),
            ..RenderOptions::default()
        },
    );
    let doc = roxmltree::Document::parse(&out).expect("well-formed XML");
    let t = texts(&doc);
    assert!(t.iter().any(|s| s.contains("… 180 more exchanges")));
    assert!(t.iter().any(|s| s.contains("1 connection · 200 exchanges")));
    let out = svg(&Analysis::default(), &RenderOptions::default());
    let doc = roxmltree::Document::parse(&out).expect("well-formed XML");
    assert!(
        texts(&doc)
            .iter()
            .any(|s| s == "No TCP connection in the capture.")
    );
}

/// Renders with librsvg, as a student's report tool would.
#[test]
fn rsvg_convert_renders_it() {
    if Command::new("rsvg-convert")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!(
            "SKIP rsvg_convert_renders_it: rsvg-convert not installed (Debian: librsvg2-bin)"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let svg_path = dir.path().join("ladder.svg");
    let png_path = dir.path().join("ladder.png");
    std::fs::write(
        &svg_path,
        svg(&sample::analysis(), &RenderOptions::default()),
    )
    .expect("write svg");
    let status = Command::new("rsvg-convert")
        .arg("-o")
        .arg(&png_path)
        .arg(&svg_path)
        .status()
        .expect("run rsvg-convert");
    assert!(status.success());
    let png = std::fs::read(&png_path).expect("png written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // PNG IHDR: width and height, big-endian, at bytes 16..24.
    let w = u32::from_be_bytes(png[16..20].try_into().expect("4 bytes"));
    let h = u32::from_be_bytes(png[20..24].try_into().expect("4 bytes"));
    assert_eq!(w, WIDTH as u32);
    assert!(h > 600, "three connections make a tall picture, got {h}");
    if let Ok(keep) = std::env::var("REQRESP_KEEP_SVG") {
        std::fs::copy(&svg_path, format!("{keep}.svg")).expect("keep svg");
        std::fs::copy(&png_path, format!("{keep}.png")).expect("keep png");
    }
}
