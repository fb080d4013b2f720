/* Hand-drawn SVG line charts (no library): a time series with an optional threshold line,
   plus the same numbers as a table for screen readers and exact reading. */
"use strict";

var Chart = (function () {
  var NS = "http://www.w3.org/2000/svg";
  var W = 560, H = 220, PAD = { left: 56, right: 16, top: 16, bottom: 36 };
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

  function svg(tag, attrs, text) {
    var node = document.createElementNS(NS, tag);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function niceMax(value) {
    if (value <= 0) { return 1; }
    var step = Math.pow(10, Math.floor(Math.log10(value)));
    var choices = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < choices.length; i++) {
      if (choices[i] * step >= value) { return choices[i] * step; }
    }
    return 10 * step;
  }

  function shortDate(ms) {
    var d = new Date(ms);
    return d.getUTCDate() + " " + MONTHS[d.getUTCMonth()] + " " + String(d.getUTCFullYear()).slice(2);
  }

  function fmt(v) { return Math.abs(v) >= 100 ? String(Math.round(v)) : String(Math.round(v * 10) / 10); }

  /* opts: points [{x (ms), y, label?}], unit, yLabel, threshold {value, label}, describe, fixedMax */
  function line(container, opts) {
    container.textContent = "";
    var points = opts.points.filter(function (p) { return p.y !== null && p.y !== undefined; });
    if (!points.length) {
      container.appendChild(Console.el("p", { "class": "muted", text: opts.emptyText || "No values on record." }));
      return;
    }
    var xs = points.map(function (p) { return p.x; });
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    if (x0 === x1) { x0 -= 86400000; x1 += 86400000; }
    var peak = Math.max.apply(null, points.map(function (p) { return p.y; }).concat(
      opts.threshold ? [opts.threshold.value] : [])) * 1.1;
    // Weight changes of a few kg matter for dosing: start the axis near the values, not at 0.
    // Round tick steps (1, 2, 2.5, 5 x 10^n), at most four intervals.
    var step = opts.fixedMax ? opts.fixedMax / 4 : niceMax(peak / 4);
    var top = opts.fixedMax || Math.max(1, Math.ceil(peak / step)) * step;
    var bottom = 0;
    if (opts.fromMin) {
      var ys = points.map(function (p) { return p.y; });
      var low = Math.min.apply(null, ys), high = Math.max.apply(null, ys);
      step = niceMax(Math.max((high - low) / 3, Math.abs(high) * 0.02, 0.1));
      bottom = Math.max(0, (Math.floor(low / step) - 1) * step);
      top = (Math.floor(high / step) + 1) * step;
    }
    var pw = W - PAD.left - PAD.right, ph = H - PAD.top - PAD.bottom;
    var sx = function (x) { return PAD.left + (x - x0) / (x1 - x0) * pw; };
    var sy = function (y) { return PAD.top + ph - (y - bottom) / (top - bottom) * ph; };

    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "class": "chart-svg",
      "aria-label": opts.describe });
    root.appendChild(svg("title", {}, opts.describe));
    for (var i = 0; bottom + i * step <= top + step / 1000; i++) {
      var v = bottom + i * step, y = sy(v);
      root.appendChild(svg("line", { x1: PAD.left, x2: W - PAD.right, y1: y, y2: y, "class": "grid" }));
      root.appendChild(svg("text", { x: PAD.left - 6, y: y + 4, "text-anchor": "end", "class": "tick" }, fmt(v)));
    }
    root.appendChild(svg("text", { x: 12, y: PAD.top + ph / 2, "class": "axis-label",
      transform: "rotate(-90 12 " + (PAD.top + ph / 2) + ")", "text-anchor": "middle" }, opts.unit || ""));
    var ticks = Math.min(4, points.length);
    for (var t = 0; t <= ticks; t++) {
      var tx = x0 + (x1 - x0) * t / Math.max(1, ticks);
      root.appendChild(svg("text", { x: sx(tx), y: H - 12, "text-anchor": t === 0 ? "start" : (t === ticks ? "end" : "middle"),
        "class": "tick" }, opts.xLabel ? opts.xLabel(tx) : shortDate(tx)));
    }
    if (opts.threshold) {
      var ty = sy(opts.threshold.value);
      root.appendChild(svg("line", { x1: PAD.left, x2: W - PAD.right, y1: ty, y2: ty, "class": "threshold" }));
      root.appendChild(svg("text", { x: W - PAD.right - 4, y: ty - 6, "text-anchor": "end", "class": "threshold-label" },
        opts.threshold.label));
    }
    var sorted = points.slice().sort(function (a, b) { return a.x - b.x; });
    root.appendChild(svg("polyline", { "class": "series", fill: "none",
      points: sorted.map(function (p) { return sx(p.x) + "," + sy(p.y); }).join(" ") }));
    sorted.forEach(function (p) {
      var above = opts.threshold && p.y > opts.threshold.value;
      var dot = svg("circle", { cx: sx(p.x), cy: sy(p.y), r: 4.5, "class": above ? "point above" : "point" });
      dot.appendChild(svg("title", {}, (p.label || shortDate(p.x)) + ": " + fmt(p.y) + " " + (opts.unit || "")));
      root.appendChild(dot);
    });
    container.appendChild(root);
    if (opts.table !== false) { container.appendChild(table(sorted, opts)); }
  }

  function table(points, opts) {
    var rows = points.map(function (p) {
      var flag = opts.threshold && p.y > opts.threshold.value ? " (above " + opts.threshold.short + ")" : "";
      return Console.el("tr", {}, [
        Console.el("td", { text: p.label || shortDate(p.x) }),
        Console.el("td", { text: fmt(p.y) + " " + (opts.unit || "") + flag })
      ]);
    });
    return Console.el("details", { "class": "chart-table" }, [
      Console.el("summary", { text: "Values as a table" }),
      Console.el("table", {}, [
        Console.el("thead", {}, [Console.el("tr", {}, [
          Console.el("th", { scope: "col", text: opts.xTitle || "Date" }),
          Console.el("th", { scope: "col", text: opts.yTitle || "Value" })
        ])]),
        Console.el("tbody", {}, rows)
      ])
    ]);
  }

  return { line: line, shortDate: shortDate };
})();
