//! The gateway as a container: the target file's `[container]` section, and the bench starting
//! and stopping that container itself through the `docker` command line.
//!
//! ```toml
//! [container]
//! image = "pushbench/kamailio:0.1.0"   # a local image: never pulled (docker run --pull never)
//! shared_dir = "kamailio"              # mounted at /pushbench in the container
//! env = { SIP_PORT = "26060" }         # the container's environment
//! startup_timeout_ms = 120000          # until its HEALTHCHECK says healthy
//! ```
//!
//! `pushbench run --target FILE` with such a section runs the container with host networking
//! (every listener of the project's images binds 127.0.0.1, so test traffic stays on loopback),
//! the shared folder mounted, after writing the APNs credentials (the gateway's configuration
//! reads them from the shared folder) and before the `start` command; it waits for the image's
//! HEALTHCHECK, and after the `stop` command it stops and removes the container, keeping its log
//! in the report. `--no-container` (or [`crate::runner::RunOptions::manage_container`] = false)
//! leaves that to someone else: Compose, or the `pushbench-testcontainers` crate, which starts
//! the same section through testcontainers.
//!
//! Why the docker CLI and not a Docker API client in the bench: the `pushbench` binary then links
//! no HTTP client for the Docker socket (testcontainers brings bollard, hyper and a TLS stack),
//! a target without `[container]` needs no Docker at all, and what the bench did is one readable
//! command line in the report, which a user can paste to reproduce it.

pub use crate::container_section::{ContainerSection, ContainerSectionError, DEFAULT_MOUNT};
use crate::target::{CommandRun, Target};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// How much of the container's log the report keeps (the end of it).
const LOG_TAIL_LINES: usize = 400;

/// Why the gateway container could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// `docker` could not be run at all.
    #[error("could not run `docker {args}`: {source} (a target with [container] needs Docker)")]
    Spawn {
        /// The arguments.
        args: String,
        /// The error.
        source: std::io::Error,
    },
    /// A docker command failed.
    #[error("`docker {args}` failed: {stderr}")]
    Docker {
        /// The arguments.
        args: String,
        /// Its standard error.
        stderr: String,
    },
    /// The shared folder could not be made.
    #[error("container.shared_dir {path}: {source}")]
    SharedDir {
        /// The folder.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The container stopped or was unhealthy before it was ready.
    #[error("the gateway container {name} ({image}) {what}; its log ends:\n{log}")]
    NotReady {
        /// The container name.
        name: String,
        /// The image.
        image: String,
        /// What happened ("exited with code 1", "was not healthy within 120 s").
        what: String,
        /// The end of its log.
        log: String,
    },
}

/// What a docker command printed.
struct Output {
    ok: bool,
    stdout: String,
    stderr: String,
}

async fn docker(args: &[String], limit: Duration) -> Result<Output, ContainerError> {
    let joined = args.join(" ");
    let child = tokio::process::Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| ContainerError::Spawn {
            args: joined.clone(),
            source,
        })?;
    match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(Ok(out)) => Ok(Output {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }),
        Ok(Err(source)) => Err(ContainerError::Spawn {
            args: joined,
            source,
        }),
        Err(_) => Err(ContainerError::Docker {
            args: joined,
            stderr: format!("no answer within {limit:?}"),
        }),
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// A deadline for docker commands that only talk to the engine (not the image build).
const DOCKER_LIMIT: Duration = Duration::from_secs(60);

/// A gateway container the bench started; [`stop`] ends it.
#[derive(Debug)]
pub struct RunningGateway {
    /// The container name.
    pub name: String,
    /// The `docker run` command line, for the report.
    pub command: String,
    /// How long until it was ready.
    pub took: Duration,
}

/// Starts the gateway of `section` as container `name` and waits until it is healthy. A
/// container of that name left by an earlier run is removed first.
pub async fn start(
    section: &ContainerSection,
    name: &str,
) -> Result<RunningGateway, ContainerError> {
    let started = Instant::now();
    if let Some(d) = &section.shared_dir {
        std::fs::create_dir_all(d).map_err(|source| ContainerError::SharedDir {
            path: d.clone(),
            source,
        })?;
    }
    // A leftover of a killed run would hold the ports; it is ours (same name), so it goes.
    docker(&strings(&["rm", "--force", name]), DOCKER_LIMIT).await?;
    let args = section.run_args(name);
    let command = format!("docker {}", args.join(" "));
    let out = docker(&args, DOCKER_LIMIT).await?;
    if !out.ok {
        return Err(ContainerError::Docker {
            args: args.join(" "),
            stderr: out.stderr.trim().to_owned(),
        });
    }
    let deadline = started + section.startup_timeout;
    let inspect = strings(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}",
        name,
    ]);
    loop {
        let out = docker(&inspect, DOCKER_LIMIT).await?;
        let state: Vec<&str> = out.stdout.split_whitespace().collect();
        let what = match state.as_slice() {
            ["running", _, "healthy" | "none"] => {
                return Ok(RunningGateway {
                    name: name.to_owned(),
                    command,
                    took: started.elapsed(),
                })
            }
            ["running", _, "unhealthy"] => Some("reported unhealthy".to_owned()),
            ["running", ..] | ["created", ..] | ["restarting", ..] => None,
            [status, code, ..] => Some(format!("is {status} (exit code {code})")),
            _ => Some(format!("could not be inspected: {}", out.stderr.trim())),
        };
        let what = what.or_else(|| {
            (Instant::now() >= deadline)
                .then(|| format!("was not healthy within {:?}", section.startup_timeout))
        });
        if let Some(what) = what {
            let log = logs(name).await;
            let _ = docker(&strings(&["rm", "--force", name]), DOCKER_LIMIT).await;
            return Err(ContainerError::NotReady {
                name: name.to_owned(),
                image: section.image.clone(),
                what,
                log,
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The end of the container's log (stdout and stderr interleaved as docker kept them).
pub async fn logs(name: &str) -> String {
    let args = strings(&["logs", "--tail", &LOG_TAIL_LINES.to_string(), name]);
    match docker(&args, DOCKER_LIMIT).await {
        Ok(o) => format!("{}{}", o.stdout, o.stderr),
        Err(e) => e.to_string(),
    }
}

/// What stopping the gateway gave: its log and whether docker stop and rm succeeded.
#[derive(Debug)]
pub struct Stopped {
    /// True when the container stopped and was removed.
    pub ok: bool,
    /// The end of its log.
    pub log: String,
    /// docker's complaints, if any.
    pub errors: String,
    /// How long it took.
    pub took: Duration,
}

/// Stops (SIGTERM, then SIGKILL after the section's stop timeout) and removes the container,
/// keeping the end of its log.
pub async fn stop(section: &ContainerSection, gateway: &RunningGateway) -> Stopped {
    let started = Instant::now();
    let secs = section.stop_timeout.as_secs().max(1).to_string();
    let mut errors = String::new();
    let mut ok = true;
    let limit = section.stop_timeout + DOCKER_LIMIT;
    match docker(&strings(&["stop", "--time", &secs, &gateway.name]), limit).await {
        Ok(o) if o.ok => {}
        Ok(o) => {
            ok = false;
            errors.push_str(&o.stderr);
        }
        Err(e) => {
            ok = false;
            errors.push_str(&e.to_string());
        }
    }
    let log = logs(&gateway.name).await;
    match docker(&strings(&["rm", "--force", &gateway.name]), DOCKER_LIMIT).await {
        Ok(o) if o.ok => {}
        Ok(o) => {
            ok = false;
            errors.push_str(&o.stderr);
        }
        Err(e) => {
            ok = false;
            errors.push_str(&e.to_string());
        }
    }
    Stopped {
        ok,
        log,
        errors,
        took: started.elapsed(),
    }
}

/// The gateway container of a run, as the runner holds it: started after the credentials are
/// written and before the `start` command, stopped after the `stop` command. Both steps are
/// recorded in the report like the target's commands (`container start`, `container stop`,
/// with the container's log).
#[derive(Debug)]
pub struct Managed {
    section: ContainerSection,
    gateway: RunningGateway,
}

impl Managed {
    /// Starts `target`'s `[container]`, when it has one and `manage` is true (the run's
    /// [`crate::runner::RunOptions::manage_container`]).
    pub async fn start_for(
        target: &Target,
        manage: bool,
    ) -> Result<Option<Managed>, ContainerError> {
        let Some(section) = target.container.as_ref().filter(|_| manage) else {
            return Ok(None);
        };
        let name = ContainerSection::container_name(&target.name);
        let gateway = start(section, &name).await?;
        Ok(Some(Managed {
            section: section.clone(),
            gateway,
        }))
    }

    /// The report's record of the start.
    pub fn start_record(&self) -> CommandRun {
        CommandRun {
            which: "container start".into(),
            run: self.gateway.command.clone(),
            exit_code: Some(0),
            timed_out: false,
            stdout: format!(
                "{} healthy after {:.1} s\n",
                self.gateway.name,
                self.gateway.took.as_secs_f64()
            ),
            stderr: String::new(),
            took: self.gateway.took,
        }
    }

    /// Stops and removes the container; the record holds the end of its log.
    pub async fn stop(self) -> CommandRun {
        let s = stop(&self.section, &self.gateway).await;
        CommandRun {
            which: "container stop".into(),
            run: format!("docker stop {0} && docker rm {0}", self.gateway.name),
            exit_code: Some(if s.ok { 0 } else { 1 }),
            timed_out: false,
            stdout: s.log,
            stderr: s.errors,
            took: s.took,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn section(text: &str) -> Result<ContainerSection, String> {
        let s: ContainerSection = toml::from_str(text).map_err(|e| e.to_string())?;
        s.validate().map_err(|e| e.key)?;
        Ok(s)
    }

    #[test]
    fn a_section_gives_a_host_network_never_pull_docker_run() {
        let mut s = section(
            r#"
image = "pushbench/kamailio:0.1.0"
shared_dir = "kamailio"
env = { SIP_PORT = "26060", APNS_URL = "https://127.0.0.1:29443" }
"#,
        )
        .unwrap();
        assert_eq!(s.startup_timeout, Duration::from_secs(120));
        assert_eq!(s.mount, "/pushbench");
        s.resolve_paths(Path::new("/srv/targets"));
        let mut relative = s.clone();
        relative.shared_dir = Some("kamailio".into());
        relative.resolve_paths(Path::new("targets"));
        let dir = relative.shared_dir.unwrap();
        assert!(
            dir.is_absolute() && dir.ends_with("targets/kamailio"),
            "{dir:?}"
        );
        let args = s.run_args("pushbench-gateway-k");
        let line = args.join(" ");
        assert_eq!(
            line,
            "run --detach --pull never --network host --name pushbench-gateway-k \
             --label io.pushbench.role=gateway --env APNS_URL=https://127.0.0.1:29443 \
             --env SIP_PORT=26060 --volume /srv/targets/kamailio:/pushbench \
             pushbench/kamailio:0.1.0"
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        for (text, key) in [
            ("image = \"\"", "container.image"),
            ("image = \"a b\"", "container.image"),
            (
                "image = \"x\"\nenv = { \"A-B\" = \"1\" }",
                "container.env.A-B",
            ),
            ("image = \"x\"\nmount = \"relative\"", "container.mount"),
            (
                "image = \"x\"\nshared_dir = \"a:b\"",
                "container.shared_dir",
            ),
            (
                "image = \"x\"\nstartup_timeout_ms = 0",
                "container.startup_timeout_ms",
            ),
        ] {
            assert_eq!(section(text).unwrap_err(), key, "{text}");
        }
        let unknown = section("image = \"x\"\nports = [1]").unwrap_err();
        assert!(unknown.contains("unknown field"), "{unknown}");
    }

    #[test]
    fn container_names_are_docker_names() {
        assert_eq!(
            ContainerSection::container_name("kamailio-5.6-tsilo (container)"),
            "pushbench-gateway-kamailio-5.6-tsilo--container"
        );
    }
}
