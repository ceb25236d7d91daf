//! Text that comes from a plugin (log messages, errors, what `describe()`
//! says), made safe to keep and to log.
//!
//! Control characters are escaped, so no plugin can end a log line and
//! write one of its own (`\n`, `\r`), or send a terminal escape sequence;
//! and the text is cut to a length the host chose, so no plugin can make
//! the host keep megabytes of it.

/// `text` with control characters escaped (`\n`, `\r`, `\u{1b}`; tabs
/// kept), cut to at most `max` bytes on a character boundary, with a mark
/// where it was cut.
pub fn clean(text: &str, max: usize) -> String {
    const CUT: &str = " … (cut)";
    let mut out = String::with_capacity(text.len().min(max));
    for c in text.chars() {
        let start = out.len();
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push('\t'),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => {
                out.extend(c.escape_unicode());
            }
            c => out.push(c),
        }
        if out.len() > max {
            out.truncate(start);
            while out.len() + CUT.len() > max {
                match out.pop() {
                    Some(_) => {}
                    None => break,
                }
            }
            out.push_str(CUT);
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn escapes_what_could_forge_a_line() {
        assert_eq!(
            clean("ok\n2026-01-01 ERROR forged\r\x1b[31m", 100),
            "ok\\n2026-01-01 ERROR forged\\r\\u{1b}[31m"
        );
        assert_eq!(clean("tab\tand é ✓", 100), "tab\tand é ✓");
        assert_eq!(clean("a\u{2028}b", 100), "a\\u{2028}b");
    }

    #[test]
    fn cuts_on_a_character_boundary() {
        let long = "é".repeat(100);
        let cut = clean(&long, 21);
        assert!(cut.len() <= 21, "{}", cut.len());
        assert!(cut.ends_with("(cut)"));
        assert_eq!(clean("short", 5), "short");
        assert!(clean(&"x\n".repeat(100), 30).len() <= 30);
    }
}
