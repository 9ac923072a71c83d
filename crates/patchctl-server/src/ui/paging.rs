//! Links between the pages of a dashboard list: the query of the current page with
//! one parameter replaced (`from`, `cursor`), built with the form encoding so that a
//! filter value never breaks out of its parameter.

/// The query string (without `?`) of `params` where `key` is `value` (added or replaced)
/// and empty values are left out.
pub fn with(params: &[(&str, String)], key: &str, value: &str) -> String {
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .filter(|(k, v)| *k != key && !v.is_empty())
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    pairs.push((key, value));
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_one_parameter_and_encodes_the_others() {
        let q = [
            ("q", "a&b=c <x>".to_owned()),
            ("from", "100".to_owned()),
            ("kev", String::new()),
        ];
        assert_eq!(with(&q, "from", "200"), "q=a%26b%3Dc+%3Cx%3E&from=200");
    }
}
