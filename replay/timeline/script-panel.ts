/**
 * The page's script, second half (after `script-view.ts`, in the same scope): selecting a span, a
 * mark or a record; the detail panel (the span's records, the chosen record's text, the state diff
 * it made and its JSON, read lazily from the one-record-a-line block); the failures-only filter;
 * jumping to a sequence number; the previous and next failure; zoom; keys (`n`, `p`, `+`, `-`);
 * `#seq=N` in the address. Sets `document.body.dataset.ready` once the first frame is drawn.
 *
 * @example
 * ```ts
 * const html = `<script>${VIEW_SCRIPT}${PANEL_SCRIPT}</script>`;
 * ```
 */
export const PANEL_SCRIPT = String.raw`
var detail = el('detail'), statusEl = el('status');
// Records are inflated a chunk at a time, when one of them is first shown; notes all at once.
var CHUNKS = {}, NOTES = null;
function missing(recs) {
  var need = [];
  recs.forEach(function (r) { var c = Math.floor(r / D.chunk); if (!CHUNKS[c] && need.indexOf(c) < 0) need.push(c); });
  return need;
}
async function load(recs, notes) {
  var need = missing(recs);
  for (var k = 0; k < need.length; k++) CHUNKS[need[k]] = (await unpack('atelier-records-' + need[k])).split('\n');
  if (notes && !NOTES) NOTES = JSON.parse(await unpack('atelier-notes'));
}
function recordData(i) { return JSON.parse(CHUNKS[Math.floor(i / D.chunk)][i % D.chunk]); }
// A span's records: a life's two are listed; an op's are its own and its steps' (an undo phase's,
// those from its start on), found in its range; any other span's are the records it owns.
var LIFE = {};
D.life.span.forEach(function (s, j) { LIFE[s] = D.life.to[j] >= 0 ? [D.life.from[j], D.life.to[j]] : [D.life.from[j]]; });
function spanRecs(s) {
  var kind = spanKind(s), out = [];
  if (kind === 'life') return LIFE[s] || [];
  var lo = 0, hi = R.span.length - 1;
  if (kind !== 'container') { lo = Math.max(0, Math.ceil(S.x0[s]) - FIRST); hi = Math.min(ND - 1, Math.floor(S.x1[s]) - FIRST); }
  else lo = ND;
  var op = kind === 'op' ? s : kind === 'undo' ? S.op[s] : -1;
  for (var i = lo; i <= hi; i++) {
    var o = R.span[i];
    if (op >= 0 ? (o === op || (o >= 0 && S.op[o] === op)) && (kind === 'op' || recX(i) >= S.x0[s]) : o === s) out.push(i);
  }
  return out;
}
function defaultRec(s) {
  var recs = spanRecs(s), kind = spanKind(s);
  if (!recs.length) return -1;
  return kind === 'life' || kind === 'container' || kind === 'point' ? recs[0] : recs[recs.length - 1];
}
function status(text) { statusEl.textContent = text; }
function seqText(i) { return recVol(i) ? 'volatile record ' + recSeq(i) : 'record ' + recSeq(i); }

function select(s, rec, scroll) {
  st.span = s; st.rec = rec;
  el('jump-error').textContent = '';
  showDetail();
  if (scroll) reveal();
  schedule();
  if (rec >= 0 && !recVol(rec)) history.replaceState(null, '', '#seq=' + recSeq(rec));
}
function reveal() {
  var x = st.rec >= 0 ? recX(st.rec) : (S.x0[st.span] + S.x1[st.span]) / 2;
  view.scrollLeft = Math.max(0, px(x) - view.clientWidth / 2);
  if (st.idle) refreshLanes();
  var row = st.span >= 0 ? st.laneRow[S.lane[st.span]] : -1;
  if (row >= 0) {
    var y = AXIS + row * ROW;
    if (y < view.scrollTop + AXIS || y + ROW > view.scrollTop + view.clientHeight) view.scrollTop = Math.max(0, y - view.clientHeight / 3);
  }
}

function spanLink(t, words) {
  return '<a href="#" data-goto-span="' + t + '">' + esc(STR[S.label[t]]) + '</a> <span class="muted">(' + esc(LANES[S.lane[t]].label) + ', ' + words + ')</span>';
}
function recordRange(recs) {
  if (!recs.length) return '';
  var a = recs[0], b = recs[recs.length - 1];
  var vol = recVol(a) ? ' of the volatile journal' : '';
  return recSeq(a) === recSeq(b) ? 'record ' + recSeq(a) + vol : 'records ' + recSeq(a) + '-' + recSeq(b) + vol;
}
var detailWanted = 0;
async function showDetail() {
  var s = st.span, rec = st.rec, h = [], wanted = ++detailWanted;
  var recs0 = (s >= 0 ? spanRecs(s).slice(0, 300) : []).concat(rec >= 0 ? [rec] : []);
  if (missing(recs0).length || (s >= 0 && !NOTES)) {
    detail.innerHTML = '<p class="muted" data-testid="detail-loading">reading the journal...</p>';
    await load(recs0, s >= 0);
    if (wanted !== detailWanted) return;
  }
  if (s >= 0) {
    var recs = spanRecs(s), kind = spanKind(s), cls = spanCls(s);
    h.push('<h2 data-testid="detail-title"><span class="sw c-' + cls + ' k-' + kind + '"></span>' + esc(STR[S.label[s]]) + '</h2><p class="muted" data-testid="detail-meaning">' + esc(D.clsWords[cls] || cls) + '</p>');
    h.push('<p class="note" data-testid="detail-note">' + esc(NOTES[s]) + '</p>');
    h.push('<p class="muted">' + esc(D.kindWords[kind] || kind) + ' on lane <b>' + esc(LANES[S.lane[s]].label) + '</b>, ' + recordRange(recs) + '</p>');
    if (S.link[s] >= 0) h.push('<p data-testid="detail-undoes">' + (kind === 'undo' ? 'started by: ' : 'undoes: ') + spanLink(S.link[s], recordRange(spanRecs(S.link[s]))) + '</p>');
    var back = [];
    for (var i = 0; i < NS; i++) if (S.link[i] === s) back.push(spanLink(i, recordRange(spanRecs(i))));
    if (back.length) h.push('<p data-testid="detail-undone-by">undone by: ' + back.join('; ') + '</p>');
    if (recs.length > 1) {
      h.push('<h3>its records</h3><ol class="recs" data-testid="detail-records">');
      var shown = recs.length > 300 ? recs.slice(0, 300) : recs;
      shown.forEach(function (r) {
        h.push('<li data-testid="detail-record" data-rec="' + r + '" data-seq="' + recSeq(r) + '" class="' + (r === rec ? 'sel' : '') + (R.fail[r] ? ' fail' : '') + '" title="' + esc(recordData(r).t) + '"><code>' + recSeq(r) + '</code><span class="ty">' + esc(D.types[R.type[r]]) + '</span> ' + esc(recordData(r).t) + '</li>');
      });
      if (shown.length < recs.length) h.push('<li class="muted">... and ' + (recs.length - shown.length) + ' more</li>');
      h.push('</ol>');
    }
  }
  if (rec >= 0) {
    var d = recordData(rec);
    h.push('<h3 data-testid="detail-record-title">' + seqText(rec) + ': ' + esc(D.types[R.type[rec]]) + (R.fail[rec] ? ' <span class="badge">failure</span>' : '') + '</h3>');
    h.push('<p class="text" data-testid="record-text">' + esc(d.t) + '</p>');
    if (d.r.data && d.r.data.at) h.push('<p class="muted">at ' + esc(d.r.data.at) + ', key ' + esc(d.r.key) + '</p>');
    h.push('<h4>what it changed in the state</h4>');
    if (d.d === null) h.push('<p class="muted" data-testid="record-diff">nothing durable: the volatile journal records transient containers, which no durable state depends on</p>');
    else if (!d.d.length) h.push('<p class="muted" data-testid="record-diff">nothing</p>');
    else {
      h.push('<pre class="diff" data-testid="record-diff">' + d.d.map(function (line) {
        return '<span class="' + (line[0] === '+' ? 'add' : line[0] === '-' ? 'rm' : 'chg') + '">' + esc(line) + '</span>';
      }).join('\n') + (d.m ? '\n<span class="muted">... and ' + d.m + ' more changes</span>' : '') + '</pre>');
    }
    h.push('<h4>the record as stored in the journal</h4><pre class="json" data-testid="record-json">' + esc(JSON.stringify(d.r, null, 2)) + '</pre>');
    if (d.u) h.push('<h4>as this atelier reads it (upcast from version ' + d.r.v + ')</h4><pre class="json">' + esc(JSON.stringify(d.u, null, 2)) + '</pre>');
  }
  if (!h.length) h.push(el('detail-help').innerHTML);
  detail.innerHTML = h.join('');
  detail.scrollTop = 0;
}

// Clicks: a span, an aggregate (zoom in there), a mark, a record in the panel, a link in the panel.
rows.addEventListener('click', function (e) {
  var t = e.target.closest('[data-span]');
  if (t) { var s = +t.getAttribute('data-span'); return select(s, defaultRec(s), false); }
  var g = e.target.closest('[data-testid="span-group"]');
  if (g) { var rect = view.getBoundingClientRect(); setScale(st.scale * 4, +g.getAttribute('data-x'), e.clientX - rect.left); }
});
marksEl.addEventListener('click', function (e) {
  var m = e.target.closest('[data-mark]');
  if (!m) return;
  var j = +m.getAttribute('data-mark'), rec = M.rec[j];
  if (rec >= 0) select(R.span[rec], rec, false);
  else { st.span = -1; st.rec = -1; detail.innerHTML = '<h2 data-testid="detail-title">' + esc(STR[M.label[j]]) + '</h2><p class="note">' + esc(D.h.damageText) + '</p>'; schedule(); }
});
detail.addEventListener('click', function (e) {
  var r = e.target.closest('[data-rec]');
  if (r) return select(st.span, +r.getAttribute('data-rec'), true);
  var a = e.target.closest('[data-goto-span]');
  if (a) { e.preventDefault(); var s = +a.getAttribute('data-goto-span'); select(s, defaultRec(s), true); }
});

// The failures-only filter, jumping, the previous and next failure.
var FAILS = [];
for (var fi = 0; fi < R.fail.length; fi++) if (R.fail[fi]) FAILS.push(fi);
FAILS.sort(function (a, b) { return recX(a) - recX(b) || a - b; });
el('filter-failures').addEventListener('change', function (e) {
  st.failures = e.target.checked;
  st.laneKey = ''; refreshLanes(); schedule();
  status(st.failures ? 'showing ' + st.lanes.length + ' of ' + LANES.length + ' lanes: only what failed, was undone, broke or was interrupted' : '');
});
function goFailure(dir) {
  if (!FAILS.length) return status('no failure in this journal');
  var cur = st.rec >= 0 ? recX(st.rec) : dir > 0 ? xAt(view.scrollLeft) - 1 : xAt(view.scrollLeft + view.clientWidth) + 1;
  var pick = -1;
  if (dir > 0) { for (var i = 0; i < FAILS.length; i++) if (recX(FAILS[i]) > cur) { pick = FAILS[i]; break; } }
  else for (var k = FAILS.length - 1; k >= 0; k--) if (recX(FAILS[k]) < cur) { pick = FAILS[k]; break; }
  if (pick < 0) return status(dir > 0 ? 'no failure after this point' : 'no failure before this point');
  status('failure ' + (FAILS.indexOf(pick) + 1) + ' of ' + FAILS.length);
  select(R.span[pick], pick, true);
}
el('filter-idle').addEventListener('change', function (e) {
  st.idle = e.target.checked;
  st.laneKey = ''; refreshLanes(); schedule();
});
el('next-failure').addEventListener('click', function () { goFailure(1); });
el('prev-failure').addEventListener('click', function () { goFailure(-1); });
function jump(seq) {
  var err = el('jump-error');
  var i = D.h.first === null ? -1 : seq - D.h.first;
  if (!(i >= 0 && i < D.h.records)) {
    err.textContent = D.h.first === null ? 'the journal holds no record' : 'no record ' + seq + ': this journal holds records ' + D.h.first + ' to ' + D.h.last;
    return false;
  }
  err.textContent = '';
  status('');
  select(R.span[i], i, true);
  return true;
}
el('jump-form').addEventListener('submit', function (e) { e.preventDefault(); jump(parseInt(el('jump-input').value, 10)); });
function zoomBy(f) {
  var c = st.rec >= 0 ? recX(st.rec) : xAt(view.scrollLeft + view.clientWidth / 2);
  var anchor = st.rec >= 0 ? Math.min(Math.max(px(c) - view.scrollLeft, 0), view.clientWidth) : view.clientWidth / 2;
  setScale(st.scale * f, c, anchor);
}
el('zoom-in').addEventListener('click', function () { zoomBy(2); });
el('zoom-out').addEventListener('click', function () { zoomBy(0.5); });
el('zoom-fit').addEventListener('click', function () { setScale(fitScale(), D.xmin, 0); });
document.addEventListener('keydown', function (e) {
  if (e.target.closest && e.target.closest('input, textarea') || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === 'n') goFailure(1);
  else if (e.key === 'p') goFailure(-1);
  else if (e.key === '+' || e.key === '=') zoomBy(2);
  else if (e.key === '-') zoomBy(0.5);
});

// Many lanes: show at first only those with something in view.
st.idle = LANES.length > 60;
el('filter-idle').checked = st.idle;
st.scale = fitScale();
refreshLanes();
showDetail();
var hash = /^#seq=(\d+)$/.exec(location.hash);
if (hash) jump(+hash[1]);
render();
performance.mark('atelier:ready');
document.body.dataset.ready = '1';
`;
