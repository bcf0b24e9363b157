/**
 * The timeline's lanes: one for the engine (reconciliations, gc), one per workshop (its ops), and
 * one per backend object an op touched (the workshop's instance, each SDK layer, each stash and
 * stash copy) or transient container, grouped under the workshop they belong to.
 *
 * Lanes are registered as records name them, then ordered once: the engine first, then each
 * workshop in the order it first appears with its objects (instance, layers, stashes, stash
 * copies, containers, each in order of appearance), then objects no workshop claims.
 *
 * @example
 * ```ts
 * const lanes = new LaneBook();
 * lanes.workshop('nav2');                                   // 'workshop:nav2'
 * lanes.object({ space: 'layers', name: 'ros2-0123456789abcdef' }, { kind: 'sdk', workshop: 'nav2' });
 * const { lanes: ordered, index } = lanes.finish();          // ordered[index.get('workshop:nav2')].label === 'workshop nav2'
 * ```
 */
import type { ObjectKind, ObjectRef } from '../../machines/index.ts';

/** What a lane shows. `stash-copy` is a stash's copy of an SDK layer (kind `stash-sdk`). */
export type LaneKind = 'engine' | 'workshop' | 'instance' | 'layer' | 'stash' | 'stash-copy' | 'container' | 'object';

export interface Lane {
  /** Stable id, the kind and the name: `engine`, `workshop:nav2`, `layer:ros2-…`, `container:c4`. */
  readonly id: string;
  readonly kind: LaneKind;
  /** The workshop's, object's or container's name (`engine` for the engine). */
  readonly name: string;
  /** What the lane's label says: `workshop nav2`, `layer ros2-0123456789abcdef`. */
  readonly label: string;
  /** The workshop the lane belongs to (null: the engine, or an object nobody claims). */
  readonly group: string | null;
  /** A sentence for the label's tooltip. */
  readonly title: string;
}

const KIND_OF: Record<ObjectKind, LaneKind> = { workshop: 'instance', container: 'container', sdk: 'layer', stash: 'stash', 'stash-sdk': 'stash-copy' };

/**
 * Each kind's word and tooltip, as templates the page fills too (it gets these, not 8,000 titles):
 * `{name}`, and `{of}` replaced by `of` (with `{group}`) when the lane has a workshop.
 */
export const LANE_WORDS: Record<LaneKind, { readonly word: string; readonly title: string; readonly of: string }> = {
  engine: { word: 'engine: reconciliation, gc', title: 'the engine: reconciliations at start-up (and on demand) and gc, which affect every workshop', of: '' },
  workshop: { word: 'workshop', title: 'workshop {name}: each bar is one operation (launch, refresh, stash, ...), from the record of its intent to the record of its outcome', of: '' },
  instance: { word: 'instance', title: 'the container instance {name}{of}: the backend object the workshop runs in', of: ' of workshop {group}' },
  layer: { word: 'layer', title: "SDK layer {name}{of}: a frozen snapshot taken after an SDK's setup-base", of: ' of workshop {group}' },
  stash: { word: 'stash', title: 'stash {name}{of}: a copy of the workshop kept while it is rebuilt (or on purpose), to undo from', of: ' of workshop {group}' },
  'stash-copy': { word: 'stash copy', title: "stash copy {name}{of}: a stash's copy of one SDK layer", of: ' of workshop {group}' },
  container: { word: 'container', title: 'transient container {name}{of} (atelier run; recorded in the volatile journal)', of: ' run from workshop {group}' },
  object: { word: 'object', title: 'backend object {name}', of: '' },
};

/** A lane's label and title from its kind, name and group (the page does the same). */
export function laneWords(kind: LaneKind, name: string, group: string | null): { label: string; title: string } {
  const w = LANE_WORDS[kind];
  const of = group ? w.of.replace('{group}', group) : '';
  return { label: kind === 'engine' ? w.word : `${w.word} ${name}`, title: w.title.replace('{name}', name).replace('{of}', of) };
}

/** Order of the kinds within a workshop's group. */
const RANK: Record<LaneKind, number> = { engine: 0, workshop: 1, instance: 2, layer: 3, stash: 4, 'stash-copy': 5, container: 6, object: 7 };

interface Entry {
  id: string;
  kind: LaneKind;
  name: string;
  group: string | null;
  /** Order of first appearance. */
  order: number;
}

/** Guess what an object is from its name when no record said (a remove of an unknown object). */
function guessKind(ref: ObjectRef): LaneKind {
  if (ref.space === 'workshops') return ref.name.startsWith('run-') ? 'container' : 'instance';
  return ref.name.startsWith('stash-') ? 'stash' : 'layer';
}

export class LaneBook {
  private readonly entries = new Map<string, Entry>();
  private readonly workshopOrder: string[] = [];

  constructor() {
    this.add('engine', 'engine', 'engine', null);
  }

  private add(id: string, kind: LaneKind, name: string, group: string | null): Entry {
    let e = this.entries.get(id);
    if (!e) {
      e = { id, kind, name, group, order: this.entries.size };
      this.entries.set(id, e);
      if (group !== null && !this.workshopOrder.includes(group)) this.workshopOrder.push(group);
    }
    return e;
  }

  /** The lane of a workshop's ops. */
  workshop(name: string): string {
    if (!this.workshopOrder.includes(name)) this.workshopOrder.push(name);
    return this.add(`workshop:${name}`, 'workshop', name, name).id;
  }

  /**
   * The lane of a backend object. What is known of it (`kind`, `workshop`) may arrive later than
   * the object: a later call with better knowledge fills what the first one lacked.
   */
  object(ref: ObjectRef, know: { kind?: ObjectKind | undefined; workshop?: string | undefined } = {}): string {
    const id = `object:${ref.space}/${ref.name}`;
    const kind = know.kind ? KIND_OF[know.kind] : guessKind(ref);
    const e = this.add(id, kind, ref.name, know.workshop ?? null);
    if (know.kind) e.kind = kind;
    if (e.group === null && know.workshop) {
      e.group = know.workshop;
      if (!this.workshopOrder.includes(know.workshop)) this.workshopOrder.push(know.workshop);
    }
    return id;
  }

  /** The lane of a transient container (named by its id), grouped under its source's workshop. */
  container(id: string, workshop: string | null): string {
    return this.add(`container:${id}`, 'container', id, workshop).id;
  }

  /** The workshop an object lane belongs to, if known. */
  groupOf(laneId: string): string | null {
    return this.entries.get(laneId)?.group ?? null;
  }

  has(laneId: string): boolean {
    return this.entries.has(laneId);
  }

  /** The lanes in display order, and the index in it of each id this book handed out. */
  finish(): { lanes: Lane[]; index: Map<string, number> } {
    const all = [...this.entries.values()];
    const groupRank = new Map(this.workshopOrder.map((w, i) => [w, i]));
    const rank = (e: Entry) => (e.kind === 'engine' ? -1 : e.group === null ? this.workshopOrder.length : groupRank.get(e.group)!);
    all.sort((a, b) => rank(a) - rank(b) || RANK[a.kind] - RANK[b.kind] || a.order - b.order);
    const lanes = all.map((e): Lane => ({ id: e.kind === 'engine' ? 'engine' : `${e.kind}:${e.name}`, kind: e.kind, name: e.name, group: e.group, ...laneWords(e.kind, e.name, e.group) }));
    const index = new Map(all.map((e, i) => [e.id, i]));
    return { lanes, index };
  }
}
