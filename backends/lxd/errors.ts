/**
 * LXD's errors, mapped to the port's codes.
 *
 * LXD reports an HTTP-like code and a message. Operation failures carry status code 400 whatever
 * went wrong, so the message decides: "not found" is `NOT_FOUND`, "already exists" is
 * `ALREADY_EXISTS`, "Instance is running" (and "busy") is `BUSY`, "Instance is not running" is
 * `INVALID` (exec and refresh preconditions), disk full is `NO_SPACE`. A socket that is absent or
 * refuses connections is `UNAVAILABLE`.
 */
import { BackendError } from '../types.ts';
import type { BackendErrorCode } from '../types.ts';

export function codeFor(status: number, message: string): BackendErrorCode {
  const m = message.toLowerCase();
  if (/no space left|quota|disk full/.test(m)) return 'NO_SPACE';
  if (m.includes('instance is not running')) return 'INVALID';
  if (m.includes('instance is running') || m.includes('is busy') || m.includes('currently in use')) return 'BUSY';
  if (m.includes('already exists')) return 'ALREADY_EXISTS';
  if (status === 404 || m.includes('not found')) return 'NOT_FOUND';
  if (status === 409) return 'ALREADY_EXISTS';
  if (status === 503) return 'UNAVAILABLE';
  return 'INTERNAL';
}

export function fromLxd(status: number, message: string, details: Record<string, unknown> = {}): BackendError {
  const code = codeFor(status, message);
  const hint = code === 'INVALID' && message.toLowerCase().includes('not running') ? ' (start the instance first)' : '';
  return new BackendError(code, `LXD: ${message}${hint}`, { ...details, lxdStatus: status, lxdError: message });
}

export function unavailable(socketPath: string, cause: unknown): BackendError {
  const err = cause as NodeJS.ErrnoException;
  const why = err?.code === 'ENOENT' ? 'socket absent' : err?.code === 'ECONNREFUSED' ? 'connection refused' : (err?.message ?? String(cause));
  return new BackendError(
    'UNAVAILABLE',
    `LXD is not reachable at ${socketPath} (${why}); start it (e.g. \`bash scripts/lxd-setup.sh\`) or pass the socket option`,
    { socket: socketPath, errno: err?.code },
  );
}
