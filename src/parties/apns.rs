//! The mock APNs the scenarios share. One serves the whole process (an external gateway's APNs
//! client is configured with one address); it runs on its own small runtime, so it outlives any
//! one run, and records each token's traffic on the timeline of the scenario that owns the token.

use crate::target::{Environment, Target, TargetKind};
use crate::verdict::StepError;
use mock_apns::MockApns;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};

/// The background runtime the shared mock APNs lives on.
static APNS_RUNTIME: LazyLock<Option<tokio::runtime::Runtime>> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("mock-apns")
        .enable_all()
        .build()
        .ok()
});

/// The mock APNs instances of this process, by (listen address, environment, credentials).
static APNS: LazyLock<tokio::sync::Mutex<HashMap<String, Arc<MockApns>>>> =
    LazyLock::new(Default::default);

/// The mock APNs for `target` (started on first use).
pub async fn shared_apns(target: &Target) -> Result<Arc<MockApns>, StepError> {
    let a = &target.apns;
    let embedded = target.kind == TargetKind::EmbeddedReference;
    let key = format!(
        "{}|{:?}|{}|{}",
        a.listen,
        a.environment,
        a.credentials_dir.display(),
        a.bundle_id
    );
    let mut map = APNS.lock().await;
    if let Some(m) = map.get(&key) {
        return Ok(m.clone());
    }
    let listen: SocketAddr = a
        .listen
        .parse()
        .map_err(|e| StepError::inconclusive(format!("target apns.listen {:?}: {e}", a.listen)))?;
    let mut cfg = mock_apns::Config {
        bundle_id: a.bundle_id.clone(),
        credentials_dir: (!embedded && !a.credentials_dir.as_os_str().is_empty())
            .then(|| a.credentials_dir.clone()),
        unknown_tokens: a.unknown_token,
        // Every scenario's gateway opens its own connections with its own tokens.
        token_updates_per_window: 1_000_000,
        push_log_capacity: 100_000,
        ..mock_apns::Config::default()
    };
    match a.environment {
        Environment::Sandbox => cfg.sandbox_listen = listen,
        Environment::Production => cfg.production_listen = listen,
    }
    let rt = APNS_RUNTIME
        .as_ref()
        .ok_or_else(|| StepError::inconclusive("cannot build the mock APNs runtime"))?;
    let started = rt
        .spawn(async move { MockApns::start(cfg).await })
        .await
        .map_err(|e| StepError::inconclusive(format!("mock APNs start task: {e}")))?
        .map_err(|e| StepError::inconclusive(format!("mock APNs did not start: {e}")))?;
    let m = Arc::new(started);
    map.insert(key, m.clone());
    Ok(m)
}

/// Every request mock-apns received for these tokens after push-log position `after`.
pub fn pushes_after(apns: &MockApns, tokens: &[String], after: u64) -> Vec<mock_apns::PushRecord> {
    apns.push_log()
        .into_iter()
        .filter(|r| r.seq > after)
        .filter(|r| {
            r.token
                .as_deref()
                .is_some_and(|t| tokens.iter().any(|x| x.eq_ignore_ascii_case(t)))
        })
        .collect()
}
