//! A PostgreSQL cluster of a test's own, to stop and start without touching
//! the one other tests share: initdb into a directory under the system's
//! temporary directory, served on a free port of 127.0.0.1 (its Unix socket
//! in that directory, not the system's), with the binaries
//! `.ci/with-postgres` uses (the newest `/usr/lib/postgresql/*/bin`). As
//! root, the cluster runs as the `postgres` user, since initdb refuses root.
//! Dropping it stops the server (immediate mode) and removes the directory,
//! on every path, a failed assertion included.

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

/// How `pg_ctl stop` shuts the server down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// `-m fast`: sessions are ended, and what was committed is on disk.
    Fast,
    /// `-m immediate`: the server is killed, and recovers from its log when
    /// started again, as after a crash.
    Immediate,
}

impl Shutdown {
    fn mode(self) -> &'static str {
        match self {
            Self::Fast => "fast",
            Self::Immediate => "immediate",
        }
    }
}

/// A running private cluster, stopped and removed when dropped.
#[derive(Debug)]
pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    /// Run its commands as the `postgres` user (this process is root).
    as_postgres: bool,
}

/// The newest installed PostgreSQL's binaries, found as `.ci/with-postgres`
/// finds them.
fn binaries() -> Option<PathBuf> {
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let version = name
                .split('.')
                .map(str::parse)
                .collect::<Result<Vec<u32>, _>>()
                .ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versions.sort();
    let (_, bin) = versions.pop()?;
    bin.join("initdb").exists().then_some(bin)
}

/// A port of 127.0.0.1 nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

impl Cluster {
    /// Creates and starts one, or `None` (and says why) where no PostgreSQL
    /// is installed and `SHIPMENT_WEBHOOKS_REQUIRE_POSTGRES` is not set.
    pub async fn start() -> Option<Self> {
        let Some(bin) = binaries() else {
            assert!(
                std::env::var_os("SHIPMENT_WEBHOOKS_REQUIRE_POSTGRES").is_none(),
                "SHIPMENT_WEBHOOKS_REQUIRE_POSTGRES is set but no /usr/lib/postgresql/*/bin/initdb \
                 is installed to make a private cluster with"
            );
            eprintln!(
                "no /usr/lib/postgresql/*/bin/initdb to make a private cluster with: test skipped"
            );
            return None;
        };
        let as_postgres = std::fs::metadata("/proc/self")
            .map(|proc| proc.uid() == 0)
            .unwrap_or(false);
        let dir = std::env::temp_dir().join(format!(
            "shipment-webhooks-cluster-{}",
            crate::harness::unique()
        ));
        std::fs::create_dir(&dir).expect("a directory for the private cluster");
        // From here on, a panic removes the directory and stops the server.
        let mut cluster = Self {
            bin,
            dir,
            port: 0,
            as_postgres,
        };
        if as_postgres {
            cluster.run_checked(
                std::process::Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(&cluster.dir),
            );
        }
        std::fs::set_permissions(
            &cluster.dir,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .expect("the cluster's directory private");
        let data = cluster.data();
        cluster
            .pg(
                "initdb",
                &[
                    "-D",
                    path(&data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "--no-sync",
                ],
            )
            .await;
        // A port taken between choosing it and the server binding it: another.
        for _ in 0..5 {
            cluster.port = free_port();
            if cluster.try_start().await.status.success() {
                return Some(cluster);
            }
        }
        panic!(
            "the private cluster did not start on 5 ports; its log:\n{}",
            std::fs::read_to_string(cluster.dir.join("log")).unwrap_or_default()
        );
    }

    /// A URL for its `postgres` database, over TCP.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server and waits until it is gone.
    pub async fn stop(&self, shutdown: Shutdown) {
        let data = self.data();
        self.pg(
            "pg_ctl",
            &[
                "-D",
                path(&data),
                "-m",
                shutdown.mode(),
                "-w",
                "-t",
                "30",
                "stop",
            ],
        )
        .await;
    }

    /// Starts the stopped server again, on the same port, and waits until it
    /// accepts connections.
    pub async fn start_again(&self) {
        let output = self.try_start().await;
        assert!(
            output.status.success(),
            "the private cluster did not start again: {}; its log:\n{}",
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
        );
    }

    async fn try_start(&self) -> Output {
        let options = format!(
            "-k {} -c listen_addresses=127.0.0.1 -p {} -c max_connections=50",
            self.dir.display(),
            self.port
        );
        let (data, log) = (self.data(), self.dir.join("log"));
        let args = [
            "-D",
            path(&data),
            "-l",
            path(&log),
            "-w",
            "-t",
            "30",
            "-o",
            &options,
            "start",
        ];
        self.command("pg_ctl", &args)
            .output()
            .await
            .expect("pg_ctl runs")
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A PostgreSQL program, as the cluster's owner.
    fn command(&self, program: &str, args: &[&str]) -> tokio::process::Command {
        let program = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut command = tokio::process::Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            tokio::process::Command::new(program)
        };
        command.args(args).kill_on_drop(true);
        command
    }

    /// Runs a PostgreSQL program to its end, within 60 s; panics if it fails.
    async fn pg(&self, program: &str, args: &[&str]) {
        let output = tokio::time::timeout(
            Duration::from_secs(60),
            self.command(program, args).output(),
        )
        .await
        .unwrap_or_else(|_| panic!("{program} {args:?} did not end within 60 s"))
        .expect("a PostgreSQL program runs");
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn run_checked(&self, command: &mut std::process::Command) {
        let status = command.status().expect("the command runs");
        assert!(status.success(), "{command:?} failed");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Whatever state it is in: stopping a stopped server only fails.
        let data = self.data();
        let program = self.bin.join("pg_ctl");
        let args = [
            "-D",
            path(&data),
            "-m",
            "immediate",
            "-w",
            "-t",
            "30",
            "stop",
        ];
        let mut command = if self.as_postgres {
            let mut command = std::process::Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            std::process::Command::new(program)
        };
        let _ = command
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn path(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}
