//! Deadlines: every wait in a test ends, with a message saying what did not happen.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

/// Every await in a test has this deadline unless it says otherwise.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Awaits `fut`, or fails the test after [`DEADLINE`] saying `what` did not finish.
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    within_for(what, DEADLINE, fut).await
}

/// Awaits `fut`, or fails the test after `deadline` saying `what` did not finish.
pub async fn within_for<T>(what: &str, deadline: Duration, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(deadline, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no result within {deadline:?}"))
}

/// Polls until something accepts TCP connections on `addr`; false after [`DEADLINE`].
pub async fn wait_listening(addr: SocketAddr) -> bool {
    let start = tokio::time::Instant::now();
    while start.elapsed() < DEADLINE {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}
