/**
 * `atelier replay html`'s engine room: a journal image in, one self-contained HTML timeline out
 * (`model.ts` computes the lanes, spans and marks from the walk, `page.ts` draws them), and the
 * file written atomically (a temporary file beside it, then a rename: a reader never sees half a
 * page, and nothing else is left behind).
 *
 * @example
 * ```ts
 * const image = await readJournalImage('/tmp/atelier-sim-failure-42');
 * const facts = await writeTimeline('/tmp/atelier-sim-failure-42/timeline.html', image);
 * facts.records; // 412
 * ```
 */
import { randomBytes } from 'node:crypto';
import { rm, writeFile, rename } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ATELIER_VERSION } from '../../engine/version.ts';
import { AtelierError } from '../../machines/errors.ts';
import type { JournalImage } from '../image.ts';
import { buildTimeline, type TimelineModel } from './model.ts';
import { timelinePage } from './page.ts';

export type { TimelineModel } from './model.ts';

/** The page for a journal image. `journal` is what the header calls it (default: the image's directory). */
export function timelineHtml(image: JournalImage, opts: { journal?: string; version?: string } = {}): { html: string; model: TimelineModel } {
  const model = buildTimeline(image, { version: opts.version ?? ATELIER_VERSION, journal: opts.journal ?? image.dir });
  return { html: timelinePage(model), model };
}

/** What `writeTimeline` wrote. */
export interface TimelineFacts {
  readonly file: string;
  readonly records: number;
  readonly first: number | null;
  readonly last: number | null;
  readonly bytes: number;
}

/**
 * Write the timeline of `image` to `file`, atomically (temporary file in the same directory, then
 * rename).
 *
 * @throws AtelierError `NOT_FOUND` when `file`'s directory does not exist, `INVALID_ARGUMENT` when
 *   `file` is a directory.
 */
export async function writeTimeline(file: string, image: JournalImage, opts: { journal?: string } = {}): Promise<TimelineFacts> {
  const { html, model } = timelineHtml(image, opts);
  const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, html, { flag: 'wx' });
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new AtelierError('NOT_FOUND', `cannot write ${file}: the directory ${dirname(file)} does not exist (create it, or give -o a file in an existing directory)`, { file });
    if (code === 'EISDIR') throw new AtelierError('INVALID_ARGUMENT', `cannot write ${file}: it is a directory (give -o a file name, e.g. ${join(file, 'timeline.html')})`, { file });
    throw e;
  }
  return { file, records: model.header.records, first: model.header.first, last: model.header.last, bytes: Buffer.byteLength(html) };
}
