//! The conformance coverage map, `features/COVERAGE.md`: one row per normative statement of
//! RFC 8599, XEP-0357 and the parts of XEP-0198 and XEP-0353 the scenarios rely on, each with the
//! requirement ids that check it or the reason none does. This module reads the map's markdown
//! tables, counts them per document (`pushbench coverage`), tells which statements a requirement
//! id checks (the HTML report) and cross-checks the ids against the features' `@req:` tags.
//!
//! The map's tables are told apart by their header row:
//! - `| id | § | keyword | statement | status | requirements | note |`: the statements. An id is
//!   `<document>-<section>-<letter>`; a document written with a leading zero is a XEP (`0357` →
//!   XEP-0357), any other an RFC (`8599` → RFC 8599).
//! - `| requirement | why no statement |`: requirement ids whose checks rest on no statement of
//!   these documents (Apple's rules, races RFC 8599 is silent on).
//!
//! Any other table (the totals, the legend) is ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::OnceLock;

/// A BCP 14 keyword (RFC 2119, RFC 8174), as the statement's row names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Keyword {
    /// MUST.
    Must,
    /// MUST NOT.
    MustNot,
    /// REQUIRED.
    Required,
    /// SHALL.
    Shall,
    /// SHALL NOT.
    ShallNot,
    /// SHOULD.
    Should,
    /// SHOULD NOT.
    ShouldNot,
    /// RECOMMENDED.
    Recommended,
    /// NOT RECOMMENDED.
    NotRecommended,
    /// MAY.
    May,
    /// OPTIONAL.
    Optional,
}

/// What a keyword obliges: an absolute requirement, a recommendation, or a permission.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// MUST, MUST NOT, REQUIRED, SHALL, SHALL NOT.
    Must,
    /// SHOULD, SHOULD NOT, RECOMMENDED, NOT RECOMMENDED.
    Should,
    /// MAY, OPTIONAL.
    May,
}

impl Keyword {
    const ALL: [(Keyword, &'static str); 11] = [
        (Keyword::Must, "MUST"),
        (Keyword::MustNot, "MUST NOT"),
        (Keyword::Required, "REQUIRED"),
        (Keyword::Shall, "SHALL"),
        (Keyword::ShallNot, "SHALL NOT"),
        (Keyword::Should, "SHOULD"),
        (Keyword::ShouldNot, "SHOULD NOT"),
        (Keyword::Recommended, "RECOMMENDED"),
        (Keyword::NotRecommended, "NOT RECOMMENDED"),
        (Keyword::May, "MAY"),
        (Keyword::Optional, "OPTIONAL"),
    ];

    /// The keyword written exactly (upper case, one space between words).
    pub fn parse(s: &str) -> Option<Keyword> {
        let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
        Keyword::ALL.iter().find(|(_, n)| *n == s).map(|(k, _)| *k)
    }

    /// As written in the standards.
    pub fn as_str(self) -> &'static str {
        Keyword::ALL
            .iter()
            .find(|(k, _)| *k == self)
            .map(|(_, n)| *n)
            .unwrap_or("?")
    }

    /// Its family.
    pub fn family(self) -> Family {
        match self {
            Keyword::Must
            | Keyword::MustNot
            | Keyword::Required
            | Keyword::Shall
            | Keyword::ShallNot => Family::Must,
            Keyword::Should
            | Keyword::ShouldNot
            | Keyword::Recommended
            | Keyword::NotRecommended => Family::Should,
            Keyword::May | Keyword::Optional => Family::May,
        }
    }
}

/// How the bench stands to a statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// Scenarios of the listed requirement ids check it.
    Covered,
    /// Scenarios check part of it; the note says what is missing.
    Partly,
    /// A gateway serving iPhones can get it wrong and a scenario should exist (not yet written).
    Planned,
    /// Binds the gateway but nothing it does can be observed from outside.
    NotTestable,
    /// Binds another party (UA, client, PNS, operator, or the bench itself) or a feature a
    /// gateway serving iPhones has no use for.
    NotApplicable,
    /// Only for a push service other than APNs (FCM, Web Push/VAPID).
    OtherPns,
    /// A permission (MAY): nothing to fail; the note says what scenarios must tolerate.
    Optional,
}

impl Status {
    const ALL: [(Status, &'static str); 7] = [
        (Status::Covered, "covered"),
        (Status::Partly, "partly"),
        (Status::Planned, "planned"),
        (Status::NotTestable, "not testable"),
        (Status::NotApplicable, "not applicable"),
        (Status::OtherPns, "other PNS"),
        (Status::Optional, "optional"),
    ];

    /// As written in the map's status column (case-insensitive).
    pub fn parse(s: &str) -> Option<Status> {
        let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
        Status::ALL
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(&s))
            .map(|(st, _)| *st)
    }

    /// As written in the map.
    pub fn as_str(self) -> &'static str {
        Status::ALL
            .iter()
            .find(|(st, _)| *st == self)
            .map(|(_, n)| *n)
            .unwrap_or("?")
    }

    /// Whether the statement binds the gateway under test (so counts towards "relevant").
    pub fn binds_gateway(self) -> bool {
        matches!(
            self,
            Status::Covered | Status::Partly | Status::Planned | Status::NotTestable
        )
    }

    /// Whether the row must name requirement ids (and only then may it).
    fn names_requirements(self) -> bool {
        matches!(self, Status::Covered | Status::Partly)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One normative statement of the map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    /// Stable id, `8599-5.6.2-h`.
    pub id: String,
    /// `RFC 8599`, `XEP-0357`, from the id.
    pub document: String,
    /// Section number, `5.6.2`.
    pub section: String,
    /// Its keyword.
    pub keyword: Keyword,
    /// The statement, quoted in short.
    pub text: String,
    /// How the bench stands to it.
    pub status: Status,
    /// Requirement ids that check it (covered or partly only).
    pub requirements: Vec<String>,
    /// Why, what is missing, or what a planned scenario should check.
    pub note: String,
    /// Line in the map (1-based).
    pub line: usize,
}

/// A requirement id whose checks rest on no statement of the mapped documents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unmapped {
    /// The id.
    pub requirement: String,
    /// Why.
    pub why: String,
    /// Line in the map (1-based).
    pub line: usize,
}

/// The parsed map.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CoverageMap {
    /// Every statement, in file order.
    pub statements: Vec<Statement>,
    /// Requirement ids that check no statement, with the reason.
    pub unmapped: Vec<Unmapped>,
}

/// What is wrong with a map: every problem found, with its line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.iter().map(|(l, p)| format!("line {l}: {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ParseError {
    /// (line, problem), in file order.
    pub problems: Vec<(usize, String)>,
}

const STATEMENT_HEADER: [&str; 7] = [
    "id",
    "§",
    "keyword",
    "statement",
    "status",
    "requirements",
    "note",
];
const UNMAPPED_HEADER: [&str; 2] = ["requirement", "why no statement"];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Table {
    Statements,
    Unmapped,
    Other,
}

/// Parses the map. Every malformed row is reported, not only the first.
pub fn parse(text: &str) -> Result<CoverageMap, ParseError> {
    let mut map = CoverageMap::default();
    let mut problems = Vec::new();
    let mut table: Option<Table> = None;
    let mut seen = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if !trimmed.starts_with('|') {
            table = None;
            continue;
        }
        let cells = split_row(trimmed);
        let Some(kind) = table else {
            let header: Vec<String> = cells.iter().map(|c| c.to_lowercase()).collect();
            table = Some(if header == STATEMENT_HEADER {
                Table::Statements
            } else if header == UNMAPPED_HEADER {
                Table::Unmapped
            } else {
                Table::Other
            });
            continue;
        };
        if is_separator(&cells) || kind == Table::Other {
            continue;
        }
        let mut problem = |p: String| problems.push((line, p));
        match kind {
            Table::Statements => {
                if cells.len() != STATEMENT_HEADER.len() {
                    problem(format!(
                        "a statement row has {} cells, not {}",
                        cells.len(),
                        STATEMENT_HEADER.len()
                    ));
                    continue;
                }
                match statement(&cells, line) {
                    Ok(s) => {
                        if let Some(first) = seen.insert(s.id.clone(), line) {
                            problem(format!("{} is also on line {first}", s.id));
                        }
                        map.statements.push(s);
                    }
                    Err(e) => problem(e),
                }
            }
            Table::Unmapped => {
                if cells.len() != UNMAPPED_HEADER.len() {
                    problem(format!(
                        "a requirement row has {} cells, not {}",
                        cells.len(),
                        UNMAPPED_HEADER.len()
                    ));
                    continue;
                }
                let ids = match requirement_ids(&cells[0]) {
                    Ok(ids) if ids.len() == 1 => ids,
                    Ok(_) => {
                        problem(format!("expected one requirement id, got {:?}", cells[0]));
                        continue;
                    }
                    Err(e) => {
                        problem(e);
                        continue;
                    }
                };
                if cells[1].is_empty() {
                    problem(format!("{} has no reason", ids[0]));
                }
                map.unmapped.push(Unmapped {
                    requirement: ids[0].clone(),
                    why: cells[1].clone(),
                    line,
                });
            }
            Table::Other => {}
        }
    }
    if map.statements.is_empty() && problems.is_empty() {
        problems.push((
            0,
            "no statement table (| id | § | keyword | …) found".into(),
        ));
    }
    if problems.is_empty() {
        Ok(map)
    } else {
        Err(ParseError { problems })
    }
}

fn statement(cells: &[String], line: usize) -> Result<Statement, String> {
    let id = cells[0].trim_matches('`').to_owned();
    let (document, id_section) = split_id(&id)?;
    let section = cells[1].trim_start_matches('§').trim().to_owned();
    if section != id_section {
        return Err(format!(
            "{id}: the § column says {section:?}, the id {id_section:?}"
        ));
    }
    let keyword = Keyword::parse(&cells[2])
        .ok_or_else(|| format!("{id}: {:?} is not a BCP 14 keyword", cells[2]))?;
    let text = cells[3].clone();
    if text.is_empty() {
        return Err(format!("{id}: no statement text"));
    }
    let status = Status::parse(&cells[4]).ok_or_else(|| {
        format!(
            "{id}: unknown status {:?} (one of: {})",
            cells[4],
            Status::ALL.map(|(_, n)| n).join(", ")
        )
    })?;
    let requirements = requirement_ids(&cells[5]).map_err(|e| format!("{id}: {e}"))?;
    let note = cells[6].clone();
    if status.names_requirements() && requirements.is_empty() {
        return Err(format!("{id} is {status} but names no requirement id"));
    }
    if !status.names_requirements() && !requirements.is_empty() {
        return Err(format!(
            "{id} is {status}: only covered or partly rows name requirement ids"
        ));
    }
    if status != Status::Covered && note.is_empty() {
        return Err(format!("{id} is {status} and needs a note saying why"));
    }
    if status == Status::Optional && keyword.family() != Family::May {
        return Err(format!(
            "{id}: only a MAY or OPTIONAL statement can be optional, not {}",
            keyword.as_str()
        ));
    }
    Ok(Statement {
        id,
        document,
        section,
        keyword,
        text,
        status,
        requirements,
        note,
        line,
    })
}

/// `8599-5.6.2-h` → (`RFC 8599`, `5.6.2`).
fn split_id(id: &str) -> Result<(String, String), String> {
    let bad = || format!("{id:?} is not an id like 8599-5.6.2-h or 0357-7.1-a");
    let mut parts = id.splitn(2, '-');
    let doc = parts.next().ok_or_else(bad)?;
    let rest = parts.next().ok_or_else(bad)?;
    let (section, letter) = rest.rsplit_once('-').ok_or_else(bad)?;
    let doc_ok = doc.len() == 4 && doc.bytes().all(|b| b.is_ascii_digit());
    let section_ok = !section.is_empty()
        && section
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let letter_ok = !letter.is_empty() && letter.bytes().all(|b| b.is_ascii_lowercase());
    if !(doc_ok && section_ok && letter_ok) {
        return Err(bad());
    }
    let document = if doc.starts_with('0') {
        format!("XEP-{doc}")
    } else {
        format!("RFC {doc}")
    };
    Ok((document, section.to_owned()))
}

/// `SIP-B4, SIP-E1` → ids; `—`, `-` or nothing → none.
fn requirement_ids(cell: &str) -> Result<Vec<String>, String> {
    let cell = cell.trim();
    if matches!(cell, "" | "—" | "-" | "–") {
        return Ok(Vec::new());
    }
    let mut ids = Vec::new();
    for token in cell.split([',', ' ']).map(|t| t.trim().trim_matches('`')) {
        if token.is_empty() {
            continue;
        }
        let ok = token.starts_with(|c: char| c.is_ascii_uppercase())
            && token.contains('-')
            && !token.ends_with('-')
            && token
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-');
        if !ok {
            return Err(format!("{token:?} is not a requirement id like SIP-B4"));
        }
        if !ids.iter().any(|i| i == token) {
            ids.push(token.to_owned());
        }
    }
    Ok(ids)
}

/// The cells of a table row, trimmed; `\|` is a literal bar.
fn split_row(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|');
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    let mut cells = Vec::new();
    let mut cur = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cur.push('|');
                chars.next();
            }
            '|' => cells.push(std::mem::take(&mut cur).trim().to_owned()),
            _ => cur.push(c),
        }
    }
    cells.push(cur.trim().to_owned());
    cells
}

fn is_separator(cells: &[String]) -> bool {
    cells.iter().all(|c| {
        !c.is_empty() && c.chars().all(|ch| matches!(ch, '-' | ':' | ' ')) && c.contains('-')
    })
}

/// One document's counts. The columns after `may` count MUST and SHOULD statements only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// `RFC 8599`, or `all` for the sum.
    pub document: String,
    /// Every statement, any keyword.
    pub statements: usize,
    /// MUST-family statements.
    pub must: usize,
    /// SHOULD-family statements.
    pub should: usize,
    /// MAY-family statements.
    pub may: usize,
    /// MUST and SHOULD statements that bind the gateway (covered, partly, planned, not testable).
    pub relevant: usize,
    /// … covered.
    pub covered: usize,
    /// … partly covered.
    pub partly: usize,
    /// … planned.
    pub planned: usize,
    /// … not testable.
    pub not_testable: usize,
    /// MUST and SHOULD statements that bind another party.
    pub not_applicable: usize,
    /// MUST and SHOULD statements for another push service.
    pub other_pns: usize,
}

impl Totals {
    fn add(&mut self, s: &Statement) {
        self.statements += 1;
        match s.keyword.family() {
            Family::Must => self.must += 1,
            Family::Should => self.should += 1,
            Family::May => {
                self.may += 1;
                return;
            }
        }
        if s.status.binds_gateway() {
            self.relevant += 1;
        }
        match s.status {
            Status::Covered => self.covered += 1,
            Status::Partly => self.partly += 1,
            Status::Planned => self.planned += 1,
            Status::NotTestable => self.not_testable += 1,
            Status::NotApplicable => self.not_applicable += 1,
            Status::OtherPns => self.other_pns += 1,
            Status::Optional => {}
        }
    }

    fn sum(&mut self, o: &Totals) {
        self.statements += o.statements;
        self.must += o.must;
        self.should += o.should;
        self.may += o.may;
        self.relevant += o.relevant;
        self.covered += o.covered;
        self.partly += o.partly;
        self.planned += o.planned;
        self.not_testable += o.not_testable;
        self.not_applicable += o.not_applicable;
        self.other_pns += o.other_pns;
    }

    /// `n (p %)` of the relevant statements, `n` alone when none is relevant.
    fn of_relevant(&self, n: usize) -> String {
        if self.relevant == 0 {
            n.to_string()
        } else {
            format!("{n} ({:.0} %)", 100.0 * n as f64 / self.relevant as f64)
        }
    }
}

impl CoverageMap {
    /// Counts per document, in the order documents first appear, then `all`.
    pub fn totals(&self) -> Vec<Totals> {
        let mut docs: Vec<Totals> = Vec::new();
        for s in &self.statements {
            let at = match docs.iter().position(|t| t.document == s.document) {
                Some(at) => at,
                None => {
                    docs.push(Totals {
                        document: s.document.clone(),
                        ..Totals::default()
                    });
                    docs.len() - 1
                }
            };
            docs[at].add(s);
        }
        let mut all = Totals {
            document: "all".into(),
            ..Totals::default()
        };
        for d in &docs {
            all.sum(d);
        }
        docs.push(all);
        docs
    }

    /// The statements that name `requirement` (covered or partly).
    pub fn statements_checked_by(&self, requirement: &str) -> Vec<&Statement> {
        self.statements
            .iter()
            .filter(|s| s.requirements.iter().any(|r| r == requirement))
            .collect()
    }

    /// Why `requirement` checks no statement, if the map says so.
    pub fn unmapped_reason(&self, requirement: &str) -> Option<&str> {
        self.unmapped
            .iter()
            .find(|u| u.requirement == requirement)
            .map(|u| u.why.as_str())
    }

    /// Every requirement id the map names, in statement rows or in the unmapped table.
    pub fn named_requirements(&self) -> BTreeSet<&str> {
        self.statements
            .iter()
            .flat_map(|s| s.requirements.iter().map(String::as_str))
            .chain(self.unmapped.iter().map(|u| u.requirement.as_str()))
            .collect()
    }

    /// What disagrees between the map and the requirement ids the features' `@req:` tags
    /// carry: an id the map names that no scenario has, and a scenario id the map never names.
    pub fn cross_check<'a>(&self, feature_ids: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let features: BTreeSet<&str> = feature_ids.into_iter().collect();
        let named = self.named_requirements();
        let mut out: Vec<String> = named
            .difference(&features)
            .map(|id| format!("COVERAGE.md names {id}, which no scenario's @req: tag carries"))
            .collect();
        out.extend(features.difference(&named).map(|id| {
            format!(
                "@req:{id} appears nowhere in COVERAGE.md (map it to the statements it checks, or list it under the requirements that check no standard statement)"
            )
        }));
        out
    }

    /// The totals as plain text (`pushbench coverage`).
    pub fn totals_text(&self) -> String {
        let rows: Vec<Vec<String>> = self.totals().iter().map(row_cells).collect();
        let mut widths: Vec<usize> = TOTALS_HEADER.iter().map(|h| h.chars().count()).collect();
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut s = String::new();
            for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
                if i > 0 {
                    s.push_str("  ");
                }
                s.push_str(c);
                s.push_str(&" ".repeat(w - c.chars().count()));
            }
            s.trim_end().to_owned() + "\n"
        };
        let mut out = line(&TOTALS_HEADER.map(String::from));
        for r in &rows {
            out.push_str(&line(r));
        }
        out.push('\n');
        out.push_str(TOTALS_LEGEND);
        out.push('\n');
        out
    }

    /// The totals as the markdown table COVERAGE.md carries (`pushbench coverage --markdown`).
    pub fn totals_markdown(&self) -> String {
        let mut out = format!("| {} |\n", TOTALS_HEADER.join(" | "));
        out.push_str(&format!("|{}\n", "---|".repeat(TOTALS_HEADER.len())));
        for t in self.totals() {
            out.push_str(&format!("| {} |\n", row_cells(&t).join(" | ")));
        }
        out
    }
}

const TOTALS_HEADER: [&str; 12] = [
    "document",
    "statements",
    "MUST",
    "SHOULD",
    "MAY",
    "relevant",
    "covered",
    "partly",
    "planned",
    "not testable",
    "not applicable",
    "other PNS",
];

const TOTALS_LEGEND: &str = "From \"relevant\" on, only MUST and SHOULD statements are counted; \
\"relevant\" are those binding the gateway (covered + partly + planned + not testable), and the \
percentages are of them.";

fn row_cells(t: &Totals) -> Vec<String> {
    vec![
        t.document.clone(),
        t.statements.to_string(),
        t.must.to_string(),
        t.should.to_string(),
        t.may.to_string(),
        t.relevant.to_string(),
        t.of_relevant(t.covered),
        t.of_relevant(t.partly),
        t.of_relevant(t.planned),
        t.of_relevant(t.not_testable),
        t.not_applicable.to_string(),
        t.other_pns.to_string(),
    ]
}

/// The map embedded in the binary, parsed once; `None` when the binary carries none or it does
/// not parse (the tests make sure it does).
pub fn embedded() -> Option<&'static CoverageMap> {
    static MAP: OnceLock<Option<CoverageMap>> = OnceLock::new();
    MAP.get_or_init(|| crate::bundle::coverage().and_then(|t| parse(t).ok()))
        .as_ref()
}

#[cfg(test)]
mod tests;
