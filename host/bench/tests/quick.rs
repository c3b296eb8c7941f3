//! `plugin-host-bench --quick` runs end to end with the built plugins and writes every row.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn a_quick_run_reports_every_row() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    for needed in ["target/plugins/invert.wasm", "target/test-plugins/identity.wasm"] {
        assert!(root.join(needed).exists(), "{needed} is missing: build the plugins with `cargo xtask build`");
    }
    let json = std::env::temp_dir().join(format!("plugin-host-bench-{}.json", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_plugin-host-bench"))
        .current_dir(&root)
        .args(["--quick", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    let rows = report["rows"].as_array().unwrap();
    assert!(!rows.is_empty());
    for row in rows {
        for key in ["transport", "frame_bytes", "p50_us", "p99_us", "frames_per_s"] {
            assert!(!row[key].is_null(), "row lacks {key}: {row}");
        }
    }
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.contains("plugin-host-bench"), "the table is printed: {table}");
}
