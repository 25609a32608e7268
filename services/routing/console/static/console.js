// Orchestry console: the page's logic. Everything it shows comes from the
// REST API (/v1) with the operator's bearer token, and is kept current by
// the event stream (/v1/events/stream, Server-Sent Events fed from NATS).
// No data is ever written as HTML: text goes in with textContent.
"use strict";

(function () {
  const TOKEN_KEY = "orchestry.console.token";
  const SPAN_MS = 5 * 60 * 1000; // the charts' span
  const MAX_EVENTS = 80; // recent events kept
  const POLL_MS = 10000; // snapshot refresh while the stream is down
  const TYPE_PREFIX = "io.orchestry.";

  const S = {
    token: "",
    apps: new Map(), // name -> app state (see appState)
    nodes: new Map(), // node -> RenderReport + received_at
    certs: [],
    events: [], // EventRecord, newest first
    seen: new Set(), // event keys shown
    historyNote: "",
    stream: null,
    streamState: { state: "idle" },
    opened: 0,
    skew: 0, // server clock minus ours, ms
    pollTimer: null,
    resyncTimer: null,
    showTraffic: false,
  };

  // ---------- small helpers ----------

  const $ = (id) => document.getElementById(id);

  // h builds an element: h("td", {class: "x", "data-a": 1}, "text", child...)
  function h(tag, attrs) {
    const e = document.createElement(tag);
    if (attrs) {
      for (const k in attrs) {
        if (attrs[k] !== undefined && attrs[k] !== null && attrs[k] !== false) {
          e.setAttribute(k, attrs[k] === true ? "" : String(attrs[k]));
        }
      }
    }
    for (let i = 2; i < arguments.length; i++) {
      const c = arguments[i];
      if (c === undefined || c === null || c === false) {
        continue;
      }
      e.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function clear(e) {
    while (e.firstChild) {
      e.removeChild(e.firstChild);
    }
    return e;
  }

  function now() {
    return Date.now() + S.skew;
  }

  function duration(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) {
      return s + "s";
    }
    if (s < 3600) {
      return Math.floor(s / 60) + "m " + (s % 60) + "s";
    }
    if (s < 86400) {
      return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
    }
    return Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
  }

  function ago(ts) {
    const t = Date.parse(ts);
    if (isNaN(t) || t <= 0) {
      return "–";
    }
    return duration(now() - t) + " ago";
  }

  // since is a span whose text the clock keeps current.
  function since(ts, cls) {
    const t = Date.parse(ts);
    if (isNaN(t) || t <= 0) {
      return h("span", { class: "muted" }, "–");
    }
    return h("span", { class: "since " + (cls || ""), "data-since": ts, title: new Date(t).toISOString() }, ago(ts));
  }

  function hhmmss(ts) {
    const d = new Date(ts);
    return isNaN(d) ? "" : d.toTimeString().slice(0, 8);
  }

  function fmt(v, unit) {
    if (!isFinite(v)) {
      return "–";
    }
    const s = v === 0 ? "0" : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
    return unit ? s + " " + unit : s;
  }

  // badge is a state label: colour and text (never colour alone).
  function badge(text, kind, title) {
    return h("span", { class: "badge badge-" + kind, title: title }, h("span", { class: "badge-dot", "aria-hidden": "true" }), text);
  }

  const HEALTH_KIND = { healthy: "ok", unhealthy: "bad", ejected: "warn", draining: "idle", unknown: "idle" };
  const OUTCOME_KIND = { applied: "ok", unchanged: "ok", invalid: "bad", failed: "bad" };
  const CERT_KIND = { valid: "ok", renewal_failing: "warn", failed: "bad", pending: "idle", expired: "bad" };

  // ---------- the API ----------

  class AuthError extends Error {}

  async function api(path) {
    const r = await fetch(path, {
      headers: { Authorization: "Bearer " + S.token, Accept: "application/json" },
      cache: "no-store",
    });
    const date = Date.parse(r.headers.get("Date") || "");
    if (!isNaN(date)) {
      const skew = date - Date.now();
      S.skew = Math.abs(skew) > 2000 ? skew : 0;
    }
    if (r.status === 401) {
      throw new AuthError("token refused");
    }
    if (!r.ok) {
      const e = new Error(path + ": HTTP " + r.status);
      e.status = r.status;
      throw e;
    }
    return r.json();
  }

  // ---------- state ----------

  function appState(name) {
    let a = S.apps.get(name);
    if (!a) {
      a = { name: name, app: null, revision: 0, instances: [], health: new Map(), series: [], last: null, windowMs: 10000, dom: null };
      S.apps.set(name, a);
    }
    return a;
  }

  function applyApp(app, revision, instances) {
    const a = appState(app.metadata.name);
    if (revision < a.revision) {
      return null;
    }
    a.app = app;
    a.revision = revision;
    a.instances = instances || [];
    return a;
  }

  function applyHealth(hs) {
    if (!hs || !hs.app || !hs.instance_id) {
      return null;
    }
    const a = appState(hs.app);
    const cur = a.health.get(hs.instance_id);
    if (cur && cur.revision > hs.revision) {
      return null;
    }
    a.health.set(hs.instance_id, hs);
    return a;
  }

  function applyNode(r) {
    const cur = S.nodes.get(r.node);
    if (cur && cur.revision > r.revision) {
      return false;
    }
    S.nodes.set(r.node, r);
    return true;
  }

  function applyMetrics(m) {
    if (!m || !m.app) {
      return null;
    }
    // An app not known yet (the stream can be ahead of the first
    // snapshot) keeps its windows until it is.
    const a = appState(m.app);
    const secs = m.window_seconds > 0 ? m.window_seconds : 1;
    const t = Date.parse(m.window_start) + secs * 1000;
    if (isNaN(t) || a.series.some((p) => p.t === t)) {
      return null;
    }
    let req = 0;
    let p95 = 0;
    const byAddr = new Map();
    for (const i of m.instances || []) {
      req += i.requests;
      p95 = Math.max(p95, i.p95_ms || 0);
      byAddr.set(i.address, i);
    }
    a.series.push({ t: t, rps: req / secs, p95: p95 });
    a.series.sort((x, y) => x.t - y.t);
    a.series = a.series.filter((p) => p.t >= now() - SPAN_MS - 60000);
    if (!a.last || t >= a.last.t) {
      a.last = { t: t, secs: secs, byAddr: byAddr };
    }
    a.windowMs = secs * 1000;
    return a;
  }

  // recent: the last point of an app's series when it is still current.
  function recent(a) {
    const p = a.series[a.series.length - 1];
    if (!p || now() - p.t > 3 * a.windowMs + 2000) {
      return null;
    }
    return p;
  }

  function eventKey(rec) {
    return rec.id || String(rec.seq);
  }

  function addEvent(rec) {
    const k = eventKey(rec);
    if (S.seen.has(k)) {
      return false;
    }
    S.seen.add(k);
    S.events.unshift(rec);
    S.events.sort((x, y) => (y.seq || 0) - (x.seq || 0) || Date.parse(y.time) - Date.parse(x.time));
    while (S.events.length > MAX_EVENTS) {
      S.seen.delete(eventKey(S.events.pop()));
    }
    return true;
  }

  // ---------- loading ----------

  async function loadSnapshot() {
    try {
      const [apps, status, certs] = await Promise.all([api("/v1/apps"), api("/v1/status"), api("/v1/certs")]);
      const names = new Set();
      for (const v of apps.apps || []) {
        names.add(v.app.metadata.name);
        applyApp(v.app, v.revision, v.instances);
      }
      for (const n of [...S.apps.keys()]) {
        if (!names.has(n)) {
          dropApp(n);
        }
      }
      await Promise.all(
        [...names].map(async (n) => {
          // An app deleted since the list answers 404: the stream says so.
          const gone = (err) => {
            if (err.status === 404) {
              return {};
            }
            throw err;
          };
          const base = "/v1/apps/" + encodeURIComponent(n);
          const [ins, met] = await Promise.all([api(base + "/instances").catch(gone), api(base + "/metrics").catch(gone)]);
          for (const i of ins.instances || []) {
            if (i.health) {
              applyHealth(i.health);
            }
          }
          if (met.window) {
            applyMetrics(met.window);
          }
        })
      );
      for (const r of status.nodes || []) {
        applyNode(r);
      }
      S.certs = certs.certs || [];
      await loadHistory();
      banner("");
      renderAll();
    } catch (err) {
      failed(err);
    }
  }

  async function loadHistory() {
    try {
      const out = await api("/v1/events?limit=50");
      for (const rec of out.events || []) {
        addEvent(rec);
      }
      S.historyNote = "";
    } catch (err) {
      if (err instanceof AuthError) {
        throw err;
      }
      S.historyNote = "Event history unavailable (" + err.message + ").";
    }
  }

  async function loadCerts() {
    try {
      S.certs = (await api("/v1/certs")).certs || [];
      renderCerts();
      renderSummary();
    } catch (err) {
      failed(err);
    }
  }

  function failed(err) {
    if (err instanceof AuthError) {
      signOut("The API refused the token (401). Sign in again.");
      return;
    }
    banner("Cannot reach the API: " + err.message);
  }

  function banner(text) {
    const b = $("banner");
    b.textContent = text;
    b.hidden = !text;
  }

  // ---------- the event stream ----------

  // Events change state at once; the page is redrawn at most every 50 ms,
  // so a replayed backlog of many events costs one redraw, not one each.
  const dirty = { apps: new Set(), list: false, nodes: false, events: false, certs: false };
  let flushTimer = null;

  function mark(part, app) {
    if (app) {
      dirty.apps.add(app);
    } else {
      dirty[part] = true;
    }
    if (!flushTimer) {
      flushTimer = setTimeout(flush, 50);
    }
  }

  function flush() {
    flushTimer = null;
    if (dirty.list) {
      renderApps();
    } else {
      for (const a of dirty.apps) {
        renderApp(a);
        renderCharts(a);
      }
    }
    if (dirty.nodes) {
      renderNodes();
    }
    if (dirty.events) {
      renderEvents();
    }
    if (dirty.certs) {
      loadCerts();
    }
    renderSummary();
    dirty.apps.clear();
    dirty.list = dirty.nodes = dirty.events = dirty.certs = false;
  }

  function onStreamEvent(ev) {
    let rec;
    try {
      rec = JSON.parse(ev.data);
    } catch (err) {
      return;
    }
    const type = ev.event && ev.event !== "message" ? ev.event : rec.type;
    // A record may come twice (in /v1/events and in the stream's replay):
    // it is listed once, and applying it again changes nothing (each part
    // keeps the highest revision, or the window's time, it has seen).
    if (addEvent(rec)) {
      mark("events");
    }
    const data = rec.data || {};
    switch (type) {
      case TYPE_PREFIX + "instance.health.v1": {
        const a = applyHealth(data);
        if (a) {
          mark("app", a);
        }
        break;
      }
      case TYPE_PREFIX + "routing.changed.v1":
        if (data.deleted) {
          dropApp(data.app.metadata.name);
          mark("list");
        } else {
          const a = applyApp(data.app, data.revision, data.instances);
          if (a) {
            a.auto = data.auto || null; // only events carry routing's auto choice
            mark("list");
          }
        }
        break;
      case TYPE_PREFIX + "config.rendered.v1":
        data.received_at = rec.time;
        if (applyNode(data)) {
          mark("nodes");
        }
        break;
      case TYPE_PREFIX + "metrics.upstream.v1": {
        const a = applyMetrics(data);
        if (a) {
          mark("app", a);
        }
        break;
      }
      case TYPE_PREFIX + "cert.issued.v1":
      case TYPE_PREFIX + "cert.failed.v1":
        mark("certs"); // /v1/certs holds the state derived from both
        break;
      default:
    }
  }

  function onStreamStatus(s) {
    S.streamState = s;
    renderStream();
    if (s.state === "waiting" && !S.pollTimer) {
      // While the stream is down, the page still refreshes itself.
      S.pollTimer = setInterval(loadSnapshot, POLL_MS);
    } else if (s.state === "live" || s.state === "unauthorized") {
      clearInterval(S.pollTimer);
      S.pollTimer = null;
    }
    if (s.state === "unauthorized") {
      signOut("The API refused the token (401). Sign in again.");
    }
  }

  function onStreamOpen() {
    S.opened++;
    if (S.opened > 1) {
      // Reconnected: catch up on anything the stream did not replay.
      clearTimeout(S.resyncTimer);
      S.resyncTimer = setTimeout(loadSnapshot, 300);
    }
  }

  function renderStream() {
    const s = S.streamState;
    const box = $("stream");
    box.dataset.state = s.state;
    let text;
    switch (s.state) {
      case "live":
        text = "live";
        break;
      case "connecting":
        text = "connecting…";
        break;
      case "waiting":
        text = "reconnecting in " + Math.max(0, Math.ceil((s.retryAt - Date.now()) / 1000)) + "s (" + s.reason + "); polling every " + POLL_MS / 1000 + "s";
        break;
      case "unauthorized":
        text = "token refused";
        break;
      default:
        text = "not connected";
    }
    $("stream-text").textContent = "Event stream: " + text;
  }

  // ---------- rendering ----------

  function renderAll() {
    renderApps();
    renderNodes();
    renderCerts();
    renderEvents();
    renderSummary();
  }

  function dropApp(name) {
    const a = S.apps.get(name);
    if (a && a.dom) {
      a.dom.card.remove();
    }
    S.apps.delete(name);
  }

  function renderSummary() {
    let total = 0;
    let healthy = 0;
    let rps = 0;
    for (const a of S.apps.values()) {
      if (!a.app) {
        continue;
      }
      for (const i of a.instances) {
        total++;
        if (stateOf(a, i) === "healthy") {
          healthy++;
        }
      }
      const p = recent(a);
      rps += p ? p.rps : 0;
    }
    $("sum-apps").textContent = [...S.apps.values()].filter((a) => a.app).length;
    const si = $("sum-instances");
    si.textContent = healthy + " / " + total;
    si.className = "stat-value " + (total > 0 && healthy < total ? "text-bad" : "");
    let bad = 0;
    for (const n of S.nodes.values()) {
      if (OUTCOME_KIND[n.outcome] === "bad") {
        bad++;
      }
    }
    $("sum-nodes").textContent = S.nodes.size + (bad ? " (" + bad + " failing)" : "");
    const expiring = S.certs.filter((c) => c.state !== "valid").length;
    $("sum-certs").textContent = S.certs.length + (expiring ? " (" + expiring + " need attention)" : "");
    $("sum-rps").textContent = fmt(rps);
  }

  function stateOf(a, inst) {
    const hs = a.health.get(inst.id);
    if (hs) {
      return hs.state;
    }
    return inst.draining ? "draining" : "unknown";
  }

  function renderApps() {
    const box = $("apps");
    const names = [...S.apps.keys()].filter((n) => S.apps.get(n).app).sort();
    if (names.length === 0) {
      clear(box).appendChild(h("p", { class: "empty" }, "No apps yet. Declare one with PUT /v1/apps/{name}."));
      return;
    }
    const empty = box.querySelector(".empty");
    if (empty) {
      empty.remove();
    }
    for (const n of names) {
      const a = S.apps.get(n);
      if (!a.dom) {
        a.dom = appCard(a);
      }
      box.appendChild(a.dom.card); // appending again keeps the order sorted
      renderApp(a);
      renderCharts(a);
    }
  }

  function appCard(a) {
    const d = {};
    d.title = h("h3", null, a.name);
    d.meta = h("span", { class: "app-meta" });
    d.rpsSvg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    d.p95Svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    d.rpsSvg.setAttribute("class", "chart");
    d.p95Svg.setAttribute("class", "chart");
    d.rpsSvg.setAttribute("role", "img");
    d.p95Svg.setAttribute("role", "img");
    d.rpsVal = h("span", { class: "chart-value" });
    d.p95Val = h("span", { class: "chart-value" });
    d.rpsMax = h("span", { class: "chart-max" });
    d.p95Max = h("span", { class: "chart-max" });
    d.body = h("tbody");
    d.card = h(
      "article",
      { class: "card app", "data-app": a.name },
      h("header", { class: "app-head" }, d.title, d.meta),
      h(
        "div",
        { class: "charts" },
        h("figure", { class: "chart-box" }, h("figcaption", { title: "Upstream attempts per second (retries count), all instances" }, "Requests/s", d.rpsVal, d.rpsMax), d.rpsSvg),
        h("figure", { class: "chart-box" }, h("figcaption", { title: "95th percentile of upstream response time, of the slowest instance in each window" }, "p95 latency", d.p95Val, d.p95Max), d.p95Svg)
      ),
      h(
        "table",
        { class: "grid instances" },
        h("thead", null, h("tr", null, h("th", null, "Instance"), h("th", null, "Address"), h("th", null, "Health"), h("th", null, "Since"), h("th", { class: "num" }, "Weight"), h("th", { class: "num" }, "Req/s"), h("th", null, "Last error"))),
        d.body
      )
    );
    return d;
  }

  function renderApp(a) {
    if (!a.dom || !a.app) {
      return;
    }
    const spec = a.app.spec || {};
    const net = spec.networking || {};
    const parts = [];
    if (net.domain) {
      parts.push((net.ssl && net.ssl.enabled ? "https" : "http") + "://" + net.domain + (net.external_port ? ":" + net.external_port : ""));
    } else if (net.external_port) {
      parts.push("port " + net.external_port);
    }
    parts.push((spec.lb_method || "round_robin") + (a.auto ? " (auto)" : ""));
    parts.push("revision " + a.revision);
    a.dom.meta.textContent = parts.join(" · ");
    const body = clear(a.dom.body);
    if (a.instances.length === 0) {
      body.appendChild(h("tr", null, h("td", { colspan: 7, class: "empty" }, "No instances registered.")));
      return;
    }
    const list = [...a.instances].sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
    for (const inst of list) {
      const hs = a.health.get(inst.id);
      const state = stateOf(a, inst);
      const addr = (inst.ip.indexOf(":") >= 0 ? "[" + inst.ip + "]" : inst.ip) + ":" + inst.port;
      let label = state === "unknown" ? "not probed yet" : state;
      if (state === "ejected" && hs && hs.ejected_until) {
        label += " until " + hhmmss(hs.ejected_until);
      }
      const tags = [];
      if (inst.backup) {
        tags.push(h("span", { class: "tag" }, "backup"));
      }
      if (inst.draining && state !== "draining") {
        tags.push(h("span", { class: "tag" }, "draining"));
      }
      const factor = a.auto && a.auto.weights ? a.auto.weights[inst.id] : undefined;
      if (factor) {
        tags.push(h("span", { class: "tag", title: "lb_method auto: weight factor from latency (" + (a.auto.reason || "") + ")" }, "auto ×" + factor + "/4"));
      }
      if (inst.load_band) {
        tags.push(h("span", { class: "tag", title: "load band from instance.stats (1 light … 4 saturated)" }, "load " + inst.load_band + "/4"));
      }
      let rps = "–";
      if (a.last && recent(a)) {
        const w = a.last.byAddr.get(addr);
        rps = w ? fmt(w.requests / a.last.secs) : "0";
      }
      const err = hs && hs.last_error ? hs.last_error : "";
      body.appendChild(
        h(
          "tr",
          { "data-app": a.name, "data-instance": inst.id, "data-state": state, class: "state-" + state },
          h("td", { class: "mono" }, inst.id, ...tags),
          h("td", { class: "mono" }, addr),
          h("td", null, badge(label, HEALTH_KIND[state] || "idle")),
          h("td", null, hs ? since(hs.since) : h("span", { class: "muted" }, "–")),
          h("td", { class: "num" }, String(inst.weight || 1)),
          h("td", { class: "num" }, rps),
          h("td", { class: "error-cell fill", title: err }, err || h("span", { class: "muted" }, "—"))
        )
      );
    }
  }

  function renderCharts(a) {
    if (!a.dom) {
      return;
    }
    const t = now();
    const gap = 2.5 * a.windowMs;
    // The last 5 minutes; while there is less history, at least 1 minute
    // and what there is, so a young series is not a sliver at the edge.
    let span = SPAN_MS;
    if (a.series.length > 0) {
      span = Math.min(SPAN_MS, Math.max(60000, t - a.series[0].t + a.windowMs));
    }
    const spanText = span >= SPAN_MS ? "5 min" : span < 120000 ? Math.round(span / 1000) + " s" : Math.round(span / 60000) + " min";
    const rpsMax = window.OrchestryCharts.draw(a.dom.rpsSvg, a.series.map((p) => ({ t: p.t, v: p.rps })), { now: t, spanMs: span, gapMs: gap, cls: "series-rps" });
    const p95Max = window.OrchestryCharts.draw(a.dom.p95Svg, a.series.map((p) => ({ t: p.t, v: p.p95 })), { now: t, spanMs: span, gapMs: gap, cls: "series-p95" });
    const p = recent(a);
    a.dom.rpsVal.textContent = p ? fmt(p.rps, "req/s") : "no traffic";
    a.dom.p95Val.textContent = p ? fmt(p.p95, "ms") : "–";
    a.dom.rpsMax.textContent = "scale " + fmt(rpsMax) + " · last " + spanText;
    a.dom.p95Max.textContent = "scale " + fmt(p95Max) + " ms · last " + spanText;
    a.dom.rpsSvg.setAttribute("aria-label", "Requests per second over the last 5 minutes");
    a.dom.p95Svg.setAttribute("aria-label", "p95 latency over the last 5 minutes");
  }

  function renderNodes() {
    const body = clear($("nodes"));
    const nodes = [...S.nodes.values()].sort((x, y) => (x.node < y.node ? -1 : 1));
    if (nodes.length === 0) {
      body.appendChild(h("tr", null, h("td", { colspan: 5, class: "empty" }, "No NGINX node has reported yet.")));
      return;
    }
    for (const n of nodes) {
      const v = "v" + n.version + (n.attempted && n.attempted !== n.version ? " (tried v" + n.attempted + ")" : "");
      body.appendChild(
        h(
          "tr",
          { "data-node": n.node, "data-outcome": n.outcome },
          h("td", { class: "mono" }, n.node),
          h("td", { class: "mono" }, v),
          h("td", { class: "mono", title: n.hash }, (n.hash || "").replace(/^sha256:/, "").slice(0, 10)),
          h("td", null, badge(n.outcome, OUTCOME_KIND[n.outcome] || "idle")),
          h("td", null, since(n.received_at || n.live_at))
        )
      );
      const notes = [];
      if (n.error) {
        notes.push(n.error);
      }
      for (const p of n.problems || []) {
        notes.push(p.app + ": " + p.reason);
      }
      if (notes.length) {
        body.appendChild(h("tr", { class: "sub-row" }, h("td", { colspan: 5, class: "error-cell wrap" }, notes.join(" · "))));
      }
    }
  }

  function renderCerts() {
    const body = clear($("certs"));
    if (S.certs.length === 0) {
      body.appendChild(h("tr", null, h("td", { colspan: 4, class: "empty" }, "No TLS domains.")));
      return;
    }
    for (const c of S.certs) {
      let exp = h("span", { class: "muted" }, "–");
      if (c.not_after) {
        const left = Date.parse(c.not_after) - now();
        const cls = left < 0 ? "text-bad" : left < 3 * 86400000 ? "text-bad" : left < 14 * 86400000 ? "text-warn" : "";
        exp = h("span", { class: cls, title: c.not_after }, left < 0 ? "expired " + duration(-left) + " ago" : "in " + duration(left));
      }
      body.appendChild(
        h(
          "tr",
          { "data-domain": c.domain },
          h("td", { class: "mono", title: (c.apps || []).join(", ") }, c.domain),
          h("td", null, badge(c.state.replace("_", " "), CERT_KIND[c.state] || "idle")),
          h("td", null, exp),
          h("td", { class: "fill", title: c.issuer || "" }, c.issuer || "–")
        )
      );
      if (c.last_error) {
        const next = c.next_attempt ? " · next attempt " + hhmmss(c.next_attempt) : "";
        body.appendChild(h("tr", { class: "sub-row" }, h("td", { colspan: 4, class: "error-cell wrap" }, c.last_error + next)));
      }
    }
  }

  function shortType(t) {
    return (t || "").replace(TYPE_PREFIX, "").replace(/\.v\d+$/, "");
  }

  function eventKind(rec) {
    const t = shortType(rec.type);
    const d = rec.data || {};
    if (t === "instance.health") {
      return HEALTH_KIND[d.state] || "idle";
    }
    if (t === "config.rendered") {
      return OUTCOME_KIND[d.outcome] || "idle";
    }
    if (t === "cert.failed" || t === "rejected") {
      return "bad";
    }
    return "info";
  }

  function renderEvents() {
    const list = clear($("events"));
    let shown = 0;
    for (const rec of S.events) {
      const t = shortType(rec.type);
      if (t === "metrics.upstream" && !S.showTraffic) {
        continue;
      }
      if (++shown > 40) {
        break;
      }
      list.appendChild(
        h(
          "li",
          { class: "event kind-" + eventKind(rec), "data-type": t, title: rec.subject },
          h("time", { datetime: rec.time }, hhmmss(rec.time)),
          h("span", { class: "event-type" }, t),
          h("span", { class: "event-summary" }, rec.summary || rec.subject || "")
        )
      );
    }
    if (shown === 0) {
      list.appendChild(h("li", { class: "empty" }, S.historyNote || "No events yet."));
    }
  }

  // tick refreshes what time changes: ages, charts, the clock.
  function tick() {
    for (const e of document.querySelectorAll("[data-since]")) {
      e.textContent = ago(e.dataset.since);
    }
    for (const a of S.apps.values()) {
      renderCharts(a);
    }
    if (S.streamState.state === "waiting") {
      renderStream();
    }
    renderSummary();
    $("clock").textContent = new Date(now()).toTimeString().slice(0, 8);
  }

  // ---------- sign-in ----------

  function start() {
    $("login").hidden = true;
    $("stream").hidden = false;
    $("main").hidden = false;
    $("signout").hidden = false;
    S.stream = new window.OrchestrySSE.Stream({
      url: () => "/v1/events/stream",
      headers: () => ({ Authorization: "Bearer " + S.token }),
      onEvent: onStreamEvent,
      onStatus: onStreamStatus,
      onOpen: onStreamOpen,
    });
    S.stream.start();
    loadSnapshot();
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    S.token = "";
    if (S.stream) {
      S.stream.stop();
      S.stream = null;
    }
    clearInterval(S.pollTimer);
    S.pollTimer = null;
    S.apps.clear();
    S.nodes.clear();
    S.events = [];
    S.seen.clear();
    clear($("apps"));
    S.streamState = { state: "idle" };
    renderStream();
    $("main").hidden = true;
    $("stream").hidden = true;
    $("signout").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    $("token").focus();
  }

  function init() {
    // A token handed over in the fragment (#token=...) is taken once and
    // removed from the address bar and the history entry.
    const frag = new URLSearchParams(location.hash.slice(1));
    if (frag.has("token")) {
      sessionStorage.setItem(TOKEN_KEY, frag.get("token"));
      history.replaceState(null, "", location.pathname + location.search);
    }
    $("login-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const v = $("token").value.trim();
      if (!v) {
        return;
      }
      $("token").value = "";
      sessionStorage.setItem(TOKEN_KEY, v);
      S.token = v;
      start();
    });
    $("signout").addEventListener("click", () => signOut(""));
    const toggle = $("show-traffic");
    toggle.addEventListener("change", () => {
      S.showTraffic = toggle.checked;
      renderEvents();
    });
    setInterval(tick, 1000);
    tick();
    S.token = sessionStorage.getItem(TOKEN_KEY) || "";
    if (S.token) {
      start();
    } else {
      signOut("");
    }
  }

  document.addEventListener("DOMContentLoaded", init);
})();
