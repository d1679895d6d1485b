//! The gateway a load run talks to: the target's own `start` command before the phones register
//! and its `stop` command at the end (the APNs credentials its configuration points at written
//! first, as `pushbench run` does), or nothing for the embedded reference gateway.

use crate::target::{ProcessGroups, Target, TargetKind};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why the target's gateway could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The credentials folder.
    #[error("apns.credentials_dir: {0}")]
    Credentials(#[from] mock_apns::CredentialsError),
    /// The start command could not be run.
    #[error("the start command {run:?}: {source}")]
    Spawn {
        /// The command line.
        run: String,
        /// Why.
        source: std::io::Error,
    },
    /// The start command failed.
    #[error("the start command {run:?} failed: {stderr}")]
    Failed {
        /// The command line.
        run: String,
        /// Its standard error.
        stderr: String,
    },
}

/// A target gateway the run started (stop it with [`Started::stop`]).
pub struct Started {
    dir: PathBuf,
    groups: ProcessGroups,
}

/// Writes (or reuses) the APNs credentials an external target's configuration points at: they
/// exist before the mock APNs loads them and before the gateway starts.
pub fn credentials(target: &Target) -> Result<(), StartError> {
    if target.kind == TargetKind::External && !target.apns.credentials_dir.as_os_str().is_empty() {
        mock_apns::Credentials::generate_or_load(
            &target.apns.credentials_dir,
            &target.apns.bundle_id,
            None,
            &[],
        )?;
    }
    Ok(())
}

/// Runs the target's `start` command, if it is an external target with one (`dir` is the target
/// file's folder).
pub async fn start(target: &Target, dir: &Path) -> Result<Started, StartError> {
    let started = Started {
        dir: dir.to_path_buf(),
        groups: ProcessGroups::default(),
    };
    if target.kind != TargetKind::External {
        return Ok(started);
    }
    if let Some(c) = &target.commands.start {
        let r = c
            .execute("start", dir, &started.groups)
            .await
            .map_err(|source| StartError::Spawn {
                run: c.run.clone(),
                source,
            })?;
        if !r.succeeded() {
            return Err(StartError::Failed {
                run: c.run.clone(),
                stderr: r.stderr,
            });
        }
    }
    Ok(started)
}

impl Started {
    /// Runs the target's `stop` command, then stops whatever a command left running.
    pub async fn stop(self, target: &Target) {
        if let Some(c) = &target.commands.stop {
            let _ = c.execute("stop", &self.dir, &self.groups).await;
        }
        let _ = self.groups.stop_leftovers(Duration::from_secs(2)).await;
    }
}
