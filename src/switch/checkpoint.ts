/**
 * Checkpoint files: everything needed to resume a guest on any CPU model, in one file.
 *
 * Layout (all integers little-endian):
 *
 *   offset 0   8 bytes   magic "SWSIMCKP"
 *   offset 8   u32       format version (CHECKPOINT_FORMAT_VERSION)
 *   offset 12  u32       reserved, 0
 *   offset 16  u64       payload length P
 *   offset 24  P bytes   payload: one msgpack map (see `Payload`)
 *   offset 24+P 32 bytes sha256 over the payload bytes
 *
 * The payload holds the ThreadContext (contextCodec's versioned encoding, as bytes), the
 * ProcessState (plain msgpack), the CPU model that was running, config and stats, and guest
 * memory: every NON-ZERO physical page reachable through the page map (user pages, except I/O
 * windows, and the SE kernel's supervisor pages), each stored once by physical page number,
 * in batches of up to 1 MiB, each compressed with node:zlib (raw deflate level 1 by default, or
 * brotli quality 0; per batch `codec`); a batch that does not shrink by 3% is stored raw. Zero pages are not stored: a fresh destination memory is all zero.
 *
 * Loading checks magic, version, length, checksum, then decodes and validates every field and
 * decompresses every page BEFORE writing a byte into the destination memory; any failure is a
 * CheckpointError (a UserError) with a `reason`, and names the bad field when there is one.
 * Saving writes a temp file in the same directory, fsyncs it and renames it over the target.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import {
  brotliCompress,
  brotliCompressSync,
  brotliDecompress,
  brotliDecompressSync,
  constants as zconst,
  deflateRaw,
  deflateRawSync,
  inflateRaw,
  inflateRawSync,
} from 'node:zlib';
import { Packr } from 'msgpackr';
import { decodeThreadContext, encodeThreadContext } from '../guest/contextCodec.js';
import { ProcessStateFormatError } from '../guest/errors.js';
import { PM_FLAG_MASK, PM_IO } from '../guest/pageTables.js';
import { PAGE_SIZE, type PhysicalMemory } from '../guest/physmem.js';
import { Process, type ProcessState, type RestoreOptions, validateProcessState } from '../guest/process.js';
import { ThreadContextFormatError, type ThreadContext } from '../guest/threadContext.js';
import { writeFileAtomic } from '../util/atomicWrite.js';
import { CheckpointError } from './errors.js';

export { CheckpointError, type CheckpointErrorReason } from './errors.js';

export const CHECKPOINT_MAGIC = 'SWSIMCKP';
export const CHECKPOINT_FORMAT_VERSION = 1;
export const CHECKPOINT_HEADER_SIZE = 24;
export const CHECKPOINT_CHECKSUM_SIZE = 32;
/** Pages per compressed batch (1 MiB of memory). */
export const CHECKPOINT_BATCH_PAGES = 256;
/**
 * How memory batches are compressed. Measured on ptrchase's 32 MiB array (2-core host, MB/s of
 * touched memory, file I/O included; test/unit/checkpoint.test.ts prints it): deflate level 1
 * gives the smallest file (26%) and the fastest restore; brotli quality 0 saves a little faster
 * but restores slower with a larger file (36%); 'none' stores pages raw (fastest, 100%). The
 * *Async variants compress/decompress batches in parallel on libuv's pool (1.5-2x here).
 */
export type CheckpointCompression = 'brotli' | 'deflate' | 'none';
export const DEFAULT_CHECKPOINT_COMPRESSION: CheckpointCompression = 'deflate';

export interface SaveOptions {
  compression?: CheckpointCompression;
  /** Brotli quality (0-11, default 0) or deflate level (1-9, default 1). */
  level?: number;
}

const MAGIC_BYTES = Buffer.from(CHECKPOINT_MAGIC, 'latin1');
const CODECS = ['brotli', 'deflate-raw', 'raw'] as const;
type Codec = (typeof CODECS)[number];

const packr = new Packr({ useRecords: false, moreTypes: false });

/** One compressed batch of physical pages on the wire. */
interface WireBatch {
  /** Physical page numbers (u32 LE each), in the order their contents follow. */
  pages: Uint8Array;
  codec: Codec;
  data: Uint8Array;
}

interface Payload {
  v: number;
  cpu: string;
  threadContext: Uint8Array;
  process: ProcessState;
  memory: { pageSize: number; memSize: number; batches: WireBatch[] };
  config: object;
  stats: object;
}

export interface CheckpointContents {
  threadContext: ThreadContext;
  /** The live process, or its snapshot plus the guest memory it lives in. */
  process: Process | { state: ProcessState; phys: PhysicalMemory };
  config: object;
  stats: object;
  /** The CPU model that was running ('kvm', 'atomic', 'o3'). */
  cpu: string;
}

export interface CheckpointInfo {
  /** Non-zero pages stored. */
  pages: number;
  /** Their bytes (pages * 4096): the "touched memory" throughput is measured against. */
  touchedBytes: number;
  /** Mapped pages examined (zero ones included). */
  mappedPages: number;
  fileBytes: number;
}

export interface LoadedCheckpoint {
  threadContext: ThreadContext;
  process: Process;
  config: Record<string, unknown>;
  stats: Record<string, unknown>;
  cpu: string;
  info: CheckpointInfo;
}

// ---- save ----

/** Writes a checkpoint atomically (temp file, fsync, rename). */
export function saveCheckpoint(file: string, c: CheckpointContents, opts: SaveOptions = {}): CheckpointInfo {
  const bytes = encodeCheckpoint(c, opts);
  writeFileAtomic(file, bytes.data);
  return bytes.info;
}

/** The checkpoint file's bytes (what saveCheckpoint writes). */
export function encodeCheckpoint(c: CheckpointContents, opts: SaveOptions = {}): { data: Uint8Array; info: CheckpointInfo } {
  const g = gatherPages(c);
  const packed = g.raw.map((r) => pickCodec(r.data, compressSync(r.data, opts)));
  return assemble(c, g, packed);
}

/**
 * saveCheckpoint with the batches compressed in parallel on libuv's thread pool (same file).
 * Guest memory must not change until the returned promise settles (pages are copied first,
 * so in fact only the gathering step reads it).
 */
export async function saveCheckpointAsync(file: string, c: CheckpointContents, opts: SaveOptions = {}): Promise<CheckpointInfo> {
  const g = gatherPages(c);
  const packed = await Promise.all(g.raw.map(async (r) => pickCodec(r.data, await compressAsync(r.data, opts))));
  const bytes = assemble(c, g, packed);
  writeFileAtomic(file, bytes.data);
  return bytes.info;
}

interface Gathered {
  state: ProcessState;
  memSize: number;
  mappedPages: number;
  /** Non-zero pages, up to CHECKPOINT_BATCH_PAGES per batch: page numbers and their contents. */
  raw: { pages: Uint8Array; data: Buffer }[];
}

function gatherPages(c: CheckpointContents): Gathered {
  const state = c.process instanceof Process ? c.process.snapshot() : c.process.state;
  const phys = c.process instanceof Process ? c.process.aspace.phys : c.process.phys;
  const physPages = mappedPhysicalPages(state, phys.size);
  const mem = Buffer.from(phys.bytes.buffer, phys.bytes.byteOffset, phys.size);
  const zero = Buffer.alloc(PAGE_SIZE);
  const raw: Gathered['raw'] = [];
  let staging = Buffer.allocUnsafe(CHECKPOINT_BATCH_PAGES * PAGE_SIZE);
  let nums = new Uint32Array(CHECKPOINT_BATCH_PAGES);
  let n = 0;
  const flush = () => {
    if (n === 0) return;
    raw.push({ pages: new Uint8Array(nums.buffer, 0, n * 4), data: staging.subarray(0, n * PAGE_SIZE) });
    staging = Buffer.allocUnsafe(CHECKPOINT_BATCH_PAGES * PAGE_SIZE);
    nums = new Uint32Array(CHECKPOINT_BATCH_PAGES);
    n = 0;
  };
  for (const pa of physPages) {
    if (mem.compare(zero, 0, PAGE_SIZE, pa, pa + PAGE_SIZE) === 0) continue;
    mem.copy(staging, n * PAGE_SIZE, pa, pa + PAGE_SIZE);
    nums[n++] = pa / PAGE_SIZE;
    if (n === CHECKPOINT_BATCH_PAGES) flush();
  }
  flush();
  return { state, memSize: phys.size, mappedPages: physPages.length, raw };
}

function brotliParams(raw: Buffer, opts: SaveOptions) {
  return {
    params: {
      [zconst.BROTLI_PARAM_QUALITY]: opts.level ?? 0,
      [zconst.BROTLI_PARAM_SIZE_HINT]: raw.length,
      [zconst.BROTLI_PARAM_MODE]: zconst.BROTLI_MODE_GENERIC,
    },
  };
}

function compressSync(raw: Buffer, opts: SaveOptions): [Codec, Buffer] | null {
  const compression = opts.compression ?? DEFAULT_CHECKPOINT_COMPRESSION;
  if (compression === 'none') return null;
  if (compression === 'deflate') return ['deflate-raw', deflateRawSync(raw, { level: opts.level ?? 1 })];
  return ['brotli', brotliCompressSync(raw, brotliParams(raw, opts))];
}

function compressAsync(raw: Buffer, opts: SaveOptions): Promise<[Codec, Buffer] | null> {
  const compression = opts.compression ?? DEFAULT_CHECKPOINT_COMPRESSION;
  if (compression === 'none') return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    const done = (codec: Codec) => (e: Error | null, out: Buffer) => (e ? reject(e) : resolve([codec, out]));
    if (compression === 'deflate') deflateRaw(raw, { level: opts.level ?? 1 }, done('deflate-raw'));
    else brotliCompress(raw, brotliParams(raw, opts), done('brotli'));
  });
}

/** Keeps a batch compressed only if that saves at least 3%. */
function pickCodec(raw: Buffer, packed: [Codec, Buffer] | null): { codec: Codec; data: Buffer } {
  if (packed === null || packed[1].length >= raw.length * 0.97) return { codec: 'raw', data: raw };
  return { codec: packed[0], data: packed[1] };
}

function assemble(c: CheckpointContents, g: Gathered, packed: { codec: Codec; data: Buffer }[]): { data: Uint8Array; info: CheckpointInfo } {
  const batches: WireBatch[] = g.raw.map((r, i) => ({ pages: r.pages, codec: packed[i]!.codec, data: packed[i]!.data }));
  const stored = g.raw.reduce((sum, r) => sum + r.pages.length / 4, 0);
  const payload: Payload = {
    v: CHECKPOINT_FORMAT_VERSION,
    cpu: c.cpu,
    threadContext: encodeThreadContext(c.threadContext),
    process: g.state,
    memory: { pageSize: PAGE_SIZE, memSize: g.memSize, batches },
    config: c.config,
    stats: c.stats,
  };
  const data = frameCheckpointPayload(payload);
  return {
    data,
    info: { pages: stored, touchedBytes: stored * PAGE_SIZE, mappedPages: g.mappedPages, fileBytes: data.length },
  };
}

/**
 * Wraps an arbitrary payload value in a well-formed header and checksum. For tools and tests
 * (a deliberately bad field behind a valid checksum); saveCheckpoint is the normal way.
 */
export function frameCheckpointPayload(payload: unknown, version = CHECKPOINT_FORMAT_VERSION): Buffer {
  const body = packr.pack(payload);
  const data = Buffer.allocUnsafe(CHECKPOINT_HEADER_SIZE + body.length + CHECKPOINT_CHECKSUM_SIZE);
  writeHeader(data, version, body.length);
  body.copy(data, CHECKPOINT_HEADER_SIZE);
  createHash('sha256').update(body).digest().copy(data, CHECKPOINT_HEADER_SIZE + body.length);
  return data;
}

/** The payload of a checkpoint file, unpacked but not validated (for tools and tests). */
export function unpackCheckpointPayload(data: Uint8Array): Record<string, unknown> {
  const len = Number(new DataView(data.buffer, data.byteOffset, data.byteLength).getBigUint64(16, true));
  return packr.unpack(data.subarray(CHECKPOINT_HEADER_SIZE, CHECKPOINT_HEADER_SIZE + len)) as Record<string, unknown>;
}

function writeHeader(data: Buffer, version: number, payloadLength: number): void {
  MAGIC_BYTES.copy(data, 0);
  data.writeUInt32LE(version, 8);
  data.writeUInt32LE(0, 12);
  data.writeBigUInt64LE(BigInt(payloadLength), 16);
}

/**
 * Physical addresses of every RAM page the page map reaches (user pages except I/O windows,
 * plus the SE kernel's supervisor pages), ascending, each once.
 */
function mappedPhysicalPages(state: ProcessState, memSize: number): number[] {
  const seen = new Uint8Array(Math.ceil(memSize / PAGE_SIZE));
  const out: number[] = [];
  const add = (pa: number) => {
    const pn = pa / PAGE_SIZE;
    if (pa + PAGE_SIZE <= memSize && seen[pn] === 0) {
      seen[pn] = 1;
      out.push(pa);
    }
  };
  const pt = state.addressSpace.pageTables;
  for (let i = 0; i + 2 < pt.pages.length; i += 3) {
    const entry = pt.pages[i + 1]!;
    const count = pt.pages[i + 2]!;
    if (entry & PM_IO) continue;
    const first = entry - (entry & PM_FLAG_MASK);
    for (let j = 0; j < count; j++) add(first + j * PAGE_SIZE);
  }
  for (const k of pt.kernel) for (let j = 0; j < k.pages; j++) add(k.phys + j * PAGE_SIZE);
  return out.sort((a, b) => a - b);
}

// ---- load ----

/**
 * Reads, verifies and restores a checkpoint into `phys` (fresh guest memory of the size the
 * checkpoint was taken with). Nothing is written to `phys` unless the whole file is valid.
 */
export function loadCheckpoint(file: string, phys: PhysicalMemory, opts: RestoreOptions): LoadedCheckpoint {
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch (e) {
    throw new CheckpointError(file, 'io', `cannot read checkpoint: ${(e as Error).message}`, undefined, { cause: e });
  }
  return restoreCheckpoint(file, data, phys, opts);
}

/** loadCheckpoint on bytes already in memory; `file` only names them in errors. */
export function restoreCheckpoint(file: string, bytes: Uint8Array, phys: PhysicalMemory, opts: RestoreOptions): LoadedCheckpoint {
  const v = verifyAndDecode(file, bytes, phys.size);
  return install(v, decompressAll(v), bytes.length, phys, opts);
}

/** loadCheckpoint with the batches decompressed in parallel on libuv's thread pool. */
export async function loadCheckpointAsync(file: string, phys: PhysicalMemory, opts: RestoreOptions): Promise<LoadedCheckpoint> {
  let data: Buffer;
  try {
    data = await readFile(file);
  } catch (e) {
    throw new CheckpointError(file, 'io', `cannot read checkpoint: ${(e as Error).message}`, undefined, { cause: e });
  }
  const v = verifyAndDecode(file, data, phys.size);
  return install(v, await decompressAllAsync(v), data.length, phys, opts);
}

/** Writes the verified, decompressed checkpoint into `phys` and rebuilds the process. */
function install(v: Verified, buffers: Buffer[], fileBytes: number, phys: PhysicalMemory, opts: RestoreOptions): LoadedCheckpoint {
  const { state, pages, file } = v;

  // Everything is valid: now (and only now) write. Process.restore rewrites the page-table
  // pages; should it still fail (e.g. a file it must reopen vanished), put them back.
  const mem = Buffer.from(phys.bytes.buffer, phys.bytes.byteOffset, phys.size);
  const pt = state.addressSpace.pageTables;
  const tablePages = [pt.pml4, pt.pml4Alternate];
  for (let i = 1; i < pt.tables.length; i += 2) tablePages.push(pt.tables[i]!);
  const backup = tablePages.map((pa) => Buffer.from(mem.subarray(pa, pa + PAGE_SIZE)));
  let process: Process;
  try {
    process = Process.restore(phys, state, opts);
  } catch (e) {
    tablePages.forEach((pa, i) => backup[i]!.copy(mem, pa));
    if (e instanceof ProcessStateFormatError) {
      throw new CheckpointError(file, 'format', `cannot restore the process: ${e.message}`, `process.${e.field}`, { cause: e });
    }
    throw e;
  }
  let k = 0;
  for (let b = 0; b < buffers.length; b++) {
    const buf = buffers[b]!;
    const nums = pages[b]!;
    for (let i = 0; i < nums.length; i++, k++) buf.copy(mem, nums[i]! * PAGE_SIZE, i * PAGE_SIZE, (i + 1) * PAGE_SIZE);
  }
  return {
    threadContext: v.threadContext,
    process,
    config: v.config,
    stats: v.stats,
    cpu: v.cpu,
    info: { pages: k, touchedBytes: k * PAGE_SIZE, mappedPages: v.mappedPages, fileBytes },
  };
}

interface Verified {
  threadContext: ThreadContext;
  state: ProcessState;
  config: Record<string, unknown>;
  stats: Record<string, unknown>;
  cpu: string;
  /** Per batch: physical page numbers, and the decompressed contents. */
  pages: Uint32Array[];
  compressed: { codec: Codec; data: Uint8Array; want: number; field: string }[];
  mappedPages: number;
  file: string;
}

/** Checks the whole file without touching guest memory. */
export function verifyCheckpoint(file: string, bytes: Uint8Array, memSize: number): void {
  decompressAll(verifyAndDecode(file, bytes, memSize));
}

function verifyAndDecode(file: string, bytesIn: Uint8Array, memSize: number): Verified {
  const data = Buffer.from(bytesIn.buffer, bytesIn.byteOffset, bytesIn.byteLength);
  const E = (reason: ConstructorParameters<typeof CheckpointError>[1], msg: string, field?: string, cause?: unknown) =>
    new CheckpointError(file, reason, msg, field, cause === undefined ? undefined : { cause });

  // header
  const magicLen = Math.min(data.length, MAGIC_BYTES.length);
  if (!data.subarray(0, magicLen).equals(MAGIC_BYTES.subarray(0, magicLen))) {
    throw E('magic', 'not a switchsim checkpoint (bad magic)');
  }
  if (data.length < CHECKPOINT_HEADER_SIZE) {
    throw E('truncated', `truncated checkpoint: ${data.length} bytes, shorter than the ${CHECKPOINT_HEADER_SIZE}-byte header`);
  }
  const version = data.readUInt32LE(8);
  if (version > CHECKPOINT_FORMAT_VERSION) {
    throw E('version', `written by a newer switchsim (format ${version} > ${CHECKPOINT_FORMAT_VERSION})`);
  }
  if (version !== CHECKPOINT_FORMAT_VERSION) {
    throw E('version', `unsupported checkpoint format ${version} (this switchsim reads format ${CHECKPOINT_FORMAT_VERSION})`);
  }
  const payloadLen = data.readBigUInt64LE(16);
  const expected = BigInt(CHECKPOINT_HEADER_SIZE) + payloadLen + BigInt(CHECKPOINT_CHECKSUM_SIZE);
  if (BigInt(data.length) < expected) {
    const what =
      BigInt(data.length) >= expected - BigInt(CHECKPOINT_CHECKSUM_SIZE) ? 'the sha256 checksum is missing' : 'the payload is cut short';
    throw E('truncated', `truncated checkpoint: ${data.length} of ${expected} bytes (${what})`);
  }
  if (BigInt(data.length) > expected) {
    throw E('trailing', `checkpoint has ${BigInt(data.length) - expected} unexpected bytes after the checksum`);
  }
  const end = CHECKPOINT_HEADER_SIZE + Number(payloadLen);
  const body = data.subarray(CHECKPOINT_HEADER_SIZE, end);
  const digest = createHash('sha256').update(body).digest();
  if (!digest.equals(data.subarray(end))) {
    throw E('checksum', `sha256 checksum mismatch: the payload is corrupt (stored ${data.subarray(end).toString('hex')}, computed ${digest.toString('hex')})`);
  }

  // payload shape
  let p: unknown;
  try {
    p = packr.unpack(body);
  } catch (e) {
    throw E('format', `payload is not msgpack: ${(e as Error).message}`, '(payload)', e);
  }
  const bad = (field: string, msg: string): never => {
    throw E('format', `bad checkpoint field ${field}: ${msg}`, field);
  };
  const obj = (x: unknown, field: string): Record<string, unknown> => {
    if (typeof x !== 'object' || x === null || Array.isArray(x) || x instanceof Uint8Array) bad(field, 'not an object');
    return x as Record<string, unknown>;
  };
  const root = obj(p, '(payload)');
  if (root.v !== CHECKPOINT_FORMAT_VERSION) bad('v', `expected ${CHECKPOINT_FORMAT_VERSION}, got ${String(root.v)}`);
  if (typeof root.cpu !== 'string' || root.cpu.length === 0) bad('cpu', 'not a CPU model name');
  const cpu = root.cpu as string;
  const config = obj(root.config, 'config');
  const stats = obj(root.stats, 'stats');
  if (!(root.threadContext instanceof Uint8Array)) bad('threadContext', 'not bytes');
  let threadContext: ThreadContext;
  try {
    threadContext = decodeThreadContext(root.threadContext as Uint8Array);
  } catch (e) {
    if (!(e instanceof ThreadContextFormatError)) throw e;
    throw E('format', `bad checkpoint field threadContext.${e.field}: ${e.message}`, `threadContext.${e.field}`, e);
  }
  const ps = obj(root.process, 'process');
  const aspaceMem = typeof ps.addressSpace === 'object' && ps.addressSpace !== null ? (ps.addressSpace as Record<string, unknown>).memSize : undefined;
  if (typeof aspaceMem === 'number' && aspaceMem !== memSize) {
    throw E(
      'memory',
      `checkpoint was taken with ${aspaceMem} bytes of guest memory, restoring into ${memSize} (use --mem-size ${aspaceMem})`,
      'process.addressSpace.memSize',
    );
  }
  let state: ProcessState;
  try {
    state = validateProcessState(ps, memSize);
  } catch (e) {
    if (!(e instanceof ProcessStateFormatError)) throw e;
    throw E('format', `bad checkpoint field process.${e.field}: ${e.message}`, `process.${e.field}`, e);
  }

  // memory
  const m = obj(root.memory, 'memory');
  if (m.pageSize !== PAGE_SIZE) bad('memory.pageSize', `expected ${PAGE_SIZE}, got ${String(m.pageSize)}`);
  if (m.memSize !== memSize) bad('memory.memSize', `expected ${memSize}, got ${String(m.memSize)}`);
  if (!Array.isArray(m.batches)) bad('memory.batches', 'not an array');
  const mapped = mappedPhysicalPages(state, memSize);
  const allowed = new Uint8Array(Math.ceil(memSize / PAGE_SIZE));
  for (const pa of mapped) allowed[pa / PAGE_SIZE] = 1;
  const seen = new Uint8Array(allowed.length);
  const pages: Uint32Array[] = [];
  const compressed: Verified['compressed'] = [];
  (m.batches as unknown[]).forEach((bx, bi) => {
    const f = `memory.batches[${bi}]`;
    const b = obj(bx, f);
    if (!(b.pages instanceof Uint8Array) || b.pages.length === 0 || b.pages.length % 4 !== 0) {
      bad(`${f}.pages`, 'not a non-empty list of u32 page numbers');
    }
    const pb = b.pages as Uint8Array;
    const nums = new Uint32Array(pb.length / 4);
    const dv = new DataView(pb.buffer, pb.byteOffset, pb.byteLength);
    for (let i = 0; i < nums.length; i++) {
      const pn = dv.getUint32(i * 4, true);
      if (pn >= allowed.length || allowed[pn] !== 1) {
        bad(`${f}.pages[${i}]`, `physical page 0x${(pn * PAGE_SIZE).toString(16)} is not a mapped RAM page`);
      }
      if (seen[pn] !== 0) bad(`${f}.pages[${i}]`, `physical page 0x${(pn * PAGE_SIZE).toString(16)} stored twice`);
      seen[pn] = 1;
      nums[i] = pn;
    }
    if (!(CODECS as readonly unknown[]).includes(b.codec)) bad(`${f}.codec`, `expected one of ${CODECS.join(', ')}`);
    if (!(b.data instanceof Uint8Array)) bad(`${f}.data`, 'not bytes');
    const want = nums.length * PAGE_SIZE;
    pages.push(nums);
    compressed.push({ codec: b.codec as Codec, data: b.data as Uint8Array, want, field: `${f}.data` });
  });
  return { threadContext, state, config, stats, cpu, pages, compressed, mappedPages: mapped.length, file };
}

/** Decompresses every batch (and checks its size) without touching guest memory. */
function decompressAll(v: Verified): Buffer[] {
  return v.compressed.map((c) => {
    let out: Buffer;
    try {
      out =
        c.codec === 'raw'
          ? Buffer.from(c.data.buffer, c.data.byteOffset, c.data.byteLength)
          : c.codec === 'brotli'
            ? brotliDecompressSync(c.data, { maxOutputLength: c.want })
            : inflateRawSync(c.data, { maxOutputLength: c.want });
    } catch (e) {
      throw decompressError(v, c, e);
    }
    return checkSize(v, c, out);
  });
}

async function decompressAllAsync(v: Verified): Promise<Buffer[]> {
  return Promise.all(
    v.compressed.map(
      (c) =>
        new Promise<Buffer>((resolve, reject) => {
          const done = (e: Error | null, out: Buffer) => {
            if (e) reject(decompressError(v, c, e));
            else {
              try {
                resolve(checkSize(v, c, out));
              } catch (err) {
                reject(err);
              }
            }
          };
          if (c.codec === 'raw') done(null, Buffer.from(c.data.buffer, c.data.byteOffset, c.data.byteLength));
          else if (c.codec === 'brotli') brotliDecompress(c.data, { maxOutputLength: c.want }, done);
          else inflateRaw(c.data, { maxOutputLength: c.want }, done);
        }),
    ),
  );
}

type PendingBatch = Verified['compressed'][number];

function decompressError(v: Verified, c: PendingBatch, e: unknown): CheckpointError {
  return new CheckpointError(v.file, 'format', `bad checkpoint field ${c.field}: cannot decompress: ${(e as Error).message}`, c.field, {
    cause: e,
  });
}

function checkSize(v: Verified, c: PendingBatch, out: Buffer): Buffer {
  if (out.length !== c.want) {
    throw new CheckpointError(v.file, 'format', `bad checkpoint field ${c.field}: holds ${out.length} bytes, expected ${c.want}`, c.field);
  }
  return out;
}
