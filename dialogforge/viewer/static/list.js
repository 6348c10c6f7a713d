/* dialogforge trajectory viewer, part 2/4: the list of trajectories with its filters. One renderer for the served page and the single HTML file.
 *
 * Everything shown comes from model output or user input and is untrusted, so the DOM is
 * built only with createElement + textContent (never innerHTML with data), links are only
 * "#/..." routes built here, and the page runs under a strict Content-Security-Policy.
 * The parts share one namespace object and load in order: dom, list, trajectory, app.
 */
(function (ns) {
  "use strict";
  var el = ns.el, append = ns.append, clear = ns.clear, route = ns.route, badge = ns.badge, fmtNumber = ns.fmtNumber, short = ns.short, validityBadge = ns.validityBadge;

  // ------------------------------------------------------------ list page

  var FILTERS = ["mode", "status", "validity", "domain", "q"];

  function matches(row, filters) {
    if (filters.mode && row.mode !== filters.mode) return false;
    if (filters.status && row.status !== filters.status) return false;
    if (filters.domain && row.domain !== filters.domain) return false;
    if (filters.validity === "valid" && row.valid !== true) return false;
    if (filters.validity === "invalid" && row.valid !== false) return false;
    if (filters.validity === "unvalidated" && row.valid != null) return false;
    if (filters.q && String(row.thread_id).indexOf(filters.q) < 0) return false;
    return true;
  }

  function filterSelect(name, label, options, current, disabled, onChange) {
    var select = el("select", { name: name, "aria-label": label, onchange: onChange });
    select.appendChild(el("option", { value: "", text: "all" }));
    options.forEach(function (value) {
      var option = el("option", { value: value, text: value });
      if (value === current) option.selected = true;
      select.appendChild(option);
    });
    if (disabled) { select.disabled = true; select.title = "no validations yet: run `dialogforge validate`"; }
    return el("label", { className: "filter" }, el("span", { text: label }), select);
  }

  function filtersFromHash(hash) {
    var query = hash.indexOf("?") >= 0 ? new URLSearchParams(hash.slice(hash.indexOf("?") + 1)) : new URLSearchParams();
    var filters = {};
    FILTERS.forEach(function (f) { filters[f] = query.get(f) || ""; });
    return filters;
  }

  var MAX_LIST_ROWS = 1000;

  function renderList(app, data, filters, source) {
    clear(app);
    var rows = data.trajectories || [];
    var shown = rows.filter(function (r) { return matches(r, filters); });
    var byStatus = {};
    shown.forEach(function (r) { byStatus[r.status] = (byStatus[r.status] || 0) + 1; });

    function setFilter(name) {
      return function (event) {
        // From the address, not this render's filters: two quick changes can both reach
        // this page before the first one has re-rendered it.
        var next = filtersFromHash(location.hash);
        next[name] = event.target.value;
        var params = new URLSearchParams();
        FILTERS.forEach(function (f) { if (next[f]) params.set(f, next[f]); });
        location.hash = "#/" + (params.toString() ? "?" + params.toString() : "");
      };
    }

    var choices = data.choices || {};
    var search = el("input", { type: "search", name: "q", placeholder: "thread id contains\u2026", value: filters.q || "", "aria-label": "thread id" });
    search.addEventListener("change", setFilter("q"));
    var bar = el("div", { className: "filters" },
      filterSelect("mode", "mode", choices.mode || [], filters.mode, false, setFilter("mode")),
      filterSelect("status", "status", choices.status || [], filters.status, false, setFilter("status")),
      filterSelect("validity", "validity", ["valid", "invalid", "unvalidated"], filters.validity, !data.validity_available, setFilter("validity")),
      filterSelect("domain", "domain", choices.domain || [], filters.domain, false, setFilter("domain")),
      el("label", { className: "filter" }, el("span", { text: "search" }), search));

    var summary = el("div", { className: "summary", id: "list-summary" },
      el("strong", { text: shown.length + " of " + rows.length + " trajectories" }),
      Object.keys(byStatus).sort().map(function (s) { return el("span", { className: "count" }, badge(s, s), " " + byStatus[s]); }));

    var head = el("tr", null, ["thread", "mode", "status", "stop reason", "validity", "domain", "user turns",
      "messages", "tool calls", "tool errors", "tasks", "tokens", "lineage"].map(function (h) { return el("th", { text: h }); }));
    var body = el("tbody");
    shown.slice(0, MAX_LIST_ROWS).forEach(function (r) {
      var tr = el("tr", { className: "row row-" + r.status, "data-thread": r.thread_id },
        el("td", null, el("a", { href: route(r.thread_id), className: "thread-link", text: r.thread_id })),
        el("td", { text: r.mode }),
        el("td", null, badge(r.status, r.status)),
        el("td", { text: r.stop_reason || "-", title: r.error || "" }),
        el("td", null, validityBadge(r)),
        el("td", { className: "domain", text: short(r.domain, 60), title: r.domain || "" }),
        el("td", { className: "num", text: fmtNumber(r.user_turns) }),
        el("td", { className: "num", text: fmtNumber(r.messages) }),
        el("td", { className: "num", text: fmtNumber(r.tool_calls) }),
        el("td", { className: "num" + (r.tool_errors ? " has-errors" : ""), text: fmtNumber(r.tool_errors) }),
        el("td", { className: "num", text: fmtNumber(r.tasks) }),
        el("td", { className: "num", text: fmtNumber(r.tokens) }),
        el("td", null, r.parent_thread_id ? el("a", { href: route(r.parent_thread_id), className: "parent-link", text: "fork of " + r.parent_thread_id }) : "-"));
      tr.addEventListener("click", function (event) { if (event.target.tagName !== "A") location.hash = route(r.thread_id); });
      body.appendChild(tr);
    });
    var note = shown.length > MAX_LIST_ROWS ? el("p", { className: "muted", text: "showing the first " + MAX_LIST_ROWS + "; narrow the filters to see the rest" }) : null;
    var intro = source.standalone ? el("p", { className: "muted", text: "This file holds " + rows.length + " trajectories: the one exported and its fork family." }) : null;
    append(app, [el("h1", { text: "Trajectories" }), intro, bar, summary,
      el("div", { className: "table-wrap" }, el("table", { className: "trajectories", id: "trajectory-table" }, el("thead", null, head), body)), note]);
  }

  ns.filtersFromHash = filtersFromHash;
  ns.renderList = renderList;
})(window.dialogforgeViewer = window.dialogforgeViewer || {});
