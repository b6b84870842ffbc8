// FGD Sync console: local times, and a sync's live progress over the WebSocket.
// Plain JavaScript, no library; every page works without it (times in UTC, reload for news).
"use strict";

function localTimes(root) {
  for (const t of root.querySelectorAll("time[datetime]")) {
    const when = new Date(t.getAttribute("datetime"));
    if (isNaN(when)) continue;
    t.title = when.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
    t.textContent = when.toLocaleString();
  }
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) node.append(c);
  return node;
}

function stateBadge(state) {
  return el("span", { class: "state state-" + state }, String(state).replace(/_/g, " "));
}

function problemList(errors) {
  const ul = el("ul", { class: "problems" });
  for (const e of errors) {
    const li = el("li");
    if (e.code) li.append(el("code", {}, e.code), " ");
    if (e.line) li.append(el("span", { class: "where" }, "line " + e.line), " ");
    if (e.field) li.append(el("span", { class: "where" }, "field ", el("code", {}, e.field)), " ");
    li.append(el("span", { class: "msg" }, e.message || ""));
    ul.append(li);
  }
  return ul;
}

function fileRow(tbody, path) {
  for (const row of tbody.rows) if (row.dataset.path === path) return row;
  const empty = tbody.querySelector("tr.empty");
  if (empty) empty.remove();
  const row = el("tr", { "data-path": path, class: "fresh" },
    el("td", {}, el("code", {}, path)), el("td", { class: "file-status" }),
    el("td", {}, ""), el("td", { class: "file-result" }));
  tbody.append(row);
  return row;
}

function followSync(box) {
  const id = box.dataset.syncId;
  const status = document.getElementById("live-status");
  const tbody = document.getElementById("file-rows");
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  // Authenticated by the session cookie (same origin): the token never reaches script.
  const socket = new WebSocket(`${scheme}://${location.host}/ws/plugins/hedgehog/sync-progress/${id}/`);
  let finished = false;

  function apply(message) {
    const d = message.data;
    const state = document.getElementById("sync-state");
    state.replaceChildren(stateBadge(d.state));
    state.dataset.state = d.state;
    document.getElementById("sync-title-state").replaceChildren(stateBadge(d.state));
    const bar = document.getElementById("sync-progress");
    bar.value = d.progress;
    bar.textContent = d.progress + " %";
    document.getElementById("sync-percent").textContent = d.progress + " %";
    document.getElementById("files-processed").textContent = d.files_processed;
    document.getElementById("files-total").textContent = d.total_files;
    for (const li of document.querySelectorAll("#timeline li")) {
      const name = li.dataset.stage;
      let s = "pending";
      if (d.stages_completed.includes(name)) s = "done";
      else if (name === d.stage) s = "running";
      li.className = "stage stage-" + s;
      li.querySelector(".stage-state").textContent = s;
    }
    const ev = d.event || {};
    if (ev.file_path && tbody) {
      const row = fileRow(tbody, ev.file_path);
      if (message.type === "sync.file_processed") {
        row.querySelector(".file-status").replaceChildren(stateBadge(ev.status === "success" ? "processed" : ev.status));
        const result = row.querySelector(".file-result");
        result.replaceChildren();
        if (ev.errors && ev.errors.length) result.append(problemList(ev.errors));
        else if (ev.reason) result.append(el("span", { class: "msg" }, ev.reason));
      } else if (!row.querySelector(".file-status").childNodes.length) {
        row.querySelector(".file-status").replaceChildren(stateBadge("discovered"));
      }
    }
    const where = d.current_file ? ` · ${d.current_file}` : "";
    status.textContent = `Live: ${String(d.state).replace(/_/g, " ")}${d.stage ? " · " + d.stage.replace(/_/g, " ") : ""}${where}`;
    if (message.type === "sync.completed" || message.type === "sync.failed") {
      finished = true;
      status.textContent = "Finished: " + String(d.state).replace(/_/g, " ") + ". Loading the results…";
      const cancel = document.getElementById("cancel-form");
      if (cancel) cancel.remove();
      // The server renders the final page (files, commit, plan) from the read model.
      setTimeout(() => location.reload(), 600);
    }
  }

  socket.addEventListener("message", (event) => apply(JSON.parse(event.data)));
  socket.addEventListener("close", (event) => {
    if (finished) return;
    status.textContent = event.code === 1000
      ? "Finished."
      : `Live updates stopped (${event.code}${event.reason ? ": " + event.reason : ""}). Reload to see the latest state.`;
  });
}

document.addEventListener("DOMContentLoaded", () => {
  localTimes(document);
  const box = document.getElementById("sync");
  if (box && box.dataset.live === "yes" && "WebSocket" in window) followSync(box);
});
