//! The `tempora` binary: `tempora serve` runs the database server.
//!
//! ```text
//! main ─ parse flags ─ Engine::open (replay WAL) ─ accept loop ─ one task per connection
//!                                   SIGINT/SIGTERM ─ stop accepting ─ drain ─ checkpoint
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tracing_subscriber::EnvFilter;

use tempora_protocol::{AuthMode, Handlers};
use tempora_sql::Engine;
use tempora_storage::StoreOptions;

/// mimalloc: the query and write paths allocate many short-lived buffers
/// from several threads, where glibc's allocator showed up in profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns transparent huge pages off for the process (PostgreSQL never
/// asks for them for its backends' memory; Redis tells its users to turn
/// them off, for the latency they add). mimalloc asks the kernel for huge pages
/// on its arenas (`madvise(MADV_HUGEPAGE)`), and with the usual
/// `defrag=madvise` every first touch of a 2 MiB page then zeroes it, and
/// compacts memory to find it, while the session waits: the first 100k-row
/// `executemany` after a start spent 0.2 s of its 0.4 s in the kernel that
/// way, and the server held 150 MB where 4 KiB pages need 105 MB. Queries
/// were no faster with them (the hourly aggregate, 0.14-0.15 s either way).
/// The flag applies to the whole address space, the arena mimalloc mapped
/// before `main` included.
#[cfg(target_os = "linux")]
fn refuse_transparent_huge_pages() -> std::io::Result<()> {
    Ok(rustix::thread::disable_transparent_huge_pages(true)?)
}

#[cfg(not(target_os = "linux"))]
fn refuse_transparent_huge_pages() -> std::io::Result<()> {
    Ok(())
}

#[derive(Parser)]
#[command(
    name = "tempora",
    version,
    about = "A time-series SQL database that speaks PostgreSQL and TimescaleDB"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Where tables, segments and the write-ahead log live.
        #[arg(long, default_value = "./tempora-data")]
        data_dir: PathBuf,
        /// Address to listen on. A non-loopback address needs `--auth scram`.
        #[arg(long, default_value = "127.0.0.1:5433")]
        listen: SocketAddr,
        /// Memtable size in MiB at which rows are flushed to segment files.
        #[arg(long, default_value_t = 256)]
        flush_threshold_mib: usize,
        /// How clients authenticate: `trust` (any role that may log in; the
        /// default without a password) or `scram` (SCRAM-SHA-256; the default
        /// once `TEMPORA_PASSWORD` or `--password-file` gives one).
        #[arg(long, value_enum)]
        auth: Option<Auth>,
        /// A file holding the `postgres` superuser's password (its first
        /// line), set at start; the environment variable TEMPORA_PASSWORD
        /// does the same.
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// PEM certificate chain for TLS (with `--tls-key`).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key for TLS (with `--tls-cert`).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Auth {
    Trust,
    Scram,
}

/// What `serve` runs with.
struct ServeOptions {
    data_dir: PathBuf,
    listen: SocketAddr,
    flush_threshold_mib: usize,
    auth: AuthMode,
    superuser_password: Option<String>,
    tls: Option<(PathBuf, PathBuf)>,
}

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error("{0}")]
    Engine(#[from] tempora_sql::Error),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "refusing to listen on non-loopback address {0} without authentication: set TEMPORA_PASSWORD (or --password-file) and use --auth scram"
    )]
    NotLoopback(SocketAddr),
    #[error("--auth scram needs the superuser's password: set TEMPORA_PASSWORD or --password-file")]
    NoPassword,
    #[error("cannot read the password file {path}: {source}")]
    PasswordFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Tls(#[from] tempora_protocol::TlsError),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

fn main() -> std::process::ExitCode {
    let huge_pages = refuse_transparent_huge_pages();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(error) = huge_pages {
        tracing::warn!(%error, "cannot turn transparent huge pages off; running with them");
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve {
            data_dir,
            listen,
            flush_threshold_mib,
            auth,
            password_file,
            tls_cert,
            tls_key,
        } => serve_options(auth, password_file).and_then(|(auth, superuser_password)| {
            serve(ServeOptions {
                data_dir,
                listen,
                flush_threshold_mib,
                auth,
                superuser_password,
                tls: tls_cert.zip(tls_key),
            })
        }),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "tempora stopped");
            eprintln!("tempora: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The authentication mode and the superuser's password (from
/// TEMPORA_PASSWORD or the password file), as the flags and environment
/// give them.
fn serve_options(
    auth: Option<Auth>,
    password_file: Option<PathBuf>,
) -> Result<(AuthMode, Option<String>), Error> {
    let password = match password_file {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|source| Error::PasswordFile { path, source })?;
            Some(text.lines().next().unwrap_or_default().to_owned())
        }
        None => std::env::var("TEMPORA_PASSWORD").ok(),
    }
    .filter(|p| !p.is_empty());
    let auth = match (auth, &password) {
        (Some(Auth::Trust), _) => AuthMode::Trust,
        (Some(Auth::Scram), _) | (None, Some(_)) => AuthMode::Scram,
        (None, None) => AuthMode::Trust,
    };
    Ok((auth, password))
}

fn serve(options: ServeOptions) -> Result<(), Error> {
    let ServeOptions {
        data_dir,
        listen,
        flush_threshold_mib,
        auth,
        superuser_password,
        tls,
    } = options;
    if !listen.ip().is_loopback() && auth != AuthMode::Scram {
        return Err(Error::NotLoopback(listen));
    }
    let tls = match &tls {
        Some((certificate, key)) => Some(tempora_protocol::tls_acceptor(certificate, key)?),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tempora")
        .build()
        .map_err(Error::Runtime)?;
    runtime.block_on(async move {
        let options = StoreOptions {
            flush_threshold_bytes: flush_threshold_mib.max(1) << 20,
        };
        let engine = {
            let data_dir = data_dir.clone();
            tokio::task::spawn_blocking(move || Engine::open(&data_dir, options))
                .await
                .map_err(|e| Error::Runtime(std::io::Error::other(e)))??
        };
        match &superuser_password {
            Some(password) => {
                let engine = engine.clone();
                let password = password.clone();
                tokio::task::spawn_blocking(move || {
                    engine.set_password(tempora_sql::DEFAULT_USER, &password)
                })
                .await
                .map_err(|e| Error::Runtime(std::io::Error::other(e)))??;
            }
            None if auth == AuthMode::Scram
                && engine
                    .role(tempora_sql::DEFAULT_USER)
                    .is_none_or(|r| r.password_verifier.is_none()) =>
            {
                return Err(Error::NoPassword);
            }
            None => {}
        }
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| Error::Listen { address: listen, source })?;
        let address = listener.local_addr().unwrap_or(listen);
        tracing::info!(%address, data_dir = %data_dir.display(), ?auth, tls = tls.is_some(), "tempora is ready for connections");
        // On stdout too, for whoever started the server on port 0.
        println!("tempora is listening on {address}");
        let handlers = Handlers::new(engine.clone(), auth);
        let mut connections = JoinSet::new();
        let shutdown = shutdown_signal();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((socket, peer)) => {
                        let _ = socket.set_nodelay(true);
                        tracing::debug!(%peer, "connection");
                        // Each connection is its own task: a panic in one ends that
                        // connection only.
                        connections.spawn(tempora_protocol::serve_connection(
                            socket,
                            tls.clone(),
                            handlers.clone(),
                        ));
                    }
                    Err(error) => tracing::warn!(%error, "accept failed"),
                },
                Some(finished) = connections.join_next(), if !connections.is_empty() => {
                    if let Err(error) = finished
                        && error.is_panic()
                    {
                        tracing::error!("a connection task panicked; the server continues");
                    }
                }
            }
        }
        tracing::info!("shutting down: no new connections, waiting for running statements");
        drop(listener);
        let drained = tokio::time::timeout(Duration::from_secs(10), async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("closing connections still open after 10 s");
            connections.abort_all();
        }
        checkpoint(engine).await;
        Ok(())
    })
}

/// Flushes memtables so the next start replays little; the WAL already holds
/// every acknowledged write, so a failure here loses nothing.
async fn checkpoint(engine: Arc<Engine>) {
    match tokio::task::spawn_blocking(move || engine.checkpoint()).await {
        Ok(Ok(())) => tracing::info!("checkpoint written; bye"),
        Ok(Err(error)) => {
            tracing::warn!(%error, "final checkpoint failed; the WAL will be replayed at start")
        }
        Err(error) => tracing::warn!(%error, "final checkpoint task failed"),
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::warn!(%error, "cannot watch SIGTERM");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
