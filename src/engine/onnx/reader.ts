/**
 * Streaming ONNX reader: a ModelProto parsed from a random-access `ByteSource` through a small
 * buffered window, never from one buffer holding the file.
 *
 * Why hand-written: general protobuf decoders (protobufjs, onnx-proto) need the whole message in
 * memory and copy every `raw_data`; the Phi-3 web `.onnx` is ~838 MB with its weights inline. Here
 * a `TensorProto.raw_data` is recorded as an absolute `{offset, length}` and skipped unread, so a
 * scan of that file reads a few megabytes. Field numbers are those of onnx.proto (see
 * node_modules/onnx-proto/dist/onnx.js, generated from onnx v1.10.2).
 *
 * Rules a contributor could break:
 * - Every input byte is untrusted. Each length is checked against its enclosing message and the
 *   source size before anything is read or allocated, and every loop consumes at least one byte.
 * - Malformed input throws `AppError` (ONNX_TRUNCATED / ONNX_MALFORMED / ONNX_UNSUPPORTED) with the
 *   byte offset and field path; never a bare exception. The malformed-input tests enforce this.
 * - No single `source.read` is larger than the window; large fields are skipped, not buffered.
 */
import { AppError } from '../errors';
import { dtypeByteSize, elementCount, tensorByteLength } from './tensor-data';
import {
  OnnxDataType,
  type ByteSource,
  type OnnxAttributeValue,
  type OnnxGraph,
  type OnnxModel,
  type OnnxNode,
  type OnnxTensorInfo,
  type OnnxValueInfo,
  type TensorLocation,
} from './types';

export interface ReadOnnxOptions {
  /** Largest single read from the source, in bytes (default 1 MiB, at least 64). */
  windowBytes?: number;
}

const DEFAULT_WINDOW = 1 << 20;
const MIN_WINDOW = 64;
/** First read after a jump (a skipped raw_data): tensor headers are small, the next skip is near. */
const FIRST_READ = 4096;
/** Enough for any tag (≤ 10 bytes) plus a varint (≤ 10) or a fixed64 value. */
const HEADER_BYTES = 20;
/** Message nesting limit (graph → node → attribute → graph … uses 3 levels per subgraph). */
const MAX_DEPTH = 100;
/** Largest field held in memory: strings, packed numbers, typed tensor data. */
const MAX_IN_MEMORY_FIELD = 64 << 20;
/**
 * What one parse may build, so that a hostile file of millions of tiny messages cannot exhaust
 * memory: a message costs MESSAGE_COST units, a list element or string 1. Phi-3 needs ~0.2M.
 */
const ITEM_BUDGET = 32 << 20;
const MESSAGE_COST = 16;

const WT_VARINT = 0;
const WT_I64 = 1;
const WT_LEN = 2;
const WT_I32 = 5;
const TWO_32 = 4294967296;

const REDOWNLOAD = 'The file is probably corrupted or incompletely downloaded; delete it and download the model again.';

const utf8 = new TextDecoder('utf-8');

/** A read position over a source, with a buffered window around it. All offsets are absolute. */
class Cursor {
  private buf = new Uint8Array(0);
  private dv = new DataView(this.buf.buffer);
  private bufStart = 0;
  private readAhead: number;
  pos = 0;
  /** The last varint, as two unsigned 32-bit halves. */
  lo = 0;
  hi = 0;
  /** The last tag. */
  field = 0;
  wire = 0;
  private readonly path: string[] = [];
  private budget = ITEM_BUDGET;

  constructor(
    private readonly source: ByteSource,
    readonly size: number,
    private readonly window: number,
  ) {
    this.readAhead = Math.min(FIRST_READ, window);
  }

  // ---- errors -------------------------------------------------------------------------------

  where(): string {
    return this.path.length ? this.path.join(' > ') : 'ModelProto';
  }

  malformed(detail: string, at = this.pos): AppError {
    return new AppError('ONNX_MALFORMED', `The ONNX file is malformed at byte ${at} (${this.where()}): ${detail}. ${REDOWNLOAD}`);
  }

  truncated(detail: string): AppError {
    return new AppError(
      'ONNX_TRUNCATED',
      `The ONNX file ends early: it has ${this.size} bytes, but ${detail} (${this.where()}). ` +
        'The download is incomplete; delete the file and download the model again.',
    );
  }

  /**
   * A read of `what` ran past `end`. Only the top-level message ends where the file ends; a nested
   * message's length was checked against the file, so running past it is malformed, not truncated.
   */
  overrun(end: number, what: string): AppError {
    return end >= this.size && this.path.length === 0
      ? this.truncated(`${what} at byte ${this.pos} continues past the end of the file`)
      : this.malformed(`${what} runs past the end of its enclosing message (byte ${end})`);
  }

  enter(label: string): void {
    this.path.push(label);
    if (this.path.length > MAX_DEPTH) throw this.malformed(`messages are nested more than ${MAX_DEPTH} deep`);
  }

  leave(): void {
    this.path.pop();
  }

  /** Charges `units` against the item budget (see ITEM_BUDGET). */
  spend(units: number): void {
    this.budget -= units;
    if (this.budget < 0) {
      throw new AppError(
        'ONNX_UNSUPPORTED',
        `The ONNX file holds more messages and list entries than this app accepts (at byte ${this.pos}, ${this.where()}); ` +
          'it is either corrupted or not a language model this app can run.',
      );
    }
  }

  // ---- buffering ----------------------------------------------------------------------------

  /** True when [pos, pos + n) is buffered. */
  has(n: number): boolean {
    return this.pos >= this.bufStart && this.pos + n <= this.bufStart + this.buf.length;
  }

  /** Buffers [pos, pos + n). The caller has checked pos + n <= size. Reads at most `window` at a time. */
  async ensure(n: number): Promise<void> {
    if (this.has(n)) return;
    const bufEnd = this.bufStart + this.buf.length;
    let keep: Uint8Array;
    let from: number;
    if (this.pos >= this.bufStart && this.pos < bufEnd) {
      keep = this.buf.subarray(this.pos - this.bufStart);
      from = bufEnd;
    } else {
      // A jump past the buffer (a skipped raw_data): start small again.
      keep = new Uint8Array(0);
      from = this.pos;
      this.readAhead = Math.min(FIRST_READ, this.window);
    }
    let want = Math.min(Math.max(this.pos + n - from, this.readAhead), this.size - from);
    const out = new Uint8Array(keep.length + want);
    out.set(keep);
    let filled = keep.length;
    while (want > 0) {
      const len = Math.min(want, this.window);
      const chunk = await this.source.read(from, len);
      if (chunk.byteLength !== len) {
        throw this.truncated(`reading ${len} bytes at byte ${from} returned ${chunk.byteLength}`);
      }
      out.set(chunk, filled);
      filled += len;
      from += len;
      want -= len;
    }
    this.buf = out;
    this.dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
    this.bufStart = this.pos;
    this.readAhead = Math.min(this.readAhead * 2, this.window);
  }

  /** Buffers the next field's tag and, for non-length-delimited fields, its value. */
  async fillHeader(end: number): Promise<void> {
    await this.ensure(Math.min(HEADER_BYTES, end - this.pos));
  }

  // ---- primitives (synchronous: the bytes are buffered) ------------------------------------

  /** Reads a varint of up to 10 bytes into lo/hi, not past `end`. */
  varint(end: number, what: string): void {
    const buf = this.buf;
    const start = this.pos - this.bufStart;
    let i = start;
    const limit = Math.min(end, this.bufStart + buf.length) - this.bufStart;
    let lo = 0;
    let hi = 0;
    for (let k = 0; ; k++) {
      if (i >= limit) {
        this.pos = this.bufStart + start;
        throw this.overrun(end, `varint ${what}`);
      }
      const b = buf[i++];
      if (k < 4) lo |= (b & 0x7f) << (7 * k);
      else if (k === 4) {
        lo |= (b & 0x7f) << 28;
        hi = (b & 0x7f) >> 4;
      } else if (k < 9) hi |= (b & 0x7f) << (7 * k - 32);
      else {
        if (b > 1) {
          this.pos = this.bufStart + start;
          throw this.malformed(`varint ${what} is longer than 64 bits`);
        }
        hi |= b << 31;
      }
      if (b < 0x80) break;
    }
    this.lo = lo >>> 0;
    this.hi = hi >>> 0;
    this.pos = this.bufStart + i;
  }

  /** The last varint as an unsigned number; throws if above 2^53. */
  unsignedNumber(what: string): number {
    if (this.hi > 0x1fffff) throw this.malformed(`${what} ${this.hi * TWO_32 + this.lo} is too large`);
    return this.hi * TWO_32 + this.lo;
  }

  /** The last varint as a signed int64 (exact up to ±2^53, rounded beyond, e.g. INT64_MAX in Slice). */
  signedNumber(): number {
    if (this.hi & 0x80000000) {
      const nlo = (~this.lo + 1) >>> 0;
      const nhi = (~this.hi + (nlo === 0 ? 1 : 0)) >>> 0;
      return -(nhi * TWO_32 + nlo);
    }
    return this.hi * TWO_32 + this.lo;
  }

  readTag(end: number): void {
    const at = this.pos;
    this.varint(end, 'tag');
    const field = this.lo >>> 3;
    if (this.hi !== 0 || field === 0) throw this.malformed(`invalid field tag ${this.signedNumber()}`, at);
    this.field = field;
    this.wire = this.lo & 7;
  }

  /** Reads a length prefix and returns the absolute end of the payload, checked against `end` and the file. */
  lenEnd(end: number, what: string): number {
    this.varint(end, `length of ${what}`);
    const len = this.unsignedNumber(`length of ${what}`);
    const payloadEnd = this.pos + len;
    if (payloadEnd > end && (end < this.size || this.path.length > 0)) {
      throw this.malformed(`${what} has length ${len}, past the end of its enclosing message (byte ${end})`);
    }
    if (payloadEnd > this.size) {
      throw this.truncated(`${what} at byte ${this.pos} declares ${len} bytes, up to byte ${payloadEnd}`);
    }
    return payloadEnd;
  }

  float32(end: number, what: string): number {
    if (this.pos + 4 > end || !this.has(4)) throw this.overrun(end, what);
    const v = this.dv.getFloat32(this.pos - this.bufStart, true);
    this.pos += 4;
    return v;
  }

  /** The buffered bytes [pos, pos + n) as a view (valid until the next ensure replaces the buffer). */
  view(n: number): Uint8Array {
    const i = this.pos - this.bufStart;
    return this.buf.subarray(i, i + n);
  }

  float32At(pos: number): number {
    return this.dv.getFloat32(pos - this.bufStart, true);
  }

  // ---- fields --------------------------------------------------------------------------------

  expectWire(expected: number, what: string): void {
    if (this.wire !== expected) {
      throw this.malformed(`field ${what} has wire type ${this.wire}, expected ${expected}`);
    }
  }

  /** Skips the payload of the field whose tag was just read. */
  skipField(end: number): void {
    switch (this.wire) {
      case WT_VARINT:
        this.varint(end, `field ${this.field}`);
        return;
      case WT_I64:
        if (this.pos + 8 > end) throw this.overrun(end, `fixed64 field ${this.field}`);
        this.pos += 8;
        return;
      case WT_LEN:
        this.pos = this.lenEnd(end, `field ${this.field}`);
        return;
      case WT_I32:
        if (this.pos + 4 > end) throw this.overrun(end, `fixed32 field ${this.field}`);
        this.pos += 4;
        return;
      default:
        throw this.malformed(`field ${this.field} has wire type ${this.wire}, which ONNX never uses`);
    }
  }

  /** A length-delimited field, buffered whole (for strings and packed numbers). Returns its end. */
  async loadLen(end: number, what: string): Promise<number> {
    const payloadEnd = this.lenEnd(end, what);
    const len = payloadEnd - this.pos;
    if (len > MAX_IN_MEMORY_FIELD) {
      throw new AppError(
        'ONNX_UNSUPPORTED',
        `${what} at byte ${this.pos} (${this.where()}) is ${len} bytes; fields over ${MAX_IN_MEMORY_FIELD} bytes are ` +
          'only supported as tensor raw_data or external data. If the model is not corrupted, re-export it with raw_data.',
      );
    }
    await this.ensure(len);
    return payloadEnd;
  }

  async string(end: number, what: string): Promise<string> {
    this.expectWire(WT_LEN, what);
    const payloadEnd = await this.loadLen(end, what);
    this.spend(1);
    const s = utf8.decode(this.view(payloadEnd - this.pos));
    this.pos = payloadEnd;
    return s;
  }

  int64(end: number, what: string): number {
    this.expectWire(WT_VARINT, what);
    this.varint(end, what);
    return this.signedNumber();
  }

  int32(end: number, what: string): number {
    this.expectWire(WT_VARINT, what);
    this.varint(end, what);
    return this.lo | 0;
  }

  /** A repeated varint field, packed or not, appended to `out` as signed int64 numbers. */
  async int64s(end: number, what: string, out: number[]): Promise<void> {
    if (this.wire === WT_VARINT) {
      this.spend(1);
      this.varint(end, what);
      out.push(this.signedNumber());
      return;
    }
    this.expectWire(WT_LEN, what);
    const payloadEnd = await this.loadLen(end, what);
    this.spend(payloadEnd - this.pos); // at most one element per byte
    while (this.pos < payloadEnd) {
      this.varint(payloadEnd, what);
      out.push(this.signedNumber());
    }
  }

  /** A repeated float field, packed or not, appended to `out`. */
  async float32s(end: number, what: string, out: number[]): Promise<void> {
    if (this.wire === WT_I32) {
      this.spend(1);
      out.push(this.float32(end, what));
      return;
    }
    this.expectWire(WT_LEN, what);
    const payloadEnd = await this.loadLen(end, what);
    if ((payloadEnd - this.pos) % 4 !== 0) throw this.malformed(`packed ${what} length is not a multiple of 4`);
    this.spend((payloadEnd - this.pos) / 4);
    for (; this.pos < payloadEnd; this.pos += 4) out.push(this.float32At(this.pos));
  }

  /** Nested message: checks the wire type, tracks the path, and parses up to its end. */
  async message<T>(end: number, label: string, parse: (end: number) => Promise<T>): Promise<T> {
    this.expectWire(WT_LEN, label);
    const payloadEnd = this.lenEnd(end, label);
    this.spend(MESSAGE_COST);
    this.enter(label);
    const value = await parse(payloadEnd);
    this.leave();
    return value;
  }

  /**
   * Calls `onField` for each field up to `end`. The handler consumes the field's payload and returns
   * true (handled), false (unknown: skipped here), or a promise (handled asynchronously).
   */
  async fields(end: number, onField: (field: number) => boolean | Promise<void>): Promise<void> {
    while (this.pos < end) {
      if (!this.has(Math.min(HEADER_BYTES, end - this.pos))) await this.fillHeader(end);
      this.readTag(end);
      const handled = onField(this.field);
      if (handled === false) this.skipField(end);
      else if (handled !== true) await handled;
    }
    if (this.pos !== end) throw this.malformed(`message fields overran its end at byte ${end}`);
  }
}

// ---- typed tensor data ------------------------------------------------------------------------

/** Typed-field payload of a TensorProto, kept in wire form until the dtype is known. */
class TypedData {
  /** Varints (int32_data, int64_data, uint64_data) as lo/hi pairs. */
  words = new Uint32Array(64);
  wordCount = 0;
  /** Fixed-width values (float_data, double_data) as their little-endian bytes. */
  bytes = new Uint8Array(0);
  byteCount = 0;
  /** Which field the data came from (4 float, 5 int32, 7 int64, 10 double, 11 uint64). */
  fields = new Set<number>();

  get total(): number {
    return this.wordCount * 4 + this.byteCount;
  }

  pushWord(lo: number, hi: number): void {
    if (this.wordCount + 2 > this.words.length) {
      const grown = new Uint32Array(this.words.length * 2);
      grown.set(this.words);
      this.words = grown;
    }
    this.words[this.wordCount++] = lo;
    this.words[this.wordCount++] = hi;
  }

  pushBytes(src: Uint8Array): void {
    if (this.byteCount + src.length > this.bytes.length) {
      const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.byteCount + src.length, 64));
      grown.set(this.bytes.subarray(0, this.byteCount));
      this.bytes = grown;
    }
    this.bytes.set(src, this.byteCount);
    this.byteCount += src.length;
  }
}

/** Which typed field holds each dtype (onnx.proto TensorProto comments). */
function typedFieldFor(dataType: number): number {
  switch (dataType) {
    case OnnxDataType.FLOAT:
    case OnnxDataType.COMPLEX64:
      return 4;
    case OnnxDataType.DOUBLE:
    case OnnxDataType.COMPLEX128:
      return 10;
    case OnnxDataType.INT64:
      return 7;
    case OnnxDataType.UINT32:
    case OnnxDataType.UINT64:
      return 11;
    case OnnxDataType.STRING:
      return 6;
    default:
      return 5; // int32_data: INT32, INT16, INT8, UINT16, UINT8, BOOL, FLOAT16, BFLOAT16, FLOAT8*
  }
}

const TYPED_FIELD_NAMES: Record<number, string> = {
  4: 'float_data',
  5: 'int32_data',
  6: 'string_data',
  7: 'int64_data',
  10: 'double_data',
  11: 'uint64_data',
};

/** Converts typed-field data to little-endian bytes in the tensor's dtype. */
function typedBytes(data: TypedData, dataType: number, fail: (detail: string) => AppError): Uint8Array {
  const field = typedFieldFor(dataType);
  for (const f of data.fields) {
    if (f !== field) throw fail(`${TYPED_FIELD_NAMES[f]} cannot hold data type ${dataType}`);
  }
  if (field === 4 || field === 10) return data.bytes.slice(0, data.byteCount);
  const count = data.wordCount / 2;
  const w = data.words;
  if (dataType === OnnxDataType.INT64 || dataType === OnnxDataType.UINT64) {
    return new Uint8Array(new Uint32Array(w.subarray(0, data.wordCount)).buffer); // lo, hi pairs are LE int64
  }
  if (dataType === OnnxDataType.UINT4 || dataType === OnnxDataType.INT4) {
    // int32_data holds the packed bytes, two 4-bit values per element of the field.
    const out = new Uint8Array(count);
    for (let i = 0; i < count; i++) out[i] = w[2 * i];
    return out;
  }
  const size = dtypeByteSize(dataType);
  const out = new Uint8Array(count * size);
  if (size === 1) for (let i = 0; i < count; i++) out[i] = w[2 * i];
  else if (size === 2) {
    const o16 = new Uint16Array(out.buffer);
    for (let i = 0; i < count; i++) o16[i] = w[2 * i];
  } else {
    const o32 = new Uint32Array(out.buffer);
    for (let i = 0; i < count; i++) o32[i] = w[2 * i];
  }
  return out;
}

// ---- messages -----------------------------------------------------------------------------------

const DATA_LOCATION_EXTERNAL = 1;

function externalPathProblem(location: string): string | null {
  if (location === '') return 'is empty';
  if (/^([/\\]|[A-Za-z]:)/.test(location)) return 'is an absolute path';
  if (location.split(/[/\\]/).includes('..')) return "leaves the model's directory";
  if (location.includes('\0')) return 'contains a NUL byte';
  return null;
}

function parseExternalNumber(cur: Cursor, key: string, value: string, tensorName: string): number {
  const n = /^\d{1,16}$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n)) {
    throw cur.malformed(`external_data '${key}' of tensor '${tensorName}' is '${value.slice(0, 40)}', not a byte count`);
  }
  return n;
}

async function parseStringEntry(cur: Cursor, end: number): Promise<{ key: string; value: string }> {
  let key = '';
  let value = '';
  await cur.fields(end, (f) => {
    if (f === 1) return cur.string(end, 'key').then((s) => void (key = s));
    if (f === 2) return cur.string(end, 'value').then((s) => void (value = s));
    return false;
  });
  return { key, value };
}

async function parseTensor(cur: Cursor, end: number): Promise<OnnxTensorInfo> {
  const start = cur.pos;
  let name = '';
  let dataType = 0;
  const dims: number[] = [];
  // `as`: these are assigned in callbacks, which TypeScript's narrowing does not see.
  let raw = null as { offset: number; length: number } | null;
  let typed = null as TypedData | null;
  let dataLocation = 0;
  let hasSegment = false;
  const external: Array<{ key: string; value: string }> = [];
  const typedData = (): TypedData => (typed ??= new TypedData());
  const checkTypedSize = (): void => {
    if (typed && typed.total > MAX_IN_MEMORY_FIELD) {
      throw new AppError(
        'ONNX_UNSUPPORTED',
        `Tensor '${name}' (${cur.where()}) keeps more than ${MAX_IN_MEMORY_FIELD} bytes in typed fields; ` +
          'only raw_data or external data is supported for tensors that large.',
      );
    }
  };

  await cur.fields(end, (f) => {
    switch (f) {
      case 1:
        return cur.int64s(end, 'dims', dims);
      case 2:
        dataType = cur.int32(end, 'data_type');
        return true;
      case 3:
        hasSegment = true;
        return false;
      case 8:
        return cur.string(end, 'name').then((s) => void (name = s));
      case 9: {
        cur.expectWire(WT_LEN, 'raw_data');
        const payloadEnd = cur.lenEnd(end, 'raw_data');
        raw = { offset: cur.pos, length: payloadEnd - cur.pos };
        cur.pos = payloadEnd; // skipped, never read
        return true;
      }
      case 13:
        return cur.message(end, 'external_data', (e) => parseStringEntry(cur, e)).then((entry) => void external.push(entry));
      case 14:
        dataLocation = cur.int32(end, 'data_location');
        return true;
      case 4:
      case 10: {
        const what = TYPED_FIELD_NAMES[f];
        const width = f === 4 ? 4 : 8;
        const data = typedData();
        data.fields.add(f);
        if (cur.wire === (f === 4 ? WT_I32 : WT_I64)) {
          cur.spend(1);
          if (cur.pos + width > end || !cur.has(width)) throw cur.overrun(end, what);
          data.pushBytes(cur.view(width));
          cur.pos += width;
          checkTypedSize();
          return true;
        }
        cur.expectWire(WT_LEN, what);
        return cur.loadLen(end, what).then((payloadEnd) => {
          const len = payloadEnd - cur.pos;
          if (len % width !== 0) throw cur.malformed(`packed ${what} length ${len} is not a multiple of ${width}`);
          cur.spend(len / width);
          data.pushBytes(cur.view(len));
          cur.pos = payloadEnd;
          checkTypedSize();
        });
      }
      case 5:
      case 7:
      case 11: {
        const what = TYPED_FIELD_NAMES[f];
        const data = typedData();
        data.fields.add(f);
        if (cur.wire === WT_VARINT) {
          cur.spend(1);
          cur.varint(end, what);
          data.pushWord(cur.lo, cur.hi);
          checkTypedSize();
          return true;
        }
        cur.expectWire(WT_LEN, what);
        return cur.loadLen(end, what).then((payloadEnd) => {
          cur.spend(payloadEnd - cur.pos); // at most one element per byte
          while (cur.pos < payloadEnd) {
            cur.varint(payloadEnd, what);
            data.pushWord(cur.lo, cur.hi);
          }
          checkTypedSize();
        });
      }
      case 6:
        typedData().fields.add(6);
        return false;
      default:
        return false;
    }
  });

  const label = `tensor '${name}'`;
  const fail = (detail: string): AppError => cur.malformed(`${label}: ${detail}`, start);
  if (hasSegment) {
    throw new AppError('ONNX_UNSUPPORTED', `Tensor '${name}' (${cur.where()}) is split into segments, which this app does not support.`);
  }
  if (dataType === OnnxDataType.STRING || typed?.fields.has(6)) {
    throw new AppError('ONNX_UNSUPPORTED', `Tensor '${name}' (${cur.where()}) holds strings; string tensors are not supported.`);
  }
  if (dataType === OnnxDataType.UNDEFINED) throw fail('it has no data_type');
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0) throw fail(`dimension ${d} is not a valid size`);
  }
  const count = elementCount(dims);
  if (count === null) throw fail(`dims [${dims.join(', ')}] have more elements than can be addressed`);
  const expected = tensorByteLength(dataType, dims); // throws ONNX_UNSUPPORTED for unknown dtypes
  if (expected === null) throw fail(`dims [${dims.join(', ')}] are too large`);

  let location: TensorLocation;
  if (dataLocation === DATA_LOCATION_EXTERNAL) {
    if (raw !== null || typed !== null) throw fail('it is marked external but also has data in the file');
    let file: string | null = null;
    let offset = 0;
    let length: number | null = null;
    for (const { key, value } of external) {
      if (key === 'location') file = value;
      else if (key === 'offset') offset = parseExternalNumber(cur, key, value, name);
      else if (key === 'length') length = parseExternalNumber(cur, key, value, name);
    }
    if (file === null) throw fail("it is marked external but has no 'location'");
    const problem = externalPathProblem(file);
    if (problem) throw fail(`external data location '${file.slice(0, 200)}' ${problem}`);
    if (length === null) length = expected;
    else if (length !== expected) throw fail(`external length ${length} does not match dims and data type (${expected} bytes)`);
    if (!Number.isSafeInteger(offset + length)) throw fail('external offset is too large');
    location = { kind: 'external', file, offset, length };
  } else if (dataLocation !== 0) {
    throw fail(`data_location ${dataLocation} is not DEFAULT (0) or EXTERNAL (1)`);
  } else if (raw !== null) {
    if (typed !== null) throw fail('it has both raw_data and typed data fields');
    const { offset, length } = raw;
    if (length !== expected) throw fail(`raw_data has ${length} bytes but dims and data type need ${expected}`);
    location = { kind: 'inline', offset, length };
  } else if (typed !== null) {
    const bytes = typedBytes(typed, dataType, fail);
    if (bytes.byteLength !== expected) {
      throw fail(`typed data has ${bytes.byteLength} bytes but dims and data type need ${expected}`);
    }
    location = { kind: 'embedded', bytes };
  } else {
    if (expected !== 0) throw fail(`it has ${count} elements but no data`);
    location = { kind: 'embedded', bytes: new Uint8Array(0) };
  }
  return { name, dataType, dims, location };
}

async function parseDimension(cur: Cursor, end: number): Promise<number | string | null> {
  let dim: number | string | null = null;
  await cur.fields(end, (f) => {
    if (f === 1) {
      dim = cur.int64(end, 'dim_value');
      return true;
    }
    if (f === 2) return cur.string(end, 'dim_param').then((s) => void (dim = s));
    return false;
  });
  return dim;
}

async function parseShape(cur: Cursor, end: number): Promise<Array<number | string | null>> {
  const shape: Array<number | string | null> = [];
  await cur.fields(end, (f) => {
    if (f !== 1) return false;
    return cur.message(end, `dim[${shape.length}]`, (e) => parseDimension(cur, e)).then((d) => void shape.push(d));
  });
  return shape;
}

/** TypeProto.Tensor (and SparseTensor, same layout): elem_type and shape. */
async function parseTensorType(cur: Cursor, end: number, info: OnnxValueInfo): Promise<void> {
  await cur.fields(end, (f) => {
    if (f === 1) {
      info.elemType = cur.int32(end, 'elem_type');
      return true;
    }
    if (f === 2) return cur.message(end, 'shape', (e) => parseShape(cur, e)).then((s) => void (info.shape = s));
    return false;
  });
}

async function parseValueInfo(cur: Cursor, end: number): Promise<OnnxValueInfo> {
  const info: OnnxValueInfo = { name: '' };
  await cur.fields(end, (f) => {
    if (f === 1) return cur.string(end, 'name').then((s) => void (info.name = s));
    if (f === 2) {
      return cur.message(end, 'type', (typeEnd) =>
        cur.fields(typeEnd, (tf) => {
          // 1 tensor_type, 8 sparse_tensor_type; sequence/map/optional types carry no tensor shape.
          if (tf === 1 || tf === 8) return cur.message(typeEnd, 'tensor_type', (e) => parseTensorType(cur, e, info));
          return false;
        }),
      );
    }
    return false;
  });
  return info;
}

/** AttributeProto.AttributeType values. */
const ATTR = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8, TENSORS: 9, GRAPHS: 10 };

async function parseAttribute(
  cur: Cursor,
  end: number,
  depth: number,
): Promise<{ name: string; value: OnnxAttributeValue | null }> {
  let name = '';
  let type = 0;
  // `as`: these are assigned in callbacks, which TypeScript's narrowing does not see.
  let f = undefined as number | undefined;
  let i = undefined as number | undefined;
  let s = undefined as string | undefined;
  let t = undefined as OnnxTensorInfo | undefined;
  let g = undefined as OnnxGraph | undefined;
  const floats: number[] = [];
  const ints: number[] = [];
  const strings: string[] = [];
  const tensors: OnnxTensorInfo[] = [];
  const graphs: OnnxGraph[] = [];

  await cur.fields(end, (field) => {
    switch (field) {
      case 1:
        return cur.string(end, 'name').then((v) => void (name = v));
      case 20:
        type = cur.int32(end, 'type');
        return true;
      case 2:
        cur.expectWire(WT_I32, 'f');
        f = cur.float32(end, 'f');
        return true;
      case 3:
        i = cur.int64(end, 'i');
        return true;
      case 4:
        return cur.string(end, 's').then((v) => void (s = v));
      case 5:
        return cur.message(end, `attribute '${name}' t`, (e) => parseTensor(cur, e)).then((v) => void (t = v));
      case 6:
        return cur.message(end, `attribute '${name}' g`, (e) => parseGraph(cur, e, depth + 1)).then((v) => void (g = v));
      case 7:
        return cur.float32s(end, 'floats', floats);
      case 8:
        return cur.int64s(end, 'ints', ints);
      case 9:
        return cur.string(end, 'strings').then((v) => void strings.push(v));
      case 10:
        return cur
          .message(end, `attribute '${name}' tensors[${tensors.length}]`, (e) => parseTensor(cur, e))
          .then((v) => void tensors.push(v));
      case 11:
        return cur
          .message(end, `attribute '${name}' graphs[${graphs.length}]`, (e) => parseGraph(cur, e, depth + 1))
          .then((v) => void graphs.push(v));
      default:
        return false; // doc_string, ref_attr_name, sparse tensors, type protos
    }
  });

  if (type === 0) {
    // IR version 1 files may omit the type: infer it from the field that is present.
    if (g !== undefined) type = ATTR.GRAPH;
    else if (t !== undefined) type = ATTR.TENSOR;
    else if (s !== undefined) type = ATTR.STRING;
    else if (i !== undefined) type = ATTR.INT;
    else if (f !== undefined) type = ATTR.FLOAT;
    else if (floats.length) type = ATTR.FLOATS;
    else if (ints.length) type = ATTR.INTS;
    else if (strings.length) type = ATTR.STRINGS;
    else if (tensors.length) type = ATTR.TENSORS;
    else if (graphs.length) type = ATTR.GRAPHS;
  }
  let value: OnnxAttributeValue | null;
  switch (type) {
    case ATTR.FLOAT:
      value = { type: 'float', value: f ?? 0 };
      break;
    case ATTR.INT:
      value = { type: 'int', value: i ?? 0 };
      break;
    case ATTR.STRING:
      value = { type: 'string', value: s ?? '' };
      break;
    case ATTR.FLOATS:
      value = { type: 'floats', value: floats };
      break;
    case ATTR.INTS:
      value = { type: 'ints', value: ints };
      break;
    case ATTR.STRINGS:
      value = { type: 'strings', value: strings };
      break;
    case ATTR.TENSOR:
      if (t === undefined) throw cur.malformed(`attribute '${name}' is of type TENSOR but has no tensor`);
      value = { type: 'tensor', value: t };
      break;
    case ATTR.GRAPH:
      if (g === undefined) throw cur.malformed(`attribute '${name}' is of type GRAPH but has no graph`);
      value = { type: 'graph', value: g };
      break;
    case ATTR.TENSORS:
      value = { type: 'tensors', value: tensors };
      break;
    case ATTR.GRAPHS:
      value = { type: 'graphs', value: graphs };
      break;
    default:
      value = null; // sparse tensors, type protos, unknown future types: not needed, not recorded
  }
  return { name, value };
}

async function parseNode(cur: Cursor, end: number, depth: number): Promise<OnnxNode> {
  const node: OnnxNode = { name: '', opType: '', domain: '', inputs: [], outputs: [], attributes: {} };
  await cur.fields(end, (f) => {
    switch (f) {
      case 1:
        return cur.string(end, 'input').then((s) => void node.inputs.push(s));
      case 2:
        return cur.string(end, 'output').then((s) => void node.outputs.push(s));
      case 3:
        return cur.string(end, 'name').then((s) => void (node.name = s));
      case 4:
        return cur.string(end, 'op_type').then((s) => void (node.opType = s));
      case 7:
        return cur.string(end, 'domain').then((s) => void (node.domain = s));
      case 5:
        return cur
          .message(end, `attribute[${Object.keys(node.attributes).length}]`, (e) => parseAttribute(cur, e, depth))
          .then(({ name, value }) => {
            // defineProperty: an attribute named "__proto__" must not become the prototype.
            if (value) Object.defineProperty(node.attributes, name, { value, enumerable: true, writable: true, configurable: true });
          });
      default:
        return false;
    }
  });
  return node;
}

const MAX_GRAPH_DEPTH = 24;

async function parseGraph(cur: Cursor, end: number, depth: number): Promise<OnnxGraph> {
  if (depth > MAX_GRAPH_DEPTH) throw cur.malformed(`subgraphs are nested more than ${MAX_GRAPH_DEPTH} deep`);
  const graph: OnnxGraph = { name: '', nodes: [], initializers: [], inputs: [], outputs: [], valueInfo: [] };
  const valueInfo = graph.valueInfo!;
  await cur.fields(end, (f) => {
    switch (f) {
      case 1:
        return cur.message(end, `node[${graph.nodes.length}]`, (e) => parseNode(cur, e, depth)).then((n) => void graph.nodes.push(n));
      case 2:
        return cur.string(end, 'name').then((s) => void (graph.name = s));
      case 5:
        return cur
          .message(end, `initializer[${graph.initializers.length}]`, (e) => parseTensor(cur, e))
          .then((t) => void graph.initializers.push(t));
      case 11:
        return cur.message(end, `input[${graph.inputs.length}]`, (e) => parseValueInfo(cur, e)).then((v) => void graph.inputs.push(v));
      case 12:
        return cur.message(end, `output[${graph.outputs.length}]`, (e) => parseValueInfo(cur, e)).then((v) => void graph.outputs.push(v));
      case 13:
        return cur.message(end, `value_info[${valueInfo.length}]`, (e) => parseValueInfo(cur, e)).then((v) => void valueInfo.push(v));
      case 15:
        throw new AppError(
          'ONNX_UNSUPPORTED',
          `The ONNX graph has a sparse initializer (${cur.where()}, byte ${cur.pos}); sparse weights are not supported.`,
        );
      default:
        return false;
    }
  });
  return graph;
}

async function parseOpset(cur: Cursor, end: number): Promise<{ domain: string; version: number }> {
  const opset = { domain: '', version: 0 };
  await cur.fields(end, (f) => {
    if (f === 1) return cur.string(end, 'domain').then((s) => void (opset.domain = s));
    if (f === 2) {
      opset.version = cur.int64(end, 'version');
      return true;
    }
    return false;
  });
  return opset;
}

/**
 * Reads an ONNX ModelProto: the graph and, for every initializer and Constant tensor, where its
 * bytes are. Never reads a `raw_data` payload and never reads more than `windowBytes` at once.
 */
export async function readOnnxModel(source: ByteSource, opts: ReadOnnxOptions = {}): Promise<OnnxModel> {
  const window = opts.windowBytes ?? DEFAULT_WINDOW;
  if (!Number.isSafeInteger(window) || window < MIN_WINDOW) {
    throw new AppError('BAD_ARGUMENT', `readOnnxModel: windowBytes must be an integer of at least ${MIN_WINDOW}, got ${window}.`);
  }
  const size = source.size;
  if (!Number.isSafeInteger(size) || size < 0) throw new AppError('BAD_ARGUMENT', `readOnnxModel: bad source size ${size}.`);
  if (size === 0) {
    throw new AppError('ONNX_TRUNCATED', 'The ONNX file is empty (0 bytes). Delete it and download the model again.');
  }
  const cur = new Cursor(source, size, window);
  const model: OnnxModel = {
    irVersion: 0,
    opsetImports: [],
    producerName: '',
    graph: { name: '', nodes: [], initializers: [], inputs: [], outputs: [], valueInfo: [] },
  };
  let sawGraph = false;
  await cur.fields(size, (f) => {
    switch (f) {
      case 1:
        model.irVersion = cur.int64(size, 'ir_version');
        return true;
      case 2:
        return cur.string(size, 'producer_name').then((s) => void (model.producerName = s));
      case 7:
        sawGraph = true;
        return cur.message(size, 'graph', (e) => parseGraph(cur, e, 0)).then((g) => void (model.graph = g));
      case 8:
        return cur
          .message(size, `opset_import[${model.opsetImports.length}]`, (e) => parseOpset(cur, e))
          .then((o) => void model.opsetImports.push(o));
      default:
        return false;
    }
  });
  if (!sawGraph) {
    throw new AppError(
      'ONNX_MALFORMED',
      `The file (${size} bytes) parses as protobuf but has no ONNX graph; it is not an ONNX model. ${REDOWNLOAD}`,
    );
  }
  return model;
}
