/* dialogforge trajectory viewer, part 3/4: one trajectory (conversation, fork tree, tasks, tools, validation, checkpoints). One renderer for the served page and the single HTML file.
 *
 * Everything shown comes from model output or user input and is untrusted, so the DOM is
 * built only with createElement + textContent (never innerHTML with data), links are only
 * "#/..." routes built here, and the page runs under a strict Content-Security-Policy.
 * The parts share one namespace object and load in order: dom, list, trajectory, app.
 */
(function (ns) {
  "use strict";
  var el = ns.el, append = ns.append, clear = ns.clear, route = ns.route, badge = ns.badge, fmtNumber = ns.fmtNumber, short = ns.short, pretty = ns.pretty, copyButton = ns.copyButton, validityBadge = ns.validityBadge, panel = ns.panel;

  // ------------------------------------------------------------ one trajectory

  function taskLabel(state, index) {
    if (index == null) return null;
    var task = state.tasks && state.tasks[index];
    return el("span", { className: "task-tag", title: task ? task.goal : "", text: "task " + (index + 1) });
  }

  function toolCallBox(call) {
    var args = call.raw_arguments != null ? call.raw_arguments : pretty(call.arguments || {});
    return el("div", { className: "tool-call" },
      el("div", { className: "tool-call-head" }, el("span", { className: "fn", text: call.name }), el("span", { className: "call-id", text: call.id })),
      call.raw_arguments != null ? el("div", { className: "warn", text: "arguments were not a JSON object" }) : null,
      el("pre", { className: "json", text: args }));
  }

  function messageCard(state, message, index, inherited, flags) {
    var classes = "msg msg-" + message.role + (message.is_error ? " msg-error" : "") + (inherited ? " inherited" : "") + (flags.length ? " msg-flagged" : "");
    var head = el("div", { className: "msg-head" },
      el("span", { className: "role", text: message.role }),
      message.role === "tool" ? el("span", { className: "fn", text: message.name || "?" }) : null,
      message.is_error ? badge("error", "error") : null,
      taskLabel(state, message.task_index),
      el("span", { className: "idx", text: "#" + index }));
    var body = flags.map(function (f) { return el("div", { className: "rule-flag", text: "rule " + f.rule + ": " + (f.detail || "") }); });
    if (message.reasoning) {
      body.push(el("details", { className: "reasoning" }, el("summary", { text: "reasoning" }), el("pre", { text: message.reasoning })));
    }
    if (message.role === "tool") {
      body.push(el("div", { className: "call-ref", text: "result of " + (message.tool_call_id || "?") }));
      body.push(el("pre", { className: "json content", text: pretty(message.content) }));
    } else if (message.content) {
      body.push(el("div", { className: "content", text: message.content }));
    }
    (message.tool_calls || []).forEach(function (call) { body.push(toolCallBox(call)); });
    return el("div", { className: classes, id: "m" + index, "data-role": message.role }, head, body);
  }

  function forkMarker(kind, info) {
    if (kind === "from") {
      return el("div", { className: "fork-marker fork-from", id: "fork-point" },
        el("span", { className: "fork-icon", text: "\u21aa" }),
        " forked from ", el("a", { href: route(info.parent_thread_id), className: "fork-link", text: info.parent_thread_id }),
        " at checkpoint ", el("code", { text: info.checkpoint_id }),
        el("span", { className: "muted", text: " \u2014 messages above are inherited, below are this trajectory's own" }));
    }
    return el("div", { className: "fork-marker fork-to" },
      el("span", { className: "fork-icon", text: "\u21aa" }),
      " fork ", el("a", { href: route(info.thread_id), className: "fork-link", text: info.thread_id }),
      " branched here (checkpoint ", el("code", { text: info.checkpoint_id }), ") ", badge(info.status, info.status));
  }

  function conversation(view) {
    var state = view.state;
    var container = el("section", { className: "conversation", id: "conversation" });
    var forkAt = view.fork_point && view.fork_point.message_index != null ? view.fork_point.message_index : -1;
    var forksAt = {};
    (view.forks_here || []).forEach(function (f) {
      var at = f.message_index == null ? state.messages.length : f.message_index;
      (forksAt[at] = forksAt[at] || []).push(f);
    });
    var flagsAt = {};
    var validation = view.row.validation;
    ((validation && validation.rule_failures) || []).forEach(function (f) {
      if (f && f.message_index != null) (flagsAt[f.message_index] = flagsAt[f.message_index] || []).push(f);
    });
    var currentTask = null;
    function markersAt(i) {
      if (i === forkAt) container.appendChild(forkMarker("from", view.fork_point));
      (forksAt[i] || []).forEach(function (f) { container.appendChild(forkMarker("to", f)); });
    }
    state.messages.forEach(function (message, i) {
      markersAt(i);
      if (message.task_index != null && message.task_index !== currentTask) {
        currentTask = message.task_index;
        var task = state.tasks[currentTask];
        container.appendChild(el("div", { className: "task-boundary", id: "task-" + currentTask },
          el("span", { className: "task-number", text: "Task " + (currentTask + 1) }),
          el("span", { className: "task-goal", text: task ? task.goal : "(unknown task)" }),
          task ? badge(task.status, task.status) : null));
      }
      container.appendChild(messageCard(state, message, i, forkAt >= 0 && i < forkAt, flagsAt[i] || []));
    });
    markersAt(state.messages.length);
    if (state.pending_user_message) {
      container.appendChild(el("div", { className: "msg msg-user pending" },
        el("div", { className: "msg-head" }, el("span", { className: "role", text: "user (pending, sent next)" })),
        el("div", { className: "content", text: state.pending_user_message })));
    }
    if (!state.messages.length) container.appendChild(el("p", { className: "muted", text: "No messages yet." }));
    if (state.stop_reason) {
      container.appendChild(el("div", { className: "end-marker" + (state.error ? " end-error" : ""), id: "end" },
        "ended: ", el("b", { text: state.stop_reason }), state.error ? el("span", { className: "end-reason", text: " \u2014 " + state.error }) : null));
    }
    return container;
  }

  function treeNode(node, current) {
    var isCurrent = node.thread_id === current;
    var label = isCurrent ? el("strong", { className: "tree-current", text: node.thread_id + " (this)" })
      : el("a", { href: route(node.thread_id), className: "tree-link", text: node.thread_id });
    var li = el("li", { "data-thread": node.thread_id }, label, " ", badge(node.status, node.status),
      node.fork_checkpoint_id ? el("div", { className: "muted small", text: "at " + short(node.fork_checkpoint_id, 40) }) : null);
    if (node.children && node.children.length) {
      li.appendChild(el("ul", null, node.children.map(function (c) { return treeNode(c, current); })));
    }
    if (node.truncated) li.appendChild(el("div", { className: "muted small", text: "(more forks not shown)" }));
    return li;
  }

  function toolsPanel(state) {
    var tools = state.tools || [];
    return panel("Tools available (" + tools.length + ")", "tools", false, tools.map(function (tool) {
      var fn = tool.function || {};
      return el("details", { className: "tool" },
        el("summary", null, el("span", { className: "fn", text: fn.name }), " ", el("span", { className: "muted small", text: tool.source + (tool.sql ? " \u00b7 sql " + tool.sql.kind : "") })),
        el("p", { className: "tool-desc", text: fn.description || "" }),
        el("div", { className: "small muted", text: "parameters" }), el("pre", { className: "json", text: pretty(fn.parameters || {}) }),
        el("div", { className: "small muted", text: "result schema" }), el("pre", { className: "json", text: pretty(tool.result_schema || {}) }));
    }));
  }

  function tasksPanel(state) {
    return panel("Tasks (" + state.tasks.length + ")", "tasks", true, el("ol", { className: "tasks" }, state.tasks.map(function (task, i) {
      return el("li", null,
        el("a", { href: "#task-" + i, className: "task-jump", text: task.goal, onclick: function (e) { e.preventDefault(); var t = document.getElementById("task-" + i); if (t) t.scrollIntoView(); } }),
        " ", badge(task.status, task.status), " ", badge(task.difficulty, "difficulty"),
        el("details", { className: "rubric" }, el("summary", { text: "subtasks and rubric" }),
          el("ul", null, task.subtasks.map(function (s) { return el("li", { text: s }); })),
          el("ul", null, task.rubric.map(function (r) { return el("li", null, badge(r.category, r.category), " ", r.criterion); }))));
    })));
  }

  function shellWord(text) {
    text = String(text);
    return /^[A-Za-z0-9_.\/:=@+-]+$/.test(text) ? text : "'" + text.replace(/'/g, "'\\''") + "'";
  }

  function checkpointsPanel(view) {
    var forkedAt = {};
    (view.forks_here || []).forEach(function (f) { (forkedAt[f.checkpoint_id] = forkedAt[f.checkpoint_id] || []).push(f.thread_id); });
    var items = (view.checkpoints || []).map(function (c) {
      var forks = forkedAt[c.checkpoint_id] || [];
      var isForkPoint = view.fork_point && view.fork_point.checkpoint_id === c.checkpoint_id;
      var command = "dialogforge fork " + shellWord(view.thread_id) + " --db " + shellWord(view.db || "DB") +
        " --checkpoint " + shellWord(c.checkpoint_id) + " --n 1";
      var classes = "checkpoint" + (forks.length || isForkPoint ? " forked" : "") + (c.inherited ? " inherited" : "");
      return el("li", { className: classes, "data-checkpoint": c.checkpoint_id },
        el("div", { className: "cp-head" },
          el("span", { className: "cp-step", text: "step " + c.step }),
          el("span", { className: "fn", text: c.node || "-" }),
          el("span", { className: "muted small", text: "turn " + c.user_turn + (c.inherited ? " \u00b7 inherited" : "") }),
          el("span", { className: "cp-buttons" }, copyButton(c.checkpoint_id, "copy id"), " ", copyButton(command, "copy fork cmd"))),
        el("code", { className: "cp-id", text: c.checkpoint_id }),
        c.preview ? el("div", { className: "cp-preview", text: short(c.preview, 140), title: c.preview }) : null,
        forks.length ? el("div", { className: "small fork-note", text: "\u21aa forked here: " + forks.join(", ") }) : null,
        isForkPoint ? el("div", { className: "small fork-note", text: "\u21aa this trajectory's fork point" }) : null);
    });
    var hint = el("p", { className: "small muted", text: "Oldest first. Copy an id (or the whole command) to fork a new trajectory from that point." });
    return panel("Checkpoints (" + items.length + ")", "checkpoints", false, [hint, el("ol", { className: "checkpoints" }, items)]);
  }

  function validationPanel(row) {
    var v = row.validation;
    if (!v) return null;
    var failures = (v.rule_failures || []).map(function (f) {
      var where = f.message_index != null ? el("a", { href: "#m" + f.message_index, className: "msg-jump", text: "message #" + f.message_index,
        onclick: function (e) { e.preventDefault(); var m = document.getElementById("m" + f.message_index); if (m) m.scrollIntoView(); } }) : null;
      return el("li", null, el("b", { text: f.rule }), " ", f.detail || "", where ? [" (", where, ")"] : null);
    });
    return panel("Validation", "validation", row.valid === false, [
      el("div", null, validityBadge(row), v.judge_verdict ? [" judge: ", badge(v.judge_verdict, v.judge_verdict)] : null,
        v.duplicate_of ? [" ", badge((v.duplicate_kind || "near") + " duplicate", "invalid"), " of ", el("a", { href: route(v.duplicate_of), text: v.duplicate_of })] : null),
      failures.length ? el("ul", { className: "rule-failures" }, failures) : el("p", { className: "small muted", text: "all rule checks passed" }),
      v.judge_reasoning ? el("details", { className: "rubric" }, el("summary", { text: "judge reasoning" }), el("pre", { text: v.judge_reasoning })) : null,
      v.judge_tasks ? el("details", { className: "rubric" }, el("summary", { text: "judge per task" }), el("pre", { className: "json", text: pretty(v.judge_tasks) })) : null,
      v.judge_error ? el("div", { className: "warn", text: "judge error: " + v.judge_error }) : null]);
  }

  function counterGrid(state, row) {
    var c = state ? state.counters : {};
    var tokens = row.tokens;
    var items = [["user turns", c.user_turns], ["assistant turns", c.assistant_turns], ["requests", c.requests],
      ["tool calls", c.tool_calls], ["tool errors", c.tool_errors], ["tasks done", c.tasks_completed], ["tokens", tokens]];
    return el("div", { className: "counters" }, items.map(function (it) {
      return el("div", { className: "counter" + (it[0] === "tool errors" && it[1] ? " has-errors" : "") },
        el("div", { className: "counter-value", text: fmtNumber(it[1]) }), el("div", { className: "counter-label", text: it[0] }));
    }));
  }

  function renderTrajectory(app, view) {
    clear(app);
    var row = view.row, state = view.state;
    var header = el("div", { className: "traj-head" },
      el("a", { href: "#/", className: "back", text: "\u2190 all trajectories" }),
      el("h1", null, el("span", { id: "thread-title", text: view.thread_id }), " ", copyButton(view.thread_id)),
      el("div", { className: "badges" }, badge(row.mode, "mode"), badge(row.status, row.status),
        row.stop_reason ? badge(row.stop_reason, row.stop_reason === "error" ? "error" : "stop") : null, validityBadge(row)),
      el("div", { className: "meta" },
        el("span", null, el("b", { text: "domain " }), row.domain || "-"),
        state && state.scenario.persona ? el("span", null, el("b", { text: "persona " }), state.scenario.persona) : null,
        state ? el("span", null, el("b", { text: "difficulty " }), state.scenario.difficulty) : null,
        el("span", null, el("b", { text: "seed " }), String(row.seed)),
        el("span", null, el("b", { text: "run " }), row.run_id || "-")));
    var errorText = (state && state.error) || row.error;
    var errorBanner = errorText ? el("div", { className: "error-banner", role: "alert" }, el("b", { text: "failed: " }), errorText) : null;
    var invalidBanner = row.valid === false && row.validity_reasons.length
      ? el("div", { className: "warn-banner" }, el("b", { text: "invalid: " }), row.validity_reasons.join("; ")) : null;
    var ancestors = view.lineage.ancestors || [];
    var crumbs = ancestors.length ? el("div", { className: "crumbs" }, "lineage: ",
      ancestors.map(function (a) { return [el("a", { href: route(a.thread_id), className: "fork-link", text: a.thread_id }), " \u2192 "]; }),
      el("strong", { text: view.thread_id })) : null;
    var side = el("aside", { className: "side" },
      panel("Fork tree", "fork-tree", true, [crumbs, el("ul", { className: "tree" }, treeNode(view.lineage.tree, view.thread_id))]),
      validationPanel(row),
      state ? tasksPanel(state) : null,
      state ? toolsPanel(state) : null,
      state ? checkpointsPanel(view) : null);
    var main = state ? conversation(view) : el("section", { className: "conversation" }, el("p", { className: "muted", text: "This trajectory has not started yet." }));
    append(app, [header, errorBanner, invalidBanner, counterGrid(state, row), el("div", { className: "layout" }, main, side)]);
  }

  ns.renderTrajectory = renderTrajectory;
})(window.dialogforgeViewer = window.dialogforgeViewer || {});
