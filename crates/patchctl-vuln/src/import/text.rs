//! What a document's bytes are: JSON, YAML (turned into JSON values) or XML (its root
//! element named without parsing the document).

use serde_json::Value;

use super::DocError;

/// The name of an XML document's root element (without namespace prefix), found
/// without parsing the document: the first start tag after the declaration, comments
/// and doctype.
pub(super) fn xml_root(text: &str) -> Option<&str> {
    let mut rest = text;
    loop {
        let at = rest.find('<')?;
        rest = &rest[at + 1..];
        if rest.starts_with('?') || rest.starts_with('!') {
            let end = if rest.starts_with("!--") {
                rest.find("-->")? + 3
            } else {
                rest.find('>')? + 1
            };
            rest = &rest[end..];
            continue;
        }
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
            .unwrap_or(rest.len());
        let name = &rest[..end];
        return Some(name.rsplit(':').next().unwrap_or(name));
    }
}

/// JSON when the first non-blank byte is `{` or `[`, YAML otherwise.
pub(super) fn decode(bytes: &[u8]) -> Result<Value, DocError> {
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let first = text.iter().find(|b| !b.is_ascii_whitespace());
    if matches!(first, Some(b'{' | b'[')) {
        serde_json::from_slice(text).map_err(|e| DocError::Syntax("JSON", e.to_string()))
    } else {
        let yaml: serde_yaml::Value =
            serde_yaml::from_slice(text).map_err(|e| DocError::Syntax("YAML", e.to_string()))?;
        Ok(yaml_to_json(yaml))
    }
}

/// A YAML value as JSON: scalar keys become strings, tags are dropped, non-finite
/// floats become strings.
fn yaml_to_json(v: serde_yaml::Value) -> Value {
    use serde_yaml::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f)
                    .map_or_else(|| Value::String(n.to_string()), Value::Number)
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(yaml_to_json).collect()),
        Y::Mapping(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let key = match yaml_to_json(k) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, yaml_to_json(v))
                })
                .collect(),
        ),
        Y::Tagged(tagged) => yaml_to_json(tagged.value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_root_elements() {
        assert_eq!(
            xml_root("<?xml version=\"1.0\"?>\n<!-- c -->\n<updates>"),
            Some("updates")
        );
        assert_eq!(
            xml_root("<oval:oval_definitions xmlns:oval=\"x\">"),
            Some("oval_definitions")
        );
        assert_eq!(xml_root("<!DOCTYPE x><repomd/>"), Some("repomd"));
        assert_eq!(xml_root("no xml"), None);
    }

    #[test]
    fn yaml_keys_become_strings() {
        let Ok(v) = decode(b"distroversion: v3.11\npackages:\n  - pkg:\n      name: x\n      secfixes:\n        1.5: [CVE-1]\n") else {
            panic!("valid YAML");
        };
        assert_eq!(v["packages"][0]["pkg"]["secfixes"]["1.5"][0], "CVE-1");
    }
}
