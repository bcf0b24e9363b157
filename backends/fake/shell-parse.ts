/**
 * Parser for the fake's shell subset (the subset itself is documented in `shell.ts`). The whole
 * script is parsed before anything runs, so a script using an unsupported construct fails with
 * exit 127 and changes nothing: a clear signal to whoever writes the hook that the fake cannot
 * model it, rather than a half-applied script that differs from what real `sh` would do.
 *
 * Words keep their quoting so expansion can happen when the command runs (an assignment on one
 * line is visible on the next), and so unquoted expansions can be field-split like `sh` does.
 *
 * @example
 * ```ts
 * const lists = parseScript('set -eu\necho "$HOME" > /tmp/x && true');
 * lists[1]!.first.words.length; // 2 (echo, "$HOME")
 * ```
 */

/** A piece of a word: literal text or a parameter expansion, and whether it was quoted. */
export type Segment =
  | { readonly kind: 'lit'; readonly text: string; readonly quoted: boolean }
  | { readonly kind: 'param'; readonly name: string; readonly op?: '%' | '%%' | '#' | '##' | ':-' | '-'; readonly arg?: string; readonly quoted: boolean };

export type Word = readonly Segment[];

export interface Redirect {
  readonly fd: 1 | 2;
  /** `>` truncate, `>>` append, `dup` (`>&2`, `2>&1`). */
  readonly op: '>' | '>>' | 'dup';
  readonly target: Word | 1 | 2;
}

export interface Command {
  readonly line: number;
  readonly words: readonly Word[];
  readonly redirects: readonly Redirect[];
}

/** `a && b || c`: run left to right, each link decided by the previous status. */
export interface AndOrList {
  readonly first: Command;
  readonly rest: ReadonlyArray<{ readonly op: '&&' | '||'; readonly cmd: Command }>;
}

/** A construct the fake's shell does not model; the interpreter reports it with exit 127. */
export class Unsupported extends Error {
  constructor(line: number, what: string) {
    super(`line ${line}: ${what} is not supported by the fake backend's shell (see backends/fake/shell.ts for the subset)`);
  }
}

type Token = { t: 'word'; w: Segment[] } | { t: 'op'; v: '&&' | '||' | ';' } | { t: 'redir'; r: Redirect };

const PARAM = /^[A-Za-z_][A-Za-z0-9_]*/;

/** Parse `$NAME` or `${NAME...}` starting at `s[i] === '$'`; returns the segment and the next index. */
function parseParam(s: string, i: number, quoted: boolean, line: number): [Segment, number] {
  if (s[i + 1] === '{') {
    const end = s.indexOf('}', i + 2);
    if (end < 0) throw new Unsupported(line, 'an unterminated ${');
    const body = s.slice(i + 2, end);
    const name = PARAM.exec(body)?.[0];
    if (!name) throw new Unsupported(line, `the expansion \${${body}}`);
    const tail = body.slice(name.length);
    if (tail === '') return [{ kind: 'param', name, quoted }, end + 1];
    const op = (['%%', '##', ':-', '%', '#', '-'] as const).find((o) => tail.startsWith(o));
    const arg = op ? tail.slice(op.length) : '';
    if (!op || /[$`*?[]/.test(arg)) throw new Unsupported(line, `the expansion \${${body}} (only literal %, %%, #, ##, - and :- are)`);
    return [{ kind: 'param', name, op, arg, quoted }, end + 1];
  }
  const name = PARAM.exec(s.slice(i + 1))?.[0];
  if (!name) throw new Unsupported(line, `"$${s[i + 1] ?? ''}" (only $NAME and \${NAME} expand)`);
  return [{ kind: 'param', name, quoted }, i + 1 + name.length];
}

/** Split one line into tokens. Returns null for a line ending inside quotes (continued below). */
function tokenize(s: string, line: number): Token[] | null {
  const out: Token[] = [];
  let word: Segment[] | null = null;
  const lit = (text: string, quoted: boolean) => {
    word ??= [];
    const last = word[word.length - 1];
    if (last?.kind === 'lit' && last.quoted === quoted) word[word.length - 1] = { kind: 'lit', text: last.text + text, quoted };
    else word.push({ kind: 'lit', text, quoted });
  };
  const endWord = () => {
    if (word) out.push({ t: 'word', w: word });
    word = null;
  };
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c === ' ' || c === '\t') { endWord(); i++; continue; }
    if (c === '#' && word === null) break;
    if (c === "'") {
      const end = s.indexOf("'", i + 1);
      if (end < 0) return null;
      lit(s.slice(i + 1, end), true);
      i = end + 1;
      continue;
    }
    if (c === '"') {
      word ??= [];
      lit('', true);
      i++;
      for (;;) {
        if (i >= s.length) return null;
        const d = s[i]!;
        if (d === '"') { i++; break; }
        if (d === '\\' && '"\\$`\n'.includes(s[i + 1] ?? '')) { lit(s[i + 1]!, true); i += 2; continue; }
        if (d === '`') throw new Unsupported(line, 'command substitution (`...`)');
        if (d === '$') {
          if (s[i + 1] === '(') throw new Unsupported(line, 'command substitution $(...)');
          const [seg, next] = parseParam(s, i, true, line);
          word.push(seg);
          i = next;
          continue;
        }
        lit(d, true);
        i++;
      }
      continue;
    }
    if (c === '\\') {
      if (i + 1 >= s.length) return null;
      lit(s[i + 1]!, true);
      i += 2;
      continue;
    }
    if (c === '$') {
      if (s[i + 1] === '(') throw new Unsupported(line, 'command substitution $(...)');
      const [seg, next] = parseParam(s, i, false, line);
      word ??= [];
      word.push(seg);
      i = next;
      continue;
    }
    if (s.startsWith('&&', i) || s.startsWith('||', i) || c === ';') {
      endWord();
      const v = c === ';' ? ';' : (s.slice(i, i + 2) as '&&' | '||');
      out.push({ t: 'op', v });
      i += v.length;
      continue;
    }
    // Redirections: [1|2]> [1|2]>> >&2 1>&2 2>&1, the fd digit only when it starts the word.
    const fdDigit = (c === '1' || c === '2') && word === null && s[i + 1] === '>';
    if (c === '>' || fdDigit) {
      endWord();
      const fd: 1 | 2 = fdDigit ? (c === '2' ? 2 : 1) : 1;
      let j = fdDigit ? i + 1 : i;
      if (s[j + 1] === '&') {
        const to = s[j + 2];
        if (to !== '1' && to !== '2') throw new Unsupported(line, `the redirection ${s.slice(i, j + 3)}`);
        out.push({ t: 'redir', r: { fd, op: 'dup', target: to === '1' ? 1 : 2 } });
        i = j + 3;
        continue;
      }
      const op: '>' | '>>' = s[j + 1] === '>' ? '>>' : '>';
      j += op.length;
      while (s[j] === ' ' || s[j] === '\t') j++;
      // The target is the next word: tokenize the rest and take its first token.
      const rest = tokenize(s.slice(j), line);
      if (rest === null) return null;
      const first = rest.shift();
      if (first?.t !== 'word') throw new Unsupported(line, `a redirection without a target`);
      out.push({ t: 'redir', r: { fd, op, target: first.w } }, ...rest);
      return out;
    }
    if ('|&<>()`'.includes(c)) throw new Unsupported(line, `"${c}" (pipes, background jobs, input redirection, subshells)`);
    if ((c === '*' || c === '?') ) throw new Unsupported(line, `the unquoted glob "${c}" (quote it)`);
    if (c === '~' && word === null) throw new Unsupported(line, 'tilde expansion');
    lit(c, false);
    i++;
  }
  endWord();
  return out;
}

/** Parse a whole script into and-or lists, in order. Throws `Unsupported`. */
export function parseScript(script: string): AndOrList[] {
  const lines = script.split('\n');
  const lists: AndOrList[] = [];
  for (let n = 0; n < lines.length; n++) {
    const lineNo = n + 1;
    let text = lines[n]!;
    let tokens = tokenize(text, lineNo);
    // A quote left open, or a trailing backslash, continues onto the next line as in sh.
    while (tokens === null) {
      if (++n >= lines.length) throw new Unsupported(lineNo, 'an unterminated quote');
      text = text.endsWith('\\') ? text.slice(0, -1) + lines[n] : `${text}\n${lines[n]}`;
      tokens = tokenize(text, lineNo);
    }
    let cmd: { words: Word[]; redirects: Redirect[] } = { words: [], redirects: [] };
    let list: { first?: Command; rest: Array<{ op: '&&' | '||'; cmd: Command }> } = { rest: [] };
    let pendingOp: '&&' | '||' | null = null;
    const closeCmd = () => {
      if (cmd.words.length === 0) {
        if (cmd.redirects.length > 0) throw new Unsupported(lineNo, 'a redirection without a command');
        return false;
      }
      const c: Command = { line: lineNo, ...cmd };
      if (!list.first) list.first = c;
      else list.rest.push({ op: pendingOp!, cmd: c });
      cmd = { words: [], redirects: [] };
      return true;
    };
    for (const tok of tokens) {
      if (tok.t === 'word') cmd.words.push(tok.w);
      else if (tok.t === 'redir') cmd.redirects.push(tok.r);
      else {
        if (!closeCmd()) throw new Unsupported(lineNo, `"${tok.v}" without a command before it`);
        if (tok.v === ';') {
          lists.push({ first: list.first!, rest: list.rest });
          list = { rest: [] };
          pendingOp = null;
        } else pendingOp = tok.v;
      }
    }
    const closed = closeCmd();
    if (!closed && pendingOp) throw new Unsupported(lineNo, `"${pendingOp}" at the end of a line (continue the list on one line)`);
    if (list.first) lists.push({ first: list.first, rest: list.rest });
  }
  return lists;
}
