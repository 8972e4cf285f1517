//! `tether-bench`: starts Tether (and ttyd, and a plain axum SSE broadcast), runs the
//! workloads of BENCHMARKS.md side by side and prints one table.
//!
//! `tether-bench --smoke` runs every workload tiny and fails on wrong output (a
//! correctness check, never a timing assertion).

mod browser;
mod ceiling;
mod changes;
mod check;
mod client;
mod cpu;
mod fanout;
mod limit;
mod procs;
mod workloads;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};

use crate::check::spread;
use crate::procs::Tether;
use crate::workloads as w;

#[derive(Parser, Debug)]
#[command(
    name = "tether-bench",
    about = "Benchmarks Tether against a raw PTY, ttyd and a plain axum SSE broadcast"
)]
struct Cli {
    /// The release server binary.
    #[arg(long)]
    tether: Option<PathBuf>,
    /// ttyd's binary (see bench/get-ttyd.sh); its figures are skipped without it.
    #[arg(long)]
    ttyd: Option<PathBuf>,
    /// Runs per figure; each figure is reported as min / median / max.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Only these workloads (repeatable): throughput, latency, fanout, replicas (on
    /// NATS only), idle, replay, changes, browser, bundle.
    #[arg(long)]
    only: Vec<String>,
    /// Everything tiny, no ttyd, no browser; exits non-zero on wrong output.
    #[arg(long)]
    smoke: bool,
    /// Every Tether keeps its data in NATS JetStream at this URL instead of SQLite
    /// (a `nats-server -js` you started).
    #[arg(long)]
    nats: Option<String>,
    #[command(subcommand)]
    helper: Option<Helper>,
}

#[derive(Subcommand, Debug)]
enum Helper {
    /// (internal) print `T<unix ns>` lines: COUNT of them, every MS milliseconds.
    #[command(hide = true)]
    Tick { count: usize, ms: u64 },
    /// (internal) the plain axum SSE broadcast used as the fan-out ceiling.
    #[command(hide = true)]
    CeilingServer,
}

/// Every figure's per-run values, in the order they were first recorded.
#[derive(Default)]
struct Report {
    rows: Vec<Row>,
    problems: Vec<String>,
    /// Problems of third-party systems (ttyd): reported, not a failure.
    notes: Vec<String>,
}

struct Row {
    figure: String,
    unit: &'static str,
    values: Vec<f64>,
    /// e.g. (">=", 0.9); judged on the median.
    target: Option<(&'static str, f64)>,
}

impl Report {
    fn add(
        &mut self,
        figure: &str,
        unit: &'static str,
        target: Option<(&'static str, f64)>,
        v: f64,
    ) {
        match self.rows.iter_mut().find(|r| r.figure == figure) {
            Some(row) => row.values.push(v),
            None => self.rows.push(Row {
                figure: figure.to_owned(),
                unit,
                values: vec![v],
                target,
            }),
        }
    }

    fn problem(&mut self, what: String) {
        eprintln!("PROBLEM: {what}");
        self.problems.push(what);
    }

    fn note(&mut self, what: String) {
        eprintln!("note: {what}");
        self.notes.push(what);
    }

    fn table(&self) -> String {
        let mut out = String::from(
            "| figure | unit | min | median | max | target | met (median) |\n|---|---|---:|---:|---:|---|---|\n",
        );
        for r in &self.rows {
            let (lo, med, hi) = spread(&r.values);
            let (target, met) = match r.target {
                Some((op, t)) => {
                    let ok = if op == ">=" { med >= t } else { med <= t };
                    (
                        format!("{op} {}", fmt(t)),
                        if ok { "yes" } else { "**no**" },
                    )
                }
                None => (String::new(), ""),
            };
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {target} | {met} |\n",
                r.figure,
                r.unit,
                fmt(lo),
                fmt(med),
                fmt(hi)
            ));
        }
        out
    }
}

fn fmt(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else if v.abs() >= 1000.0 {
        let s = format!("{v:.0}");
        // Thousands separators.
        let (sign, digits) = s.split_at(usize::from(s.starts_with('-')));
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        format!("{sign}{grouped}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

struct Ctx {
    tether: PathBuf,
    ttyd: Option<PathBuf>,
    runs: usize,
    smoke: bool,
}

fn raise_nofile() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

async fn throughput(ctx: &Ctx, rep: &mut Report) -> Result<(), String> {
    for run in 0..ctx.runs {
        for wl in w::throughput_workloads(ctx.smoke) {
            eprintln!("throughput {} run {}", wl.name, run + 1);
            let (raw, readers) = w::raw_throughput(&wl).await?;
            if let Err(e) = &raw.complete {
                rep.problem(format!("raw PTY {}: {e}", wl.name));
            }
            for (reader, rate) in &readers {
                match &rate.complete {
                    Ok(()) => rep.add(
                        &format!("throughput {}: raw PTY, {reader}", wl.name),
                        "MB/s",
                        None,
                        rate.mb_s,
                    ),
                    Err(e) => rep.note(format!("raw PTY {} ({reader}): {e}", wl.name)),
                }
            }
            let t = Tether::start(&ctx.tether).await?;
            let tr = w::tether_throughput(&t, &wl).await;
            t.stop().await;
            let tr = tr?;
            if let Err(e) = &tr.complete {
                rep.problem(format!("Tether {}: {e}", wl.name));
            }
            rep.add(
                &format!("throughput {}: raw PTY limit (fastest reader)", wl.name),
                "MB/s",
                None,
                raw.mb_s,
            );
            rep.add(
                &format!("throughput {}: Tether", wl.name),
                "MB/s",
                None,
                tr.mb_s,
            );
            if let Some(cpu) = tr.cpu_ms_per_mb {
                rep.add(
                    &format!("throughput {}: Tether server CPU", wl.name),
                    "ms/MB",
                    None,
                    cpu,
                );
            }
            rep.add(
                &format!("throughput {}: Tether / limit", wl.name),
                "ratio",
                Some((">=", 0.9)),
                tr.mb_s / raw.mb_s,
            );
            add_busy(rep, &wl, "raw PTY limit", &raw);
            add_busy(rep, &wl, "Tether", &tr);
            if let Some(ttyd) = &ctx.ttyd {
                let ty = w::ttyd_throughput(ttyd, &wl).await?;
                if let Err(e) = &ty.complete {
                    rep.note(format!("ttyd {} run {}: {e}", wl.name, run + 1));
                }
                rep.add(
                    &format!("throughput {}: ttyd", wl.name),
                    "MB/s",
                    None,
                    ty.mb_s,
                );
                rep.add(
                    &format!("throughput {}: ttyd / limit", wl.name),
                    "ratio",
                    None,
                    ty.mb_s / raw.mb_s,
                );
                add_busy(rep, &wl, "ttyd", &ty);
                // Each run's own pair, so "ahead of ttyd in every run" is this row's
                // minimum, not a comparison of two columns' extremes.
                rep.add(
                    &format!("throughput {}: Tether / ttyd, same run", wl.name),
                    "ratio",
                    None,
                    tr.mb_s / ty.mb_s,
                );
            }
        }
    }
    Ok(())
}

/// How many CPUs the whole machine kept busy while `who` ran the workload.
fn add_busy(rep: &mut Report, wl: &w::Throughput, who: &str, rate: &w::Rate) {
    if let Some(cores) = rate.busy_cores {
        rep.add(
            &format!("throughput {}: machine CPUs busy, {who}", wl.name),
            "CPUs",
            None,
            cores,
        );
    }
}

fn add_latency(rep: &mut Report, who: &str, flood: bool, l: w::Latency, targets: bool) {
    let cond = if flood { "under flood" } else { "idle" };
    let (t50, t99, tmax) = match (targets, flood) {
        (false, _) => (None, None, None),
        (true, false) => (Some(("<=", 1.0)), Some(("<=", 5.0)), None),
        (true, true) => (None, None, Some(("<=", 60.0))),
    };
    rep.add(&format!("latency {cond}: {who} p50"), "ms", t50, l.p50);
    rep.add(&format!("latency {cond}: {who} p99"), "ms", t99, l.p99);
    rep.add(&format!("latency {cond}: {who} max"), "ms", tmax, l.max);
}

async fn latency(ctx: &Ctx, rep: &mut Report) -> Result<(), String> {
    let count = if ctx.smoke { 30 } else { 1000 };
    for run in 0..ctx.runs {
        for flood in [false, true] {
            eprintln!("latency flood={flood} run {}", run + 1);
            let t = Tether::start(&ctx.tether).await?;
            let l = w::tether_latency(&t, count, flood).await;
            t.stop().await;
            add_latency(rep, "Tether", flood, l?, true);
            if let Some(ttyd) = &ctx.ttyd {
                match w::ttyd_latency(ttyd, count, flood).await {
                    Ok(l) => add_latency(rep, "ttyd", flood, l, false),
                    Err(e) => rep.note(format!("ttyd latency run {}: {e}", run + 1)),
                }
            }
        }
    }
    Ok(())
}

async fn idle(ctx: &Ctx, rep: &mut Report) -> Result<(), String> {
    let n = if ctx.smoke { 200 } else { 10_000 };
    for run in 0..ctx.runs {
        eprintln!("idle streams {n} run {}", run + 1);
        let t = Tether::start(&ctx.tether).await?;
        let per = w::idle_streams(&t, n).await;
        t.stop().await;
        rep.add(
            &format!("idle streams ({n}): server RSS per stream"),
            "KiB",
            Some(("<=", 24.0)),
            per? / 1024.0,
        );
    }
    Ok(())
}

async fn replay(ctx: &Ctx, rep: &mut Report) -> Result<(), String> {
    let n: u64 = if ctx.smoke { 20_000 } else { 1_000_000 };
    let t = Tether::start(&ctx.tether).await?;
    let id = t.create_conversation().await?;
    let Tether { server, cwd, data } = t;
    server.stop().await;
    eprintln!("replay: writing {n} messages");
    let started = Instant::now();
    let json_bytes = w::fill_log(data.path(), &id, n)?;
    eprintln!(
        "  {:.1} MB of JSON in {:.1} s",
        json_bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    let server = procs::start_tether(&ctx.tether, data.path()).await?;
    let t = Tether { server, cwd, data };
    for run in 0..ctx.runs {
        eprintln!("replay run {}", run + 1);
        match w::replay(t.addr(), &id, n).await {
            Ok(rate) => rep.add(
                &format!("replay {n} messages from 0"),
                "msg/s",
                Some((">=", 200_000.0)),
                rate,
            ),
            Err(e) => rep.problem(format!("replay: {e}")),
        }
    }
    t.stop().await;
    Ok(())
}

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

async fn bundle(rep: &mut Report) -> Result<(), String> {
    let wasm = workspace_root().join("target/site/pkg/tether.wasm");
    let raw = std::fs::metadata(&wasm)
        .map_err(|e| format!("{}: {e} (run cargo leptos build --release)", wasm.display()))?
        .len();
    let out = tokio::process::Command::new("sh")
        .arg("-c")
        .arg("gzip -9 -c \"$1\" | wc -c")
        .arg("sh")
        .arg(&wasm)
        .output()
        .await
        .map_err(|e| e.to_string())?;
    let gz: f64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| "gzip failed")?;
    rep.add("WASM bundle, raw", "KiB", None, raw as f64 / 1024.0);
    rep.add(
        "WASM bundle, gzip -9",
        "KiB",
        Some(("<=", 400.0)),
        gz / 1024.0,
    );
    Ok(())
}

async fn run(cli: Cli) -> Result<Report, String> {
    if let Some(url) = cli.nats.clone() {
        procs::use_nats(url);
    }
    let tether = cli.tether.unwrap_or_else(procs::default_tether);
    if !tether.exists() {
        return Err(format!(
            "{} does not exist: build it with `cargo leptos build --release`",
            tether.display()
        ));
    }
    let ttyd = if cli.smoke {
        None
    } else {
        cli.ttyd.filter(|p| {
            let ok = p.exists();
            if !ok {
                eprintln!("ttyd not found at {}: skipping its figures", p.display());
            }
            ok
        })
    };
    let ctx = Ctx {
        tether,
        ttyd,
        runs: if cli.smoke { 1 } else { cli.runs.max(1) },
        smoke: cli.smoke,
    };
    let wants = |name: &str| cli.only.is_empty() || cli.only.iter().any(|o| o == name);
    let mut rep = Report::default();
    if wants("throughput")
        && let Err(e) = throughput(&ctx, &mut rep).await
    {
        rep.problem(format!("throughput: {e}"));
    }
    if wants("latency")
        && let Err(e) = latency(&ctx, &mut rep).await
    {
        rep.problem(format!("latency: {e}"));
    }
    if wants("fanout")
        && let Err(e) = fanout::fanout(&ctx, &mut rep).await
    {
        rep.problem(format!("fanout: {e}"));
    }
    if wants("replicas") && procs::on_nats() {
        if let Err(e) = fanout::over_replicas(&ctx, &mut rep).await {
            rep.problem(format!("replicas: {e}"));
        }
    } else if !cli.only.is_empty() && wants("replicas") {
        eprintln!("replicas: skipped (it needs --nats)");
    }
    if wants("idle")
        && let Err(e) = idle(&ctx, &mut rep).await
    {
        rep.problem(format!("idle: {e}"));
    }
    // The replay workload writes its million messages straight into SQLite.
    if wants("replay") && cli.nats.is_some() {
        eprintln!("replay: skipped on NATS (it seeds the SQLite file directly)");
    } else if wants("replay")
        && let Err(e) = replay(&ctx, &mut rep).await
    {
        rep.problem(format!("replay: {e}"));
    }
    if wants("changes")
        && let Err(e) = changes::changes(&ctx, &mut rep).await
    {
        rep.problem(format!("changes: {e}"));
    }
    if !ctx.smoke
        && wants("browser")
        && let Err(e) = browser::browser(&ctx, &mut rep).await
    {
        rep.problem(format!("browser: {e}"));
    }
    if !ctx.smoke
        && wants("bundle")
        && let Err(e) = bundle(&mut rep).await
    {
        rep.problem(format!("bundle: {e}"));
    }
    Ok(rep)
}

/// One line describing the machine and its load, printed with every run.
fn machine() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|m| m.trim_start_matches([' ', '\t', ':']))
        })
        .unwrap_or("?")
        .to_owned();
    let cpus = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    format!(
        "machine: {cpus} CPUs, {model}, kernel {}, load average {}",
        read("/proc/sys/kernel/osrelease").trim(),
        read("/proc/loadavg")
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.helper {
        Some(Helper::Tick { count, ms }) => {
            w::tick(count, ms);
            return ExitCode::SUCCESS;
        }
        Some(Helper::CeilingServer) => {
            let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
            return match rt.block_on(ceiling::serve()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("ceiling server: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        None => {}
    }
    raise_nofile();
    let smoke = cli.smoke;
    eprintln!("{}", machine());
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let started = Instant::now();
    match rt.block_on(run(cli)) {
        Ok(rep) => {
            println!("{}\n", machine());
            println!("{}", rep.table());
            for n in &rep.notes {
                println!("- note: {n}");
            }
            for p in &rep.problems {
                println!("- PROBLEM: {p}");
            }
            eprintln!("took {:.0} s", started.elapsed().as_secs_f64());
            if rep.problems.is_empty() {
                if smoke {
                    println!("smoke: all outputs complete and identical");
                }
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("tether-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
