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
                return Err(format!(
                    "the parameter {} contains a NUL character",
                    shown_name(&name)
                ));
            }
            if map.insert(name.to_string(), value.to_string()).is_some() {
                return Err(format!(
                    "the parameter {} is given more than once",
                    shown_name(&name)
                ));
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

/// How much of a name from a request an error description shows.
const SHOWN_NAME_CHARS: usize = 32;

/// A name from a request (a parameter's, a claim's) as an error description shows it: cut
/// to [`SHOWN_NAME_CHARS`] characters, control characters escaped. A refusal names what is
/// wrong without echoing a long value back, whoever sent it.
pub fn shown_name(name: &str) -> String {
    let mut shown: String = name
        .chars()
        .take(SHOWN_NAME_CHARS)
        .flat_map(char::escape_debug)
        .collect();
    if name.chars().nth(SHOWN_NAME_CHARS).is_some() {
        shown.push('…');
    }
    shown
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

    #[test]
    fn refusals_show_at_most_the_start_of_a_name() {
        // Found by fuzzing: a refusal repeated a parameter's name however long it was.
        let long = "n".repeat(5000);
        for form in [format!("{long}=a&{long}=b"), format!("{long}=%00")] {
            let refused = Params::parse(form.as_bytes()).unwrap_err();
            assert!(refused.len() < 200, "{} bytes", refused.len());
            assert!(
                refused.contains(&format!("{}…", "n".repeat(32))),
                "{refused}"
            );
        }
        assert_eq!(shown_name("state"), "state");
        assert_eq!(shown_name("a\nb"), "a\\nb");
    }
}
