//! Text cut to fit a line: error messages in one-line errors, reports and summaries.

/// `s` cut to at most `max` characters, with `…` where it was cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// The first line of `s`, trimmed.
pub(crate) fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default().trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_at_characters_not_bytes() {
        assert_eq!(truncate("ééé", 2), "éé…");
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(first_line("  one \ntwo"), "one");
        assert_eq!(first_line(""), "");
    }
}
