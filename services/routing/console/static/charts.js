// Orchestry console: small time-series charts drawn as SVG, no library.
"use strict";

(function (global) {
  const NS = "http://www.w3.org/2000/svg";
  const W = 300;
  const H = 64;
  const PAD_TOP = 6;
  const PAD_BOTTOM = 4;

  function el(name, attrs) {
    const e = document.createElementNS(NS, name);
    for (const k in attrs) {
      e.setAttribute(k, attrs[k]);
    }
    return e;
  }

  // niceMax rounds v up to 1, 2 or 5 times a power of ten.
  function niceMax(v) {
    if (!(v > 0)) {
      return 1;
    }
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 5, 10]) {
      if (v <= m * p) {
        return m * p;
      }
    }
    return 10 * p;
  }

  // draw renders points [{t (ms), v}] over the span [now-spanMs, now] into
  // svg (replacing its content). gapMs: a longer gap between two points
  // drops the line to zero (no traffic was reported in between).
  function draw(svg, points, opts) {
    const now = opts.now;
    const from = now - opts.spanMs;
    while (svg.firstChild) {
      svg.removeChild(svg.firstChild);
    }
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    svg.setAttribute("preserveAspectRatio", "none");
    const pts = points.filter((p) => p.t >= from);
    let max = 0;
    for (const p of pts) {
      max = Math.max(max, p.v);
    }
    max = niceMax(max);
    const x = (t) => ((t - from) / opts.spanMs) * W;
    const y = (v) => H - PAD_BOTTOM - (v / max) * (H - PAD_TOP - PAD_BOTTOM);
    // Grid: the top (max) and middle lines.
    for (const f of [0, 0.5]) {
      const gy = PAD_TOP + f * (H - PAD_TOP - PAD_BOTTOM);
      svg.appendChild(el("line", { x1: 0, x2: W, y1: gy, y2: gy, class: "chart-grid" }));
    }
    svg.appendChild(el("line", { x1: 0, x2: W, y1: H - PAD_BOTTOM, y2: H - PAD_BOTTOM, class: "chart-axis" }));
    if (pts.length === 0) {
      return max;
    }
    // The line, dropping to zero across gaps.
    const seq = [];
    let prev = null;
    for (const p of pts) {
      if (prev && p.t - prev.t > opts.gapMs) {
        seq.push([x(prev.t + opts.gapMs / 2), y(0)], [x(p.t - opts.gapMs / 2), y(0)]);
      }
      seq.push([x(p.t), y(p.v)]);
      prev = p;
    }
    const line = seq.map((q, i) => (i ? "L" : "M") + q[0].toFixed(1) + " " + q[1].toFixed(1)).join(" ");
    const area = line + " L" + seq[seq.length - 1][0].toFixed(1) + " " + y(0) + " L" + seq[0][0].toFixed(1) + " " + y(0) + " Z";
    svg.appendChild(el("path", { d: area, class: "chart-area " + opts.cls }));
    svg.appendChild(el("path", { d: line, class: "chart-line " + opts.cls, "vector-effect": "non-scaling-stroke" }));
    const last = seq[seq.length - 1];
    svg.appendChild(el("circle", { cx: last[0], cy: last[1], r: 2.2, class: "chart-dot " + opts.cls }));
    return max;
  }

  global.OrchestryCharts = { draw: draw, niceMax: niceMax };
})(window);
