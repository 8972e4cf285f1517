// Holds a conversation's EventSource off the page's main thread.
//
// Chromium dispatches every event of a network burst in one task. On the page, that
// task also ran the handlers, so a flood froze painting for hundreds of ms. Here the
// burst only lands in a queue, and the page gets it in bounded batches, each its own
// task, so it can paint between them.
//
// Deliberately dumb: reconnecting, backoff, the watchdog and the cursor stay on the
// page (app/src/client/stream.rs). This opens, closes and forwards.
//
// Page -> worker: {cmd: "open", gen, url, events: [name, ...]} | {cmd: "close"}
// Worker -> page: {kind: "open" | "error", gen} | {kind: "batch", gen, events: [[name, data, lastEventId], ...]}
// `gen` is the page's number for the open it answers, so messages that were already
// on their way from a source the page has since closed can be told apart.
"use strict";

// A batch goes out when it is this big or this old, whichever comes first: big enough
// that postMessage overhead stays small, small enough that applying one is one frame's
// work.
const MAX_EVENTS = 256;
const MAX_CHARS = 256 * 1024;
const MAX_WAIT_MS = 16;

let source = null;
let gen = 0;
let batch = [];
let chars = 0;
let timer = 0;

function flush() {
  if (timer) {
    clearTimeout(timer);
    timer = 0;
  }
  if (batch.length === 0) return;
  postMessage({ kind: "batch", gen, events: batch });
  batch = [];
  chars = 0;
}

function queue(name, event) {
  const data = typeof event.data === "string" ? event.data : "";
  batch.push([name, data, event.lastEventId]);
  chars += data.length;
  if (batch.length >= MAX_EVENTS || chars >= MAX_CHARS) flush();
  else if (!timer) timer = setTimeout(flush, MAX_WAIT_MS);
}

function close() {
  if (timer) {
    clearTimeout(timer);
    timer = 0;
  }
  // Whatever is still queued belongs to a source the page gave up on; it resumes
  // from its own cursor.
  batch = [];
  chars = 0;
  if (source) {
    source.close();
    source = null;
  }
}

function open(msg) {
  close();
  gen = msg.gen;
  const mine = msg.gen;
  let es;
  try {
    es = new EventSource(msg.url);
  } catch (_) {
    postMessage({ kind: "error", gen: mine });
    return;
  }
  source = es;
  for (const name of msg.events) {
    es.addEventListener(name, (event) => {
      if (source === es) queue(name, event);
    });
  }
  es.onopen = () => {
    if (source !== es) return;
    flush();
    postMessage({ kind: "open", gen: mine });
  };
  es.onerror = () => {
    if (source !== es) return;
    // Events that arrived before the error go first, so the page's order holds.
    flush();
    // No automatic retry: the page decides when and from where to reconnect.
    es.close();
    source = null;
    postMessage({ kind: "error", gen: mine });
  };
}

self.onmessage = (e) => {
  const msg = e.data;
  if (msg && msg.cmd === "open") open(msg);
  else if (msg && msg.cmd === "close") close();
};
