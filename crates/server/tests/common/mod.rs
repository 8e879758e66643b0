//! Helpers shared by the integration tests: a tempora server process on a
//! loopback port of its choosing with its own data directory, killed when
//! dropped.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    child: Option<Child>,
    pub port: u16,
    pub data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts a server on a fresh data directory.
    pub fn start() -> Server {
        let temp = tempfile::tempdir().expect("temp dir");
        let data_dir = temp.path().join("data");
        let mut server = Server::start_in(&data_dir);
        server._temp = Some(temp);
        server
    }

    /// Starts a server on `data_dir` (kept by the caller).
    pub fn start_in(data_dir: &Path) -> Server {
        Self::start_with(data_dir, &[])
    }

    pub fn start_with(data_dir: &Path, extra_args: &[&str]) -> Server {
        Self::start_with_env(data_dir, extra_args, &[])
    }

    /// Starts a server with extra flags and environment variables, on a
    /// port the server picks itself (it prints the address it listens on),
    /// so that concurrent tests never race for a port.
    pub fn start_with_env(data_dir: &Path, extra_args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tempora"));
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .args(extra_args)
            .envs(env.iter().copied());
        Self::spawn(command, data_dir)
    }

    /// Starts a server in `cwd` without `--data-dir`: on the embedded
    /// default, `./tempora-data`, as the README's first command runs it.
    pub fn start_on_the_default_data_dir(cwd: &Path) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tempora"));
        command
            .current_dir(cwd)
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0");
        Self::spawn(command, &cwd.join("tempora-data"))
    }

    fn spawn(mut command: Command, data_dir: &Path) -> Server {
        let mut child = command
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn tempora");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, receiver) = std::sync::mpsc::channel();
        // The first line names the address; later output is drained so the
        // server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = sender.send(line);
            }
            for _ in lines {}
        });
        let line = receiver
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("tempora did not start listening"));
        let port = line
            .rsplit(':')
            .next()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from tempora: {line}"));
        Server {
            child: Some(child),
            port,
            data_dir: data_dir.to_owned(),
            _temp: None,
        }
    }

    pub fn connection_string(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }

    pub async fn connect(&self) -> tokio_postgres::Client {
        let (client, connection) =
            tokio_postgres::connect(&self.connection_string(), tokio_postgres::NoTls)
                .await
                .expect("connect to tempora");
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
    }

    /// SIGKILL: the process gets no chance to flush anything.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns the exit status success.
    pub fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        false
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The rows of `sql` in text format, as the simple query protocol gives
/// them, or the SQLSTATE of the failure.
pub async fn text_rows(
    client: &tokio_postgres::Client,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>, String> {
    named_text_rows(client, sql, false).await
}

/// Like [`text_rows`]; with `names`, each result's column names come
/// first, as a row of their own.
pub async fn named_text_rows(
    client: &tokio_postgres::Client,
    sql: &str,
    names: bool,
) -> Result<Vec<Vec<Option<String>>>, String> {
    match client.simple_query(sql).await {
        Ok(messages) => Ok(messages
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::RowDescription(columns) if names => {
                    Some(columns.iter().map(|c| Some(c.name().to_owned())).collect())
                }
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_owned))
                        .collect(),
                ),
                _ => None,
            })
            .collect()),
        Err(error) => Err(error
            .as_db_error()
            .map(|e| e.code().code().to_owned())
            .unwrap_or_else(|| error.to_string())),
    }
}
