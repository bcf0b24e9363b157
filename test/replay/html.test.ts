/**
 * `atelier replay html`: the journal as one self-contained HTML timeline. The journal
 * (`html-journal.ts`) holds a failed refresh (undone), a refresh cut by a crash (reconciled at the
 * next start), a transient container, a gc and a torn last record. The file is checked in Node (the
 * command, determinism, what the model makes of the journal), then the page in a real headless
 * Chromium: lanes, spans, a click showing a record's diff, the failures filter, jumping, the next
 * failure, no console error and no request leaving file://. Screenshots go to
 * `test-output/screenshots/` (look at them).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readJournalImage } from '../../replay/image.ts';
import { buildTimeline, type TimelineModel } from '../../replay/timeline/model.ts';
import { writeTimeline } from '../../replay/timeline/index.ts';
import { ATELIER_VERSION } from '../../engine/version.ts';
import { runCli } from '../support/cli.ts';
import { chromiumBlocker, chromiumUnavailable, launchChromium, openPage, screenshot, type OpenPage } from './html-browser.ts';
import { timelineJournal, type TimelineJournal } from './html-journal.ts';

/** The page's `document`, in functions these tests run in the browser (the project has no DOM types). */
declare const document: { querySelector(sel: string): { textContent: string | null; classList: { contains(c: string): boolean } } | null; querySelectorAll(sel: string): { length: number } };

const cli = runCli;

let j: TimelineJournal;
let scratch: string;
let file: string;
let model: TimelineModel;

test.before(async () => {
  j = await timelineJournal();
  scratch = mkdtempSync(join(tmpdir(), 'atelier-html-'));
  file = join(scratch, 'timeline.html');
  model = buildTimeline(await readJournalImage(j.dir), { version: ATELIER_VERSION, journal: j.dir });
});

test.after(() => {
  j.cleanup();
  rmSync(scratch, { recursive: true, force: true });
});

test('replay html writes one self-contained file, atomically, and says where', async () => {
  const r = await cli(['--json', 'replay', 'html', '-o', file, '--journal', j.dir]);
  assert.is(r.code, 0, r.out + r.err);
  const out = JSON.parse(r.out);
  assert.equal([out.ok, out.file, out.records, out.first, out.last], [true, file, j.last, 1, j.last]);
  assert.is(out.damage.kind, 'torn');
  assert.is(out.damage.seq, j.last + 1);
  assert.equal(readdirSync(scratch), ['timeline.html'], 'nothing else is left beside it');
  const html = readFileSync(file, 'utf8');
  assert.ok(html.startsWith('<!DOCTYPE html>'));
  assert.not.match(html, /<(link|img|iframe|object|embed)\b/i, 'no external resource');
  assert.not.match(html, /\b(src|href)\s*=\s*["']?(https?:|\/\/)/i, 'no URL to fetch');
  assert.not.match(html, /@import|url\(\s*["']?(https?:|\/\/)/i, 'no stylesheet import');
  const text = await cli(['replay', '--journal', j.dir, 'html', '-o', file]);
  assert.is(text.code, 0);
  assert.match(text.out, new RegExp(`^wrote ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ${j.last} records, 1 to ${j.last}; the journal is torn at record ${j.last + 1}\\n$`));
});

test('the same journal gives the same bytes', async () => {
  const a = join(scratch, 'a.html');
  const b = join(scratch, 'b.html');
  await writeTimeline(a, await readJournalImage(j.dir));
  await writeTimeline(b, await readJournalImage(j.dir));
  assert.ok(readFileSync(a).equals(readFileSync(b)));
  rmSync(a);
  rmSync(b);
});

test('a directory that does not exist, a directory for a file, and a journal that is not one, are errors with their codes', async () => {
  const missing = await cli(['--json', 'replay', 'html', '-o', join(scratch, 'nope', 't.html'), '--journal', j.dir]);
  assert.is(missing.code, 2);
  assert.is(JSON.parse(missing.out).error.code, 'NOT_FOUND');
  const dir = await cli(['--json', 'replay', 'html', '-o', scratch, '--journal', j.dir]);
  assert.is(dir.code, 2);
  assert.is(JSON.parse(dir.out).error.code, 'INVALID_ARGUMENT');
  const empty = mkdtempSync(join(tmpdir(), 'atelier-html-empty-'));
  try {
    const none = await cli(['--json', 'replay', 'html', '-o', join(scratch, 'x.html'), '--journal', empty]);
    assert.is(none.code, 2);
    assert.is(JSON.parse(none.out).error.code, 'NOT_FOUND');
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});

test('the model: a lane per workshop, object and container; ops by outcome; undo linked; marks', () => {
  const ids = model.lanes.map((l) => l.id);
  for (const id of ['engine', 'workshop:nav2', 'workshop:ros', 'instance:nav2-1a2b3c4d', 'stash:stash-nav2-1a2b3c4d']) assert.ok(ids.includes(id), `lane ${id} in ${ids.join(' ')}`);
  for (const kind of ['layer', 'stash-copy', 'container']) assert.ok(model.lanes.some((l) => l.kind === kind), `a ${kind} lane`);
  const op = (id: string) => model.spans.find((s) => s.kind === 'op' && s.label.includes(` ${id}:`))!;
  assert.is(op(j.ops.launch).cls, 'done');
  assert.is(op(j.ops.failed).cls, 'undone');
  assert.is(op(j.ops.crashed).cls, 'reconciled');
  assert.is(model.lanes[op(j.ops.failed).lane]!.id, 'workshop:nav2');
  // Each undo step links to the do step it undoes, of the same op.
  const undo = model.spans.filter((s) => s.kind === 'step' && s.phase === 'undo' && s.link >= 0);
  assert.ok(undo.length >= 6, 'undo steps are linked');
  for (const u of undo) assert.is(model.spans[u.link]!.phase, 'do');
  const failedStep = model.spans.find((s) => s.kind === 'step' && s.cls === 'failed')!;
  assert.match(failedStep.note, /EXEC_FAILED/);
  assert.ok(model.spans.some((s) => s.kind === 'step' && s.cls === 'probed'), 'the step reconciliation probed');
  assert.equal(
    model.marks.map((m) => m.kind),
    ['reconcile', 'reconcile', 'gc', 'damage'],
  );
  assert.ok(model.marks[1]!.fail, 'the reconciliation after the crash had work');
  assert.is(model.header.first, 1);
  assert.is(model.header.last, j.last);
  assert.is(model.header.damage?.kind, 'torn');
});

test('every golden journal (both generations, crash images too) makes a timeline, each op and step record on a bar', async () => {
  const root = join(import.meta.dirname, '../../fixtures/journals');
  const dirs = readdirSync(root).flatMap((c) => [join(root, c), ...(existsSync(join(root, c, 'image')) ? [join(root, c, 'image')] : [])]).filter((d) => existsSync(join(d, 'state')));
  assert.ok(dirs.length > 80, `${dirs.length} golden journals`);
  for (const dir of dirs) {
    const image = await readJournalImage(dir);
    const m = buildTimeline(image, { version: ATELIER_VERSION, journal: dir });
    assert.is(m.header.records, image.records.length);
    const loose = m.records.filter((r) => !r.volatile && /^(op|effect)\./.test(r.type) && r.span < 0);
    assert.equal(loose.map((r) => `${r.seq} ${r.type}`), [], dir);
    assert.is(m.spans.filter((s) => s.kind === 'op').length, new Set(image.records.flatMap((r) => (r.type === 'op.started' ? [r.data.op] : []))).size, dir);
    // Records of an older version are shown as stored and as this atelier reads them.
    const old = m.records.find((r) => r.line.includes('"u":'));
    if (image.records.some((r) => r.v < 2 && (r.type === 'op.finished' || r.type === 'op.phase'))) assert.ok(old, `${dir}: its upcast records`);
  }
});

const blocker = chromiumBlocker();
if (blocker) chromiumUnavailable(test, 'the timeline in Chromium', blocker);
else browserTests();

function browserTests(): void {
  let browser: Browser;
  let page: Page;
  const pages: OpenPage[] = [];

  test.before(async () => {
    browser = await launchChromium();
  });
  test.after(async () => {
    await browser?.close();
  });

  const open = async () => {
    await pages.at(-1)?.page.close();
    pages.push(await openPage(browser, file));
    page = pages.at(-1)!.page;
  };
  /** The sequence number of the record the detail panel shows. */
  const shown = async () => Number(/^record (\d+)/.exec((await page.getByTestId('detail-record-title').textContent())!)![1]);
  /** Wait until the panel shows record `seq` (with `after`: any record after it). */
  const showing = (seq: number, after = false) =>
    page.waitForFunction(([s, a]) => {
      const m = /^record (\d+)/.exec(document.querySelector('[data-testid=detail-record-title]')?.textContent ?? '');
      return m !== null && (a ? Number(m[1]) > s : Number(m[1]) === s);
    }, [seq, after] as const);
  const ids = (sel: string, attr: string) => page.locator(sel).evaluateAll((els, a) => els.map((e) => e.getAttribute(a as string)), attr);

  test('Chromium: the header, a lane per workshop, object and container, and a span per op coloured by outcome', async () => {
    await writeTimeline(file, await readJournalImage(j.dir));
    await open();
    assert.is(await page.getByTestId('header-first').textContent(), '1');
    assert.is(await page.getByTestId('header-last').textContent(), String(j.last));
    assert.is(await page.getByTestId('header-torn').getAttribute('data-kind'), 'torn');
    assert.is(await page.getByTestId('header-version').textContent(), ATELIER_VERSION);
    const lanes = await ids('[data-testid=lane]', 'data-lane');
    assert.equal(lanes, model.lanes.map((l) => l.id), 'every lane is drawn, in order');
    const kinds = await ids('[data-testid=lane]', 'data-kind');
    for (const k of ['engine', 'workshop', 'instance', 'layer', 'stash', 'stash-copy', 'container']) assert.ok(kinds.includes(k), `a ${k} lane`);
    const ops = page.locator('[data-testid=lane][data-lane="workshop:nav2"] [data-testid=span][data-kind=op]');
    assert.equal(await ops.evaluateAll((els) => els.map((e) => e.getAttribute('data-cls'))), ['done', 'undone', 'reconciled']);
    assert.ok((await page.locator('[data-testid=span][data-kind=step][data-cls=failed]').count()) >= 1, 'the failed step');
    assert.ok((await page.locator('[data-testid=link]').count()) >= 6, 'undo steps linked to what they undo');
    assert.equal(await ids('[data-testid=mark]', 'data-kind'), ['reconcile', 'reconcile', 'gc', 'damage']);
    assert.ok((await page.locator('[data-testid=lane][data-kind=container] [data-testid=span]').count()) === 1, 'the container run');
    await screenshot(page, 'timeline-overview');
  });

  test('Chromium: clicking the failed refresh shows its records, the JSON of its outcome and the diff it made', async () => {
    await page.locator(`[data-testid=span][data-kind=op][data-label^="refresh ${j.ops.failed}:"]`).click();
    const detail = page.getByTestId('detail');
    await detail.getByTestId('record-diff').waitFor();
    assert.match((await detail.getByTestId('detail-title').textContent())!, new RegExp(`refresh ${j.ops.failed}`));
    const diff = (await detail.getByTestId('record-diff').textContent())!;
    assert.match(diff, /workshops\.nav2\.status: "busy" -> "ready"/);
    assert.match(diff, /workshops\.nav2\.lastError: null -> .*EXEC_FAILED/);
    assert.match(diff, new RegExp(`- ops\\.${j.ops.failed}:`));
    const json = JSON.parse((await detail.getByTestId('record-json').textContent())!);
    assert.equal([json.type, json.data.op, json.data.outcome, json.data.code], ['op.finished', j.ops.failed, 'undone', 'EXEC_FAILED']);
    assert.ok((await detail.getByTestId('detail-record').count()) > 20, 'all its records are listed');
    // Another record of the op: its own diff.
    await detail.locator('[data-testid=detail-record]').first().click();
    await page.waitForFunction(() => document.querySelector('[data-testid=record-json]')?.textContent?.includes('"op.started"'));
    assert.match((await detail.getByTestId('record-diff').textContent())!, new RegExp(`\\+ ops\\.${j.ops.failed}:`));
    await screenshot(page, 'timeline-detail');
  });

  test('Chromium: an undo step links to the step it undoes', async () => {
    const link = page.locator('[data-testid=link]').first();
    const from = Number(await link.getAttribute('data-from'));
    const to = Number(await link.getAttribute('data-to'));
    await page.locator(`[data-testid=span][data-span="${from}"]`).click();
    await page.getByTestId('detail-undoes').waitFor();
    await page.getByTestId('detail-undoes').locator('a').click();
    await page.waitForFunction((s) => document.querySelector(`[data-testid=span][data-span="${s}"]`)?.classList.contains('sel'), to);
    assert.match((await page.getByTestId('detail-undone-by').textContent())!, /undone by/);
  });

  test('Chromium: failures only hides everything that went well', async () => {
    await page.getByTestId('filter-failures').check();
    await page.waitForFunction(() => !document.querySelector('[data-testid=span][data-fail="0"]'));
    const lanes = await ids('[data-testid=lane]', 'data-lane');
    assert.ok(lanes.includes('workshop:nav2') && lanes.includes('instance:nav2-1a2b3c4d'), lanes.join(' '));
    assert.not.ok(lanes.includes('workshop:ros'), 'a workshop with no failure is hidden');
    assert.not.ok(lanes.some((l) => l!.startsWith('container:')), 'the container run is hidden');
    const cls = await ids('[data-testid=span][data-kind=op]', 'data-cls');
    assert.equal(cls, ['undone', 'reconciled']);
    assert.is(await page.locator('[data-testid=mark][data-kind=gc]').count(), 0, 'the gc mark is hidden');
    await screenshot(page, 'timeline-failures');
    await page.getByTestId('filter-failures').uncheck();
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid=lane]').length === n, model.lanes.length);
  });

  test('Chromium: jump to a sequence number, then the next and previous failures', async () => {
    await open();
    await page.getByTestId('jump-input').fill('2');
    await page.getByTestId('jump-input').press('Enter');
    await showing(2);
    assert.match((await page.getByTestId('detail-record-title').textContent())!, /: op\.started/);
    assert.is(await page.getByTestId('cursor').count(), 1);
    await page.getByTestId('jump-input').fill(String(j.last + 5));
    await page.getByTestId('jump-go').click();
    assert.match((await page.getByTestId('jump-error').textContent())!, new RegExp(`1 to ${j.last}`));
    const seqs: number[] = [];
    for (let i = 0; i < 3; i++) {
      await page.getByTestId('next-failure').click();
      await showing(seqs.at(-1) ?? 2, true);
      seqs.push(await shown());
    }
    const failures = model.records.filter((r) => r.failure).map((r) => r.seq);
    assert.equal(seqs, failures.slice(0, 3), 'the first three failures, in order');
    await page.getByTestId('prev-failure').click();
    await showing(failures[1]!);
    await page.getByTestId('prev-failure').click();
    await showing(failures[0]!);
    await screenshot(page, 'timeline-next-failure');
  });

  test('Chromium: no console error and no request leaving file://', () => {
    assert.equal(pages.flatMap((p) => p.errors), []);
    assert.equal(pages.flatMap((p) => p.requests), []);
  });
}

test.run();
