/* dialogforge trajectory viewer, part 1/4: DOM helpers that only ever create text, and the two data sources. One renderer for the served page and the single HTML file.
 *
 * Everything shown comes from model output or user input and is untrusted, so the DOM is
 * built only with createElement + textContent (never innerHTML with data), links are only
 * "#/..." routes built here, and the page runs under a strict Content-Security-Policy.
 * The parts share one namespace object and load in order: dom, list, trajectory, app.
 */
(function (ns) {
  "use strict";

  // ------------------------------------------------------------ DOM helpers (text only)

  function el(tag, props) {
    var node = document.createElement(tag);
    var key;
    props = props || {};
    for (key in props) {
      if (!Object.prototype.hasOwnProperty.call(props, key)) continue;
      if (key === "className") node.className = props[key];
      else if (key === "text") node.textContent = props[key] == null ? "" : String(props[key]);
      else if (key === "title") node.title = String(props[key]);
      else if (key === "href") node.setAttribute("href", props[key]);
      else if (key === "onclick") node.addEventListener("click", props[key]);
      else if (key === "onchange") node.addEventListener("change", props[key]);
      else if (key === "oninput") node.addEventListener("input", props[key]);
      else node.setAttribute(key, String(props[key]));
    }
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }

  function append(parent, child) {
    if (child == null || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { append(parent, c); }); return; }
    parent.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function route(threadId) { return "#/t/" + encodeURIComponent(threadId); }

  function badge(text, kind) {
    return el("span", { className: "badge badge-" + String(kind || text || "none").replace(/[^a-z0-9_-]/gi, "_"), text: text == null ? "-" : text });
  }

  function fmtNumber(n) { return n == null ? "-" : Number(n).toLocaleString("en-US"); }

  function short(text, n) {
    text = text == null ? "" : String(text);
    return text.length > n ? text.slice(0, n - 1) + "\u2026" : text;
  }

  function pretty(value) {
    if (typeof value === "string") {
      try { return JSON.stringify(JSON.parse(value), null, 2); } catch (e) { return value; }
    }
    return JSON.stringify(value, null, 2);
  }

  function copyButton(text, label) {
    var button = el("button", { type: "button", className: "copy", title: "copy to clipboard", text: label || "copy" });
    button.addEventListener("click", function (event) {
      event.preventDefault();
      event.stopPropagation();
      var done = function () { button.textContent = "copied"; setTimeout(function () { button.textContent = label || "copy"; }, 1200); };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(done, function () { button.textContent = "select + Ctrl-C"; });
      } else {
        button.textContent = "select + Ctrl-C";
      }
    });
    return button;
  }

  function validityBadge(row) {
    if (row.valid === true) return badge("valid", "valid");
    if (row.valid === false) {
      var b = badge("invalid", "invalid");
      if (row.validity_reasons && row.validity_reasons.length) b.title = row.validity_reasons.join("\n");
      return b;
    }
    return badge("not validated", "none");
  }

  // ------------------------------------------------------------ data sources

  function servedSource() {
    function getJson(url) {
      return fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" }).then(function (r) {
        return r.json().then(function (body) {
          if (!r.ok) throw new Error(body && body.error ? body.error : "HTTP " + r.status);
          return body;
        });
      });
    }
    return {
      standalone: false,
      list: function () { return getJson("/api/trajectories"); },
      trajectory: function (id) { return getJson("/api/trajectory/" + encodeURIComponent(id)); }
    };
  }

  function embeddedSource(data) {
    return {
      standalone: true,
      start: data.start,
      list: function () { return Promise.resolve(data.list); },
      trajectory: function (id) {
        if (Object.prototype.hasOwnProperty.call(data.trajectories, id)) return Promise.resolve(data.trajectories[id]);
        return Promise.reject(new Error("trajectory " + id + " is not in this file; open it with `dialogforge view`"));
      }
    };
  }

  function panel(title, id, open, content) {
    var details = el("details", { className: "panel", id: id }, el("summary", { text: title }), content);
    details.open = !!open;
    return details;
  }

  ns.el = el;
  ns.append = append;
  ns.clear = clear;
  ns.route = route;
  ns.badge = badge;
  ns.fmtNumber = fmtNumber;
  ns.short = short;
  ns.pretty = pretty;
  ns.copyButton = copyButton;
  ns.validityBadge = validityBadge;
  ns.panel = panel;
  ns.servedSource = servedSource;
  ns.embeddedSource = embeddedSource;
})(window.dialogforgeViewer = window.dialogforgeViewer || {});
