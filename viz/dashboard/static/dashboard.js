"use strict";
// Polls /state every second and redraws the curves (with their axes), the accuracy per
// epoch, the layer table and the histograms. A saved snapshot (dashboard.html in a run
// directory) carries its state in window.DASHBOARD_SNAPSHOT and is drawn once, no server.

const status = document.getElementById("status");
const AXIS = "#777", TEXT = "#444", FONT = "11px Helvetica, Arial, sans-serif";
const MARGIN = { left: 52, right: 12, top: 10, bottom: 34 };
let lastStep = -1, lastState = null;

function format(v) {
  if (v === 0) return "0";
  const a = Math.abs(v);
  return a >= 1e4 || a < 1e-3 ? v.toExponential(1) : Number(v.toPrecision(3)).toString();
}

// Axes with tick labels: y from low to high (3 ticks), x over the given ticks, with a name.
function axes(ctx, canvas, low, high, xTicks, xName) {
  const w = canvas.width - MARGIN.left - MARGIN.right, h = canvas.height - MARGIN.top - MARGIN.bottom;
  ctx.strokeStyle = AXIS;
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(MARGIN.left, MARGIN.top);
  ctx.lineTo(MARGIN.left, MARGIN.top + h);
  ctx.lineTo(MARGIN.left + w, MARGIN.top + h);
  ctx.stroke();
  ctx.fillStyle = TEXT;
  ctx.font = FONT;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const f of [0, 0.5, 1]) {
    const y = MARGIN.top + h - f * h;
    ctx.fillText(format(low + f * (high - low)), MARGIN.left - 5, y);
    ctx.beginPath();
    ctx.moveTo(MARGIN.left - 3, y);
    ctx.lineTo(MARGIN.left, y);
    ctx.stroke();
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const [x, label] of xTicks) {
    ctx.fillText(label, x, MARGIN.top + h + 4);
    ctx.beginPath();
    ctx.moveTo(x, MARGIN.top + h);
    ctx.lineTo(x, MARGIN.top + h + 3);
    ctx.stroke();
  }
  ctx.fillText(xName, MARGIN.left + w / 2, MARGIN.top + h + 19);
}

// Lines of (x, y) points on shared axes; series: [{points, color, label}].
function chart(canvas, series, xName, integerX) {
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const all = series.flatMap((s) => s.points);
  if (all.length < 1) return;
  const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
  let low = Math.min(...ys), high = Math.max(...ys);
  if (high === low) { low -= Math.abs(low) * 0.1 || 1; high += Math.abs(high) * 0.1 || 1; }
  const first = Math.min(...xs), last = Math.max(...xs), spanX = last > first ? last - first : 1;
  const w = canvas.width - MARGIN.left - MARGIN.right, h = canvas.height - MARGIN.top - MARGIN.bottom;
  const px = (x) => MARGIN.left + w * (last > first ? (x - first) / spanX : 0.5);
  const py = (y) => MARGIN.top + h - h * (y - low) / (high - low);
  let ticks = [first, (first + last) / 2, last];
  if (integerX) ticks = [...new Set(ticks.map(Math.round))];
  axes(ctx, canvas, low, high, ticks.map((t) => [px(t), integerX ? String(t) : format(Math.round(t))]), xName);
  series.forEach((s, k) => {
    ctx.strokeStyle = s.color;
    ctx.fillStyle = s.color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    s.points.forEach(([x, y], i) => (i === 0 ? ctx.moveTo(px(x), py(y)) : ctx.lineTo(px(x), py(y))));
    ctx.stroke();
    if (s.points.length < 20) s.points.forEach(([x, y]) => ctx.fillRect(px(x) - 2, py(y) - 2, 4, 4));
    if (s.label) {
      ctx.textAlign = "left";
      ctx.textBaseline = "top";
      ctx.fillText(s.label, MARGIN.left + 8, MARGIN.top + 4 + 14 * k);
    }
  });
}

function histogram(layer) {
  const figure = document.createElement("figure");
  const canvas = document.createElement("canvas");
  canvas.width = 180;
  canvas.height = 84;
  canvas.title = layer.name;
  const ctx = canvas.getContext("2d");
  const counts = layer.histogram.counts, low = layer.histogram.low, high = layer.histogram.high;
  const top = Math.max(...counts, 1), base = canvas.height - 30, w = (canvas.width - 8) / counts.length;
  ctx.fillStyle = "#3d6cb9";
  counts.forEach((c, i) => ctx.fillRect(4 + i * w, base - (base - 4) * c / top, w - 1, (base - 4) * c / top));
  ctx.strokeStyle = AXIS;
  ctx.beginPath();
  ctx.moveTo(4, base + 0.5);
  ctx.lineTo(canvas.width - 4, base + 0.5);
  ctx.stroke();
  ctx.fillStyle = TEXT;
  ctx.font = FONT;
  ctx.textBaseline = "top";
  ctx.textAlign = "left";
  ctx.fillText(format(low), 2, base + 3);
  ctx.textAlign = "right";
  ctx.fillText(format(high), canvas.width - 2, base + 3);
  const zero = 4 + (canvas.width - 8) * (-low / (high - low));
  if (low < 0 && high > 0 && zero > 46 && zero < canvas.width - 46) {  // where zero lies, clear of the end labels
    const x = zero;
    ctx.textAlign = "center";
    ctx.fillText("0", x, base + 3);
    ctx.beginPath();
    ctx.moveTo(x, base);
    ctx.lineTo(x, base + 3);
    ctx.stroke();
  }
  ctx.textAlign = "center";
  ctx.fillText(layer.name, canvas.width / 2, base + 16);
  figure.append(canvas);
  return figure;
}

function describe(state) {
  const epoch = (state.step / state.steps_per_epoch).toFixed(2);
  const where = `step ${state.step} (epoch ${epoch})`;
  if (state.status === "stopped") return `stopped: ${state.error} at ${where}`;
  if (state.status === "finished") {
    const last = state.epochs[state.epochs.length - 1];
    const accuracy = last && last.test_accuracy !== undefined ? `, test accuracy ${(100 * last.test_accuracy).toFixed(2)}%` : "";
    return `finished: ${where}${accuracy}`;
  }
  return `training: ${where}`;
}

function show(state) {
  lastState = state;
  document.getElementById("title").textContent = state.title;
  status.textContent = describe(state);
  status.dataset.step = String(state.step);
  status.dataset.status = state.status;
  if (state.step === lastStep && state.status === "training") return;
  lastStep = state.step;
  const series = (key, color) => [{ points: state.points.map((p) => [p.step, p[key]]), color }];
  chart(document.getElementById("loss"), series("loss", "#b02a37"), "step");
  chart(document.getElementById("accuracy"), series("accuracy", "#2e7d4f"), "step");
  chart(document.getElementById("lr"), series("lr", "#997404"), "step");
  chart(document.getElementById("speed"), series("images_per_s", "#3d6cb9"), "step");
  const epochs = state.epochs.filter((e) => e.test_accuracy !== undefined);
  chart(document.getElementById("epochs"), [
    { points: epochs.map((e) => [e.epoch, e.test_accuracy]), color: "#6f42c1", label: "test accuracy" },
    { points: epochs.map((e) => [e.epoch, e.train_accuracy]), color: "#2e7d4f", label: "training accuracy" },
  ], "epoch", true);
  const body = document.querySelector("#layers tbody");
  body.replaceChildren(...state.layers.map((l) => {
    const row = document.createElement("tr");
    for (const text of [l.name, l.weight_norm.toFixed(4), l.grad_norm === null ? "" : l.grad_norm.toFixed(4)]) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.append(cell);
    }
    return row;
  }));
  document.getElementById("histograms").replaceChildren(...state.layers.map(histogram));
  const graph = document.getElementById("graph");
  if (state.has_graph && !graph.src) graph.src = window.DASHBOARD_GRAPH || "graph.svg";
  document.getElementById("graph-viewer").hidden = !state.has_graph_viewer;
}

function poll() {
  fetch("state").then((r) => r.json()).then(show).catch(() => {
    status.textContent = lastState && lastState.status !== "training"
      ? `${describe(lastState)} (the server has stopped)`
      : "the training has stopped (no answer from the server)";
  }).finally(() => setTimeout(poll, 1000));
}

if (window.DASHBOARD_SNAPSHOT) show(window.DASHBOARD_SNAPSHOT); else poll();
