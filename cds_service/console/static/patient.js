/* Tester's console, patient page: fire hooks, render cards as EHRs do, apply suggestions to
   the draft orders, send feedback, draw the CK and weight trends. */
"use strict";

(function () {
  var cfg = Console.data();
  var el = Console.el;
  var UCUM = "http://unitsofmeasure.org";
  var RANK = { critical: 0, warning: 1, info: 2 };
  var LABEL = { critical: "Critical", warning: "Warning", info: "Info" };
  var draft = (cfg.draft || []).slice();
  var changed = {};

  function $(id) { return document.getElementById(id); }
  function ref(resource) { return resource.resourceType + "/" + resource.id; }
  function say(text) { $("call-status").textContent = text; }

  /* ---- draft orders ---- */
  function codingText(concept) {
    if (!concept) { return ""; }
    if (concept.text) { return concept.text; }
    var coded = (concept.coding || []).filter(function (c) { return c.display || c.code; })[0];
    return coded ? (coded.display || coded.code) : "";
  }

  var UNITS = { h: "hour", d: "day", wk: "week", mo: "month" };
  var TIMES = { 1: "once", 2: "twice" };

  function describeTiming(repeat) {
    var times = TIMES[repeat.frequency] || repeat.frequency + " times";
    var period = repeat.period || 1;
    var unit = UNITS[repeat.periodUnit] || repeat.periodUnit || "";
    if (period === 1 && (unit === "day" || unit === "week")) { return times + " " + (unit === "day" ? "daily" : "weekly"); }
    return times + " every " + (period === 1 ? unit : period + " " + unit + "s");
  }

  function describeDosage(dosage) {
    if (!dosage) { return "no dosage"; }
    if (dosage.text) { return dosage.text; }
    var dose = ((dosage.doseAndRate || [])[0] || {}).doseQuantity;
    var repeat = (dosage.timing || {}).repeat || {};
    var parts = [];
    if (dose) { parts.push(dose.value + " " + (dose.unit || dose.code || "")); }
    if (dosage.route) { parts.push(codingText(dosage.route)); }
    if (repeat.frequency) { parts.push(describeTiming(repeat)); }
    return parts.join(" ") || "no dosage";
  }

  function describe(resource) {
    if (resource.resourceType === "MedicationRequest") {
      var name = codingText(resource.medicationCodeableConcept) ||
        (resource.medicationReference || {}).display || "medication not given";
      var supply = (resource.dispenseRequest || {}).expectedSupplyDuration;
      return name + ": " + describeDosage((resource.dosageInstruction || [])[0]) +
        (supply ? " · supply " + supply.value + " " + (supply.unit || supply.code || "") : "");
    }
    return codingText(resource.code) || resource.resourceType;
  }

  function renderDraft() {
    var list = $("draft-list");
    list.textContent = "";
    if (!draft.length) {
      list.appendChild(el("li", { "class": "muted", text: "No draft orders." }));
    }
    draft.forEach(function (resource) {
      var key = ref(resource);
      var note = changed[key] ? el("span", { "class": "badge changed", text: changed[key] }) : null;
      list.appendChild(el("li", { "class": "draft-item", "data-ref": key }, [
        el("span", { "class": "draft-type", text: resource.resourceType }),
        el("span", { "class": "draft-text", text: describe(resource) }),
        note,
        el("button", { type: "button", "class": "small", "aria-label": "Remove " + describe(resource),
          text: "Remove", onclick: function () { removeDraft(key); } })
      ]));
    });
    $("draft-json").textContent = Console.pretty(draft);
  }

  function removeDraft(key) {
    draft = draft.filter(function (r) { return ref(r) !== key; });
    delete changed[key];
    renderDraft();
    say("Removed " + key + " from the draft.");
  }

  function upsert(resource, how) {
    var key = ref(resource);
    var at = draft.findIndex(function (r) { return ref(r) === key; });
    if (at >= 0) { draft[at] = resource; } else { draft.push(resource); }
    changed[key] = how;
  }

  /* CDS Hooks 'Action': create adds, update replaces the whole resource, delete removes. */
  function apply(action) {
    if (action.type === "create" && action.resource) {
      var created = JSON.parse(JSON.stringify(action.resource));
      if (!created.id) { created.id = "console-" + Console.uuid().slice(0, 8); }
      upsert(created, "created");
      return "created " + ref(created);
    }
    if (action.type === "update" && action.resource) {
      upsert(JSON.parse(JSON.stringify(action.resource)), "updated");
      return "updated " + ref(action.resource);
    }
    if (action.type === "delete") {
      var target = action.resourceId || (action.resource ? ref(action.resource) : "");
      var before = draft.length;
      draft = draft.filter(function (r) { return ref(r) !== target; });
      return before === draft.length ? "nothing to delete for " + target : "deleted " + target;
    }
    return "ignored a " + action.type + " action";
  }

  /* ---- hook calls ---- */
  function baseContext() {
    return { userId: cfg.userId, patientId: cfg.patientId };
  }

  async function send(serviceId, body) {
    var path = "/cds-services/" + encodeURIComponent(serviceId);
    $("request-json").textContent = "POST " + path + "\n" + Console.pretty(body);
    $("response-json").textContent = "(waiting…)";
    var started = performance.now();
    var result = await Console.call(cfg, "POST", path, body);
    var ms = Math.round(performance.now() - started);
    $("response-json").textContent = "HTTP " + result.status + " in " + ms + " ms\n" + Console.pretty(result.body);
    if (!result.ok) {
      say("The service answered " + Console.errorText(result));
      renderCards([], serviceId, "The call failed: " + Console.errorText(result));
      return;
    }
    var cards = (result.body && result.body.cards) || [];
    say(serviceId + " answered " + cards.length + " card" + (cards.length === 1 ? "" : "s") + " in " + ms + " ms.");
    renderCards(cards, serviceId);
    renderNotes(result.body || {});
  }

  /* What the service could not see, and system actions: shown above the cards. */
  function renderNotes(body) {
    var box = $("cards");
    var missing = (body.extension || {})["org.cds-myopathy.unavailable-inputs"] || {};
    var keys = Object.keys(missing);
    if (keys.length) {
      box.insertBefore(el("div", { "class": "note" }, [
        el("p", { text: "The service could not use these inputs:" }),
        el("ul", {}, keys.map(function (k) { return el("li", { text: k + ": " + missing[k] }); }))
      ]), box.firstChild);
    }
    var held = (body.extension || {})["org.cds-myopathy.snoozed"] || [];
    if (held.length) {
      box.appendChild(el("div", { "class": "note" }, [
        el("p", { text: "Not repeated (overridden with a reason recently, site policy):" }),
        el("ul", {}, held.map(function (h) {
          return el("li", { text: h.recommendationId + " (" + h.problem + "), for " + h.snoozeDays + " days" });
        }))
      ]));
    }
    var actions = body.systemActions || [];
    if (actions.length) {
      box.appendChild(el("div", { "class": "note" }, [
        el("p", { text: "System actions (an EHR would apply these without asking):" }),
        el("ul", {}, actions.map(function (a) { return el("li", { text: a.type + ": " + (a.description || "") }); }))
      ]));
    }
  }

  function firePatientView() {
    send(cfg.services["patient-view"], {
      hook: "patient-view", hookInstance: Console.uuid(), context: baseContext(), prefetch: cfg.prefetch
    }).catch(failed);
  }

  function fireOrderSelect(selected) {
    var orders = draft.filter(function (r) { return r.resourceType === "MedicationRequest" || r.resourceType === "ServiceRequest"; });
    if (!orders.length) { say("There are no draft orders to check. Compose one first."); return; }
    var context = baseContext();
    context.selections = selected || orders.filter(function (r) { return r.resourceType === "MedicationRequest"; }).map(ref);
    context.draftOrders = { resourceType: "Bundle", type: "collection", entry: orders.map(function (r) { return { resource: r }; }) };
    send(cfg.services["order-select"], {
      hook: "order-select", hookInstance: Console.uuid(), context: context, prefetch: cfg.prefetch
    }).catch(failed);
  }

  function failed(error) { say("The call could not be made: " + error.message); }

  /* ---- cards ---- */
  function renderCards(cards, serviceId, message) {
    var box = $("cards");
    box.textContent = "";
    if (message) { box.appendChild(el("p", { "class": "error", text: message })); return; }
    if (!cards.length) { box.appendChild(el("p", { "class": "muted", text: "No cards: the service has nothing to say." })); return; }
    cards.map(function (card, i) { return { card: card, i: i }; })
      .sort(function (a, b) { return (RANK[a.card.indicator] - RANK[b.card.indicator]) || (a.i - b.i); })
      .forEach(function (item) { box.appendChild(renderCard(item.card, item.i, serviceId)); });
  }

  function renderCard(card, index, serviceId) {
    var id = "card-" + index;
    var indicator = RANK[card.indicator] === undefined ? "info" : card.indicator;
    var status = el("p", { "class": "card-status", role: "status" });
    var provenance = (card.extension || {})["org.cds-myopathy.provenance"] || {};
    var recommendation = provenance.recommendationId;
    var node = el("article", { "class": "card card-" + indicator, "aria-labelledby": id + "-summary",
      "data-card-uuid": card.uuid, "data-recommendation": recommendation }, [
      el("header", { "class": "card-head" }, [
        el("span", { "class": "indicator indicator-" + indicator, text: LABEL[indicator] }),
        el("h3", { id: id + "-summary", text: card.summary }),
        recommendation ? el("span", { "class": "rec-id", title: "Recommendation id", text: recommendation }) : null
      ])
    ]);
    if (card.detail) { node.appendChild(Markdown.render(card.detail, el("div", { "class": "detail" }))); }
    node.appendChild(renderSource(card.source || {}));
    var buttons = (card.suggestions || []).map(function (s) {
      return el("button", { type: "button", "class": s.isRecommended ? "suggestion primary" : "suggestion",
        text: s.label + (s.isRecommended ? " (recommended)" : ""),
        onclick: function (event) { event.currentTarget.disabled = true; accept(card, s, serviceId, node, status); } });
    });
    if (buttons.length) {
      node.appendChild(el("div", { "class": "suggestions", role: "group", "aria-label": "Suggestions" }, buttons));
    }
    if ((card.links || []).length) { node.appendChild(renderLinks(card.links)); }
    if (card.uuid) { node.appendChild(renderOverride(card, serviceId, node, status)); }
    node.appendChild(status);
    return node;
  }

  function renderSource(source) {
    var label = source.url && /^https?:/i.test(source.url)
      ? el("a", { href: source.url, target: "_blank", rel: "noopener noreferrer", text: source.label })
      : el("span", { text: source.label || "unknown" });
    var topic = source.topic && (source.topic.display || source.topic.code);
    return el("p", { "class": "source" }, ["Source: ", label, topic ? " · " + topic : null]);
  }

  function renderLinks(links) {
    return el("ul", { "class": "links" }, links.map(function (link) {
      var safe = /^https?:/i.test(link.url || "");
      var anchor = safe ? el("a", { href: link.url, target: "_blank", rel: "noopener noreferrer", text: link.label })
        : el("span", { text: link.label });
      return el("li", {}, [anchor, link.type === "smart" ? " (SMART app: launched by an EHR, not by this console)" : null]);
    }));
  }

  function renderOverride(card, serviceId, node, status) {
    var reasons = card.overrideReasons || [];
    var n = node.getAttribute("aria-labelledby").replace("-summary", "");
    var select = el("select", { id: n + "-reason", name: "reason" },
      [el("option", { value: "", text: reasons.length ? "Choose a reason" : "No reason offered" })].concat(
        reasons.map(function (r, i) { return el("option", { value: String(i), text: r.display || r.code }); })));
    if (reasons.length) { select.setAttribute("required", ""); }
    var comment = el("textarea", { id: n + "-comment", name: "comment", rows: "2" });
    var form = el("form", { "class": "override-form" }, [
      el("label", { "for": n + "-reason", text: "Override reason" }), select,
      el("label", { "for": n + "-comment", text: "Comment (optional)" }), comment,
      el("button", { type: "submit", text: "Override card" })
    ]);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var reason = select.value === "" ? null : reasons[Number(select.value)];
      override(card, reason, comment.value.trim(), serviceId, node, status);
    });
    return el("details", { "class": "override" }, [el("summary", { text: "Override…" }), form]);
  }

  function lock(node) {
    node.querySelectorAll("button, select, textarea").forEach(function (c) { c.disabled = true; });
  }

  async function accept(card, suggestion, serviceId, node, status) {
    var done = (suggestion.actions || []).map(apply);
    renderDraft();
    if (card.selectionBehavior === "at-most-one" || !card.uuid) {
      node.querySelectorAll("button.suggestion").forEach(function (b) { b.disabled = true; });
    }
    var text = "Accepted “" + suggestion.label + "”: " + (done.join("; ") || "no action") + ".";
    status.textContent = text;
    if (!card.uuid) { return; }
    var item = { card: card.uuid, outcome: "accepted", outcomeTimestamp: new Date().toISOString() };
    if (suggestion.uuid) { item.acceptedSuggestions = [{ id: suggestion.uuid }]; }
    var result = await feedback(serviceId, item);
    status.textContent = text + " " + (result.ok ? "Feedback stored." : "Feedback failed: " + Console.errorText(result));
    status.classList.toggle("error", !result.ok);
    node.classList.add("answered");
  }

  async function override(card, reason, comment, serviceId, node, status) {
    var item = { card: card.uuid, outcome: "overridden", outcomeTimestamp: new Date().toISOString() };
    var why = {};
    if (reason) { why.reason = reason; }
    if (comment) { why.userComment = comment; }
    if (Object.keys(why).length) { item.overrideReason = why; }
    var result = await feedback(serviceId, item);
    if (result.ok) {
      lock(node);
      node.classList.add("answered");
      status.textContent = "Overridden" + (reason ? " (" + (reason.display || reason.code) + ")" : "") + ". Feedback stored.";
    } else {
      status.textContent = "Feedback failed: " + Console.errorText(result);
    }
    status.classList.toggle("error", !result.ok);
  }

  async function feedback(serviceId, item) {
    var path = "/cds-services/" + encodeURIComponent(serviceId) + "/feedback";
    var body = { feedback: [item] };
    var result;
    try { result = await Console.call(cfg, "POST", path, body); }
    catch (error) { result = { ok: false, status: 0, body: { error: { message: error.message } } }; }
    $("feedback-json").textContent = "POST " + path + "\n" + Console.pretty(body) +
      "\n\nHTTP " + result.status + "\n" + Console.pretty(result.body);
    return result;
  }

  /* ---- order composer ---- */
  function fillSelect(select, items, label, group) {
    var groups = {};
    items.forEach(function (item, i) {
      var option = el("option", { value: String(i), text: label(item) });
      var name = group ? group(item) : null;
      if (!name) { select.appendChild(option); return; }
      if (!groups[name]) { groups[name] = el("optgroup", { label: name }); select.appendChild(groups[name]); }
      groups[name].appendChild(option);
    });
  }

  function composeOrder() {
    var drug = cfg.drugs[Number($("drug").value)];
    var unit = cfg.units[Number($("unit").value)];
    var freq = cfg.frequencies[Number($("frequency").value)];
    var route = cfg.routes[Number($("route").value)];
    var dose = Number($("dose").value);
    var days = Number($("duration").value);
    var concept = { text: drug.name };
    if (drug.coding && drug.coding.system && drug.coding.code) { concept.coding = [drug.coding]; }
    var repeat = { frequency: freq.frequency, period: freq.period, periodUnit: freq.periodUnit };
    if (days) { repeat.boundsDuration = { value: days, unit: "days", system: UCUM, code: "d" }; }
    var order = {
      resourceType: "MedicationRequest", id: "console-" + Console.uuid().slice(0, 8), status: "draft",
      intent: "order", subject: { reference: "Patient/" + cfg.patientId }, authoredOn: new Date().toISOString(),
      medicationCodeableConcept: concept,
      dosageInstruction: [{
        text: dose + " " + unit + " " + route.label + " " + freq.label + (days ? " for " + days + " days" : ""),
        timing: { repeat: repeat },
        route: { coding: [route.coding], text: route.label },
        doseAndRate: [{ doseQuantity: { value: dose, unit: unit, system: UCUM, code: unit } }]
      }]
    };
    if (days) { order.dispenseRequest = { expectedSupplyDuration: { value: days, unit: "days", system: UCUM, code: "d" } }; }
    return order;
  }

  function setUpComposer() {
    fillSelect($("drug"), cfg.drugs, function (d) { return d.name; }, function (d) { return d.group; });
    fillSelect($("unit"), cfg.units, function (u) { return u; });
    fillSelect($("frequency"), cfg.frequencies, function (f) { return f.label; });
    fillSelect($("route"), cfg.routes, function (r) { return r.label; });
    $("order-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var order = composeOrder();
      draft.push(order);
      changed[ref(order)] = "new";
      renderDraft();
      fireOrderSelect([ref(order)]);
    });
  }

  /* ---- trends ---- */
  function drawTrends() {
    var ck = (cfg.trends.ck || []).map(function (p) { return { x: Date.parse(p.t), y: p.v, unit: p.unit, uln: p.uln }; });
    var withUln = ck.filter(function (p) { return p.uln !== undefined; });
    var uln = withUln.length ? withUln[withUln.length - 1].uln : null;
    var ckUnit = ck.length ? ck[ck.length - 1].unit || "U/L" : "U/L";
    // No reference range on the results: the service uses its site-policy default, so do we.
    var source = "upper limit of normal";
    if (uln === null && cfg.ckDefaultUln !== null && cfg.ckDefaultUln !== undefined) {
      uln = cfg.ckDefaultUln;
      source = "site-policy upper limit";
    }
    var label = source + " " + uln + " " + ckUnit;
    Chart.line($("ck-chart"), {
      points: ck, unit: ckUnit, yTitle: "CK",
      threshold: uln === null ? null : { value: uln, label: label, short: "ULN" },
      describe: "CK over time: " + ck.length + " values" + (uln === null ? ", no upper limit known" : ", " + label),
      emptyText: "No CK result on record."
    });
    var weight = (cfg.trends.weight || []).map(function (p) { return { x: Date.parse(p.t), y: p.v, unit: p.unit }; });
    var wUnit = weight.length ? weight[weight.length - 1].unit || "kg" : "kg";
    Chart.line($("weight-chart"), {
      points: weight, unit: wUnit, yTitle: "Weight", fromMin: true,
      describe: "Body weight over time: " + weight.length + " values",
      emptyText: "No body weight on record: weight-based doses cannot be computed."
    });
  }

  $("fire-patient-view").addEventListener("click", firePatientView);
  $("fire-order-select").addEventListener("click", function () { fireOrderSelect(null); });
  setUpComposer();
  renderDraft();
  drawTrends();
})();
