/**
 * Helpers every conformance case uses: unique names valid on every backend (LXD instance names),
 * tags, error-code assertions, and a per-test context that removes what the test made.
 *
 * @example
 * ```ts
 * test('copy makes a layer', withCtx(make, async (c) => {
 *   const ws = await c.workshop('cp');
 *   const layer = c.layer('cp');
 *   await c.b.copy({ source: ws, target: layer, tags: c.tags('sdk') });
 * }));
 * ```
 */
import { randomBytes } from 'node:crypto';
import * as assert from 'uvu/assert';
import type { Backend, BackendError, BackendErrorCode, ObjectKind, ObjectRef, Tags } from '../../../backends/types.ts';
import { isBackendError } from '../../../backends/types.ts';
import type { Fixture, Make } from './types.ts';

/** Distinguishes this process's objects from leftovers of earlier runs on a shared real backend. */
const RUN = randomBytes(3).toString('hex');
let counter = 0;

/** `label-<run>-<n>`: starts with a letter, lowercase, well under 63 characters. */
export function uniqueName(label: string): string {
  return `${label}-${RUN}-${(counter++).toString(36)}`;
}

/** Await `p`, assert it rejected with a `BackendError` of `code`, and return the error. */
export async function rejects(p: Promise<unknown>, code: BackendErrorCode, what = ''): Promise<BackendError> {
  try {
    await p;
  } catch (e) {
    if (isBackendError(e, code)) return e;
    const got = isBackendError(e) ? `BackendError ${e.code}: ${e.message}` : String(e);
    assert.unreachable(`${what ? `${what}: ` : ''}expected ${code}, got ${got}`);
  }
  assert.unreachable(`${what ? `${what}: ` : ''}expected ${code}, but the call succeeded`);
  throw new Error('unreachable');
}

/** One test's view of a fresh backend. */
export class Ctx {
  readonly b: Backend;
  readonly owner: string;
  private readonly made: ObjectRef[] = [];
  private ops = 0;

  constructor(readonly fixture: Fixture) {
    this.b = fixture.backend;
    this.owner = fixture.owner;
  }

  /** Tags with this owner, a fresh op id and `kind`, plus `extra`. */
  tags(kind: ObjectKind, extra: Partial<Tags> = {}): Tags {
    return { owner: this.owner, op: `op-${RUN}-${++this.ops}`, kind, ...extra };
  }

  /** A unique ref in the `workshops` space, removed at the end of the test. */
  ws(label = 'ws'): ObjectRef {
    return this.track({ space: 'workshops', name: uniqueName(label) });
  }

  /** A unique ref in the `layers` space, removed at the end of the test. */
  layer(label = 'ly'): ObjectRef {
    return this.track({ space: 'layers', name: uniqueName(label) });
  }

  /** Track a ref made some other way, so it is removed at the end. */
  track(ref: ObjectRef): ObjectRef {
    this.made.push(ref);
    return ref;
  }

  /** A new workshop from the default base, optionally started and given a hook. */
  async workshop(label = 'ws', opts: { start?: boolean; script?: string; tags?: Partial<Tags> } = {}): Promise<ObjectRef> {
    const ref = this.ws(label);
    await this.b.create({ target: ref, source: { base: this.b.defaultBase }, tags: this.tags('workshop', opts.tags) });
    if (opts.start || opts.script) await this.b.start(ref);
    if (opts.script) await this.b.exec(ref, { script: opts.script });
    if (opts.script && !opts.start) await this.b.stop(ref);
    return ref;
  }

  /** Run a hook (starting the instance if needed, leaving it as it was). */
  async hook(ref: ObjectRef, script: string): Promise<void> {
    const wasRunning = (await this.b.inspect(ref))?.status === 'running';
    if (!wasRunning) await this.b.start(ref);
    await this.b.exec(ref, { script });
    if (!wasRunning) await this.b.stop(ref);
  }

  /** The content of a file, or undefined when absent. */
  async content(ref: ObjectRef, path: string): Promise<string | undefined> {
    return (await this.b.readFile(ref, path))?.content;
  }

  /** Remove what the test made (newest first: containers before their sources), then clean up. */
  async dispose(): Promise<void> {
    for (let pass = 0; pass < 2; pass++) {
      for (const ref of [...this.made].reverse()) await this.b.remove(ref).catch(() => undefined);
    }
    await this.fixture.cleanup();
  }
}

/** Wrap a test body: a fresh fixture before, disposal after (even when the test fails). */
export function withCtx(make: Make, body: (c: Ctx) => Promise<void>): () => Promise<void> {
  return async () => {
    const fixture = await make();
    await fixture.backend.ensureProjects(fixture.owner);
    const c = new Ctx(fixture);
    try {
      await body(c);
    } finally {
      await c.dispose();
    }
  };
}

/** Quote `path` under the root, so hooks work inside an instance and on the host alike. */
export function rootPath(path: string): string {
  return `"\${ATELIER_ROOTFS%/}${path}"`;
}
