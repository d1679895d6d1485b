//! XEP-0004 data forms: the publish-options of XEP-0357 and the push summary.

use crate::error::InvalidStanza;
use crate::ns;
use crate::xml::Element;

/// One form field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// The `var`.
    pub var: String,
    /// The `type` attribute, if any (`hidden`, `text-single`, `jid-single`…).
    pub kind: Option<String>,
    /// The values (an empty field has none).
    pub values: Vec<String>,
}

/// A data form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataForm {
    /// `submit`, `form`, `result` or `cancel`.
    pub kind: String,
    /// The fields in order, FORM_TYPE included.
    pub fields: Vec<Field>,
}

impl DataForm {
    /// An empty form of `kind` with a hidden FORM_TYPE.
    pub fn new(kind: &str, form_type: &str) -> Self {
        DataForm {
            kind: kind.into(),
            fields: vec![Field {
                var: "FORM_TYPE".into(),
                kind: Some("hidden".into()),
                values: vec![form_type.into()],
            }],
        }
    }

    /// The `publish-options` submit form XEP-0357 enable carries.
    pub fn publish_options() -> Self {
        Self::new(
            "submit",
            "http://jabber.org/protocol/pubsub#publish-options",
        )
    }

    /// Builder: adds a field with one value.
    pub fn field(mut self, var: &str, value: &str) -> Self {
        self.fields.push(Field {
            var: var.into(),
            kind: None,
            values: vec![value.into()],
        });
        self
    }

    /// The FORM_TYPE value.
    pub fn form_type(&self) -> Option<&str> {
        self.value("FORM_TYPE")
    }

    /// A field's first value (None when absent or empty).
    pub fn value(&self, var: &str) -> Option<&str> {
        self.get(var)
            .and_then(|f| f.values.first())
            .map(String::as_str)
    }

    /// A field.
    pub fn get(&self, var: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.var == var)
    }

    /// As an `<x xmlns='jabber:x:data'>` element.
    pub fn to_element(&self) -> Element {
        let mut x = Element::new("x", ns::DATA).attr("type", self.kind.clone());
        for f in &self.fields {
            let mut fe = Element::new("field", ns::DATA).attr("var", f.var.clone());
            if let Some(k) = &f.kind {
                fe.set_attr("type", k.clone());
            }
            for v in &f.values {
                fe.push_child(Element::new("value", ns::DATA).text(v.clone()));
            }
            x.push_child(fe);
        }
        x
    }

    /// Parses an `<x xmlns='jabber:x:data'>`.
    pub fn from_element(x: &Element) -> Result<Self, InvalidStanza> {
        if !x.is("x", ns::DATA) {
            return Err(InvalidStanza::new("not a data form", x));
        }
        let mut fields = Vec::new();
        for f in x.children().filter(|c| c.is("field", ns::DATA)) {
            let var = f
                .get_attr("var")
                .ok_or_else(|| InvalidStanza::new("form field without var", x))?;
            fields.push(Field {
                var: var.into(),
                kind: f.get_attr("type").map(str::to_string),
                values: f
                    .children()
                    .filter(|v| v.is("value", ns::DATA))
                    .map(|v| v.text_content())
                    .collect(),
            });
        }
        Ok(DataForm {
            kind: x.get_attr("type").unwrap_or("").to_string(),
            fields,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_empty_fields() {
        let f = DataForm::publish_options().field("secret", "s3");
        assert_eq!(DataForm::from_element(&f.to_element()).unwrap(), f);
        let x = crate::xml::parse_str(
            "<x xmlns='jabber:x:data' type='form'><field type='hidden' var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field>\
             <field type='jid-single' var='last-message-sender'/></x>",
        )
        .unwrap();
        let f = DataForm::from_element(&x).unwrap();
        assert_eq!(f.form_type(), Some("urn:xmpp:push:summary"));
        assert_eq!(f.value("last-message-sender"), None);
        assert!(f.get("last-message-sender").is_some());
        let bad = crate::xml::parse_str("<x xmlns='jabber:x:data'><field/></x>").unwrap();
        assert!(DataForm::from_element(&bad).is_err());
    }
}
