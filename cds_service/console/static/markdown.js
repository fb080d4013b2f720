/* A small, safe Markdown renderer for card detail (CDS Hooks: GitHub Flavored Markdown).
   It builds DOM nodes and never assigns HTML: raw HTML in the source shows as text.
   Subset: headings, paragraphs, lists, tables, block quotes, code, emphasis, links. */
"use strict";

var Markdown = (function () {
  var SAFE_URL = /^(https?:|mailto:)/i;
  // Emphasis may contain code spans (`a_b`), so its body is "not the delimiter, or a code span".
  var INLINE = new RegExp([
    "(`[^`]+`)",
    "(\\*\\*(?:[^*`]|`[^`]*`)+\\*\\*|__(?:[^_`]|`[^`]*`)+__)",
    "(\\*(?=\\S)(?:[^*`]|`[^`]*`)+\\*|\\b_(?=[^_\\s])(?:[^_`]|`[^`]*`)+_(?!\\w))",
    "(\\[[^\\]]+\\]\\([^)\\s]+\\))",
    "(https?:\\/\\/[^\\s<)]+)"
  ].join("|"));
  var LIST = /^\s*([-*+]|\d+[.)])\s+/;

  function inline(text, parent) {
    var rest = text;
    while (rest.length) {
      var m = INLINE.exec(rest);
      if (!m) { parent.appendChild(document.createTextNode(rest)); return; }
      if (m.index > 0) { parent.appendChild(document.createTextNode(rest.slice(0, m.index))); }
      var token = m[0];
      if (m[1]) {
        var code = document.createElement("code"); code.textContent = token.slice(1, -1); parent.appendChild(code);
      } else if (m[2]) {
        var strong = document.createElement("strong"); inline(token.slice(2, -2), strong); parent.appendChild(strong);
      } else if (m[3]) {
        var em = document.createElement("em"); inline(token.slice(1, -1), em); parent.appendChild(em);
      } else if (m[4]) {
        var split = token.indexOf("](");
        link(token.slice(1, split), token.slice(split + 2, -1), parent);
      } else {
        link(token, token, parent);
      }
      rest = rest.slice(m.index + token.length);
    }
  }

  function link(label, href, parent) {
    if (!SAFE_URL.test(href)) { inline(label, parent); return; }
    var a = document.createElement("a");
    a.href = href; a.rel = "noopener noreferrer"; a.target = "_blank";
    inline(label, a);
    parent.appendChild(a);
  }

  function cells(line) {
    return line.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map(function (c) { return c.trim(); });
  }

  function table(lines, parent) {
    var t = document.createElement("table");
    var head = t.createTHead().insertRow();
    cells(lines[0]).forEach(function (c) {
      var th = document.createElement("th"); th.scope = "col"; inline(c, th); head.appendChild(th);
    });
    var body = t.createTBody();
    lines.slice(2).forEach(function (line) {
      var row = body.insertRow();
      cells(line).forEach(function (c) { inline(c, row.insertCell()); });
    });
    parent.appendChild(t);
  }

  function startsBlock(line) {
    return /^(#{1,6}\s|```|>)/.test(line) || LIST.test(line) || /^\s*\|/.test(line);
  }

  function render(source, parent) {
    var lines = String(source || "").replace(/\r\n?/g, "\n").split("\n");
    var i = 0;
    while (i < lines.length) {
      var line = lines[i];
      if (!line.trim()) { i++; continue; }
      var h = /^(#{1,6})\s+(.*)$/.exec(line);
      if (h) {
        // Card detail sits under the card's own heading: shift levels so the outline stays sound.
        var hx = document.createElement("h" + Math.min(6, h[1].length + 3));
        inline(h[2], hx); parent.appendChild(hx); i++; continue;
      }
      if (/^```/.test(line)) {
        var pre = document.createElement("pre"); var buf = []; i++;
        while (i < lines.length && !/^```/.test(lines[i])) { buf.push(lines[i]); i++; }
        pre.textContent = buf.join("\n"); parent.appendChild(pre); i++; continue;
      }
      if (/^\s*\|/.test(line) && i + 1 < lines.length && /^\s*\|?\s*:?-{2,}/.test(lines[i + 1])) {
        var rows = [];
        while (i < lines.length && /^\s*\|/.test(lines[i])) { rows.push(lines[i]); i++; }
        table(rows, parent); continue;
      }
      var list = LIST.exec(line);
      if (list) {
        var ul = document.createElement(/\d/.test(list[1]) ? "ol" : "ul");
        while (i < lines.length && LIST.test(lines[i])) {
          var li = document.createElement("li"); inline(lines[i].replace(LIST, ""), li);
          ul.appendChild(li); i++;
        }
        parent.appendChild(ul); continue;
      }
      if (/^>\s?/.test(line)) {
        var quote = document.createElement("blockquote"); var q = [];
        while (i < lines.length && /^>\s?/.test(lines[i])) { q.push(lines[i].replace(/^>\s?/, "")); i++; }
        render(q.join("\n"), quote); parent.appendChild(quote); continue;
      }
      var p = document.createElement("p");
      var first = true;
      while (i < lines.length && lines[i].trim() && (first || !startsBlock(lines[i]))) {
        if (!first) { p.appendChild(document.createElement("br")); }
        inline(lines[i].trim(), p); first = false; i++;
      }
      parent.appendChild(p);
    }
    return parent;
  }

  return { render: render };
})();
