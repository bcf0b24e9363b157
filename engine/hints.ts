/**
 * "Did you mean ...?" for names a user typed: the closest known name, when it is a plausible typo.
 * Uses fastest-levenshtein for the edit distance.
 *
 * @example
 * ```ts
 * didYouMeanHint('ros3', ['ros2', 'nav2']); // ' (did you mean "ros2"?)'
 * ```
 */
import { distance } from 'fastest-levenshtein';

/**
 * The candidate closest to `word`, when it is close enough to be a plausible typo (edit distance at
 * most a third of the longer word, and at least 1), else `undefined`. Ties go to the first
 * candidate in order, so the suggestion is deterministic.
 *
 * @example
 * didYouMean('ros3', ['ros2', 'nav2']); // 'ros2'
 * didYouMean('xyz', ['ros2']);          // undefined
 */
export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    if (c === word) continue;
    const d = distance(word, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  if (best === undefined) return undefined;
  const limit = Math.max(1, Math.floor(Math.max(word.length, best.length) / 3));
  return bestDistance <= limit ? best : undefined;
}

/** ` (did you mean "x"?)` or the empty string: the tail of an error message. */
export function didYouMeanHint(word: string, candidates: Iterable<string>): string {
  const s = didYouMean(word, candidates);
  return s === undefined ? '' : ` (did you mean ${JSON.stringify(s)}?)`;
}
