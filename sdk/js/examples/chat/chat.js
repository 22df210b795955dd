// The wspush chat demo. Served next to wspush.min.js; connects to ws(s)://<this host>/ws unless
// the page's URL says otherwise (?ws=ws://host:port/ws).
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var params = new URLSearchParams(location.search);
  var url = params.get("ws") || (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";

  var client = new Wspush(url, { debug: params.has("debug") });
  var sub = null;

  $("nick").value = localStorage.getItem("wspush-chat-nick") || "guest" + Math.floor(Math.random() * 1000);

  client.on("state", function (state) {
    $("state").textContent = state;
    $("state").dataset.state = state;
    if (state === "reconnecting") note("connection lost, reconnecting…");
  });
  client.on("error", function (err) { note("error: " + err.message); });
  client.connect();

  $("join").addEventListener("submit", function (e) {
    e.preventDefault();
    var nick = $("nick").value.trim();
    localStorage.setItem("wspush-chat-nick", nick);
    var channel = "chat:" + $("room").value.trim(); // the chat namespace allows client publishes
    if (sub && sub.channel === channel) return;
    if (sub) sub.unsubscribe().catch(function () {});
    $("messages").textContent = "";
    sub = client.subscribe(channel);
    sub.on("message", show);
    sub.on("subscribed", function (info) {
      note((info.resumed ? "back in " : "joined ") + channel);
      setSending(true);
    });
    sub.on("error", function (err) { note("cannot join " + channel + ": " + err.message); setSending(false); });
  });

  $("send").addEventListener("submit", function (e) {
    e.preventDefault();
    var text = $("text").value.trim();
    if (!text || !sub) return;
    $("text").value = "";
    // QoS 1: resent until the server has it, whatever happens to the connection meanwhile.
    client.publish(sub.channel, { nick: $("nick").value.trim(), text: text }, { qos: 1, timeout: 30000 })
      .catch(function (err) { note("not sent (" + err.name + "): " + text); });
  });

  function setSending(on) {
    $("text").disabled = !on;
    $("send").querySelector("button").disabled = !on;
  }

  function show(msg) {
    var li = document.createElement("li");
    var nick = document.createElement("span");
    nick.className = "nick";
    nick.textContent = String(msg.data && msg.data.nick);
    li.appendChild(nick);
    li.appendChild(document.createTextNode(String(msg.data && msg.data.text)));
    if (msg.data && msg.data.nick === $("nick").value.trim()) li.className = "mine";
    append(li);
  }

  function note(text) {
    var li = document.createElement("li");
    li.className = "note";
    li.textContent = text;
    append(li);
  }

  function append(li) {
    var list = $("messages");
    list.appendChild(li);
    list.scrollTop = list.scrollHeight;
  }

  window.chat = { client: client, subscription: function () { return sub; } }; // for tests and curious people
})();
