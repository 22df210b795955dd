// The wspush admin console: every figure and action comes from the daemon's HTTP API
// (docs/http-api.md), with the key typed into the page. API data only ever reaches the page as
// textContent, never as markup: a channel or user name cannot inject anything.
"use strict";

(() => {
    const POLL_INTERVAL_MS = 2000;
    const CHART_POINTS = 60;

    // The key lives in this variable only: not in storage, not in the URL, gone with the tab.
    let apiKey = "";
    let pollTimer = null;
    let polling = false;
    let previousCounters = null; // {at, in, out} of the previous poll, for the rates
    const rates = []; // [{in, out}] per poll, the last CHART_POINTS
    let selectedChannel = null;

    const $ = (id) => document.getElementById(id);

    class ApiError extends Error {
        constructor(status, code, message) {
            super(message);
            this.status = status;
            this.code = code;
        }
        describe() {
            return this.status ? `${this.status}${this.code ? " " + this.code : ""}: ${this.message}` : this.message;
        }
    }

    // Calls the API; resolves with the parsed body of a 2xx, rejects with an ApiError otherwise.
    // `body`: a string of JSON, sent as is.
    async function api(method, path, body) {
        const headers = {};
        if (apiKey) headers.Authorization = "Bearer " + apiKey;
        if (body !== undefined) headers["Content-Type"] = "application/json";
        let response;
        try {
            response = await fetch(path, { method, headers, body, cache: "no-store", credentials: "omit" });
        } catch (err) {
            throw new ApiError(0, 0, `cannot reach the daemon (${err.message})`);
        }
        const text = await response.text();
        let parsed = null;
        try {
            parsed = text ? JSON.parse(text) : null;
        } catch {
            parsed = null;
        }
        if (!response.ok) {
            const error = parsed && parsed.error;
            throw new ApiError(response.status, error ? error.code : 0, error ? error.message : text || response.statusText);
        }
        return parsed;
    }

    // --- building the page from data, as text only ---------------------------------------------

    function element(tag, text, className) {
        const node = document.createElement(tag);
        if (text !== undefined && text !== null) node.textContent = String(text);
        if (className) node.className = className;
        return node;
    }

    // A table of `rows` (arrays of cells: strings, numbers or DOM nodes).
    function table(headings, rows, rowClass) {
        const result = element("table");
        const head = result.createTHead().insertRow();
        for (const heading of headings) head.append(element("th", heading));
        const body = result.createTBody();
        rows.forEach((cells, index) => {
            const row = body.insertRow();
            const extra = rowClass ? rowClass(index) : "";
            if (extra) row.className = extra;
            for (const cell of cells) {
                const td = row.insertCell();
                if (cell instanceof Node) td.append(cell);
                else td.textContent = cell === undefined || cell === null ? "" : String(cell);
            }
        });
        return result;
    }

    function show(container, ...nodes) {
        container.replaceChildren(...nodes);
    }

    function showFailure(container, err) {
        const text = err instanceof ApiError ? err.describe() : String(err);
        if (container.tagName == "P") {
            container.textContent = text;
            container.className = "failure";
        } else {
            show(container, element("p", text, "failure"));
        }
    }

    function emptyNote(text) {
        return element("p", text, "muted");
    }

    function dataCell(value) {
        return element("code", JSON.stringify(value), "data");
    }

    function time(ms) {
        return typeof ms == "number" && ms > 0 ? new Date(ms).toISOString().replace("T", " ").replace("Z", " UTC") : "";
    }

    function duration(seconds) {
        const s = Math.floor(seconds);
        const d = Math.floor(s / 86400);
        const h = Math.floor((s % 86400) / 3600);
        const m = Math.floor((s % 3600) / 60);
        return (d ? `${d}d ` : "") + (d || h ? `${h}h ` : "") + `${m}m ${s % 60}s`;
    }

    function rate(value) {
        return value >= 100 ? value.toFixed(0) : value.toFixed(1);
    }

    // --- the key and the error banner ----------------------------------------------------------

    function setState(state, status) {
        document.body.dataset.state = state;
        $("status").textContent = status;
    }

    function showError(message) {
        $("error").textContent = message;
        $("error").hidden = !message;
    }

    function connect(event) {
        event.preventDefault();
        apiKey = $("key").value;
        $("key").value = ""; // nothing for the browser to remember or show
        previousCounters = null;
        rates.length = 0;
        showError("");
        setState("connecting", "Connecting…");
        stopPolling();
        poll();
        pollTimer = setInterval(poll, POLL_INTERVAL_MS);
    }

    function forget() {
        apiKey = "";
        stopPolling();
        showError("");
        setState("locked", "Key forgotten. Type an API key and connect.");
    }

    function stopPolling() {
        if (pollTimer !== null) clearInterval(pollTimer);
        pollTimer = null;
    }

    // A refused key stops the polling: retrying every 2 s would only fill the daemon's logs.
    function refused(err) {
        stopPolling();
        setState("refused", "The API refused the key.");
        showError(`The API refused the request: ${err.describe()}`);
    }

    function handleActionError(err, container) {
        if (err instanceof ApiError && (err.status == 401 || err.status == 403) && err.code != 40302) refused(err);
        showFailure(container, err);
    }

    // --- node and cluster figures --------------------------------------------------------------

    async function poll() {
        if (polling) return; // a slow answer: skip this turn rather than pile requests up
        polling = true;
        try {
            const [info, nodes, channels] = await Promise.all([
                api("GET", "/api/info"),
                api("GET", "/api/nodes").catch((err) => err),
                api("GET", "/api/channels"),
            ]);
            showInfo(info);
            if (nodes instanceof ApiError) showFailure($("nodes"), nodes);
            else showNodes(nodes.nodes);
            showChannels(channels.channels);
            showError("");
            setState("connected", `Connected to ${info.node}; refreshed ${new Date().toLocaleTimeString()}.`);
        } catch (err) {
            if (!(err instanceof ApiError)) throw err;
            if (err.status == 401 || err.status == 403) return refused(err);
            setState("failing", "The last refresh failed; retrying.");
            showError(err.describe());
        } finally {
            polling = false;
        }
    }

    function showInfo(info) {
        $("node-name").textContent = info.node;
        $("version").textContent = info.version;
        $("engine").textContent = info.engine;
        $("uptime").textContent = duration(info.uptime_seconds);
        $("connections").textContent = info.connections;
        $("sessions").textContent = info.sessions;
        $("channel-count").textContent = info.channels;
        $("publications").textContent = info.publications;

        const now = performance.now();
        const counters = { at: now, in: info.messages_in, out: info.messages_out };
        // A smaller counter means another process answered (a restart): start the rates afresh.
        if (previousCounters && counters.in >= previousCounters.in && counters.out >= previousCounters.out) {
            const seconds = (now - previousCounters.at) / 1000;
            if (seconds > 0) {
                rates.push({ in: (counters.in - previousCounters.in) / seconds, out: (counters.out - previousCounters.out) / seconds });
                if (rates.length > CHART_POINTS) rates.shift();
            }
        }
        previousCounters = counters;
        const last = rates[rates.length - 1];
        $("rate-in").textContent = last ? rate(last.in) : "–";
        $("rate-out").textContent = last ? rate(last.out) : "–";
        drawChart();

        const shards = info.shards || [];
        if (shards.length == 0) {
            show($("shards"), emptyNote(`none: the ${info.engine} engine keeps everything in this process`));
        } else {
            show($("shards"), table(["shard", "status", "error"],
                shards.map((s) => [s.shard, element("span", s.ok ? "ok" : "down", s.ok ? "ok" : "down"), s.error])));
        }
    }

    function drawChart() {
        const canvas = $("chart");
        const context = canvas.getContext("2d");
        const width = canvas.width;
        const height = canvas.height;
        context.clearRect(0, 0, width, height);
        const style = getComputedStyle(document.documentElement);
        const top = Math.max(1, ...rates.map((r) => Math.max(r.in, r.out)));
        context.fillStyle = style.getPropertyValue("--muted");
        context.font = "11px system-ui, sans-serif";
        context.fillText(`${rate(top)}/s`, 4, 12);
        const step = width / (CHART_POINTS - 1);
        const x0 = width - (rates.length - 1) * step;
        for (const [series, color] of [["in", "--in"], ["out", "--out"]]) {
            context.strokeStyle = style.getPropertyValue(color);
            context.lineWidth = 2;
            context.beginPath();
            rates.forEach((r, i) => {
                const x = x0 + i * step;
                const y = height - 2 - (r[series] / top) * (height - 18);
                if (i == 0) context.moveTo(x, y);
                else context.lineTo(x, y);
            });
            context.stroke();
        }
    }

    function showNodes(nodes) {
        show($("nodes"), nodes.length == 0 ? emptyNote("no node has sent a heartbeat yet") :
            table(["node", "address", "version", "connections", "subscriptions", "uptime"],
                nodes.map((n) => [n.name, n.address, n.version, n.connections, n.subscriptions,
                    typeof n.uptime_s == "number" ? duration(n.uptime_s) : ""])));
    }

    function showChannels(channels) {
        if (channels.length == 0) return show($("channels"), emptyNote("no channel has a subscriber on this node"));
        show($("channels"), table(["channel", "subscribers"],
            channels.map((c) => {
                const button = element("button", c.channel, "link");
                button.type = "button";
                button.addEventListener("click", () => selectChannel(c.channel));
                return [button, c.subscribers];
            }),
            (index) => (channels[index].channel === selectedChannel ? "selected" : "")));
    }

    // --- one channel: presence and history -----------------------------------------------------

    function selectChannel(channel) {
        selectedChannel = channel;
        $("channel-detail").hidden = false;
        $("channel-name").textContent = channel;
        for (const row of $("channels").querySelectorAll("tbody tr"))
            row.className = row.cells[0].textContent === channel ? "selected" : "";
        loadChannel();
    }

    async function loadChannel() {
        const channel = selectedChannel;
        if (channel === null) return;
        const limit = Math.min(1000, Math.max(1, Number($("history-limit").value) || 20));
        const query = `channel=${encodeURIComponent(channel)}`;
        show($("presence"), emptyNote("loading…"));
        show($("history"), emptyNote("loading…"));
        const [presence, history] = await Promise.all([
            api("GET", `/api/presence?${query}`).catch((err) => err),
            api("GET", `/api/history?${query}&limit=${limit}&reverse=true`).catch((err) => err),
        ]);
        if (channel !== selectedChannel) return; // another channel was clicked meanwhile
        if (presence instanceof Error) handleActionError(presence, $("presence"));
        else if (presence.clients.length == 0) show($("presence"), emptyNote("nobody"));
        else show($("presence"), table(["client", "user", "device", "node", "connected at"],
            presence.clients.map((c) => [c.client, c.user, c.device, c.node, time(c.connected_at)])));

        if (history instanceof Error) return handleActionError(history, $("history"));
        const position = element("p", `epoch ${history.epoch}, offset ${history.offset}`, "muted");
        if (history.publications.length == 0) return show($("history"), position, emptyNote("nothing kept"));
        show($("history"), position, table(["offset", "time", "qos", "data"],
            history.publications.map((p) => [p.offset, time(p.ts), p.qos || 0, dataCell(p.data)])));
    }

    // --- users ---------------------------------------------------------------------------------

    let shownUser = null;

    async function lookUpUser(event) {
        if (event) event.preventDefault();
        const user = $("user-id").value.trim();
        if (!user) return;
        shownUser = user;
        $("user-result").hidden = false;
        $("disconnect-result").textContent = "";
        $("user-online").textContent = "loading…";
        show($("user-connections"));
        show($("user-inbox"));
        const path = `/api/users/${encodeURIComponent(user)}`;
        const [status, inbox] = await Promise.all([
            api("GET", path).catch((err) => err),
            api("GET", `${path}/inbox`).catch((err) => err),
        ]);
        if (user !== shownUser) return;
        if (status instanceof Error) {
            $("user-online").textContent = "";
            handleActionError(status, $("user-connections"));
        } else {
            $("user-online").textContent = status.online ? `${user} is online` : `${user} is offline`;
            $("user-online").className = status.online ? "success" : "muted";
            show($("user-connections"), status.connections.length == 0 ? emptyNote("none") :
                table(["client", "device", "node", "connected at"],
                    status.connections.map((c) => [c.client, c.device, c.node, time(c.connected_at)])));
        }
        if (inbox instanceof Error) return handleActionError(inbox, $("user-inbox"));
        const devices = inbox.devices.length == 0 ? emptyNote("no device remembered") :
            table(["device", "cursor", "last seen"], inbox.devices.map((d) => [d.device, d.cursor, time(d.last_seen)]));
        const messages = inbox.messages.length == 0 ? emptyNote("no message kept") :
            table(["offset", "time", "qos", "data"], inbox.messages.map((m) => [m.offset, time(m.ts), m.qos, dataCell(m.data)]));
        show($("user-inbox"), element("h5", "Devices"), devices, element("h5", "Messages"), messages);
    }

    async function disconnectUser(event) {
        event.preventDefault();
        if (shownUser === null) return;
        const body = JSON.stringify({ user: shownUser, reconnect: $("disconnect-reconnect").checked });
        const result = $("disconnect-result");
        try {
            await api("POST", "/api/disconnect", body);
            result.textContent = `Sent to every node: ${shownUser}'s connections are closing.`;
            result.className = "success";
        } catch (err) {
            handleActionError(err, result);
        }
    }

    // --- publishing ----------------------------------------------------------------------------

    async function publish(event) {
        event.preventDefault();
        const result = $("publish-result");
        const channel = $("publish-channel").value.trim();
        const data = $("publish-data").value;
        try {
            JSON.parse(data);
        } catch (err) {
            result.textContent = `The data is not valid JSON: ${err.message}`;
            result.className = "failure";
            return;
        }
        // The data goes out as typed (now known to be JSON), so that numbers past 2^53 and the
        // order of keys are what the operator wrote, not what JavaScript made of them.
        const qos = $("publish-qos").value;
        const body = `{"channel":${JSON.stringify(channel)},"data":${data}${qos ? `,"qos":${Number(qos)}` : ""}}`;
        result.textContent = "publishing…";
        result.className = "muted";
        try {
            const published = await api("POST", "/api/publish", body);
            result.textContent = `Published to ${published.channel} at offset ${published.offset} (mid ${published.mid}).`;
            result.className = "success";
        } catch (err) {
            handleActionError(err, result);
        }
    }

    document.addEventListener("DOMContentLoaded", () => {
        $("key-form").addEventListener("submit", connect);
        $("forget").addEventListener("click", forget);
        $("history-form").addEventListener("submit", (event) => {
            event.preventDefault();
            loadChannel();
        });
        $("user-form").addEventListener("submit", lookUpUser);
        $("disconnect-form").addEventListener("submit", disconnectUser);
        $("publish-form").addEventListener("submit", publish);
        drawChart();
    });
})();
