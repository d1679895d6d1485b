//! A small namespaced XML element tree: what every stanza is built from and parsed into.
//!
//! Elements carry their resolved namespace, so `<propose xmlns='urn:xmpp:jingle-message:0'>` and a
//! prefixed form compare equal. Serialization writes an `xmlns` only where an element's namespace
//! differs from its parent's, so stanzas print the way servers and XEP examples write them.

use std::fmt::Write as _;

/// The stream namespace (`xmlns:stream`).
pub const NS_STREAM: &str = "http://etherx.jabber.org/streams";
/// The c2s default namespace.
pub const NS_CLIENT: &str = "jabber:client";
/// The XEP-0114 component default namespace.
pub const NS_COMPONENT: &str = "jabber:component:accept";

/// A node inside an element: a child element or character data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// A child element.
    Element(Element),
    /// Text (unescaped).
    Text(String),
}

/// One XML element with its namespace resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element {
    name: String,
    ns: String,
    attrs: Vec<(String, String)>,
    children: Vec<Node>,
}

impl Element {
    /// A new empty element `name` in namespace `ns`.
    pub fn new(name: impl Into<String>, ns: impl Into<String>) -> Self {
        Element {
            name: name.into(),
            ns: ns.into(),
            attrs: Vec::new(),
            children: Vec::new(),
        }
    }

    /// Builder: sets an attribute (replaces an existing one of that name).
    pub fn attr(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.set_attr(name, value);
        self
    }

    /// Builder: sets an attribute if `value` is `Some`.
    pub fn attr_opt(self, name: impl Into<String>, value: Option<impl Into<String>>) -> Self {
        match value {
            Some(v) => self.attr(name, v),
            None => self,
        }
    }

    /// Builder: appends a child element.
    pub fn child(mut self, child: Element) -> Self {
        self.children.push(Node::Element(child));
        self
    }

    /// Builder: appends text.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.children.push(Node::Text(text.into()));
        self
    }

    /// Sets an attribute in place.
    pub fn set_attr(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self.attrs.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.attrs.push((name, value)),
        }
    }

    /// Appends a child in place.
    pub fn push_child(&mut self, child: Element) {
        self.children.push(Node::Element(child));
    }

    /// The local name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The resolved namespace ("" when none).
    pub fn ns(&self) -> &str {
        &self.ns
    }

    /// True when the element is `name` in `ns`.
    pub fn is(&self, name: &str, ns: &str) -> bool {
        self.name == name && self.ns == ns
    }

    /// An attribute's value.
    pub fn get_attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// All attributes in document order.
    pub fn attrs(&self) -> &[(String, String)] {
        &self.attrs
    }

    /// The child elements.
    pub fn children(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// All nodes, text included.
    pub fn nodes(&self) -> &[Node] {
        &self.children
    }

    /// The first child `name` in `ns`.
    pub fn get_child(&self, name: &str, ns: &str) -> Option<&Element> {
        self.children().find(|c| c.is(name, ns))
    }

    /// The first child in namespace `ns`, whatever its name.
    pub fn child_in_ns(&self, ns: &str) -> Option<&Element> {
        self.children().find(|c| c.ns == ns)
    }

    /// The concatenated direct text content.
    pub fn text_content(&self) -> String {
        self.children
            .iter()
            .filter_map(|n| match n {
                Node::Text(t) => Some(t.as_str()),
                Node::Element(_) => None,
            })
            .collect()
    }

    /// Serializes as it would be inside a stream whose default namespace is `parent_ns`.
    pub fn to_xml_in(&self, parent_ns: &str) -> String {
        let mut out = String::new();
        self.write(&mut out, parent_ns);
        out
    }

    /// Serializes with an `xmlns` on the root whenever it has a namespace.
    pub fn to_xml(&self) -> String {
        self.to_xml_in("")
    }

    fn write(&self, out: &mut String, parent_ns: &str) {
        out.push('<');
        out.push_str(&self.name);
        if self.ns != parent_ns {
            let _ = write!(out, " xmlns='{}'", escape(&self.ns));
        }
        for (k, v) in &self.attrs {
            let _ = write!(out, " {}='{}'", k, escape(v));
        }
        if self.children.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        for n in &self.children {
            match n {
                Node::Element(e) => e.write(out, &self.ns),
                Node::Text(t) => out.push_str(&escape(t)),
            }
        }
        let _ = write!(out, "</{}>", self.name);
    }
}

impl std::fmt::Display for Element {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_xml())
    }
}

/// Escapes text or an attribute value (single-quoted).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// Namespace declarations in scope: (prefix, namespace); the empty prefix is the default.
#[derive(Clone, Debug, Default)]
pub struct NsScope {
    decls: Vec<(String, String)>,
}

impl NsScope {
    /// A scope with a default namespace and the `stream` prefix, as inside a stream.
    pub fn stream(default_ns: &str) -> Self {
        NsScope {
            decls: vec![
                ("xml".into(), "http://www.w3.org/XML/1998/namespace".into()),
                (String::new(), default_ns.into()),
                ("stream".into(), NS_STREAM.into()),
            ],
        }
    }

    /// Adds a declaration (later ones shadow earlier ones).
    pub fn declare(&mut self, prefix: &str, ns: &str) {
        self.decls.push((prefix.into(), ns.into()));
    }

    fn resolve(&self, prefix: &str) -> Option<&str> {
        self.decls
            .iter()
            .rev()
            .find(|(p, _)| p == prefix)
            .map(|(_, n)| n.as_str())
    }
}

/// Why bytes did not parse as XML.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct XmlError {
    /// What was wrong.
    pub reason: String,
}

impl XmlError {
    pub(crate) fn new(reason: impl Into<String>) -> Self {
        XmlError {
            reason: reason.into(),
        }
    }
}

/// A start tag's parts: qualified name and raw attributes (namespace declarations included).
pub(crate) struct StartTag {
    pub qname: String,
    pub attrs: Vec<(String, String)>,
}

/// `name` is a qualified name (Namespaces in XML 1.0 §4: `Prefix:LocalPart` or `LocalPart`, each
/// an XML name without a colon, XML 1.0 §2.3), or the error says which `kind` of name is not.
/// quick_xml does not check names: it took `a'b='c'd"e` for an attribute name, which was then
/// written back as broken XML (AFL, target `xml`).
fn check_qname(kind: &str, name: &str) -> Result<(), XmlError> {
    let ncname = |part: &str| {
        let mut chars = part.chars();
        chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
            && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    let ok = match name.split_once(':') {
        Some((prefix, local)) => ncname(prefix) && ncname(local),
        None => ncname(name),
    };
    if ok {
        Ok(())
    } else {
        Err(XmlError::new(format!(
            "{kind} name '{name}' is not a qualified name"
        )))
    }
}

pub(crate) fn read_start(e: &quick_xml::events::BytesStart<'_>) -> Result<StartTag, XmlError> {
    let qname = std::str::from_utf8(e.name().as_ref())
        .map_err(|_| XmlError::new("element name is not UTF-8"))?
        .to_string();
    check_qname("element", &qname)?;
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|err| XmlError::new(format!("bad attribute: {err}")))?;
        let key = std::str::from_utf8(a.key.as_ref())
            .map_err(|_| XmlError::new("attribute name is not UTF-8"))?
            .to_string();
        check_qname("attribute", &key)?;
        let value = a
            .unescape_value()
            .map_err(|err| XmlError::new(format!("bad attribute value: {err}")))?
            .into_owned();
        if attrs.iter().any(|(k, _)| *k == key) {
            return Err(XmlError::new(format!("duplicate attribute {key}")));
        }
        attrs.push((key, value));
    }
    Ok(StartTag { qname, attrs })
}

/// Splits declarations off the attributes, pushes them on `scope`, and resolves the element.
pub(crate) fn resolve_start(tag: StartTag, scope: &mut NsScope) -> Result<Element, XmlError> {
    let mut plain = Vec::new();
    for (k, v) in tag.attrs {
        if k == "xmlns" {
            scope.declare("", &v);
        } else if let Some(p) = k.strip_prefix("xmlns:") {
            // Namespaces in XML 1.0 §3: a prefix may not be bound to the empty name.
            if v.is_empty() {
                return Err(XmlError::new(format!("prefix '{p}' bound to no namespace")));
            }
            scope.declare(p, &v);
        } else {
            plain.push((k, v));
        }
    }
    // A qualified name (`read_start` checked it): `<:a:b>` used to become the local name `a:b`,
    // written back with a prefix nobody declared (AFL, target `xml`).
    let (prefix, local) = match tag.qname.split_once(':') {
        Some((p, l)) => (p, l),
        None => ("", tag.qname.as_str()),
    };
    let ns = scope
        .resolve(prefix)
        .ok_or_else(|| XmlError::new(format!("undeclared namespace prefix '{prefix}'")))?
        .to_string();
    // Every XMPP element is in a namespace; one in none (`xmlns=''`) could not be written back
    // and read again (AFL, target `xml`).
    if ns.is_empty() {
        return Err(XmlError::new(format!(
            "element <{}> in no namespace",
            tag.qname
        )));
    }
    Ok(Element {
        name: local.to_string(),
        ns,
        attrs: plain,
        children: Vec::new(),
    })
}

/// Parses one complete element from `bytes`, with `scope` as the inherited namespaces.
pub fn parse_element(bytes: &[u8], scope: &NsScope) -> Result<Element, XmlError> {
    use quick_xml::events::Event;
    let text = std::str::from_utf8(bytes).map_err(|_| XmlError::new("not valid UTF-8"))?;
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<(Element, NsScope)> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let ev = reader.read_event().map_err(|e| {
            XmlError::new(format!(
                "XML error at byte {}: {e}",
                reader.buffer_position()
            ))
        })?;
        match ev {
            Event::Start(s) | Event::Empty(s) if root.is_some() => {
                let _ = s;
                return Err(XmlError::new("content after the element"));
            }
            Event::Start(s) => {
                let mut sc = stack
                    .last()
                    .map(|(_, s)| s.clone())
                    .unwrap_or_else(|| scope.clone());
                let el = resolve_start(read_start(&s)?, &mut sc)?;
                stack.push((el, sc));
            }
            Event::Empty(s) => {
                let mut sc = stack
                    .last()
                    .map(|(_, s)| s.clone())
                    .unwrap_or_else(|| scope.clone());
                let el = resolve_start(read_start(&s)?, &mut sc)?;
                match stack.last_mut() {
                    Some((parent, _)) => parent.push_child(el),
                    None => root = Some(el),
                }
            }
            Event::End(_) => {
                let (el, _) = stack
                    .pop()
                    .ok_or_else(|| XmlError::new("unexpected end tag"))?;
                match stack.last_mut() {
                    Some((parent, _)) => parent.push_child(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                let s = t
                    .unescape()
                    .map_err(|e| XmlError::new(format!("bad text: {e}")))?;
                match stack.last_mut() {
                    Some((parent, _)) => parent.children.push(Node::Text(s.into_owned())),
                    None if s.trim().is_empty() => {}
                    None => return Err(XmlError::new("text outside the element")),
                }
            }
            Event::CData(c) => {
                let s = std::str::from_utf8(&c)
                    .map_err(|_| XmlError::new("CDATA is not UTF-8"))?
                    .to_string();
                match stack.last_mut() {
                    Some((parent, _)) => parent.children.push(Node::Text(s)),
                    None => return Err(XmlError::new("CDATA outside the element")),
                }
            }
            Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {
                return Err(XmlError::new(
                    "comments, processing instructions and DTDs are not allowed in XMPP",
                ))
            }
            Event::Decl(_) => return Err(XmlError::new("XML declaration inside the stream")),
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::new("element not closed"));
    }
    root.ok_or_else(|| XmlError::new("no element"))
}

/// Parses a standalone element (a test fixture, a config snippet) with no inherited namespace.
pub fn parse_str(xml: &str) -> Result<Element, XmlError> {
    parse_element(xml.as_bytes(), &NsScope::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_namespaces() {
        let xml = "<message xmlns='jabber:client' to='a@b' type='chat'><body>hi &amp; bye</body>\
                   <propose xmlns='urn:xmpp:jingle-message:0' id='x'/></message>";
        let e = parse_str(xml).unwrap();
        assert!(e.is("message", NS_CLIENT));
        assert_eq!(
            e.get_child("body", NS_CLIENT).unwrap().text_content(),
            "hi & bye"
        );
        assert_eq!(
            e.get_child("propose", "urn:xmpp:jingle-message:0")
                .unwrap()
                .get_attr("id"),
            Some("x")
        );
        assert_eq!(parse_str(&e.to_xml()).unwrap(), e);
        assert_eq!(e.to_xml_in(NS_CLIENT).find("xmlns='jabber:client'"), None);
    }

    #[test]
    fn prefixes_resolve_and_inherit_stream_scope() {
        let e = parse_element(
            b"<stream:features><x:a xmlns:x='urn:x'/></stream:features>",
            &NsScope::stream(NS_CLIENT),
        )
        .unwrap();
        assert!(e.is("features", NS_STREAM));
        assert!(e.children().next().unwrap().is("a", "urn:x"));
    }

    #[test]
    fn malformed_is_an_error() {
        for bad in [
            "<a><b></a>",
            "<a",
            "<a x='1' x='2'/>",
            "<p:a/>",
            "<a/><b/>",
            "<a><!-- c --></a>",
            "<a>&bogus;</a>",
            "",
            // Not qualified names (Namespaces in XML §4).
            "<:a/>",
            "<a:/>",
            "<p:a:b xmlns:p='urn:p'/>",
            "<a><:p:b/></a>",
            // Names that are not names.
            "<a b'c='1'/>",
            "<a x='1'y\"='2'/>",
            "<a 1b='1'/>",
            "<1a/>",
            // A prefix bound to no namespace, an element in none.
            "<p:a xmlns:p=''/>",
            "<a xmlns='urn:a'><b xmlns=''/></a>",
        ] {
            assert!(parse_str(bad).is_err(), "{bad} parsed");
        }
    }
}
