//! Text that came from a plugin process (error messages, trap backtraces with the module's own
//! function names, descriptions, import names): hostile. [`PluginText`] is the one type such text
//! travels in on the host side; its `Display` escapes every control character (newlines and ESC
//! included) and every bidirectional-formatting character, and cuts the text at
//! [`PluginText::MAX_CHARS`], so that nothing a plugin writes can forge a line, move the cursor,
//! retitle the window or reorder what a terminal shows.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Untrusted text from a plugin; shown only escaped and cut.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PluginText(String);

impl PluginText {
    /// Characters shown at most; the rest is replaced by a count.
    pub const MAX_CHARS: usize = 4000;

    /// The raw text, for code that parses it (never for printing).
    pub fn raw(&self) -> &str {
        &self.0
    }
}

impl From<String> for PluginText {
    fn from(text: String) -> Self {
        Self(text)
    }
}

impl From<&str> for PluginText {
    fn from(text: &str) -> Self {
        Self(text.to_string())
    }
}

/// Whether `c` changes the direction text is shown in (the Unicode bidi controls).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Whether `c` is shown escaped: control characters (C0 and C1, newlines included) and bidi controls.
pub fn needs_escape(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

/// Writes `text` with control and bidi characters escaped, cut once `max` characters have
/// been written (escapes count as what they print).
pub fn write_escaped(f: &mut impl fmt::Write, text: &str, max: usize) -> fmt::Result {
    let mut written = 0;
    for (taken, c) in text.chars().enumerate() {
        let escaped = needs_escape(c);
        let width = if escaped { c.escape_unicode().len() } else { 1 };
        if written + width > max {
            let rest = text.chars().count() - taken;
            return write!(f, "… ({rest} more characters)");
        }
        written += width;
        if escaped {
            write!(f, "{}", c.escape_unicode())?;
        } else {
            f.write_char(c)?;
        }
    }
    Ok(())
}

impl fmt::Display for PluginText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, &self.0, Self::MAX_CHARS)
    }
}

/// `text` escaped and cut as [`PluginText`] shows it.
pub fn terminal_safe(text: &str) -> String {
    PluginText::from(text).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_a_plugin_writes_reaches_the_terminal_raw() {
        let hostile = "ok\nerror: forged line\x1b]0;title\x07\x1b[2J\u{202E}gnp.exe\r";
        let shown = PluginText::from(hostile).to_string();
        for bad in ['\n', '\r', '\x1b', '\x07', '\u{202E}'] {
            assert!(!shown.contains(bad), "{bad:?} reached the output: {shown}");
        }
        assert!(shown.starts_with("ok\\u{a}error: forged line"), "{shown}");
    }

    #[test]
    fn long_text_is_cut() {
        let shown = PluginText::from("x".repeat(1_000_000)).to_string();
        assert!(shown.len() < PluginText::MAX_CHARS + 100);
        assert!(shown.ends_with("(996000 more characters)"), "{}", &shown[shown.len() - 40..]);
        // Escapes count as what they print: 5,000 C1 characters do not become 30,000.
        let shown = PluginText::from("\u{9b}".repeat(5000)).to_string();
        assert!(shown.chars().count() < PluginText::MAX_CHARS + 100, "{} characters", shown.chars().count());
    }
}
