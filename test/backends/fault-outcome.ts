/**
 * Shared by the fault-plan tests of the fake and of `withFaults` around real adapters: short
 * object refs and tags, and a call's outcome as one comparable word.
 */
import type { ObjectRef, Tags } from '../../backends/types.ts';
import { isBackendError, SimulatedCrash } from '../../backends/types.ts';

export const WS = (name: string): ObjectRef => ({ space: 'workshops', name });
export const LY = (name: string): ObjectRef => ({ space: 'layers', name });
export const tags = (kind: Tags['kind'], op = 'op1'): Tags => ({ owner: 'alice', op, kind });

/** 'ok', the BackendError code, or 'CRASH'. */
export async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    if (e instanceof SimulatedCrash) return 'CRASH';
    return isBackendError(e) ? e.code : `unexpected ${String(e)}`;
  }
}
