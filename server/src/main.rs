//! `tether`: parse flags, start logging, serve until Ctrl-C or SIGTERM.

use clap::Parser;
use server::{AppState, Config};
use tokio::net::TcpListener;
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
    let opened = tokio::select! {
        opened = AppState::open(config) => opened,
        () = shutdown_signal() => return std::process::ExitCode::SUCCESS,
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
    let served = server::run(listener, state, shutdown_signal()).await;
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
