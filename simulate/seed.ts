/**
 * A fresh seed for a run that was not given one, announced before anything runs so a failure
 * (or a hang) can always be replayed.
 *
 * @example
 * ```ts
 * const seed = announceSeed((s) => console.log(`seed ${s}`));
 * ```
 */
export function newSeed(): number {
  return (Date.now() ^ Math.floor(Math.random() * 0x7fffffff)) >>> 0;
}

/** Draw a new seed, hand it to `announce`, and return it. */
export function announceSeed(announce: (seed: number) => void): number {
  const seed = newSeed();
  announce(seed);
  return seed;
}
