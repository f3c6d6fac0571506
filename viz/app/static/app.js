// The digit app's page: draw on #pad; after every stroke (and every so often while
// drawing) the canvas's gray levels go to POST /predict, and the answer fills in the
// prediction, the probability bars, the 28x28 input and the feature maps.
"use strict";

const STROKE_WIDTH = 20;       // on the 280x280 pad: about MNIST's stroke width once scaled to 20x20
const LIVE_INTERVAL_MS = 250;  // while drawing, predict at most this often

const pad = document.getElementById("pad");
const padContext = pad.getContext("2d", { willReadFrequently: true });
const digitView = document.getElementById("digit");
const confidenceView = document.getElementById("confidence");
const statusView = document.getElementById("status");
const barsView = document.getElementById("bars");
const inputView = document.getElementById("input");
const saliencyView = document.getElementById("saliency");
const layersView = document.getElementById("layers");
const modelInfo = document.getElementById("model-info");

let drawing = false;
let last = null;             // the previous point of the current stroke
let inked = false;           // anything drawn since the last Clear
let inFlight = false;        // a request is on its way; at most one at a time
let pending = false;         // the drawing changed while a request was on its way
let generation = 0;          // bumped by Clear, so late answers for a cleared drawing are dropped
let lastSent = 0;

function clearPad() {
  padContext.fillStyle = "#000";
  padContext.fillRect(0, 0, pad.width, pad.height);
}

function padPoint(event) {
  const box = pad.getBoundingClientRect();
  return {
    x: (event.clientX - box.left) * (pad.width / box.width),
    y: (event.clientY - box.top) * (pad.height / box.height),
  };
}

function strokeTo(point) {
  padContext.strokeStyle = "#fff";
  padContext.fillStyle = "#fff";
  padContext.lineWidth = STROKE_WIDTH;
  padContext.lineCap = "round";
  padContext.lineJoin = "round";
  if (last === null) {
    padContext.beginPath();
    padContext.arc(point.x, point.y, STROKE_WIDTH / 2, 0, 2 * Math.PI);
    padContext.fill();
  } else {
    padContext.beginPath();
    padContext.moveTo(last.x, last.y);
    padContext.lineTo(point.x, point.y);
    padContext.stroke();
  }
  last = point;
  inked = true;
}

pad.addEventListener("pointerdown", (event) => {
  if (event.pointerType === "mouse" && event.button !== 0) return;
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  drawing = true;
  last = null;
  strokeTo(padPoint(event));
});

pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
  for (const e of events.length ? events : [event]) strokeTo(padPoint(e));
  if (performance.now() - lastSent > LIVE_INTERVAL_MS) requestPrediction();
});

function endStroke() {
  if (!drawing) return;
  drawing = false;
  last = null;
  requestPrediction();
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

document.getElementById("clear").addEventListener("click", () => {
  generation += 1;
  pending = false;
  inked = false;
  clearPad();
  showEmpty();
  setStatus("Draw with the mouse, a finger or a pen.");
});

// The pad's gray levels (its red channel: the pad is white on opaque black) as base64.
function padPixels() {
  const rgba = padContext.getImageData(0, 0, pad.width, pad.height).data;
  const gray = new Uint8Array(pad.width * pad.height);
  for (let i = 0; i < gray.length; i++) gray[i] = rgba[4 * i];
  let text = "";
  for (let i = 0; i < gray.length; i += 0x8000) {
    text += String.fromCharCode.apply(null, gray.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

async function requestPrediction() {
  if (!inked) return;
  if (inFlight) {
    pending = true;
    return;
  }
  inFlight = true;
  pending = false;
  lastSent = performance.now();
  const sentFor = generation;
  try {
    const response = await fetch("predict", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ width: pad.width, height: pad.height, pixels: padPixels() }),
    });
    const answer = await response.json();
    if (sentFor !== generation) return;
    if (!response.ok) {
      setStatus(answer.error || `error ${response.status}`, true);
    } else {
      showPrediction(answer);
      setStatus("Draw more strokes, or Clear and start again.");
    }
  } catch (error) {
    if (sentFor === generation) setStatus(`cannot reach the server: ${error.message}`, true);
  } finally {
    inFlight = false;
    if (pending) requestPrediction();
  }
}

function setStatus(text, isError = false) {
  statusView.textContent = text;
  statusView.classList.toggle("error", isError);
}

function makeBars(classes) {
  barsView.replaceChildren();
  for (const name of classes) {
    const row = document.createElement("li");
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = name;
    label.title = name;
    const track = document.createElement("span");
    track.className = "track";
    const fill = document.createElement("span");
    fill.className = "fill";
    track.append(fill);
    const value = document.createElement("span");
    value.className = "value";
    row.append(label, track, value);
    barsView.append(row);
  }
}

function showEmpty() {
  digitView.textContent = "?";
  digitView.classList.remove("rejected");
  confidenceView.textContent = "";
  for (const row of barsView.children) {
    row.classList.remove("top");
    row.querySelector(".fill").style.width = "0%";
    row.querySelector(".value").textContent = "";
  }
  paint(inputView, null, 0, 1);
  paintSaliency(saliencyView, null, null);
  for (const canvas of layersView.querySelectorAll("canvas")) paint(canvas, null, 0, 1);
}

function showPrediction(answer) {
  if (barsView.children.length !== answer.classes.length) makeBars(answer.classes);
  modelInfo.textContent = `${answer.model}, trained on ${answer.dataset}, reads it after every stroke.`;
  const best = answer.probabilities[answer.digit];
  const rejected = answer.not_a_digit === true;  // unlike anything it was trained on: say so first
  digitView.textContent = rejected ? "not a digit" : answer.label;
  digitView.classList.toggle("rejected", rejected);
  confidenceView.textContent = rejected
    ? `${answer.too_small ? "too small to read" : "unlike the digits it was trained on"}; the closest is ` +
      `${answer.label} (${(100 * best).toFixed(1)}%)`
    : `${(100 * best).toFixed(1)}% sure`;
  confidenceView.classList.toggle("doubt", rejected);
  answer.probabilities.forEach((p, k) => {
    const row = barsView.children[k];
    row.classList.toggle("top", k === answer.digit);
    row.querySelector(".fill").style.width = `${(100 * p).toFixed(2)}%`;
    row.querySelector(".value").textContent = `${(100 * p).toFixed(1)}%`;
  });
  const rbf = document.getElementById("rbf");
  rbf.hidden = !answer.rbf_distances;
  if (answer.rbf_distances) {
    rbf.textContent = "RBF distance to each class's code (smallest wins): " +
      answer.rbf_distances.map((d, k) => `${answer.classes[k]}: ${d.toFixed(1)}`).join(", ");
  }
  paint(inputView, answer.input, 0, 255);
  paintSaliency(saliencyView, answer.saliency, answer.input);
  showLayers(answer.layers);
}

function showLayers(layers) {
  if (layersView.children.length !== layers.length) {
    layersView.replaceChildren();
    for (const layer of layers) {
      const figure = document.createElement("figure");
      figure.className = "stage";
      figure.dataset.layer = layer.name;
      const caption = document.createElement("figcaption");
      caption.textContent = layer.title;
      const detail = document.createElement("small");
      const [count, height, width] = layer.shape;
      detail.textContent = `${count} feature maps of ${height}\u00d7${width} (${layer.name})`;
      caption.append(detail);
      const grid = document.createElement("div");
      grid.className = `maps count-${count}`;
      for (let i = 0; i < count; i++) {
        const canvas = document.createElement("canvas");
        canvas.width = width;
        canvas.height = height;
        canvas.title = `map ${i}`;
        grid.append(canvas);
      }
      figure.append(caption, grid);
      layersView.append(figure);
    }
  }
  layers.forEach((layer, n) => {
    let low = 0;
    let high = -Infinity;
    for (const map of layer.maps) {
      for (const row of map) {
        for (const v of row) {
          if (v < low) low = v;
          if (v > high) high = v;
        }
      }
    }
    const canvases = layersView.children[n].querySelectorAll("canvas");
    layer.maps.forEach((map, i) => paint(canvases[i], map, low, high));
  });
}

// Draw `rows` (a 2-D array of numbers; null for black) into `canvas`: `low` black, `high` white.
function paint(canvas, rows, low, high) {
  const context = canvas.getContext("2d");
  const image = context.createImageData(canvas.width, canvas.height);
  const scale = high > low ? 255 / (high - low) : 0;
  for (let y = 0; rows && y < canvas.height; y++) {
    for (let x = 0; x < canvas.width; x++) {
      const level = Math.round((rows[y][x] - low) * scale);
      const i = 4 * (y * canvas.width + x);
      image.data[i] = image.data[i + 1] = image.data[i + 2] = level;
    }
  }
  for (let i = 3; i < image.data.length; i += 4) image.data[i] = 255;
  context.putImageData(image, 0, 0);
}

// Signed values as a heat map: red positive, blue negative, white zero (scaled by the largest magnitude).
// Colours of the saliency map: blue where ink lowers the score, red where it raises it.
const RAISES = [230, 40, 40], LOWERS = [40, 100, 255];

// The saliency over the input: each pixel the input's gray level, tinted towards red or
// blue by |value| / the largest |value|; the scale below says what full colour means.
function paintSaliency(canvas, rows, input) {
  const context = canvas.getContext("2d");
  const image = context.createImageData(canvas.width, canvas.height);
  let top = 0;
  for (const row of rows || []) for (const v of row) top = Math.max(top, Math.abs(v));
  for (let y = 0; y < canvas.height; y++) {
    for (let x = 0; x < canvas.width; x++) {
      const v = rows && top > 0 ? rows[y][x] / top : 0;
      const gray = input ? input[y][x] : 0;
      const tint = v > 0 ? RAISES : LOWERS, a = Math.abs(v);
      const i = 4 * (y * canvas.width + x);
      for (let c = 0; c < 3; c++) image.data[i + c] = Math.round(gray * (1 - a) + tint[c] * a);
      image.data[i + 3] = 255;
    }
  }
  context.putImageData(image, 0, 0);
  document.getElementById("saliency-low").textContent = rows ? `\u2212${top.toPrecision(2)}` : "";
  document.getElementById("saliency-high").textContent = rows ? `+${top.toPrecision(2)}` : "";
}

function paintScale() {
  const canvas = document.getElementById("saliency-scale");
  const context = canvas.getContext("2d");
  for (let x = 0; x < canvas.width; x++) {
    const v = 2 * x / (canvas.width - 1) - 1, tint = v > 0 ? RAISES : LOWERS, a = Math.abs(v);
    context.fillStyle = `rgb(${tint.map((c) => Math.round(c * a)).join(",")})`;
    context.fillRect(x, 0, 1, canvas.height);
  }
}

paintScale();
clearPad();
makeBars(["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
showEmpty();

// What to draw: "a digit" for digit models, the class names otherwise (e.g. Fashion-MNIST).
fetch("info").then((r) => r.json()).then((info) => {
  document.getElementById("heading").textContent = info.heading;
}).catch(() => {});
