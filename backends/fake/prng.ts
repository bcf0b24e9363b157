/**
 * The fake backend's only source of randomness: a tiny seeded PRNG (mulberry32) whose whole state is
 * one 32-bit integer, so a crash image can carry it and a reloaded fake hands out the same next
 * identities the original would have. Real entropy would make fake runs irreproducible, which is the
 * one thing the fake must never be.
 *
 * @example
 * ```ts
 * const rng = new Prng(1);
 * const id = newIdentity(rng); // { mac: '00:16:3e:..:..:..', uuid: '........-....-4...-....-............' }
 * const state = rng.state;     // store it; `new Prng(0, state)` continues the same sequence
 * ```
 */
import type { Identity } from '../types.ts';

export class Prng {
  /** The generator's whole state: save it to continue the sequence elsewhere. */
  state: number;

  constructor(seed: number, state?: number) {
    // Mix the seed once so seeds 0, 1, 2 do not start from near-identical states.
    this.state = state ?? (Math.imul(seed >>> 0 ^ 0x9e3779b9, 0x85ebca6b) >>> 0);
  }

  /** The next 32-bit unsigned integer (mulberry32). */
  nextU32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** An integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** `n` lowercase hex characters. */
  hex(n: number): string {
    let s = '';
    while (s.length < n) s += this.nextU32().toString(16).padStart(8, '0');
    return s.slice(0, n);
  }
}

/** A new identity: an LXD-style MAC (`00:16:3e` is the prefix LXD uses) and a version-4 uuid. */
export function newIdentity(rng: Prng): Identity {
  const m = rng.hex(6);
  const mac = `00:16:3e:${m.slice(0, 2)}:${m.slice(2, 4)}:${m.slice(4, 6)}`;
  const h = rng.hex(32);
  const variant = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
  const uuid = `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
  return { mac, uuid };
}
