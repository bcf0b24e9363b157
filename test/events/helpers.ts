/**
 * Shared bits of the journal tests: temp directories and small event inputs.
 *
 * @example
 * ```ts
 * const dir = await tempDir('torn');
 * await journal.append([started('c1')]);
 * ```
 */
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EventInput, JournalRecord } from '../../events/catalogue.ts';

const made = new Set<string>();
// The tests leave their directories for inspection while they run; all go when the process exits
// (hundreds per run used to pile up in /tmp).
process.once('exit', () => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

/** A fresh directory under the system temp dir, removed when the test process exits. */
export async function tempDir(label: string): Promise<string> {
  const dir = await fs.promises.mkdtemp(join(tmpdir(), `atelier-${label}-`));
  made.add(dir);
  return dir;
}

/** A small, valid event input (a transient container started). */
export function started(id: string, at = '2026-11-23T00:00:00.000Z'): EventInput {
  return { type: 'container.started', key: id, data: { id, at } };
}

/** Copies a directory tree (to give each case its own pristine journal). */
export async function copyDir(from: string, to: string): Promise<void> {
  await fs.promises.cp(from, to, { recursive: true });
}

/** Byte offsets at which each line of a file starts. */
export function lineStarts(buf: Buffer): number[] {
  const starts: number[] = [];
  for (let at = 0; at < buf.length; ) {
    starts.push(at);
    const nl = buf.indexOf(0x0a, at);
    at = nl < 0 ? buf.length : nl + 1;
  }
  return starts;
}

/** Collects an async iterable. */
export async function collect(it: AsyncIterable<JournalRecord>): Promise<JournalRecord[]> {
  const out: JournalRecord[] = [];
  for await (const r of it) out.push(r);
  return out;
}

/** Awaits a promise that must reject, returning what it rejected with. */
export async function rejection(p: Promise<unknown>): Promise<any> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}
