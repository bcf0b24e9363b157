/**
 * The backend port's documentation, checked: the `@example`s are read out of the source files and
 * run as written, so an example that drifts from the API fails here.
 *
 * - `backends/types.ts`: the header's example (it makes its own fake backend), and every `Backend`
 *   member's, each on a fresh backend `b` (after `ensureProjects('alice')`, as the `Backend` doc
 *   says) of every kind: the fake, the overlay backend with both drivers, and LXD when a daemon is
 *   there (with a unique owner in place of `'alice'`; see `BACKENDS`).
 * - `backends/overlay/backend.ts`: its example, against a real overlay store. It makes its root
 *   with `mkdtemp(join(tmpdir(), ...))`, so the test points `TMPDIR` (and `XDG_RUNTIME_DIR`, where
 *   the run directory goes) into a temp dir of its own while it runs, and deletes that afterwards.
 *
 * Every example is also type-checked against the real declarations, and a statement followed by a
 * literal comment (`info.status; // 'stopped'`) must evaluate to that value (deep equality). A
 * comment that does not start like a literal (`// absent: succeeds`) is prose and left alone.
 * Doc lint: every `Backend` member has JSDoc saying what a repeat does; every `@throws` names a
 * `BackendErrorCode`; the main calls have an example; no example in `types.ts` goes unrun.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { createFakeBackend } from '../../backends/fake/index.ts';
import type { Backend } from '../../backends/types.ts';
import { createLxdBackend } from '../../backends/lxd/index.ts';
import { LXD_BASE, LXD_SOCKET, lxdAvailable, purgeOwner, uniqueOwner } from './lxd-env.ts';
import { overlayFixture, releaseMounts } from './overlay-env.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const TYPES = join(ROOT, 'backends/types.ts');
const OVERLAY_ADAPTER = join(ROOT, 'backends/overlay/backend.ts');

/** The calls whose docs must carry an example. */
const MAIN_CALLS = ['create', 'copy', 'remove', 'exec', 'inspect', 'list', 'readFile', 'diskSpace', 'usage'];

interface Example {
  /** Where it comes from, e.g. `types.ts header` or `Backend.create`. */
  readonly label: string;
  readonly code: string;
}

// ---- reading the docs --------------------------------------------------------------------------

function parse(file: string): ts.SourceFile {
  return ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
}

/** The ```ts blocks after `@example` in one `/** ... *\/` comment (its raw text). */
function examplesIn(comment: string): string[] {
  const text = comment
    .replace(/^\/\*\*/, '')
    .replace(/\*\/$/, '')
    .split('\n')
    .map((l) => l.replace(/^\s*\* ?/, ''))
    .join('\n');
  return [...text.matchAll(/@example[^\n]*\n```ts\n([\s\S]*?)\n```/g)].map((m) => m[1]!);
}

function countExamples(file: string): number {
  return (readFileSync(file, 'utf8').match(/@example\b/g) ?? []).length;
}

/** The file's header comment (the `/** ... *\/` it starts with). */
function headerOf(sf: ts.SourceFile): string {
  const text = sf.getFullText();
  assert.ok(text.startsWith('/**'), `${sf.fileName} starts with a header comment`);
  return text.slice(0, text.indexOf('*/') + 2);
}

function backendInterface(sf: ts.SourceFile): ts.InterfaceDeclaration {
  const found = sf.statements.find((s): s is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(s) && s.name.text === 'Backend');
  assert.ok(found, 'backends/types.ts declares interface Backend');
  return found;
}

/** The raw text of the JSDoc comments attached to a node. */
function jsDocOf(node: ts.Node): string {
  const text = node.getSourceFile().getFullText();
  return ts.getJSDocCommentsAndTags(node).filter(ts.isJSDoc).map((d) => text.slice(d.pos, d.end)).join('\n');
}

function memberName(m: ts.TypeElement): string {
  return m.name && (ts.isIdentifier(m.name) || ts.isStringLiteral(m.name)) ? m.name.text : '?';
}

const typesFile = parse(TYPES);
const backend = backendInterface(typesFile);
const headerExamples: Example[] = examplesIn(headerOf(typesFile)).map((code) => ({ label: 'types.ts header', code }));
const memberExamples: Example[] = backend.members.flatMap((m) => examplesIn(jsDocOf(m)).map((code) => ({ label: `Backend.${memberName(m)}`, code })));
const overlayExamples: Example[] = examplesIn(headerOf(parse(OVERLAY_ADAPTER))).map((code) => ({ label: 'overlay/backend.ts header', code }));

// ---- running an example ------------------------------------------------------------------------

/** Values an example may use without importing them, by where it comes from. */
type Scope = Record<string, unknown>;

/** `import { a, b as c } from 'x'` (and the default and namespace forms) as a dynamic import. */
function importToConst(line: string): string {
  if (/^import\s+type\s/.test(line)) return '';
  const named = /^import\s*\{([^}]*)\}\s*from\s*(['"][^'"]+['"]);?\s*$/.exec(line);
  if (named) {
    const names = named[1]!.split(',').map((s) => s.trim()).filter((s) => s && !s.startsWith('type ')).map((s) => s.replace(/\s+as\s+/, ': '));
    return `const { ${names.join(', ')} } = await __import(${named[2]});`;
  }
  const ns = /^import\s*\*\s*as\s+(\w+)\s+from\s*(['"][^'"]+['"]);?\s*$/.exec(line);
  if (ns) return `const ${ns[1]} = await __import(${ns[2]});`;
  const def = /^import\s+(\w+)\s+from\s*(['"][^'"]+['"]);?\s*$/.exec(line);
  if (def) return `const ${def[1]} = (await __import(${def[2]})).default;`;
  throw new Error(`an example's import this test cannot run: ${line}`);
}

/** Relative specifiers are taken from the repository root (as `index.ts`-style examples write them). */
function importFromExample(spec: string): Promise<Record<string, unknown>> {
  return import(spec.startsWith('.') ? pathToFileURL(resolve(ROOT, spec)).href : spec) as Promise<Record<string, unknown>>;
}

function splitImports(code: string): { imports: string[]; body: string } {
  const lines = code.split('\n');
  const imports = lines.filter((l) => /^import\s/.test(l));
  return { imports, body: lines.filter((l) => !/^import\s/.test(l)).join('\n') };
}

/** A comment that starts like a JS literal is an expected value; anything else is prose. */
const LITERAL_START = /^(?:['"`[{]|-?\d|null\b|true\b|false\b|undefined\b)/;

/**
 * Turn top-level `EXPR; // LITERAL` statements of the example's body into `__expect(EXPR, LITERAL, ...)`.
 * Returns the rewritten TypeScript and how many checks it holds.
 */
function withChecks(body: string): { code: string; checks: number } {
  const prefix = 'async function __example() {\n';
  const wrapped = `${prefix}${body}\n}`;
  const sf = ts.createSourceFile('example.ts', wrapped, ts.ScriptTarget.ES2022, true);
  const fn = sf.statements[0];
  assert.ok(fn && ts.isFunctionDeclaration(fn) && fn.body, 'the example parses');
  const edits: Array<{ start: number; end: number; text: string }> = [];
  for (const stmt of fn.body.statements) {
    const comment = ts.getTrailingCommentRanges(wrapped, stmt.end)?.[0];
    if (!comment || comment.kind !== ts.SyntaxKind.SingleLineCommentTrivia) continue;
    const expected = wrapped.slice(comment.pos + 2, comment.end).trim();
    if (!LITERAL_START.test(expected)) continue;
    const line = wrapped.slice(stmt.getStart(), comment.end);
    assert.ok(ts.isExpressionStatement(stmt), `only an expression statement can carry an expected value: ${line}`);
    const problems = ts.transpileModule(`(${expected});`, { reportDiagnostics: true }).diagnostics ?? [];
    assert.is(problems.length, 0, `the expected value after // does not parse: ${line}`);
    edits.push({ start: stmt.getStart(), end: comment.end, text: `__expect(${stmt.expression.getText()}, (${expected}), ${JSON.stringify(line)});` });
  }
  let out = wrapped;
  for (const e of edits.reverse()) out = out.slice(0, e.start) + e.text + out.slice(e.end);
  return { code: out.slice(prefix.length, -2), checks: edits.length };
}

/**
 * Run an example with `scope`'s names in scope; returns how many `// value` checks it made.
 * `rename` replaces one string literal of the code everywhere (LXD: the owner, see `BACKENDS`).
 */
async function runExample(ex: Example, scope: Scope, where: string, rename?: [string, string]): Promise<number> {
  const code = rename ? ex.code.replaceAll(rename[0], rename[1]) : ex.code;
  const { imports, body } = splitImports(code);
  const checked = withChecks(body);
  const source = `(async (__expect, __import, ${Object.keys(scope).join(', ')}) => {\n${imports.map(importToConst).join('\n')}\n${checked.code}\n})`;
  const js = ts.transpileModule(source, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext }, reportDiagnostics: true });
  assert.equal(js.diagnostics ?? [], [], `${ex.label}: transpiles`);
  const fn = new Function(`return ${js.outputText.replace(/export \{\};?\s*$/, '')}`)() as (...args: unknown[]) => Promise<void>;
  let done = 0;
  const expect = (actual: unknown, expected: unknown, line: string) => {
    assert.equal(actual, expected, `${ex.label} on ${where}: ${line}`);
    done++;
  };
  await fn(expect, importFromExample, ...Object.values(scope));
  assert.is(done, checked.checks, `${ex.label} on ${where}: every // value check ran`);
  return done;
}

// ---- type-checking the examples ----------------------------------------------------------------

/**
 * Type-check examples as a module each (in memory, next to this file): the example's imports, the
 * declarations of the names it may use, then its body in an async function. Only diagnostics in the
 * examples themselves count (others may be editing the files they import).
 */
function typeErrors(examples: ReadonlyArray<{ ex: Example; declarations: string }>): string[] {
  const config = ts.readConfigFile(join(ROOT, 'tsconfig.json'), ts.sys.readFile);
  const options = ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT).options;
  const files = new Map<string, string>();
  const labels = new Map<string, string>();
  examples.forEach(({ ex, declarations }, i) => {
    const name = join(ROOT, 'test/backends', `__port_docs_example_${i}.ts`);
    const { imports, body } = splitImports(ex.code);
    files.set(name, `${imports.join('\n')}\n${declarations}\nexport async function __example(): Promise<void> {\n${body}\n}\n`);
    labels.set(name, ex.label);
  });
  const host = ts.createCompilerHost(options);
  const { fileExists, readFile, getSourceFile } = host;
  host.fileExists = (f) => files.has(f) || fileExists.call(host, f);
  host.readFile = (f) => files.get(f) ?? readFile.call(host, f);
  host.getSourceFile = (f, lang, ...rest) => (files.has(f) ? ts.createSourceFile(f, files.get(f)!, lang, true) : getSourceFile.call(host, f, lang, ...rest));
  const program = ts.createProgram({ rootNames: [...files.keys()], options, host });
  const out: string[] = [];
  for (const name of files.keys()) {
    const sf = program.getSourceFile(name)!;
    for (const d of [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)]) {
      const { line } = sf.getLineAndCharacterOfPosition(d.start ?? 0);
      const text = sf.getFullText().split('\n')[line]?.trim();
      out.push(`${labels.get(name)}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')} (in: ${text})`);
    }
  }
  return out;
}

// ---- the tests ---------------------------------------------------------------------------------

test('docs: every Backend member has JSDoc that says what a repeat does', () => {
  for (const m of backend.members) {
    const doc = jsDocOf(m);
    assert.ok(doc, `Backend.${memberName(m)} has JSDoc`);
    if (ts.isMethodSignature(m)) assert.match(doc, /Idempotent|Not idempotent|Read-only/, `Backend.${memberName(m)} says whether a repeat is harmless`);
  }
});

test('docs: every @throws in types.ts names a BackendErrorCode', () => {
  const alias = typesFile.statements.find((s): s is ts.TypeAliasDeclaration => ts.isTypeAliasDeclaration(s) && s.name.text === 'BackendErrorCode');
  assert.ok(alias && ts.isUnionTypeNode(alias.type));
  const codes = new Set(alias.type.types.map((t) => (ts.isLiteralTypeNode(t) && ts.isStringLiteral(t.literal) ? t.literal.text : '?')));
  const throws = [...typesFile.getFullText().matchAll(/@throws\s+(\S+)/g)].map((m) => m[1]!);
  assert.ok(throws.length > 0);
  for (const t of throws) assert.ok(codes.has(t.replace(/`/g, '')), `@throws ${t} is a BackendErrorCode`);
});

test('docs: the main calls have examples, and every example in types.ts is run here', () => {
  const documented = new Set(memberExamples.map((e) => e.label));
  for (const call of MAIN_CALLS) assert.ok(documented.has(`Backend.${call}`), `Backend.${call} has an @example`);
  assert.is(headerExamples.length, 1, 'the header has one example');
  assert.is(headerExamples.length + memberExamples.length, countExamples(TYPES), 'no @example in types.ts is left unrun');
  assert.is(overlayExamples.length, 1, 'overlay/backend.ts has one example');
  assert.is(countExamples(OVERLAY_ADAPTER), 1);
});

test('docs: the examples type-check against the real declarations', () => {
  const errors = typeErrors([
    ...headerExamples.map((ex) => ({ ex, declarations: "import { createFakeBackend } from '../../backends/fake/index.ts';" })),
    ...memberExamples.map((ex) => ({ ex, declarations: "import type { Backend } from '../../backends/types.ts';\ndeclare const b: Backend;" })),
    ...overlayExamples.map((ex) => ({ ex, declarations: '' })),
  ]);
  assert.equal(errors, []);
});

test('types.ts header example runs as written on the fake', async () => {
  for (const ex of headerExamples) await runExample(ex, { createFakeBackend }, 'the fake');
});

interface Made {
  readonly b: Backend;
  /** The owner the examples' `'alice'` becomes (LXD: a daemon shared with others needs a fresh one). */
  readonly owner: string;
  cleanup(): Promise<void>;
}

/**
 * The backends member examples run on, a fresh one per example: the fake, the overlay backend with
 * both drivers, and LXD when a daemon with the default base is there (else only a line is printed:
 * `lxd.test.ts` is what reports a missing daemon). On LXD, `'alice'` becomes a unique owner whose
 * projects are purged afterwards: the daemon is shared, a fixed owner's projects may be someone's.
 */
const lxd = await lxdAvailable();
if (!lxd.ok) console.log(`port-docs: member examples not run on LXD: ${lxd.reason}`);
const BACKENDS: ReadonlyArray<[string, () => Promise<Made>]> = [
  ['the fake', async () => {
    const b = createFakeBackend({ seed: 1 });
    return { b, owner: 'alice', cleanup: () => b.close() };
  }],
  ...(['overlayfs', 'copy'] as const).map((driver): [string, () => Promise<Made>] => [`overlay/${driver}`, async () => {
    const f = await overlayFixture(driver);
    return { b: f.backend, owner: 'alice', cleanup: () => f.cleanup() };
  }]),
  ...(lxd.ok ? [['lxd', async (): Promise<Made> => {
    const owner = uniqueOwner('atl');
    const b = createLxdBackend({ owner, socket: LXD_SOCKET, defaultBase: LXD_BASE });
    return { b, owner, cleanup: async () => { await b.close(); await purgeOwner(owner); } };
  }] as [string, () => Promise<Made>]] : []),
];

for (const ex of memberExamples) {
  test(`${ex.label} example runs as written on ${BACKENDS.map(([where]) => where).join(', ')}`, async () => {
    let checks = 0;
    for (const [where, make] of BACKENDS) {
      const { b, owner, cleanup } = await make();
      try {
        await b.ensureProjects(owner);
        checks = await runExample(ex, { b }, where, owner === 'alice' ? undefined : ["'alice'", `'${owner}'`]);
      } finally {
        await cleanup();
      }
    }
    assert.ok(checks > 0, `${ex.label}'s example checks at least one // value`);
  });
}

test('overlay/backend.ts example runs as written on a real overlay store', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'atelier-port-docs-'));
  const saved = { TMPDIR: process.env.TMPDIR, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR };
  try {
    process.env.TMPDIR = dir;
    process.env.XDG_RUNTIME_DIR = join(dir, 'run');
    for (const ex of overlayExamples) assert.ok((await runExample(ex, {}, 'overlay')) > 0);
    assert.ok((await readdir(dir)).some((n) => n.startsWith('atelier-overlay-')), 'the example made its root in our temp dir');
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await releaseMounts(dir);
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
