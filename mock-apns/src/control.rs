//! The control API: HTTP/1.1 + JSON on its own listener, for out-of-process tests and phones.
//! One request per connection (`Connection: close`); deliveries stream as server-sent events.

use crate::devices::{DeviceSpec, DeviceState};
use crate::faults::Fault;
use crate::server::{now_ms, Shared};
use crate::Environment;
use futures::StreamExt;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const MAX_REQUEST: usize = 1 << 20;
const READ_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewDevice {
    token: String,
    topics: Vec<String>,
    environment: Environment,
    #[serde(default)]
    state: Option<DeviceState>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    keep_expired: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceOptions {
    keep_expired: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewState {
    state: DeviceState,
    #[serde(default)]
    timestamp_ms: Option<u64>,
}

struct Response {
    status: u16,
    body: String,
}

fn json(status: u16, v: serde_json::Value) -> Response {
    Response {
        status,
        body: v.to_string(),
    }
}

fn error(status: u16, msg: impl std::fmt::Display) -> Response {
    json(status, serde_json::json!({ "error": msg.to_string() }))
}

fn status_text(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        _ => "Unknown",
    }
}

/// Serves the control API until `shutdown` turns true.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    let mut stop = shutdown.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    let (shared, shutdown) = (shared.clone(), shutdown.clone());
                    tokio::spawn(async move {
                        if let Err(e) = connection(tcp, shared, shutdown).await {
                            tracing::debug!("control connection: {e}");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!("control accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = stop.changed() => return,
        }
    }
}

async fn connection(
    mut tcp: TcpStream,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(4096);
    let (method, path, body) =
        match tokio::time::timeout(READ_DEADLINE, read_request(&mut tcp, &mut buf)).await {
            Ok(Ok(Some(r))) => r,
            Ok(Ok(None)) => return Ok(()),
            Ok(Err(resp)) => return write_response(&mut tcp, resp).await,
            Err(_) => return Ok(()),
        };
    let segments: Vec<&str> = path
        .split('?')
        .next()
        .unwrap_or("")
        .trim_matches('/')
        .split('/')
        .collect();
    if let (Some(token), "GET", ["deliveries", _]) =
        (segments.get(1), method.as_str(), segments.as_slice())
    {
        return sse(tcp, &shared, token, shutdown).await;
    }
    let resp = route(&shared, &method, &segments, &body);
    write_response(&mut tcp, resp).await
}

type Parsed = (String, String, Vec<u8>);

async fn read_request(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Option<Parsed>, Response> {
    loop {
        let mut chunk = [0u8; 4096];
        let n = tcp.read(&mut chunk).await.map_err(|e| error(400, e))?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_REQUEST {
            return Err(error(413, "request too large"));
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        let head_len = match req.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => continue,
            Err(e) => return Err(error(400, e)),
        };
        let method = req.method.unwrap_or("").to_owned();
        let path = req.path.unwrap_or("/").to_owned();
        let mut content_length = 0usize;
        let mut expect_continue = false;
        for h in req.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                content_length = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
                    .ok_or_else(|| error(400, "bad content-length"))?;
            } else if h.name.eq_ignore_ascii_case("expect")
                && h.value.eq_ignore_ascii_case(b"100-continue")
            {
                expect_continue = true;
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(error(
                    400,
                    "chunked bodies are not supported; send content-length",
                ));
            }
        }
        if content_length > MAX_REQUEST {
            return Err(error(413, "request too large"));
        }
        if expect_continue && buf.len() == head_len {
            tcp.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await
                .map_err(|e| error(400, e))?;
        }
        while buf.len() < head_len + content_length {
            let n = tcp.read(&mut chunk).await.map_err(|e| error(400, e))?;
            if n == 0 {
                return Err(error(400, "body truncated"));
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body = buf[head_len..head_len + content_length].to_vec();
        return Ok(Some((method, path, body)));
    }
}

async fn write_response(tcp: &mut TcpStream, resp: Response) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        resp.status,
        status_text(resp.status),
        resp.body.len()
    );
    tcp.write_all(head.as_bytes()).await?;
    tcp.write_all(resp.body.as_bytes()).await?;
    tcp.shutdown().await
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| error(400, format!("bad JSON: {e}")))
}

fn route(shared: &Shared, method: &str, segments: &[&str], body: &[u8]) -> Response {
    let result = (|| -> Result<Response, Response> {
        Ok(match (method, segments) {
            ("GET", ["health"]) => json(200, serde_json::json!({"status": "ok"})),
            ("POST", ["devices"]) => {
                let d: NewDevice = parse(body)?;
                if d.token.is_empty() || !d.token.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(error(400, "token must be hex"));
                }
                let mut spec = DeviceSpec::new(d.token.clone(), d.topics, d.environment);
                spec.state = d.state.unwrap_or(DeviceState::Online);
                spec.name = d.name;
                spec.keep_expired = d.keep_expired;
                shared.devices.register(spec, now_ms());
                json(
                    201,
                    serde_json::json!({"token": d.token.to_ascii_lowercase()}),
                )
            }
            ("DELETE", ["devices", token]) => {
                if shared.devices.remove(token) {
                    json(200, serde_json::json!({"removed": token}))
                } else {
                    error(404, format!("no device {token}"))
                }
            }
            ("PUT", ["devices", token, "state"]) => {
                let s: NewState = parse(body)?;
                shared
                    .devices
                    .set_state(token, s.state, s.timestamp_ms, now_ms())
                    .map_err(|e| error(404, e))?;
                json(200, serde_json::json!({"token": token, "state": s.state}))
            }
            ("PUT", ["devices", token, "options"]) => {
                let o: DeviceOptions = parse(body)?;
                shared
                    .devices
                    .set_keep_expired(token, o.keep_expired)
                    .map_err(|e| error(404, e))?;
                json(
                    200,
                    serde_json::json!({"token": token, "keep_expired": o.keep_expired}),
                )
            }
            ("POST", ["faults"]) => {
                let f: Fault = parse(body)?;
                shared.faults.add(f);
                json(201, serde_json::json!({"faults": shared.faults.list()}))
            }
            ("GET", ["faults"]) => json(200, serde_json::json!(shared.faults.list())),
            ("DELETE", ["faults"]) => {
                shared.faults.clear();
                json(200, serde_json::json!({"faults": []}))
            }
            // Written straight to text: through a `Value` tree, a full log (10 000 records) took
            // the server from 28 to 112 MiB resident, as text to 68 MiB (scripts/soak-apns.sh).
            ("GET", ["pushes"]) => Response {
                status: 200,
                body: serde_json::to_string(&shared.log.snapshot())
                    .unwrap_or_else(|_| "[]".to_owned()),
            },
            ("GET", ["stats"]) => json(
                200,
                serde_json::to_value(shared.log.stats()).unwrap_or_default(),
            ),
            ("DELETE", ["pushes"]) => {
                shared.log.clear();
                json(200, serde_json::json!({"cleared": true}))
            }
            (_, ["health" | "devices" | "faults" | "pushes" | "stats" | "deliveries", ..]) => {
                error(405, "method not allowed")
            }
            _ => error(404, "no such route"),
        })
    })();
    result.unwrap_or_else(|e| e)
}

async fn sse(
    mut tcp: TcpStream,
    shared: &Shared,
    token: &str,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut deliveries = shared.devices.subscribe(token);
    tcp.write_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n: subscribed\n\n",
    )
    .await?;
    let mut probe = [0u8; 64];
    loop {
        tokio::select! {
            d = deliveries.next() => match d {
                Some(d) => {
                    let line = format!("data: {}\n\n", serde_json::to_string(&d).unwrap_or_default());
                    tcp.write_all(line.as_bytes()).await?;
                }
                None => return Ok(()),
            },
            // The client went away.
            n = tcp.read(&mut probe) => if n.unwrap_or(0) == 0 { return Ok(()) },
            _ = shutdown.changed() => return Ok(()),
        }
    }
}
