/**
 * The journal as a stream with a cursor: every record after a given one, read from disk, then the
 * live ones as they are appended, with no gap and no duplicate. Two journals, two cursors: the
 * durable journal's records (`journal: 'durable'`) and the volatile journal's (transient
 * containers, `journal: 'volatile'`), whose sequence numbers are their own.
 *
 * No gap: the live subscription starts before the history is read, and a record is published only
 * after the append that wrote it resolved, so a record is either on disk when the read starts or
 * published after it. No duplicate: a record at or before the cursor of its journal is dropped.
 * A volatile cursor beyond the volatile journal's end means the journal was emptied (a reboot
 * wiped the run directory): the stream starts that journal again from its first record.
 *
 * @example
 * ```ts
 * engine.eventsAfter({ after: 120, volatileAfter: 7 }).subscribe((e) => console.log(e.journal, e.seq, e.type));
 * ```
 */
import { Observable } from 'rxjs';
import type { JournalRecord } from '../events/catalogue.ts';
import type { EventCursor, JournalEvent } from './api.ts';

/** Where the history comes from: each journal's records from a sequence number on, and where it ends now. */
export interface EventSources {
  readonly live$: Observable<JournalEvent>;
  readonly durable: { readonly lastSeq: number; readAll(fromSeq: number): AsyncIterable<JournalRecord> };
  readonly volatile: { readonly lastSeq: number; readAll(fromSeq: number): AsyncIterable<JournalRecord> };
}

/** `onLive` is called once the history is read and the stream goes on with live records. */
export function eventsAfter(src: EventSources, cursor: EventCursor = {}, onLive?: () => void): Observable<JournalEvent> {
  return new Observable<JournalEvent>((sub) => {
    const last = { durable: cursor.after ?? 0, volatile: cursor.volatileAfter ?? 0 };
    if (last.volatile > src.volatile.lastSeq) last.volatile = 0;
    let replaying = true;
    const queue: JournalEvent[] = [];
    const emit = (e: JournalEvent): void => {
      if (e.seq <= last[e.journal]) return;
      last[e.journal] = e.seq;
      sub.next(e);
    };
    const live = src.live$.subscribe({
      next: (e) => (replaying ? queue.push(e) : emit(e)),
      error: (err) => sub.error(err),
      complete: () => {
        if (!replaying) sub.complete();
      },
    });
    let closed = false;
    void (async () => {
      try {
        for await (const r of src.durable.readAll(last.durable + 1)) {
          if (closed) return;
          emit({ ...r, journal: 'durable' });
        }
        for await (const r of src.volatile.readAll(last.volatile + 1)) {
          if (closed) return;
          emit({ ...r, journal: 'volatile' });
        }
        replaying = false;
        for (const e of queue.splice(0)) emit(e);
        onLive?.();
        if (live.closed) sub.complete();
      } catch (err) {
        sub.error(err);
      }
    })();
    return () => {
      closed = true;
      live.unsubscribe();
    };
  });
}
