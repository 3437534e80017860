//! A small tree over EC2's XML answers, enough to read and rewrite moto's: elements, raw text
//! (entities left as they came, so what is not changed is written back byte for byte) and the
//! root's attributes.

/// A node: an element or text.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// An element.
    El(Element),
    /// Raw text (entities not decoded).
    Text(String),
}

/// An element.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Element {
    /// Its name (no namespace prefix in EC2's answers).
    pub name: String,
    /// Its attributes, raw.
    pub attrs: Vec<(String, String)>,
    /// Its children.
    pub children: Vec<Node>,
}

impl Element {
    /// A new element with text `text` (raw: escape it first when it can hold `<` or `&`).
    pub fn with_text(name: &str, text: &str) -> Element {
        Element {
            name: name.into(),
            attrs: Vec::new(),
            children: vec![Node::Text(text.into())],
        }
    }

    /// A new element with `children`.
    pub fn with(name: &str, children: Vec<Element>) -> Element {
        Element {
            name: name.into(),
            attrs: Vec::new(),
            children: children.into_iter().map(Node::El).collect(),
        }
    }

    /// The first child element named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.name == name)
    }

    /// The first child element named `name`, to change.
    pub fn child_mut(&mut self, name: &str) -> Option<&mut Element> {
        self.children.iter_mut().find_map(|n| match n {
            Node::El(e) if e.name == name => Some(e),
            _ => None,
        })
    }

    /// The element at `path` (child names separated by `/`).
    pub fn at(&self, path: &str) -> Option<&Element> {
        path.split('/').try_fold(self, |e, name| e.child(name))
    }

    /// The element at `path`, to change.
    pub fn at_mut(&mut self, path: &str) -> Option<&mut Element> {
        let mut e = self;
        for name in path.split('/') {
            e = e.child_mut(name)?;
        }
        Some(e)
    }

    /// The child elements.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::El(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// The child elements, to change.
    pub fn elements_mut(&mut self) -> impl Iterator<Item = &mut Element> {
        self.children.iter_mut().filter_map(|n| match n {
            Node::El(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// This element's text (its text children joined).
    pub fn text(&self) -> String {
        self.children
            .iter()
            .filter_map(|n| match n {
                Node::Text(t) => Some(t.as_str()),
                Node::El(_) => None,
            })
            .collect()
    }

    /// The text of the element at `path`, if there is one.
    pub fn text_at(&self, path: &str) -> Option<String> {
        self.at(path).map(Element::text)
    }

    /// Replaces this element's children with `text`.
    pub fn set_text(&mut self, text: &str) {
        self.children = vec![Node::Text(text.into())];
    }

    /// Sets the text of child `name`, adding the child when missing.
    pub fn set_child_text(&mut self, name: &str, text: &str) {
        match self.child_mut(name) {
            Some(c) => c.set_text(text),
            None => self.children.push(Node::El(Element::with_text(name, text))),
        }
    }

    /// Keeps only the child elements for which `keep` says so (text children stay).
    pub fn retain_elements(&mut self, mut keep: impl FnMut(&Element) -> bool) {
        self.children.retain(|n| match n {
            Node::El(e) => keep(e),
            Node::Text(_) => true,
        });
    }

    /// Appends child element `e`.
    pub fn push(&mut self, e: Element) {
        self.children.push(Node::El(e));
    }

    fn write(&self, out: &mut String) {
        out.push('<');
        out.push_str(&self.name);
        for (k, v) in &self.attrs {
            out.push_str(&format!(" {k}=\"{v}\""));
        }
        if self.children.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        for c in &self.children {
            match c {
                Node::El(e) => e.write(out),
                Node::Text(t) => out.push_str(t),
            }
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }

    /// The document with this element as its root.
    pub fn to_document(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        self.write(&mut out);
        out
    }
}

/// Escapes `s` for XML text.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Parses a document; `None` when it is not well-formed XML.
pub fn parse(doc: &str) -> Option<Element> {
    use xmlparser::{ElementEnd, Token, Tokenizer};
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    for token in Tokenizer::from(doc) {
        match token.ok()? {
            Token::ElementStart { local, .. } => stack.push(Element {
                name: local.as_str().to_string(),
                ..Element::default()
            }),
            Token::Attribute {
                prefix,
                local,
                value,
                ..
            } => {
                let name = if prefix.is_empty() {
                    local.as_str().to_string()
                } else {
                    format!("{}:{}", prefix.as_str(), local.as_str())
                };
                stack
                    .last_mut()?
                    .attrs
                    .push((name, value.as_str().to_string()));
            }
            Token::ElementEnd { end, .. } => match end {
                ElementEnd::Open => {}
                ElementEnd::Close(..) | ElementEnd::Empty => {
                    let done = stack.pop()?;
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(Node::El(done)),
                        None => root = Some(done),
                    }
                }
            },
            Token::Text { text } => {
                if let Some(e) = stack.last_mut() {
                    e.children.push(Node::Text(text.as_str().to_string()));
                }
            }
            Token::Cdata { text, .. } => {
                if let Some(e) = stack.last_mut() {
                    e.children.push(Node::Text(escape(text.as_str())));
                }
            }
            _ => {}
        }
    }
    root
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_changes_and_writes_back() {
        let doc = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<R xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15\"><set><item><id>a</id><s>x &amp; y</s></item><item><id>b</id></item></set><e/></R>";
        let mut root = parse(doc).unwrap();
        assert_eq!(root.text_at("set/item/s").unwrap(), "x &amp; y");
        root.at_mut("set")
            .unwrap()
            .retain_elements(|i| i.text_at("id").as_deref() != Some("a"));
        root.at_mut("set/item")
            .unwrap()
            .set_child_text("extra", "1");
        assert_eq!(
            root.to_document(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<R xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15\"><set><item><id>b</id><extra>1</extra></item></set><e/></R>"
        );
        assert!(parse("<a><b></a>").is_none());
    }
}
