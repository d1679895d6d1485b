//! `ref-gateway --config FILE`: runs the reference push gateway out of process. Prints one ready
//! line with the bound addresses as JSON on stdout (`{"udp":"127.0.0.1:5060","tcp":…,"tls":…}`)
//! and logs through `tracing` to stderr (`RUST_LOG=ref_gateway=debug`).

use anyhow::Context;
use clap::Parser;
use ref_gateway::config::FileConfig;
use ref_gateway::RefGateway;
use std::io::Write;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "ref-gateway",
    about = "The pushbench reference push gateway (RFC 8599)"
)]
struct Args {
    /// The TOML configuration file.
    #[arg(long)]
    config: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "ref_gateway=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let (file, base) = FileConfig::load(&args.config)?;
    let config = file
        .into_gateway_config(&base)
        .with_context(|| format!("configuration {}", args.config.display()))?;
    let gw = RefGateway::start(config).await?;
    let line = serde_json::to_string(&gw.addresses())?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")?;
        out.flush()?;
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    gw.shutdown().await;
    Ok(())
}
