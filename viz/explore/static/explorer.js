/* The graph viewer. The data (tensors, ops, modules and the recorded backward steps of
   each view) comes from the page's "graph-data" element; the layout from Graphviz, run
   in the page (viz-global.js) each time modules are collapsed or expanded. Highlights,
   selection and the backward walk restyle the drawn SVG without a new layout. */
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("graph-data").textContent);
  const COLLAPSE_ABOVE = DATA.collapse_above;  // more nodes than this: modules start collapsed
  const $ = (id) => document.getElementById(id);
  const canvas = $("canvas"), details = $("details");
  const state = { view: 0, collapsed: new Set(), selected: null, step: -1, path: new Set(), box: null };
  let graphviz = null, svg = null;

  // ---- the data of each view, with what the drawing needs precomputed ----
  for (const view of DATA.views) {
    view.moduleNames = Object.keys(view.modules);
    view.moduleId = {};
    view.moduleNames.forEach((m, i) => { view.moduleId[m] = "m" + i; });
    view.nodeOfModule = {};
    view.moduleNames.forEach((m) => { view.nodeOfModule[view.moduleId[m]] = m; });
    view.stepOfOp = {};
    view.steps.forEach((s, i) => { view.stepOfOp[s.op] = i; });
    view.consumers = {};
    for (const [u, v] of view.edges) (view.consumers[u] = view.consumers[u] || []).push(v);
  }
  const current = () => DATA.views[state.view];

  function chain(view, module) {  // the module and its enclosing modules, innermost first
    const out = [];
    for (let m = module; m != null; m = view.modules[m].parent) out.push(m);
    return out;
  }

  function representative(view, key) {  // what shows `key`: itself or its outermost collapsed module
    const modules = chain(view, view.nodes[key].module);
    let rep = key;
    for (const m of modules) if (state.collapsed.has(m)) rep = view.moduleId[m];
    return rep;
  }

  // ---- DOT source for the current collapse state ----
  const quote = (s) => '"' + String(s).replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n") + '"';
  const attrs = (a) => "[" + Object.entries(a).map(([k, v]) => k + "=" + quote(v)).join(", ") + "]";

  function dotSource(view) {
    const members = new Map();  // container module (or null) -> lines of its nodes
    const used = new Set();
    const put = (container, line) => {
      if (!members.has(container)) members.set(container, []);
      members.get(container).push(line);
      for (const m of chain(view, container)) used.add(m);
    };
    const reps = {}, emitted = new Set();
    for (const key of Object.keys(view.nodes)) {
      const rep = representative(view, key);
      reps[key] = rep;
      const node = view.nodes[key];
      if (rep === key) {
        put(node.module, quote(key) + " " + attrs({ ...DATA.styles[node.kind], id: "n-" + key, label: node.label, tooltip: node.label }));
      } else if (!emitted.has(rep)) {
        emitted.add(rep);
        const m = view.nodeOfModule[rep];
        const inside = Object.values(view.nodes).filter((n) => n.kind.endsWith("op") && chain(view, n.module).includes(m)).length;
        put(view.modules[m].parent, quote(rep) + " " + attrs({ ...DATA.styles.module, id: "n-" + rep,
          label: view.modules[m].label + "\n" + inside + (inside === 1 ? " op" : " ops") + " (click to expand)", tooltip: view.modules[m].label }));
      }
    }
    const lines = ["digraph G {", 'graph [rankdir=TB, fontname="Helvetica", fontsize=11, nodesep=0.25, ranksep=0.35];',
      'node [fontname="Helvetica", fontsize=10];', 'edge [color="#444444", arrowsize=0.7];'];
    const emit = (container, indent) => {
      for (const line of members.get(container) || []) lines.push(indent + line + ";");
      for (const m of view.moduleNames) {
        if (view.modules[m].parent === container && used.has(m) && !state.collapsed.has(m)) {
          lines.push(indent + "subgraph " + quote("cluster_" + view.moduleId[m]) + " {");
          lines.push(indent + "  " + ["id=" + quote("c-" + view.moduleId[m]), "label=" + quote(view.modules[m].label),
            'style="rounded,dashed"', 'color="#999999"', 'fontcolor="#555555"', 'labeljust="l"',
            "tooltip=" + quote("click to collapse " + view.modules[m].label)].join("; ") + ";");
          emit(m, indent + "  ");
          lines.push(indent + "}");
        }
      }
    };
    emit(null, "");
    const seen = new Set();
    for (const [u, v] of view.edges) {
      const a = reps[u], b = reps[v], id = a + "->" + b;
      if (a !== b && !seen.has(id)) {
        seen.add(id);
        lines.push(quote(a) + " -> " + quote(b) + " " + attrs({ id: "e-" + a + "-" + b }) + ";");
      }
    }
    lines.push("}");
    return { source: lines.join("\n"), reps };
  }

  // ---- drawing, pan and zoom ----
  let drawn = { reps: {} };
  function render() {
    const view = current();
    drawn = dotSource(view);
    canvas.textContent = "";
    svg = graphviz.renderSVGElement(drawn.source);
    svg.removeAttribute("width");
    svg.removeAttribute("height");
    svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
    const vb = svg.viewBox.baseVal;
    state.box = { x: vb.x, y: vb.y, w: vb.width, h: vb.height };
    canvas.appendChild(svg);
    fit();
    $("count").textContent = canvas.querySelectorAll("g.node").length + " nodes shown of " +
      Object.keys(view.nodes).length;
    restyle();
  }

  function setViewBox(x, y, w, h) { svg.setAttribute("viewBox", [x, y, w, h].join(" ")); }
  function viewBox() { const b = svg.viewBox.baseVal; return { x: b.x, y: b.y, w: b.width, h: b.height }; }

  function fit() {  // the whole graph, letterboxed to the canvas's shape
    if (!svg) return;
    const b = state.box, cw = canvas.clientWidth || 1, ch = canvas.clientHeight || 1;
    const scale = Math.max(b.w / cw, b.h / ch);
    const w = cw * scale, h = ch * scale;
    setViewBox(b.x - (w - b.w) / 2, b.y - (h - b.h) / 2, w, h);
  }

  function zoom(factor, cx, cy) {  // cx, cy: the fixed point, in canvas pixels
    const v = viewBox(), r = canvas.getBoundingClientRect();
    const px = cx === undefined ? 0.5 : (cx - r.left) / r.width, py = cy === undefined ? 0.5 : (cy - r.top) / r.height;
    const w = v.w * factor, h = v.h * factor;
    setViewBox(v.x + (v.w - w) * px, v.y + (v.h - h) * py, w, h);
  }

  function centre(element) {  // pan (and zoom in if needed) so that `element` is in the middle
    const r = canvas.getBoundingClientRect(), e = element.getBoundingClientRect(), v = viewBox();
    const perPixel = v.w / r.width;
    let x = v.x + (e.left + e.width / 2 - r.left - r.width / 2) * perPixel;
    let y = v.y + (e.top + e.height / 2 - r.top - r.height / 2) * perPixel;
    setViewBox(x, y, v.w, v.h);
    if (e.height < 24) zoom(Math.max(e.height / 36, 0.05));
  }

  let drag = null;
  canvas.addEventListener("pointerdown", (ev) => {
    drag = { x: ev.clientX, y: ev.clientY, moved: false };
    canvas.setPointerCapture(ev.pointerId);
  });
  canvas.addEventListener("pointermove", (ev) => {
    if (!drag || !svg) return;
    const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
    if (!drag.moved && Math.abs(dx) + Math.abs(dy) < 4) return;
    drag.moved = true;
    canvas.classList.add("dragging");
    const v = viewBox(), perPixel = v.w / canvas.getBoundingClientRect().width;
    setViewBox(v.x - dx * perPixel, v.y - dy * perPixel, v.w, v.h);
    drag.x = ev.clientX;
    drag.y = ev.clientY;
  });
  canvas.addEventListener("pointerup", (ev) => {
    const click = drag && !drag.moved;
    drag = null;
    canvas.classList.remove("dragging");
    if (click) clicked(document.elementFromPoint(ev.clientX, ev.clientY));
  });
  canvas.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    if (svg) zoom(Math.exp(ev.deltaY * 0.0015), ev.clientX, ev.clientY);
  }, { passive: false });
  window.addEventListener("resize", () => fit());

  function clicked(target) {
    if (!target || !target.closest) return;
    const node = target.closest("g.node"), cluster = target.closest("g.cluster");
    if (node) {
      const id = node.id.slice(2);
      if (id in current().nodeOfModule) expand(current().nodeOfModule[id]);
      else select(id);
    } else if (cluster) {
      collapse(current().nodeOfModule[cluster.id.slice(2)]);
    }
  }

  // ---- highlights: selection, search matches, the current step, a path ----
  function restyle() {
    if (!svg) return;
    const view = current(), rep = (k) => drawn.reps[k] || k;
    const mark = (key, cls) => { const el = document.getElementById("n-" + rep(key)); if (el) el.classList.add(cls); };
    svg.querySelectorAll(".selected, .match, .current, .receives, .sends, .path, .flow")
      .forEach((el) => el.classList.remove("selected", "match", "current", "receives", "sends", "path", "flow"));
    if (state.selected) mark(state.selected, "selected");
    for (const key of state.matches || []) mark(key, "match");
    const step = view.steps[state.step];
    if (step) {
      mark(step.op, "current");
      mark(view.nodes[step.op].output, "receives");
      for (const s of step.sent) if (s.grad) mark(s.to, "sends");
      for (const s of step.sent) {
        const el = document.getElementById("e-" + rep(s.to) + "-" + rep(step.op));
        if (el && s.grad) el.classList.add("flow");
      }
    }
    for (const [u, v] of view.edges) {
      if (state.path.has(u) && state.path.has(v)) {
        const el = document.getElementById("e-" + rep(u) + "-" + rep(v));
        if (el) el.classList.add("path");
      }
    }
  }

  function pathToOutput(view, key) {  // every node on a path from `key` to the output
    const reached = new Set([key]), stack = [key];
    while (stack.length) for (const v of view.consumers[stack.pop()] || []) if (!reached.has(v)) { reached.add(v); stack.push(v); }
    return reached;
  }

  // ---- collapse and expand ----
  function collapse(module) {
    if (module == null) return;
    state.collapsed.add(module);
    render();
  }
  function expand(module) {
    for (const m of chain(current(), module)) state.collapsed.delete(m);
    render();
  }
  function collapseTop(view) {
    state.collapsed = new Set(view.moduleNames.filter((m) => view.modules[m].parent == null));
  }
  function reveal(key) {  // expand whatever hides `key`
    const view = current(), hidden = chain(view, view.nodes[key].module).filter((m) => state.collapsed.has(m));
    if (hidden.length) { hidden.forEach((m) => state.collapsed.delete(m)); render(); }
  }

  // ---- the details panel ----
  const fmt = (v) => (typeof v === "number" ? (Number.isInteger(v) && Math.abs(v) < 1e6 ? String(v) : v.toPrecision(4)) : String(v));
  const shapeText = (s) => "(" + s.shape.join(", ") + (s.shape.length === 1 ? "," : "") + ") " + s.dtype;
  function el(tag, text, cls) { const e = document.createElement(tag); if (text != null) e.textContent = text; if (cls) e.className = cls; return e; }
  function link(text, action) { const a = el("a", text); a.addEventListener("click", action); return a; }
  function nodeLink(key) {
    const n = current().nodes[key];
    return link(n.title + " " + (n.summary ? shapeText(n.summary) : ""), () => goTo(key));
  }

  function histogram(h) {
    const ns = "http://www.w3.org/2000/svg", w = 300, hgt = 46, s = document.createElementNS(ns, "svg");
    s.setAttribute("width", w); s.setAttribute("height", hgt + 14); s.setAttribute("class", "histogram");
    const top = Math.max(...h.counts, 1), bw = w / h.counts.length;
    h.counts.forEach((c, i) => {
      const r = document.createElementNS(ns, "rect"), bh = c ? Math.max(1, (c / top) * hgt) : 0;
      r.setAttribute("x", i * bw); r.setAttribute("width", bw - 1); r.setAttribute("y", hgt - bh); r.setAttribute("height", bh);
      r.setAttribute("fill", "#3d6cb9");
      s.appendChild(r);
    });
    for (const [x, v, anchor] of [[0, h.low, "start"], [w, h.high, "end"]]) {
      const t = document.createElementNS(ns, "text");
      t.setAttribute("x", x); t.setAttribute("y", hgt + 12); t.setAttribute("font-size", "10"); t.setAttribute("text-anchor", anchor);
      t.textContent = fmt(v);
      s.appendChild(t);
    }
    return s;
  }

  function summaryBlock(title, s) {
    const box = el("div", null, "summary");
    box.appendChild(el("h3", title));
    if (!s) { box.appendChild(el("div", "none (no gradient flows here)")); return box; }
    const table = el("table");
    const row = (k, v) => { const tr = el("tr"); tr.appendChild(el("td", k)); tr.appendChild(el("td", v)); table.appendChild(tr); };
    row("shape", shapeText(s));
    if ("value" in s) row("value", fmt(s.value));
    if ("min" in s) {
      row("min / max", fmt(s.min) + " / " + fmt(s.max));
      row("mean / std", fmt(s.mean) + " / " + fmt(s.std));
      row("norm", fmt(s.norm));
    }
    if (s.nonfinite) row("not finite", String(s.nonfinite));
    box.appendChild(table);
    if (s.histogram) box.appendChild(histogram(s.histogram));
    if (s.maps) {
      box.appendChild(el("div", "first image, channels 0-" + (s.maps_count - 1) + " (dark = high)", "caption"));
      const img = el("img", null, "maps");
      img.src = s.maps;
      img.alt = title + " feature maps";
      box.appendChild(img);
    }
    return box;
  }

  function ruleBlock(op, open) {
    const rule = DATA.rules[op];
    const d = el("details");
    d.open = open;
    d.appendChild(el("summary", "forward and backward rule: " + (rule ? rule.where : op)));
    d.appendChild(el("pre", rule ? rule.source : "(source not available)"));
    return d;
  }

  function show(parts) { details.textContent = ""; for (const p of parts) if (p) details.appendChild(p); }

  function list(items) { const ul = el("ul"); for (const it of items) { const li = el("li"); (Array.isArray(it) ? it : [it]).forEach((x) => li.append(x)); ul.appendChild(li); } return ul; }

  function describe(key) {
    const view = current(), n = view.nodes[key];
    const head = [el("h2", n.title), el("span", n.kind, "kind")];
    const table = el("table");
    const row = (k, v) => { const tr = el("tr"); tr.appendChild(el("td", k)); const td = el("td"); td.append(v); tr.appendChild(td); table.appendChild(tr); };
    if (n.module) row("module", view.modules[n.module].label);
    if (n.kind.endsWith("op")) {
      row("op", n.op);
      for (const [k, v] of Object.entries(n.attrs)) row(k, v);
      const parts = [...head, table, el("h3", "inputs"), list(n.inputs.map((k) => nodeLink(k))), el("h3", "output"), list([nodeLink(n.output)])];
      const s = view.stepOfOp[key];
      if (s !== undefined) parts.push(el("h3", "backward"), list([link("step " + (s + 1) + " of " + view.steps.length + " of the backward pass", () => setStep(s))]));
      parts.push(ruleBlock(n.op, false));
      if (s !== undefined && view.steps[s].recorded) parts.push(...recordedBlock(view.steps[s].recorded));
      return show(parts);
    }
    if (n.name) row("name", n.name);
    const parts = [...head, table, summaryBlock("value", n.summary)];
    if (n.requires_grad && view.has_gradients) parts.push(summaryBlock("gradient (d output / d this)", n.grad));
    if (n.producer) parts.push(el("h3", "computed by"), list([nodeLink(n.producer)]));
    const readers = view.consumers[key] || [];
    if (readers.length) parts.push(el("h3", "read by"), list(readers.map((k) => nodeLink(k))));
    if (n.requires_grad && key !== view.output) {
      const b = el("button", "Highlight the path to the output");
      b.id = "highlight-path";
      b.addEventListener("click", () => { state.path = pathToOutput(view, key); restyle(); });
      parts.push(el("h3", "gradient path"), b);
    }
    show(parts);
  }

  function describeStep(i) {
    const view = current(), s = view.steps[i], op = view.nodes[s.op], out = view.nodes[op.output];
    const parts = [el("h2", "Backward step " + (i + 1) + " of " + view.steps.length + ": " + op.label.split("\n")[0]),
      el("div", "The engine visits ops in reverse topological order. This one receives the gradient of its output, applies its rule, and sends a gradient to each input that needs one.")];
    parts.push(el("h3", "receives"), list([nodeLink(op.output)]), summaryBlock("gradient arriving (d output / d " + out.title + ")", out.grad));
    parts.push(ruleBlock(op.op, true));
    parts.push(el("h3", "sends"));
    for (const sent of s.sent) {
      const box = el("div");
      box.append(el("span", "to "), nodeLink(sent.to));
      box.appendChild(summaryBlock("gradient sent", sent.grad));
      parts.push(box);
    }
    if (s.recorded) parts.push(...recordedBlock(s.recorded));
    show(parts);
  }

  function recordedBlock(recorded) {  // the ops a rule recorded, each a link into the backward view
    return [el("h3", "ops its rule recorded (create_graph=True)"),
      recorded.length ? list(recorded.map((r) => (r.key ? link(r.label, () => { showView(1); goTo(r.key); }) : el("span", r.label))))
        : el("div", "none: it passes the gradient on unchanged")];
  }

  function overview() {
    const view = current(), legend = el("div", null, "legend");
    for (const [kind, style] of Object.entries(DATA.styles)) {
      const chip = el("span", DATA.kind_names[kind] || kind);
      chip.style.background = style.fillcolor || "#fff";
      chip.style.borderColor = style.color || "#999";
      legend.appendChild(chip);
    }
    show([el("h2", view.title), el("div", view.description), el("h3", "how to use"),
      list(["Click a node to see its shapes, values and gradient; an op also shows its rule.",
        "Click a module box to expand it; click a dashed module frame to collapse it.",
        "Drag to pan, use the wheel to zoom; Fit shows the whole graph.",
        view.steps.length ? "Step ▶ walks the backward pass in the engine's order." : "This view has no backward walk: see the forward view."]),
      el("h3", "legend"), legend]);
  }

  // ---- selection, search, steps, views ----
  function select(key) {
    state.selected = key;
    describe(key);
    restyle();
  }
  function goTo(key) {
    reveal(key);
    state.selected = key;
    describe(key);
    restyle();
    const e = document.getElementById("n-" + (drawn.reps[key] || key));
    if (e) centre(e);
  }

  const search = $("search"), results = $("results");
  function findNodes(text) {
    const q = text.trim().toLowerCase(), view = current();
    if (!q) return [];
    return Object.keys(view.nodes).filter((k) => view.nodes[k].search.includes(q));
  }
  search.addEventListener("input", () => {
    state.matches = findNodes(search.value);
    results.textContent = "";
    for (const key of state.matches.slice(0, 40)) {
      const n = current().nodes[key], b = el("button", n.label.replace(/\n/g, " · "));
      b.dataset.key = key;
      b.addEventListener("click", () => { results.classList.remove("open"); goTo(key); });
      results.appendChild(b);
    }
    if (state.matches.length > 40) results.appendChild(el("div", "... " + (state.matches.length - 40) + " more"));
    if (search.value.trim() && !state.matches.length) results.appendChild(el("div", "no node matches"));
    results.classList.toggle("open", search.value.trim() !== "");
    restyle();
  });
  search.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && state.matches.length) { results.classList.remove("open"); goTo(state.matches[0]); }
    if (ev.key === "Escape") { search.value = ""; search.dispatchEvent(new Event("input")); }
  });

  function setStep(i) {
    const view = current();
    state.step = Math.max(-1, Math.min(i, view.steps.length - 1));
    $("step-label").textContent = state.step < 0 ? (view.steps.length ? view.steps.length + " backward steps" : "no walk in this view") :
      "step " + (state.step + 1) + " / " + view.steps.length + ": " + view.nodes[view.steps[state.step].op].op;
    $("step-label").dataset.op = state.step < 0 ? "" : view.steps[state.step].op;
    if (state.step < 0) { overview(); restyle(); return; }
    const key = view.steps[state.step].op;
    state.selected = key;
    describeStep(state.step);
    restyle();
    const e = document.getElementById("n-" + (drawn.reps[key] || key));
    if (e) centre(e);
  }

  function showView(i) {
    if (i === state.view && svg) return;
    state.view = i;
    state.selected = null; state.step = -1; state.path = new Set(); state.matches = [];
    search.value = ""; results.classList.remove("open");
    const view = current();
    state.collapsed = new Set();
    if (Object.keys(view.nodes).length > COLLAPSE_ABOVE) collapseTop(view);
    document.querySelectorAll("#views button").forEach((b, j) => b.classList.toggle("active", j === i));
    for (const id of ["step-first", "step-prev", "step-next", "step-last"]) $(id).disabled = !view.steps.length;
    render();
    setStep(-1);
  }

  DATA.views.forEach((view, i) => {
    const b = el("button", view.tab);
    b.id = "view-" + view.id;
    b.addEventListener("click", () => showView(i));
    $("views").appendChild(b);
  });
  $("fit").addEventListener("click", fit);
  $("zoom-in").addEventListener("click", () => zoom(1 / 1.4));
  $("zoom-out").addEventListener("click", () => zoom(1.4));
  $("collapse-all").addEventListener("click", () => { collapseTop(current()); render(); });
  $("expand-all").addEventListener("click", () => { state.collapsed = new Set(); render(); });
  $("step-first").addEventListener("click", () => setStep(-1));
  $("step-prev").addEventListener("click", () => setStep(state.step - 1));
  $("step-next").addEventListener("click", () => setStep(state.step + 1));
  $("step-last").addEventListener("click", () => setStep(current().steps.length - 1));

  canvas.appendChild(el("div", "laying out the graph...", "message"));
  Viz.instance().then((instance) => {
    graphviz = instance;
    showView(0);
    document.body.dataset.ready = "true";
  }).catch((err) => {
    canvas.textContent = "";
    canvas.appendChild(el("div", "cannot lay out the graph: " + err, "message"));
    console.error(err);
  });
})();
