/**
 * The page's script, first half: reading the embedded data and drawing the visible part of the
 * timeline. Plain browser JavaScript in a string (the page inlines it; nothing is fetched), written
 * without template literals so that it can sit in a TypeScript one.
 *
 * Only what is on screen becomes DOM: the lanes in the vertical viewport, and in each the spans in
 * the horizontal one; spans narrower than a few pixels merge into one aggregate bar (coloured by
 * the worst outcome in it) so that a 100,000-record journal draws a few hundred elements at most.
 * `script-panel.ts` (the second half) adds selection, the detail panel, filters and navigation.
 *
 * @example
 * ```ts
 * const html = `<script>${VIEW_SCRIPT}${PANEL_SCRIPT}</script>`;
 * ```
 */
export const VIEW_SCRIPT = String.raw`
'use strict';
// A data block: base64 of deflated text, inflated by the browser's own DecompressionStream.
async function unpack(id) {
  var bin = atob(document.getElementById(id).textContent), n = bin.length, bytes = new Uint8Array(n);
  for (var i = 0; i < n; i++) bytes[i] = bin.charCodeAt(i);
  return new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate'))).text();
}
var D = JSON.parse(await unpack('atelier-data'));
performance.mark('atelier:data');
var ROW = 30, AXIS = 28;
var S = D.spans, M = D.marks, R = D.records, STR = D.strings;
// Durable records run on from the first seq, their position is their seq; then the volatile ones.
var ND = R.durable, FIRST = D.h.first;
function recSeq(i) { return i < ND ? FIRST + i : R.volSeq[i - ND]; }
function recX(i) { return i < ND ? FIRST + i : R.volX[i - ND]; }
function recVol(i) { return i >= ND; }
var LANES = D.lanes.kind.map(function (ki, k) {
  var kind = D.laneKinds[ki], name = STR[D.lanes.name[k]], g = D.lanes.group[k], group = g < 0 ? null : STR[g], w = D.laneWords[kind];
  return { id: kind === 'engine' ? 'engine' : kind + ':' + name, kind: kind, label: kind === 'engine' ? w.word : w.word + ' ' + name,
    title: w.title.replace('{name}', name).replace('{of}', group ? w.of.replace('{group}', group) : '') };
});
var NS = S.lane.length;
var el = function (id) { return document.getElementById(id); };
var view = el('view'), inner = el('inner'), rows = el('rows'), marksEl = el('marks'), axis = el('axis');
var labels = el('labels-inner'), links = el('links');
var st = { scale: 1, failures: false, idle: false, span: -1, rec: -1, lanes: [], laneRow: null, frame: 0, laneKey: '' };

function esc(s) {
  return String(s).replace(/[&<>"]/g, function (c) { return c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : '&quot;'; });
}
function spanKind(i) { return D.kinds[S.kind[i]]; }
function spanCls(i) { return D.classes[S.cls[i]]; }

// The spans come ordered by lane, then start: each lane's are one range, and with the running
// maximum of their ends, the spans visible between x and y are found by two binary searches.
var byLane = LANES.map(function () { return { from: 0, to: 0, fail: false }; });
var ENDS = new Float64Array(NS);
(function () {
  var m = -Infinity;
  for (var i = 0; i < NS; i++) {
    var k = S.lane[i], b = byLane[k];
    if (i === 0 || S.lane[i - 1] !== k) { b.from = i; m = -Infinity; }
    b.to = i + 1;
    m = Math.max(m, S.x1[i]); ENDS[i] = m;
    if (S.fail[i]) b.fail = true;
  }
  for (var j = 0; j < M.x.length; j++) if (M.fail[j] && byLane[0]) byLane[0].fail = true;
})();
performance.mark('atelier:indexed');

function firstAtLeast(arr, v, lo, hi) { if (lo === undefined) { lo = 0; hi = arr.length; } while (lo < hi) { var mid = (lo + hi) >> 1; if (arr[mid] < v) lo = mid + 1; else hi = mid; } return lo; }
function firstAbove(arr, v, lo, hi) { while (lo < hi) { var mid = (lo + hi) >> 1; if (arr[mid] <= v) lo = mid + 1; else hi = mid; } return lo; }

// The lanes shown: all, or those with a failure (the filter), and with "hide idle lanes" only
// those with something between x positions xa and xb (the engine's always).
function activeIn(k, xa, xb) {
  var b = byLane[k], i = firstAtLeast(ENDS, xa, b.from, b.to);
  return i < b.to && S.x0[i] <= xb;
}
function laneList(xa, xb) {
  var lanes = [];
  for (var k = 0; k < LANES.length; k++) {
    if (st.failures && !byLane[k].fail) continue;
    if (st.idle && k > 0 && xa !== undefined && !activeIn(k, xa, xb)) continue;
    lanes.push(k);
  }
  var key = lanes.join(',');
  if (key === st.laneKey) return false;
  st.laneKey = key;
  st.lanes = lanes;
  st.laneRow = new Int32Array(LANES.length).fill(-1);
  st.lanes.forEach(function (k, row) { st.laneRow[k] = row; });
  return true;
}
/** Recompute the lanes for what is in view now (with "hide idle lanes"). */
function refreshLanes() {
  var changed = laneList(xAt(view.scrollLeft - 20), xAt(view.scrollLeft + view.clientWidth + 20));
  if (changed) sizeInner();
  return changed;
}
function px(x) { return (x - D.xmin) * st.scale; }
function xAt(p) { return p / st.scale + D.xmin; }
function sizeInner() {
  inner.style.width = Math.ceil((D.xmax - D.xmin) * st.scale + 40) + 'px';
  inner.style.height = (AXIS + st.lanes.length * ROW + 8) + 'px';
}
function fitScale() { return Math.max(1e-4, (view.clientWidth - 40) / Math.max(1, D.xmax - D.xmin)); }
function setScale(s, anchorX, anchorPx) {
  var fit = fitScale();
  st.scale = Math.min(80, Math.max(Math.min(fit, 80), s));
  sizeInner();
  view.scrollLeft = Math.max(0, px(anchorX) - anchorPx);
  schedule();
}

var WORST = { failed: 9, broken: 9, missing: 8, undone: 7, open: 6, reconciled: 5, probed: 5, orphan: 4, settled: 3, reconcile: 3, done: 1, ok: 1, kept: 1, rm: 1, exists: 0, gone: 0 };
function layerOf(kind) { return kind === 'life' ? 0 : kind === 'undo' ? 2 : 1; }

function spanHtml(i, left, width, laneKind) {
  var kind = spanKind(i), cls = spanCls(i), phase = D.phases[S.phase[i]];
  var label = STR[S.label[i]];
  var range = kind === 'container' ? ' (volatile journal)' : S.x0[i] === S.x1[i] ? ' (record ' + S.x0[i] + ')' : ' (records ' + S.x0[i] + '-' + S.x1[i] + ')';
  var title = label + range + ': ' + (D.clsWords[cls] || cls) + '. Click for the whole story: its records, their JSON and what each changed.';
  var text = width > 34 && kind !== 'life' && kind !== 'undo' ? '<span class="t">' + esc(label) + '</span>' : '';
  return '<div class="span k-' + kind + ' c-' + cls + (phase ? ' p-' + phase : '') + (i === st.span ? ' sel' : '') + '" data-testid="span" data-span="' + i +
    '" data-kind="' + kind + '" data-cls="' + cls + '" data-label="' + esc(label) + '" data-fail="' + S.fail[i] + '" style="left:' + left.toFixed(1) + 'px;width:' + width.toFixed(1) +
    'px" title="' + esc(title) + '">' + text + '</div>';
}

function aggHtml(g) {
  return '<div class="span agg k-' + g.kind + ' c-' + g.cls + '" data-testid="span-group" data-count="' + g.n + '" data-x="' + g.x.toFixed(2) + '" style="left:' + g.l.toFixed(1) +
    'px;width:' + Math.max(2, g.r - g.l).toFixed(1) + 'px" title="' + g.n + ' bars too small to draw apart: click to zoom in here"></div>';
}

function render() {
  st.frame = 0;
  if (st.idle) refreshLanes();
  var top = view.scrollTop, h = view.clientHeight, left = view.scrollLeft, w = view.clientWidth;
  var first = Math.max(0, Math.floor((top - AXIS) / ROW) - 1), last = Math.min(st.lanes.length - 1, Math.ceil((top + h) / ROW) + 1);
  var xa = xAt(left - 20), xb = xAt(left + w + 20);
  var out = [], lab = [], placed = {};
  for (var row = first; row <= last; row++) {
    var k = st.lanes[row], lane = LANES[k], list = byLane[k];
    var y = AXIS + row * ROW;
    lab.push('<div class="lane-label g-' + lane.kind + '" data-testid="lane-label" data-lane="' + esc(lane.id) + '" style="top:' + y + 'px" title="' + esc(lane.title) + '">' + esc(lane.label) + '</div>');
    out.push('<div class="lane ' + (row % 2 ? 'odd' : 'even') + ' g-' + lane.kind + '" data-testid="lane" data-lane="' + esc(lane.id) + '" data-kind="' + lane.kind + '" style="top:' + y + 'px">');
    var from = firstAtLeast(ENDS, xa, list.from, list.to), to = firstAbove(S.x0, xb, list.from, list.to);
    var groups = [null, null, null];
    var flush = function (g) {
      if (g.n > 1) return out.push(aggHtml(g));
      out.push(spanHtml(g.i, g.l, Math.max(2, g.r - g.l), lane.kind));
      placed[g.i] = { l: g.l, r: g.r, y: y };
    };
    for (var i = from; i < to; i++) {
      if (S.x1[i] < xa || (st.failures && !S.fail[i])) continue;
      var kind = spanKind(i);
      var l = px(S.x0[i] - 0.5), r = px(S.x1[i] + 0.5);
      if (kind === 'point') { var c = (l + r) / 2, half = Math.max(4, (r - l) / 2); l = c - half; r = c + half; }
      var layer = layerOf(kind), g = groups[layer];
      if (g && l <= g.r + 1.5 && (r - l < 5 || g.n > 1 || g.r - g.l < 5) && i !== st.span && g.i !== st.span) {
        g.r = Math.max(g.r, r); g.n++;
        if (WORST[spanCls(i)] > WORST[g.cls]) g.cls = spanCls(i);
        continue;
      }
      if (g) flush(g);
      groups[layer] = { i: i, l: l, r: r, n: 1, cls: spanCls(i), kind: kind, x: (S.x0[i] + S.x1[i]) / 2 };
    }
    for (var q = 0; q < 3; q++) if (groups[q]) flush(groups[q]);
    out.push('</div>');
  }
  rows.innerHTML = out.join('');
  labels.innerHTML = lab.join('');
  labels.style.transform = 'translateY(' + (-top) + 'px)';
  renderMarks(xa, xb);
  renderAxis(left, w);
  renderLinks(placed, left, top, w, h);
}

function renderMarks(xa, xb) {
  var out = [], lastPx = -10, height = AXIS + st.lanes.length * ROW;
  var engineRow = st.laneRow[0];
  for (var j = firstAtLeast(M.x, xa); j < M.x.length && M.x[j] <= xb; j++) {
    if (st.failures && !M.fail[j]) continue;
    var p = px(M.x[j]);
    if (p - lastPx < 3 && M.rec[j] !== st.rec) continue;
    lastPx = p;
    var kind = D.markKinds[M.kind[j]], label = STR[M.label[j]];
    out.push('<div class="mark m-' + kind + (M.fail[j] ? ' busy' : '') + (M.rec[j] >= 0 && M.rec[j] === st.rec ? ' sel' : '') + '" data-testid="mark" data-kind="' + kind + '" data-mark="' + j + '" style="left:' + p.toFixed(1) + 'px;height:' + height + 'px" title="' + esc(label) + '">' +
      (engineRow >= 0 ? '<span class="flag" style="top:' + (AXIS + engineRow * ROW + 3) + 'px">' + (kind === 'reconcile' ? '&#x27f2;' : kind === 'gc' ? 'gc' : '&#x26a0;') + '</span>' : '') + '</div>');
  }
  if (st.rec >= 0) out.push('<div class="cursor" data-testid="cursor" style="left:' + px(recX(st.rec)).toFixed(1) + 'px;height:' + height + 'px"></div>');
  marksEl.innerHTML = out.join('');
}

function niceStep(minUnits) {
  var p = Math.pow(10, Math.floor(Math.log10(Math.max(minUnits, 1e-9))));
  var steps = [1, 2, 5, 10];
  for (var i = 0; i < steps.length; i++) if (steps[i] * p >= minUnits) return Math.max(1, steps[i] * p);
  return Math.max(1, 10 * p);
}
function renderAxis(left, w) {
  var step = niceStep(90 / st.scale), xa = xAt(left), xb = xAt(left + w), out = [];
  for (var x = Math.ceil(xa / step) * step; x <= xb; x += step) out.push('<span class="tick" style="left:' + px(x).toFixed(1) + 'px">' + x + '</span>');
  axis.innerHTML = out.join('');
}

function renderLinks(placed, left, top, w, h) {
  links.setAttribute('width', w); links.setAttribute('height', h);
  links.style.left = left + 'px'; links.style.top = top + 'px';
  var out = [];
  for (var key in placed) {
    var i = +key, t = S.link[i];
    if (t < 0) continue;
    var row = st.laneRow[S.lane[t]];
    if (row < 0 || (st.failures && !S.fail[t])) continue;
    var a = placed[i], ty = AXIS + row * ROW + 14, tx = px(S.x1[t] + 0.5);
    var x1 = a.l - left, y1 = a.y + 14 - top, x2 = tx - left, y2 = ty - top, mid = (x1 + x2) / 2;
    out.push('<path class="link' + (i === st.span || t === st.span ? ' sel' : '') + '" data-testid="link" data-from="' + i + '" data-to="' + t + '" d="M' + x1.toFixed(1) + ',' + y1.toFixed(1) +
      ' C' + mid.toFixed(1) + ',' + y1.toFixed(1) + ' ' + mid.toFixed(1) + ',' + y2.toFixed(1) + ' ' + x2.toFixed(1) + ',' + y2.toFixed(1) + '" marker-end="url(#arrow)"/>');
  }
  links.innerHTML = '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>' + out.join('');
}

function schedule() { if (!st.frame) st.frame = requestAnimationFrame(render); }
view.addEventListener('scroll', schedule, { passive: true });
window.addEventListener('resize', function () { sizeInner(); schedule(); });
view.addEventListener('wheel', function (e) {
  if (!e.ctrlKey) return;
  e.preventDefault();
  var rect = view.getBoundingClientRect(), p = e.clientX - rect.left, x = xAt(view.scrollLeft + p);
  setScale(st.scale * (e.deltaY < 0 ? 1.25 : 0.8), x, p);
}, { passive: false });
`;
