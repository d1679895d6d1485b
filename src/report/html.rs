//! The HTML report: one self-contained page (inline CSS, no script, nothing fetched), to be read in
//! one pass. On top, the run: when, which pushbench, against which target with which declared
//! profile, capabilities and timers. Then the table of verdicts by requirement id, each id with
//! the standard statements it checks (from the conformance map, `features/COVERAGE.md`, folded in
//! a `<details>`), then one section
//! per scenario, failures first, with its Gherkin steps, its verdict and why, and its timeline as
//! an inline SVG sequence diagram (hover an arrow for the raw message; the raw messages are also
//! listed under it). What the timeline recorded after the verdict was known is greyed and labelled
//! teardown: it is the bench tearing the parties down, not the gateway misbehaving.

use super::{xml_escape as esc, RunReport, ScenarioResult, StepStatus};
use crate::coverage::CoverageMap;
use crate::expected::Outcome;
use std::fmt::Write as _;
use timeline::{Direction, Event};

const STYLE: &str = "
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}
.o{display:inline-block;padding:0 .4em;border-radius:3px;color:#fff;font-weight:bold;font-size:.9em}
.pass{background:#2a7d2a}.fail,.xpass{background:#c0392b}.xfail{background:#8e6c1f}
.inconclusive{background:#d68910}.not-applicable,.not-run{background:#7f8c8d}
dl.run{display:grid;grid-template-columns:max-content auto;gap:.1em 1em}dl.run dt{font-weight:bold}dl.run dd{margin:0}
section{border-top:2px solid #ddd;margin-top:1.5em;padding-top:.5em}
ol.steps li.passed{color:#2a7d2a}ol.steps li.failed{color:#c0392b;font-weight:bold}
ol.steps li.inconclusive,ol.steps li.undefined{color:#d68910;font-weight:bold}ol.steps li.not-run{color:#999}
pre{background:#f6f6f6;padding:.5em;overflow-x:auto;white-space:pre-wrap}
td details ul{margin:.2em 0;padding-left:1.2em}td details li{max-width:60em}
svg text{font-family:monospace;font-size:12px}
";

/// The whole page, with the statements of the conformance map the binary carries.
pub fn render(report: &RunReport) -> String {
    render_with(report, crate::coverage::embedded())
}

/// The whole page; `coverage` gives each requirement id the statements it checks.
pub fn render_with(report: &RunReport, coverage: Option<&CoverageMap>) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>pushbench: {}</title><style>{STYLE}</style></head><body>\n",
        esc(&report.target)
    );
    let t = report.totals();
    let _ = writeln!(out, "<h1>pushbench against {}</h1>", esc(&report.target));
    header(&mut out, report);
    let _ = writeln!(
        out,
        "<p>{} scenarios in {:.2} s: {} pass, {} fail, {} xfail, {} xpass, {} inconclusive, {} not-applicable{}. Overall: {}</p>",
        t.total(),
        report.duration.as_secs_f64(),
        t.pass,
        t.fail,
        t.xfail,
        t.xpass,
        t.inconclusive,
        t.not_applicable,
        if t.not_run > 0 {
            format!(", {} not run", t.not_run)
        } else {
            String::new()
        },
        badge(if report.passed() { Outcome::Pass } else { Outcome::Fail })
    );
    if let Some(sig) = report.interrupted {
        let _ = writeln!(
            out,
            "<p><b>The run was interrupted by {}:</b> the scenarios that had not finished are not run.</p>",
            sig.name()
        );
    }
    if let Some(down) = &report.gateway_down {
        let _ = writeln!(out, "<p><b>The gateway {}.</b></p>", esc(down));
    }
    out.push_str("<h2>By requirement</h2>\n<table><tr><th>requirement</th><th>pass</th><th>fail</th><th>xfail</th><th>xpass</th><th>inconclusive</th><th>n/a</th><th>not run</th><th>scenarios</th><th>standard statements</th></tr>\n");
    for (id, row) in report.by_requirement() {
        let c = &row.counts;
        let links: Vec<String> = report
            .scenarios
            .iter()
            .enumerate()
            .filter(|(_, s)| s.info.requirements.contains(&id))
            .map(|(i, s)| {
                format!(
                    "<a href=\"#s{i}\">{}</a> {}",
                    esc(&s.info.name),
                    badge(s.outcome)
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&id),
            c.pass,
            c.fail,
            c.xfail,
            c.xpass,
            c.inconclusive,
            c.not_applicable,
            c.not_run,
            links.join("<br>"),
            statements_cell(coverage, &id)
        );
    }
    out.push_str("</table>\n");
    for c in &report.commands {
        let _ = writeln!(
            out,
            "<h3>command {}: <code>{}</code> ({})</h3><pre>{}{}</pre>",
            esc(&c.which),
            esc(&c.run),
            if c.timed_out {
                "timed out".to_owned()
            } else {
                format!("exit {:?}, {:.2} s", c.exit_code, c.took.as_secs_f64())
            },
            esc(&c.stdout),
            esc(&c.stderr)
        );
    }
    for w in &report.warnings {
        let _ = writeln!(out, "<p><b>warning:</b> {}</p>", esc(w));
    }
    // Failures first; each keeps its index as its anchor, which the table links to.
    let mut order: Vec<(usize, &ScenarioResult)> = report.scenarios.iter().enumerate().collect();
    let first = report.failures_first();
    order.sort_by_key(|(_, s)| first.iter().position(|f| std::ptr::eq(*f, *s)));
    for (i, s) in order {
        scenario(&mut out, i, s);
    }
    out.push_str("</body></html>\n");
    out
}

/// What the conformance map says of a requirement id: the statements it checks, folded, or why
/// it checks none.
fn statements_cell(coverage: Option<&CoverageMap>, id: &str) -> String {
    let Some(map) = coverage else {
        return String::new();
    };
    let checked = map.statements_checked_by(id);
    if checked.is_empty() {
        return match map.unmapped_reason(id) {
            Some(why) => format!("<small>no standard statement: {}</small>", esc(why)),
            None => "<small>not in the coverage map</small>".into(),
        };
    }
    let items: Vec<String> = checked
        .iter()
        .map(|s| {
            // A partly covered statement says what its scenarios leave unchecked.
            let missing = if s.status == crate::coverage::Status::Partly {
                format!("<br><small>{}</small>", esc(&s.note.replace('`', "")))
            } else {
                String::new()
            };
            format!(
                "<li><code>{}</code> {} §{} {} ({}): {}{missing}</li>",
                esc(&s.id),
                esc(&s.document),
                esc(&s.section),
                s.keyword.as_str(),
                s.status,
                esc(&s.text.replace('`', ""))
            )
        })
        .collect();
    let partly = checked
        .iter()
        .filter(|s| s.status == crate::coverage::Status::Partly)
        .count();
    format!(
        "<details><summary>{} statement{}{}</summary><ul>{}</ul></details>",
        checked.len(),
        if checked.len() == 1 { "" } else { "s" },
        if partly > 0 {
            format!(" ({partly} partly)")
        } else {
            String::new()
        },
        items.concat()
    )
}

/// The run's header: when, which pushbench, the target and what it declares.
fn header(out: &mut String, report: &RunReport) {
    let h = &report.header;
    out.push_str("<dl class=\"run\">\n");
    let mut row = |k: &str, v: String| {
        let _ = writeln!(out, "<dt>{}</dt><dd>{v}</dd>", esc(k));
    };
    row("run", esc(&super::utc(report.started)));
    row("pushbench", esc(&h.version));
    row(
        "target",
        format!(
            "{} ({}){}",
            esc(&report.target),
            esc(&h.kind),
            if h.description.is_empty() {
                String::new()
            } else {
                format!(": {}", esc(&h.description))
            }
        ),
    );
    row("cancel profile", format!("<code>{}</code>", esc(&h.cancel)));
    row(
        "capabilities",
        if h.capabilities.is_empty() {
            "none".into()
        } else {
            h.capabilities
                .iter()
                .map(|c| format!("<code>{}</code>", esc(c)))
                .collect::<Vec<_>>()
                .join(" ")
        },
    );
    row(
        "timers",
        h.timers
            .iter()
            .map(|(k, v)| format!("{} {}", esc(k), esc(v)))
            .collect::<Vec<_>>()
            .join(", "),
    );
    if !h.resolved.is_empty() {
        row(
            "addresses",
            h.resolved
                .iter()
                .map(|r| esc(r))
                .collect::<Vec<_>>()
                .join("<br>"),
        );
    }
    row("features", esc(&h.features));
    if let Some(seed) = h.seed {
        row(
            "seed",
            format!(
                "<code>{seed}</code> (<code>pushbench run --seed {seed}</code> draws the same)"
            ),
        );
    }
    out.push_str("</dl>\n");
}

fn badge(o: Outcome) -> String {
    format!("<span class=\"o {0}\">{0}</span>", o.as_str())
}

fn scenario(out: &mut String, i: usize, s: &ScenarioResult) {
    let _ = writeln!(
        out,
        "<section id=\"s{i}\"><h2>{} {}</h2>\n<p>{} · <code>{}</code> · requirements: {} · {:.3} s{}</p>",
        badge(s.outcome),
        esc(&s.info.full_name()),
        esc(&s.info.feature),
        esc(&s.info.key.to_string()),
        esc(&s.info.requirements.join(", ")),
        s.duration.as_secs_f64(),
        if s.attempts > 1 {
            format!(" · {} attempts", s.attempts)
        } else {
            String::new()
        }
    );
    out.push_str("<ol class=\"steps\">\n");
    for st in &s.steps {
        let class = st.status.as_str().replace(' ', "-");
        let _ = write!(
            out,
            "<li class=\"{class}\"><b>{}</b> {} <small>({}{})</small>",
            esc(&st.keyword),
            esc(&st.text),
            st.status.as_str(),
            st.duration
                .map(|d| format!(", {:.3} s", d.as_secs_f64()))
                .unwrap_or_default()
        );
        if let Some(e) = &st.error {
            if st.status != StepStatus::Passed {
                let _ = write!(out, "<pre>{}</pre>", esc(e));
            }
        }
        out.push_str("</li>\n");
    }
    out.push_str("</ol>\n");
    if let Some(r) = &s.reason {
        let _ = writeln!(out, "<p><b>{}:</b></p><pre>{}</pre>", s.verdict, esc(r));
    }
    if let Some(e) = &s.expectation {
        let _ = writeln!(
            out,
            "<p><b>expected failure:</b> {} <br><b>at step:</b> {}<br><b>evidence:</b> {}</p>",
            esc(&e.reason),
            esc(e.step.as_deref().unwrap_or("any")),
            esc(&e.evidence)
        );
    }
    if s.events.is_empty() {
        out.push_str("<p><i>no message recorded</i></p>\n");
    } else {
        let verdict_line = s.reason.as_ref().map(|r| {
            let step = s.failed_step.as_deref().unwrap_or("");
            format!("{}: {step} {}", s.verdict, r.lines().next().unwrap_or(""))
        });
        out.push_str(&sequence_svg(
            &s.events,
            &format!("arrow{i}"),
            verdict_line.as_deref(),
            s.verdict_at,
        ));
        out.push_str("<details><summary>raw messages</summary>\n");
        for e in &s.events {
            if e.direction == Direction::Note {
                continue;
            }
            let (from, to) = e.endpoints();
            let _ = writeln!(
                out,
                "<p>#{} +{:.3}s {} → {}: {}</p><pre>{}</pre>",
                e.seq,
                e.at.as_secs_f64(),
                esc(from),
                esc(to),
                esc(&e.summary),
                esc(&e.raw_text())
            );
        }
        out.push_str("</details>\n");
    }
    out.push_str("</section>\n");
}

const LEFT: usize = 90;
const COL: usize = 170;
const ROW: usize = 26;
const TOP: usize = 40;

/// The timeline as an SVG sequence diagram: one lifeline per party, one arrow per message (its
/// `<title>` holds the raw bytes), notes as boxes on the party's lifeline. `marker_id` names the
/// arrowhead, unique per diagram of a page; `verdict`, when given, is a row in red (why the
/// scenario did not pass) at the moment the verdict was known (`verdict_at`, or under the
/// exchange when unknown); the events after that moment are greyed and labelled teardown.
pub fn sequence_svg(
    events: &[Event],
    marker_id: &str,
    verdict: Option<&str>,
    verdict_at: Option<std::time::Duration>,
) -> String {
    let mut parties: Vec<&str> = Vec::new();
    for e in events {
        let (a, b) = e.endpoints();
        for p in [a, b] {
            if !p.is_empty() && !parties.contains(&p) {
                parties.push(p);
            }
        }
    }
    let x = |p: &str| LEFT + parties.iter().position(|q| *q == p).unwrap_or(0) * COL;
    let width = LEFT + parties.len() * COL + 260;
    // The verdict row goes before the first teardown event (or last).
    let split = verdict_at
        .and_then(|v| events.iter().position(|e| e.at > v))
        .unwrap_or(events.len());
    let teardown = split < events.len();
    let rows = events.len() + usize::from(verdict.is_some() || teardown);
    let height = TOP + (rows + 1) * ROW;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\">\n<defs><marker id=\"{marker_id}\" markerWidth=\"8\" markerHeight=\"8\" refX=\"8\" refY=\"4\" orient=\"auto\"><path d=\"M0,0 L8,4 L0,8 z\" fill=\"#333\"/></marker></defs>"
    );
    for p in &parties {
        let px = x(p);
        let _ = writeln!(
            svg,
            "<text x=\"{px}\" y=\"16\" text-anchor=\"middle\" font-weight=\"bold\">{}</text><line x1=\"{px}\" y1=\"24\" x2=\"{px}\" y2=\"{}\" stroke=\"#bbb\" stroke-dasharray=\"4 3\"/>",
            esc(p),
            height - 4
        );
    }
    let extra = usize::from(verdict.is_some() || teardown);
    for (i, e) in events.iter().enumerate() {
        let after = i >= split;
        let y = TOP + (i + if after { extra } else { 0 }) * ROW + ROW / 2;
        if after {
            svg.push_str("<g opacity=\"0.4\">");
        }
        let _ = write!(
            svg,
            "<text x=\"4\" y=\"{}\" fill=\"#888\">+{:.3}s</text>",
            y + 4,
            e.at.as_secs_f64()
        );
        let (from, to) = e.endpoints();
        let label = if e.transport.is_empty() {
            e.summary.clone()
        } else {
            format!("{} [{}]", e.summary, e.transport)
        };
        if e.direction == Direction::Note || from == to {
            let px = x(from);
            let _ = writeln!(
                svg,
                "<g><title>{}</title><rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"#f4d03f\" stroke=\"#333\"/><text x=\"{}\" y=\"{}\" fill=\"#555\">{}</text></g>",
                esc(&e.summary),
                px - 5,
                y - 5,
                px + 10,
                y + 4,
                esc(&label)
            );
        } else {
            let (x1, x2) = (x(from), x(to));
            let _ = writeln!(
                svg,
                "<g><title>{}</title><line x1=\"{x1}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" stroke=\"#333\" marker-end=\"url(#{marker_id})\"/><text x=\"{}\" y=\"{}\">{}</text></g>",
                esc(&e.raw_text()),
                x1.min(x2) + 6,
                y - 4,
                esc(&label)
            );
        }
        if after {
            svg.push_str("</g>\n");
        }
    }
    if extra > 0 {
        let y = TOP + split * ROW + ROW / 2 + 4;
        let mut text = verdict.map(esc).unwrap_or_else(|| "verdict".into());
        if teardown {
            text.push_str(" — below: teardown, after the verdict");
        }
        let colour = if verdict.is_some() { "#c0392b" } else { "#555" };
        let _ = writeln!(
            svg,
            "<line x1=\"0\" y1=\"{}\" x2=\"{width}\" y2=\"{}\" stroke=\"{colour}\" stroke-width=\"0.5\"/><text x=\"4\" y=\"{y}\" fill=\"{colour}\" font-weight=\"bold\">{text}</text>",
            y - 16,
            y - 16
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::{report, result};
    use crate::verdict::Verdict;

    #[test]
    fn failures_come_first_with_a_header_and_teardown_greyed() {
        let mut failed = result("c", &["R-2"], Verdict::Fail, false);
        failed.verdict_at = Some(std::time::Duration::ZERO);
        let mut r = report(vec![result("a", &["R-1"], Verdict::Pass, false), failed]);
        r.header.version = "9.9.9".into();
        r.header.capabilities = vec!["fork".into()];
        let html = render(&r);
        assert!(html.contains("<dt>pushbench</dt><dd>9.9.9</dd>"), "{html}");
        assert!(html.contains("1970-01-01 00:00:00 UTC"));
        assert!(html.contains("<code>fork</code>"));
        let (fail_at, pass_at) = (
            html.find("id=\"s1\"").unwrap(),
            html.find("id=\"s0\"").unwrap(),
        );
        assert!(fail_at < pass_at, "the failure's section comes first");
        assert!(html.contains("below: teardown, after the verdict"));
        assert!(
            html.contains("<g opacity=\"0.4\">"),
            "events after the verdict greyed"
        );
    }

    #[test]
    fn requirement_ids_link_to_the_statements_they_check() {
        let map = crate::coverage::parse(
            "| id | § | keyword | statement | status | requirements | note |\n\
             |---|---|---|---|---|---|---|\n\
             | 8599-5.6.2-h | §5.6.2 | MUST | the proxy MUST … send a 480 <now> | covered | R-1 | |\n\
             | 8599-5.6.2-b | §5.6.2 | MUST | the proxy MUST remove … and forward | partly | R-1 | removal unchecked |\n\
             \n\
             | requirement | why no statement |\n\
             |---|---|\n\
             | R-2 | Apple's rule |\n",
        )
        .unwrap();
        let r = report(vec![
            result("a", &["R-1"], Verdict::Pass, false),
            result("b", &["R-2"], Verdict::Pass, false),
            result("c", &["R-3"], Verdict::Pass, false),
        ]);
        let html = render_with(&r, Some(&map));
        assert!(
            html.contains("<details><summary>2 statements (1 partly)</summary><ul><li><code>8599-5.6.2-h</code> RFC 8599 §5.6.2 MUST (covered): the proxy MUST … send a 480 &lt;now&gt;</li>"),
            "{html}"
        );
        assert!(html.contains(
            "<code>8599-5.6.2-b</code> RFC 8599 §5.6.2 MUST (partly): the proxy MUST remove … and forward<br><small>removal unchecked</small></li>"
        ));
        assert!(
            html.contains("no standard statement: Apple&apos;s rule"),
            "{html}"
        );
        assert!(html.contains("not in the coverage map"));
        assert!(!html.contains("<script"));
        // Without a map the column stays empty.
        assert!(!render_with(&r, None).contains("<details><summary>2 statements"));
    }

    #[test]
    fn the_embedded_map_feeds_the_default_page() {
        let r = report(vec![result("c5", &["SIP-C5"], Verdict::Pass, false)]);
        let html = render(&r);
        assert!(html.contains("<code>8599-5.6.2-h</code>"), "{html}");
    }

    #[test]
    fn page_is_self_contained_and_has_a_section_per_scenario() {
        let r = report(vec![
            result("a <b>", &["R-1"], Verdict::Pass, false),
            result("c", &["R-2"], Verdict::Fail, false),
        ]);
        let html = render(&r);
        assert_eq!(html.matches("<section").count(), 2);
        assert_eq!(html.matches("<svg").count(), 2);
        assert!(html.contains("id=\"arrow0\"") && html.contains("url(#arrow1)"));
        assert!(html.contains("a &lt;b&gt;"));
        assert!(!html.contains("<script"));
        assert!(!html
            .replace("http://www.w3.org/2000/svg", "")
            .contains("http"));
        assert!(
            html.contains("INVITE \\xff"),
            "raw bytes escaped in the listing"
        );
        // The SVG parses as XML.
        let svg_start = html.find("<svg").unwrap();
        let svg_end = html[svg_start..].find("</svg>").unwrap() + svg_start + 6;
        let mut reader = quick_xml::Reader::from_str(&html[svg_start..svg_end]);
        loop {
            match reader.read_event().expect("well-formed SVG") {
                quick_xml::events::Event::Eof => break,
                _ => continue,
            }
        }
    }
}
