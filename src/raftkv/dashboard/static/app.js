// raftkv dashboard: renders frames (see raftkv/dashboard/model.py) from a live WebSocket or a
// replayed trace. Frames are coalesced: at most one render per animation frame.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const SVGNS = "http://www.w3.org/2000/svg";
  const params = new URLSearchParams(location.search);
  const ACK = params.get("ack") === "1";
  let info = null;
  let pending = null;        // newest frame not yet rendered
  let pendingMsgs = [];      // messages of frames skipped since the last render
  const cards = new Map();   // node key -> card elements
  const commitHist = [];     // live: [t_ms, commit]
  const tputHist = [];       // live: commits/s
  let prevCommit = null;
  let ws = null;
  const acks = [];           // ?ack=1: {rendered, ev_ms, at_ms} per render (bench/dashboard.py)

  const ROLE_COLORS = { follower: "#5b8def", "pre-candidate": "#e6c35c", candidate: "#f08a3c", leader: "#3fbf6f" };
  function termColor(t) {
    if (t === null || t === undefined) return "transparent";
    if (t === 0) return "#3b444f";
    const hue = (t * 137.508 + 200) % 360;
    return `hsl(${hue.toFixed(0)}, 62%, 52%)`;
  }
  function el(tag, attrs, parent, ns) {
    const e = ns ? document.createElementNS(SVGNS, tag) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") e.textContent = v; else if (k === "class") e.setAttribute("class", v); else e.setAttribute(k, v);
    }
    if (parent) parent.appendChild(e);
    return e;
  }
  const nodeKey = (n) => (n.index !== undefined ? "m" + n.index : "n" + n.id);

  // -- controls (live, LocalCluster only) ------------------------------------------------------
  async function control(action, body) {
    $("control-msg").textContent = action + "…";
    try {
      const r = await fetch("/api/control/" + action, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}) });
      const d = await r.json();
      if (!r.ok) throw new Error(d.error || r.status);
      let msg = action + " ok";
      if (action === "put") { msg = `put ok: index ${d.index} via ${d.member}`; $("control-msg").dataset.putIndex = d.index; }
      $("control-msg").textContent = msg;
      return d;
    } catch (e) {
      $("control-msg").textContent = String(e.message || e);
    }
  }
  function setupControls() {
    $("controls").hidden = false;
    $("put-form").addEventListener("submit", (ev) => { ev.preventDefault(); control("put", { key: $("put-key").value, value: $("put-value").value }); });
    $("heal-btn").addEventListener("click", () => control("heal"));
    $("partition-btn").addEventListener("click", () => {
      const a = [...document.querySelectorAll("#part-picks input:checked")].map((x) => +x.value);
      const rest = info.members.map((m) => m.index).filter((i) => !a.includes(i));
      control("partition", { groups: [a, rest] });
    });
    $("transfer-btn").addEventListener("click", () => control("transfer", { index: +$("transfer-to").value }));
    for (const m of info.members) {
      el("option", { value: m.index }, $("transfer-to")).textContent = m.name;
      const lab = el("label", {}, $("part-picks"));
      el("input", { type: "checkbox", value: m.index, id: "pick-" + m.index }, lab);
      lab.append(" " + m.name + " ");
    }
  }

  // -- node cards --------------------------------------------------------------------------------
  function card(n, frame) {
    const key = nodeKey(n);
    let c = cards.get(key);
    if (c) return c;
    const root = el("div", { class: "card" }, $("cards"));
    const top = el("div", { class: "top" }, root);
    const ring = el("svg", { class: "ring", viewBox: "0 0 44 44" }, top, true);
    el("circle", { class: "bg", cx: 22, cy: 22, r: 18, fill: "none", "stroke-width": 5 }, ring, true);
    const arc = el("circle", { class: "fg", cx: 22, cy: 22, r: 18, fill: "none", "stroke-width": 5, transform: "rotate(-90 22 22)", "stroke-dasharray": (2 * Math.PI * 18).toFixed(2) }, ring, true);
    const ringText = el("text", { x: 22, y: 22, "text-anchor": "middle", "dominant-baseline": "central", fill: "#9aa7b4", "font-size": 10 }, ring, true);
    const head = el("div", {}, top);
    const name = el("div", { class: "name" }, head);
    const role = el("span", { class: "role" }, head);
    const flags = el("div", { class: "flags" }, top);
    const fDown = el("span", { class: "flag", text: "unreachable" }, flags);
    const fBehind = el("span", { class: "flag", text: "can't commit" }, flags);
    const fPart = el("span", { class: "flag", text: "partitioned" }, flags);
    const kv = el("div", { class: "kv" }, root);
    const vals = {};
    for (const k of ["term", "vote", "lead", "last", "commit", "applied", "snap", "timer"]) {
      el("span", { text: k }, kv);
      vals[k] = el("b", { class: "v-" + k }, kv);
    }
    const strip = el("div", { class: "strip" }, root);
    const cells = [];
    const axis = el("div", { class: "strip-axis" }, root);
    const axLo = el("span", {}, axis), axHi = el("span", {}, axis);
    const prog = el("table", { class: "prog" }, root);
    const actions = el("div", { class: "actions" }, root);
    actions.hidden = !(info.controls && n.index !== undefined);
    if (!actions.hidden) {
      el("button", { type: "button", class: "kill-btn", text: "kill" }, actions).addEventListener("click", () => control("kill", { index: n.index }));
      el("button", { type: "button", class: "restart-btn", text: "restart" }, actions).addEventListener("click", () => control("restart", { index: n.index }));
    }
    c = { root, arc, ringText, name, role, fDown, fBehind, fPart, vals, strip, cells, axLo, axHi, prog, progKey: "" };
    cards.set(key, c);
    return c;
  }

  function renderCard(n, frame, maxCommit, leaderId, partGroupOf) {
    const c = card(n, frame);
    const r = c.root;
    r.dataset.nodeId = n.id; r.dataset.role = n.up ? n.role : "down"; r.dataset.up = String(!!n.up);
    r.dataset.term = n.term; r.dataset.commit = n.commit; r.dataset.last = n.last_index;
    if (n.index !== undefined) r.dataset.index = n.index;
    c.name.textContent = n.name;
    c.name.title = "member id " + n.id;
    c.role.textContent = n.up ? n.role : (frame.mode === "replay" ? "crashed" : "unreachable");
    c.fDown.classList.toggle("on", !n.up);
    const inMinority = !!partGroupOf && (partGroupOf.get(n.id) || 0) * 2 <= frame.nodes.length;
    c.fPart.classList.toggle("on", inMinority && n.up);
    c.fBehind.classList.toggle("on", n.up && !!inMinority);
    r.dataset.minority = String(!!inMinority);
    const v = c.vals;
    v.term.textContent = n.term; v.vote.textContent = n.vote ? nameOf(n.vote) : "—"; v.lead.textContent = n.lead ? nameOf(n.lead) : "—";
    v.last.textContent = n.last_index; v.commit.textContent = n.commit; v.applied.textContent = n.applied; v.snap.textContent = n.snapshot_index;
    const to = n.randomized_election_timeout || 0;
    const el_ = Math.min(n.election_elapsed || 0, to);
    v.timer.textContent = to ? `${el_}/${to}` : "—";
    const circ = 2 * Math.PI * 18;
    const left = to ? Math.max(0, 1 - el_ / to) : 0;
    c.arc.setAttribute("stroke-dashoffset", (circ * (1 - left)).toFixed(2));
    c.ringText.textContent = to ? Math.round(left * 100) + "%" : "";
    // log strip
    const terms = n.terms || [];
    while (c.cells.length < terms.length) c.cells.push(el("i", {}, c.strip));
    while (c.cells.length > terms.length) c.cells.pop().remove();
    const lo = frame.window_lo;
    for (let k = 0; k < terms.length; k++) {
      const idx = lo + k, t = terms[k], cell = c.cells[k];
      const present = t !== null && t !== undefined;
      const bg = present ? termColor(t) : "transparent";
      if (cell._bg !== bg) { cell._bg = bg; cell.style.background = bg; }
      if (cell._i !== idx) { cell._i = idx; cell.dataset.index = idx; }
      if (cell._t !== t) { cell._t = t; cell.dataset.term = present ? t : ""; }
      const committed = present && idx <= n.commit;
      const cls = (committed ? "c" : "") + (idx === n.commit ? " cp" : "") + (present && idx <= n.snapshot_index ? " snap" : "");
      const ck = idx + "|" + t + "|" + cls;
      if (cell._k === ck) continue; // unchanged: leave the DOM alone
      cell._k = ck;
      cell.className = cls;
      cell.title = present ? `index ${idx} term ${t || "?"}${committed ? " committed" : ""}` : "";
    }
    c.axLo.textContent = lo; c.axHi.textContent = frame.window_hi;
    // progress (leader only)
    const prog = n.role === "leader" && n.up ? n.progress || {} : {};
    const pk = JSON.stringify(prog);
    if (pk !== c.progKey) {
      c.progKey = pk;
      c.prog.innerHTML = "";
      const ids = Object.keys(prog);
      if (ids.length) {
        const h = el("tr", {}, c.prog);
        for (const x of ["peer", "match", "next", "state"]) el("th", { text: x }, h);
        for (const id of ids) {
          const tr = el("tr", {}, c.prog);
          for (const x of [nameOf(id), prog[id].match, prog[id].next, prog[id].state]) el("td", { text: x }, tr);
        }
      }
    }
  }

  // -- topology with message dots -------------------------------------------------------------
  let topoPos = new Map();
  function renderTopo(frame, leaderId) {
    const svg = $("topo");
    const nodes = frame.nodes;
    const cx = 200, cy = 150, R = 105;
    const key = nodes.map((n) => n.id).join(",");
    if (svg.dataset.key !== key) {
      svg.innerHTML = "";
      svg.dataset.key = key;
      topoPos = new Map();
      nodes.forEach((n, i) => {
        const a = -Math.PI / 2 + (2 * Math.PI * i) / nodes.length;
        topoPos.set(n.id, [cx + R * Math.cos(a), cy + R * Math.sin(a)]);
      });
      const links = el("g", { id: "links" }, svg, true);
      for (let i = 0; i < nodes.length; i++) for (let j = i + 1; j < nodes.length; j++) {
        const [x1, y1] = topoPos.get(nodes[i].id), [x2, y2] = topoPos.get(nodes[j].id);
        el("line", { class: "link", x1, y1, x2, y2, "data-a": nodes[i].id, "data-b": nodes[j].id }, links, true);
      }
      el("g", { id: "dots" }, svg, true);
      const g = el("g", { id: "nodes" }, svg, true);
      for (const n of nodes) {
        const [x, y] = topoPos.get(n.id);
        const ng = el("g", { "data-id": n.id }, g, true);
        el("circle", { class: "node-circle", cx: x, cy: y, r: 24 }, ng, true);
        el("text", { class: "node-label", x, y: y - 3 }, ng, true);
        el("text", { class: "node-sub", x, y: y + 37 }, ng, true);
      }
    }
    const groupOf = new Map();
    (frame.partition || []).forEach((g, gi) => g.forEach((id) => groupOf.set(String(id), gi)));
    for (const line of svg.querySelectorAll("#links line")) {
      const a = line.dataset.a, b = line.dataset.b;
      line.classList.toggle("cut", frame.partition ? groupOf.get(a) !== groupOf.get(b) || !groupOf.has(a) : false);
    }
    for (const n of nodes) {
      const g = svg.querySelector(`#nodes g[data-id="${n.id}"]`);
      if (!g) continue;
      const col = !n.up ? "#444" : ROLE_COLORS[n.role] || "#555";
      g.children[0].setAttribute("fill", col);
      g.children[0].setAttribute("stroke", n.id === leaderId ? "#fff" : "#0f1419");
      g.children[1].textContent = (n.name || "").replace(/^infra/, "") || n.id;
      g.children[2].textContent = n.up ? `t${n.term} c${n.commit}` : "down";
    }
  }
  function spawnDots(msgs) {
    const dots = $("topo").querySelector("#dots");
    if (!dots) return;
    let budget = 120 - dots.childElementCount;
    for (const m of msgs) {
      const a = topoPos.get(m.from), b = topoPos.get(m.to);
      if (!a || !b || budget <= 0) continue;
      const k = Math.min(3, Math.max(1, Math.ceil(Math.log2(1 + m.n))));
      for (let i = 0; i < k && budget > 0; i++, budget--) {
        const d = el("circle", { class: "dot " + (m.kind || ""), r: 3.5, cx: 0, cy: 0 }, dots, true);
        const anim = d.animate(
          [{ transform: `translate(${a[0]}px, ${a[1]}px)` }, { transform: `translate(${b[0]}px, ${b[1]}px)` }],
          { duration: 380, delay: i * 70, easing: "ease-in-out", fill: "both" });
        anim.onfinish = () => d.remove();
      }
    }
  }

  // -- charts ------------------------------------------------------------------------------------
  function polyline(svg, values, w, h, cursor) {
    if (!svg._line) {
      svg._line = el("polyline", { fill: "none", stroke: "#3fbf6f", "stroke-width": 1.5, "vector-effect": "non-scaling-stroke" }, svg, true);
      svg._cursor = el("line", { y1: 0, y2: h, stroke: "#fff", "stroke-width": 1, "vector-effect": "non-scaling-stroke" }, svg, true);
      svg._label = el("text", { x: 4, y: 11, fill: "#7b8794", "font-size": 10 }, svg, true);
    }
    if (!values.length) return;
    let max = 1, min = 0;
    for (const v of values) { if (v > max) max = v; if (v < min) min = v; }
    const key = values.length + ":" + values[values.length - 1] + ":" + max + ":" + cursor;
    if (svg._key === key) return;
    svg._key = key;
    const pts = values.map((v, i) => `${((i / Math.max(1, values.length - 1)) * w).toFixed(1)},${(h - 3 - ((v - min) / (max - min || 1)) * (h - 6)).toFixed(1)}`);
    svg._line.setAttribute("points", pts.join(" "));
    svg._cursor.style.display = cursor === undefined ? "none" : "";
    if (cursor !== undefined) { svg._cursor.setAttribute("x1", cursor * w); svg._cursor.setAttribute("x2", cursor * w); }
    svg._label.textContent = String(Math.round(max));
  }
  function renderCharts(frame, maxCommit) {
    if (frame.mode === "live") {
      const now = frame.t_ms;
      if (prevCommit !== null && commitHist.length) {
        const dt = (now - commitHist[commitHist.length - 1][0]) / 1000;
        if (dt > 0) tputHist.push(Math.max(0, (maxCommit - prevCommit) / dt));
      }
      prevCommit = maxCommit;
      commitHist.push([now, maxCommit]);
      while (commitHist.length > 600) commitHist.shift();
      while (tputHist.length > 600) tputHist.shift();
      polyline($("commit-chart"), commitHist.map((x) => x[1]), 400, 80);
      const sm = tputHist.slice(-5);
      polyline($("tput-chart"), tputHist, 400, 50);
      $("tput-now").textContent = sm.length ? `${Math.round(sm.reduce((a, b) => a + b, 0) / sm.length)} entries/s` : "";
      renderLeaders(frame.leaders || [], (l) => new Date(l.t_ms).toLocaleTimeString());
    } else {
      const T = info.ticks, tick = frame.tick, cs = info.commits;
      const step = Math.max(1, Math.ceil(T / 400));
      const sample = []; for (let i = 0; i < T; i += step) sample.push(cs[i]);
      if ($("commit-chart").dataset.drawn !== "1") { $("commit-chart").dataset.drawn = "1"; }
      polyline($("commit-chart"), sample, 400, 80, tick / Math.max(1, T - 1));
      const tp = []; const W = Math.max(10, Math.round(1000 / info.tick_ms / 4));
      for (let i = 0; i < T; i += step) tp.push((cs[i] - cs[Math.max(0, i - W)]) * 1000 / (W * info.tick_ms));
      polyline($("tput-chart"), tp, 400, 50, tick / Math.max(1, T - 1));
      const lo = Math.max(0, tick - W);
      $("tput-now").textContent = `${Math.round((cs[tick] - cs[lo]) * 1000 / (Math.max(1, tick - lo) * info.tick_ms))} entries/s (virtual)`;
      renderLeaders(info.leaders.filter((l) => l.tick <= tick), (l) => "tick " + l.tick);
    }
  }
  let leadersKey = "";
  function renderLeaders(list, when) {
    const key = list.map((l) => l.node + ":" + l.term).join(",");
    if (key === leadersKey) return;
    leadersKey = key;
    const ol = $("leaders"); ol.innerHTML = "";
    for (const l of list.slice(-20).reverse()) el("li", { text: `${when(l)}  ${nameOf(l.node)} leader, term ${l.term}` }, ol);
  }

  // -- one frame ------------------------------------------------------------------------------
  let names = new Map();
  function nameOf(id) { return names.get(String(id)) || String(id); }
  function render(frame, msgs) {
    names = new Map(frame.nodes.map((n) => [String(n.id), n.name]));
    let leader = null;
    for (const n of frame.nodes) if (n.up && n.role === "leader" && (!leader || n.term > leader.term)) leader = n;
    const maxTerm = Math.max(0, ...frame.nodes.filter((n) => n.up).map((n) => n.term));
    if (leader && leader.term < maxTerm) leader = null; // a stale leader is not "the" leader
    const maxCommit = Math.max(0, ...frame.nodes.map((n) => n.commit));
    const leaderId = leader ? leader.id : 0;
    document.body.dataset.leader = leader ? String(leader.id) : "";
    $("leader").textContent = leader ? leader.name : "none";
    $("term").textContent = maxTerm; $("commit").textContent = maxCommit;
    let partGroupOf = null;
    if (frame.partition) {
      partGroupOf = new Map();
      for (const g of frame.partition) for (const id of g) partGroupOf.set(id, g.length);
    }
    for (const n of frame.nodes) renderCard(n, frame, maxCommit, leaderId, partGroupOf);
    renderTopo(frame, leaderId);
    spawnDots(msgs);
    renderCharts(frame, maxCommit);
    if (frame.mode === "replay") {
      $("cur-tick").textContent = frame.tick;
      $("clock").textContent = `t = ${(frame.t_ms / 1000).toFixed(2)} s (virtual)`;
      if (!scrubbing) $("scrub").value = frame.tick;
    } else {
      $("clock").textContent = new Date(frame.t_ms).toLocaleTimeString();
    }
    document.body.dataset.seq = frame.seq;
  }
  function schedule(frame) {
    if (pending && pending.msgs) pendingMsgs.push(...pending.msgs);
    pending = frame;
    requestAnimationFrame(() => {
      if (!pending) return;
      const f = pending, msgs = [...pendingMsgs, ...(f.msgs || [])];
      pending = null; pendingMsgs = [];
      render(f, msgs);
      if (ACK && f.mode === "live") {
        const ack = { rendered: f.seq, ev_ms: f.ev_ms, frame_ms: f.t_ms, at_ms: Date.now() };
        acks.push(ack);
        if (acks.length > 100000) acks.splice(0, 50000);
        if (ws && ws.readyState === 1) ws.send(JSON.stringify(ack));
      }
    });
  }

  // -- live ------------------------------------------------------------------------------------
  function connectLive() {
    ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/ws");
    ws.onopen = () => { $("conn").textContent = "live"; $("conn").className = "conn ok"; };
    ws.onmessage = (m) => schedule(JSON.parse(m.data));
    ws.onclose = () => { $("conn").textContent = "reconnecting"; $("conn").className = "conn"; setTimeout(connectLive, 1000); };
  }

  // -- replay ----------------------------------------------------------------------------------
  const CHUNK = 200;
  const chunks = new Map();
  let tick = 0, playing = false, lastTs = null, acc = 0, scrubbing = false, shown = -1;
  async function chunk(i) {
    if (!chunks.has(i)) chunks.set(i, fetch(`/api/replay/frames?from=${i * CHUNK}&to=${(i + 1) * CHUNK}`).then((r) => r.json()));
    return chunks.get(i);
  }
  async function frameAt(t) { const c = await chunk(Math.floor(t / CHUNK)); return c[t % CHUNK]; }
  async function show(t, withMsgsFrom) {
    t = Math.max(0, Math.min(info.ticks - 1, t));
    tick = t;
    const f = await frameAt(t);
    if (tick !== t || !f) return;
    const msgs = [];
    if (withMsgsFrom !== undefined && t - withMsgsFrom <= 20) {
      for (let k = withMsgsFrom + 1; k < t; k++) { const g = await frameAt(k); if (g) msgs.push(...g.msgs); }
    }
    shown = t;
    chunk(Math.floor(t / CHUNK) + 1); // prefetch
    schedule({ ...f, msgs: [...msgs, ...f.msgs] });
  }
  function loop(ts) {
    if (!playing) { lastTs = null; return; }
    if (lastTs !== null) {
      const speed = +$("speed").value;
      acc += ((ts - lastTs) / 1000) * speed * (1000 / info.tick_ms);
      const adv = Math.floor(acc);
      if (adv > 0) {
        acc -= adv;
        const from = tick;
        if (tick + adv >= info.ticks - 1) { setPlaying(false); show(info.ticks - 1, from); }
        else show(tick + adv, from);
      }
    }
    lastTs = ts;
    requestAnimationFrame(loop);
  }
  function setPlaying(p) {
    playing = p;
    $("play-btn").textContent = p ? "❚❚ pause" : "▶ play";
    document.body.dataset.playing = String(p);
    if (p) { acc = 0; requestAnimationFrame(loop); }
  }
  function setupReplay() {
    $("player").hidden = false;
    $("conn").textContent = `replay · seed ${info.header.seed} · ${info.header.nodes} nodes`;
    $("conn").className = "conn ok";
    $("max-tick").textContent = info.ticks - 1;
    $("scrub").max = info.ticks - 1;
    $("play-btn").addEventListener("click", () => setPlaying(!playing));
    $("step-btn").addEventListener("click", () => { setPlaying(false); show(tick + 1, tick); });
    $("step-back-btn").addEventListener("click", () => { setPlaying(false); show(tick - 1); });
    $("scrub").addEventListener("input", () => { scrubbing = true; show(+$("scrub").value); });
    $("scrub").addEventListener("change", () => { scrubbing = false; });
    $("jump-form").addEventListener("submit", (ev) => { ev.preventDefault(); setPlaying(false); show(+$("jump-tick").value || 0); });
    show(0);
  }

  async function main() {
    info = await (await fetch("/api/info")).json();
    document.body.dataset.mode = info.mode;
    $("mode").textContent = info.mode === "replay" ? "replay" : info.controls ? "live · controls" : "live · read-only";
    if (info.mode === "replay") setupReplay();
    else { if (info.controls) setupControls(); connectLive(); }
  }
  window.raftkvDashboard = { get tick() { return shown; }, show: (t) => show(t), acks };
  main();
})();
