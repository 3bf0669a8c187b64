//! Form or query parameters of an OAuth request (`/authorize`, `/par`, `/token`), parsed
//! strictly: each at most once (RFC 6749 §3.1), no NUL, empty values counted as absent.

use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    pub fn parse(encoded: &[u8]) -> Result<Self, String> {
        let mut map = HashMap::new();
        for (name, value) in form_urlencoded::parse(encoded) {
            // No OAuth parameter has a use for NUL, and what is stored of a request must
            // stay valid for PostgreSQL, whose text refuses it.
            if name.contains('\0') || value.contains('\0') {
                return Err(format!("the parameter {name} contains a NUL character"));
            }
            if map.insert(name.to_string(), value.to_string()).is_some() {
                return Err(format!("the parameter {name} is given more than once"));
            }
        }
        Ok(Self(map))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Every parameter, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// A space-separated parameter (`scope`, `prompt`) as its words.
    pub fn words(&self, name: &str) -> Vec<&str> {
        self.get(name)
            .unwrap_or_default()
            .split(' ')
            .filter(|word| !word.is_empty())
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parameters_may_not_repeat() {
        assert!(Params::parse(b"a=1&b=2").is_ok());
        assert!(Params::parse(b"a=1&a=2").is_err());
        assert!(Params::parse(b"state=x%00y").is_err());
        assert!(Params::parse(b"st%00ate=x").is_err());
        assert_eq!(Params::parse(b"a=&b=x").unwrap().get("a"), None);
        assert_eq!(
            Params::parse(b"scope=openid++region%20")
                .unwrap()
                .words("scope"),
            ["openid", "region"]
        );
    }
}
