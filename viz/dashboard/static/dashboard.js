"use strict";
// Polls /state every second and redraws the curves, the layer table and the histograms.

const status = document.getElementById("status");
let lastStep = -1;

function plot(canvas, values, color) {
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (values.length < 1) return;
  const low = Math.min(...values), high = Math.max(...values);
  const span = high > low ? high - low : 1;
  const pad = 24;
  ctx.strokeStyle = color;
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  values.forEach((v, i) => {
    const x = pad + (canvas.width - 2 * pad) * (values.length > 1 ? i / (values.length - 1) : 0.5);
    const y = canvas.height - pad - (canvas.height - 2 * pad) * (v - low) / span;
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.stroke();
  ctx.fillStyle = "#555";
  ctx.font = "11px Helvetica";
  ctx.fillText(high.toPrecision(4), 2, 12);
  ctx.fillText(low.toPrecision(4), 2, canvas.height - 4);
}

function histogram(layer) {
  const canvas = document.createElement("canvas");
  canvas.width = 180;
  canvas.height = 70;
  canvas.title = layer.name;
  const ctx = canvas.getContext("2d");
  const counts = layer.histogram.counts;
  const top = Math.max(...counts, 1);
  const w = canvas.width / counts.length;
  ctx.fillStyle = "#3d6cb9";
  counts.forEach((c, i) => ctx.fillRect(i * w, canvas.height - 14 - (canvas.height - 14) * c / top, w - 1,
                                       (canvas.height - 14) * c / top));
  ctx.fillStyle = "#333";
  ctx.font = "10px Helvetica";
  ctx.fillText(layer.name, 2, canvas.height - 2);
  return canvas;
}

function show(state) {
  document.getElementById("title").textContent = state.title;
  const epoch = (state.step / state.steps_per_epoch).toFixed(2);
  status.textContent = `${state.done ? "finished" : "training"}: step ${state.step} (epoch ${epoch})`;
  status.dataset.step = String(state.step);
  if (state.step === lastStep) return;
  lastStep = state.step;
  const points = state.points;
  plot(document.getElementById("loss"), points.map((p) => p.loss), "#b02a37");
  plot(document.getElementById("accuracy"), points.map((p) => p.accuracy), "#2e7d4f");
  plot(document.getElementById("lr"), points.map((p) => p.lr), "#997404");
  plot(document.getElementById("speed"), points.map((p) => p.images_per_s), "#3d6cb9");
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
  if (state.has_graph && !graph.src) graph.src = "graph.svg";
}

function poll() {
  fetch("state").then((r) => r.json()).then(show).catch(() => {
    status.textContent = "the training has stopped (no answer from the server)";
  }).finally(() => setTimeout(poll, 1000));
}
poll();
