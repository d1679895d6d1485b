//! The `mock-apns` binary: generate credentials, serve the fake APNs, or sign a provider token.

use anyhow::Context;
use clap::{Parser, Subcommand};
use mock_apns::{Config, Credentials, Environment, MockApns, SignatureEncoding, UnknownTokens};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

/// mimalloc instead of glibc's malloc: each request allocates its push record (header copy,
/// payload copy, strings), and glibc's allocator was about 13% of the server's CPU under h2load
/// (perf, see scripts/bench-apns.sh; measured when the server still ran on `h2`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "mock-apns",
    version,
    about = "A fake Apple Push Notification service"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write credentials (CA, server cert, client certs, .p8 key, manifest.json) into DIR;
    /// existing credentials are kept.
    Credentials {
        /// Directory.
        #[arg(long)]
        out: PathBuf,
        /// Bundle id.
        #[arg(long, default_value = mock_apns::credentials::DEFAULT_BUNDLE_ID)]
        bundle_id: String,
        /// Team id (default: random 10 characters).
        #[arg(long)]
        team_id: Option<String>,
        /// Extra server certificate names (DNS names or IPs), repeatable.
        #[arg(long = "server-name")]
        server_names: Vec<String>,
    },
    /// Serve the production and sandbox APNs listeners and the control API.
    Serve {
        /// Production listener.
        #[arg(long, default_value = "127.0.0.1:2197")]
        listen: SocketAddr,
        /// Sandbox listener.
        #[arg(long, default_value = "127.0.0.1:0")]
        sandbox_listen: SocketAddr,
        /// Control API listener.
        #[arg(long, default_value = "127.0.0.1:8079")]
        control: SocketAddr,
        /// Credentials directory (written if empty).
        #[arg(long)]
        credentials: PathBuf,
        /// Bundle id when credentials are generated.
        #[arg(long, default_value = mock_apns::credentials::DEFAULT_BUNDLE_ID)]
        bundle_id: String,
        /// Team id when credentials are generated.
        #[arg(long)]
        team_id: Option<String>,
        /// Extra server certificate names when credentials are generated, repeatable.
        #[arg(long = "server-name")]
        server_names: Vec<String>,
        /// Unknown device tokens: register on first use, or reject with BadDeviceToken.
        #[arg(long, value_enum, default_value = "register")]
        unknown_tokens: UnknownTokens,
        /// MAX_CONCURRENT_STREAMS once authenticated.
        #[arg(long, default_value_t = 1000)]
        max_concurrent_streams: u32,
        /// MAX_CONCURRENT_STREAMS of a token connection before its first valid token (Apple: 1;
        /// enforced: streams over it get RST_STREAM REFUSED_STREAM).
        #[arg(long, default_value_t = 1)]
        streams_before_auth: u32,
        /// Push records kept in memory.
        #[arg(long, default_value_t = 10_000)]
        push_log_capacity: usize,
        /// Runtime threads: 1 (default) = a single-threaded runtime, 0 = one per CPU, N = N.
        /// One thread serves each request with the least CPU (no cross-thread wake-ups): under
        /// h2load on 2 cores it answered 1.2-1.5x the requests per second of one per CPU
        /// (scripts/bench-apns.sh).
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
    /// Add another ES256 signing key to the credentials in DIR (a server started afterwards knows
    /// it); prints its manifest entry as JSON.
    AddKey {
        /// Credentials directory (must hold a manifest).
        #[arg(long)]
        credentials: PathBuf,
        /// Team of the key (default: the manifest's team).
        #[arg(long)]
        team_id: Option<String>,
        /// Restrict the key to one environment (default: both). A token of a restricted key on
        /// the other environment gets 403 BadEnvironmentKeyIdInToken.
        #[arg(long, value_enum)]
        environment: Option<Environment>,
    },
    /// Print a signed ES256 provider token.
    Token {
        /// Credentials directory.
        #[arg(long)]
        credentials: PathBuf,
        /// Key id (default: the manifest's first key).
        #[arg(long)]
        key_id: Option<String>,
        /// Override `iss` (the signature is still made with the key).
        #[arg(long)]
        team_id: Option<String>,
        /// `iat` in UNIX seconds (default: now).
        #[arg(long, allow_hyphen_values = true)]
        iat: Option<i64>,
        /// Signature encoding.
        #[arg(long, value_enum, default_value = "raw")]
        signature: Signature,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Signature {
    Raw,
    Der,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colours only on a terminal: `docker logs` and log files get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match Cli::parse().command {
        Command::Credentials {
            out,
            bundle_id,
            team_id,
            server_names,
        } => {
            let c =
                Credentials::generate_or_load(&out, &bundle_id, team_id.as_deref(), &server_names)?;
            tracing::info!(dir = %out.display(), team_id = c.team_id(), key_id = c.key_id(), "credentials ready");
            Ok(())
        }
        Command::Serve {
            listen,
            sandbox_listen,
            control,
            credentials,
            bundle_id,
            team_id,
            server_names,
            unknown_tokens,
            max_concurrent_streams,
            streams_before_auth,
            push_log_capacity,
            threads,
        } => {
            let config = Config {
                credentials_dir: Some(credentials),
                bundle_id,
                team_id,
                extra_server_names: server_names,
                production_listen: listen,
                sandbox_listen,
                control_listen: control,
                unknown_tokens,
                max_concurrent_streams,
                streams_before_auth,
                push_log_capacity,
                ..Config::default()
            };
            let runtime = match threads {
                0 => tokio::runtime::Runtime::new()?,
                1 => tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?,
                n => tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(n)
                    .enable_all()
                    .build()?,
            };
            runtime.block_on(async {
                let apns = MockApns::start(config).await?;
                let line = serde_json::json!({
                    "production": apns.production_addr().to_string(),
                    "sandbox": apns.sandbox_addr().to_string(),
                    "control": apns.control_addr().to_string(),
                });
                let mut stdout = std::io::stdout().lock();
                writeln!(stdout, "{line}")?;
                stdout.flush()?;
                drop(stdout);
                wait_for_signal().await;
                tracing::info!("shutting down");
                apns.shutdown().await;
                Ok(())
            })
        }
        Command::AddKey {
            credentials,
            team_id,
            environment,
        } => {
            let mut c = Credentials::load(&credentials)?;
            let entry = c.add_key(team_id.as_deref(), environment)?;
            println!("{}", serde_json::to_string(&entry)?);
            Ok(())
        }
        Command::Token {
            credentials,
            key_id,
            team_id,
            iat,
            signature,
        } => {
            let c = Credentials::load(&credentials)?;
            let key = match &key_id {
                None => c.keys()[0].clone(),
                Some(k) => c
                    .keys()
                    .iter()
                    .find(|key| key.key_id == *k)
                    .cloned()
                    .with_context(|| format!("no key {k} in the manifest"))?,
            };
            let iat = iat.unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0)
            });
            let encoding = match signature {
                Signature::Raw => SignatureEncoding::Raw,
                Signature::Der => SignatureEncoding::Der,
            };
            let token = match team_id {
                None => key.sign(iat, encoding)?,
                Some(team) => {
                    let pem = std::fs::read(
                        c.dir().join(
                            &c.manifest()
                                .keys
                                .iter()
                                .find(|k| k.key_id == key.key_id)
                                .context("key not in manifest")?
                                .file,
                        ),
                    )?;
                    mock_apns::jwt::ProviderKey::from_pkcs8_pem(&key.key_id, &team, &pem)?
                        .sign(iat, encoding)?
                }
            };
            println!("{token}");
            Ok(())
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
