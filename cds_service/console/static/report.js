/* Tester's console, governance report: override rate per recommendation per period, drawn
   from the persistence layer's JSON report (fetched with a signed JWT like any client). */
"use strict";

(function () {
  var cfg = Console.data();
  var el = Console.el;

  function $(id) { return document.getElementById(id); }

  function percent(rate) { return rate === null || rate === undefined ? "–" : Math.round(rate * 100) + " %"; }

  function reasons(row) {
    return (row.top_override_reasons || []).map(function (r) {
      return (r.display || r.code || "no reason") + " (" + r.count + ")";
    }).join(", ") || "–";
  }

  function numbers(rows) {
    var head = el("tr", {}, ["Period from", "Shown", "Accepted", "Overridden", "Override rate", "Top override reasons"].map(
      function (t) { return el("th", { scope: "col", text: t }); }));
    var body = rows.map(function (r) {
      return el("tr", {}, [r.period_start, String(r.shown), String(r.accepted), String(r.overridden),
        percent(r.override_rate), reasons(r)].map(function (t) { return el("td", { text: t }); }));
    });
    return el("table", { "class": "report-numbers" }, [el("thead", {}, [head]), el("tbody", {}, body)]);
  }

  function panel(recommendation, rows) {
    var sorted = rows.slice().sort(function (a, b) { return a.period_start < b.period_start ? -1 : 1; });
    var chart = el("div", { "class": "chart-box" });
    var section = el("section", { "class": "panel", "aria-label": "Recommendation " + recommendation }, [
      el("h2", { text: recommendation }),
      el("p", { "class": "muted", text: "Override rate per " + cfg.period + " (overridden ÷ accepted + overridden)" }),
      chart, numbers(sorted)
    ]);
    Chart.line(chart, {
      points: sorted.filter(function (r) { return r.override_rate !== null; }).map(function (r) {
        return { x: Date.parse(r.period_start + "T00:00:00Z"), y: r.override_rate * 100, label: r.period_start };
      }),
      unit: "%", fixedMax: 100, table: false, xTitle: "Period from", yTitle: "Override rate",
      describe: "Override rate of " + recommendation + " per " + cfg.period,
      emptyText: "Cards shown, but no feedback yet."
    });
    return section;
  }

  async function load(event) {
    if (event) { event.preventDefault(); }
    if (!cfg.reportUrl) { $("report-status").textContent = "This service has no override report endpoint."; return; }
    cfg.period = $("period").value;
    $("report-status").textContent = "Loading…";
    var result;
    try { result = await Console.call(cfg, "GET", cfg.reportUrl + "?period=" + encodeURIComponent(cfg.period)); }
    catch (error) { $("report-status").textContent = "Could not load the report: " + error.message; return; }
    $("report-json").textContent = Console.pretty(result.body);
    if (!result.ok) { $("report-status").textContent = "Could not load the report: " + Console.errorText(result); return; }
    var groups = {};
    (result.body.rows || []).forEach(function (row) {
      var key = row.recommendation_id || "(no recommendation id)";
      (groups[key] = groups[key] || []).push(row);
    });
    var box = $("report");
    box.textContent = "";
    var keys = Object.keys(groups).sort();
    $("report-status").textContent = keys.length
      ? keys.length + " recommendation" + (keys.length === 1 ? "" : "s") + " with cards shown."
      : "No cards shown yet: fire some hooks from a patient's page first.";
    var grid = el("div", { "class": "report-grid" }, keys.map(function (k) { return panel(k, groups[k]); }));
    box.appendChild(grid);
  }

  $("report-form").addEventListener("submit", load);
  load(null);
})();
