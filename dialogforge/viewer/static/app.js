/* dialogforge trajectory viewer, part 4/4: routing (#/ for the list, #/t/THREAD for one trajectory) and start-up. One renderer for the served page and the single HTML file.
 *
 * Everything shown comes from model output or user input and is untrusted, so the DOM is
 * built only with createElement + textContent (never innerHTML with data), links are only
 * "#/..." routes built here, and the page runs under a strict Content-Security-Policy.
 * The parts share one namespace object and load in order: dom, list, trajectory, app.
 */
(function (ns) {
  "use strict";
  var el = ns.el, append = ns.append, clear = ns.clear, route = ns.route, servedSource = ns.servedSource, embeddedSource = ns.embeddedSource, filtersFromHash = ns.filtersFromHash, renderList = ns.renderList, renderTrajectory = ns.renderTrajectory;

  // ------------------------------------------------------------ routing

  function start() {
    var app = document.getElementById("app");
    var dataBlock = document.getElementById("dialogforge-data");
    var source = dataBlock ? embeddedSource(JSON.parse(dataBlock.textContent)) : servedSource();

    function showError(error) {
      clear(app);
      append(app, [el("a", { href: "#/", className: "back", text: "\u2190 all trajectories" }),
        el("div", { className: "error-banner", role: "alert", text: String(error && error.message ? error.message : error) })]);
    }

    function showDb(name) {
      var dbName = document.getElementById("db-name");
      if (dbName && name) dbName.textContent = name;
    }

    var rendering = 0;  // only the latest navigation may draw: an older fetch can answer last

    function render() {
      var hash = location.hash || "";
      var ticket = ++rendering;
      var match = /^#\/t\/(.+)$/.exec(hash);
      if (match) {
        var id;
        try { id = decodeURIComponent(match[1]); } catch (e) { showError("bad link"); return; }
        app.setAttribute("aria-busy", "true");
        source.trajectory(id).then(function (view) {
          if (ticket !== rendering) return;
          showDb(view.db);
          renderTrajectory(app, view);
          document.title = view.thread_id + " \u00b7 dialogforge";
          window.scrollTo(0, 0);
        }, showError).then(function () { app.setAttribute("aria-busy", "false"); });
        return;
      }
      if (source.standalone && !hash) { location.hash = route(source.start); return; }
      var filters = filtersFromHash(hash);
      source.list().then(function (data) {
        if (ticket !== rendering) return;
        showDb(data.db);
        renderList(app, data, filters, source);
        document.title = "trajectories \u00b7 dialogforge";
      }, showError);
    }

    window.addEventListener("hashchange", function () { if (!/^#task-/.test(location.hash)) render(); });
    render();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})(window.dialogforgeViewer = window.dialogforgeViewer || {});
