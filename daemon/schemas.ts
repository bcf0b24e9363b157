/**
 * The JSON schemas atelierd checks each request against (fastify with ajv): anything else is a
 * 400 before a handler runs. Every object refuses unknown fields; names are checked again by the
 * name rules (`machines/names.ts`) with their own messages.
 *
 * @example
 * ```ts
 * app.post('/v1/workshops', { schema: SCHEMAS.workshops }, handler);
 * ```
 */
const str = { type: 'string', minLength: 1, maxLength: 4096 } as const;
const name = { type: 'string', minLength: 1, maxLength: 64 } as const;
const id = { type: 'string', minLength: 1, maxLength: 80, pattern: '^[A-Za-z0-9._-]+$' } as const;
const seq = { type: 'string', maxLength: 16 } as const;

const inlineSpec = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'project', 'sdks'],
  properties: {
    name,
    base: { type: 'string', minLength: 1, maxLength: 200 },
    project: str,
    sdks: {
      type: 'array',
      maxItems: 64,
      items: { type: 'object', additionalProperties: false, required: ['name', 'setup-base'], properties: { name, 'setup-base': { type: 'string', maxLength: 32768 } } },
    },
  },
} as const;

export const SCHEMAS = {
  workshopParams: { params: { type: 'object', properties: { name }, required: ['name'] } },
  workshops: {
    body: {
      type: 'object',
      additionalProperties: false,
      required: ['action'],
      properties: { action: { enum: ['launch', 'refresh'] }, file: str, spec: inlineSpec },
    },
  },
  workshopAction: {
    params: { type: 'object', properties: { name }, required: ['name'] },
    body: {
      type: 'object',
      additionalProperties: false,
      required: ['action'],
      properties: { action: { enum: ['stash', 'unstash', 'restore', 'remove', 'start', 'stop'] }, sdk: name },
    },
  },
  containers: {
    body: {
      type: 'object',
      additionalProperties: false,
      required: ['from'],
      properties: { from: name, script: { type: 'string', maxLength: 32768 }, keep: { type: 'boolean' }, scratch: name },
    },
  },
  containerParams: { params: { type: 'object', properties: { id }, required: ['id'] } },
  gc: { body: { type: ['object', 'null'], additionalProperties: false, properties: { 'dry-run': { type: 'boolean' }, cache: { type: 'boolean' } } } },
  reconcile: { body: { type: ['object', 'null'], additionalProperties: false, properties: {} } },
  changes: { querystring: { type: 'object', additionalProperties: false, properties: { select: { enum: ['all', 'in-progress', 'ready'] } } } },
  changeParams: { params: { type: 'object', properties: { id }, required: ['id'] } },
  changeWait: { params: { type: 'object', properties: { id }, required: ['id'] }, querystring: { type: 'object', additionalProperties: false, properties: { timeout: { type: 'string', maxLength: 16 } } } },
  changeAction: {
    params: { type: 'object', properties: { id }, required: ['id'] },
    body: { type: 'object', additionalProperties: false, required: ['action'], properties: { action: { enum: ['abort'] } } },
  },
  exec: {
    params: { type: 'object', properties: { name }, required: ['name'] },
    body: {
      type: 'object',
      additionalProperties: false,
      required: ['command'],
      properties: {
        // argv as given: arguments may be empty strings, the program may not (the engine refuses that).
        command: { type: 'array', minItems: 1, maxItems: 4096, items: { type: 'string', maxLength: 32768 } },
        environment: {
          type: 'object',
          maxProperties: 1024,
          propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]*$', maxLength: 256 },
          additionalProperties: { type: 'string', maxLength: 32768 },
        },
        'working-dir': { type: 'string', minLength: 1, maxLength: 4096, pattern: '^/' },
        // A user name of the workshop's /etc/passwd, or uid[:gid] (the CLI's --user rule).
        user: { type: 'string', minLength: 1, maxLength: 64, pattern: '^(?:[a-z_][a-z0-9_-]*\\$?|\\d+(?::\\d+)?)$' },
        interactive: { type: 'boolean' },
        width: { type: 'integer', minimum: 1, maximum: 65535 },
        height: { type: 'integer', minimum: 1, maximum: 65535 },
      },
    },
  },
  execWebsocket: {
    params: { type: 'object', properties: { id }, required: ['id'] },
    querystring: { type: 'object', additionalProperties: false, required: ['id'], properties: { id: { enum: ['stdio', 'stderr', 'pty', 'control'] } } },
  },
  events: { querystring: { type: 'object', additionalProperties: false, properties: { after: seq, 'volatile-after': seq, types: { type: 'string', maxLength: 1024 } } } },
} as const;
