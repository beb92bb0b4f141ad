/**
 * A streaming CSV reader (RFC 4180): comma separated, `"` quoted with `""` for a quote, quoted
 * fields may span lines, CRLF or LF line ends, a UTF-8 BOM is skipped. It is fed chunks and hands
 * back whole records, each with the line and column where every field starts, so errors can
 * point at a cell. Lenient where the RFC allows no doubt: a `"` inside an unquoted field is kept.
 */

/** One record: its fields and where each one starts (1-based). */
export interface CsvRecord {
  readonly fields: string[];
  /** Line of the record's first field. */
  readonly line: number;
  /** Start column of each field. */
  readonly columns: number[];
  /** Start line of each field (a quoted field before it may span lines). */
  readonly lines: number[];
}

/** A CSV syntax error, at a position. */
export class CsvSyntaxError extends Error {
  constructor(
    message: string,
    readonly line: number,
    readonly column: number,
  ) {
    super(message);
    this.name = 'CsvSyntaxError';
  }
}

// Parser states.
const FIELD_START = 0;
const UNQUOTED = 1;
const QUOTED = 2;
const QUOTE_IN_QUOTED = 3;
type State = 0 | 1 | 2 | 3;

export class CsvParser {
  private state: State = FIELD_START;
  private field = '';
  private fields: string[] = [];
  private columns: number[] = [];
  private lines: number[] = [];
  private line = 1;
  private column = 1;
  private recordLine = 1;
  private quoteLine = 1;
  private quoteColumn = 1;
  private pendingCR = false;
  private started = false;

  /** Feeds a chunk; returns the records it completed. */
  push(chunk: string): CsvRecord[] {
    const out: CsvRecord[] = [];
    let text = chunk;
    if (!this.started) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    for (let i = 0; i < text.length; i++) {
      const ch = text[i] as string;
      if (this.pendingCR) {
        this.pendingCR = false;
        if (ch === '\n') {
          // The second half of a CRLF: the line was counted at the CR.
          if (this.state === QUOTED) this.field += ch;
          continue;
        }
      }
      switch (this.state) {
        case FIELD_START:
          this.columns.push(this.column);
          this.lines.push(this.line);
          if (this.fields.length === 0) this.recordLine = this.line;
          if (ch === '"') {
            this.state = QUOTED;
            this.quoteLine = this.line;
            this.quoteColumn = this.column;
          } else if (ch === ',') {
            this.endField();
          } else if (ch === '\n' || ch === '\r') {
            this.endRecord(out);
            this.newline(ch);
            continue;
          } else {
            this.field += ch;
            this.state = UNQUOTED;
          }
          break;
        case UNQUOTED:
          if (ch === ',') this.endField();
          else if (ch === '\n' || ch === '\r') {
            this.endRecord(out);
            this.newline(ch);
            continue;
          } else this.field += ch;
          break;
        case QUOTED:
          if (ch === '"') this.state = QUOTE_IN_QUOTED;
          else {
            this.field += ch;
            if (ch === '\n' || ch === '\r') {
              this.newline(ch);
              continue;
            }
          }
          break;
        case QUOTE_IN_QUOTED:
          if (ch === '"') {
            this.field += '"';
            this.state = QUOTED;
          } else if (ch === ',') {
            this.endField();
          } else if (ch === '\n' || ch === '\r') {
            this.endRecord(out);
            this.newline(ch);
            continue;
          } else {
            throw new CsvSyntaxError(
              `unexpected ${JSON.stringify(ch)} after a closing quote (a quote inside a quoted field is written "")`,
              this.line,
              this.column,
            );
          }
          break;
      }
      this.column++;
    }
    return out;
  }

  /** Ends the input; returns the last record, if any. */
  end(): CsvRecord[] {
    if (this.state === QUOTED) {
      throw new CsvSyntaxError(
        'unterminated quoted field (no closing ")',
        this.quoteLine,
        this.quoteColumn,
      );
    }
    const out: CsvRecord[] = [];
    if (this.state !== FIELD_START || this.fields.length > 0) this.endRecord(out);
    return out;
  }

  private newline(ch: string): void {
    this.line++;
    this.column = 1;
    if (ch === '\r') this.pendingCR = true;
  }

  private endField(): void {
    this.fields.push(this.field);
    this.field = '';
    this.state = FIELD_START;
  }

  private endRecord(out: CsvRecord[]): void {
    if (this.columns.length <= this.fields.length) {
      // An empty last field at the end of the input: no character started it.
      this.columns.push(this.column);
      this.lines.push(this.line);
    }
    this.fields.push(this.field);
    const blank =
      this.fields.length === 1 && this.fields[0] === '' && this.state !== QUOTE_IN_QUOTED;
    if (!blank) {
      out.push({
        fields: this.fields,
        line: this.recordLine,
        columns: this.columns,
        lines: this.lines,
      });
    }
    this.field = '';
    this.fields = [];
    this.columns = [];
    this.lines = [];
    this.state = FIELD_START;
  }
}
