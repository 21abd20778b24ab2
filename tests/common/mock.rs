//! A plain HTTP/1.1 server on 127.0.0.1 for the API tests: each request is answered by a
//! handler closure and logged; one thread per connection.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// One request as the mock server saw it.
#[derive(Debug, Clone)]
pub struct Req {
    /// HTTP method.
    pub method: String,
    /// Path with query string.
    pub path: String,
    /// Headers, names lower-cased.
    pub headers: HashMap<String, String>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Req {
    /// The body as JSON (Null when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    /// The GraphQL query text.
    pub fn query(&self) -> String {
        self.json()["query"].as_str().unwrap_or("").to_string()
    }
    /// The GraphQL variables.
    pub fn vars(&self) -> Value {
        self.json()["variables"].clone()
    }
    /// The Authorization header.
    pub fn auth(&self) -> Option<&str> {
        self.headers.get("authorization").map(String::as_str)
    }
}

/// What the mock answers.
pub enum Reply {
    /// Status and a JSON (or any text) body.
    Text(u16, String),
    /// Status, extra headers and body.
    Full(u16, Vec<(String, String)>, Vec<u8>),
    /// Announces the whole body's length, sends only `send` bytes, then closes the socket.
    Truncated(Vec<u8>, usize),
}

/// HTTP 200 with a JSON body.
pub fn ok(v: Value) -> Reply {
    Reply::Text(200, v.to_string())
}

/// A request handler: (request, index, base URL) → reply.
pub type Handler = dyn Fn(&Req, usize, &str) -> Reply + Send + Sync;

/// A running mock server.
pub struct Mock {
    /// Its base URL.
    pub url: String,
    /// Every request seen, in order.
    pub log: Arc<Mutex<Vec<Req>>>,
}

impl Mock {
    /// The requests seen so far.
    pub fn requests(&self) -> Vec<Req> {
        self.log.lock().unwrap().clone()
    }
}

/// Starts a server on 127.0.0.1 that answers each request with `handler(request, index, base_url)`
/// and closes the connection after each response.
pub fn serve(handler: impl Fn(&Req, usize, &str) -> Reply + Send + Sync + 'static) -> Mock {
    let handler: Arc<Handler> = Arc::new(handler);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let (base, seen) = (url.clone(), log.clone());
    std::thread::spawn(move || {
        let n = Arc::new(AtomicUsize::new(0));
        for stream in listener.incoming().flatten() {
            // One thread per connection, so a slow answer does not hold up the next request.
            let (handler, seen, base, n) = (handler.clone(), seen.clone(), base.clone(), n.clone());
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let Some(req) = read_request(&stream) else { return };
                let i = n.fetch_add(1, Ordering::SeqCst);
                seen.lock().unwrap().push(req.clone());
                let reply = handler(&req, i, &base);
                respond(stream, reply);
            });
        }
    });
    Mock { url, log }
}

/// Writes `reply` and closes the connection.
pub fn respond(mut out: std::net::TcpStream, reply: Reply) {
    let (status, headers, body, send) = match reply {
        Reply::Text(s, b) => (s, vec![("Content-Type".into(), "application/json".into())], b.into_bytes(), None),
        Reply::Full(s, h, b) => (s, h, b, None),
        Reply::Truncated(b, k) => (200, vec![], b, Some(k)),
    };
    let mut head = format!("HTTP/1.1 {status} Mock\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = out.write_all(head.as_bytes());
    let _ = out.write_all(&body[..send.unwrap_or(body.len())]);
    let _ = out.flush();
    let _ = out.shutdown(std::net::Shutdown::Both);
}

/// Reads one HTTP/1.1 request (headers and a Content-Length body).
pub fn read_request(stream: &std::net::TcpStream) -> Option<Req> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Req { method, path, headers, body })
}
