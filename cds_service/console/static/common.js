/* Tester's console: shared helpers (page data, signed calls to the real CDS Hooks endpoints). */
"use strict";

var Console = (function () {
  function data() {
    var node = document.getElementById("console-data");
    return node ? JSON.parse(node.textContent) : {};
  }

  function uuid() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    var b = new Uint8Array(16);
    window.crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  /* A fresh JWT per call: its aud is exactly the URL called (CDS Hooks 'Trusting CDS Clients'). */
  async function token(cfg, path) {
    var answer = await fetch(cfg.tokenUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      // The verifier compares aud with the URL without its query string.
      body: JSON.stringify({ url: cfg.baseUrl + path.split("?")[0] })
    });
    if (!answer.ok) { throw new Error("could not get a token (HTTP " + answer.status + ")"); }
    return (await answer.json()).token;
  }

  async function call(cfg, method, path, body) {
    var jwt = await token(cfg, path);
    var init = { method: method, headers: { Authorization: "Bearer " + jwt } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    var answer = await fetch(path, init);
    var text = await answer.text();
    var json = null;
    try { json = text ? JSON.parse(text) : null; } catch (e) { json = { unparsed: text }; }
    return { status: answer.status, ok: answer.ok, body: json };
  }

  function pretty(value) { return JSON.stringify(value, null, 2); }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (key === "text") { node.textContent = value; }
      else if (key.slice(0, 2) === "on") { node.addEventListener(key.slice(2), value); }
      else if (value !== undefined && value !== null && value !== false) {
        node.setAttribute(key, value === true ? "" : value);
      }
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) { return; }
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function errorText(result) {
    var error = result.body && result.body.error;
    return "HTTP " + result.status + (error ? ": " + error.message : "");
  }

  return { data: data, uuid: uuid, call: call, pretty: pretty, el: el, errorText: errorText };
})();
