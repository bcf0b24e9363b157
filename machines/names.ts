/**
 * Name rules (docs/design.md §1 "Names"): every name atelier derives or accepts is checked here, before
 * anything is journaled, so a bad name is a clear `INVALID_NAME` error and nothing changes.
 *
 * Derived names end up as LXD instance / host names, which is why they are capped at 63 characters
 * and may not contain `_` or end in `-`.
 *
 * @example
 * ```ts
 * import { validateWorkshopName, instanceName, sdkLayerName, stashName } from './names.ts';
 * validateWorkshopName('nav2');                       // ok
 * const inst = instanceName('nav2', '1a2b3c4d');      // 'nav2-1a2b3c4d'
 * const layer = sdkLayerName('ros2', '0123456789abcdef');
 * stashName(inst);                                    // 'stash-nav2-1a2b3c4d'
 * validateWorkshopName('Nav2');                       // throws AtelierError INVALID_NAME
 * ```
 */
import { AtelierError } from './errors.ts';

/** LXD's limit on instance names (they are host names). */
export const MAX_OBJECT_NAME = 63;
/** Limit on workshop and SDK names, leaving room for the derived suffixes. */
export const MAX_NAME = 40;

export const WORKSHOP_NAME_RE = /^[a-z](?:-?[a-z0-9])*$/;
export const SDK_NAME_RE = /^(?:[a-z0-9]-?)*[a-z](?:-?[a-z0-9])*$/;
export const USER_NAME_RE = /^[a-zA-Z][-a-zA-Z0-9._]*$/;
export const PROJECT_ID_RE = /^[0-9a-f]{8}$/;
export const LAYER_SUFFIX_RE = /^[0-9a-f]{16}$/;

/** `JSON.stringify` gives a quoted, escaped rendering, so control characters in bad input stay visible. */
function q(s: string): string {
  return JSON.stringify(s);
}

function invalid(message: string, details: Record<string, unknown>): never {
  throw new AtelierError('INVALID_NAME', message, details);
}

function checkString(what: string, name: unknown): asserts name is string {
  if (typeof name !== 'string') invalid(`${what} name must be a string, got ${name === null ? 'null' : typeof name}`, { what, name });
  if (name === '') invalid(`${what} name is empty: give a name such as "nav2"`, { what, name });
}

/**
 * Check a workshop name: lowercase letters, digits and single hyphens, starting with a letter,
 * not ending in a hyphen, at most 40 characters.
 *
 * @example
 * validateWorkshopName('nav2'); // ok
 * validateWorkshopName('a..b'); // throws INVALID_NAME
 */
export function validateWorkshopName(name: unknown): string {
  checkString('workshop', name);
  if (name.length > MAX_NAME) {
    invalid(`workshop name ${q(name)} is ${name.length} characters long: at most ${MAX_NAME} are allowed`, { what: 'workshop', name, rule: 'length' });
  }
  if (!WORKSHOP_NAME_RE.test(name)) {
    invalid(
      `workshop name ${q(name)} is not valid: use lowercase letters, digits and single hyphens, starting with a letter and not ending with a hyphen (e.g. "nav2")`,
      { what: 'workshop', name, rule: 'pattern' },
    );
  }
  return name;
}

/**
 * Check an SDK name: lowercase letters, digits and single hyphens with at least one letter, at most
 * 40 characters; `agent`, `try-*` and `project-*` are reserved.
 *
 * @example
 * validateSdkName('ros2');     // ok
 * validateSdkName('try-this'); // throws INVALID_NAME (reserved)
 */
export function validateSdkName(name: unknown): string {
  checkString('SDK', name);
  if (name.length > MAX_NAME) {
    invalid(`SDK name ${q(name)} is ${name.length} characters long: at most ${MAX_NAME} are allowed`, { what: 'sdk', name, rule: 'length' });
  }
  if (!SDK_NAME_RE.test(name)) {
    invalid(
      `SDK name ${q(name)} is not valid: use lowercase letters, digits and single hyphens, with at least one letter and no leading or trailing hyphen (e.g. "ros2")`,
      { what: 'sdk', name, rule: 'pattern' },
    );
  }
  if (name === 'agent' || name.startsWith('try-') || name.startsWith('project-')) {
    invalid(`SDK name ${q(name)} is reserved ("agent", "try-*" and "project-*" are): pick another name`, { what: 'sdk', name, rule: 'reserved' });
  }
  return name;
}

/**
 * Check a project id: exactly 8 lowercase hex characters.
 *
 * @example
 * validateProjectId('1a2b3c4d'); // ok
 */
export function validateProjectId(id: unknown): string {
  checkString('project id', id);
  if (!PROJECT_ID_RE.test(id)) {
    invalid(`project id ${q(id)} is not valid: it must be exactly 8 lowercase hex characters`, { what: 'project', name: id, rule: 'pattern' });
  }
  return id;
}

/** A derived object name must fit LXD's 63-character limit. */
function checkDerived(what: string, name: string, from: string): string {
  if (name.length > MAX_OBJECT_NAME) {
    invalid(`${what} name ${q(name)} (from ${from}) is ${name.length} characters long: at most ${MAX_OBJECT_NAME} are allowed; use a shorter name`, {
      what,
      name,
      rule: 'length',
    });
  }
  return name;
}

/**
 * The instance name of a workshop: `<workshop>-<project id>`.
 *
 * @example
 * instanceName('nav2', '1a2b3c4d'); // 'nav2-1a2b3c4d'
 */
export function instanceName(workshop: string, projectId: string): string {
  validateWorkshopName(workshop);
  validateProjectId(projectId);
  return checkDerived('instance', `${workshop}-${projectId}`, `workshop ${q(workshop)}`);
}

/**
 * The name of an SDK layer: `<sdk>-<16 hex characters>`.
 *
 * @example
 * sdkLayerName('ros2', '0123456789abcdef'); // 'ros2-0123456789abcdef'
 */
export function sdkLayerName(sdk: string, suffix: string): string {
  validateSdkName(sdk);
  if (typeof suffix !== 'string' || !LAYER_SUFFIX_RE.test(suffix)) {
    invalid(`SDK layer suffix ${q(String(suffix))} is not valid: it must be 16 characters from [0-9a-f]`, { what: 'sdk layer', name: suffix, rule: 'pattern' });
  }
  return checkDerived('SDK layer', `${sdk}-${suffix}`, `SDK ${q(sdk)}`);
}

/**
 * The stash layer of a workshop instance: `stash-<instance>`.
 *
 * @example
 * stashName('nav2-1a2b3c4d'); // 'stash-nav2-1a2b3c4d'
 */
export function stashName(instance: string): string {
  checkString('instance', instance);
  return checkDerived('stash', `stash-${instance}`, `instance ${q(instance)}`);
}

/**
 * The stash copy of an SDK layer: `stash-<sdk layer>`.
 *
 * @example
 * stashSdkName('ros2-0123456789abcdef'); // 'stash-ros2-0123456789abcdef'
 */
export function stashSdkName(layer: string): string {
  checkString('SDK layer', layer);
  return checkDerived('stash-sdk', `stash-${layer}`, `SDK layer ${q(layer)}`);
}

/** The parts of `os.userInfo()` that `ownerName` needs. */
export interface UserInfoLike {
  readonly username: string;
  readonly uid: number;
}

/**
 * The owner name used in tags and LXD project names (`workshop.<owner>`): the user name when it
 * matches `^[a-zA-Z][-a-zA-Z0-9._]*$`, else the numeric uid (LXD project names cannot hold
 * arbitrary characters, and a uid is always unique on the host).
 *
 * @example
 * ownerName(os.userInfo());                    // 'alice'
 * ownerName({ username: 'Jo Doe', uid: 1001 }); // '1001'
 */
export function ownerName(info: UserInfoLike): string {
  if (typeof info.username === 'string' && USER_NAME_RE.test(info.username)) return info.username;
  if (!Number.isInteger(info.uid) || info.uid < 0) {
    invalid(`user name ${q(String(info.username))} is not valid and there is no numeric uid to fall back on: pass an owner explicitly`, {
      what: 'owner',
      name: info.username,
      rule: 'pattern',
    });
  }
  return String(info.uid);
}

/**
 * Check an explicit owner name (e.g. from an option): user-name rules or a numeric uid.
 *
 * @example
 * validateOwnerName('alice'); validateOwnerName('1001');
 */
export function validateOwnerName(name: unknown): string {
  checkString('owner', name);
  if (!USER_NAME_RE.test(name) && !/^[0-9]+$/.test(name)) {
    invalid(`owner name ${q(name)} is not valid: use a user name matching ^[a-zA-Z][-a-zA-Z0-9._]*$ or a numeric uid`, { what: 'owner', name, rule: 'pattern' });
  }
  return name;
}
