// bdisc review: jobs -> deployments -> map and clusters -> labels. No dependencies, no
// build step. Every request goes to the API of the server that served this page (the
// gateway, or `bdisc review` on this machine), authenticated by the session cookie.

const view = document.getElementById("view");
const crumbs = document.getElementById("crumbs");
const player = document.getElementById("player");
const state = { project: null, names: [], revision: {}, playing: null };
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
  "#17becf", "#bcbd22", "#7f7f7f", "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e",
  "#e6ab02", "#a6761d", "#e41a1c", "#377eb8", "#4daf4a"];

class ApiError extends Error {
  constructor(status, body) {
    super(body.message || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(path, { method = "GET", body, headers = {}, raw = false } = {}) {
  const init = { method, credentials: "same-origin", headers: { "X-Bdisc-UI": "1", ...headers } };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    if (typeof body !== "string") init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, init);
  if (!response.ok) {
    let detail = {};
    try { detail = await response.json(); } catch { /* not JSON */ }
    throw new ApiError(response.status, detail);
  }
  return raw ? response : response.json();
}

const base = () => `/v1/projects/${encodeURIComponent(state.project)}`;
const h = (tag, attrs = {}, ...children) => {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) el.setAttribute(k, v === true ? "" : v);
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined));
  return el;
};

function notice(text, bad = false, action = null) {
  const box = document.getElementById("notice");
  box.replaceChildren(text, action ? " " : "", action || "");
  box.className = bad ? "bad" : "";
  box.hidden = false;
  clearTimeout(notice.timer);
  if (!action) notice.timer = setTimeout(() => { box.hidden = true; }, 4000);
}

function setCrumbs(parts) {
  crumbs.replaceChildren(...parts.flatMap(([text, href], i) => [
    i ? h("span", { class: "sep" }, "/") : null,
    href ? h("a", { href }, text) : h("span", {}, text),
  ]).filter(Boolean));
}

function recordingPath(folder, file) {
  return folder === "all" ? file : `${folder}/${file}`;
}

// A window's recording: the server names it (a review group's windows come from its
// deployments); older answers without paths name it by the deployment and file.
function pathAt(folder, points, i) {
  return points.path ? points.path[i] : recordingPath(folder, points.file[i]);
}

function memberPath(folder, member) {
  return member.path || recordingPath(folder, member.file);
}

function tileUrl(jobId, path, start, end, opts = {}) {
  const q = new URLSearchParams({
    path, start_s: start, end_s: end, job_id: jobId,
    width: opts.width || 480, height: opts.height || 240,
  });
  for (const k of ["fmin", "fmax", "cmap"]) if (opts[k] !== undefined) q.set(k, opts[k]);
  return `${base()}/spectrogram?${q}`;
}

// -- session -------------------------------------------------------------------------

async function ensureSession() {
  try {
    state.project = (await api("/ui/session")).project;
    return true;
  } catch (error) {
    if (error.status !== 401) throw error;
  }
  setCrumbs([]);
  const form = document.getElementById("login-template").content.cloneNode(true);
  view.replaceChildren(form);
  document.getElementById("login").addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = document.getElementById("key").value;
    try {
      state.project = (await api("/ui/session", { method: "POST", body: { key } })).project;
      route();
    } catch (error) {
      const out = document.getElementById("login-error");
      out.textContent = error.message;
      out.hidden = false;
    }
  });
  return false;
}

// -- pages ---------------------------------------------------------------------------

async function jobsPage() {
  setCrumbs([[state.project, "#/"]]);
  const { jobs } = await api(`${base()}/jobs`);
  const discovery = jobs.filter((j) => j.kind === "discover").reverse();
  view.replaceChildren(h("h2", {}, "Discovery jobs"), discovery.length
    ? h("table", {}, h("tr", {}, h("th", {}, "job"), h("th", {}, "status"), h("th", {}, "created")),
      discovery.map((j) => h("tr", {},
        h("td", {}, j.status === "done" ? h("a", { href: `#/job/${j.job_id}` }, j.job_id) : j.job_id),
        h("td", {}, j.status), h("td", {}, j.created_at.slice(0, 19).replace("T", " ")))))
    : h("p", { class: "muted" }, "No discovery jobs yet."));
}

async function jobPage(jobId) {
  setCrumbs([[state.project, "#/"], [jobId.slice(0, 8), `#/job/${jobId}`]]);
  const { deployments } = await api(`${base()}/jobs/${jobId}/deployments`);
  view.replaceChildren(h("h2", {}, "Deployments"), h("table", {},
    h("tr", {}, h("th", {}, "deployment"), h("th", {}, "windows"), h("th", {}, "reviewed")),
    deployments.map((d) => h("tr", { "data-folder": d.folder },
      h("td", {}, h("a", { href: `#/job/${jobId}/${encodeURIComponent(d.folder)}` }, d.folder)),
      h("td", {}, String(d.windows)),
      h("td", {}, h("span", { class: "progress" },
        h("i", { style: `width:${d.clusters ? (100 * d.labelled) / d.clusters : 0}%` })),
        ` ${d.labelled} / ${d.clusters} clusters`,
        d.window_labels ? `, ${d.window_labels} windows` : "")))));
}

async function loadLabels(jobId, folder) {
  const response = await api(`${base()}/jobs/${jobId}/labels?folder=${encodeURIComponent(folder)}`,
    { raw: true });
  state.revision[folder] = response.headers.get("ETag");
  const sheet = await response.json();
  const byCluster = new Map();
  const byWindow = new Map();
  for (const l of sheet.labels) {
    const [kind, ...rest] = l.target.split(":");
    if (kind === "cluster") byCluster.set(Number(rest[0]), l.label);
    else if (kind === "window") byWindow.set(l.target, l.label);
  }
  return { byCluster, byWindow };
}

async function saveLabels(jobId, folder, changes, source = "cluster") {
  try {
    const response = await api(`${base()}/jobs/${jobId}/labels?folder=${encodeURIComponent(folder)}`,
      { method: "PATCH", body: { changes, source }, headers: { "If-Match": state.revision[folder] }, raw: true });
    state.revision[folder] = response.headers.get("ETag");
    notice(`Saved (${changes.length} label${changes.length > 1 ? "s" : ""}).`);
    return true;
  } catch (error) {
    if (error.status === 409) {
      notice("Someone else saved labels here first; reload to see them, then label again.", true,
        h("button", { onclick: () => { document.getElementById("notice").hidden = true; route(); } }, "Reload"));
      return false;
    }
    notice(error.message, true);
    return false;
  }
}

function labelInput(value, suggested) {
  const list = document.getElementById("names") || document.body.appendChild(h("datalist", { id: "names" }));
  if (labelInput.filled !== state.names) {  // once per page, not once per field
    list.replaceChildren(...state.names.map((n) => h("option", { value: n })));
    labelInput.filled = state.names;
  }
  return h("input", { type: "text", list: "names", value: value || "", placeholder: suggested || "label",
    "aria-label": "label", class: "label-input" });
}

function windowTarget(path, start, end) {
  return `window:${path}:${Number(start).toFixed(3)}:${Number(end).toFixed(3)}`;
}

async function deploymentPage(jobId, folder) {
  setCrumbs([[state.project, "#/"], [jobId.slice(0, 8), `#/job/${jobId}`], [folder, null]]);
  const [points, sheet, labels, names] = await Promise.all([
    api(`${base()}/jobs/${jobId}/windows/${encodeURIComponent(folder)}`),
    api(`${base()}/jobs/${jobId}/review/${encodeURIComponent(folder)}`),
    loadLabels(jobId, folder),
    api(`${base()}/label-names`),
  ]);
  state.names = names.labels;
  const map = buildMap(jobId, folder, points, labels);
  const rows = sheet.map((r) => {
    const k = Number(r.Cluster);
    const input = labelInput(labels.byCluster.get(k), r.SuggestedLabel);
    const save = h("button", { onclick: async () => {
      if (await saveLabels(jobId, folder, [{ target: `cluster:${k}`, label: input.value.trim() }])) {
        labels.byCluster.set(k, input.value.trim());
        map.draw();
      }
    } }, "Save");
    return h("tr", { "data-cluster": k },
      h("td", {}, h("a", { href: `#/job/${jobId}/${encodeURIComponent(folder)}/${k}` },
        k < 0 ? "noise" : `cluster ${k}`)),
      h("td", {}, r.Size), h("td", { class: "muted" }, r.TopLabels || ""),
      h("td", {}, input, " ", save,
        r.SuggestedLabel ? h("div", { class: "suggested" }, `suggested: ${r.SuggestedLabel}`) : null));
  });
  view.replaceChildren(h("div", { class: "deployment" },
    h("section", {}, map.element, h("p", { class: "muted" },
      "Hover a point to see its window; drag a loop around points to select them.")),
    h("section", {}, h("div", { id: "selection" }),
      h("table", { id: "clusters" }, h("tr", {}, h("th", {}, "cluster"), h("th", {}, "windows"),
        h("th", {}, "top BirdNET labels"), h("th", {}, "label")), rows))));
}

function buildMap(jobId, folder, points, labels) {
  const canvas = h("canvas", { id: "map" });
  const hover = h("div", { id: "hover", hidden: true });
  const toggle = h("select", { "aria-label": "colour by", onchange: () => draw() },
    h("option", { value: "cluster" }, "colour by cluster"), h("option", { value: "label" }, "colour by label"));
  const element = h("div", {}, h("div", { class: "toolbar" }, toggle,
    h("span", { class: "muted" }, `${points.x.length} windows`)), h("div", { class: "map-wrap" }, canvas, hover));
  const n = points.x.length;
  const [minX, maxX] = [Math.min(...points.x), Math.max(...points.x)];
  const [minY, maxY] = [Math.min(...points.y), Math.max(...points.y)];
  let px = new Float32Array(n);
  let py = new Float32Array(n);
  let grid = new Map();
  let selected = new Set();
  const cell = 12;

  function colourOf(i) {
    if (selected.has(i)) return "#000";
    if (toggle.value === "label") {
      const label = labels.byWindow.get(windowTarget(pathAt(folder, points, i), points.start_s[i], points.end_s[i]))
        || labels.byCluster.get(points.cluster[i]);
      if (!label) return "#cfd3da";
      let hash = 0;
      for (const c of label) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
      return PALETTE[hash % PALETTE.length];
    }
    const k = points.cluster[i];
    return k < 0 ? "#cfd3da" : PALETTE[k % PALETTE.length];
  }

  function layout() {
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || 600;
    const hgt = canvas.clientHeight || 560;
    canvas.width = w * ratio;
    canvas.height = hgt * ratio;
    const pad = 10;
    grid = new Map();
    for (let i = 0; i < n; i++) {
      px[i] = pad + ((points.x[i] - minX) / (maxX - minX || 1)) * (w - 2 * pad);
      py[i] = pad + (1 - (points.y[i] - minY) / (maxY - minY || 1)) * (hgt - 2 * pad);
      const key = `${Math.floor(px[i] / cell)},${Math.floor(py[i] / cell)}`;
      if (!grid.has(key)) grid.set(key, []);
      grid.get(key).push(i);
    }
  }

  function draw(path = null) {
    const ctx = canvas.getContext("2d");
    const ratio = window.devicePixelRatio || 1;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const r = n > 20000 ? 1.2 : n > 2000 ? 2 : 3.2;
    for (let i = 0; i < n; i++) {
      ctx.fillStyle = colourOf(i);
      ctx.fillRect(px[i] - r, py[i] - r, 2 * r, 2 * r);
    }
    if (path && path.length > 1) {
      ctx.strokeStyle = "#1f6feb";
      ctx.beginPath();
      ctx.moveTo(path[0][0], path[0][1]);
      for (const [x, y] of path) ctx.lineTo(x, y);
      ctx.stroke();
    }
  }

  function nearest(x, y) {
    let best = -1;
    let bestD = 64;
    const cx = Math.floor(x / cell);
    const cy = Math.floor(y / cell);
    for (let gx = cx - 1; gx <= cx + 1; gx++) {
      for (let gy = cy - 1; gy <= cy + 1; gy++) {
        for (const i of grid.get(`${gx},${gy}`) || []) {
          const d = (px[i] - x) ** 2 + (py[i] - y) ** 2;
          if (d < bestD) { bestD = d; best = i; }
        }
      }
    }
    return best;
  }

  function inside(path, x, y) {
    let hit = false;
    for (let a = 0, b = path.length - 1; a < path.length; b = a++) {
      const [xa, ya] = path[a];
      const [xb, yb] = path[b];
      if ((ya > y) !== (yb > y) && x < ((xb - xa) * (y - ya)) / (yb - ya) + xa) hit = !hit;
    }
    return hit;
  }

  let lasso = null;
  const at = (event) => {
    const box = canvas.getBoundingClientRect();
    return [event.clientX - box.left, event.clientY - box.top];
  };
  canvas.addEventListener("mousedown", (event) => { lasso = [at(event)]; hover.hidden = true; });
  canvas.addEventListener("mousemove", (event) => {
    const [x, y] = at(event);
    if (lasso) {
      lasso.push([x, y]);
      draw(lasso);
      return;
    }
    const i = nearest(x, y);
    if (i < 0) { hover.hidden = true; return; }
    const img = h("img", { alt: "tile", src: tileUrl(jobId, pathAt(folder, points, i), points.start_s[i], points.end_s[i], { width: 240, height: 120 }) });
    hover.replaceChildren(img, h("div", {}, `${points.file[i]} @${points.start_s[i]}s · cluster ${points.cluster[i]}`));
    hover.style.left = `${Math.min(x + 12, canvas.clientWidth - 250)}px`;
    hover.style.top = `${Math.max(y - 150, 0)}px`;
    hover.hidden = false;
  });
  canvas.addEventListener("mouseleave", () => { hover.hidden = true; });
  window.addEventListener("mouseup", () => {
    if (!lasso) return;
    const path = lasso;
    lasso = null;
    if (path.length < 3) { draw(); return; }
    selected = new Set();
    for (let i = 0; i < n; i++) if (inside(path, px[i], py[i])) selected.add(i);
    draw();
    showSelection(jobId, folder, points, [...selected], labels, () => draw());
  }, { once: false });

  // Where a window's point is drawn (for scripted use: tests, tours).
  canvas.pointAt = (i) => [px[i], py[i]];
  requestAnimationFrame(() => { layout(); draw(); canvas.dataset.ready = "true"; });
  window.addEventListener("resize", () => { layout(); draw(); });
  return { element, draw };
}

function showSelection(jobId, folder, points, indices, labels, redraw) {
  const box = document.getElementById("selection");
  if (!indices.length) { box.replaceChildren(); return; }
  const input = labelInput("", "label these windows");
  const save = h("button", { class: "primary", onclick: async () => {
    const label = input.value.trim();
    const changes = indices.map((i) => ({
      target: windowTarget(pathAt(folder, points, i), points.start_s[i], points.end_s[i]), label }));
    if (await saveLabels(jobId, folder, changes, "window")) {
      for (const c of changes) labels.byWindow.set(c.target, label);
      redraw();
    }
  } }, "Label selection");
  const open = h("button", { onclick: () => {
    const members = indices.slice(0, 48).map((i) => ({ file: points.file[i], start_s: points.start_s[i],
      end_s: points.end_s[i], top_label: "", path: pathAt(folder, points, i) }));
    box.append(tilesGrid(jobId, folder, members));
  } }, "Open as group");
  box.replaceChildren(h("div", { class: "card" }, h("strong", {}, `${indices.length} windows selected`),
    h("div", { class: "toolbar" }, input, save, open)));
}

function tilesGrid(jobId, folder, members) {
  return h("div", { class: "tiles" }, members.map((m) => {
    const tile = h("div", { class: "tile", tabindex: 0, "data-file": m.file, "data-start": m.start_s },
      h("img", { alt: `${m.file} at ${m.start_s} s`, loading: "lazy", src: tileUrl(jobId, memberPath(folder, m), m.start_s, m.end_s) }),
      h("div", { class: "playhead" }),
      h("div", { class: "caption" }, `${m.file} @${m.start_s}s ${m.top_label ? "· " + m.top_label : ""}`));
    tile.addEventListener("click", () => play(tile, folder, m));
    tile.addEventListener("dblclick", () => bigSpectrogram(jobId, folder, m));
    return tile;
  }));
}

async function play(tile, folder, member) {
  if (state.playing && state.playing.tile === tile && !player.paused) {
    player.pause();
    return;
  }
  document.querySelectorAll(".tile.playing").forEach((t) => t.classList.remove("playing"));
  const path = memberPath(folder, member);
  const { url } = await api(`${base()}/audio-link?path=${encodeURIComponent(path)}`);
  if (player.dataset.path !== path) {
    player.preload = "auto";  // the header, then the spans played: ranged reads
    player.src = url;
    player.dataset.path = path;
  }
  state.playing = { tile, start: member.start_s, end: member.end_s };
  tile.classList.add("playing");
  await new Promise((resolve) => {
    if (player.readyState >= 1) resolve();
    else player.addEventListener("loadedmetadata", resolve, { once: true });
  });
  player.currentTime = member.start_s;
  await player.play();
  const head = tile.querySelector(".playhead");
  const img = tile.querySelector("img");
  const step = () => {
    if (!state.playing || state.playing.tile !== tile) return;
    const t = player.currentTime;
    if (t >= member.end_s || player.paused) {
      player.pause();
      tile.classList.remove("playing");
      tile.dataset.played = "true";
      return;
    }
    const share = (t - member.start_s) / (member.end_s - member.start_s);
    head.style.left = `calc(.25rem + ${Math.max(0, Math.min(1, share)) * img.clientWidth}px)`;
    requestAnimationFrame(step);
  };
  requestAnimationFrame(step);
}

function bigSpectrogram(jobId, folder, member) {
  const old = document.querySelector(".big");
  if (old) old.remove();
  const fmin = h("input", { type: "text", value: "0", size: 6, "aria-label": "lowest Hz" });
  const fmax = h("input", { type: "text", value: "12000", size: 6, "aria-label": "highest Hz" });
  const cmap = h("select", { "aria-label": "colours" }, ["magma", "viridis", "gray_r", "inferno"].map((c) => h("option", { value: c }, c)));
  const start = Math.max(0, member.start_s - 1.5);
  const img = h("img", { alt: "larger spectrogram" });
  const render = () => {
    img.src = tileUrl(jobId, memberPath(folder, member), start, member.end_s + 1.5,
      { width: 1200, height: 400, fmin: fmin.value, fmax: fmax.value, cmap: cmap.value });
  };
  for (const c of [fmin, fmax, cmap]) c.addEventListener("change", render);
  render();
  view.append(h("div", { class: "big" }, h("div", { class: "toolbar" },
    h("strong", {}, `${member.file} ${start}–${member.end_s + 1.5} s`), "Hz", fmin, "to", fmax, cmap,
    h("button", { onclick: (e) => e.target.closest(".big").remove() }, "Close")), img));
}

async function clusterPage(jobId, folder, cluster) {
  const k = Number(cluster);
  setCrumbs([[state.project, "#/"], [jobId.slice(0, 8), `#/job/${jobId}`],
    [folder, `#/job/${jobId}/${encodeURIComponent(folder)}`], [k < 0 ? "noise" : `cluster ${k}`, null]]);
  const [data, sheet, labels, names] = await Promise.all([
    api(`${base()}/jobs/${jobId}/clusters/${encodeURIComponent(folder)}/${k}`),
    api(`${base()}/jobs/${jobId}/review/${encodeURIComponent(folder)}`),
    loadLabels(jobId, folder),
    api(`${base()}/label-names`),
  ]);
  state.names = names.labels;
  const order = sheet.map((r) => Number(r.Cluster));
  const row = sheet.find((r) => Number(r.Cluster) === k) || {};
  const input = labelInput(labels.byCluster.get(k), row.SuggestedLabel);
  input.id = "cluster-label";
  const go = (delta) => {
    const next = order[order.indexOf(k) + delta];
    if (next !== undefined) location.hash = `#/job/${jobId}/${encodeURIComponent(folder)}/${next}`;
  };
  const save = async (label) => {
    input.value = label;
    const source = label && label === row.SuggestedLabel ? "suggested-accepted" : "cluster";
    if (await saveLabels(jobId, folder, [{ target: `cluster:${k}`, label }], source)) go(1);
  };
  const grid = tilesGrid(jobId, folder, data.members);
  view.replaceChildren(
    h("div", { class: "toolbar" }, h("h2", { style: "margin:0" }, `${k < 0 ? "noise" : "cluster " + k}: ${data.size} windows`),
      row.TopLabels ? h("span", { class: "muted" }, row.TopLabels) : null),
    h("div", { class: "toolbar" }, input,
      h("button", { class: "primary", id: "save-label", onclick: () => save(input.value.trim()) }, "Save"),
      row.SuggestedLabel ? h("button", { onclick: () => save(row.SuggestedLabel) },
        h("span", { class: "suggested" }, `accept “${row.SuggestedLabel}”`), " ", h("kbd", {}, "a")) : null,
      h("button", { onclick: () => save("discard") }, "discard ", h("kbd", {}, "d")),
      h("button", { onclick: () => go(-1) }, "previous ", h("kbd", {}, "p")),
      h("button", { onclick: () => go(1) }, "next ", h("kbd", {}, "n")),
      h("span", { class: "muted" }, "click a tile to play it, double-click for a larger spectrogram; ",
        h("kbd", {}, "space"), " plays the first, ", h("kbd", {}, "l"), " labels")),
    grid);
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); save(input.value.trim()); }
  });
  keys.handler = (event) => {
    if (event.target.tagName === "INPUT" || event.target.tagName === "SELECT") return;
    if (event.key === "n") go(1);
    else if (event.key === "p") go(-1);
    else if (event.key === "l") { event.preventDefault(); input.focus(); }
    else if (event.key === "a" && row.SuggestedLabel) save(row.SuggestedLabel);
    else if (event.key === "d") save("discard");
    else if (event.key === " ") {
      event.preventDefault();
      const first = grid.querySelector(".tile");
      if (first) play(first, folder, data.members[0]);
    }
  };
}

const keys = { handler: null };
document.addEventListener("keydown", (event) => { if (keys.handler) keys.handler(event); });

// -- routing -------------------------------------------------------------------------

async function route() {
  keys.handler = null;
  try {
    if (!(await ensureSession())) return;
    document.getElementById("who").textContent = `project ${state.project}`;
    const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
    if (parts[0] === "job" && parts.length === 2) await jobPage(parts[1]);
    else if (parts[0] === "job" && parts.length === 3) await deploymentPage(parts[1], parts[2]);
    else if (parts[0] === "job" && parts.length === 4) await clusterPage(parts[1], parts[2], parts[3]);
    else await jobsPage();
  } catch (error) {
    view.replaceChildren(h("p", { class: "error" }, `Could not load this page: ${error.message}`));
  }
}

window.addEventListener("hashchange", route);
route();
