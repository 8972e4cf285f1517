//! Browser figures: `bench/browser.mjs` drives Tether's page in Chromium (render a
//! long output live, open it again, frame times during a flood) and, with `--ttyd`,
//! `bench/browser-ttyd.mjs` measures ttyd's page (xterm.js) under the same flood in
//! the same run.

use std::path::Path;

use crate::procs::{self, Tether};
use crate::{Ctx, Report, workspace_root};

/// Bytes of random input for the flood: `base64` turns them into 41 MB of output.
const FLOOD_BYTES: u64 = 30_000_000;

/// Runs `node script args…` and parses the one line of JSON it prints.
async fn node(script: &str, args: &[String]) -> Result<serde_json::Value, String> {
    let out = tokio::process::Command::new("node")
        .arg(workspace_root().join(script))
        .args(args)
        .output()
        .await
        .map_err(|e| format!("cannot run node: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{script} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("{script} output: {e}"))
}

fn add_frames(rep: &mut Report, who: &str, v: &serde_json::Value, targets: bool) {
    let get = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    let figure = |what: &str| format!("browser: {who} frames during a 41 MB flood, {what}");
    rep.add(
        &format!("browser: {who} shows the whole 41 MB flood after"),
        "ms",
        None,
        get("flood_ms"),
    );
    rep.add(&figure("p50"), "ms", None, get("frame_p50_ms"));
    rep.add(&figure("p99"), "ms", None, get("frame_p99_ms"));
    rep.add(
        &figure("max"),
        "ms",
        targets.then_some(("<=", 100.0)),
        get("frame_max_ms"),
    );
    rep.add(
        &figure("count over 50 ms"),
        "count",
        None,
        get("frames_over_50ms"),
    );
    rep.add(
        &figure("count over 100 ms"),
        "count",
        None,
        get("frames_over_100ms"),
    );
    for (when, key) in [
        ("before the 41 MB flood", "page_mb_before"),
        ("after the 41 MB flood", "page_mb_after"),
        ("after a 164 MB flood as well", "page_mb_after_4x"),
    ] {
        if v.get(key).is_some() {
            rep.add(
                &format!("browser: {who} page memory {when} (renderer RSS)"),
                "MB",
                None,
                get(key),
            );
        }
    }
}

pub async fn browser(ctx: &Ctx, rep: &mut Report) -> Result<(), String> {
    for run in 0..ctx.runs {
        eprintln!("browser run {}", run + 1);
        let t = Tether::start(&ctx.tether).await?;
        let v = node(
            "bench/browser.mjs",
            &[format!("http://{}", t.addr()), FLOOD_BYTES.to_string()],
        )
        .await;
        t.stop().await;
        let v = match v {
            Ok(v) => v,
            Err(e) => {
                rep.problem(e);
                continue;
            }
        };
        let get = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        rep.add(
            "browser: render 100,000 lines live (Enter → last line shown)",
            "ms",
            None,
            get("render_live_ms"),
        );
        rep.add(
            "browser: open a 100,000-line conversation (→ last line shown)",
            "ms",
            None,
            get("render_load_ms"),
        );
        add_frames(rep, "Tether", &v, true);
        if let Some(ttyd) = &ctx.ttyd {
            match ttyd_frames(ttyd).await {
                Ok(v) => {
                    if v["shown"] != serde_json::Value::Bool(true) {
                        rep.note(format!(
                            "ttyd browser run {}: the flood was not all on screen after {:.0} s; its frames are those of that time",
                            run + 1,
                            v["flood_ms"].as_f64().unwrap_or(f64::NAN) / 1000.0
                        ));
                    }
                    add_frames(rep, "ttyd", &v, false);
                }
                Err(e) => rep.note(format!("ttyd browser run {}: {e}", run + 1)),
            }
        }
    }
    Ok(())
}

async fn ttyd_frames(ttyd: &Path) -> Result<serde_json::Value, String> {
    // ttyd drops the last few KiB of output when the command exits right away (see
    // the throughput notes), so the command stays a while after the marker; closing
    // the page ends it.
    let command =
        format!("head -c {FLOOD_BYTES} /dev/urandom | base64; echo TETHER-BENCH-DONE; sleep 600");
    let server = procs::start_ttyd(ttyd, &command).await?;
    let v = node(
        "bench/browser-ttyd.mjs",
        &[format!("http://{}/", server.addr)],
    )
    .await;
    server.stop().await;
    v
}
