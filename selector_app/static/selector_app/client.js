// selector_app's JavaScript client: a dependency-free ES module.
//
//   import { subscribe } from "/static/selector_app/client.js";
//   const subscription = subscribe("res", (version) => {
//     console.log(version.sequence, version.data);
//   }, { onState: (state, info) => console.log(state, info.transport) });
//   subscription.close();
//
// One resource over WebSocket, falling back to Server-Sent Events and then
// Comet when a transport is unavailable (refused before it ever answered: a
// proxy that blocks it, a site without that endpoint). Reconnects with
// exponential back-off and full jitter (capped), waits at least what a 503's
// Retry-After asks, stops on 4400/4403/4404 (and their HTTP 400/403/404)
// with the server's reason, and resumes from its cursor, so that no version
// is missed or delivered twice. docs/embedding.md documents it.
//
// The transports know nothing of what is watched: a "feed" gives them each
// attempt's URL (the cursor in its query) and reads each message. subscribe()
// is the single-resource feed; subscribeMany() is the multi-resource feed of
// the /select endpoints (one socket, stream or long-poll for every resource),
// plugged into the same Subscription:
//
//   const grid = subscribeMany({ a: 0, b: 0 }, (version) => {
//     console.log(version.name, version.sequence, version.data);
//   });
//   grid.watch({ c: 0 });
//   grid.unwatch(["a"]);

/** The transports, in the order of the fallback. */
export const TRANSPORTS = ["websocket", "sse", "comet"];

/** Back-off defaults (ms): the first delay's ceiling, and the cap. */
export const BACKOFF_BASE = 500;
export const BACKOFF_CAP = 30000;

/** Close codes and HTTP statuses after which retrying cannot help. */
const FINAL_CLOSE = [4400, 4403, 4404];
const FINAL_STATUS = [400, 403, 404];

/**
 * The delay before reconnect attempt `attempt` (0 for the first): full
 * jitter, a random time between 0 and min(cap, base * 2^attempt).
 */
export function backoffDelay(attempt, { base = BACKOFF_BASE, cap = BACKOFF_CAP, random = Math.random } = {}) {
  return random() * Math.min(cap, base * Math.pow(2, attempt));
}

/** The endpoint paths of resource `name` under the app's mount `prefix`. */
export function resourcePaths(name, prefix = "/") {
  const suffix = name ? "/" + encodeURIComponent(name) : "";
  return {
    websocket: prefix + "websocket" + suffix,
    sse: prefix + "events" + suffix,
    comet: prefix + "comet" + suffix,
  };
}

/**
 * Follow resource `name`: `onVersion({name, sequence, data})` for every
 * version newer than the last one delivered. Options:
 * - transport: the first one tried ("websocket", "sse" or "comet");
 * - fallback: try the later transports when one is unavailable (true);
 * - prefix: where the app is mounted ("/"), or paths: {websocket, sse, comet};
 * - cursor: the sequence the caller already has (0);
 * - onState(state, info): "connecting", "live", "retrying" (info.delay in
 *   ms) or "stopped" (info.reason); info.transport is the transport in use;
 * - base, cap: the back-off (ms); clock: {setTimeout, clearTimeout, random},
 *   and WebSocket, EventSource, fetch: what the client uses (tests inject).
 * Returns a Subscription: .close(), .transport, .state, .reason.
 */
export function subscribe(name, onVersion, options = {}) {
  const paths = options.paths || resourcePaths(name, options.prefix);
  return new Subscription(resourceFeed(name, paths, options.cursor || 0), onVersion, options);
}

/** The feed of one resource: "<sequence> <data>" messages, cursor ?seq=N. */
function resourceFeed(name, paths, cursor) {
  let sequence = cursor;
  return {
    url(transport) {
      return paths[transport] + (sequence ? "?seq=" + sequence : "");
    },
    read(message, deliver) {
      const space = message.indexOf(" ");
      const received = Number(message.slice(0, space));
      if (space < 1 || !Number.isSafeInteger(received) || received === sequence) {
        return; // a repeat (a transport that resumed) or not a version
      }
      sequence = received; // lower after a database reset: shown once
      deliver({ name: name, sequence: received, data: message.slice(space + 1) });
    },
  };
}

/** The /select endpoint paths under the app's mount `prefix`. */
export function selectPaths(prefix = "/") {
  return { websocket: prefix + "select", sse: prefix + "events/select", comet: prefix + "select" };
}

/**
 * Follow several resources on one connection: `cursors` maps each name to
 * the sequence the caller has (0: nothing yet); `onVersion({name, sequence,
 * data})` for every version newer than the last one delivered of its
 * resource. The options of subscribe() (paths: {websocket, sse, comet} of
 * the /select endpoints). Returns a Subscription with .watch({name: cursor})
 * and .unwatch([name]) besides: over WebSocket they are frames on the open
 * socket; over SSE and Comet the request is made again with the new set.
 */
export function subscribeMany(cursors, onVersion, options = {}) {
  const paths = options.paths || selectPaths(options.prefix);
  return new Subscription(selectFeed(cursors, paths), onVersion, options);
}

/** The feed of a watch set: JSON messages (or arrays of them), ?r=name:seq. */
function selectFeed(initial, paths) {
  // A Map: a resource may well be named "constructor".
  const cursors = new Map(Object.entries(initial).map(([name, seq]) => [name, seq || 0]));
  return {
    cursors: cursors,
    eventNames() {
      return Array.from(cursors.keys());
    },
    url(transport) {
      const items = Array.from(cursors, ([name, seq]) => "r=" + encodeURIComponent(name) + (seq ? ":" + seq : ""));
      return paths[transport] + "?" + items.join("&");
    },
    read(text, deliver) {
      let parsed;
      try {
        parsed = JSON.parse(text);
      } catch (error) {
        return; // not a message
      }
      for (const message of Array.isArray(parsed) ? parsed : [parsed]) {
        if (!message || !cursors.has(message.name) || !Number.isSafeInteger(message.sequence)) {
          continue; // not watched (any more), or not a version
        }
        if (cursors.get(message.name) === message.sequence) continue; // a repeat
        cursors.set(message.name, message.sequence);
        deliver({ name: message.name, sequence: message.sequence, data: message.data });
      }
    },
  };
}

/** One subscription's reconnecting, falling-back life over the transports. */
export class Subscription {
  constructor(feed, onVersion, options = {}) {
    const first = Math.max(0, TRANSPORTS.indexOf(options.transport || "websocket"));
    this.order = options.fallback === false ? [TRANSPORTS[first]] : TRANSPORTS.slice(first);
    this.feed = feed;
    this.onVersion = onVersion;
    this.onState = options.onState || function () {};
    this.base = options.base || BACKOFF_BASE;
    this.cap = options.cap || BACKOFF_CAP;
    const clock = options.clock || {};
    this.setTimeout = clock.setTimeout || globalThis.setTimeout.bind(globalThis);
    this.clearTimeout = clock.clearTimeout || globalThis.clearTimeout.bind(globalThis);
    this.random = clock.random || Math.random;
    this.env = {
      WebSocket: options.WebSocket || globalThis.WebSocket,
      EventSource: options.EventSource || globalThis.EventSource,
      fetch: options.fetch || globalThis.fetch.bind(globalThis),
    };
    this.state = null;
    this.transport = null;
    this.reason = null;
    this.attempt = 0; // failed rounds in a row: the back-off's exponent
    this.index = 0; // the transport of this round being tried
    this.working = 0; // the transport a new round starts with
    this.timer = null;
    this.current = null;
    this.connect();
  }

  close() {
    this.stop();
    this.setState("stopped", { reason: "closed" });
  }

  stop() {
    this.closed = true;
    if (this.timer !== null) {
      this.clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.current) {
      this.current.close();
      this.current = null;
    }
  }

  /** Follow more resources (a multi-resource subscription only); a name
   * already followed keeps its own cursor. */
  watch(cursors) {
    const added = {};
    for (const [name, seq] of Object.entries(cursors)) {
      if (!this.feed.cursors.has(name)) {
        this.feed.cursors.set(name, seq || 0);
        added[name] = seq || 0;
      }
    }
    if (Object.keys(added).length) this.changed({ watch: added });
  }

  /** Stop following these resources; nothing more is delivered of them. */
  unwatch(names) {
    const removed = names.filter((name) => this.feed.cursors.delete(name));
    if (removed.length) this.changed({ unwatch: removed });
  }

  changed(frame) {
    if (this.closed) return;
    if (this.current && this.current.send && this.current.send(JSON.stringify(frame))) {
      return; // an open socket changes its set
    }
    if (this.timer !== null) return; // a retry is due: it asks with the new set
    if (this.current) {
      this.current.close();
      this.current = null;
    }
    this.connect(); // SSE and Comet carry the set in their URL
  }

  setState(state, info = {}) {
    this.state = state;
    this.onState(state, Object.assign({ transport: this.transport }, info));
  }

  connect() {
    this.timer = null;
    if (this.closed) return;
    if (this.feed.cursors && this.feed.cursors.size === 0) {
      this.setState("idle"); // nothing to follow until watch()
      return;
    }
    this.transport = this.order[this.index];
    this.setState("connecting");
    const attempt = { opened: false };
    const handlers = {
      opened: () => {
        if (attempt.opened || this.current !== connection) return;
        attempt.opened = true;
        this.working = this.index;
        this.setState("live");
      },
      // The back-off starts again only once an answer came through: a
      // server that accepts and ends at once (a process draining for a
      // restart) must not be asked again and again without a pause.
      answered: () => {
        if (this.current !== connection) return;
        handlers.opened();
        this.attempt = 0;
      },
      message: (text) => {
        if (this.current !== connection) return;
        handlers.answered();
        this.feed.read(text, this.onVersion);
      },
      failed: (failure = {}) => {
        if (this.current !== connection) return;
        this.current = null;
        connection.close();
        this.failed(Object.assign({ opened: attempt.opened }, failure));
      },
    };
    const connection = OPENERS[this.transport](this, this.feed.url(this.transport), handlers);
    this.current = connection;
  }

  // failure: {opened, final, reason, retryAfter (s), answered}
  failed(failure) {
    if (this.closed) return;
    if (failure.final) {
      this.stop();
      this.reason = failure.reason || "refused";
      this.setState("stopped", { reason: this.reason });
      return;
    }
    const unavailable = !failure.opened && !failure.answered;
    if (unavailable && this.index + 1 < this.order.length) {
      this.index += 1; // this transport never answered: try the next now
      this.timer = this.setTimeout(() => this.connect(), 0);
      return;
    }
    let delay = backoffDelay(this.attempt, { base: this.base, cap: this.cap, random: this.random });
    if (failure.retryAfter) {
      delay = Math.max(delay, failure.retryAfter * 1000);
    }
    this.attempt += 1;
    this.index = this.working;
    this.setState("retrying", { delay: delay, reason: failure.reason });
    this.timer = this.setTimeout(() => this.connect(), delay);
  }
}

function socketUrl(path) {
  if (/^wss?:/.test(path)) return path;
  const scheme = globalThis.location.protocol === "https:" ? "wss://" : "ws://";
  return scheme + globalThis.location.host + path;
}

/** What an HTTP answer means: {final, reason, retryAfter, answered}. */
async function httpFailure(response) {
  const type = response.headers.get("Content-Type") || "";
  // The app answers text/plain with a one-line reason; anything else (a
  // proxy's page, a site without the endpoint) says the transport is not there.
  const ours = type.indexOf("text/plain") === 0;
  const reason = ours ? (await response.text()).trim() : "HTTP " + response.status;
  const retryAfter = Number(response.headers.get("Retry-After")) || 0;
  return {
    final: ours && FINAL_STATUS.indexOf(response.status) >= 0,
    answered: ours && response.status === 503,
    reason: reason,
    retryAfter: retryAfter,
  };
}

const OPENERS = {
  websocket(subscription, path, handlers) {
    const ws = new subscription.env.WebSocket(socketUrl(path));
    ws.onopen = handlers.opened;
    ws.onmessage = (event) => handlers.message(event.data);
    ws.onclose = (event) => {
      const final = FINAL_CLOSE.indexOf(event.code) >= 0;
      handlers.failed({ final: final, reason: event.reason || "closed " + event.code });
    };
    return {
      close() {
        ws.onopen = ws.onmessage = ws.onclose = null;
        ws.close();
      },
      send(text) {
        if (ws.readyState !== 1) return false; // not open (yet): reconnect
        ws.send(text);
        return true;
      },
    };
  },

  sse(subscription, url, handlers) {
    const source = new subscription.env.EventSource(url);
    let opened = false;
    let probe = null;
    source.onopen = () => {
      opened = true;
      handlers.opened();
    };
    const onEvent = (event) => handlers.message(event.data);
    source.onmessage = onEvent;
    // /events/select names each event after its resource.
    const names = subscription.feed.eventNames ? subscription.feed.eventNames() : [];
    names.forEach((name) => source.addEventListener(name, onEvent));
    source.onerror = () => {
      // EventSource would reconnect by itself, without back-off or a reason:
      // this client reconnects instead, from its own cursor.
      source.close();
      if (opened) {
        handlers.failed({});
        return;
      }
      // Refused before it opened: ask the same URL what the refusal was.
      probe = new AbortController();
      subscription.env
        .fetch(url, { cache: "no-store", signal: probe.signal })
        .then((response) => {
          if (response.status === 200) {
            probe.abort(); // streams to fetch but not to EventSource: unavailable
            return { reason: "EventSource failed" };
          }
          return httpFailure(response);
        })
        .catch(() => ({ reason: "unreachable" }))
        .then((failure) => handlers.failed(failure));
    };
    return {
      close() {
        names.forEach((name) => source.removeEventListener(name, onEvent));
        source.onopen = source.onmessage = source.onerror = null;
        source.close();
        if (probe) probe.abort();
      },
    };
  },

  comet(subscription, url, handlers) {
    const controller = new AbortController();
    let target = url;
    const poll = () => {
      subscription.env
        .fetch(target, { cache: "no-store", signal: controller.signal })
        .then(async (response) => {
          if (response.status === 204) {
            handlers.answered(); // a whole long-poll: the transport works
          } else if (response.status === 200) {
            handlers.message(await response.text());
          } else {
            handlers.failed(await httpFailure(response));
            return;
          }
          target = subscription.feed.url("comet"); // the cursor moved on
          poll();
        })
        .catch((error) => {
          if (!controller.signal.aborted) handlers.failed({ reason: String(error) });
        });
    };
    poll();
    return {
      close() {
        controller.abort();
      },
    };
  },
};
