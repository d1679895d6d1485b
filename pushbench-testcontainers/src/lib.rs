//! pushbench-testcontainers: run pushbench against a push gateway container from a Rust test.
//!
//! The gateway is described by a pushbench target file with a `[container]` section (image,
//! environment, shared folder; see `pushbench::container`). [`Gateway::start`] writes the APNs
//! credentials the gateway's configuration reads, starts the image through testcontainers with
//! host networking (the project's images listen on 127.0.0.1 only) and waits for its
//! HEALTHCHECK; [`Gateway::run`] runs the bench in-process against it (the target file with
//! `--no-container`: testcontainers owns the container) and returns the run's report, whose
//! verdicts a test asserts on; [`Gateway::stop`] removes the container.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use pushbench::expected::Outcome;
//! let gateway = pushbench_testcontainers::Gateway::start("targets/container/kamailio.toml").await?;
//! let report = gateway.run(&["features/sip"]).await?;
//! gateway.stop().await?;
//! assert!(report.passed(), "{}", report.failures());
//! assert!(report.scenarios.iter().all(|s| s.outcome != Outcome::Fail));
//! # Ok(()) }
//! ```
//!
//! The image must exist locally (built by `containers/build.sh`): testcontainers creates the
//! container first and pulls only when the engine answers 404 for the image, so a local image is
//! used as it is (testcontainers-rs 0.28, `src/runners/async_runner.rs`), but a missing one would
//! be pulled: [`Gateway::start`] checks the image is there first and fails without pulling. Runs
//! on a multi-threaded tokio runtime (`#[tokio::test(flavor = "multi_thread")]`): the bench
//! drives its scenarios on the calling task and its parties on the runtime's workers.

pub mod engine;

use pushbench::container::ContainerSection;
use pushbench::report::RunReport;
use pushbench::runner::{RunError, RunOptions};
use pushbench::target::{Target, TargetError, TargetKind};
use std::path::{Path, PathBuf};
use std::time::Duration;
use testcontainers::core::{Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

/// Why the gateway could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The target file is invalid.
    #[error("target: {0}")]
    Target(#[from] TargetError),
    /// The target file has no `[container]` section.
    #[error("{0}: the target file has no [container] section")]
    NoContainer(PathBuf),
    /// The image is not on this machine (it is never pulled).
    #[error("image {0} is not on this machine: build it first (containers/build.sh); it is never pulled")]
    MissingImage(String),
    /// The APNs credentials could not be written.
    #[error("apns.credentials_dir: {0}")]
    Credentials(#[from] mock_apns::CredentialsError),
    /// The shared folder could not be made.
    #[error("container.shared_dir {0}: {1}")]
    SharedDir(PathBuf, std::io::Error),
    /// The engine's API version could not be bridged.
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    /// testcontainers failed (start, readiness, removal).
    #[error("testcontainers: {0}")]
    Testcontainers(#[from] testcontainers::TestcontainersError),
}

/// A gateway container started from a target file, and the bench to run against it.
pub struct Gateway {
    target_file: PathBuf,
    target: Target,
    container: ContainerAsync<GenericImage>,
}

/// `name:tag` split at the tag's colon (a registry port's colon comes before the last `/`).
fn split_image(image: &str) -> (&str, &str) {
    match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, tag),
        _ => (image, "latest"),
    }
}

impl Gateway {
    /// Starts the gateway of `target_file`'s `[container]` section and waits until it is
    /// healthy (its `startup_timeout_ms`).
    pub async fn start(target_file: impl AsRef<Path>) -> Result<Gateway, Error> {
        let target_file = target_file.as_ref().to_path_buf();
        let target = Target::load(&target_file)?;
        let section: ContainerSection = target
            .container
            .clone()
            .ok_or_else(|| Error::NoContainer(target_file.clone()))?;
        // The gateway's configuration reads these; the bench reuses them when it runs.
        if target.kind == TargetKind::External
            && !target.apns.credentials_dir.as_os_str().is_empty()
        {
            mock_apns::Credentials::generate_or_load(
                &target.apns.credentials_dir,
                &target.apns.bundle_id,
                None,
                &[],
            )?;
        }
        engine::bridge_if_needed()?;
        let (name, tag) = split_image(&section.image);
        if !image_exists(&section.image).await {
            return Err(Error::MissingImage(section.image.clone()));
        }
        let mut request = GenericImage::new(name, tag)
            .with_wait_for(WaitFor::healthcheck())
            .with_network("host")
            .with_startup_timeout(section.startup_timeout);
        for (k, v) in &section.env {
            request = request.with_env_var(k, v);
        }
        if let Some(dir) = &section.shared_dir {
            std::fs::create_dir_all(dir).map_err(|e| Error::SharedDir(dir.clone(), e))?;
            request = request.with_mount(Mount::bind_mount(
                dir.display().to_string(),
                section.mount.clone(),
            ));
        }
        let container = request.start().await?;
        Ok(Gateway {
            target_file,
            target,
            container,
        })
    }

    /// The target, as loaded from its file.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The container's id.
    pub fn id(&self) -> &str {
        self.container.id()
    }

    /// Runs the bench in-process against the gateway: the scenarios of `features` (files or
    /// folders), with the target file's commands and expected failures. Nothing is printed; the
    /// report holds every scenario's verdict and outcome.
    pub async fn run(&self, features: &[impl AsRef<Path>]) -> Result<RunReport, RunError> {
        self.run_with(RunOptions {
            features: features.iter().map(|f| f.as_ref().to_path_buf()).collect(),
            print: false,
            ..RunOptions::default()
        })
        .await
    }

    /// [`Gateway::run`] with other options (tags, reports, deadline); the target is this
    /// gateway's file, and the container is left to testcontainers.
    pub async fn run_with(&self, options: RunOptions) -> Result<RunReport, RunError> {
        let options = RunOptions {
            target: Some(self.target_file.clone()),
            manage_container: false,
            ..options
        };
        pushbench::runner::run(&options).await
    }

    /// Stops and removes the container (SIGTERM, then SIGKILL after the section's stop
    /// timeout).
    pub async fn stop(self) -> Result<(), Error> {
        let secs = self
            .target
            .container
            .as_ref()
            .map(|c| c.stop_timeout)
            .unwrap_or(Duration::from_secs(10))
            .as_secs()
            .max(1);
        self.container
            .stop_with_timeout(Some(i32::try_from(secs).unwrap_or(i32::MAX)))
            .await?;
        self.container.rm().await?;
        Ok(())
    }
}

/// True when the engine has the image (`docker image inspect`), so starting it pulls nothing.
async fn image_exists(image: &str) -> bool {
    tokio::process::Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", image])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_split_at_the_tag() {
        assert_eq!(
            split_image("pushbench/kamailio:0.1.0"),
            ("pushbench/kamailio", "0.1.0")
        );
        assert_eq!(
            split_image("pushbench/kamailio"),
            ("pushbench/kamailio", "latest")
        );
        assert_eq!(
            split_image("localhost:5000/gw"),
            ("localhost:5000/gw", "latest")
        );
    }
}
