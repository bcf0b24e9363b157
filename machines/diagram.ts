/**
 * Mermaid state diagrams drawn from the charts' own definitions (`machine.root`), so the pictures
 * in `machines/README.md` are the logic, not a sketch of it. `npm run diagrams` writes them there;
 * `test/machines/diagram.test.ts` fails when the README and the definitions differ.
 *
 * Each transition is one arrow labelled `event [guard] / actions`; a transition that stays where it
 * is (a retried step, a refused command) is an arrow back to its own state. Compound states are
 * drawn as boxes; a parallel chart's regions as boxes side by side.
 *
 * @example
 * ```ts
 * mermaidOf(containerMachine); // 'stateDiagram-v2\n  [*] --> absent\n  absent --> created : create\n  ...'
 * ```
 */
import type { AnyStateMachine } from 'xstate';
import { containerMachine } from './container.ts';
import { layerMachine } from './layer.ts';
import { workshopMachine } from './workshop.ts';

/** The charts, by the name their README markers use. */
export const CHARTS: Readonly<Record<string, AnyStateMachine>> = { workshop: workshopMachine, layer: layerMachine, container: containerMachine };

/** The parts of an xstate state node this file reads. */
interface Node {
  readonly id: string;
  readonly key: string;
  readonly type: string;
  readonly states: Record<string, Node>;
  readonly initial?: { readonly target: readonly Node[] } | undefined;
  readonly transitions: Map<string, readonly Transition[]>;
}
interface Transition {
  readonly guard?: unknown;
  readonly target?: readonly Node[] | undefined;
  readonly actions: readonly unknown[];
}

const idOf = (n: Node, root: Node): string => (n === root ? '[*]' : n.id.split('.').slice(1).join('_').replace(/[^A-Za-z0-9_]/g, '_'));

/** An action's name, with its short constant params (a rejection's code, a table row's decision and row). */
function actionName(a: unknown): string {
  if (typeof a === 'string') return a;
  const t = (a as { type?: unknown }).type;
  const name = typeof t === 'string' ? t : 'action';
  const params = (a as { params?: unknown }).params;
  if (!params || typeof params !== 'object') return name;
  const shown = Object.values(params).filter((v): v is string => typeof v === 'string' && v.length <= 24);
  return shown.length ? `${name}(${shown.join(', ')})` : name;
}

/** A guard as written: its name, or `and`/`or`/`not` of names (xstate's combinators keep their parts in `guards`). */
function guardName(g: unknown): string | null {
  if (g === undefined || g === null) return null;
  if (typeof g === 'string') return g;
  const parts = (g as { guards?: unknown[] }).guards;
  const kind = (g as { name?: string }).name;
  if (Array.isArray(parts) && (kind === 'and' || kind === 'or')) return parts.map((p) => guardName(p)).join(kind === 'and' ? ' && ' : ' || ');
  if (Array.isArray(parts) && kind === 'not') return `!${guardName(parts[0])}`;
  const t = (g as { type?: unknown }).type;
  return typeof t === 'string' ? t : 'guard';
}

function label(event: string, t: Transition): string {
  const guard = guardName(t.guard);
  const actions = t.actions.map(actionName);
  return `${event}${guard ? ` [${guard}]` : ''}${actions.length ? ` / ${actions.join(', ')}` : ''}`;
}

function declare(n: Node, root: Node, indent: string, out: string[]): void {
  const children = Object.values(n.states);
  if (n !== root) {
    if (children.length === 0) {
      out.push(`${indent}state "${n.key}" as ${idOf(n, root)}`);
      return;
    }
    out.push(`${indent}state "${n.key}" as ${idOf(n, root)} {`);
  }
  const inner = n === root ? indent : `${indent}  `;
  const first = n.initial?.target[0];
  if (first && n.type !== 'parallel') out.push(`${inner}[*] --> ${idOf(first, root)}`);
  for (const c of children) declare(c, root, inner, out);
  if (n !== root) out.push(`${indent}}`);
}

function arrows(n: Node, root: Node, out: string[]): void {
  for (const [event, list] of n.transitions) {
    for (const t of list) {
      const from = n === root ? null : idOf(n, root);
      const to = t.target?.[0] ? idOf(t.target[0], root) : from;
      // A transition of the chart's root applies in every state: drawn from each top-level state.
      const sources = from === null ? Object.values(root.states).map((c) => idOf(c, root)) : [from];
      for (const s of sources) out.push(`  ${s} --> ${to ?? s} : ${label(event, t)}`);
    }
  }
  for (const c of Object.values(n.states)) arrows(c, root, out);
}

/** A chart as a Mermaid `stateDiagram-v2`, every state and guarded transition from its definition. */
export function mermaidOf(machine: AnyStateMachine): string {
  const root = machine.root as unknown as Node;
  const out = ['stateDiagram-v2'];
  declare(root, root, '  ', out);
  arrows(root, root, out);
  return out.join('\n');
}

/**
 * `readme` with the text between each `<!-- diagram:NAME -->` and `<!-- /diagram:NAME -->` replaced
 * by chart NAME's diagram in a fenced `mermaid` block. A marker naming no chart is an error.
 */
export function drawInto(readme: string, charts: Readonly<Record<string, AnyStateMachine>> = CHARTS): string {
  return readme.replace(/(<!-- diagram:([a-z-]+) -->\n)[\s\S]*?(<!-- \/diagram:\2 -->)/g, (_m, open: string, name: string, close: string) => {
    const chart = charts[name];
    if (!chart) throw new Error(`machines/README.md names a chart "${name}" that does not exist`);
    return `${open}\`\`\`mermaid\n${mermaidOf(chart)}\n\`\`\`\n${close}`;
  });
}
