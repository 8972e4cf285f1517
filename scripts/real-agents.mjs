// The scenario scripts/real-agents.sh runs for each agent, over Tether's HTTP API
// (docs/protocol.md): `node real-agents.mjs TETHER_URL WORK_ROOT AGENT...`.
// Prints a summary table; exits 1 if any agent failed a check. Node 20, no packages.
import { mkdirSync, existsSync } from "node:fs";
import { join } from "node:path";

const [base, workRoot, ...agents] = process.argv.slice(2);
if (!base || !workRoot || agents.length === 0) {
  console.error("usage: node real-agents.mjs TETHER_URL WORK_ROOT AGENT...");
  process.exit(2);
}
const TURN_TIMEOUT_MS = Number(process.env.REAL_AGENTS_TURN_TIMEOUT || 120) * 1000;
const POLL_MS = 100;
const COMMAND = "for i in 1 2 3; do echo tick $i; sleep 1; done";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.error(...a);

async function api(method, path, body) {
  const res = await fetch(`${base}/api/${path}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json };
}

class Failure extends Error {}

/// One conversation with one agent, and what was seen in it.
class Run {
  constructor(agent) {
    this.agent = agent;
    this.failures = [];
    this.facts = {};
  }

  check(ok, what) {
    if (!ok) {
      this.failures.push(what);
      log(`  [${this.agent}] FAILED: ${what}`);
    }
    return ok;
  }

  async messages(from = 0) {
    const { status, json } = await api("GET", `conversations/${this.id}/messages?start=${from}`);
    if (status !== 200) throw new Failure(`messages: ${status} ${JSON.stringify(json)}`);
    return json;
  }

  async state() {
    const { status, json } = await api("GET", `conversations/${this.id}/state`);
    if (status !== 200) throw new Failure(`state: ${status} ${JSON.stringify(json)}`);
    return json;
  }

  /// Sends `text` and polls until its turn's `end_of_turn`. `each(ctx)` runs on
  /// every poll with the turn's messages so far and the state.
  async turn(text, each = async () => {}) {
    const sent = await api("POST", `conversations/${this.id}/chat`, { message: text });
    if (sent.status !== 202) throw new Failure(`chat: ${sent.status} ${JSON.stringify(sent.json)}`);
    const from = sent.json.idx;
    const start = Date.now();
    const ctx = { from, start, permissions: [], outstanding: new Set(), sawStopping: false };
    for (;;) {
      const state = await this.state();
      for (const id of state.outstanding_tool_calls || []) ctx.outstanding.add(id);
      for (const p of state.pending_permissions || []) {
        if (ctx.permissions.some((q) => q.request_id === p.request_id)) continue;
        const allow = p.options.find((o) => o.kind === "allow_once");
        const entry = { request_id: p.request_id, title: p.title, kinds: p.options.map((o) => o.kind) };
        ctx.permissions.push(entry);
        if (!allow) {
          entry.answer = "no allow_once option";
          continue;
        }
        const answered = await api("POST", `conversations/${this.id}/permission`, {
          request_id: p.request_id,
          option_id: allow.option_id,
        });
        entry.answer = `${allow.option_id} -> ${answered.status}`;
        log(`  [${this.agent}] permission "${p.title}" [${entry.kinds}] answered ${entry.answer}`);
      }
      const msgs = await this.messages(from);
      ctx.msgs = msgs;
      ctx.state = state;
      await each(ctx);
      const end = msgs.find((m) => m.end_of_turn);
      if (end) {
        ctx.end = end;
        ctx.seconds = (Date.now() - start) / 1000;
        return ctx;
      }
      if (Date.now() - start > TURN_TIMEOUT_MS) {
        this.dump(msgs, state);
        throw new Failure(`no end_of_turn for ${JSON.stringify(text)} within ${TURN_TIMEOUT_MS / 1000} s`);
      }
      await sleep(POLL_MS);
    }
  }

  dump(msgs, state) {
    log(`  [${this.agent}] state: ${JSON.stringify(state)}`);
    for (const m of msgs.slice(-40)) log(`  [${this.agent}] ${JSON.stringify(m)}`);
  }

  async run() {
    const cwd = join(workRoot, this.agent);
    mkdirSync(cwd, { recursive: true });
    const created = await api("POST", "conversations", { cwd, agent: this.agent });
    if (created.status !== 201) throw new Failure(`create: ${created.status} ${JSON.stringify(created.json)}`);
    this.id = created.json.id;
    log(`  [${this.agent}] conversation ${this.id} in ${cwd}`);

    // 1. A plain reply, streamed.
    const hi = await this.turn("Say hi");
    const pieces = hi.msgs.filter((m) => m.type === "agent_text");
    const reply = pieces.map((m) => m.content).join("");
    this.facts.hi = { pieces: pieces.length, seconds: hi.seconds, reply, end: hi.end.content };
    log(`  [${this.agent}] "Say hi": ${pieces.length} piece(s) ${JSON.stringify(reply)} in ${hi.seconds.toFixed(1)} s, end ${JSON.stringify(hi.end.content)}`);
    this.check(pieces.length > 0 && reply.trim() !== "", "the reply to `Say hi` streamed as agent_text");
    this.check(hi.end.content === "Done.", `\`Say hi\` ended with Done. (got ${JSON.stringify(hi.end.content)})`);

    // 2. A command printing a line a second; permissions answered allow_once.
    let probed = null;
    const cmd = await this.turn(`Please RUN_TOOL[${COMMAND}]`, async (ctx) => {
      // Cancelling just the call is possible only for commands in Tether's own
      // terminals (outstanding_tool_calls). Probe the API for the other kind.
      const call = ctx.msgs.find((m) => m.type === "agent" && (m.tool_calls || []).length);
      const out = ctx.msgs.find((m) => m.type === "tool_output");
      if (probed === null && call && out && ctx.outstanding.size === 0) {
        const id = call.tool_calls[0].tool_call_id;
        const r = await api("POST", `conversations/${this.id}/cancel`, { tool_call_id: id });
        probed = `${r.status} ${r.json.error || JSON.stringify(r.json)}`;
      }
    });
    const calls = cmd.msgs.filter((m) => m.type === "agent" && (m.tool_calls || []).length);
    const callIds = calls.flatMap((m) => m.tool_calls.map((c) => c.tool_call_id));
    const result = cmd.msgs.find((m) => m.type === "tool" && (m.tool_result || "").includes("tick 3"));
    const outputs = cmd.msgs.filter((m) => m.type === "tool_output");
    const outputText = outputs.map((m) => m.content).join("");
    const terminalIds = cmd.msgs
      .filter((m) => m.type === "tool_update")
      .flatMap((m) => (m.tool_update.content || []).filter((c) => c.type === "terminal").map((c) => c.terminal_id));
    const tetherTerminal = terminalIds.some((t) => t.startsWith("term_")) || cmd.outstanding.size > 0;
    const resultMsg = cmd.msgs.find((m) => m.type === "tool" && callIds.includes(m.tool_call_id));
    const before = resultMsg ? outputs.filter((m) => m.idx < resultMsg.idx) : outputs;
    const spread =
      before.length && resultMsg ? (Date.parse(resultMsg.timestamp) - Date.parse(before[0].timestamp)) / 1000 : 0;
    this.facts.cmd = {
      seconds: cmd.seconds,
      calls: calls.map((m) => m.tool_calls.map((c) => `${c.name} (${c.kind})`).join(", ")),
      permissions: cmd.permissions,
      terminalIds,
      tetherTerminal,
      outstanding: [...cmd.outstanding],
      outputs: before.length,
      spread,
      result: resultMsg && { status: resultMsg.status, content: resultMsg.content, exit_code: resultMsg.exit_code },
      probed,
      end: cmd.end.content,
      reply: cmd.msgs.filter((m) => m.type === "agent_text").map((m) => m.content).join(""),
    };
    log(`  [${this.agent}] command: ${JSON.stringify(this.facts.cmd)}`);
    this.check(calls.length > 0, "the command showed as a tool call");
    this.check(
      outputText.includes("tick 3") || Boolean(result),
      "the command's output (tick 3) reached the log (tool_output or the tool result)",
    );
    this.check(resultMsg?.status === "completed", `the call completed (got ${resultMsg?.status})`);
    this.check(cmd.end.content === "Done.", `the command turn ended with Done. (got ${JSON.stringify(cmd.end.content)})`);
    this.check(
      cmd.permissions.every((p) => p.answer && p.answer.endsWith("200")),
      "every permission request was answered with 200",
    );

    // 2b. A command that writes, asking for the sandbox to be lifted (codex asks
    // only then; opencode's config here asks for every command).
    const write = await this.turn("Please ESCALATE RUN_TOOL[touch escalated.txt]");
    const wrote = existsSync(join(cwd, "escalated.txt"));
    this.facts.write = { permissions: write.permissions, wrote, end: write.end.content };
    log(`  [${this.agent}] escalated write: ${JSON.stringify(this.facts.write)}`);
    this.check(write.permissions.length > 0, "the escalated write asked for permission");
    this.check(wrote, "the escalated write created the file after allow_once");

    // 3. A slow reply, stopped from Tether after its first piece.
    let cancelAt = null;
    let cancelStatus = null;
    const slow = await this.turn("Please SLOW", async (ctx) => {
      if (cancelAt === null && ctx.msgs.some((m) => m.type === "agent_text")) {
        cancelAt = Date.now();
        cancelStatus = (await api("POST", `conversations/${this.id}/cancel`, {})).status;
      }
    });
    const stopSeconds = cancelAt === null ? null : (Date.parse(slow.end.timestamp) - cancelAt) / 1000;
    this.facts.stop = {
      cancelStatus,
      seconds: stopSeconds,
      end: slow.end.content,
      pieces: slow.msgs.filter((m) => m.type === "agent_text").length,
    };
    log(`  [${this.agent}] stop: ${JSON.stringify(this.facts.stop)}`);
    this.check(cancelAt !== null, "the slow reply streamed before the stop");
    this.check(cancelStatus === 202, `cancel answered 202 (got ${cancelStatus})`);
    this.check(slow.end.content.startsWith("Turn stopped"), `the stopped turn closed with "Turn stopped…" (got ${JSON.stringify(slow.end.content)})`);
    this.check(stopSeconds !== null && stopSeconds < 5, `the turn closed within 5 s of the stop (took ${stopSeconds} s)`);

    // 4. The agent is still fine after the stop.
    const after = await this.turn("Say hi");
    this.facts.after = { end: after.end.content, seconds: after.seconds };
    this.check(after.end.content === "Done.", `a message after the stop works (got ${JSON.stringify(after.end.content)})`);
    const state = await this.state();
    this.check(state.status === "idle", `the conversation is idle at the end (got ${state.status})`);
  }
}

const runs = [];
for (const agent of agents) {
  const run = new Run(agent);
  runs.push(run);
  log(`== ${agent}`);
  try {
    await run.run();
  } catch (err) {
    run.failures.push(err instanceof Failure ? err.message : String(err?.stack || err));
    log(`  [${agent}] ABORTED: ${run.failures.at(-1)}`);
    if (run.id) {
      // Leave nothing running for the next agent.
      await api("POST", `conversations/${run.id}/cancel`, {}).catch(() => {});
    }
  }
}

// The summary.
const rows = runs.map((r) => {
  const f = r.facts;
  const perms = f.cmd?.permissions || [];
  return {
    agent: r.agent,
    "streamed text": f.hi ? (f.hi.pieces > 0 ? `yes, ${f.hi.pieces} piece${f.hi.pieces === 1 ? "" : "s"}` : "no") : "?",
    "first reply": f.hi ? `${f.hi.seconds.toFixed(1)} s` : "?",
    "permissions (command)": f.cmd ? (perms.length ? `${perms.length}: ${perms.map((p) => p.kinds.join("/")).join("; ")}` : "none") : "?",
    "permissions (escalated write)": f.write ? `${f.write.permissions.length}${f.write.wrote ? ", file written" : ", NOT written"}` : "?",
    "Tether terminal": f.cmd ? (f.cmd.tetherTerminal ? "yes" : `no${f.cmd.terminalIds.length ? ` (agent's own: ${f.cmd.terminalIds[0]})` : ""}`) : "?",
    "output live": f.cmd ? (f.cmd.outputs > 1 && f.cmd.spread >= 1 ? `yes, ${f.cmd.outputs} chunks over ${f.cmd.spread.toFixed(1)} s` : `no (${f.cmd.outputs} chunks before the result)`) : "?",
    "cancel one call": f.cmd ? (f.cmd.tetherTerminal ? "yes (Tether's command)" : f.cmd.probed ? `no: ${f.cmd.probed.split(":")[0]}` : "no (not probed)") : "?",
    "stop turn": f.stop ? `${f.stop.end.startsWith("Turn stopped") ? "yes" : "NO"}, ${f.stop.seconds?.toFixed(2)} s` : "?",
    result: r.failures.length ? `FAIL (${r.failures.length})` : "ok",
  };
});
const cols = Object.keys(rows[0]);
const width = Object.fromEntries(cols.map((c) => [c, Math.max(c.length, ...rows.map((r) => String(r[c]).length))]));
const line = (cells) => "| " + cols.map((c) => String(cells[c]).padEnd(width[c])).join(" | ") + " |";
console.log("");
console.log(line(Object.fromEntries(cols.map((c) => [c, c]))));
console.log("|" + cols.map((c) => "-".repeat(width[c] + 2)).join("|") + "|");
for (const row of rows) console.log(line(row));
for (const r of runs) for (const f of r.failures) console.log(`${r.agent}: FAILED: ${f}`);
process.exit(runs.some((r) => r.failures.length) ? 1 : 0);
