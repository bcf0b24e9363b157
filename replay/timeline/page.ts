/**
 * The timeline as one self-contained HTML page: the header (journal, first and last sequence
 * number, time span, torn tail or other damage, atelier version), the toolbar, a legend, the lanes,
 * and a detail panel; style and script inline, nothing fetched.
 *
 * The model goes in as data blocks, each JSON compressed with zlib's deflate and written in base64
 * (the browser inflates them with its own `DecompressionStream`: a 100,000-record journal's page
 * is ~10 MB instead of ~75, and loading bytes is what a browser spends most on): `atelier-data`,
 * compact (columns of numbers, strings interned once), inflated at load; `atelier-notes`, each
 * span's explanation, and `atelier-records-N`, the records in chunks of `CHUNK`, one JSON line per
 * record (its text, JSON and diff), inflated only when shown. The same model gives the same bytes:
 * the page holds no time of its own making, and deflate is deterministic.
 *
 * @example
 * ```ts
 * await writeFile('timeline.html', timelinePage(buildTimeline(image, { version, journal })));
 * ```
 */
import { deflateSync } from 'node:zlib';
import { LANE_WORDS, type LaneKind } from './lanes.ts';
import type { SpanClass, SpanKind, TimelineModel } from './types.ts';
import { PANEL_SCRIPT } from './script-panel.ts';
import { VIEW_SCRIPT } from './script-view.ts';
import { STYLE } from './style.ts';

const KINDS: readonly SpanKind[] = ['op', 'undo', 'step', 'life', 'point', 'band', 'container'];
const CLASSES: readonly SpanClass[] = ['done', 'undone', 'broken', 'reconciled', 'open', 'ok', 'failed', 'probed', 'exists', 'gone', 'orphan', 'missing', 'settled', 'reconcile', 'kept', 'rm'];
const PHASES = ['', 'do', 'undo', 'cleanup'] as const;
const MARK_KINDS = ['reconcile', 'gc', 'damage'] as const;

/** What each class and kind is called in the detail panel. */
const CLASS_WORDS: Record<SpanClass, string> = {
  done: 'it did what it was asked',
  undone: 'it failed, and what it had done was undone',
  broken: 'it failed, and undoing it failed too: the workshop is broken',
  reconciled: 'a crash interrupted it; reconciliation at the next start settled it',
  open: 'the journal holds no outcome for it (it ends before one)',
  ok: 'the backend call succeeded',
  failed: 'the backend call failed',
  probed: 'a crash interrupted it; reconciliation probed its target and decided',
  exists: 'the state holds it to the end of the journal',
  gone: 'the state held it for this long',
  orphan: 'owned by atelier but accounted for by nothing: removed',
  missing: 'the state held it, the backend did not',
  settled: 'reconciliation found where it really is',
  reconcile: 'what reconciliation did at an engine start',
  kept: 'a container kept after its script',
  rm: 'a container removed after its script (--rm)',
};
const KIND_WORDS: Record<SpanKind, string> = {
  op: 'an operation, from its intent to its outcome,',
  undo: 'the undo phase of an operation,',
  step: 'one step (a backend call), from its request to its outcome,',
  life: "the object's life in the state,",
  point: 'what reconciliation or gc found of an object,',
  band: "a reconciliation's work,",
  container: 'a transient container,',
};

/** Records per compressed chunk: showing one record inflates ~1 MB at most. */
export const CHUNK = 2000;

const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const round = (x: number): number => Math.round(x * 1000) / 1000;

/** Which kinds of span are drawn over which, within a lane. */
const DRAW_RANK: Record<SpanKind, number> = { life: 0, band: 1, op: 2, container: 2, step: 3, point: 4, undo: 5 };

/** The spans in drawing order (by lane, start, kind), and each span's place in it. */
function drawOrder(m: TimelineModel): { order: number[]; pos: Int32Array } {
  const sp = m.spans;
  const order = sp.map((_, i) => i).sort((a, b) => sp[a]!.lane - sp[b]!.lane || sp[a]!.x0 - sp[b]!.x0 || DRAW_RANK[sp[a]!.kind] - DRAW_RANK[sp[b]!.kind] || a - b);
  const pos = new Int32Array(sp.length);
  order.forEach((old, k) => (pos[old] = k));
  return { order, pos };
}

/** A JSON-able value (or text) as the page stores it: deflated, in base64. */
const packed = (text: string): string => deflateSync(text, { level: 6 }).toString('base64');

/** The compact form of the model the page parses at load. */
function encode(m: TimelineModel, draw: { order: number[]; pos: Int32Array }): string {
  const strings: string[] = [];
  const ids = new Map<string, number>();
  const str = (s: string): number => {
    let i = ids.get(s);
    if (i === undefined) {
      i = strings.push(s) - 1;
      ids.set(s, i);
    }
    return i;
  };
  const types: string[] = [];
  const typeIds = new Map<string, number>();
  const type = (t: string): number => typeIds.get(t) ?? (typeIds.set(t, types.push(t) - 1), types.length - 1);
  // Which op each record, and so each step, belongs to: the page finds a span's records from
  // these (an op's: its own and its steps', in its range) instead of carrying every list.
  const opOfRec = new Int32Array(m.records.length).fill(-1);
  for (const [k, s] of m.spans.entries()) if (s.kind === 'op') for (const ri of s.recs) opOfRec[ri] = k;
  // Spans go in the order the page draws them (lane by lane, by start), so that it finds a lane's
  // spans as one range instead of sorting 100,000 of them at load.
  const { order, pos } = draw;
  const at = <T>(f: (s: TimelineModel['spans'][number], old: number) => T): T[] => order.map((old) => f(m.spans[old]!, old));
  const ref = (k: number): number => (k < 0 ? -1 : pos[k]!);
  const life = at((s, old) => (s.kind === 'life' ? old : -1)).filter((k) => k >= 0);
  const laneKinds = Object.keys(LANE_WORDS) as LaneKind[];
  const d = m.header.damage;
  const durable = m.header.records;
  const vol = m.records.slice(durable);
  return JSON.stringify({
    h: { ...m.header, damageText: d ? d.message : '' },
    xmin: m.xmin,
    xmax: m.xmax,
    laneWords: LANE_WORDS,
    lanes: {
      kind: m.lanes.map((l) => laneKinds.indexOf(l.kind)),
      name: m.lanes.map((l) => str(l.name)),
      group: m.lanes.map((l) => (l.group === null ? -1 : str(l.group))),
    },
    laneKinds,
    kinds: KINDS,
    classes: CLASSES,
    phases: PHASES,
    markKinds: MARK_KINDS,
    clsWords: CLASS_WORDS,
    kindWords: KIND_WORDS,
    spans: {
      lane: at((s) => s.lane),
      kind: at((s) => KINDS.indexOf(s.kind)),
      cls: at((s) => CLASSES.indexOf(s.cls)),
      x0: at((s) => round(s.x0)),
      x1: at((s) => round(s.x1)),
      label: at((s) => str(s.label)),
      link: at((s) => ref(s.link)),
      fail: at((s) => (s.fail ? 1 : 0)),
      phase: at((s) => PHASES.indexOf(s.phase ?? '')),
      op: at((s) => (s.kind === 'op' || s.recs.length === 0 ? -1 : ref(opOfRec[s.recs[0]!]!))),
    },
    // A life's records (where the state took and dropped the object) belong to other spans.
    life: { span: life.map(ref), from: life.map((k) => m.spans[k]!.recs[0]!), to: life.map((k) => m.spans[k]!.recs[1] ?? -1) },
    marks: {
      x: m.marks.map((k) => round(k.x)),
      kind: m.marks.map((k) => MARK_KINDS.indexOf(k.kind)),
      rec: m.marks.map((k) => k.rec),
      label: m.marks.map((k) => str(k.label)),
      fail: m.marks.map((k) => (k.fail ? 1 : 0)),
    },
    chunk: CHUNK,
    records: {
      // Durable records' seqs run on from the first, and their position is their seq: only the
      // volatile journal's are written out.
      durable,
      volSeq: vol.map((r) => r.seq),
      volX: vol.map((r) => round(r.x)),
      type: m.records.map((r) => type(r.type)),
      fail: m.records.map((r) => (r.failure ? 1 : 0)),
      span: m.records.map((r) => ref(r.span)),
    },
    types,
    strings,
  });
}

function header(m: TimelineModel): string {
  const h = m.header;
  const damage = h.damage
    ? `<dd class="bad" data-testid="header-torn" data-kind="${h.damage.kind}" data-code="${h.damage.code ?? ''}" title="${esc(h.damage.message)}">${h.damage.kind === 'torn' ? `torn: ${h.damage.bytes ?? '?'} bytes where record ${h.damage.seq} would be (a write a crash cut short; the next start cuts it)` : `${h.damage.kind === 'corrupt' ? 'corrupt' : 'newer version'} at record ${h.damage.seq} (${esc(h.damage.code ?? '')}): the records after it are not shown`}</dd>`
    : '<dd data-testid="header-torn" data-kind="none">none: the journal ends on a whole record</dd>';
  const kept = h.keptTorn.length ? `<div><dt>torn pieces kept aside</dt><dd data-testid="header-kept-torn">${h.keptTorn.map(esc).join(', ')}</dd></div>` : '';
  const time = h.firstAt && h.lastAt ? `<div><dt>time</dt><dd data-testid="header-time">${esc(h.firstAt)} to ${esc(h.lastAt)}</dd></div>` : '';
  return `<header data-testid="header">
<h1>atelier journal timeline</h1>
<dl>
<div><dt>journal</dt><dd data-testid="header-journal">${esc(h.journal)}</dd></div>
<div><dt>first record</dt><dd data-testid="header-first">${h.first ?? 'none'}</dd></div>
<div><dt>last record</dt><dd data-testid="header-last">${h.last ?? 'none'}</dd></div>
<div><dt>records</dt><dd data-testid="header-records">${h.records}${h.volatile ? ` (and ${h.volatile} in the volatile journal of transient containers)` : ''}</dd></div>
${time}
<div><dt>torn tail or damage</dt>${damage}</div>
${kept}
<div><dt>operations</dt><dd data-testid="header-ops">${h.ops}, of which ${h.failures} not simply done</dd></div>
<div><dt>atelier</dt><dd data-testid="header-version">${esc(h.version)}</dd></div>
</dl>
<p class="intro">atelier journals every decision before acting on it, as numbered records. Time runs left to right in record numbers. Each workshop has a lane of its operations (launch, refresh, stash, ...), each drawn from the record of its intent to the record of its outcome; under it, a lane for each backend object the operations touched (the workshop's instance, its SDK layers, its stashes) and for each transient container, with one bar per step. Click a bar, a mark or a record to see its records, their JSON and what each changed in the state.</p>
</header>`;
}

const sw = (cls: string, kind = 'op', extra = '') => `<span class="sw c-${cls} k-${kind}${extra}"></span>`;
const LEGEND = `<div class="legend" data-testid="legend">
<b>operations:</b>
<span class="item" data-testid="legend-done">${sw('done')}done</span>
<span class="item" data-testid="legend-undone">${sw('undone')}undone (failed, then undone)</span>
<span class="item" data-testid="legend-broken">${sw('broken')}broken (failed, and undoing failed)</span>
<span class="item" data-testid="legend-reconciled">${sw('reconciled')}settled by reconciliation (after a crash)</span>
<span class="item">${sw('open')}in flight (no outcome journaled)</span>
<span class="item">${sw('undone', 'undo')}its undo phase</span>
<b>steps:</b>
<span class="item">${sw('ok', 'step')}done</span>
<span class="item">${sw('failed', 'step')}failed</span>
<span class="item">${sw('probed', 'step')}probed by reconciliation</span>
<span class="item">${sw('ok', 'step', ' p-undo')}undo step (a dashed arrow points to the step it undoes)</span>
<b>objects:</b>
<span class="item">${sw('exists', 'life')}held by the state</span>
<span class="item">${sw('kept', 'container')}transient container</span>
<b>marks:</b>
<span class="item">${sw('', '', ' mk m-reconcile')}reconciliation (engine start)</span>
<span class="item">${sw('', '', ' mk m-gc')}gc</span>
<span class="item">${sw('', '', ' mk m-damage')}torn or corrupt tail</span>
</div>`;

const TOOLBAR = (m: TimelineModel) => `<nav class="toolbar" data-testid="toolbar">
<label><input type="checkbox" id="filter-failures" data-testid="filter-failures"> failures only</label>
<label title="show only the lanes with something in the part of the journal on screen (on at first when there are many lanes)"><input type="checkbox" id="filter-idle" data-testid="filter-idle"> hide idle lanes</label>
<form id="jump-form" data-testid="jump-form"><label for="jump-input">jump to record</label><input id="jump-input" data-testid="jump-input" type="number" placeholder="${m.header.first ?? 0}-${m.header.last ?? 0}"><button data-testid="jump-go">go</button></form>
<span id="jump-error" class="err" data-testid="jump-error"></span>
<button id="prev-failure" data-testid="prev-failure" title="previous failure (key p)">&#x25c0; previous failure</button>
<button id="next-failure" data-testid="next-failure" title="next failure (key n)">next failure &#x25b6;</button>
<span>zoom <button id="zoom-out" data-testid="zoom-out" title="key -">&minus;</button> <button id="zoom-in" data-testid="zoom-in" title="key +">+</button> <button id="zoom-fit" data-testid="zoom-fit">whole journal</button></span>
<span id="status" data-testid="status"></span>
</nav>`;

const HELP = `<template id="detail-help"><h2>Details</h2>
<p>Click a bar to see what it is, its journal records, and for the chosen record its text, what it changed in the state, and its JSON. Click a record in the list to show that one.</p>
<ul class="help">
<li><b>failures only</b> hides every lane and bar that did not fail, was not undone, did not break, and was not interrupted by a crash.</li>
<li><b>hide idle lanes</b> shows only the lanes with something in the part of the journal on screen: zoom in, and the lanes follow what you look at.</li>
<li><b>jump to record</b> shows the record with that sequence number; <b>next failure</b> (key <kbd>n</kbd>) and <b>previous failure</b> (<kbd>p</kbd>) step through failed steps, undo phases, operations not done and objects found missing.</li>
<li>Zoom with the buttons, <kbd>+</kbd> and <kbd>-</kbd>, or Ctrl and the mouse wheel. Bars too thin to tell apart are merged into one, coloured by the worst outcome in it; click it to zoom in.</li>
</ul></template>`;

/** The page: one HTML document holding everything it shows. */
export function timelinePage(m: TimelineModel): string {
  const draw = drawOrder(m);
  const chunks: string[] = [];
  for (let k = 0; k * CHUNK < m.records.length; k++) {
    const lines = m.records.slice(k * CHUNK, (k + 1) * CHUNK).map((r) => r.line);
    chunks.push(`<script type="application/octet-stream" id="atelier-records-${k}">${packed(lines.join('\n'))}</script>`);
  }
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="atelier ${esc(m.header.version)}">
<title>atelier journal timeline: ${esc(m.header.journal)}</title>
<style>${STYLE}</style>
</head>
<body>
${header(m)}
${TOOLBAR(m)}
${LEGEND}
<main>
<div id="labels" data-testid="lane-labels"><div id="labels-head">lanes &#x2193; &middot; record number &#x2192;</div><div id="labels-inner"></div></div>
<div id="view" data-testid="timeline"><div id="inner"><div id="axis" data-testid="axis"></div><div id="rows"></div><div id="marks"></div><svg id="links"></svg></div></div>
<aside id="detail" data-testid="detail"></aside>
</main>
${HELP}
<script type="application/octet-stream" id="atelier-data">${packed(encode(m, draw))}</script>
<script type="application/octet-stream" id="atelier-notes">${packed(JSON.stringify(draw.order.map((k) => m.spans[k]!.note)))}</script>
${chunks.join('\n')}
<script>
(async function () {
${VIEW_SCRIPT}
${PANEL_SCRIPT}
})().catch(function (e) {
  document.getElementById('detail').textContent = 'This page could not be drawn: ' + e + ' (it needs a browser with DecompressionStream: Chromium 80, Firefox 113, Safari 16.4 or later).';
  throw e;
});
</script>
</body>
</html>
`;
}
