// Live panels for selector_app. Plain JavaScript, no dependencies.
//
// Every element with a data-live attribute ("comet", "websocket", "sse",
// "bidirectional" or "grid") becomes a panel; a grid follows the resources
// of its data-names on one /select connection (client.js's subscribeMany). Endpoint paths come from the server's URL
// configuration (data-* attributes), so the app works under any prefix. Each
// panel shows its connection state and reconnects by itself; the resource
// panels follow their resource with client.js, an ES module loaded with
// import(), which falls back to another transport when theirs is unavailable
// and says which one is in use.
(function () {
  "use strict";

  // The bidirectional panel reconnects 2 s after a failure, like PAGI's
  // example page; the resource panels use client.js (back-off with jitter,
  // fallback across transports, resuming from their cursor).
  var RECONNECT_BACKOFF = 2000;
  var MAX_LOG_LINES = 200;
  var TRANSPORT_NAMES = { websocket: "WebSocket", sse: "Server-Sent Events", comet: "Comet" };
  var STATE_TEXT = {
    connecting: "connecting\u2026",
    live: "live",
    disconnected: "disconnected \u2014 retrying every 2 s"
  };
  // Where client.js is: the script tag says (live_assets), else next to us.
  var script = document.currentScript;
  var clientUrl = script && (script.dataset.client || new URL("client.js", script.src).href);

  function part(panel, role) {
    return panel.querySelector('[data-role="' + role + '"]');
  }

  function setState(panel, state, text) {
    var el = part(panel, "state");
    text = text || STATE_TEXT[state];
    if (el.dataset.state !== state || el.textContent !== text) {
      el.dataset.state = state;
      el.textContent = text;
    }
    panel.dataset.state = state;
  }

  // What a resource panel says: the transport in use, and what happens next.
  function describe(state, info) {
    var over = TRANSPORT_NAMES[info.transport] || info.transport;
    if (state === "live") {
      return ["live", "live over " + over];
    }
    if (state === "retrying") {
      var seconds = (info.delay / 1000).toFixed(1);
      return ["disconnected", "disconnected \u2014 retrying in " + seconds + " s"];
    }
    if (state === "stopped") {
      return ["stopped", "stopped: " + info.reason];
    }
    return ["connecting", "connecting over " + over + "\u2026"];
  }

  function startResource(panel, transport, client) {
    var paths = {
      websocket: panel.dataset.websocket || panel.dataset.path,
      sse: panel.dataset.sse,
      comet: panel.dataset.comet || panel.dataset.url
    };
    panel.subscription = client.subscribe(
      null,
      function (version) {
        part(panel, "sequence").textContent = String(version.sequence);
        part(panel, "data").value = version.data;
      },
      {
        transport: transport,
        paths: paths,
        onState: function (state, info) {
          var shown = describe(state, info);
          panel.dataset.transport = info.transport;
          setState(panel, shown[0], shown[1]);
        }
      }
    );
  }

  function startGrid(panel, client) {
    var cursors = {};
    var cells = {};
    var names = panel.dataset.names.split(" ");
    for (var i = 0; i < names.length; i++) {
      cursors[names[i]] = 0;
      cells[names[i]] = panel.querySelector('[data-cell="' + names[i] + '"]');
    }
    panel.subscription = client.subscribeMany(
      cursors,
      function (version) {
        var cell = cells[version.name];
        part(cell, "sequence").textContent = String(version.sequence);
        part(cell, "data").textContent = version.data.slice(0, 32);
        cell.classList.add("changed");
        setTimeout(function () {
          cell.classList.remove("changed");
        }, 300);
      },
      {
        paths: { websocket: panel.dataset.websocket, sse: panel.dataset.sse, comet: panel.dataset.comet },
        onState: function (state, info) {
          var shown = describe(state, info);
          panel.dataset.transport = info.transport;
          setState(panel, shown[0], shown[1]);
        }
      }
    );
  }

  function socketUrl(path) {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    return scheme + window.location.host + path;
  }

  function connect(panel, onOpen, onMessage) {
    var ws = new WebSocket(socketUrl(panel.dataset.path));
    ws.onopen = function () {
      setState(panel, "live");
      if (onOpen) {
        onOpen(ws);
      }
    };
    ws.onmessage = function (event) {
      onMessage(event.data);
    };
    ws.onclose = function () {
      setState(panel, "disconnected");
      setTimeout(function () {
        connect(panel, onOpen, onMessage);
      }, RECONNECT_BACKOFF);
    };
  }

  function startBidirectional(panel) {
    var log = part(panel, "log");
    var input = part(panel, "input");
    var socket = null;
    function append(text, kind) {
      var item = document.createElement("li");
      item.textContent = text;
      item.className = kind;
      log.insertBefore(item, log.firstChild);
      while (log.children.length > MAX_LOG_LINES) {
        log.removeChild(log.lastChild);
      }
    }
    connect(
      panel,
      function (ws) {
        socket = ws;
        append("connected", "note");
      },
      function (message) {
        append(message, message.indexOf("you said: ") === 0 ? "echo" : "tick");
      }
    );
    part(panel, "form").addEventListener("submit", function (event) {
      event.preventDefault();
      if (socket && socket.readyState === WebSocket.OPEN) {
        socket.send(input.value);
        append("> " + input.value, "sent");
        input.value = "";
      } else {
        append("not connected; try again in a moment", "note");
      }
    });
  }

  var resourceTransports = { comet: "comet", websocket: "websocket", sse: "sse" };

  function start(client) {
    var panels = document.querySelectorAll("[data-live]");
    for (var i = 0; i < panels.length; i++) {
      var panel = panels[i];
      var kind = panel.dataset.live;
      if (panel.dataset.started) {
        continue;
      }
      if (kind === "bidirectional") {
        panel.dataset.started = "1";
        startBidirectional(panel);
      } else if (resourceTransports[kind] && client) {
        panel.dataset.started = "1";
        startResource(panel, resourceTransports[kind], client);
      } else if (kind === "grid" && client) {
        panel.dataset.started = "1";
        startGrid(panel, client);
      }
    }
  }

  function load() {
    start(null); // the bidirectional panel needs no module
    import(clientUrl).then(start, function (error) {
      console.error("selector_app: could not load client.js", error);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", load);
  } else {
    load();
  }
})();
