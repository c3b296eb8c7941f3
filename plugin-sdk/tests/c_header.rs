//! `plugins-c/plugin_abi.h` is a hand-written C copy of `abi.rs`; this test fails when the two
//! differ: every constant, every export and import name, and the frame descriptor's layout.
//! (The functions' parameter lists are not compared: abi.rs states them only in its docs.)

use plugin_sdk::abi::{self, FrameDesc, LogLevel, ParamTag, PixelFormat, Status};
use std::collections::BTreeMap;

const HEADER: &str = include_str!("../../plugins-c/plugin_abi.h");

/// Every `#define PLUGIN_NAME value`, whose value must be a decimal integer or a product of them
/// (any other form fails the test, so that nothing escapes the comparison). The include guard and
/// the export macro are not constants.
fn header_constants() -> BTreeMap<String, i64> {
    let mut constants = BTreeMap::new();
    for line in HEADER.lines() {
        let Some(rest) = line.strip_prefix("#define ") else { continue };
        let rest = rest.split("/*").next().unwrap_or(rest).trim();
        if rest == "PLUGIN_ABI_H" || rest.starts_with("PLUGIN_EXPORT(") {
            continue;
        }
        let (name, value) = rest.split_once(char::is_whitespace).unwrap_or_else(|| panic!("{line}: no value"));
        let factors: Option<Vec<i64>> =
            value.trim().trim_matches(['(', ')']).split('*').map(|f| f.trim().parse().ok()).collect();
        let factors = factors.unwrap_or_else(|| panic!("{line}: the test cannot read this value; write it in decimal"));
        constants.insert(name.to_string(), factors.iter().product());
    }
    constants
}

/// Every constant the header must define, from `abi.rs`.
fn abi_constants() -> BTreeMap<String, i64> {
    let mut expected = BTreeMap::new();
    let mut add = |name: String, value: i64| assert!(expected.insert(name, value).is_none());
    add("PLUGIN_ABI_VERSION".into(), abi::ABI_VERSION.into());
    for status in Status::ALL {
        add(format!("PLUGIN_{}", format!("{status:?}").to_uppercase()), status as i64);
    }
    for format in PixelFormat::ALL {
        add(format!("PLUGIN_FORMAT_{}", format.name().to_uppercase()), format as i64);
    }
    for level in (0..64).filter_map(LogLevel::from_i32) {
        add(format!("PLUGIN_LOG_{}", format!("{level:?}").to_uppercase()), level as i64);
    }
    for tag in ParamTag::ALL {
        add(format!("PLUGIN_PARAM_{}", format!("{tag:?}").to_uppercase()), tag as i64);
    }
    add("PLUGIN_MAX_DESCRIBE_BYTES".into(), abi::MAX_DESCRIBE_BYTES as i64);
    add("PLUGIN_MAX_MESSAGE_BYTES".into(), abi::MAX_MESSAGE_BYTES as i64);
    expected
}

#[test]
fn the_header_defines_exactly_the_abi_constants() {
    assert_eq!(header_constants(), abi_constants());
}

#[test]
fn the_header_exports_and_imports_the_abi_names() {
    let mut exports = Vec::new();
    for line in HEADER.lines().filter(|l| l.starts_with("PLUGIN_EXPORT(\"")) {
        let (export, rest) = line["PLUGIN_EXPORT(\"".len()..].split_once("\")").unwrap();
        let function = rest.split('(').next().unwrap().split_whitespace().last().unwrap();
        assert_eq!(export, function, "{line}: the C function is named as its export");
        exports.push(export);
    }
    exports.sort_unstable();
    let mut expected = abi::EXPORTS;
    expected.sort_unstable();
    assert_eq!(exports, expected);
    let import = format!("import_module(\"{}\"), import_name(\"{}\")", abi::IMPORT_MODULE, abi::IMPORT_LOG);
    assert!(HEADER.contains(&import), "the header imports {import}");
}

#[test]
fn the_header_lays_out_the_frame_descriptor_as_abi_rs() {
    let body = HEADER.split("typedef struct plugin_frame_desc {").nth(1).unwrap().split('}').next().unwrap();
    let mut offset = 0;
    let mut fields = Vec::new();
    for line in body.lines().map(|l| l.split("/*").next().unwrap().trim()).filter(|l| !l.is_empty()) {
        let (ty, name) = line.trim_end_matches(';').split_once(' ').unwrap();
        let size = match ty {
            "uint32_t" => 4,
            "int64_t" => 8,
            other => panic!("unexpected C type {other} in plugin_frame_desc"),
        };
        offset = usize::next_multiple_of(offset, size);
        fields.push((name.trim().to_string(), offset));
        offset += size;
    }
    let rust = [
        ("data", std::mem::offset_of!(FrameDesc, data)),
        ("capacity", std::mem::offset_of!(FrameDesc, capacity)),
        ("width", std::mem::offset_of!(FrameDesc, width)),
        ("height", std::mem::offset_of!(FrameDesc, height)),
        ("stride", std::mem::offset_of!(FrameDesc, stride)),
        ("format", std::mem::offset_of!(FrameDesc, format)),
        ("timestamp_us", std::mem::offset_of!(FrameDesc, timestamp_us)),
    ];
    let rust: Vec<(String, usize)> = rust.iter().map(|(n, o)| (n.to_string(), *o)).collect();
    assert_eq!(fields, rust);
    assert_eq!(offset, abi::FRAME_DESC_SIZE);
    assert_eq!(std::mem::size_of::<FrameDesc>(), abi::FRAME_DESC_SIZE);
}
