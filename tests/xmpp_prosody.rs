//! The XMPP target file `targets/prosody.toml` end to end: its start command brings up real
//! Prosody 0.12 + mod_cloud_notify on loopback, the reference app server connects as the
//! component the file names, and a message to Alice's hibernated session (accounts from the file)
//! reaches the mock APNs as exactly one alert push. Its stop command brings Prosody down.
//!
//! `tests/xmpp_features.rs` runs `features/xmpp` through the runner against this target.

use anyhow::{anyhow, bail, Context, Result};
use mock_apns::Environment;
use pushbench::target::Target;
use ref_gateway::apns::{ApnsAuth, ApnsClient, ApnsClientConfig};
use ref_gateway::app_server::classify::PublishKind;

use ref_gateway::app_server::{Answer, ApnsClients, AppServer, AppServerConfig, Registration};
use std::path::{Path, PathBuf};
use std::time::Duration;
use timeline::{Protocol, Timeline};
use tokio::time::Instant;
use xmpp_peer::forms::DataForm;
use xmpp_peer::{Caller, ClientConfig, ComponentConfig, PhoneAccount, SleepMode, TlsClient};

const STEP: Duration = Duration::from_secs(10);

fn targets_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("targets")
}

/// Runs one of the target's commands like the runner does (`sh -c` in the file's directory).
async fn run(cmd: &pushbench::target::Command, dir: &Path, prosody_dir: &Path) -> Result<String> {
    let out = tokio::time::timeout(
        cmd.timeout,
        tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&cmd.run)
            .current_dir(dir)
            .env("PUSHBENCH_PROSODY_DIR", prosody_dir)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| anyhow!("{:?} did not finish within {:?}", cmd.run, cmd.timeout))??;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        bail!("{:?} failed ({}): {text}", cmd.run, out.status);
    }
    Ok(text)
}

/// Stops Prosody (the target's stop command) however the test ends.
struct Stop(Option<(pushbench::target::Command, PathBuf, PathBuf)>);

impl Drop for Stop {
    fn drop(&mut self) {
        if let Some((cmd, dir, pdir)) = self.0.take() {
            let _ = std::process::Command::new("sh")
                .arg("-c")
                .arg(&cmd.run)
                .current_dir(dir)
                .env("PUSHBENCH_PROSODY_DIR", pdir)
                .status();
        }
    }
}

async fn wait_log(path: &Path, needle: &str) -> Result<()> {
    let deadline = Instant::now() + STEP;
    loop {
        if std::fs::read_to_string(path)
            .unwrap_or_default()
            .contains(needle)
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("{} never showed {needle:?} within {STEP:?}", path.display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_prosody_target_file_starts_prosody_and_a_message_wakes_alice_once() -> Result<()> {
    let dir = targets_dir();
    let target = Target::load(&dir.join("prosody.toml"))?;
    let xmpp = target
        .xmpp
        .clone()
        .context("the Prosody target has [xmpp]")?;
    let comp = xmpp.component.clone().context("[xmpp.component]")?;
    let start = target.commands.start.clone().context("[commands.start]")?;
    let stop = target.commands.stop.clone().context("[commands.stop]")?;
    let prosody_dir = tempfile::Builder::new()
        .prefix("pushbench-prosody-target-")
        .tempdir()?;
    let pdir = prosody_dir.path().join("run");
    let _stop = Stop(Some((stop, dir.clone(), pdir.clone())));
    run(&start, &dir, &pdir).await?;

    let t = Timeline::new();
    let bundle = target.apns.bundle_id.clone();
    let apns = mock_apns::MockApns::start(mock_apns::Config {
        bundle_id: bundle.clone(),
        ..mock_apns::Config::default()
    })
    .await?;
    let alert_token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    apns.register_device(mock_apns::DeviceSpec::new(
        alert_token.clone(),
        vec![bundle.clone()],
        mock_apns::Environment::Sandbox,
    ));
    let creds = apns.credentials();
    let client = ApnsClient::new(
        ApnsClientConfig::new(
            apns.sandbox_addr(),
            &std::fs::read(creds.ca_path())?,
            ApnsAuth::token_from_p8_file(&creds.key_path(), creds.key_id(), creds.team_id())?,
        )?
        .environment(Environment::Sandbox)
        .recorder(t.recorder("app-server", Protocol::Apns)),
    )?;
    let mut cfg = AppServerConfig::new(ComponentConfig::new(
        &comp.domain,
        &comp.secret,
        comp.address.parse()?,
    ));
    cfg.registrations = vec![Registration::new("alice-iphone", "00", &bundle)
        .alert_token(&alert_token)
        .secret("s1")];
    let app = AppServer::start(
        cfg,
        ApnsClients {
            sandbox: Some(client),
            production: None,
        },
        t.recorder("app-server", Protocol::Xmpp),
    )
    .await?;

    let tls = TlsClient::from_ca_pem(&std::fs::read(pdir.join("ca.pem"))?, &xmpp.domain)?;
    let account = |name: &str| -> Result<ClientConfig> {
        let a = target
            .xmpp_account(name)
            .with_context(|| format!("[[xmpp.accounts]] {name}"))?;
        Ok(ClientConfig::new(
            &a.jid,
            &a.password,
            xmpp.c2s.parse()?,
            Some(tls.clone()),
        ))
    };
    let mut alice =
        PhoneAccount::connect(account("alice")?, t.recorder("alice", Protocol::Xmpp)).await?;
    let bob = Caller::connect(account("bob")?, t.recorder("bob", Protocol::Xmpp)).await?;
    alice
        .enable_push(
            &comp.domain,
            "alice-iphone",
            Some(DataForm::publish_options().field("secret", "s1")),
            STEP,
        )
        .await?;
    alice.sleep(SleepMode::Close).await?;
    wait_log(&pdir.join("prosody.log"), "Session going into hibernation").await?;
    let alice_jid = target
        .xmpp_account("alice")
        .map(|a| a.jid.clone())
        .unwrap_or_default();
    bob.send_message(&alice_jid, "hello from the target file")
        .await?;
    let o = app
        .next_outcome(STEP)
        .await
        .ok_or_else(|| anyhow!("no publish within {STEP:?}\n{}", t.ladder()))?;
    assert!(
        matches!(o.kind, Some(PublishKind::Message { .. })),
        "{o:#?}\n{}",
        t.ladder()
    );
    assert_eq!(o.answer, Answer::Result);
    let pushes: Vec<_> = apns
        .push_log()
        .into_iter()
        .filter(|r| r.token.as_deref() == Some(alert_token.as_str()))
        .collect();
    assert_eq!(pushes.len(), 1, "{}", t.ladder());
    assert_eq!(pushes[0].header("apns-push-type").as_deref(), Some("alert"));
    // Registration "00" was never used for VoIP: a message is never a VoIP push.
    assert!(apns
        .push_log()
        .iter()
        .all(|r| r.header("apns-push-type").as_deref() != Some("voip")));
    app.stop().await;
    Ok(())
}
