/**
 * Errors atelier raises at its edges. Every error has a stable `code`: test the code, not the text.
 * Messages say what failed and what to do about it.
 *
 * @example
 * ```ts
 * try { await engine.launch(spec); }
 * catch (e) { if (isAtelierError(e, 'BUSY')) console.error(e.message); }
 * ```
 */
export type AtelierErrorCode =
  | 'INVALID_NAME' // a workshop, SDK or user name breaks the naming rules
  | 'INVALID_SPEC' // a workshop file is missing, empty, malformed or names an unknown SDK
  | 'INVALID_ARGUMENT' // a bad CLI argument or option
  | 'NOT_FOUND' // the workshop (or SDK, or layer) does not exist
  | 'ALREADY_EXISTS' // a workshop of that name exists
  | 'BUSY' // the workshop is in the middle of another operation
  | 'FAILED_PRECONDITION' // the workshop's state does not allow the command (e.g. unstash without a stash)
  | 'LOCKED' // another engine holds the state directory
  | 'ALREADY_RUNNING' // an atelierd already answers on the socket
  | 'JOURNAL_CORRUPT' // a bad record followed by good ones
  | 'JOURNAL_VERSION' // a record written by a newer atelier
  | 'UNAVAILABLE' // the backend cannot be reached
  | 'OP_FAILED' // the operation failed and was undone
  | 'ABORTED' // the operation was aborted through its AbortSignal and undone
  | 'BROKEN' // the operation failed and could not be undone; reconciliation will retry
  | 'NO_SPACE' // a disk is full (the journal's, or the backend's): refused or undone; remove and gc still work
  | 'INTERNAL' // a bug: please report it
  | 'CLOSED'; // the engine was closed

export class AtelierError extends Error {
  readonly code: AtelierErrorCode;
  /** Machine-readable facts about the error (named `info`, not `details`: uvu prints an error's `details` as text). */
  readonly info: Readonly<Record<string, unknown>>;
  constructor(code: AtelierErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AtelierError';
    this.code = code;
    this.info = details;
  }
}

export function isAtelierError(e: unknown, code?: AtelierErrorCode): e is AtelierError {
  return e instanceof AtelierError && (code === undefined || e.code === code);
}

/** CLI exit status for an error code (see README "Exit codes"). */
export function exitCodeFor(code: string): number {
  switch (code) {
    case 'INVALID_NAME':
    case 'INVALID_SPEC':
    case 'INVALID_ARGUMENT':
    case 'NOT_FOUND':
    case 'ALREADY_EXISTS':
    case 'BUSY':
    case 'FAILED_PRECONDITION':
      return 2;
    case 'LOCKED':
    case 'ALREADY_RUNNING':
      return 3;
    case 'JOURNAL_CORRUPT':
    case 'JOURNAL_VERSION':
      return 4;
    case 'UNAVAILABLE':
      return 5;
    case 'NO_SPACE':
      return 6;
    default:
      // OP_FAILED, ABORTED, BROKEN, and anything unexpected: the operation did not happen.
      return 1;
  }
}
