//! Typed plugin parameters: the schema a plugin declares and the values it receives.

use crate::abi::ParamValue;

/// The type of a parameter, with its default and allowed values.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamKind {
    Int {
        default: i64,
        min: i64,
        max: i64,
    },
    Float {
        default: f64,
        min: f64,
        max: f64,
    },
    Bool {
        default: bool,
    },
    /// One of a fixed list of strings.
    Enum {
        default: &'static str,
        choices: &'static [&'static str],
    },
    String {
        default: &'static str,
    },
}

/// One declared parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    pub name: &'static str,
    pub kind: ParamKind,
    pub help: &'static str,
}

impl ParamSpec {
    pub fn int(name: &'static str, default: i64, range: std::ops::RangeInclusive<i64>) -> Self {
        Self::of(name, ParamKind::Int { default, min: *range.start(), max: *range.end() })
    }
    pub fn float(name: &'static str, default: f64, range: std::ops::RangeInclusive<f64>) -> Self {
        Self::of(name, ParamKind::Float { default, min: *range.start(), max: *range.end() })
    }
    pub fn bool(name: &'static str, default: bool) -> Self {
        Self::of(name, ParamKind::Bool { default })
    }
    pub fn choice(name: &'static str, default: &'static str, choices: &'static [&'static str]) -> Self {
        Self::of(name, ParamKind::Enum { default, choices })
    }
    pub fn string(name: &'static str, default: &'static str) -> Self {
        Self::of(name, ParamKind::String { default })
    }
    /// Adds the help text shown by `plugin-host inspect`.
    pub fn help(mut self, help: &'static str) -> Self {
        self.help = help;
        self
    }
    fn of(name: &'static str, kind: ParamKind) -> Self {
        Self { name, kind, help: "" }
    }

    pub fn default_value(&self) -> ParamValue {
        match &self.kind {
            ParamKind::Int { default, .. } => ParamValue::Int(*default),
            ParamKind::Float { default, .. } => ParamValue::Float(*default),
            ParamKind::Bool { default } => ParamValue::Bool(*default),
            ParamKind::Enum { default, .. } | ParamKind::String { default } => ParamValue::Str(default.to_string()),
        }
    }
}

/// The parameter values a plugin instance is created with.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    values: Vec<(String, ParamValue)>,
}

impl Params {
    /// Values for `schema`: each taken from `given` when present there, else its default.
    pub fn resolve(schema: &[ParamSpec], given: &[(String, ParamValue)]) -> Self {
        let values = schema
            .iter()
            .map(|spec| {
                let value = given
                    .iter()
                    .find(|(name, _)| name == spec.name)
                    .map_or_else(|| spec.default_value(), |(_, v)| v.clone());
                (spec.name.to_string(), value)
            })
            .collect();
        Self { values }
    }

    pub fn get(&self, name: &str) -> Option<&ParamValue> {
        self.values.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// An `int` parameter's value. Panics if `name` is not an int parameter the plugin declared:
    /// that is a bug in the plugin, caught by its first test.
    pub fn int(&self, name: &str) -> i64 {
        match self.get(name) {
            Some(ParamValue::Int(v)) => *v,
            other => undeclared(name, "int", other),
        }
    }
    pub fn float(&self, name: &str) -> f64 {
        match self.get(name) {
            Some(ParamValue::Float(v)) => *v,
            Some(ParamValue::Int(v)) => *v as f64,
            other => undeclared(name, "float", other),
        }
    }
    pub fn bool(&self, name: &str) -> bool {
        match self.get(name) {
            Some(ParamValue::Bool(v)) => *v,
            other => undeclared(name, "bool", other),
        }
    }
    /// A `string` or `enum` parameter's value.
    pub fn str(&self, name: &str) -> &str {
        match self.get(name) {
            Some(ParamValue::Str(v)) => v,
            other => undeclared(name, "string", other),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &ParamValue)> {
        self.values.iter().map(|(n, v)| (n.as_str(), v))
    }
}

fn undeclared(name: &str, kind: &str, found: Option<&ParamValue>) -> ! {
    panic!("parameter \"{name}\" was read as {kind} but is {found:?}: declare it in Plugin::params")
}
