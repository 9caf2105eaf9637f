//! Text from dead letters and from Genesys Cloud as HTML: escaped, with control and bidi
//! characters shown by name so they can neither hide nor reorder what surrounds them.

use std::fmt::{self, Write};

/// The escaper askama applies to every `{{ value }}` of the `.html` templates
/// (`askama.toml`): markup characters and quotes as entities, control and bidi characters
/// by name, so escaping is the default, not a call to remember. Only the page's own
/// style and script are written `|safe`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Html;

impl askama::filters::Escaper for Html {
    fn write_escaped_str<W: Write>(&self, mut dest: W, s: &str) -> fmt::Result {
        let mut start = 0;
        for (at, c) in s.char_indices() {
            let named = match c {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '"' => "&quot;",
                '\'' => "&#39;",
                '\n' | '\t' => continue,
                c if is_hidden(c) => {
                    dest.write_str(&s[start..at])?;
                    write!(dest, "\u{27e8}U+{:04X}\u{27e9}", u32::from(c))?;
                    start = at + c.len_utf8();
                    continue;
                }
                _ => continue,
            };
            dest.write_str(&s[start..at])?;
            dest.write_str(named)?;
            start = at + c.len_utf8();
        }
        dest.write_str(&s[start..])
    }
}

/// Characters that would be invisible or change the direction of the text around them.
fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

/// At most `max` characters of `s`, and how many were left out.
pub(super) fn capped(s: &str, max: usize) -> (&str, usize) {
    match s.char_indices().nth(max) {
        Some((at, _)) => (&s[..at], s[at..].chars().count()),
        None => (s, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &str) -> String {
        let mut out = String::new();
        askama::filters::Escaper::write_escaped_str(&Html, &mut out, s).unwrap();
        out
    }

    #[test]
    fn markup_and_quotes_are_escaped() {
        assert_eq!(
            esc(r#""><img src=x onerror=alert(1)>'"#),
            "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;&#39;"
        );
        assert_eq!(esc("a & b"), "a &amp; b");
    }

    #[test]
    fn bidi_and_control_characters_are_shown_by_name() {
        assert_eq!(
            esc("abc\u{202E}txt.exe\u{0007}"),
            "abc\u{27e8}U+202E\u{27e9}txt.exe\u{27e8}U+0007\u{27e9}"
        );
        assert_eq!(esc("line\nnext"), "line\nnext");
    }

    #[test]
    fn capping_counts_characters_not_bytes() {
        assert_eq!(capped("ééé", 2), ("éé", 1));
        assert_eq!(capped("ab", 5), ("ab", 0));
    }
}
