/**
 * Journal figures (see bench/README.md, "Journal").
 *
 * - `journal.append.durable.cN`: appends/s with N concurrent appenders, each awaiting its append
 *   (one ~130-byte record) before the next. Baseline: a raw Node loop writing the same encoded
 *   records in batches of N with one write and one fdatasync per batch (sync calls, no promises):
 *   the ceiling group commit can reach. Target for c256: ratio >= 0.5.
 * - `journal.append.volatile`: appends/s of the volatile journal (no fsync), 16 appenders; baseline:
 *   the raw loop writing batches of 16 without fsync.
 * - `snapshot.rewrite.baseline`: what persisting state costs the snapd way, rewriting the whole
 *   state of 1,000 workshops as one JSON file (temp file, fsync, rename, fsync dir) per event.
 *
 * Each round of the journal warms up untimed first (the JIT, and the journal's first segment: a
 * durable journal writes later segments into preallocated files, see events/preallocation.ts), so
 * the figure is a running journal's rate. The baseline appends to a file that grows, as the issue
 * defines it; a raw loop into a preallocated file is faster (see bench/README.md).
 *
 * Files go to `$ATELIER_BENCH_DIR` or the system temp directory: put it on the disk you care about
 * (a tmpfs makes fdatasync free).
 *
 * @example
 * ```sh
 * npm run bench -- journal.append.durable
 * ```
 */
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EventInput } from '../events/catalogue.ts';
import { DEFAULT_SEGMENT_BYTES, openJournal } from '../events/journal.ts';
import { encodeRecord } from '../events/record.ts';
import type { BenchEntry, Figure } from './run.ts';

const SECONDS = Number(process.env.ATELIER_BENCH_SECONDS ?? 1.5);

async function scratch(label: string): Promise<string> {
  return fs.promises.mkdtemp(join(process.env.ATELIER_BENCH_DIR ?? tmpdir(), `atelier-bench-${label}-`));
}

function now(): number {
  return performance.now();
}

/** A typical hot-path record: an effect requested during a refresh. */
function event(i: number): EventInput {
  return {
    type: 'effect.requested',
    key: `ws-${i % 1000}`,
    data: { op: `op-${(i >>> 4).toString(36).padStart(8, '0')}`, phase: 'do', step: i % 12, attempt: 1, at: '2026-11-23T10:00:00.000Z' },
  };
}

/** Distinct events the appenders cycle through (more than 256 a batch, so batches differ). */
const EVENT_POOL = 4096;

/** Enough records to fill a journal's first segment (with a few of the 256 appenders' records to spare). */
const WARMUP_RECORDS = Math.ceil(DEFAULT_SEGMENT_BYTES / encodeRecord({ seq: 1, v: 1, ...event(0) }).length) + 512;
const WARMUP_MS = 400;

/** Closed loop: `concurrency` appenders, each appending one record at a time, for SECONDS. */
async function journalRate(durable: boolean, concurrency: number, seconds: number): Promise<{ count: number; elapsed: number; flushes: number }> {
  const root = await scratch(durable ? 'durable' : 'volatile');
  try {
    const { journal } = await openJournal({ dir: join(root, 'journal'), durable });
    let count = 0;
    let stop = false;
    // Events are built before the clock starts, as the baseline's records are: the figure is
    // the journal's cost, not the caller's cost of making objects.
    const events = Array.from({ length: EVENT_POOL }, (_, i) => [event(i)]);
    const appenders = (more: () => boolean, appended: () => void) =>
      Promise.all(
        Array.from({ length: concurrency }, async (_, w) => {
          for (let i = w; more(); i += concurrency) {
            await journal.append(events[i % EVENT_POOL]);
            appended();
          }
        }),
      );
    // Warm up before timing: the JIT, and the journal's first segment, which is created before a
    // preallocated one can be ready (a journal that has run a while is in preallocated segments:
    // see events/preallocation.ts). At most WARMUP_MS, so the slow figures (c1) do not wait for a
    // whole segment: they are measured in the first one.
    const warmUntil = now() + WARMUP_MS;
    let warmed = 0;
    await appenders(() => warmed < WARMUP_RECORDS && now() < warmUntil, () => warmed++);
    const flushesBefore = (journal as unknown as { flushes: number }).flushes;
    const start = now();
    const timer = setTimeout(() => (stop = true), seconds * 1000);
    await appenders(() => !stop, () => count++);
    const elapsed = (now() - start) / 1000;
    clearTimeout(timer);
    const flushes = (journal as unknown as { flushes: number }).flushes - flushesBefore;
    await journal.close();
    return { count, elapsed, flushes };
  } finally {
    await fs.promises.rm(root, { recursive: true, force: true });
  }
}

/** The raw ceiling: the same encoded records, `batch` per write, one fdatasync per batch when durable. */
async function rawRate(durable: boolean, batch: number, seconds: number): Promise<{ count: number; elapsed: number }> {
  const root = await scratch('raw');
  try {
    const path = join(root, '000000000001.jsonl');
    const fd = fs.openSync(path, 'a');
    let seq = 1;
    const nextBatch = () => {
      let text = '';
      for (let i = 0; i < batch; i++, seq++) text += encodeRecord({ seq, v: 1, ...event(seq) });
      return Buffer.from(text);
    };
    // Encoding is not part of the baseline: batches are prepared before the clock starts.
    const pool = Array.from({ length: 64 }, nextBatch);
    let count = 0;
    const start = now();
    const end = start + seconds * 1000;
    for (let b = 0; now() < end; b++) {
      fs.writeSync(fd, pool[b % pool.length]);
      if (durable) fs.fdatasyncSync(fd);
      count += batch;
    }
    const elapsed = (now() - start) / 1000;
    fs.closeSync(fd);
    return { count, elapsed };
  } finally {
    await fs.promises.rm(root, { recursive: true, force: true });
  }
}

const ROUNDS = 3;

/**
 * Journal and baseline in alternating rounds, so a drift in the (shared, virtual) disk's speed
 * hits both alike; each rate is total appends over total time.
 */
async function compare(durable: boolean, concurrency: number) {
  const j = { count: 0, elapsed: 0, flushes: 0 };
  const raw = { count: 0, elapsed: 0 };
  for (let r = 0; r < ROUNDS; r++) {
    const a = await journalRate(durable, concurrency, SECONDS / ROUNDS);
    j.count += a.count;
    j.elapsed += a.elapsed;
    j.flushes += a.flushes;
    const b = await rawRate(durable, concurrency, SECONDS / ROUNDS);
    raw.count += b.count;
    raw.elapsed += b.elapsed;
  }
  return { value: j.count / j.elapsed, baseline: raw.count / raw.elapsed, appendsPerFlush: Number((j.count / Math.max(1, j.flushes)).toFixed(1)) };
}

function durableFigure(concurrency: number): BenchEntry {
  const name = `journal.append.durable.c${concurrency}`;
  return {
    name,
    async run(): Promise<Figure> {
      const c = await compare(true, concurrency);
      return {
        name,
        value: c.value,
        unit: 'appends/s',
        baseline: c.baseline,
        appendsPerFsync: c.appendsPerFlush,
        ...(concurrency === 256 ? { target: 'ratio >= 0.5' } : {}),
      };
    },
  };
}

/** A plausible state of 1,000 workshops, each with 3 SDK layers, a tenth of them mid-refresh. */
function workshopsState(n: number): unknown {
  const hex = (i: number, len: number) => ((i * 2654435761) >>> 0).toString(16).padStart(8, '0').repeat(2).slice(0, len);
  const workshops: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) {
    const name = `ws-${i}`;
    const sdks = ['ros2', 'nav2', 'gazebo'].map((sdk, k) => ({ sdk, hash: hex(i * 31 + k, 16).repeat(4), layer: `${sdk}-${hex(i * 7 + k, 16)}` }));
    workshops[name] = {
      instance: `${name}-${hex(i, 8)}`,
      projectId: hex(i, 8),
      base: 'ubuntu@24.04',
      defaultBase: false,
      sdks,
      stash: i % 10 === 0 ? { layer: `stash-${name}-${hex(i, 8)}`, sdkLayers: sdks.map((s) => ({ layer: s.layer, copy: `stash-${s.layer}` })), op: `op-${hex(i, 8)}` } : null,
      status: 'running',
      op: i % 10 === 0 ? { id: `op-${hex(i, 8)}`, kind: 'refresh', phase: 'do', step: 4, startedAt: '2026-11-23T10:00:00.000Z' } : null,
      identity: { mac: `00:16:3e:${hex(i, 6).match(/../g)!.join(':')}`, uuid: `${hex(i, 8)}-${hex(i + 1, 4)}-${hex(i + 2, 4)}-${hex(i + 3, 4)}-${hex(i + 4, 12)}` },
    };
  }
  return { version: 1, owner: 'me', lastSeq: 123456, workshops };
}

async function snapshotRewrite(): Promise<Figure> {
  const root = await scratch('snapshot');
  try {
    const state = workshopsState(1000) as { lastSeq: number };
    const path = join(root, 'state.json');
    let events = 0;
    let bytes = 0;
    const start = now();
    const end = start + SECONDS * 1000;
    while (now() < end) {
      state.lastSeq++;
      const text = JSON.stringify(state);
      bytes = Buffer.byteLength(text);
      const fd = fs.openSync(`${path}.tmp`, 'w');
      fs.writeSync(fd, text);
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      fs.renameSync(`${path}.tmp`, path);
      const dfd = fs.openSync(root, 'r');
      fs.fsyncSync(dfd);
      fs.closeSync(dfd);
      events++;
    }
    const msPerEvent = (now() - start) / events;
    return { name: 'snapshot.rewrite.baseline', value: msPerEvent, unit: 'ms/event', workshops: 1000, stateBytes: bytes };
  } finally {
    await fs.promises.rm(root, { recursive: true, force: true });
  }
}

export const figures: BenchEntry[] = [
  durableFigure(1),
  durableFigure(16),
  durableFigure(256),
  {
    name: 'journal.append.volatile',
    async run(): Promise<Figure> {
      const c = await compare(false, 16);
      return { name: 'journal.append.volatile', value: c.value, unit: 'appends/s', baseline: c.baseline, concurrency: 16, appendsPerWrite: c.appendsPerFlush };
    },
  },
  { name: 'snapshot.rewrite.baseline', run: snapshotRewrite },
];
