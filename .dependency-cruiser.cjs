// Import rules for atelier's sources, checked by dependency-cruiser (`npm run lint`, and .ci/run).
//
// A .cjs file because package.json says "type": "module": dependency-cruiser reads its config with
// require() when it ends in .cjs, whereas a .js here would be taken as an ES module.
//
// Paths in the rules are regular expressions on paths relative to the repository root, as
// dependency-cruiser resolves them (an npm package resolves to `node_modules/<name>/...`, a node
// builtin to its bare name such as `node:fs` or `fs`, an import it cannot resolve to the
// specifier as written).
//
// Type-only imports (`import type ...`, `import { type A } ...`, `export type ... from`) count
// like any other import, for the layering rules and the cycle rule alike: a type from another
// file is still a dependency on it.

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'core-is-pure',
      severity: 'error',
      comment:
        'machines/ decides every transition and must stay pure (see machines/README.md): its files ' +
        'may import only other files under machines/ and the npm packages xstate and immer. No node ' +
        'builtins, no other npm package, nothing from events/, engine/, backends/, errors.ts or any ' +
        'other folder, not even as a type: move what it needs into machines/ and have the other ' +
        'layers import it from there.',
      from: { path: '^machines/' },
      to: {
        pathNot: ['^machines/', '^node_modules/(xstate|immer)/'],
      },
    },
    {
      name: 'events-below-engine',
      severity: 'error',
      comment:
        'events/ (the journal and the event catalogue) sits below the engine and the adapters: it ' +
        'must not import anything under backends/, engine/, cli/ or simulate/. Types it shares ' +
        'with them belong in events/ (or machines/), imported from there by the layers above.',
      from: { path: '^events/' },
      to: { path: '^(backends|engine|cli|simulate)/' },
    },
    {
      name: 'adapters-apart',
      severity: 'error',
      comment:
        'Each backend adapter (backends/<name>/) stands alone: it may import backends/types.ts and ' +
        'the layers below, but no file of another adapter (backends/fake/x.ts importing ' +
        'backends/overlay/y.ts is forbidden). Shared code goes into a file directly under ' +
        'backends/ or lower.',
      from: { path: '^backends/([^/]+)/' },
      to: {
        path: '^backends/[^/]+/',
        pathNot: '^backends/$1/',
      },
    },
    {
      name: 'replay-needs-no-backend',
      severity: 'error',
      comment:
        'replay/ reads journals copied from anywhere, offline: it must not import a backend, the ' +
        'daemon, the simulation or the command line (simulate/ writes a timeline with it).',
      from: { path: '^replay/' },
      to: { path: '^(backends|daemon|simulate|cli)/' },
    },
    {
      name: 'cli-on-top',
      severity: 'error',
      comment:
        'cli/ is the top layer: only cli/ itself, bin/, test/ and bench/ (which measures CLI ' +
        'commands as the tests check them) may import from it. The library (index.ts, engine/, ' +
        'backends/, simulate/, ...) must not depend on the command line.',
      from: { pathNot: '^(cli|bin|test|bench)/' },
      to: { path: '^cli/' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      comment:
        'No import cycles among source files (tests excluded), type-only imports included: two ' +
        'files that need each other, even only for a type, are one concept split in two or a ' +
        'layering mistake (engine/engine.ts and engine/reconcile.ts once were: reconcile.ts now ' +
        'says what it needs of the engine in an interface of its own).',
      from: { pathNot: '^(test|fixtures)/' },
      to: {
        circular: true,
      },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment:
        'This import cannot be resolved to a file, a node builtin or an installed npm package: a ' +
        'typo, a missing .ts extension, a moved file, or a package missing from package.json.',
      from: { pathNot: '^(test|fixtures)/' },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    // Only the sources: tests, fixtures and build output are left out of the graph altogether.
    // node_modules must not be excluded (an excluded module vanishes from its importers'
    // dependencies too, and core-is-pure would no longer see npm imports): it is resolved, so the
    // rules can tell xstate from other packages, but never cruised into.
    exclude: { path: '^(test|fixtures|dist)/' },
    doNotFollow: { path: '^node_modules/' },
    moduleSystems: ['es6', 'cjs'],
    // Keep type-only imports in the graph (labelled "type-only"), so the layering rules see them.
    tsPreCompilationDeps: true,
    // The repository's tsconfig (moduleResolution NodeNext, allowImportingTsExtensions): imports
    // carry explicit .ts extensions, which the resolver takes as they are.
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      // Resolve npm packages through their "exports" like Node does for ESM.
      exportsFields: ['exports'],
      conditionNames: ['import', 'node', 'default', 'types', 'require'],
      mainFields: ['module', 'main', 'types', 'typings'],
      extensions: ['.ts', '.d.ts', '.js', '.mjs', '.cjs', '.json'],
    },
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};
