//! The JSON description a plugin exports (see [`crate::abi`]): a small writer, so that the SDK
//! needs no dependencies inside the wasm module.

use crate::{ParamKind, ParamSpec, PixelFormat};
use std::fmt::Write;

/// The description JSON for a plugin with this metadata, formats and parameters.
pub fn describe_json(
    name: &str,
    version: &str,
    description: &str,
    formats: &[PixelFormat],
    inputs: &[crate::InputSpec],
    params: &[ParamSpec],
) -> String {
    let mut out = String::from("{");
    let _ =
        write!(out, "\"name\":{},\"version\":{},\"description\":{},", quote(name), quote(version), quote(description));
    let formats: Vec<String> = formats.iter().map(|f| quote(f.name())).collect();
    let _ = write!(out, "\"formats\":[{}],", formats.join(","));
    // One input is the default, and what a description without the key means.
    if inputs != [crate::InputSpec::MAIN] {
        let inputs: Vec<String> =
            inputs.iter().map(|i| format!("{{\"name\":{},\"role\":{}}}", quote(i.name), quote(i.role))).collect();
        let _ = write!(out, "\"inputs\":[{}],", inputs.join(","));
    }
    out.push_str("\"params\":[");
    for (i, spec) in params.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{{\"name\":{},\"help\":{},", quote(spec.name), quote(spec.help));
        let _ = match &spec.kind {
            ParamKind::Int { default, min, max } => {
                write!(out, "\"type\":\"int\",\"default\":{default},\"min\":{min},\"max\":{max}")
            }
            ParamKind::Float { default, min, max } => {
                write!(
                    out,
                    "\"type\":\"float\",\"default\":{},\"min\":{},\"max\":{}",
                    number(*default),
                    number(*min),
                    number(*max)
                )
            }
            ParamKind::Bool { default } => write!(out, "\"type\":\"bool\",\"default\":{default}"),
            ParamKind::Enum { default, choices } => {
                let choices: Vec<String> = choices.iter().map(|c| quote(c)).collect();
                write!(out, "\"type\":\"enum\",\"default\":{},\"choices\":[{}]", quote(default), choices.join(","))
            }
            ParamKind::String { default } => write!(out, "\"type\":\"string\",\"default\":{}", quote(default)),
        };
        out.push('}');
    }
    out.push_str("]}");
    out
}

fn number(value: f64) -> String {
    if value.is_finite() { format!("{value:?}") } else { "null".to_string() }
}

fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_escaped_json() {
        let json = describe_json(
            "a\"b",
            "1.0",
            "line\nbreak",
            &[PixelFormat::Rgba8],
            &[crate::InputSpec::MAIN],
            &[ParamSpec::float("gain", 1.0, 0.0..=4.0).help("how much"), ParamSpec::choice("axis", "x", &["x", "y"])],
        );
        assert_eq!(
            json,
            r#"{"name":"a\"b","version":"1.0","description":"line\nbreak","formats":["rgba8"],"params":[{"name":"gain","help":"how much","type":"float","default":1.0,"min":0.0,"max":4.0},{"name":"axis","help":"","type":"enum","default":"x","choices":["x","y"]}]}"#
        );
        let two = [crate::InputSpec::new("a", "background"), crate::InputSpec::new("b", "overlay")];
        let json = describe_json("mix", "1", "", &[PixelFormat::Rgba8], &two, &[]);
        assert_eq!(
            json,
            r#"{"name":"mix","version":"1","description":"","formats":["rgba8"],"inputs":[{"name":"a","role":"background"},{"name":"b","role":"overlay"}],"params":[]}"#
        );
    }
}
