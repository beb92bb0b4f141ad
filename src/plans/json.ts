/**
 * A JSON syntax checker that says where JSON text breaks. `JSON.parse` reports an offset for some
 * errors and none for others ("Unexpected token"), so on the error path we scan once ourselves.
 */

export interface JsonSyntaxError {
  /** Offset in the text. */
  readonly offset: number;
  readonly message: string;
}

class Fail {
  constructor(
    readonly offset: number,
    readonly message: string,
  ) {}
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

function describe(text: string, i: number): string {
  return i >= text.length ? 'end of input' : JSON.stringify(text[i]);
}

/**
 * Returns the first syntax error in `text`, or undefined if it is valid JSON. `onElement` is
 * called with the offset of each element of a top-level array (to locate cases in a JSON file).
 */
export function findJsonSyntaxError(
  text: string,
  onElement?: (offset: number) => void,
): JsonSyntaxError | undefined {
  let i = 0;
  let depth = 0;
  const ws = (): void => {
    while (
      i < text.length &&
      (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')
    )
      i++;
  };
  const expect = (what: string): never => {
    throw new Fail(i, `expected ${what}, found ${describe(text, i)}`);
  };
  const string = (): void => {
    const start = i;
    i++;
    while (i < text.length) {
      const ch = text[i];
      if (ch === '"') {
        i++;
        return;
      }
      if (ch === '\\') {
        const esc = text[i + 1];
        if (esc === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
            throw new Fail(i, 'invalid \\u escape in a string');
          }
          i += 6;
        } else if (esc !== undefined && '"\\/bfnrt'.includes(esc)) i += 2;
        else throw new Fail(i, 'invalid escape in a string');
      } else if (ch !== undefined && ch < ' ') {
        throw new Fail(i, 'control character in a string');
      } else i++;
    }
    throw new Fail(start, 'unterminated string');
  };
  const value = (): void => {
    ws();
    if (depth === 1 && onElement !== undefined) onElement(i);
    const ch = text[i];
    if (ch === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      depth += 2;
      for (;;) {
        ws();
        if (text[i] !== '"') expect('a double-quoted property name');
        string();
        ws();
        if (text[i] !== ':') expect("':'");
        i++;
        value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          depth -= 2;
          return;
        }
        expect("',' or '}'");
      }
    }
    if (ch === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      depth++;
      for (;;) {
        value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          depth--;
          return;
        }
        expect("',' or ']'");
      }
    }
    if (ch === '"') {
      string();
      return;
    }
    for (const word of ['true', 'false', 'null']) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return;
      }
    }
    NUMBER.lastIndex = i;
    if (NUMBER.test(text)) {
      i = NUMBER.lastIndex;
      return;
    }
    expect('a JSON value');
  };
  try {
    value();
    ws();
    if (i < text.length) expect('end of input');
    return undefined;
  } catch (e) {
    if (e instanceof Fail) return { offset: e.offset, message: e.message };
    throw e;
  }
}

/** Maps offsets to 1-based line and column (an index of line starts, then binary search). */
export function lineIndex(text: string): (offset: number) => { line: number; column: number } {
  const starts = [0];
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  return (offset) => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((starts[mid] ?? 0) <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - (starts[lo] ?? 0) + 1 };
  };
}
