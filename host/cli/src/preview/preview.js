// The preview page: the latest frame of a node, refreshed a few times a second; a control for
// every parameter of every plugin, built from its schema (GET /state), that posts new values
// (POST /params with the token from the page's address, #token=...); each plugin's figures.
"use strict";
const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
const $ = (id) => document.getElementById(id);
const built = new Set();
const seen = {};
let last = { frames_out: 0, at: performance.now() };

function post(route, body) {
  return fetch(route, {
    method: "POST",
    headers: { "Authorization": "Bearer " + token, "Content-Type": "application/json" },
    body: JSON.stringify(body || {}),
  }).then(async (answer) => {
    const text = await answer.text();
    $("error").textContent = answer.ok ? "" : (JSON.parse(text).error || text);
    return answer.ok;
  });
}

function control(plugin, param) {
  const label = document.createElement("label");
  label.textContent = param.name + " ";
  let input;
  const send = (value) => post("/params", { plugin, params: { [param.name]: value } });
  if (param.type === "bool") {
    input = document.createElement("input");
    input.type = "checkbox";
    input.checked = !!param.default;
    input.addEventListener("change", () => send(input.checked));
  } else if (param.type === "enum") {
    input = document.createElement("select");
    for (const choice of param.choices || []) {
      const option = document.createElement("option");
      option.value = option.textContent = choice;
      input.appendChild(option);
    }
    input.value = param.default;
    input.addEventListener("change", () => send(input.value));
  } else if (param.type === "int" || param.type === "float") {
    input = document.createElement("input");
    input.type = "range";
    const lo = param.min ?? Math.min(0, param.default), hi = param.max ?? Math.max(100, param.default * 4 || 100);
    input.min = lo; input.max = hi;
    input.step = param.type === "int" ? 1 : (hi - lo) / 1000;
    input.value = param.default;
    const shown = document.createElement("span");
    shown.textContent = input.value;
    input.addEventListener("input", () => {
      shown.textContent = input.value;
      send(param.type === "int" ? parseInt(input.value, 10) : parseFloat(input.value));
    });
    label.appendChild(shown);
  } else {
    input = document.createElement("input");
    input.value = param.default ?? "";
    input.addEventListener("change", () => send(input.value));
  }
  input.dataset.plugin = plugin;
  input.dataset.param = param.name;
  input.title = param.help || "";
  label.appendChild(input);
  return label;
}

function show(state) {
  const now = performance.now();
  const rate = (state.frames_out - last.frames_out) / ((now - last.at) / 1000);
  last = { frames_out: state.frames_out, at: now };
  $("run").textContent = `${state.paused ? "paused" : "running"} · ${state.frames_in} in, ${state.frames_out} out · ${rate.toFixed(1)} frames/s`;
  const select = $("node");
  for (const name of state.frames) {
    if (![...select.options].some((o) => o.value === name)) {
      const option = document.createElement("option");
      option.value = option.textContent = name;
      select.appendChild(option);
      if (select.options.length === 1 || name === state.plugins.at(-1)?.name) select.value = name;
    }
  }
  for (const plugin of state.plugins) {
    let box = document.getElementById("plugin-" + plugin.name);
    if (!built.has(plugin.name)) {
      built.add(plugin.name);
      box = document.createElement("section");
      box.className = "plugin";
      box.id = "plugin-" + plugin.name;
      const title = document.createElement("h2");
      title.textContent = plugin.name + " (" + plugin.description.name + " " + plugin.description.version + ")";
      box.appendChild(title);
      for (const param of plugin.description.params) box.appendChild(control(plugin.name, param));
      const figures = document.createElement("div");
      figures.className = "stats";
      box.appendChild(figures);
      $("plugins").appendChild(box);
    }
    const s = plugin.stats || {};
    const before = seen[plugin.name] || { frames: s.frames ?? 0, at: now };
    const fps = ((s.frames ?? 0) - before.frames) / Math.max((now - before.at) / 1000, 0.001);
    seen[plugin.name] = { frames: s.frames ?? 0, at: now };
    const time = (us) => (us >= 1000 ? (us / 1000).toFixed(2) + " ms" : (us ?? 0) + " µs");
    box.querySelector(".stats").textContent =
      `${fps.toFixed(1)} frames/s · frames ${s.frames ?? 0} · p50 ${time(s.p50_us)} · p99 ${time(s.p99_us)} · ` +
      `errors ${s.errors ?? 0} · restarts ${s.restarts ?? 0} · sandbox ${plugin.sandbox}`;
  }
}

function refreshState() {
  fetch("/state").then((r) => r.json()).then(show).catch(() => {}).finally(() => setTimeout(refreshState, 500));
}

function refreshFrame() {
  const node = $("node").value;
  if (!node) return setTimeout(refreshFrame, 100);
  const image = new Image();
  image.onload = () => { $("frame").src = image.src; setTimeout(refreshFrame, FRAME_EVERY_MS); };
  image.onerror = () => setTimeout(refreshFrame, FRAME_EVERY_MS);
  image.src = "/frame?node=" + encodeURIComponent(node) + "&n=" + Date.now();
}

const FRAME_EVERY_MS = 200;
$("pause").onclick = () => post("/pause");
$("step").onclick = () => post("/step");
$("resume").onclick = () => post("/resume");
refreshState();
refreshFrame();
