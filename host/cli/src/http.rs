//! A small HTTP/1.1 server for the control API and the preview page: one request per connection
//! (answered, then closed), a thread per connection up to [`MAX_CONNECTIONS`], a timeout on
//! every read and write, headers of at most [`MAX_HEADER_BYTES`] and a body of at most
//! [`MAX_BODY_BYTES`], read whole before anything is answered, and only requests addressed to
//! the address it listens on (the `Host` header: no DNS rebinding). Written here rather than
//! taken from a crate: the one used before drained whatever body a request announced, on its
//! one serving thread, so a single request without the token could stall the API or abort the
//! host by asking it to allocate exabytes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub const MAX_CONNECTIONS: usize = 32;
pub const MAX_HEADER_BYTES: usize = 16 << 10;
pub const MAX_BODY_BYTES: usize = 64 << 10;
/// Longest wait for a client to send or take bytes.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A request as read whole: method, path and query of its target, headers, body.
#[derive(Debug, Default)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The value of header `name` (any case), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim())
    }
}

/// An answer: status, content type, body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Response { status, content_type, body: body.into() }
    }
}

/// Listens at `addr` (port 0: a free one) and answers each request with `handler`, each
/// connection on a thread of its own; returns the address it listens on.
pub fn serve(
    addr: &str,
    name: &str,
    handler: impl Fn(&Request) -> Response + Send + Sync + 'static,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    let handler = Arc::new(handler);
    let open = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new().name(name.into()).spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = stream.set_read_timeout(Some(TIMEOUT));
            let _ = stream.set_write_timeout(Some(TIMEOUT));
            if open.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
                open.fetch_sub(1, Ordering::AcqRel);
                let _ = respond(&stream, &Response::new(503, "text/plain", "too many connections\n"));
                continue;
            }
            let (handler, counted) = (Arc::clone(&handler), Arc::clone(&open));
            let spawned = std::thread::Builder::new().name("http".into()).spawn(move || {
                let response = match read_request(&stream) {
                    Ok(request) if addressed_to(&request, bound) => handler(&request),
                    Ok(_) => Response::new(421, "text/plain", "this server answers only at its own address\n"),
                    Err(refusal) => refusal,
                };
                let _ = respond(&stream, &response);
                counted.fetch_sub(1, Ordering::AcqRel);
            });
            if spawned.is_err() {
                // The closure (and its count) is gone with the failed spawn.
                let _ = open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
            }
        }
    })?;
    Ok(bound)
}

/// Whether the request names the address listened at (or none, as some HTTP/1.0 clients): a
/// page elsewhere that rebinds its own name to this address sends its own name and is refused.
fn addressed_to(request: &Request, bound: SocketAddr) -> bool {
    let Some(host) = request.header("Host") else { return true };
    let port = bound.port();
    let ip = bound.ip();
    ip.is_unspecified()
        || host == format!("{ip}:{port}")
        || host == format!("[{ip}]:{port}")
        || (ip.is_loopback() && host.eq_ignore_ascii_case(&format!("localhost:{port}")))
}

/// Reads one request whole, within the limits; the refusal to send otherwise.
fn read_request(mut stream: &TcpStream) -> Result<Request, Response> {
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let end = loop {
        let found = buffer.windows(4).position(|w| w == b"\r\n\r\n");
        if found.unwrap_or(buffer.len()) > MAX_HEADER_BYTES {
            return Err(Response::new(431, "text/plain", "the request's headers are over 16 KiB\n"));
        }
        if let Some(at) = found {
            break at;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return Err(Response::new(400, "text/plain", "the request ended before its headers\n")),
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut words = lines.next().unwrap_or_default().split(' ');
    let (method, target) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
        .collect();
    let mut request = Request {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers,
        body: Vec::new(),
    };
    if request.header("Transfer-Encoding").is_some() {
        return Err(Response::new(411, "text/plain", "send a body with Content-Length\n"));
    }
    let length = match request.header("Content-Length") {
        None => 0,
        Some(value) => value.parse::<u64>().map_err(|_| Response::new(400, "text/plain", "a bad Content-Length\n"))?,
    };
    if length > MAX_BODY_BYTES as u64 {
        return Err(Response::new(413, "text/plain", "the body is over 64 KiB\n"));
    }
    let mut body = buffer[end + 4..].to_vec();
    body.truncate(length as usize);
    let missing = length as usize - body.len();
    if missing > 0 {
        let mut rest = vec![0; missing];
        stream.read_exact(&mut rest).map_err(|_| Response::new(400, "text/plain", "the body ended early\n"))?;
        body.extend_from_slice(&rest);
    }
    request.body = body;
    Ok(request)
}

fn respond(mut stream: &TcpStream, response: &Response) -> std::io::Result<()> {
    let reason = match response.status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        421 => "Misdirected Request",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    };
    let head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        response.status,
        response.content_type,
        response.body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(&response.body)?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(addr: SocketAddr, raw: &[u8]) -> String {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.write_all(raw).unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    }

    #[test]
    fn bodies_too_large_stalled_clients_and_other_hosts_are_refused_and_block_no_one() {
        let addr =
            serve("127.0.0.1:0", "test", |request| Response::new(200, "text/plain", request.body.clone())).unwrap();
        let huge = ask(addr, b"GET / HTTP/1.1\r\nContent-Length: 9223372036854775807\r\n\r\n");
        assert!(huge.starts_with("HTTP/1.1 413"), "{huge}");
        let headers = ask(addr, &[b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; 20_000], b"\r\n\r\n"].concat());
        assert!(headers.starts_with("HTTP/1.1 431"), "{headers}");
        // A client that announces a body and never sends it holds only its own connection.
        let mut stalled = TcpStream::connect(addr).unwrap();
        stalled.write_all(b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\nab").unwrap();
        let echoed = ask(addr, b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
        assert!(echoed.starts_with("HTTP/1.1 200") && echoed.ends_with("hello"), "{echoed}");
        let elsewhere =
            ask(addr, format!("GET / HTTP/1.1\r\nHost: attacker.example:{}\r\n\r\n", addr.port()).as_bytes());
        assert!(elsewhere.starts_with("HTTP/1.1 421"), "{elsewhere}");
        let here = ask(addr, format!("GET / HTTP/1.1\r\nHost: localhost:{}\r\n\r\n", addr.port()).as_bytes());
        assert!(here.starts_with("HTTP/1.1 200"), "{here}");
        drop(stalled);
    }
}
