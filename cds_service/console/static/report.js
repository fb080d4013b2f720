/* Tester's console, governance report: override rate per recommendation per period, drawn
   from the persistence layer's JSON report (fetched with a signed JWT like any client). */
"use strict";

(function () {
  var cfg = Console.data();
  var el = Console.el;

  function $(id) { return document.getElementById(id); }

  /* The report's rows: camelCase, fields without a value omitted (snake_case tolerated). */
  function normalise(row) {
    var rate = row.overrideRate !== undefined ? row.overrideRate : row.override_rate;
    return {
      recommendation: row.recommendationId || row.recommendation_id || "(no recommendation id)",
      period: row.periodStart || row.period_start,
      shown: row.shown || 0, accepted: row.accepted || 0, overridden: row.overridden || 0,
      silent: row.wouldHaveFired || row.would_have_fired || 0,
      patients: row.patients || 0,
      silentPatients: row.patientsWouldHaveFired || row.patients_would_have_fired || 0,
      rate: rate === undefined ? null : rate,
      reasons: row.topOverrideReasons || row.top_override_reasons || []
    };
  }

  function percent(rate) { return rate === null || rate === undefined ? "–" : Math.round(rate * 100) + " %"; }

  function reasons(row) {
    return row.reasons.map(function (r) {
      return (r.display || r.code || "no reason") + " (" + r.count + ")";
    }).join(", ") || "–";
  }

  function numbers(rows) {
    var head = el("tr", {}, ["Period from", "Shown", "Patients", "Would have fired (silent)", "Patients (silent)",
      "Accepted", "Overridden", "Override rate", "Top override reasons"].map(
      function (t) { return el("th", { scope: "col", text: t }); }));
    var body = rows.map(function (r) {
      return el("tr", {}, [r.period, String(r.shown), String(r.patients), String(r.silent),
        String(r.silentPatients), String(r.accepted), String(r.overridden),
        percent(r.rate), reasons(r)].map(function (t) { return el("td", { text: t }); }));
    });
    return el("table", { "class": "report-numbers" }, [el("thead", {}, [head]), el("tbody", {}, body)]);
  }

  function panel(recommendation, rows) {
    var sorted = rows.slice().sort(function (a, b) { return a.period < b.period ? -1 : 1; });
    var chart = el("div", { "class": "chart-box" });
    var mode = (cfg.rollout || {})[recommendation];
    var section = el("section", { "class": "panel", "aria-label": "Recommendation " + recommendation }, [
      el("h2", { text: recommendation }),
      el("p", { "class": "rollout rollout-" + (mode || "unknown"), text: "Rollout: " + (mode || "not in this knowledge") }),
      el("p", { "class": "muted", text: "Override rate per " + cfg.period + " (overridden ÷ accepted + overridden)" }),
      chart, numbers(sorted)
    ]);
    Chart.line(chart, {
      points: sorted.filter(function (r) { return r.rate !== null; }).map(function (r) {
        return { x: Date.parse(r.period + "T00:00:00Z"), y: r.rate * 100, label: r.period };
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
    (result.body.rows || []).map(normalise).forEach(function (row) {
      (groups[row.recommendation] = groups[row.recommendation] || []).push(row);
    });
    var box = $("report");
    box.textContent = "";
    var keys = Object.keys(groups).sort();
    var unknown = result.body.feedbackForUnknownCards || 0;
    $("report-status").textContent = (keys.length
      ? keys.length + " recommendation" + (keys.length === 1 ? "" : "s") + " with cards shown or held back (silent)."
      : "No cards shown yet: fire some hooks from a patient's page first.") +
      (unknown ? " " + unknown + " feedback item(s) named cards this service never issued." : "");
    var grid = el("div", { "class": "report-grid" }, keys.map(function (k) { return panel(k, groups[k]); }));
    box.appendChild(grid);
  }

  var held = Object.keys(cfg.rollout || {}).filter(function (k) { return cfg.rollout[k] !== "active"; });
  $("rollout-modes").textContent = held.length
    ? "Not active: " + held.map(function (k) { return k + " " + cfg.rollout[k]; }).join(", ") +
      " (silent: evaluated and recorded, not shown; off: not evaluated)."
    : "Every recommendation is active.";

  $("report-form").addEventListener("submit", load);
  load(null);
})();
