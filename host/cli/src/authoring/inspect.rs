//! `plugin-host inspect`: what a plugin says about itself (read from its real process, so
//! untrusted: escaped before it reaches a terminal), as text or as JSON for tools.

use super::plugin_name;
use plugin_host::process::{PluginError, PluginProcess, PluginSpec};
use plugin_host::schema::PluginDescription;
use plugin_sdk::abi::{ABI_VERSION, ParamValue};
use std::path::Path;

/// Loads the plugin in its process and describes it: text, or JSON (the description plus
/// `abi_version`) with `json`.
pub fn render(plugin: &Path, json: bool) -> Result<String, PluginError> {
    let description = describe(plugin)?;
    Ok(if json { to_json(&description) } else { to_text(&description) })
}

/// What the plugin in `plugin` says about itself, read from its real process.
pub fn describe(plugin: &Path) -> Result<PluginDescription, PluginError> {
    let process = PluginProcess::spawn(PluginSpec::new(plugin_name(plugin), plugin, 4096))?;
    let description = process.description().clone();
    process.shutdown()?;
    Ok(description)
}

/// One line for `plugin-host list`: the name a chain finds it by, version, formats and the
/// description's first line, each escaped for a terminal.
pub fn list_line(found_as: &str, d: &PluginDescription) -> String {
    let first = d.description.lines().next().unwrap_or("");
    // A chain names a plugin by its file; say so when the plugin calls itself otherwise.
    let head = match found_as == d.name {
        true => format!("{} {}", terminal_safe(found_as), terminal_safe(&d.version)),
        false => format!(
            "{} {} (calls itself {})",
            terminal_safe(found_as),
            terminal_safe(&d.version),
            terminal_safe(&d.name)
        ),
    };
    format!("{head:<24} {:<12} {}", d.formats.join(","), terminal_safe(first))
}

/// The JSON form: `{"abi_version": 1, "name", "version", "description", "formats", "params"}`,
/// `params` as in the ABI's description format.
pub fn to_json(description: &PluginDescription) -> String {
    let value = serde_json::to_value(description).unwrap_or_default();
    let text = serde_json::to_string_pretty(&value).unwrap_or_default();
    // JSON escapes only C0 controls; C1 controls and bidi overrides would reach a terminal that
    // shows the output. Inside strings, \uXXXX is the same text to any JSON reader.
    let mut safe = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        if plugin_host::text::needs_escape(c) && c as u32 >= 0x80 {
            safe.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            safe.push(c);
        }
    }
    safe.push('\n');
    safe
}

/// The text form: name and version, description, ABI version, formats, then one line per
/// parameter with its type, default, allowed values and help.
pub fn to_text(d: &PluginDescription) -> String {
    let clean = terminal_safe;
    let mut out = format!(
        "{} {}\n{}\nABI version: {}\nformats: {}\n",
        clean(&d.name),
        clean(&d.version),
        clean(&d.description),
        d.abi_version.unwrap_or(ABI_VERSION),
        d.formats.join(", ")
    );
    if !d.inputs.is_empty() {
        let inputs: Vec<String> = d.inputs.iter().map(|i| format!("{} ({})", clean(&i.name), clean(&i.role))).collect();
        out.push_str(&format!("inputs: {}\n", inputs.join(", ")));
    }
    if d.params.is_empty() {
        out.push_str("params: none\n");
    } else {
        out.push_str("params:\n");
    }
    for p in &d.params {
        let default = match p.kind.default_value() {
            ParamValue::Int(v) => v.to_string(),
            ParamValue::Float(v) => v.to_string(),
            ParamValue::Bool(v) => v.to_string(),
            ParamValue::Str(v) => format!("\"{}\"", clean(&v)),
        };
        let help = if p.help.is_empty() { String::new() } else { format!(" — {}", clean(&p.help)) };
        out.push_str(&format!(
            "  {} ({}, default {default}): {}{help}\n",
            clean(&p.name),
            p.kind.type_name(),
            clean(&p.kind.allowed())
        ));
    }
    out
}

/// `text` with control characters (escape sequences, newlines) escaped, so that what a plugin
/// wrote cannot drive the terminal or fake extra lines.
use plugin_host::text::terminal_safe;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_what_a_terminal_would_obey() {
        let description = PluginDescription { name: "evil\u{202e}\u{9b}2J".into(), ..PluginDescription::default() };
        let json = to_json(&description);
        assert!(!json.contains('\u{202e}') && !json.contains('\u{9b}'), "{json}");
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["name"], "evil\u{202e}\u{9b}2J", "the same text to a JSON reader");
    }

    #[test]
    fn text_escapes_control_characters_only() {
        assert_eq!(terminal_safe("it's \"x\"\u{1b}[2J\nfake"), "it's \"x\"\\u{1b}[2J\\u{a}fake");
    }
}
