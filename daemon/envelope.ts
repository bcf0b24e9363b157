/**
 * The response envelopes of atelierd's API, in snapd's and workshopd's shapes:
 *
 * ```json
 * {"type":"sync","status-code":200,"status":"OK","result":{...}}
 * {"type":"async","status-code":202,"status":"Accepted","change":"op-3vx8q2k1m0ab"}
 * {"type":"error","status-code":404,"status":"Not Found","result":{"message":"...","kind":"NOT_FOUND","value":{...}}}
 * ```
 *
 * An error's `kind` is the `AtelierError` code; its HTTP status follows from the code (`statusOf`).
 *
 * @example
 * ```ts
 * statusOf('BUSY'); // 409
 * errorBody(new AtelierError('NOT_FOUND', 'no workshop "x"')); // { type: 'error', 'status-code': 404, ... }
 * ```
 */
import { STATUS_CODES } from 'node:http';
import { isAtelierError } from '../machines/errors.ts';

export interface SyncBody {
  readonly type: 'sync';
  readonly 'status-code': number;
  readonly status: string;
  readonly result: unknown;
}
export interface AsyncBody {
  readonly type: 'async';
  readonly 'status-code': 202;
  readonly status: 'Accepted';
  readonly change: string;
}
export interface ErrorBody {
  readonly type: 'error';
  readonly 'status-code': number;
  readonly status: string;
  readonly result: { readonly message: string; readonly kind: string; readonly value?: unknown };
}

/** The HTTP status an error code answers with. */
export function statusOf(kind: string): number {
  switch (kind) {
    case 'INVALID_NAME':
    case 'INVALID_SPEC':
    case 'INVALID_ARGUMENT':
      return 400;
    case 'NOT_FOUND':
      return 404;
    case 'BUSY':
    case 'ALREADY_EXISTS':
    case 'FAILED_PRECONDITION':
    case 'LOCKED':
      return 409;
    case 'UNAVAILABLE':
      return 503;
    case 'TIMEOUT':
      return 504;
    case 'NO_SPACE':
      return 507;
    default:
      return 500;
  }
}

export const sync = (result: unknown, code = 200): SyncBody => ({ type: 'sync', 'status-code': code, status: STATUS_CODES[code] ?? 'OK', result });
export const accepted = (change: string): AsyncBody => ({ type: 'async', 'status-code': 202, status: 'Accepted', change });

/** An error's envelope: an `AtelierError`'s code and facts, or `INTERNAL` for anything else. */
export function errorBody(e: unknown): ErrorBody {
  const kind = isAtelierError(e) ? e.code : typeof (e as { kind?: unknown })?.kind === 'string' ? (e as { kind: string }).kind : 'INTERNAL';
  const code = statusOf(kind);
  const message = e instanceof Error ? e.message : String(e);
  const value = isAtelierError(e) && Object.keys(e.info).length > 0 ? e.info : undefined;
  return { type: 'error', 'status-code': code, status: STATUS_CODES[code] ?? 'Error', result: { message, kind, ...(value !== undefined ? { value } : {}) } };
}

/** An error the API raises itself (a bad request, a timeout), with the code its envelope carries. */
export class ApiError extends Error {
  constructor(
    readonly kind: string,
    message: string,
    readonly value?: Record<string, unknown>,
  ) {
    super(message);
  }
}

/** `ApiError`s' envelopes carry their own kind and value. */
export function envelopeOf(e: unknown): ErrorBody {
  if (e instanceof ApiError) {
    const code = statusOf(e.kind);
    return { type: 'error', 'status-code': code, status: STATUS_CODES[code] ?? 'Error', result: { message: e.message, kind: e.kind, ...(e.value ? { value: e.value } : {}) } };
  }
  return errorBody(e);
}
