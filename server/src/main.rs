//! `tether`: parse flags, start logging, serve until Ctrl-C or SIGTERM.

use clap::Parser;
use server::{AppState, Config};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
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
    let stop = stop_on_signal();
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
    let opened = tokio::select! {
        opened = AppState::open(config) => opened,
        () = stop.cancelled() => return std::process::ExitCode::SUCCESS,
    };
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
    let lost = state.engine.ownership_lost();
    // `run` also stops when this replica lost a conversation it ran.
    let served = server::run(listener, state, stop.cancelled_owned()).await;
    match served {
        Ok(()) if !lost.is_cancelled() => std::process::ExitCode::SUCCESS,
        Ok(()) => {
            eprintln!(
                "tether: another replica took over a conversation this one could not keep; \
                 it stopped every command and agent"
            );
            std::process::ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("tether: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Cancelled on the first Ctrl-C or SIGTERM.
///
/// One listener for the whole run, registered before anything else: once tokio has
/// installed its handler, a signal that arrives while no listener exists is lost, and
/// the process would neither shut down nor die. Harnesses and service managers send
/// SIGTERM as soon as the address is printed.
fn stop_on_signal() -> CancellationToken {
    let stop = CancellationToken::new();
    let listen = |kind, name| {
        signal(kind)
            .inspect_err(|err| {
                eprintln!("tether: cannot listen for {name} ({err}); it ends Tether at once")
            })
            .ok()
    };
    let mut term = listen(SignalKind::terminate(), "SIGTERM");
    let mut interrupt = listen(SignalKind::interrupt(), "Ctrl-C");
    let cancel = stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = next(&mut term) => {}
            () = next(&mut interrupt) => {}
        }
        // A second signal is ignored, as tokio's handler stays installed: the
        // shutdown it would cut short is bounded anyway.
        cancel.cancel();
    });
    stop
}

/// The next delivery of `signal`; never, if it could not be listened for or the
/// runtime is going away.
async fn next(signal: &mut Option<tokio::signal::unix::Signal>) {
    if let Some(signal) = signal
        && signal.recv().await.is_some()
    {
        return;
    }
    std::future::pending().await
}
