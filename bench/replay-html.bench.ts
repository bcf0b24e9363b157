/**
 * `replay.html.100k`: `atelier replay html` on a 100,000-record journal (see bench/README.md,
 * "Replay timeline").
 *
 * - `replay.html.100k.write`: ms to read the journal and write the timeline's HTML file
 *   (`writeTimeline`: read, walk with each record's state diff, lanes and spans, page). Baseline:
 *   ms to read the same journal and walk it with the diffs alone (`walkChanges` with an empty
 *   visitor), the part every replay command shares.
 * - `replay.html.100k.interactive`: ms from `page.goto(file://…)` until the page's script has drawn
 *   its first frame (`document.body.dataset.ready`) in headless Chromium. Baseline: the same for
 *   a trivial page of the same size (the same bytes as an inert JSON block, and a script that sets
 *   the flag): what loading that many bytes costs the browser. Target: value < 2,000 ms.
 *
 * The journal is the timeline tests' journal (`test/replay/html-journal.ts`: launches, a failed
 * refresh undone, a transient container, a refresh cut by a crash and reconciled, gc, stash,
 * removes), written once by the engine on the fake backend and repeated under fresh op ids, layer
 * names, container ids and times until it holds 100,000 records, so the history has what a real
 * one has (failures, reconciliations, containers, thousands of layers) in the engine's own shapes.
 *
 * Chromium: as the tests drive it (`test/replay/html-browser.ts`: `/usr/lib/chromium/chromium`,
 * Debian's `chromium`; `ATELIER_CHROMIUM` overrides); without it the browser figure is not measured.
 *
 * @example
 * ```sh
 * npm run bench -- replay.html
 * ```
 */
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser } from 'playwright-core';
import { EVENT_VERSIONS, type EventType } from '../events/catalogue.ts';
import { encodeRecord } from '../events/record.ts';
import { segmentName } from '../events/segments.ts';
import { readJournalImage } from '../replay/image.ts';
import { walkChanges } from '../replay/walk.ts';
import { writeTimeline } from '../replay/timeline/index.ts';
import { chromiumBlocker, launchChromium, openPage } from '../test/replay/html-browser.ts';
import { timelineJournal } from '../test/replay/html-journal.ts';
import type { BenchEntry, Figure } from './run.ts';

const TOTAL = Number(process.env.ATELIER_BENCH_TIMELINE_RECORDS ?? 100_000);
const RUNS = Number(process.env.ATELIER_BENCH_TIMELINE_RUNS ?? 5);

type Line = { seq: number; type: string; key: string; data: unknown };

const readLines = (dir: string): Line[] =>
  fs.existsSync(dir)
    ? fs.readdirSync(dir).filter((n) => n.endsWith('.jsonl')).sort().flatMap((n) => fs.readFileSync(join(dir, n), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line))
    : [];

/**
 * The template's records again under copy `k`'s names: op ids, 16-hex layer suffixes, container
 * ids, and times shifted by `k` template lengths.
 */
function renamed(text: string, k: number, shiftMs: number): string {
  const tag = k.toString(16).padStart(8, '0');
  return text
    .replace(/"op-(\d+)"/g, `"op-${k}-$1"`)
    .replace(/-([0-9a-f]{8})([0-9a-f]{8})"/g, (_m, _hi: string, lo: string) => `-${tag}${lo}"`)
    .replace(/"(run-)?c(\d+)"/g, (_m, run: string | undefined, n: string) => `"${run ?? ''}c${k}x${n}"`)
    .replace(/"at":"([^"]+)"/g, (_m, at: string) => `"at":"${new Date(Date.parse(at) + k * shiftMs).toISOString()}"`);
}

/** Write copies of the template's durable and volatile journals until `total` durable records. */
function writeCopies(template: { durable: Line[]; volatile: Line[] }, out: string, total: number): void {
  const times = template.durable.map((r) => Date.parse((r.data as { at: string }).at));
  const shiftMs = Math.max(...times) - Math.min(...times) + 1000;
  for (const [sub, lines] of [['state/journal', template.durable], ['run/volatile', template.volatile]] as const) {
    fs.mkdirSync(join(out, sub), { recursive: true });
    const chunks: string[] = [];
    let seq = 0;
    const first = sub === 'state/journal';
    for (let k = 0; first ? seq < total : seq < (total / template.durable.length) * lines.length; k++) {
      for (const l of lines) {
        if (first && seq >= total) break;
        if (k > 0 && l.type === 'engine.reconciled' && l.seq === 1) continue;
        const data = JSON.parse(renamed(JSON.stringify(l.data), k, shiftMs)) as never;
        const key = renamed(JSON.stringify(l.key), k, shiftMs).slice(1, -1);
        chunks.push(encodeRecord({ seq: ++seq, v: EVENT_VERSIONS[l.type as EventType], type: l.type, key, data }));
      }
      if (!lines.length) break;
    }
    fs.writeFileSync(join(out, sub, segmentName(1)), chunks.join(''));
  }
}

/** Write a journal of `total` records (and its volatile journal) under `out` (`state/`, `run/`). */
export async function writeTimelineHistory(out: string, total: number): Promise<void> {
  const j = await timelineJournal({ torn: false, removeAll: true });
  try {
    writeCopies({ durable: readLines(join(j.dir, 'state/journal')), volatile: readLines(join(j.dir, 'run/volatile')) }, out, total);
  } finally {
    j.cleanup();
  }
}

let history: string | null = null;
/** The 100k-record journal (written once per bench run). */
async function sharedHistory(): Promise<string> {
  if (history) return history;
  const out = fs.mkdtempSync(join(process.env.ATELIER_BENCH_DIR ?? tmpdir(), 'atelier-bench-timeline-'));
  process.once('exit', () => fs.rmSync(out, { recursive: true, force: true }));
  await writeTimelineHistory(out, TOTAL);
  history = out;
  return out;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** ms from navigation to the page's ready flag; throws when the page logged an error or fetched anything. */
async function timeToReady(browser: Browser, file: string): Promise<number> {
  const p = await openPage(browser, file);
  await p.page.close();
  if (p.errors.length || p.requests.length) throw new Error(`${file}: errors ${JSON.stringify(p.errors)}, requests ${JSON.stringify(p.requests)}`);
  return p.readyMs;
}

export const figures: BenchEntry[] = [
  {
    name: 'replay.html.100k',
    async run(): Promise<Figure[]> {
      const dir = await sharedHistory();
      const file = join(dir, 'timeline.html');
      const write: number[] = [];
      const walk: number[] = [];
      let facts = { records: 0, bytes: 0 };
      for (let i = 0; i < 3; i++) {
        let t = performance.now();
        const image = await readJournalImage(dir);
        walkChanges(image, () => undefined);
        walk.push(performance.now() - t);
        t = performance.now();
        facts = await writeTimeline(file, await readJournalImage(dir));
        write.push(performance.now() - t);
      }
      const out: Figure[] = [{ name: 'replay.html.100k.write', value: Number(median(write).toFixed(0)), unit: 'ms', baseline: Number(median(walk).toFixed(0)), records: facts.records, bytes: facts.bytes }];
      const blocker = chromiumBlocker();
      if (blocker) return [{ ...out[0]!, interactive: `not measured: ${blocker}` }];
      const trivial = join(dir, 'trivial.html');
      const filler = `{"x":"${'a'.repeat(Math.max(0, facts.bytes - 200))}"}`;
      fs.writeFileSync(trivial, `<!DOCTYPE html><html><head><meta charset="utf-8"></head><body><script type="application/json" id="d">${filler}</script><script>document.body.dataset.ready = '1';</script></body></html>`);
      const browser = await launchChromium();
      try {
        const page: number[] = [];
        const base: number[] = [];
        await timeToReady(browser, trivial);
        await timeToReady(browser, file);
        for (let i = 0; i < RUNS; i++) {
          base.push(await timeToReady(browser, trivial));
          page.push(await timeToReady(browser, file));
        }
        out.push({ name: 'replay.html.100k.interactive', value: Number(median(page).toFixed(0)), unit: 'ms', baseline: Number(median(base).toFixed(0)), runs: RUNS, target: 'value < 2000 ms', bytes: facts.bytes });
      } finally {
        await browser.close();
      }
      return out;
    },
  },
];
