/**
 * The `atelier` command line. `bin/atelier.js` registers tsx and calls `main`.
 *
 * Every failure ends in one message (or one JSON object with `--json`) and an exit code from
 * `exitCodeFor` (errors.ts): 0 done, 1 failed and undone, 2 invalid input, 3 locked, 4 journal
 * corrupt, 5 backend unavailable. Commander's own errors (unknown command or option, missing
 * argument) are invalid input: 2.
 *
 * @example
 * ```ts
 * import { main } from './cli/atelier.ts';
 * process.exitCode = await main(['node', 'atelier', '--backend', 'fake', 'list']);
 * ```
 */
import { Command, CommanderError, Option } from 'commander';
import { AtelierError } from '../machines/errors.ts';
import { ATELIER_VERSION } from '../engine/version.ts';
import { BACKEND_KINDS } from '../backends/select.ts';
import * as cmd from './commands.ts';
import * as work from './exec.ts';
import { type Context, type GlobalOptions, type Io, resolveCacheKeep, resolveContext } from './context.ts';
import { Output } from './output.ts';

export const EXIT_CODES_HELP = `
Exit codes:
  0  done
  1  the operation failed and was undone (run: the script exited non-zero)
  2  invalid input: a bad name or workshop file, an unknown command or option,
     a workshop or SDK that does not exist, or a command the workshop's state
     does not allow
  3  the state directory is locked by another atelier process
  4  the journal is corrupt, or was written by a newer atelier
  5  the backend is unavailable
  6  a disk is full (the journal's or the backend's): remove and gc still work`;


/**
 * Build the commander program. `act` receives each command's handler and runs it with the
 * resolved context; keeping it injectable lets `main` own error reporting in one place.
 */
export function buildProgram(
  io: Io,
  json: boolean,
  act: (fn: (ctx: Context) => Promise<number>, command: Command) => Promise<void>,
  direct: (fn: () => Promise<number>) => Promise<void> = async (fn) => void (await fn()),
): Command {
  const program = new Command('atelier');
  // Set before any subcommand is added: commander copies these settings into each one.
  // In JSON mode commander's error text is replaced by the JSON object `main` prints.
  program.configureOutput({
    writeOut: (s) => void io.stdout.write(s),
    writeErr: (s) => void io.stderr.write(s),
    outputError: (s, write) => {
      if (!json) write(s);
    },
  });
  program
    .description('Keep development workshops, their SDK layers and containers alive, crash-safely.')
    .version(ATELIER_VERSION, '-V, --version')
    .option('--state-dir <dir>', 'journal, checkpoints and lock (default: $XDG_STATE_HOME/atelier or ~/.local/state/atelier)')
    .option('--run-dir <dir>', 'volatile journal of transient containers (default: $XDG_RUNTIME_DIR/atelier or /run/atelier)')
    .addOption(new Option('--backend <name>', 'where workshops live').choices(BACKEND_KINDS).default('overlay'))
    .option('--lxd-socket <path>', "LXD's unix socket (lxd backend; default: the adapter's)")
    .option('--base-default <name>', "base for workshop files that name none (default: the backend's)")
    .option('--json', 'print one JSON object per command on stdout, errors included')
    .option('--socket <path>', "atelierd's socket: commands go through the daemon when it answers there for this state directory (default: $ATELIER_SOCKET, else /run/atelier/atelierd.sock for root, $XDG_RUNTIME_DIR/atelier/atelierd.sock otherwise)")
    .option('--no-daemon', 'run the engine in this process even when atelierd answers')
    .option('--min-free <size>', 'below this much free space on the journal\'s or the backend\'s disk, refuse launch, refresh, stash, unstash, restore and run (remove and gc still work) (default: $ATELIER_MIN_FREE, else 32M)')
    .option('--cache-keep <size|count>', 'how many shared SDK layers no workshop uses to keep for reuse (a count, e.g. 10) or how much of them (a size, e.g. 20GiB), the least recently used evicted first; gc --cache evicts them all (default: $ATELIER_CACHE_KEEP, else 10)')
    .showSuggestionAfterError(true)
    .addHelpText('after', EXIT_CODES_HELP)
    .exitOverride();

  program
    .command('launch')
    .description('create a workshop from its workshop file: base, then each SDK (setup-base, snapshot), then start')
    .argument('<file>', 'workshop.yaml (or the directory holding it)')
    .action((file: string, _o, c: Command) => act((ctx) => cmd.launchOrRefresh(ctx, 'launch', file), c));
  program
    .command('refresh')
    .description('bring a workshop up to date with its file, reusing unchanged SDK layers; undone on failure')
    .argument('<file>', 'workshop.yaml (or the directory holding it)')
    .action((file: string, _o, c: Command) => act((ctx) => cmd.launchOrRefresh(ctx, 'refresh', file), c));
  program
    .command('stash')
    .description('copy the workshop and its SDK layers aside (what a refresh does first)')
    .argument('<name>', 'workshop name')
    .action((name: string, _o, c: Command) => act((ctx) => cmd.stashOrUnstash(ctx, 'stash', name), c));
  program
    .command('unstash')
    .description('put the stashed copy back over the workshop and drop the stash')
    .argument('<name>', 'workshop name')
    .action((name: string, _o, c: Command) => act((ctx) => cmd.stashOrUnstash(ctx, 'unstash', name), c));
  program
    .command('restore')
    .description("reset the workshop to an SDK's layer (its state right after that SDK's setup-base)")
    .argument('<name>', 'workshop name')
    .argument('<sdk>', 'SDK name')
    .action((name: string, sdk: string, _o, c: Command) => act((ctx) => cmd.restore(ctx, name, sdk), c));
  program
    .command('remove')
    .description('delete the workshop, its SDK layers and any stash')
    .argument('<name>', 'workshop name')
    .action((name: string, _o, c: Command) => act((ctx) => cmd.remove(ctx, name), c));
  program
    .command('start')
    .description("start the workshop's container; it is kept running (started again after a host reboot) until stop")
    .argument('<name>', 'workshop name')
    .action((name: string, _o, c: Command) => act((ctx) => cmd.startOrStop(ctx, 'start', name), c));
  program
    .command('stop')
    .description("stop the workshop's container (processes in it end); it stays stopped until start")
    .argument('<name>', 'workshop name')
    .action((name: string, _o, c: Command) => act((ctx) => cmd.startOrStop(ctx, 'stop', name), c));
  program
    .command('exec')
    .description("run a command in a started workshop with stdin, stdout and stderr connected; exits with the command's status")
    .argument('<name>', 'workshop name')
    .argument('<command...>', 'the command and its arguments (after --)')
    .option('--env <K=V>', 'set an environment variable (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--cwd <dir>', "working directory inside the workshop (default: the user's home)")
    .option('--user <user>', 'run as this user of the workshop: a name or uid[:gid] (default: root)')
    .action((name: string, command: string[], o: { env?: string[]; cwd?: string; user?: string }, c: Command) => act((ctx) => work.execCommand(ctx, name, command, o), c));
  program
    .command('shell')
    .description('open an interactive login shell in a started workshop (needs a terminal)')
    .argument('<name>', 'workshop name')
    .option('--env <K=V>', 'set an environment variable (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--cwd <dir>', "working directory inside the workshop (default: the user's home)")
    .option('--user <user>', 'log in as this user of the workshop: a name or uid[:gid] (default: root)')
    .action((name: string, o: { env?: string[]; cwd?: string; user?: string }, c: Command) => act((ctx) => work.shellCommand(ctx, name, o), c));
  program
    .command('list')
    .description('list workshops')
    .action((_o, c: Command) => act((ctx) => cmd.list(ctx), c));
  program
    .command('show')
    .description('show one workshop: status, base (and whether it was the default), SDK layers, stash')
    .argument('<name>', 'workshop name')
    .action((name: string, _o, c: Command) => act((ctx) => cmd.show(ctx, name), c));
  program
    .command('gc')
    .description('remove owned backend objects that no workshop or container accounts for')
    .option('--dry-run', 'only report what would be removed')
    .option('--cache', 'also evict every cached SDK layer (shared layers no workshop holds)')
    .action((o: { dryRun?: boolean; cache?: boolean }, c: Command) => act((ctx) => cmd.gc(ctx, o.dryRun === true, o.cache === true), c));
  program
    .command('df')
    .description('disk space: the journal\'s disk and the backend\'s (and whether atelier is degraded), and what each workshop, layer, stash and the journal hold')
    .action((_o, c: Command) => act((ctx) => cmd.df(ctx), c));
  program
    .command('run')
    .description('run a transient container (removed afterwards) from a workshop or an SDK layer')
    .argument('<from>', 'workshop name or SDK layer name (<sdk>-<16 hex>)')
    .option('--script <script>', 'shell script to run in it with sh -eu (default: only create and start)')
    .option('--scratch <key>', "share this key's writable scratch space with other containers")
    .action((from: string, o: { script?: string; scratch?: string }, c: Command) => act((ctx) => cmd.run(ctx, from, o), c));
  const base = program.command('base').description('bases workshops are created from');
  base
    .command('add')
    .description('register a base: a root filesystem directory or tarball, or a Debian root built with mmdebstrap (--debian SUITE; cached)')
    .argument('<name>', 'base name, e.g. ubuntu@24.04')
    .argument('[path]', 'root filesystem directory or tarball (or give --debian)')
    .option('--debian <suite>', 'build a Debian minbase root of this suite (bookworm, trixie, ...) with mmdebstrap, through the host\'s mirror; cached in $ATELIER_DEBIAN_CACHE (default /var/cache/atelier/debian for root, else $XDG_CACHE_HOME/atelier/debian)')
    .action((name: string, p: string | undefined, o: { debian?: string }, c: Command) => act((ctx) => cmd.baseAdd(ctx, name, p, o), c));
  base
    .command('list')
    .description('list the bases the backend knows, marking the default')
    .action((_o, c: Command) => act((ctx) => cmd.baseList(ctx), c));
  const replay = program
    .command('replay')
    .description('the replay debugger: read a journal (no lock, no repair, no backend) and explain it; `atelier replay` alone lists the records and the state')
    .option('--journal <dir>', "a journal copied from anywhere: its directory, the state directory holding it, or a crash image (default: the state directory's)");
  replay
    .command('events', { isDefault: true })
    .description('the records as the decisions they record (with --events or a filter), and the state folded up to --until')
    .option('--until <seq>', 'fold only up to this sequence number', (v) => seqArg('--until', v))
    .option('--workshop <name>', 'only this workshop (its records, ops and objects)')
    .option('--op <id>', "only this op's records")
    .option('--type <types>', 'only these record types, comma-separated (effect.* for a family)')
    .option('--failures', 'only failures: failed steps, undo phases, ops not done, objects found missing')
    .option('--events', 'print every record (implied by --op, --type and --failures)')
    .action((o: ReplayEventsOptions, c: Command) => act(async (ctx) => (await import('./replay/events.ts')).replayCommand(ctx, { ...o, ...journalOf(c) }), c));
  replay
    .command('at')
    .description('the state right after record SEQ (0: before the first)')
    .argument('<seq>', 'sequence number', (v: string) => seqArg('SEQ', v))
    .option('--workshop <name>', 'only this workshop')
    .action((seq: number, o: { workshop?: string }, c: Command) => act(async (ctx) => (await import('./replay/events.ts')).replayAtCommand(ctx, seq, { ...o, ...journalOf(c) }), c));
  replay
    .command('diff')
    .description('what changed in the state between two sequence numbers: a structural diff')
    .argument('<a>', 'from this sequence number', (v: string) => seqArg('A', v))
    .argument('<b>', 'to this one', (v: string) => seqArg('B', v))
    .option('--workshop <name>', "only this workshop's changes")
    .action((a: number, b: number, o: { workshop?: string }, c: Command) => act(async (ctx) => (await import('./replay/diff.ts')).replayDiffCommand(ctx, a, b, { ...o, ...journalOf(c) }), c));
  replay
    .command('why')
    .description("the chain of decisions behind a workshop's status: its ops, their steps, failures, undo, what reconciliation observed and which table row decided")
    .argument('<name>', 'workshop name')
    .option('--until <seq>', 'explain the status it had after this record', (v) => seqArg('--until', v))
    .option('--all', 'also the ops of earlier workshops of that name (removed, or launches undone)')
    .action((name: string, o: { until?: number; all?: boolean }, c: Command) => act(async (ctx) => (await import('./replay/why.ts')).replayWhyCommand(ctx, name, { ...o, ...journalOf(c) }), c));
  replay
    .command('bisect')
    .description('the first record after which an invariant fails (exit 1), or exit 0 when none does; invariants: held, one-op, stash, settled')
    .option('--invariant <name>', 'check only this invariant (repeat, or comma-separate)', (v: string, prev: string[] = []) => [...prev, v])
    .action((o: { invariant?: string[] }, c: Command) => act(async (ctx) => (await import('./replay/bisect.ts')).replayBisectCommand(ctx, { ...o, ...journalOf(c) }), c));
  replay
    .command('reconcile')
    .description('what reconciliation would decide for this journal and an inventory of a backend (atelier inventory --json), touching nothing')
    .requiredOption('--inventory <file>', 'the inventory: atelier inventory --json > FILE on the host')
    .option('--at <time>', "the time reconciliation's records carry (ISO 8601; default: 1 ms after the journal's last record)")
    .action((o: { inventory: string; at?: string }, c: Command) => act(async (ctx) => (await import('./replay/reconcile.ts')).replayReconcileCommand(ctx, { ...o, ...journalOf(c) }), c));
  replay
    .command('html')
    .description('write the journal as one self-contained HTML timeline (no network): lanes, op spans, failures, diffs')
    .requiredOption('-o, --output <file>', 'the HTML file to write')
    .action((o: { output: string }, c: Command) => act(async (ctx) => (await import('./replay/html.ts')).replayHtmlCommand(ctx, { ...o, ...journalOf(c) }), c));
  program
    .command('inventory')
    .description('what the backend holds for this user (read-only): save it with --json > FILE for atelier replay reconcile')
    .option('--owner <name>', "another user's objects (default: yours)")
    .action((o: { owner?: string }, c: Command) => act(async (ctx) => (await import('./inventory.ts')).inventoryCommand(ctx, o), c));
  program
    .command('simulate')
    .description('property-based simulation against the fake backend (atelier simulate --help)')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[args...]')
    .action(async (args: string[]) => {
      await direct(async () => (await import('./simulate.ts')).simulateCommand(args, io));
    });
  program
    .command('reconcile')
    .description("settle interrupted operations and compare the journal with the backend's objects")
    .action((_o, c: Command) => act((ctx) => cmd.reconcile(ctx), c));
  return program;
}

function seqArg(option: string, v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isSafeInteger(n) || n < 0) throw new AtelierError('INVALID_ARGUMENT', `${option} ${JSON.stringify(v)} is not a sequence number: give a whole number, e.g. 42`, { option });
  return n;
}

interface ReplayEventsOptions {
  until?: number;
  workshop?: string;
  op?: string;
  type?: string;
  failures?: boolean;
  events?: boolean;
}

/** `--journal`, given to `replay` (before or after its subcommand). */
function journalOf(c: Command): { journal?: string } {
  const j = (c.optsWithGlobals() as { journal?: string }).journal;
  return j === undefined ? {} : { journal: j };
}

/** Commander's "help or version was printed" outcomes: not failures. */
const COMMANDER_OK = new Set(['commander.helpDisplayed', 'commander.version']);

/**
 * Run the CLI and return its exit code. Never throws.
 *
 * @example
 * const code = await main(process.argv);
 */
export async function main(argv: readonly string[], io: Io = { stdout: process.stdout, stderr: process.stderr, env: process.env }): Promise<number> {
  // Known before parsing so that even commander's own errors come out as JSON.
  const json = argv.slice(2).includes('--json');
  const early = new Output({ json, stdout: io.stdout, stderr: io.stderr });
  let exitCode = 0;
  let out = early;

  const program = buildProgram(
    io,
    json,
    async (fn, command) => {
      const root = command.parent?.parent ?? command.parent ?? command;
      const backendGiven = root.getOptionValueSource('backend') === 'cli';
      const globals: GlobalOptions = { ...(command.optsWithGlobals() as GlobalOptions), backendGiven };
      const ctx = resolveContext(globals, io);
      out = ctx.out;
      const cacheKeep = await resolveCacheKeep(globals, io.env);
      exitCode = await fn(cacheKeep === undefined ? ctx : { ...ctx, cacheKeep });
    },
    async (fn) => {
      exitCode = await fn();
    },
  );

  try {
    await program.parseAsync([...argv]);
    return exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (COMMANDER_OK.has(e.code)) return 0;
      // `atelier` alone prints help to stderr (commander.help): no command given is invalid input.
      if (e.code === 'commander.help') return e.exitCode === 0 ? 0 : 2;
      if (json) early.error(new AtelierError('INVALID_ARGUMENT', e.message.replace(/^error: /, ''), { commander: e.code }));
      return 2;
    }
    return out.error(e);
  }
}
