//! The preview page in a real headless browser (Chromium from the system packages, driven over
//! its DevTools protocol): it loads, shows a frame, moving a slider changes the next frames'
//! pixels, and a request without the token is refused. Skipped, saying why, only where no
//! Chromium is installed (CI installs it).

use crate::support::*;
use std::io::{BufRead, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The system's Chromium, if any.
fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "chromium-headless-shell", "google-chrome"].into_iter().find(|name| {
        Command::new(name)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// A headless Chromium with its DevTools endpoint on a free port; killed when dropped.
struct Browser {
    child: Child,
    port: u16,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    fn start(program: &str, profile: &std::path::Path) -> Browser {
        let mut child = Command::new(program)
            .args(["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--remote-debugging-port=0"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(["--window-size=1280,800", "about:blank"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let port = loop {
            let line = lines.next().expect("Chromium said where DevTools listen").unwrap();
            if let Some(rest) = line.split("ws://127.0.0.1:").nth(1) {
                break rest.split('/').next().unwrap().parse().unwrap();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Browser { child, port }
    }

    /// Opens `url` in a new tab; returns its DevTools session.
    fn open(&self, url: &str) -> Tab {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        // The page's address goes in the query: its `#` and `?` must not end it.
        let escaped: String = url
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'/' | b':' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        write!(stream, "PUT /json/new?{escaped} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n", self.port).unwrap();
        // DevTools keeps the connection open: read the headers, then Content-Length bytes.
        let mut reader = std::io::BufReader::new(stream);
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let target: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let (socket, _) = tungstenite::connect(target["webSocketDebuggerUrl"].as_str().unwrap()).unwrap();
        Tab { socket, next: 0 }
    }
}

struct Tab {
    socket: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>,
    next: u64,
}

impl Tab {
    fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        self.next += 1;
        let id = self.next;
        let message = serde_json::json!({ "id": id, "method": method, "params": params }).to_string();
        self.socket.send(tungstenite::Message::Text(message)).unwrap();
        loop {
            if let tungstenite::Message::Text(text) = self.socket.read().unwrap() {
                let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
                if answer["id"] == id {
                    return answer["result"].clone();
                }
            }
        }
    }

    /// Evaluates `script` (an async function body) in the page; its value. While the page is
    /// still being loaded (its context replaced under the script, which then gives nothing), it
    /// tries again.
    fn eval(&mut self, script: &str) -> serde_json::Value {
        let expression = format!("(async () => {{ {script} }})()");
        let started = Instant::now();
        loop {
            let params = serde_json::json!({ "expression": expression, "awaitPromise": true, "returnByValue": true });
            let result = self.call("Runtime.evaluate", params);
            assert!(result.get("exceptionDetails").is_none(), "the page's script failed: {result}");
            let value = &result["result"]["value"];
            if !value.is_null() || started.elapsed() > Duration::from_secs(20) {
                return value.clone();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// In the page: waits for a new frame of the shown node and returns its mean brightness.
const MEAN_OF_NEXT_FRAME: &str = r#"
    const shown = document.getElementById("frame");
    const before = shown.src;
    const started = performance.now();
    while (shown.src === before || !shown.complete || shown.naturalWidth === 0) {
        if (performance.now() - started > 20000) throw new Error("no new frame");
        await new Promise((r) => setTimeout(r, 20));
    }
    const canvas = document.createElement("canvas");
    canvas.width = shown.naturalWidth; canvas.height = shown.naturalHeight;
    const context = canvas.getContext("2d");
    context.drawImage(shown, 0, 0);
    const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
    let sum = 0;
    for (let k = 0; k < pixels.length; k += 4) sum += pixels[k] + pixels[k + 1] + pixels[k + 2];
    return sum / (pixels.length / 4) / 3;
"#;

#[test]
fn the_preview_page_shows_frames_and_its_slider_changes_them_in_a_real_browser() {
    let Some(program) = chromium() else {
        eprintln!("skipped: no Chromium here (apt-get install chromium); CI installs it");
        return;
    };
    let dir = scratch_dir("preview", "page");
    let mut command = host_command(&dir);
    command.args(["run", "-q", "-i", "testsrc:160x120:100000000", "-o", "null", "brightness", "--preview"]);
    let (mut host, first) = spawn_announced(&mut command);
    let page = first.split_whitespace().find(|w| w.starts_with("http://")).unwrap().to_string();
    let token = page.rsplit("token=").next().unwrap().to_string();
    let addr = page.trim_start_matches("http://").split('/').next().unwrap().to_string();
    let browser = Browser::start(program, &dir.join("profile"));
    let mut tab = browser.open(&page);
    // The page is ours once it has loaded.
    let loaded = tab.eval(r#"return document.readyState === "complete" && location.port !== "" ? true : null;"#);
    assert_eq!(loaded, true, "the page did not load");
    // It loads, builds a slider from brightness's schema, and shows a frame of brightness.
    let ready = tab.eval(
        r#"
        const started = performance.now();
        while (!document.querySelector('input[data-plugin="brightness"][data-param="brightness"]')
               || document.getElementById("node").value !== "brightness"
               || !(document.getElementById("frame").naturalWidth > 0)) {
            if (performance.now() - started > 20000) return "not ready: " + document.body.innerText;
            await new Promise((r) => setTimeout(r, 50));
        }
        return "ready";
    "#,
    );
    assert_eq!(ready, "ready");
    let before = tab.eval(MEAN_OF_NEXT_FRAME).as_f64().unwrap();
    // Moving the slider (as a user's drag does: the input event) changes the next frames.
    let mut latencies = Vec::new();
    let mut mean = before;
    for value in [200, -200, 200, -200, 200] {
        let script = format!(
            r#"
            const slider = document.querySelector('input[data-plugin="brightness"][data-param="brightness"]');
            slider.value = {value};
            slider.dispatchEvent(new Event("input"));
            return performance.now();
        "#
        );
        let moved = Instant::now();
        tab.eval(&script);
        loop {
            let now = tab.eval(MEAN_OF_NEXT_FRAME).as_f64().unwrap();
            let changed = if value > 0 { now > mean + 40.0 } else { now < mean - 40.0 };
            assert!(moved.elapsed() < Duration::from_secs(20), "the frames never changed: {mean} -> {now}");
            if changed {
                latencies.push(moved.elapsed());
                mean = now;
                break;
            }
        }
    }
    assert!(mean > before + 40.0, "the last value (200) made the frames brighter: {before} -> {mean}");
    latencies.sort();
    eprintln!(
        "slider change to the first changed frame shown: p50 {:?} (of {latencies:?})",
        latencies[latencies.len() / 2]
    );
    // A request without the token, from the page itself, is refused.
    let status = tab.eval(r#"return (await fetch("/params", { method: "POST", body: "{}" })).status;"#);
    assert_eq!(status, 401);
    let (status, _) = {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        write!(stream, "POST /pause HTTP/1.0\r\nAuthorization: Bearer not{token}\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        (answer.lines().next().unwrap_or_default().to_string(), answer)
    };
    assert!(status.contains("401"), "{status}");
    // Nothing but its own files: no path reaches the disk.
    let missing = tab.eval(r#"return (await fetch("/../../etc/passwd")).status;"#);
    assert_eq!(missing, 404);
    let shot = tab.call("Page.captureScreenshot", serde_json::json!({ "format": "png" }));
    if let Some(data) = shot["data"].as_str() {
        std::fs::write(dir.join("preview.png.base64"), data).unwrap();
    }
    let _ = host.kill();
    let _ = host.wait();
}
