'use strict';
// Comparison peer for wspush-bench (--target ws): the broadcast server people write by hand on
// the `ws` library. One process, one event loop.
//
//   GET  /ws?channel=X           WebSocket; subscribed to X as soon as the handshake is done
//   POST /publish?channel=X      the request body goes, as is, in one text frame, to every
//                                subscriber of X; answers 204 (no body)
//
// Channels are a Map channel -> Set of sockets; a channel is deleted with its last subscriber.
// The body is never parsed. Each subscriber gets ws.send(body): ws builds the frame header per
// socket and writes header + the shared body buffer (corked), with no copy of the payload.
//
// Options (flags, or the environment variable in brackets):
//   --port N          [PORT]          default 8090; 0 picks a free port
//   --host H          [HOST]          default 127.0.0.1 (loopback only)
//   --ready-file F    [READY_FILE]    written once listening: {"port","api_port","pid"}
//   --deflate         [DEFLATE=1]     offer permessage-deflate, with wspush's defaults
//                                     (config/wspush.json): level 1, window 2^10, memLevel 4,
//                                     messages below 256 bytes sent uncompressed
const http = require('http');
const fs = require('fs');
const { WebSocketServer } = require('ws');

function parseArgs(argv) {
    const opts = {
        port: Number(process.env.PORT ?? 8090),
        host: process.env.HOST || '127.0.0.1',
        readyFile: process.env.READY_FILE || '',
        deflate: process.env.DEFLATE === '1' || process.env.DEFLATE === 'true',
    };
    for (let i = 2; i < argv.length; ++i) {
        const arg = argv[i];
        const value = () => {
            if (i + 1 >= argv.length) throw new Error(`${arg} needs a value`);
            return argv[++i];
        };
        if (arg === '--port') opts.port = Number(value());
        else if (arg === '--host') opts.host = value();
        else if (arg === '--ready-file') opts.readyFile = value();
        else if (arg === '--deflate') opts.deflate = true;
        else if (arg === '--help' || arg === '-h') {
            console.log('usage: node server.js [--port N] [--host H] [--ready-file F] [--deflate]');
            process.exit(0);
        } else throw new Error(`unknown option ${arg}`);
    }
    if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) throw new Error('bad --port');
    return opts;
}

const opts = parseArgs(process.argv);

/** @type {Map<string, Set<import('ws').WebSocket>>} */
const channels = new Map();

const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false, // the channel sets are the only registry
    maxPayload: 64 * 1024, // subscribers send nothing but control frames
    perMessageDeflate: opts.deflate
        ? {
              threshold: 256,
              serverMaxWindowBits: 10,
              clientMaxWindowBits: 10,
              zlibDeflateOptions: { level: 1, memLevel: 4 },
          }
        : false,
});

// Parses "/path?channel=X" without the URL class (cheap; channel names need no decoding in the
// bench, but percent-encoding is still honoured).
function channelOf(url, path) {
    if (!url.startsWith(path)) return null;
    const rest = url.slice(path.length);
    if (rest[0] !== '?') return null;
    for (const pair of rest.slice(1).split('&')) {
        const eq = pair.indexOf('=');
        if (eq > 0 && pair.slice(0, eq) === 'channel') {
            const name = decodeURIComponent(pair.slice(eq + 1));
            return name.length > 0 ? name : null;
        }
    }
    return null;
}

function subscribe(ws, channel) {
    let set = channels.get(channel);
    if (set === undefined) {
        set = new Set();
        channels.set(channel, set);
    }
    set.add(ws);
    ws.on('close', () => {
        set.delete(ws);
        if (set.size === 0 && channels.get(channel) === set) channels.delete(channel);
    });
    ws.on('error', () => {}); // 'close' follows
    // Subscribers only listen: their data messages are ignored (pings are answered by ws).
}

function reply(res, status, body) {
    if (body === undefined) {
        res.writeHead(status);
        res.end();
    } else {
        res.writeHead(status, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) });
        res.end(body);
    }
}

const server = http.createServer((req, res) => {
    if (req.method !== 'POST') return reply(res, 405, 'POST /publish?channel=X\n');
    const channel = channelOf(req.url, '/publish');
    if (channel === null) return reply(res, 404, 'POST /publish?channel=X\n');
    const chunks = [];
    let length = 0;
    req.on('data', (chunk) => {
        chunks.push(chunk);
        length += chunk.length;
    });
    req.on('end', () => {
        const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, length);
        const set = channels.get(channel);
        if (set !== undefined) {
            for (const ws of set) if (ws.readyState === 1) ws.send(body, { binary: false });
        }
        reply(res, 204);
    });
});
server.keepAliveTimeout = 300_000; // publishers keep their connection for the whole run
server.headersTimeout = 310_000;
server.requestTimeout = 0;
server.maxRequestsPerSocket = 0; // unlimited

server.on('upgrade', (req, socket, head) => {
    const channel = channelOf(req.url, '/ws');
    if (channel === null) {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => subscribe(ws, channel));
});

server.listen({ port: opts.port, host: opts.host, backlog: 4096 }, () => {
    const port = server.address().port;
    const info = JSON.stringify({ api_port: port, pid: process.pid, port });
    if (opts.readyFile) {
        fs.writeFileSync(opts.readyFile + '.tmp', info + '\n');
        fs.renameSync(opts.readyFile + '.tmp', opts.readyFile);
    }
    console.log(`ws peer listening on ${opts.host}:${port} (pid ${process.pid}, deflate ${opts.deflate ? 'on' : 'off'})`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
    process.on(signal, () => process.exit(0));
}
