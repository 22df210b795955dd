// One of bench/rolling-restart.sh's client processes (several share the work, so that no single
// Node thread is what paces the reconnects it measures).
//
//   node rolling-restart-clients.cjs A_PORT B_PORT COUNT READY_FILE
//
// Opens COUNT WebSockets to node A (`connect` each, 200 handshakes at a time), writes READY_FILE
// once all are connected, and from then on records when node A tells each to go (its
// `disconnect` message) and reconnects it to node B when the connection closes, at once, as a
// client without the SDK's random delay would: the worst case for node B. When all are back (or
// after 120 s) prints {"told":[ms…],"arrived":[ms…],"back":[ms…]} (wall-clock milliseconds,
// comparable between processes: told by node A, reconnect started towards node B, and connected
// there) and exits.
"use strict";
const fs = require("fs");
const WebSocket = require("ws");

const [aPort, bPort, count] = process.argv.slice(2, 5).map(Number);
const readyFile = process.argv[5];
const now = () => performance.timeOrigin + performance.now();
const told = [], arrived = [], back = [];
let connected = 0, opening = 0, started = 0;

function open(port, { onConnected, onTold = () => {}, onClosed = () => {} }) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { perMessageDeflate: false });
  ws.on("open", () => ws.send(JSON.stringify({ id: 1, type: "connect" })));
  ws.on("message", (data) => {
    const text = String(data);
    if (text.includes('"type":"connected"')) onConnected();
    else if (text.includes('"type":"disconnect"')) onTold();
  });
  ws.on("close", onClosed);
  ws.on("error", () => {});
}

function finish() {
  process.stdout.write(JSON.stringify({ told, arrived, back }) + "\n", () => process.exit(0));
}

function reconnect(code) {
  if (code !== 1001) return;
  arrived.push(now());
  open(bPort, { onConnected: () => { back.push(now()); if (back.length === count) finish(); } });
}

function openMore() {
  while (opening < 200 && started < count) {
    started++;
    opening++;
    open(aPort, {
      onConnected: () => {
        opening--;
        if (++connected === count) fs.writeFileSync(readyFile, "ready\n");
        else openMore();
      },
      onTold: () => told.push(now()),
      onClosed: reconnect,
    });
  }
}

openMore();
setTimeout(() => {
  console.error(`rolling-restart-clients: gave up after 120 s: ${connected} connected, ${told.length} told, ${back.length} back`);
  finish();
}, 120000);
