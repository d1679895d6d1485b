//! Docker Engines older than the API version testcontainers speaks.
//!
//! testcontainers 0.28 connects through bollard 0.21 with a fixed API version, 1.53
//! (`bollard::API_DEFAULT_VERSION`), in every request path (`/v1.53/containers/create`), and does
//! not negotiate. An engine that supports less answers every request with 400 "client version 1.53
//! is too new. Maximum supported API version is 1.41" (Debian 12's docker.io 20.10 speaks 1.41;
//! the engine has refused too-new versions since moby PR #35150). [`bridge_if_needed`] asks the
//! engine its version (`GET /version`); when it is older, it serves a Unix socket that forwards
//! every byte to the engine's socket, rewriting the version in request lines (`GET /v1.53/` →
//! `GET /v1.41/`, the same length, so no framing changes), and points `DOCKER_HOST` of this
//! process at it. The requests testcontainers makes to start, inspect, stop and remove a container
//! are all in API 1.41; nothing else about them changes.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

/// Why the engine's API version could not be bridged.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The engine's socket could not be reached or did not answer `/version`.
    #[error("Docker engine at {socket}: {reason}")]
    Version {
        /// The socket.
        socket: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Versions of different lengths cannot be swapped in place.
    #[error("the engine speaks Docker API {engine}, testcontainers {client}: cannot bridge")]
    Unbridgeable {
        /// The engine's version.
        engine: String,
        /// testcontainers' version.
        client: String,
    },
    /// The bridge socket could not be served.
    #[error("bridge socket {path}: {source}")]
    Bridge {
        /// The socket path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

static BRIDGE: OnceLock<Result<Option<String>, String>> = OnceLock::new();

/// The API version testcontainers' bollard puts in every request path (`1.53`).
pub fn client_api_version() -> String {
    let v = testcontainers::bollard::API_DEFAULT_VERSION;
    format!("{}.{}", v.major_version, v.minor_version)
}

/// Makes testcontainers usable with an engine older than [`client_api_version`] (see the module
/// doc): returns the engine's version when a bridge now serves it, `None` when none is needed
/// (or `DOCKER_HOST` names something other than a Unix socket, which this does not bridge).
/// Done once per process; later calls return the first answer.
pub fn bridge_if_needed() -> Result<Option<String>, EngineError> {
    BRIDGE
        .get_or_init(|| start_bridge().map_err(|e| e.to_string()))
        .clone()
        .map_err(|reason| EngineError::Version {
            socket: engine_socket().unwrap_or_default(),
            reason,
        })
}

fn engine_socket() -> Option<PathBuf> {
    match std::env::var("DOCKER_HOST") {
        Ok(h) => h.strip_prefix("unix://").map(PathBuf::from),
        Err(_) => Some(PathBuf::from("/var/run/docker.sock")),
    }
}

/// Parses "1.41" into (1, 41).
fn parse_version(v: &str) -> Option<(u64, u64)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn start_bridge() -> Result<Option<String>, EngineError> {
    let Some(socket) = engine_socket() else {
        return Ok(None);
    };
    // A runtime of its own on a thread of its own (the caller may be inside a runtime, and the
    // bridge must outlive the test's runtime): it checks the version, then serves.
    let (tx, rx) = std::sync::mpsc::channel();
    let upstream = socket.clone();
    std::thread::Builder::new()
        .name("docker-api-bridge".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(source) => {
                    let _ = tx.send(Err(EngineError::Bridge {
                        path: upstream,
                        source,
                    }));
                    return;
                }
            };
            rt.block_on(async move {
                match prepare(&upstream).await {
                    Ok(Some(b)) => {
                        let _ = tx.send(Ok(Some((b.engine.clone(), b.path.clone()))));
                        serve(b.listener, upstream, b.from, b.to).await;
                    }
                    Ok(None) => {
                        let _ = tx.send(Ok(None));
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            });
        })
        .map_err(|source| EngineError::Bridge {
            path: socket.clone(),
            source,
        })?;
    let answer = rx.recv().map_err(|_| EngineError::Version {
        socket,
        reason: "the bridge thread ended without an answer".into(),
    })?;
    match answer? {
        Some((engine, path)) => {
            // testcontainers reads DOCKER_HOST when it makes its client, after this.
            std::env::set_var("DOCKER_HOST", format!("unix://{}", path.display()));
            Ok(Some(engine))
        }
        None => Ok(None),
    }
}

/// A bridge ready to serve.
struct Prepared {
    engine: String,
    path: PathBuf,
    listener: UnixListener,
    from: Vec<u8>,
    to: Vec<u8>,
}

/// Asks the engine its version; binds the bridge's socket when the engine is older.
async fn prepare(socket: &Path) -> Result<Option<Prepared>, EngineError> {
    let engine = engine_api_version(socket).await?;
    let client = client_api_version();
    let older = match (parse_version(&engine), parse_version(&client)) {
        (Some(e), Some(c)) => e < c,
        _ => false,
    };
    if !older {
        return Ok(None);
    }
    if engine.len() != client.len() {
        return Err(EngineError::Unbridgeable { engine, client });
    }
    let path = std::env::temp_dir().join(format!("pushbench-docker-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).map_err(|source| EngineError::Bridge {
        path: path.clone(),
        source,
    })?;
    Ok(Some(Prepared {
        from: format!(" /v{client}/").into_bytes(),
        to: format!(" /v{engine}/").into_bytes(),
        engine,
        path,
        listener,
    }))
}

/// `GET /version` on the engine's socket: its `ApiVersion`.
async fn engine_api_version(socket: &Path) -> Result<String, EngineError> {
    let err = |reason: String| EngineError::Version {
        socket: socket.to_owned(),
        reason,
    };
    let mut s = UnixStream::connect(socket)
        .await
        .map_err(|e| err(e.to_string()))?;
    s.write_all(b"GET /version HTTP/1.0\r\nHost: docker\r\n\r\n")
        .await
        .map_err(|e| err(e.to_string()))?;
    let mut reply = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        s.read_to_end(&mut reply),
    )
    .await
    .map_err(|_| err("no answer to GET /version within 10 s".into()))?
    .map_err(|e| err(e.to_string()))?;
    let text = String::from_utf8_lossy(&reply);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .ok_or_else(|| err(format!("not an HTTP answer: {text:.200}")))?;
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|e| err(format!("/version is not JSON ({e})")))?;
    v["ApiVersion"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| err(format!("/version has no ApiVersion: {body:.200}")))
}

async fn serve(listener: UnixListener, upstream: PathBuf, from: Vec<u8>, to: Vec<u8>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let (upstream, from, to) = (upstream.clone(), from.clone(), to.clone());
        tokio::spawn(async move {
            let Ok(engine) = UnixStream::connect(&upstream).await else {
                return;
            };
            let (mut cr, mut cw) = client.into_split();
            let (mut er, mut ew) = engine.into_split();
            let requests = async {
                let mut rewriter = Rewriter::new(from, to);
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = cr.read(&mut buf).await?;
                    if n == 0 {
                        ew.write_all(&rewriter.finish()).await?;
                        return ew.shutdown().await;
                    }
                    let out = rewriter.push(&buf[..n]);
                    ew.write_all(&out).await?;
                }
            };
            let replies = async {
                tokio::io::copy(&mut er, &mut cw).await?;
                cw.shutdown().await
            };
            let _: (io::Result<()>, io::Result<()>) = tokio::join!(requests, replies);
        });
    }
}

/// Replaces `from` with `to` (the same length) in a byte stream, holding back only a tail that
/// may be the start of `from`, so a request is never delayed waiting for more bytes.
struct Rewriter {
    from: Vec<u8>,
    to: Vec<u8>,
    held: Vec<u8>,
}

impl Rewriter {
    fn new(from: Vec<u8>, to: Vec<u8>) -> Rewriter {
        assert_eq!(from.len(), to.len(), "same-length replacement only");
        Rewriter {
            from,
            to,
            held: Vec::new(),
        }
    }

    fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut data = std::mem::take(&mut self.held);
        data.extend_from_slice(bytes);
        let n = self.from.len();
        let mut i = 0;
        while i + n <= data.len() {
            if data[i..i + n] == self.from[..] {
                data[i..i + n].copy_from_slice(&self.to);
                i += n;
            } else {
                i += 1;
            }
        }
        // The longest tail that is a proper prefix of `from` waits for the next bytes.
        let keep = (1..n)
            .rev()
            .find(|&k| k <= data.len() && data[data.len() - k..] == self.from[..k])
            .unwrap_or(0);
        self.held = data.split_off(data.len() - keep);
        data
    }

    fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(chunks: &[&str]) -> String {
        let mut r = Rewriter::new(b" /v1.53/".to_vec(), b" /v1.41/".to_vec());
        let mut out = Vec::new();
        for c in chunks {
            out.extend(r.push(c.as_bytes()));
        }
        out.extend(r.finish());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn request_lines_are_rewritten_across_read_boundaries() {
        let req =
            "GET /v1.53/version HTTP/1.1\r\n\r\nPOST /v1.53/containers/create HTTP/1.1\r\n\r\n";
        let want = req.replace("/v1.53/", "/v1.41/");
        assert_eq!(rewrite(&[req]), want);
        for split in 1..req.len() {
            assert_eq!(
                rewrite(&[&req[..split], &req[split..]]),
                want,
                "split at {split}"
            );
        }
    }

    #[test]
    fn a_complete_request_is_never_held_back() {
        let mut r = Rewriter::new(b" /v1.53/".to_vec(), b" /v1.41/".to_vec());
        let req = b"GET /v1.53/_ping HTTP/1.1\r\nHost: docker\r\n\r\n";
        assert_eq!(r.push(req).len(), req.len());
        // A tail that may start the pattern waits, and is released by what follows.
        assert_eq!(r.push(b"GET /v1"), b"GET".to_vec());
        assert_eq!(r.push(b".53/x"), b" /v1.41/x".to_vec());
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(parse_version("1.41").unwrap() < parse_version("1.53").unwrap());
        assert!(parse_version("1.9").unwrap() < parse_version("1.41").unwrap());
        assert_eq!(parse_version("x"), None);
    }
}
