// Live panels for selector_app. Plain JavaScript, no dependencies.
//
// Every element with a data-live attribute ("comet", "websocket" or
// "bidirectional") becomes a panel. Endpoint paths come from the server's URL
// configuration (data-url / data-path), so the app works under any prefix.
// Each panel shows its connection state and reconnects 2 s after a failure,
// like Async::Selector's example page.
(function () {
  "use strict";

  var RECONNECT_BACKOFF = 2000;
  var MAX_LOG_LINES = 200;
  var STATE_TEXT = {
    connecting: "connecting\u2026",
    live: "live",
    disconnected: "disconnected \u2014 retrying every 2 s"
  };

  function part(panel, role) {
    return panel.querySelector('[data-role="' + role + '"]');
  }

  function setState(panel, state) {
    var el = part(panel, "state");
    if (el.dataset.state !== state) {
      el.dataset.state = state;
      el.textContent = STATE_TEXT[state];
    }
    panel.dataset.state = state;
  }

  // "<sequence> <data>": split at the first space only.
  function show(panel, message) {
    var space = message.indexOf(" ");
    var sequence = message.slice(0, space);
    part(panel, "sequence").textContent = sequence;
    part(panel, "data").value = message.slice(space + 1);
    return sequence;
  }

  function socketUrl(path) {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    return scheme + window.location.host + path;
  }

  function startComet(panel) {
    var url = panel.dataset.url;
    var sequence = "0";
    function poll() {
      fetch(url + "?seq=" + encodeURIComponent(sequence), { cache: "no-store" })
        .then(function (response) {
          if (response.status === 204) {
            setState(panel, "live");
            return poll();
          }
          if (response.status !== 200) {
            throw new Error("HTTP " + response.status);
          }
          return response.text().then(function (message) {
            sequence = show(panel, message);
            setState(panel, "live");
            poll();
          });
        })
        .catch(function () {
          setState(panel, "disconnected");
          setTimeout(poll, RECONNECT_BACKOFF);
        });
    }
    poll();
  }

  function connect(panel, onOpen, onMessage) {
    // Resolves a fresh URL on every attempt (a resource panel resumes from
    // its cursor); returns nothing: reconnection is the panel's business.
    var url = socketUrl(panel.dataset.path + (panel.cursor ? panel.cursor() : ""));
    var ws = new WebSocket(url);
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

  function startWebsocket(panel) {
    var sequence = "";
    panel.cursor = function () {
      return sequence ? "?seq=" + sequence : "";
    };
    connect(panel, null, function (message) {
      sequence = show(panel, message);
    });
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

  var starters = {
    comet: startComet,
    websocket: startWebsocket,
    bidirectional: startBidirectional
  };

  function start() {
    var panels = document.querySelectorAll("[data-live]");
    for (var i = 0; i < panels.length; i++) {
      var starter = starters[panels[i].dataset.live];
      if (starter && !panels[i].dataset.started) {
        panels[i].dataset.started = "1";
        starter(panels[i]);
      }
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
