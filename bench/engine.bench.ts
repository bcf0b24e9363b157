/**
 * Engine figures (see bench/README.md, "Replay and start-up").
 *
 * - `replay.full.1m`: events/s folding a 1,000,000-record journal from scratch (open, verify, parse,
 *   upcast, fold). Baseline: only reading the same segment files and `JSON.parse`-ing each line.
 *   Target: >= 250k events/s (so no xstate `transition()` and no immer `produce` per event).
 * - `replay.diff.1m`: ms for `atelier replay diff 1 LAST` over the same 1M-record journal (the
 *   debugger's read, with no lock: read every record, fold to the first point, copy the state, fold
 *   on to the last, diff the two states). Baseline: a full replay of the same journal in ms (what
 *   `replay.full.1m` times). Target: ratio <= 1.2.
 * - `startup.checkpoint.1m`: time to open an engine over the same 1M-record history with a
 *   checkpoint and a 10k-record tail, as a ratio to opening it with a full replay. Target <= 5%.
 *   Both open with `reconcile: false`: the bench backend holds none of the million-event history's
 *   objects, and reconciling would measure the backend, not start-up.
 *
 * The journal is written synthetically, op by op, from the real planners, in the shapes the engine
 * journals (op.started with its plan, effect.requested/succeeded per step, op.finished), over 1,000
 * workshops that are launched once and then refreshed again and again.
 *
 * @example
 * ```sh
 * npm run bench -- replay
 * ```
 */
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFakeBackend } from '../backends/fake/index.ts';
import { EVENT_VERSIONS, type EventInput, type Plan, type WorkshopShape } from '../events/catalogue.ts';
import { DEFAULT_SEGMENT_BYTES, openJournal } from '../events/journal.ts';
import { encodeRecord } from '../events/record.ts';
import { segmentName } from '../events/segments.ts';
import { planLaunch, planRefresh } from '../machines/plan.ts';
import { openEngineImpl as openEngine } from '../engine/engine.ts';
import { openFolded, replay } from '../engine/replay.ts';
import { streamDiff } from '../replay/walk.ts';
import type { BenchEntry, Figure } from './run.ts';

const TOTAL = Number(process.env.ATELIER_BENCH_EVENTS ?? 1_000_000);
const TAIL = 10_000;
const WORKSHOPS = 1000;

function* opEvents(name: string, op: string, kind: 'launch' | 'refresh', plan: Plan, at: string): Generator<EventInput> {
  yield { type: 'op.started', key: name, data: { op, kind, workshop: name, plan, at } };
  for (let step = 0; step < plan.do.length; step++) {
    yield { type: 'effect.requested', key: name, data: { op, phase: 'do', step, attempt: 1, at } };
    yield { type: 'effect.succeeded', key: name, data: { op, phase: 'do', step, at, ...(step === 0 && kind === 'launch' ? { identity: { mac: '00:16:3e:00:00:01', uuid: `uuid-${name}` } } : {}) } };
  }
  if (plan.cleanup.length) yield { type: 'op.phase', key: name, data: { op, phase: 'cleanup', at, reason: 'done' } };
  for (let step = 0; step < plan.cleanup.length; step++) {
    yield { type: 'effect.requested', key: name, data: { op, phase: 'cleanup', step, attempt: 1, at } };
    yield { type: 'effect.succeeded', key: name, data: { op, phase: 'cleanup', step, at } };
  }
  yield { type: 'op.finished', key: name, data: { op, outcome: 'done', at, status: 'ready', shape: plan.after, lastError: null, garbage: [] } };
}

/** Write a journal of at least `total` records into `dir/journal`, in segments of the journal's default size. */
function writeHistory(dir: string, total: number): number {
  const jdir = join(dir, 'journal');
  fs.mkdirSync(jdir, { recursive: true });
  const shapes = new Map<string, WorkshopShape>();
  let seq = 0;
  let n = 0;
  let chunk: string[] = [];
  let segFirst = 1;
  let segBytes = 0;
  let fd = fs.openSync(join(jdir, segmentName(1)), 'w');
  const emit = (e: EventInput) => {
    seq++;
    const line = encodeRecord({ seq, v: EVENT_VERSIONS[e.type], type: e.type, key: e.key, data: e.data });
    chunk.push(line);
    segBytes += line.length;
    if (chunk.length >= 4096) flush();
  };
  const flush = () => {
    fs.writeSync(fd, chunk.join(''));
    chunk = [];
    if (segBytes > DEFAULT_SEGMENT_BYTES) {
      fs.closeSync(fd);
      segFirst = seq + 1;
      segBytes = 0;
      fd = fs.openSync(join(jdir, segmentName(segFirst)), 'w');
    }
  };
  const sdks = (gen: number) => [
    { name: 'ros2', hash: 'h-ros2', script: 'echo ros2 > "${ATELIER_ROOTFS%/}/etc/ros2"' },
    { name: 'nav', hash: `h-nav-${gen}`, script: `echo ${gen} > "\${ATELIER_ROOTFS%/}/etc/nav"` },
  ];
  for (let gen = 0; seq < total; gen++) {
    for (let w = 0; w < WORKSHOPS && seq < total; w++) {
      const name = `ws${w}`;
      const op = `op-${++n}`;
      const ctx = { owner: 'bench', op };
      const spec = { name, base: 'busybox', defaultBase: true, projectId: '1a2b3c4d', sdks: sdks(gen) };
      const suffix = (k: number) => (n * 4 + k).toString(16).padStart(16, '0');
      const shape = shapes.get(name);
      const plan = shape ? planRefresh({ ctx, name, shape, spec, reuse: 1, suffixes: [suffix(1)], isPresent: () => true }) : planLaunch({ ctx, spec, suffixes: [suffix(0), suffix(1)] });
      shapes.set(name, plan.after!);
      for (const e of opEvents(name, op, shape ? 'refresh' : 'launch', plan, '2026-11-23T00:00:00.000Z')) emit(e);
    }
  }
  fs.writeSync(fd, chunk.join(''));
  fs.closeSync(fd);
  return seq;
}

function parseBaseline(dir: string): { lines: number; seconds: number } {
  const t0 = performance.now();
  let lines = 0;
  for (const f of fs.readdirSync(join(dir, 'journal')).sort()) {
    if (!f.endsWith('.jsonl')) continue;
    const text = fs.readFileSync(join(dir, 'journal', f), 'utf8');
    let start = 0;
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', start)) {
      JSON.parse(text.slice(start, i));
      lines++;
      start = i + 1;
    }
  }
  return { lines, seconds: (performance.now() - t0) / 1000 };
}

async function fullReplay(dir: string): Promise<{ events: number; seconds: number }> {
  const t0 = performance.now();
  // What openEngine does: fold each record as it is decoded.
  const { journal, fold } = await openFolded(join(dir, 'journal'), { checkpointDir: join(dir, 'none') });
  await journal.close();
  return { events: fold.seq, seconds: (performance.now() - t0) / 1000 };
}

let history: { dir: string; seq: number } | null = null;
function sharedHistory(): { dir: string; seq: number } {
  if (!history) {
    const dir = fs.mkdtempSync(join(process.env.ATELIER_BENCH_DIR ?? tmpdir(), 'atelier-bench-replay-'));
    history = { dir, seq: writeHistory(dir, TOTAL) };
    process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  }
  return history;
}

export const figures: BenchEntry[] = [
  {
    name: 'replay.full.1m',
    async run(): Promise<Figure> {
      const { dir } = sharedHistory();
      const base = parseBaseline(dir);
      const r = await fullReplay(dir);
      return { name: 'replay.full.1m', value: Math.round(r.events / r.seconds), unit: 'events/s', baseline: Math.round(base.lines / base.seconds), events: r.events, target: '>= 250000 events/s' };
    },
  },
  {
    name: 'replay.diff.1m',
    async run(): Promise<Figure> {
      const { dir, seq } = sharedHistory();
      // Alternated, best of two each: the first pass over a million records pays for the page cache and the JIT.
      let fullMs = Infinity;
      let ms = Infinity;
      let changes = 0;
      for (let round = 0; round < 2; round++) {
        fullMs = Math.min(fullMs, (await fullReplay(dir)).seconds * 1000);
        const t0 = performance.now();
        const d = await streamDiff(join(dir, 'journal'), 1, seq);
        ms = Math.min(ms, performance.now() - t0);
        if (d.scan.last !== seq) throw new Error(`the diff read ${d.scan.last} records of ${seq}`);
        changes = d.changes.length;
      }
      return { name: 'replay.diff.1m', value: Math.round(ms), unit: 'ms', baseline: Math.round(fullMs), events: seq, changes, target: 'ratio <= 1.2' };
    },
  },
  {
    name: 'startup.checkpoint.1m',
    async run(): Promise<Figure[]> {
      const { dir, seq } = sharedHistory();
      const stateDir = fs.mkdtempSync(join(process.env.ATELIER_BENCH_DIR ?? tmpdir(), 'atelier-bench-startup-'));
      try {
        fs.cpSync(join(dir, 'journal'), join(stateDir, 'journal'), { recursive: true });
        const open = async () => {
          const t0 = performance.now();
          const e = await openEngine({ stateDir, runDir: join(stateDir, 'run'), backend: createFakeBackend(), owner: 'bench', reconcile: false, checkpointEvery: Number.MAX_SAFE_INTEGER });
          const seconds = (performance.now() - t0) / 1000;
          await e.crash();
          return seconds;
        };
        const full = await open();
        // A checkpoint 10k records before the end: the fold at seq - TAIL.
        const opened = await openJournal<never>({ dir: join(stateDir, 'journal'), durable: true });
        const head = opened.tail.filter((r) => r.seq <= seq - TAIL);
        await opened.journal.writeCheckpoint(seq - TAIL, replay(null, head));
        await opened.journal.close();
        const withCheckpoint = await open();
        return [
          { name: 'startup.checkpoint.1m', value: Number((withCheckpoint * 1000).toFixed(1)), unit: 'ms', baseline: Number((full * 1000).toFixed(1)), tail: TAIL, events: seq, target: 'ratio <= 0.05' },
        ];
      } finally {
        fs.rmSync(stateDir, { recursive: true, force: true });
      }
    },
  },
];
