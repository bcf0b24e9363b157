/**
 * Saving and loading the fake's image to a file, so separate processes (the CLI with
 * `--backend fake`) see one backend. Saves are atomic (temp file, fsync, rename): a process killed
 * mid-save leaves the previous image, never a torn one, the same promise a real backend's own
 * store makes.
 *
 * @example
 * ```ts
 * saveImage('/tmp/fake.json', backend.dump());
 * const image = loadImage('/tmp/fake.json'); // FakeImage | null when the file does not exist
 * ```
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { BackendError } from '../types.ts';
import type { FakeImage } from './store.ts';
import { IMAGE_FORMAT } from './store.ts';

/** The image in `file`, or null when the file does not exist. */
export function loadImage(file: string): FakeImage | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new BackendError('UNAVAILABLE', `cannot read the fake backend's file ${file}: ${(e as Error).message}`, { file });
  }
  let image: FakeImage;
  try {
    image = JSON.parse(text) as FakeImage;
  } catch (e) {
    throw new BackendError('INTERNAL', `the fake backend's file ${file} is not valid JSON (${(e as Error).message}); delete it to start empty`, { file });
  }
  if (image?.format !== IMAGE_FORMAT) {
    throw new BackendError('INTERNAL', `the fake backend's file ${file} has format ${JSON.stringify(image?.format)}, expected ${IMAGE_FORMAT}; delete it to start empty`, { file });
  }
  return image;
}

/** Write `image` to `file` atomically. */
export function saveImage(file: string, image: FakeImage): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify(image));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new BackendError('UNAVAILABLE', `cannot save the fake backend's file ${file}: ${(e as Error).message}; check the directory exists and is writable`, { file });
  }
}
