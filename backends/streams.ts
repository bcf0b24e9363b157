/**
 * What every adapter's `spawn` does with the caller's streams: write and wait until the stream
 * has taken the text, so a process's `exit` settles only after its output was written (port,
 * `SpawnedProcess.exit`). Shared here because adapters do not import each other (lint rule
 * `adapters-apart`).
 *
 * @example
 * ```ts
 * await writeAll(req.stdout, 'hello\n');
 * await writeAll(req.stdout, ''); // once what came before is written
 * ```
 */

/** Resolves once `stream` has taken `text`; a stream that throws (destroyed) resolves at once. */
export function writeAll(stream: NodeJS.WritableStream, text: string): Promise<void> {
  return new Promise((resolve) => {
    try {
      stream.write(text, () => resolve());
    } catch {
      resolve();
    }
  });
}
