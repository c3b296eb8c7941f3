//! A plugin's self-description (read from the plugin process, so untrusted) and the checking of
//! parameter values against it, with messages that name the plugin, the parameter and what is
//! allowed.

use plugin_sdk::PixelFormat;
use plugin_sdk::abi::ParamValue;
use serde::{Deserialize, Serialize};

/// What a plugin says about itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginDescription {
    pub name: String,
    pub version: String,
    pub description: String,
    pub formats: Vec<String>,
    /// The ABI version the module was built for, as the runner that loaded it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abi_version: Option<u32>,
    /// Its inputs, for a plugin that takes several; empty: one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<InputSchema>,
    pub params: Vec<ParamSchema>,
}

/// One input of a plugin that takes several.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSchema {
    pub name: String,
    #[serde(default)]
    pub role: String,
}

/// One declared parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamSchema {
    pub name: String,
    #[serde(default)]
    pub help: String,
    #[serde(flatten)]
    pub kind: ParamType,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ParamType {
    Int { default: i64, min: i64, max: i64 },
    Float { default: f64, min: f64, max: f64 },
    Bool { default: bool },
    Enum { default: String, choices: Vec<String> },
    String { default: String },
}

impl ParamType {
    pub fn type_name(&self) -> &'static str {
        match self {
            ParamType::Int { .. } => "int",
            ParamType::Float { .. } => "float",
            ParamType::Bool { .. } => "bool",
            ParamType::Enum { .. } => "enum",
            ParamType::String { .. } => "string",
        }
    }

    pub fn default_value(&self) -> ParamValue {
        match self {
            ParamType::Int { default, .. } => ParamValue::Int(*default),
            ParamType::Float { default, .. } => ParamValue::Float(*default),
            ParamType::Bool { default } => ParamValue::Bool(*default),
            ParamType::Enum { default, .. } | ParamType::String { default } => ParamValue::Str(default.clone()),
        }
    }

    /// What values are allowed, for messages.
    pub fn allowed(&self) -> String {
        match self {
            ParamType::Int { min, max, .. } => format!("an int in {min}..={max}"),
            ParamType::Float { min, max, .. } => format!("a float in {min}..={max}"),
            ParamType::Bool { .. } => "true or false".into(),
            ParamType::Enum { choices, .. } => format!("one of {}", quoted_list(choices)),
            ParamType::String { .. } => "a string".into(),
        }
    }
}

fn quoted_list(items: &[String]) -> String {
    items.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ")
}

/// A parameter value that does not fit the schema.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParamError {
    #[error("unknown parameter \"{name}\"{}", suggestion_text(.suggestion, .known))]
    Unknown { name: String, suggestion: Option<String>, known: Vec<String> },
    #[error("parameter \"{name}\" must be {allowed}, not {given}")]
    WrongType { name: String, allowed: String, given: String },
    #[error("parameter \"{name}\" = {value} is out of range {range}")]
    OutOfRange { name: String, value: String, range: String },
    #[error("parameter \"{name}\" = \"{value}\" is not one of {choices}{}", .suggestion.as_ref().map(|s| format!(" (did you mean \"{s}\"?)")).unwrap_or_default())]
    NotAChoice { name: String, value: String, choices: String, suggestion: Option<String> },
    #[error("\"{text}\" is not KEY=VALUE")]
    Syntax { text: String },
    #[error("parameter \"{name}\" is given twice")]
    Twice { name: String },
}

fn suggestion_text(suggestion: &Option<String>, known: &[String]) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean \"{s}\"?)"),
        None if known.is_empty() => " (the plugin takes no parameters)".into(),
        None => format!(" (it takes {})", quoted_list(known)),
    }
}

fn describe_value(value: &ParamValue) -> String {
    match value {
        ParamValue::Int(v) => format!("the int {v}"),
        ParamValue::Float(v) => format!("the float {v}"),
        ParamValue::Bool(v) => format!("the bool {v}"),
        ParamValue::Str(v) => format!("the string \"{v}\""),
    }
}

impl PluginDescription {
    /// Parses and checks the JSON a plugin exported.
    pub fn parse(json: &str) -> Result<Self, String> {
        let description: PluginDescription =
            serde_json::from_str(json).map_err(|e| format!("its description is not valid: {e}"))?;
        if description.formats.is_empty() {
            return Err("its description lists no frame formats".into());
        }
        if description.inputs.len() > plugin_sdk::abi::MAX_INPUTS {
            let (n, most) = (description.inputs.len(), plugin_sdk::abi::MAX_INPUTS);
            return Err(format!("its description lists {n} inputs; at most {most}"));
        }
        // Input names and roles reach messages and configs: plain words only, checked here once.
        let plain = |text: &str, extra: fn(char) -> bool| {
            text.chars().count() <= 64
                && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || extra(c))
        };
        for (i, input) in description.inputs.iter().enumerate() {
            if input.name.is_empty() || !plain(&input.name, |_| false) {
                return Err("its description names an input with other than 1 to 64 letters, digits, '-' or '_'".into());
            }
            if !plain(&input.role, |c| c == ' ') {
                return Err(format!(
                    "input \"{}\" of its description has a role of other than plain words",
                    input.name
                ));
            }
            if description.inputs[..i].iter().any(|other| other.name == input.name) {
                return Err(format!("its description names input \"{}\" twice", input.name));
            }
        }
        for format in &description.formats {
            if PixelFormat::from_name(format).is_none() {
                return Err(format!("its description lists an unknown frame format \"{format}\""));
            }
        }
        for (i, param) in description.params.iter().enumerate() {
            if description.params[..i].iter().any(|p| p.name == param.name) {
                return Err(format!("its description declares parameter \"{}\" twice", param.name));
            }
            check_value(&param.name, &param.kind, &param.kind.default_value())
                .map_err(|e| format!("its description's default is invalid: {e}"))?;
        }
        Ok(description)
    }

    /// How many input frames the plugin takes per output frame.
    pub fn input_count(&self) -> usize {
        self.inputs.len().max(1)
    }

    pub fn accepts(&self, format: PixelFormat) -> bool {
        self.formats.iter().any(|f| f == format.name())
    }

    /// Checks `given` against the schema and returns every parameter, defaults filled in, in
    /// schema order. Integers are accepted for float parameters.
    pub fn resolve_params(&self, given: &[(String, ParamValue)]) -> Result<Vec<(String, ParamValue)>, ParamError> {
        for (name, _) in given {
            if !self.params.iter().any(|p| &p.name == name) {
                let known: Vec<String> = self.params.iter().map(|p| p.name.clone()).collect();
                return Err(ParamError::Unknown { name: name.clone(), suggestion: closest(name, &known), known });
            }
        }
        self.params
            .iter()
            .map(|p| {
                let value =
                    given.iter().find(|(n, _)| n == &p.name).map_or_else(|| p.kind.default_value(), |(_, v)| v.clone());
                let value = match (&p.kind, value) {
                    (ParamType::Float { .. }, ParamValue::Int(v)) => ParamValue::Float(v as f64),
                    (_, v) => v,
                };
                check_value(&p.name, &p.kind, &value)?;
                Ok((p.name.clone(), value))
            })
            .collect()
    }
}

fn check_value(name: &str, kind: &ParamType, value: &ParamValue) -> Result<(), ParamError> {
    let out_of_range = |value: String, range: String| ParamError::OutOfRange { name: name.into(), value, range };
    match (kind, value) {
        (ParamType::Int { min, max, .. }, ParamValue::Int(v)) if !(min..=max).contains(&v) => {
            Err(out_of_range(v.to_string(), format!("{min}..={max}")))
        }
        (ParamType::Float { min, max, .. }, ParamValue::Float(v)) if !(v >= min && v <= max) => {
            Err(out_of_range(v.to_string(), format!("{min}..={max}")))
        }
        (ParamType::Enum { choices, .. }, ParamValue::Str(v)) if !choices.contains(v) => Err(ParamError::NotAChoice {
            name: name.into(),
            value: v.clone(),
            choices: quoted_list(choices),
            suggestion: closest(v, choices),
        }),
        (ParamType::Int { .. }, ParamValue::Int(_))
        | (ParamType::Float { .. }, ParamValue::Float(_))
        | (ParamType::Bool { .. }, ParamValue::Bool(_))
        | (ParamType::Enum { .. } | ParamType::String { .. }, ParamValue::Str(_)) => Ok(()),
        (kind, value) => {
            Err(ParamError::WrongType { name: name.into(), allowed: kind.allowed(), given: describe_value(value) })
        }
    }
}

/// Parses `KEY=VALUE` as typed by a user, using the schema's type for KEY.
pub fn parse_assignment(description: &PluginDescription, text: &str) -> Result<(String, ParamValue), ParamError> {
    let Some((name, raw)) = text.split_once('=') else {
        return Err(ParamError::Syntax { text: text.into() });
    };
    let known: Vec<String> = description.params.iter().map(|p| p.name.clone()).collect();
    let Some(param) = description.params.iter().find(|p| p.name == name) else {
        return Err(ParamError::Unknown { name: name.into(), suggestion: closest(name, &known), known });
    };
    let wrong =
        || ParamError::WrongType { name: name.into(), allowed: param.kind.allowed(), given: format!("\"{raw}\"") };
    let value = match param.kind {
        ParamType::Int { .. } => ParamValue::Int(raw.parse().map_err(|_| wrong())?),
        ParamType::Float { .. } => ParamValue::Float(raw.parse().map_err(|_| wrong())?),
        ParamType::Bool { .. } => ParamValue::Bool(raw.parse().map_err(|_| wrong())?),
        ParamType::Enum { .. } | ParamType::String { .. } => ParamValue::Str(raw.to_string()),
    };
    Ok((name.to_string(), value))
}

/// The known name closest to `name` by edit distance, if it is close enough to be a typo.
pub fn closest(name: &str, known: &[String]) -> Option<String> {
    known
        .iter()
        .map(|k| (edit_distance(name, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.clone())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blur() -> PluginDescription {
        PluginDescription::parse(
            r#"{"name":"blur","version":"1","description":"","formats":["rgba8"],"params":[
            {"name":"radius","help":"","type":"int","default":3,"min":0,"max":64},
            {"name":"gain","help":"","type":"float","default":1.0,"min":0.0,"max":4.0},
            {"name":"axis","help":"","type":"enum","default":"x","choices":["x","y"]}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn fills_defaults_and_widens_ints_to_floats() {
        let given = vec![("gain".to_string(), ParamValue::Int(2))];
        let resolved = blur().resolve_params(&given).unwrap();
        assert_eq!(
            resolved,
            vec![
                ("radius".into(), ParamValue::Int(3)),
                ("gain".into(), ParamValue::Float(2.0)),
                ("axis".into(), ParamValue::Str("x".into()))
            ]
        );
    }

    #[test]
    fn errors_name_the_parameter_and_what_is_allowed() {
        let err = |name: &str, v: ParamValue| blur().resolve_params(&[(name.to_string(), v)]).unwrap_err().to_string();
        assert_eq!(err("radius", ParamValue::Int(200)), "parameter \"radius\" = 200 is out of range 0..=64");
        assert_eq!(
            err("radius", ParamValue::Str("big".into())),
            "parameter \"radius\" must be an int in 0..=64, not the string \"big\""
        );
        assert_eq!(
            err("axis", ParamValue::Str("xy".into())),
            "parameter \"axis\" = \"xy\" is not one of \"x\", \"y\" (did you mean \"x\"?)"
        );
        assert_eq!(
            err("axis", ParamValue::Str("horizontal".into())),
            "parameter \"axis\" = \"horizontal\" is not one of \"x\", \"y\""
        );
        assert_eq!(err("radus", ParamValue::Int(1)), "unknown parameter \"radus\" (did you mean \"radius\"?)");
        assert_eq!(
            err("zzzzzz", ParamValue::Int(1)),
            "unknown parameter \"zzzzzz\" (it takes \"radius\", \"gain\", \"axis\")"
        );
        assert!(err("gain", ParamValue::Float(f64::NAN)).contains("out of range"));
    }

    #[test]
    fn untrusted_descriptions_are_checked() {
        assert!(PluginDescription::parse("{").is_err());
        let with_inputs = |inputs: &str| {
            PluginDescription::parse(&format!(
                r#"{{"name":"x","version":"1","description":"","formats":["rgba8"],"inputs":{inputs},"params":[]}}"#
            ))
        };
        let two = with_inputs(r#"[{"name":"a","role":"background"},{"name":"b-2","role":"over lay"}]"#).unwrap();
        assert_eq!(two.input_count(), 2);
        assert!(with_inputs(r#"[{"name":"a\u001b[2J","role":""}]"#).unwrap_err().contains("letters, digits"));
        assert!(with_inputs(r#"[{"name":"a","role":"\u009b"}]"#).unwrap_err().contains("plain words"));
        assert!(with_inputs(r#"[{"name":"a","role":""},{"name":"a","role":""}]"#).unwrap_err().contains("twice"));
        assert!(
            PluginDescription::parse(r#"{"name":"x","version":"1","description":"","formats":["yuv"],"params":[]}"#)
                .is_err()
        );
        let bad_default = r#"{"name":"x","version":"1","description":"","formats":["rgba8"],"params":[{"name":"r","type":"int","default":9,"min":0,"max":1}]}"#;
        assert!(PluginDescription::parse(bad_default).is_err());
    }

    #[test]
    fn command_line_assignments_use_the_schema_type() {
        assert_eq!(parse_assignment(&blur(), "radius=5").unwrap(), ("radius".into(), ParamValue::Int(5)));
        assert!(parse_assignment(&blur(), "radius=five").is_err());
        assert!(parse_assignment(&blur(), "radius").is_err());
    }
}
