// Orchestry console: a Server-Sent Events client over fetch().
// EventSource cannot send an Authorization header, so the stream is read
// with fetch() and a ReadableStream reader, parsed here (the WHATWG
// "event stream" format), and reconnected with exponential back-off and
// Last-Event-ID.
"use strict";

(function (global) {
  // Parser turns chunks of text into events: {id, event, data}.
  function Parser(onEvent, onComment) {
    this.buf = "";
    this.data = [];
    this.event = "";
    this.id = null;
    this.onEvent = onEvent;
    this.onComment = onComment;
  }

  Parser.prototype.push = function (text) {
    this.buf += text;
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buf);
      if (!m) {
        return;
      }
      // A lone \r at the very end may be the first half of \r\n.
      if (m[0] === "\r" && m.index === this.buf.length - 1) {
        return;
      }
      const line = this.buf.slice(0, m.index);
      this.buf = this.buf.slice(m.index + m[0].length);
      this.line(line);
    }
  };

  Parser.prototype.line = function (line) {
    if (line === "") {
      if (this.data.length > 0) {
        this.onEvent({ id: this.id, event: this.event || "message", data: this.data.join("\n") });
      }
      this.data = [];
      this.event = "";
      return;
    }
    if (line[0] === ":") {
      this.onComment(line.slice(1).trim());
      return;
    }
    const i = line.indexOf(":");
    const field = i < 0 ? line : line.slice(0, i);
    let value = i < 0 ? "" : line.slice(i + 1);
    if (value[0] === " ") {
      value = value.slice(1);
    }
    switch (field) {
      case "data":
        this.data.push(value);
        break;
      case "event":
        this.event = value;
        break;
      case "id":
        if (value.indexOf("\0") < 0) {
          this.id = value;
        }
        break;
      default: // "retry" and unknown fields: the client keeps its own back-off
    }
  };

  // Stream keeps one authenticated SSE connection open.
  //   opts.url()        the URL to (re)connect to
  //   opts.headers()    request headers (Authorization)
  //   opts.onEvent(ev)  each event: {id, event, data}
  //   opts.onStatus(s)  {state: "connecting"|"live"|"waiting"|"unauthorized", reason?, retryAt?}
  //   opts.onOpen()     each successful (re)connection
  function Stream(opts) {
    this.opts = opts;
    this.lastId = null;
    this.attempt = 0;
    this.stopped = true;
    this.ctrl = null;
    this.timer = null;
    this.watchdog = null;
    this.lastHeard = 0;
  }

  // Quiet is how long a connection may stay silent (the server sends a
  // keepalive every 15 s) before it is taken as dead.
  Stream.QUIET_MS = 45000;
  Stream.MIN_BACKOFF_MS = 1000;
  Stream.MAX_BACKOFF_MS = 30000;

  Stream.prototype.start = function () {
    this.stopped = false;
    this.connect();
  };

  Stream.prototype.stop = function () {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.watchdog);
    if (this.ctrl) {
      this.ctrl.abort();
    }
  };

  Stream.prototype.status = function (s) {
    if (this.opts.onStatus) {
      this.opts.onStatus(s);
    }
  };

  Stream.prototype.connect = async function () {
    if (this.stopped) {
      return;
    }
    const ctrl = new AbortController();
    this.ctrl = ctrl;
    this.status({ state: "connecting", attempt: this.attempt });
    const headers = Object.assign({ Accept: "text/event-stream" }, this.opts.headers());
    if (this.lastId !== null) {
      headers["Last-Event-ID"] = this.lastId;
    }
    let resp;
    try {
      resp = await fetch(this.opts.url(), { headers: headers, signal: ctrl.signal, cache: "no-store" });
    } catch (err) {
      this.retry("connection failed: " + err.message);
      return;
    }
    if (resp.status === 401) {
      this.stopped = true;
      this.status({ state: "unauthorized" });
      return;
    }
    if (!resp.ok || !resp.body || (resp.headers.get("Content-Type") || "").indexOf("text/event-stream") !== 0) {
      if (resp.body) {
        resp.body.cancel().catch(() => {});
      }
      this.retry("HTTP " + resp.status);
      return;
    }
    this.attempt = 0;
    this.lastHeard = Date.now();
    this.status({ state: "live" });
    if (this.opts.onOpen) {
      this.opts.onOpen();
    }
    clearInterval(this.watchdog);
    this.watchdog = setInterval(() => {
      if (Date.now() - this.lastHeard > Stream.QUIET_MS) {
        ctrl.abort();
      }
    }, 5000);
    const parser = new Parser(
      (ev) => {
        this.lastHeard = Date.now();
        if (ev.id !== null && ev.id !== "") {
          this.lastId = ev.id;
        }
        try {
          this.opts.onEvent(ev);
        } catch (err) {
          console.error("event handler failed", err);
        }
      },
      () => {
        this.lastHeard = Date.now();
        this.status({ state: "live" });
      }
    );
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    try {
      for (;;) {
        const r = await reader.read();
        if (r.done) {
          break;
        }
        this.lastHeard = Date.now();
        parser.push(r.value);
      }
      this.retry("stream ended");
    } catch (err) {
      this.retry(ctrl.signal.aborted ? "no data for " + Stream.QUIET_MS / 1000 + " s" : "stream broke: " + err.message);
    } finally {
      clearInterval(this.watchdog);
    }
  };

  Stream.prototype.retry = function (reason) {
    if (this.stopped) {
      return;
    }
    const base = Math.min(Stream.MAX_BACKOFF_MS, Stream.MIN_BACKOFF_MS * Math.pow(2, this.attempt));
    const delay = Math.round(base / 2 + Math.random() * base / 2); // jitter: 50-100 %
    this.attempt++;
    this.status({ state: "waiting", reason: reason, retryAt: Date.now() + delay });
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  };

  global.OrchestrySSE = { Parser: Parser, Stream: Stream };
})(window);
