//! `tether`: parse flags, start logging, serve until Ctrl-C or SIGTERM.

use clap::Parser;
use server::{AppState, Config};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = Config::parse();
    if let Err(why) = config.validate() {
        eprintln!("tether: {why}");
        return std::process::ExitCode::from(2);
    }
    let addr = config.addr;
    let token = config.token.clone();
    let listener = match TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("tether: cannot listen on {addr}: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let data_dir = config.data_dir();
    if let Err(err) =
        server::agent::acp::spec::configured(&config.agents, &data_dir.join("agents.toml"))
    {
        eprintln!("tether: {err}");
        return std::process::ExitCode::FAILURE;
    }
    // On NATS another replica may be active: until this one follows it (or is
    // active), it answers 503 on a copy of the listener.
    let stop_standby = CancellationToken::new();
    let standby = match listener
        .local_addr()
        .and_then(|_| clone_listener(&listener))
    {
        Ok(copy) => Some(tokio::spawn(server::http::serve_standby(
            copy,
            stop_standby.clone(),
        ))),
        Err(err) => {
            eprintln!("tether: cannot listen on {addr}: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let shown = listener.local_addr().unwrap_or(addr);
    // While another replica is active this one follows it, served on another copy
    // of the listener, until it takes over.
    let mut following = None;
    let mut standby = standby;
    let opened = tokio::select! {
        opened = AppState::open_as_replica(config, |active, follower| {
            let active = active.to_string();
            let copy = match clone_listener(&listener) {
                Ok(copy) => copy,
                Err(err) => {
                    tracing::error!(%err, "cannot serve while following");
                    return;
                }
            };
            let standby = standby.take();
            let stop_standby = stop_standby.clone();
            following = Some(tokio::spawn(async move {
                // The 503s end first, so nobody is told "standing by" after this
                // replica said it follows.
                stop_standby.cancel();
                if let Some(standby) = standby {
                    let _ = standby.await;
                }
                println!("Tether is following at http://{shown}/ while {active} is active");
                let stop = follower.shutdown.clone();
                server::run(copy, follower, async move { stop.cancelled().await }).await
            }));
        }) => opened,
        () = shutdown_signal() => return std::process::ExitCode::SUCCESS,
    };
    stop_standby.cancel();
    if let Some(standby) = standby {
        let _ = standby.await;
    }
    if let Some(following) = following {
        let _ = following.await;
    }
    let state = match opened {
        Ok(state) => state,
        // A `DataDir` error already names the directory; the others do not.
        Err(err @ server::store::StoreError::DataDir { .. }) => {
            eprintln!("tether: {err}");
            return std::process::ExitCode::FAILURE;
        }
        Err(err) => {
            eprintln!(
                "tether: cannot open the data directory {}: {err}",
                data_dir.display()
            );
            return std::process::ExitCode::FAILURE;
        }
    };
    // A plain line on stdout that people and test harnesses can read the address from;
    // with a token, the address logs the browser in (as Jupyter does).
    let login = token.map(|t| format!("?token={t}")).unwrap_or_default();
    println!(
        "Tether is serving http://{}/{login}",
        listener.local_addr().unwrap_or(addr)
    );
    let lease = state.lease.clone();
    let lost = lease.as_ref().map(|l| l.lost()).unwrap_or_default();
    // `run` also stops on a lost lease.
    let served = server::run(listener, state, shutdown_signal()).await;
    let lost_lease = lost.is_cancelled();
    if let Some(lease) = lease {
        lease.release().await;
    }
    match served {
        Ok(()) if !lost_lease => std::process::ExitCode::SUCCESS,
        Ok(()) => {
            eprintln!("tether: this replica lost its lease; it stopped every command and agent");
            std::process::ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("tether: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A second handle on the same listening socket.
fn clone_listener(listener: &TcpListener) -> std::io::Result<TcpListener> {
    let copy = socket2::SockRef::from(listener).try_clone()?;
    let std: std::net::TcpListener = copy.into();
    std.set_nonblocking(true)?;
    TcpListener::from_std(std)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
