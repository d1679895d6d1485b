//! The target file's `[container]` section: the gateway as a container image, and how to run it
//! (see [`crate::container`] for the bench starting and stopping it).
//!
//! ```toml
//! [container]
//! image = "pushbench/kamailio:0.1.0"   # a local image: never pulled (docker run --pull never)
//! shared_dir = "kamailio"              # mounted at /pushbench in the container
//! env = { SIP_PORT = "26060" }         # the container's environment
//! startup_timeout_ms = 120000          # until its HEALTHCHECK says healthy
//! ```

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where [`ContainerSection::shared_dir`] is mounted in the container unless `mount` says
/// otherwise; the project's gateway images read and write under it.
pub const DEFAULT_MOUNT: &str = "/pushbench";

/// `[container]`: the gateway image and how to run it.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerSection {
    /// The image, `name:tag`. It must exist locally: the bench never pulls.
    pub image: String,
    /// The container's environment (ports, addresses: see each image's README).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// A folder shared with the container, relative to the target file: the bench writes the
    /// APNs credentials into it (point `apns.credentials_dir` inside it) and reads back what the
    /// gateway writes (its TLS CA, its log). Created when missing.
    pub shared_dir: Option<PathBuf>,
    /// Where `shared_dir` is mounted in the container (default `/pushbench`).
    #[serde(default = "default_mount")]
    pub mount: String,
    /// How long the container may take to become healthy (its image's HEALTHCHECK; running, for
    /// an image without one). Default 120 s.
    #[serde(
        rename = "startup_timeout_ms",
        with = "crate::millis",
        default = "default_startup_timeout"
    )]
    pub startup_timeout: Duration,
    /// How long `docker stop` waits after SIGTERM before SIGKILL. Default 10 s.
    #[serde(
        rename = "stop_timeout_ms",
        with = "crate::millis",
        default = "default_stop_timeout"
    )]
    pub stop_timeout: Duration,
}

fn default_mount() -> String {
    DEFAULT_MOUNT.to_owned()
}

fn default_startup_timeout() -> Duration {
    Duration::from_secs(120)
}

fn default_stop_timeout() -> Duration {
    Duration::from_secs(10)
}

/// A `[container]` value that cannot work, with its key.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct ContainerSectionError {
    /// The dotted key (`container.image`).
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

impl ContainerSection {
    /// Checks what serde cannot: a usable image reference, environment names, the mount point.
    pub fn validate(&self) -> Result<(), ContainerSectionError> {
        let bad = |key: &str, reason: String| ContainerSectionError {
            key: format!("container.{key}"),
            reason,
        };
        let image = self.image.trim();
        if image.is_empty() || image.contains(char::is_whitespace) || image.starts_with('-') {
            return Err(bad(
                "image",
                format!(
                    "{:?} is not an image reference like pushbench/kamailio:0.1.0",
                    self.image
                ),
            ));
        }
        for name in self.env.keys() {
            let ok = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(bad(
                    &format!("env.{name}"),
                    "an environment variable name is letters, digits and _".into(),
                ));
            }
        }
        if !self.mount.starts_with('/') || self.mount.contains(':') {
            return Err(bad(
                "mount",
                format!("{:?} is not an absolute path in the container", self.mount),
            ));
        }
        if let Some(d) = &self.shared_dir {
            if d.as_os_str().is_empty() || d.to_string_lossy().contains(':') {
                return Err(bad(
                    "shared_dir",
                    "must be a folder path without ':' (docker's -v separator)".into(),
                ));
            }
        }
        for (key, d) in [
            ("startup_timeout_ms", self.startup_timeout),
            ("stop_timeout_ms", self.stop_timeout),
        ] {
            if d.is_zero() {
                return Err(bad(key, "must be greater than zero".into()));
            }
        }
        Ok(())
    }

    /// Makes `shared_dir` absolute against `base` (the target file's folder), and against the
    /// working directory when `base` is relative: docker takes a relative `-v` source for a
    /// volume name.
    pub fn resolve_paths(&mut self, base: &Path) {
        if let Some(d) = &mut self.shared_dir {
            let joined = base.join(&*d);
            *d = std::path::absolute(&joined).unwrap_or(joined);
        }
    }

    /// The container name the bench uses for a target: one per target, so a container left
    /// behind by a killed run is replaced, not run twice next to it.
    pub fn container_name(target_name: &str) -> String {
        let clean: String = target_name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        format!("pushbench-gateway-{}", clean.trim_matches('-'))
    }

    /// The `docker run` arguments (after `docker`) that start this gateway as `name`.
    pub fn run_args(&self, name: &str) -> Vec<String> {
        let mut args: Vec<String> = [
            "run",
            "--detach",
            "--pull",
            "never",
            "--network",
            "host",
            "--name",
            name,
            "--label",
            "io.pushbench.role=gateway",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for (k, v) in &self.env {
            args.push("--env".into());
            args.push(format!("{k}={v}"));
        }
        if let Some(d) = &self.shared_dir {
            args.push("--volume".into());
            args.push(format!("{}:{}", d.display(), self.mount));
        }
        args.push(self.image.clone());
        args
    }
}
