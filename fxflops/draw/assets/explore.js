// fxflops explorer: the script inlined into every page (fxflops/draw/explore.py). Vanilla, no network.
// Three views of one report: the module breakdown (icicle), the selected module's Graphviz drawing and the
// node table. Selecting in one selects in the others.
(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("fx-data").textContent);
  window.fxData = D; // for tests and for the curious: the numbers the page shows
  const N = {}, M = {};
  D.node_columns.forEach((c, i) => (N[c] = i));
  D.module_columns.forEach((c, i) => (M[c] = i));
  const nodes = D.nodes, train = D.mode === "train", hasTime = D.device !== null;
  const hasMeasured = D.totals.measured !== null;
  const byPath = new Map(D.modules.map((m) => [m[M.path], m]));
  const kids = new Map();
  for (const m of D.modules) {
    const p = m[M.path];
    if (!p) continue;
    const q = parentOf(p);
    if (!kids.has(q)) kids.set(q, []);
    kids.get(q).push(p);
  }
  const byName = new Map(nodes.map((r, i) => [r[N.name], i]));
  const useTime = D.color !== "flops";
  const total = useTime ? D.totals.time || 0 : D.totals.flops;
  const MAX_ROWS = 500;
  const state = { module: "", graph: null, node: -1, sort: { key: "order", dir: 1 }, text: "" };

  function parentOf(p) { const i = p.lastIndexOf("."); return i < 0 ? "" : p.slice(0, i); }
  function within(p, block) { return block === "" || p === block || p.startsWith(block + "."); }
  function leaf(p) { // a bare index keeps its parent's name: layer1.0, not 0
    if (!p) return "model";
    const parts = p.split(".");
    const last = parts[parts.length - 1];
    return /^\d+$/.test(last) && parts.length > 1 ? parts.slice(-2).join(".") : last;
  }
  function canonical(p) {
    if (!p) return "";
    let out = "";
    for (const part of p.split(".")) {
      out = out ? out + "." + part : part;
      if (out in D.aliases) out = D.aliases[out];
    }
    return out;
  }
  function human(n) {
    if (n === null || n === undefined) return "-";
    if (n === 0) return "0";
    const units = ["", "K", "M", "G", "T", "P", "E"];
    let i = 0, v = Math.abs(n);
    while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
    if (i === 0) return String(n);
    return (n < 0 ? "-" : "") + v.toPrecision(3).replace(/\.?0+$/, "") + units[i];
  }
  function secs(t) {
    if (t === null || t === undefined) return "-";
    if (t === 0) return "0 s";
    const u = [[1, "s"], [1e-3, "ms"], [1e-6, "µs"], [1e-9, "ns"]];
    for (const [f, name] of u) if (t >= f) return (t / f).toPrecision(3) + " " + name;
    return (t / 1e-9).toPrecision(3) + " ns";
  }
  function pct(part, whole) {
    if (!whole) return "-";
    const p = (100 * part) / whole;
    if (p >= 10) return p.toFixed(0) + "%";
    if (p >= 1) return p.toFixed(1) + "%";
    if (p >= 0.01) return p.toFixed(2) + "%";
    return p ? "<0.01%" : "0%";
  }
  // The heat scale of the static pictures (fxflops/draw/style.py): magma, log scale over D.decades decades.
  function heat(share, max) {
    if (share <= 0 || max <= 0) return "#eeeeee";
    const t = Math.max(0, Math.min(1, 1 + Math.log10(share / max) / D.decades));
    return D.heat[Math.round(t * 20)];
  }
  function ink(hex) {
    const c = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255)
      .map((x) => (x <= 0.04045 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4)));
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2] < 0.2 ? "#fff" : "#000";
  }
  function moduleValue(m) { return useTime ? m[M.time] || 0 : m[M.flops]; }
  function nodeValue(r) { return useTime ? r[N.time] || 0 : r[N.flops]; }
  function fillFor(value, bound, max) {
    if (D.color === "bound") return bound ? D.bound_fills[bound] : "#eeeeee";
    return heat(total ? value / total : 0, max);
  }

  // ---- the breakdown: an icicle of the module tree, the focused module full width ------------------------
  const LEVELS = 4, ROW = 27;
  function drawIcicle() {
    const box = document.getElementById("icicle");
    box.innerHTML = "";
    const focus = kids.has(state.module) ? state.module : parentOf(state.module);
    const top = byPath.get(focus);
    const max = total ? moduleValue(top) / total : 0;
    let rows = 1;
    const place = (p, x, w, level) => {
      const m = byPath.get(p);
      if (w < 0.15 && level > 0) return;
      rows = Math.max(rows, level + 1);
      const el = document.createElement("div");
      const v = moduleValue(m), fill = fillFor(v, m[M.bound], max);
      el.className = "box" + (p === state.module ? " sel" : "");
      el.dataset.path = p;
      el.style.cssText = `left:${x}%;width:${w}%;top:${level * ROW}px;background:${fill};color:${ink(fill)}`;
      el.textContent = `${leaf(p)} ${pct(v, total)}`;
      el.title = `${p || "model"} (${m[M.type]})\nFLOPs ${human(m[M.flops])} (${pct(m[M.flops], D.totals.flops)})` +
        `\nMACs ${human(m[M.macs])}\nparams ${human(m[M.params])}` +
        (hasTime ? `\nest. time ${secs(m[M.time])} (${pct(m[M.time] || 0, D.totals.time)}, ${m[M.bound] || "-"})` : "");
      el.addEventListener("click", (ev) => {
        ev.stopPropagation();
        selectModule(p === focus && p !== "" && level === 0 ? parentOf(p) : p);
      });
      box.appendChild(el);
      if (level + 1 >= LEVELS) return;
      const whole = v;
      let cx = x;
      for (const c of kids.get(p) || []) {
        const cw = whole > 0 ? (w * moduleValue(byPath.get(c))) / whole : 0;
        place(c, cx, cw, level + 1);
        cx += cw;
      }
    };
    place(focus, 0, 100, 0);
    box.style.height = rows * ROW + "px";
    document.getElementById("metric").textContent = useTime
      ? `width: estimated time on ${D.device}` + (D.color === "bound" ? ", colour: compute- or memory-bound" : "")
      : "width and colour: share of FLOPs";
  }

  // ---- the drawing of a module: its ops, its children as boxes ---------------------------------------------
  function drawingOf(p) {
    while (p && !kids.has(p)) p = parentOf(p);
    return p;
  }
  function showGraph(p) {
    const g = drawingOf(p);
    const where = document.getElementById("drawing");
    if (state.graph !== g) {
      state.graph = g;
      const idx = byPath.get(g)[M.drawing];
      where.innerHTML = D.svgs[idx];
      const canon = D.drawn[idx];
      for (const el of where.querySelectorAll("g.node")) {
        const t = el.querySelector("title").textContent;
        if (t.startsWith("module/")) {
          const cp = t.slice(7);
          const actual = canon === g ? cp : g + cp.slice(canon.length);
          el.dataset.path = actual;
          el.classList.add(kids.has(actual) ? "open" : "pick");
          el.addEventListener("click", () => selectModule(actual));
        } else if (byName.has(t)) {
          let i = byName.get(t);
          if (canon !== g) { // the drawing is shared with an identical block: pick this block's twin node
            const j = nodes.findIndex((r) => r[N.twin] === i && within(r[N.module], g));
            if (j >= 0) i = j;
          }
          el.dataset.node = i;
          el.classList.add("pick");
          el.addEventListener("click", () => selectNode(i, true));
        }
      }
    }
    drawCrumbs();
  }
  function markInGraph() {
    const where = document.getElementById("drawing");
    for (const el of where.querySelectorAll("g.node.sel")) el.classList.remove("sel");
    let hit = null;
    if (state.node >= 0) hit = where.querySelector(`g.node[data-node="${state.node}"]`);
    const target = state.node >= 0 ? nodes[state.node][N.module] : state.module;
    if (!hit) {
      // the op or module sits inside a child box: mark the box (a rolled box stands for its whole run)
      let best = null;
      for (const el of where.querySelectorAll("g.node[data-path]")) {
        const p = el.dataset.path;
        if (within(target, p) || within(canonical(target), canonical(p))) {
          if (!best || p.length > best.dataset.path.length) best = el;
        }
      }
      hit = best;
    }
    if (hit) {
      hit.classList.add("sel");
      hit.scrollIntoView({ block: "nearest", inline: "nearest" });
    }
  }
  function drawCrumbs() {
    const nav = document.getElementById("crumbs");
    nav.innerHTML = "";
    const p = state.module;
    const chain = [""];
    if (p) p.split(".").forEach((_, i, parts) => chain.push(parts.slice(0, i + 1).join(".")));
    chain.forEach((c, i) => {
      if (i) nav.appendChild(Object.assign(document.createElement("span"), { className: "sep", textContent: " › " }));
      const a = document.createElement(i === chain.length - 1 ? "span" : "a");
      a.textContent = leaf(c);
      a.dataset.path = c;
      if (i === chain.length - 1) a.className = "here";
      else a.addEventListener("click", () => selectModule(c));
      nav.appendChild(a);
    });
    const m = byPath.get(p);
    const note = document.createElement("span");
    note.className = "note";
    const canon = D.drawn[byPath.get(state.graph)[M.drawing]];
    note.textContent = ` ${m[M.type]} · ${human(m[M.flops])} FLOPs (${pct(m[M.flops], D.totals.flops)})` +
      (state.graph !== p ? ` · drawn inside ${state.graph || "model"}` : "") +
      (canon !== state.graph ? ` · identical to ${canon}, whose drawing this is` : "");
    nav.appendChild(note);
  }

  // ---- the node table -------------------------------------------------------------------------------------
  const columns = [
    { key: "order", head: "#", num: true, get: (r, i) => i, show: (r, i) => i },
    { key: "name", head: "node", get: (r) => r[N.name] },
    { key: "op", head: "op", get: (r) => r[N.op] },
    { key: "module", head: "module", get: (r) => r[N.module], show: (r) => r[N.module] || "(top level)" },
    { key: "out", head: "output", get: (r) => r[N.out], tip: (r) => "in: " + D.strings[r[N.shapes]] },
    { key: "macs", head: "MACs", num: true, get: (r) => r[N.macs], show: (r) => human(r[N.macs]) },
  ];
  if (train) {
    columns.push({ key: "fwd_flops", head: "fwd FLOPs", num: true, get: (r) => r[N.fwd_flops], show: (r) => human(r[N.fwd_flops]) });
    columns.push({ key: "bwd_flops", head: "bwd FLOPs", num: true, get: (r) => r[N.bwd_flops], show: (r) => human(r[N.bwd_flops]) });
  }
  columns.push(
    { key: "flops", head: "FLOPs", num: true, get: (r) => r[N.flops], show: (r) => human(r[N.flops]) },
    { key: "bytes", head: "bytes", num: true, get: (r) => r[N.bytes], show: (r) => human(r[N.bytes]) },
    { key: "share", head: useTime ? "% time" : "% FLOPs", num: true, get: nodeValue, swatch: true,
      show: (r) => pct(nodeValue(r), total) });
  if (hasTime) {
    columns.push({ key: "time", head: "est. time", num: true, get: (r) => r[N.time] || 0, show: (r) => secs(r[N.time]) });
    columns.push({ key: "bound", head: "bound", get: (r) => r[N.bound] });
  }
  if (hasMeasured) columns.push({ key: "measured", head: "measured", num: true, get: (r) => r[N.measured] || 0, show: (r) => secs(r[N.measured]) });
  columns.push(
    { key: "rule", head: "rule", get: (r) => r[N.rule], tip: (r) => D.strings[r[N.formula]] || "no rule" },
    { key: "status", head: "status", get: (r) => r[N.status], tip: (r) => D.strings[r[N.reason]], cls: (r) => r[N.status] });
  const maxNode = Math.max(0, ...nodes.map((r) => (total ? nodeValue(r) / total : 0)));

  function drawHead() {
    const tr = document.createElement("tr");
    for (const c of columns) {
      const th = document.createElement("th");
      th.textContent = c.head;
      th.dataset.key = c.key;
      th.className = (c.num ? "num " : "") + (state.sort.key === c.key ? (state.sort.dir > 0 ? "asc" : "desc") : "");
      th.title = c.num ? "sort (largest first; again to reverse)" : "sort";
      th.addEventListener("click", () => {
        state.sort = state.sort.key === c.key ? { key: c.key, dir: -state.sort.dir } : { key: c.key, dir: c.num ? -1 : 1 };
        drawHead();
        drawRows();
      });
      tr.appendChild(th);
    }
    const head = document.querySelector("#nodes thead");
    head.innerHTML = "";
    head.appendChild(tr);
  }
  function drawRows() {
    const text = state.text.toLowerCase();
    let rows = [];
    nodes.forEach((r, i) => {
      if (!within(r[N.module], state.module)) return;
      if (text && ![r[N.name], r[N.op], r[N.module], r[N.rule], r[N.status], r[N.target]].some((x) => x.toLowerCase().includes(text))) return;
      rows.push(i);
    });
    const col = columns.find((c) => c.key === state.sort.key);
    const dir = state.sort.dir;
    rows.sort((a, b) => {
      const x = col.get(nodes[a], a), y = col.get(nodes[b], b);
      return x < y ? -dir : x > y ? dir : a - b; // ties keep execution order
    });
    const shown = rows.slice(0, MAX_ROWS);
    const body = document.querySelector("#nodes tbody");
    const frag = document.createDocumentFragment();
    for (const i of shown) {
      const r = nodes[i];
      const tr = document.createElement("tr");
      tr.dataset.node = i;
      if (i === state.node) tr.className = "sel";
      for (const c of columns) {
        const td = document.createElement("td");
        if (c.num) td.className = "num";
        if (c.cls) td.className = c.cls(r);
        if (c.swatch) {
          const sw = document.createElement("span");
          sw.className = "swatch";
          sw.style.background = fillFor(nodeValue(r), r[N.bound], maxNode);
          td.appendChild(sw);
        }
        td.appendChild(document.createTextNode(String(c.show ? c.show(r, i) : c.get(r, i))));
        const tip = c.tip ? c.tip(r) : td.textContent;
        if (tip) td.title = tip;
        tr.appendChild(td);
      }
      tr.addEventListener("click", () => selectNode(i, false));
      frag.appendChild(tr);
    }
    body.innerHTML = "";
    body.appendChild(frag);
    document.getElementById("count").textContent =
      rows.length > MAX_ROWS ? `first ${MAX_ROWS} of ${rows.length.toLocaleString()} nodes` : `${rows.length.toLocaleString()} nodes`;
    const scope = document.getElementById("scope");
    scope.innerHTML = "";
    if (state.module) {
      const chip = Object.assign(document.createElement("span"), { className: "chip", textContent: `in ${state.module} ✕` });
      chip.title = "show the nodes of the whole model";
      chip.addEventListener("click", () => selectModule(""));
      scope.appendChild(chip);
    }
  }

  // ---- selection: one state, every view follows ------------------------------------------------------------
  function selectModule(p) {
    state.module = p;
    state.node = -1;
    drawIcicle();
    showGraph(p);
    markInGraph();
    drawRows();
  }
  function selectNode(i, fromGraph) {
    state.node = i;
    const p = nodes[i][N.module];
    for (const el of document.querySelectorAll(".box.sel")) el.classList.remove("sel");
    const box = document.querySelector(`.box[data-path="${CSS.escape(p)}"]`);
    if (box) box.classList.add("sel");
    if (!fromGraph) showGraph(p);
    markInGraph();
    drawRows();
    const tr = document.querySelector(`#nodes tbody tr[data-node="${i}"]`);
    if (tr) tr.scrollIntoView({ block: "nearest" });
  }

  document.getElementById("filter").addEventListener("input", (ev) => { state.text = ev.target.value; drawRows(); });
  drawHead();
  selectModule("");
})();
