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
 * ProcessState (plain msgpack), the CPU model that was running, `config` (the run
 * configuration, any msgpack-able object) and `stats` (a list of {name, value, desc?, unit?},
 * or an object), and guest memory: every NON-ZERO physical page reachable through the page map
 * (user pages, except I/O windows, and the SE kernel's supervisor pages), each stored once by
 * physical page number, in batches of up to 1 MiB (`pages` lists their numbers in the order the
 * contents follow; any order), each compressed with node:zlib or stored raw, per batch `codec`.
 * Zero pages are not stored: a fresh destination memory is all zero.
 *
 * Saving sorts non-zero pages into three streams of batches by a sampled byte histogram:
 * high-entropy pages (random, compressed, encrypted data: zlib spends most of its time on them
 * and cannot shrink them) are stored raw without trying; mostly-zero pages are deflated with
 * zlib's Z_RLE strategy; the rest with raw deflate level 1 (by default; see SaveOptions). A
 * batch that does not shrink by 3% is stored raw. The payload is framed as a list of chunks
 * (large binary values referenced, not copied), hashed as it is framed and written with one
 * write per chunk: temp file in the same directory, fsync, rename, fsync of the directory.
 *
 * Loading checks magic, version, length, checksum, then decodes and validates every field and
 * decompresses every page BEFORE writing a byte into the destination memory; any failure is a
 * CheckpointError (a UserError) with a `reason`, and names the bad field when there is one.
 * The *Async variants (de)compress batches in parallel on libuv's thread pool; the async loader
 * decodes the payload and starts decompressing while it computes the sha256, but reports a
 * checksum mismatch before any other complaint and still writes nothing until all is valid.
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
 * How memory batches are compressed. On this project's 2-core host zlib deflates text- or
 * pointer-like pages at only ~60-90 MB/s per core at any level or strategy (level 1, Z_RLE and
 * Z_HUFFMAN_ONLY all within ~20% of each other; level 6 is 3x slower) and inflates them at
 * ~200-350 MB/s, so those pages bound the throughput; zero pages cost nothing, mostly-zero pages
 * ~500 MB/s, high-entropy pages are copied raw. `npm run bench:checkpoint` measures every
 * option (bench/results/checkpoint.json). deflate level 1 gives the smallest files with the
 * fastest restore; brotli quality 0 saves faster but restores slower with larger files;
 * 'none' stores pages raw (fastest, 100%).
 */
export type CheckpointCompression = 'brotli' | 'deflate' | 'none';
export const DEFAULT_CHECKPOINT_COMPRESSION: CheckpointCompression = 'deflate';
/** zlib deflate strategy for `compression: 'deflate'` (zlib's Z_DEFAULT_STRATEGY, Z_RLE, ...). */
export type DeflateStrategy = 'default' | 'filtered' | 'rle' | 'huffman';
export const DEFAULT_DEFLATE_STRATEGY: DeflateStrategy = 'default';

export interface SaveOptions {
  compression?: CheckpointCompression;
  /** Brotli quality (0-11, default 0) or deflate level (1-9, default 1). */
  level?: number;
  /** Deflate only: zlib strategy (default 'default'). */
  strategy?: DeflateStrategy;
  /**
   * Store pages whose sampled byte entropy is near 8 bits/byte (random, encrypted, already
   * compressed data) raw without trying to compress them (default true): zlib spends most of
   * its time on exactly those pages and cannot shrink them.
   */
  entropyCheck?: boolean;
}

/** One gem5-style statistic, as the CPU models report them (src/stats.ts `Stat`). */
export interface CheckpointStat {
  name: string;
  value: number | string | bigint;
  desc?: string;
  unit?: string;
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

/** The payload map, in the order saveCheckpoint writes its keys. */
interface Payload {
  v: number;
  cpu: string;
  threadContext: Uint8Array;
  process: ProcessState;
  memory: { pageSize: number; memSize: number; batches: WireBatch[] };
  /** The run configuration (any msgpack-able object). */
  config: object;
  /** Statistics: a list of CheckpointStat or any msgpack-able object. */
  stats: object;
}

export interface CheckpointContents {
  threadContext: ThreadContext;
  /** The live process, or its snapshot plus the guest memory it lives in. */
  process: Process | { state: ProcessState; phys: PhysicalMemory };
  /** The run configuration (any msgpack-able object; default {}). */
  config?: object;
  /** Statistics: a list of CheckpointStat, or any msgpack-able object (default []). */
  stats?: object | readonly CheckpointStat[];
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
  /** Save only: pages stored raw because their sampled entropy said compression cannot help. */
  rawPages?: number;
}

export interface LoadedCheckpoint {
  threadContext: ThreadContext;
  process: Process;
  config: Record<string, unknown>;
  /** As saved: a list of CheckpointStat, or an object. */
  stats: Record<string, unknown> | CheckpointStat[];
  cpu: string;
  info: CheckpointInfo;
}

// ---- save ----

/** Writes a checkpoint atomically (temp file, fsync, rename). */
export function saveCheckpoint(file: string, c: CheckpointContents, opts: SaveOptions = {}): CheckpointInfo {
  const framed = encodeSync(c, opts);
  writeFileAtomic(file, framed.chunks);
  return framed.info;
}

/** The checkpoint file's bytes (what saveCheckpoint writes). */
export function encodeCheckpoint(c: CheckpointContents, opts: SaveOptions = {}): { data: Uint8Array; info: CheckpointInfo } {
  const framed = encodeSync(c, opts);
  return { data: Buffer.concat(framed.chunks), info: framed.info };
}

function encodeSync(c: CheckpointContents, opts: SaveOptions): { chunks: Uint8Array[]; info: CheckpointInfo } {
  const staging = new StagingPool();
  const g = startGather(c);
  const packed: Packed[] = [];
  for (const b of gatherBatches(g, opts, staging)) {
    const p = b.squeeze ? pickCodec(b.data, compressSync(b.data, opts, b.kind)) : asRaw(b.data);
    if (p.data !== b.data && b.staging !== null) staging.release(b.staging); // compressed: the copy is free again
    packed.push(p);
  }
  return frameBatches(c, g, packed);
}

/** Batches being compressed at once by saveCheckpointAsync: two per libuv pool thread. */
function inflightLimit(): number {
  const threads = Number(process.env.UV_THREADPOOL_SIZE);
  return 2 * (Number.isInteger(threads) && threads > 0 ? threads : 4);
}

/**
 * saveCheckpoint with the batches compressed in parallel on libuv's thread pool (same file).
 * Batches go to the pool as soon as they are gathered (at most two per pool thread at a time,
 * so memory stays bounded), so gathering overlaps compression. Guest memory must not change
 * until the returned promise settles.
 */
export async function saveCheckpointAsync(file: string, c: CheckpointContents, opts: SaveOptions = {}): Promise<CheckpointInfo> {
  const staging = new StagingPool();
  const g = startGather(c);
  const pending: Promise<Packed>[] = [];
  const limit = inflightLimit();
  try {
    for (const b of gatherBatches(g, opts, staging)) {
      pending.push(
        b.squeeze
          ? compressAsync(b.data, opts, b.kind).then((p) => {
              const picked = pickCodec(b.data, p);
              if (picked.data !== b.data && b.staging !== null) staging.release(b.staging);
              return picked;
            })
          : Promise.resolve(asRaw(b.data)),
      );
      if (pending.length >= limit) await pending[pending.length - limit];
    }
  } catch (e) {
    await Promise.allSettled(pending); // never leave a rejection unobserved
    throw e;
  }
  const framed = await frameBatchesAsync(c, g, pending);
  writeFileAtomic(file, framed.chunks);
  return framed.info;
}

/** Recycles the 1 MiB page copies of batches whose compressed form was kept (fresh memory costs page faults). */
class StagingPool {
  private readonly free: Buffer[] = [];

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafe(CHECKPOINT_BATCH_PAGES * PAGE_SIZE);
  }

  release(b: Buffer): void {
    if (this.free.length < 16) this.free.push(b);
  }
}

interface GatheredBatch {
  /** Physical page numbers (u32 LE), in the order their contents follow. */
  pages: Uint8Array;
  /** The pages' contents: the start of `staging`, or a view of guest memory when they are consecutive there. */
  data: Buffer;
  staging: Buffer | null;
  /** False: high-entropy pages, stored raw without trying. */
  squeeze: boolean;
  kind: PageClass;
}

interface Gathered {
  state: ProcessState;
  phys: PhysicalMemory;
  physPages: number[];
  memSize: number;
  mappedPages: number;
  /** Filled in by gatherBatches. */
  stored: number;
  rawPages: number;
  /** Non-zero pages, up to CHECKPOINT_BATCH_PAGES per batch, in the order they are written. */
  batches: GatheredBatch[];
}

function startGather(c: CheckpointContents): Gathered {
  const state = c.process instanceof Process ? c.process.snapshot() : c.process.state;
  const phys = c.process instanceof Process ? c.process.aspace.phys : c.process.phys;
  const physPages = mappedPhysicalPages(state, phys.size);
  return { state, phys, physPages, memSize: phys.size, mappedPages: physPages.length, stored: 0, rawPages: 0, batches: [] };
}

/** c*log2(c) for sample counts 0..ENTROPY_SAMPLES. */
const ENTROPY_STRIDE = 7; // odd, so every byte lane of 2/4/8-byte words is sampled
const ENTROPY_SAMPLES = Math.ceil(PAGE_SIZE / ENTROPY_STRIDE);
const CLOG = Float64Array.from({ length: ENTROPY_SAMPLES + 1 }, (_, c) => (c === 0 ? 0 : c * Math.log2(c)));
/**
 * Sampled entropy (bits/byte) at or above which a page is stored raw. Uniform random bytes
 * sample at ~7.7 with 586 samples; text ~4.5, pointer-rich heap ~5-6.5, mostly-zero pages < 2.
 */
const RAW_ENTROPY_BITS = 7.2;
/** A page at least this zero (sampled) is "sparse": zlib's Z_RLE strategy packs it best and fastest. */
const SPARSE_ZERO_FRACTION = 0.75;
const histogram = new Uint16Array(256);

/** Which stream a non-zero page goes to: compressible, sparse (mostly zero) or noisy (stored raw). */
type PageClass = 'dense' | 'sparse' | 'noisy';

/** Classifies the page at `pa` by the byte histogram of every 7th byte (586 samples). */
function classifyPage(mem: Uint8Array, pa: number): PageClass {
  const h = histogram;
  h.fill(0);
  const end = pa + PAGE_SIZE;
  for (let i = pa; i < end; i += ENTROPY_STRIDE) h[mem[i]!]!++;
  if (h[0]! >= SPARSE_ZERO_FRACTION * ENTROPY_SAMPLES) return 'sparse';
  let sum = 0;
  for (let b = 0; b < 256; b++) sum += CLOG[h[b]!]!;
  return Math.log2(ENTROPY_SAMPLES) - sum / ENTROPY_SAMPLES >= RAW_ENTROPY_BITS ? 'noisy' : 'dense';
}

/**
 * Every non-zero mapped page, in batches of up to CHECKPOINT_BATCH_PAGES, one stream of
 * batches per page class (with the entropy check; else one stream). A batch whose pages are
 * consecutive in physical memory is a view of guest memory; any other is copied (into a
 * recycled staging buffer). Yields each batch as soon as it is full, so compression can start
 * while gathering goes on. Guest memory must not change until the batches are written.
 */
function* gatherBatches(g: Gathered, opts: SaveOptions, staging: StagingPool): Generator<GatheredBatch, void, void> {
  const bytes = g.phys.bytes;
  const mem = Buffer.from(bytes.buffer, bytes.byteOffset, g.phys.size);
  const zero = Buffer.alloc(PAGE_SIZE);
  const compressing = (opts.compression ?? DEFAULT_CHECKPOINT_COMPRESSION) !== 'none';
  const classify = compressing && opts.entropyCheck !== false;
  const stream = (kind: PageClass) => ({
    kind,
    squeeze: compressing && kind !== 'noisy',
    /** Null while the batch is one run of consecutive physical pages (referenced, not copied). */
    staging: null as Buffer | null,
    runStart: 0,
    nums: new Uint32Array(0),
    n: 0,
  });
  type Stream = ReturnType<typeof stream>;
  const streams: Record<PageClass, Stream> = { dense: stream('dense'), sparse: stream('sparse'), noisy: stream('noisy') };
  const batch = (s: Stream): GatheredBatch => {
    const len = s.n * PAGE_SIZE;
    const b = {
      pages: new Uint8Array(s.nums.buffer, 0, s.n * 4),
      data: s.staging === null ? mem.subarray(s.runStart, s.runStart + len) : s.staging.subarray(0, len),
      staging: s.staging,
      squeeze: s.squeeze,
      kind: s.kind,
    };
    g.batches.push(b);
    s.n = 0;
    return b;
  };
  for (const pa of g.physPages) {
    // memcmp against a zero page: stops at the first non-zero byte, ~16 GB/s over zero pages
    if (mem.compare(zero, 0, PAGE_SIZE, pa, pa + PAGE_SIZE) === 0) continue;
    const kind = classify ? classifyPage(bytes, pa) : 'dense';
    const s = streams[kind];
    if (s.n === 0) {
      s.staging = null;
      s.runStart = pa;
      s.nums = new Uint32Array(CHECKPOINT_BATCH_PAGES);
    } else if (s.staging === null && pa !== s.runStart + s.n * PAGE_SIZE) {
      // the run of consecutive pages ends: copy it, and the rest of the batch after it
      s.staging = staging.take();
      s.staging.set(bytes.subarray(s.runStart, s.runStart + s.n * PAGE_SIZE), 0);
    }
    if (s.staging !== null) s.staging.set(bytes.subarray(pa, pa + PAGE_SIZE), s.n * PAGE_SIZE);
    s.nums[s.n++] = pa / PAGE_SIZE;
    g.stored++;
    if (kind === 'noisy') g.rawPages++;
    if (s.n === CHECKPOINT_BATCH_PAGES) yield batch(s);
  }
  for (const kind of ['dense', 'sparse', 'noisy'] as const) if (streams[kind].n > 0) yield batch(streams[kind]);
}

function brotliParams(raw: Buffer, opts: SaveOptions) {
  return {
    params: {
      [zconst.BROTLI_PARAM_QUALITY]: opts.level ?? 0,
      [zconst.BROTLI_PARAM_SIZE_HINT]: raw.length,
      [zconst.BROTLI_PARAM_MODE]: zconst.BROTLI_MODE_GENERIC,
    },
    chunkSize: raw.length,
  };
}

const STRATEGIES: Record<DeflateStrategy, number> = {
  default: zconst.Z_DEFAULT_STRATEGY,
  filtered: zconst.Z_FILTERED,
  rle: zconst.Z_RLE,
  huffman: zconst.Z_HUFFMAN_ONLY,
};

/** Sparse batches get Z_RLE unless a strategy was asked for (measured: faster and smaller on them). */
function deflateParams(opts: SaveOptions, kind: PageClass) {
  const strategy = opts.strategy ?? (kind === 'sparse' ? 'rle' : DEFAULT_DEFLATE_STRATEGY);
  return { level: opts.level ?? 1, strategy: STRATEGIES[strategy] };
}

function compressSync(raw: Buffer, opts: SaveOptions, kind: PageClass): [Codec, Buffer] | null {
  const compression = opts.compression ?? DEFAULT_CHECKPOINT_COMPRESSION;
  if (compression === 'none') return null;
  if (compression === 'deflate') return ['deflate-raw', deflateRawSync(raw, { ...deflateParams(opts, kind), chunkSize: raw.length })];
  return ['brotli', brotliCompressSync(raw, brotliParams(raw, opts))];
}

function compressAsync(raw: Buffer, opts: SaveOptions, kind: PageClass): Promise<[Codec, Buffer] | null> {
  const compression = opts.compression ?? DEFAULT_CHECKPOINT_COMPRESSION;
  if (compression === 'none') return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    const done = (codec: Codec) => (e: Error | null, out: Buffer) => (e ? reject(e) : resolve([codec, out]));
    if (compression === 'deflate') deflateRaw(raw, { ...deflateParams(opts, kind), chunkSize: raw.length }, done('deflate-raw'));
    else brotliCompress(raw, brotliParams(raw, opts), done('brotli'));
  });
}

function asRaw(data: Buffer): { codec: Codec; data: Buffer } {
  return { codec: 'raw', data };
}

/** Keeps a batch compressed only if that saves at least 3%. */
function pickCodec(data: Buffer, packed: [Codec, Buffer] | null): { codec: Codec; data: Buffer } {
  if (packed === null || packed[1].length >= data.length * 0.97) return asRaw(data);
  return { codec: packed[0], data: packed[1] };
}

/**
 * Collects msgpack output as a list of chunks: small items are packed together, large binary
 * values are referenced, not copied. Every chunk is hashed (sha256) as it is finalised.
 */
class ChunkWriter {
  readonly chunks: Uint8Array[] = [];
  length = 0;
  private readonly hash = createHash('sha256');
  private small: Buffer = Buffer.allocUnsafe(64 * 1024);
  private used = 0;

  bytes(b: Uint8Array): void {
    if (b.length >= 4096) {
      this.flushSmall();
      this.push(b);
      return;
    }
    if (this.used + b.length > this.small.length) this.flushSmall();
    this.small.set(b, this.used);
    this.used += b.length;
    this.length += b.length;
  }

  /** One value, packed by msgpackr. */
  value(v: unknown): void {
    const p = packr.pack(v);
    // msgpackr may reuse its output buffer for the next pack: keep a copy of anything kept by reference
    this.bytes(p.length >= 4096 ? Buffer.from(p) : p);
  }

  /** A msgpack map header (fixmap / map16 / map32). */
  map(n: number): void {
    this.header(n, 0x80, 0xde, 0xdf);
  }

  /** A msgpack array header. */
  array(n: number): void {
    this.header(n, 0x90, 0xdc, 0xdd);
  }

  /** A msgpack bin value (header, then the bytes by reference when large). */
  bin(b: Uint8Array): void {
    const n = b.length;
    if (n < 0x100) this.bytes(Uint8Array.of(0xc4, n));
    else if (n < 0x10000) this.bytes(Uint8Array.of(0xc5, n >>> 8, n & 0xff));
    else this.bytes(Uint8Array.of(0xc6, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff));
    this.bytes(b);
  }

  /** The payload chunks and their sha256. */
  finish(): { body: Uint8Array[]; digest: Buffer } {
    this.flushSmall();
    return { body: this.chunks, digest: this.hash.digest() };
  }

  private header(n: number, fix: number, op16: number, op32: number): void {
    if (n < 16) this.bytes(Uint8Array.of(fix | n));
    else if (n < 0x10000) this.bytes(Uint8Array.of(op16, n >>> 8, n & 0xff));
    else this.bytes(Uint8Array.of(op32, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff));
  }

  private push(b: Uint8Array): void {
    this.chunks.push(b);
    this.hash.update(b);
    this.length += b.length;
  }

  private flushSmall(): void {
    if (this.used === 0) return;
    const b = this.small.subarray(0, this.used);
    this.small = Buffer.allocUnsafe(this.small.length);
    this.used = 0;
    this.length -= b.length; // counted when added
    this.push(b);
  }
}

type Packed = { codec: Codec; data: Buffer };

/**
 * The file as chunks (header, payload pieces, sha256), without concatenating the page data:
 * the payload is the msgpack map `Payload`, written key by key so that the (large) batch data
 * is referenced, not copied; the checksum is computed incrementally over the same chunks.
 */
function frameBatches(c: CheckpointContents, g: Gathered, packed: Packed[]): { chunks: Uint8Array[]; info: CheckpointInfo } {
  const w = framePrefix(c, g);
  g.batches.forEach((b, i) => frameBatch(w, b, packed[i]!));
  return frameSuffix(w, c, g);
}

/** frameBatches for batches still being compressed: hashes each as soon as it and those before it are done. */
async function frameBatchesAsync(c: CheckpointContents, g: Gathered, packed: Promise<Packed>[]): Promise<{ chunks: Uint8Array[]; info: CheckpointInfo }> {
  const w = framePrefix(c, g);
  try {
    for (let i = 0; i < g.batches.length; i++) frameBatch(w, g.batches[i]!, await packed[i]!);
  } finally {
    await Promise.allSettled(packed); // never leave a rejection unobserved
  }
  return frameSuffix(w, c, g);
}

function framePrefix(c: CheckpointContents, g: Gathered): ChunkWriter {
  const w = new ChunkWriter();
  w.map(7);
  w.value('v');
  w.value(CHECKPOINT_FORMAT_VERSION);
  w.value('cpu');
  w.value(c.cpu);
  w.value('threadContext');
  w.bin(encodeThreadContext(c.threadContext));
  w.value('process');
  w.value(g.state);
  w.value('memory');
  w.map(3);
  w.value('pageSize');
  w.value(PAGE_SIZE);
  w.value('memSize');
  w.value(g.memSize);
  w.value('batches');
  w.array(g.batches.length);
  return w;
}

function frameBatch(w: ChunkWriter, b: GatheredBatch, packed: Packed): void {
  w.map(3);
  w.value('pages');
  w.bin(b.pages);
  w.value('codec');
  w.value(packed.codec);
  w.value('data');
  w.bin(packed.data);
}

function frameSuffix(w: ChunkWriter, c: CheckpointContents, g: Gathered): { chunks: Uint8Array[]; info: CheckpointInfo } {
  w.value('config');
  w.value(c.config ?? {});
  w.value('stats');
  w.value(c.stats ?? []);
  const { body, digest } = w.finish();
  const header = Buffer.allocUnsafe(CHECKPOINT_HEADER_SIZE);
  writeHeader(header, CHECKPOINT_FORMAT_VERSION, w.length);
  const fileBytes = CHECKPOINT_HEADER_SIZE + w.length + CHECKPOINT_CHECKSUM_SIZE;
  return {
    chunks: [header, ...body, digest],
    info: { pages: g.stored, touchedBytes: g.stored * PAGE_SIZE, mappedPages: g.mappedPages, fileBytes, rawPages: g.rawPages },
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
  return restoreCheckpointAsync(file, data, phys, opts);
}

/** loadCheckpointAsync on bytes already in memory; `file` only names them in errors. */
export async function restoreCheckpointAsync(file: string, data: Uint8Array, phys: PhysicalMemory, opts: RestoreOptions): Promise<LoadedCheckpoint> {
  // Decode and start decompressing (into fresh buffers, on libuv's pool) while this thread
  // computes the sha256; a checksum mismatch wins over any other complaint about the payload.
  const { body, stored } = checkFrame(file, data);
  let v: Verified | undefined;
  let decodeError: unknown;
  try {
    v = decodePayload(file, body, phys.size);
  } catch (e) {
    decodeError = e;
  }
  const buffers = v === undefined ? undefined : decompressAllAsync(v);
  buffers?.catch(() => {}); // observed below
  try {
    checkDigest(file, body, stored);
  } catch (e) {
    await buffers?.catch(() => {});
    throw e;
  }
  if (v === undefined) throw decodeError;
  return install(v, await buffers!, data.length, phys, opts);
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
    // one copy per run of consecutive physical pages
    for (let i = 0; i < nums.length; ) {
      let j = i + 1;
      while (j < nums.length && nums[j] === nums[j - 1]! + 1) j++;
      mem.set(buf.subarray(i * PAGE_SIZE, j * PAGE_SIZE), nums[i]! * PAGE_SIZE);
      k += j - i;
      i = j;
    }
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
  stats: Record<string, unknown> | CheckpointStat[];
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
  const { body, stored } = checkFrame(file, bytesIn);
  checkDigest(file, body, stored);
  return decodePayload(file, body, memSize);
}

const errorMaker =
  (file: string) => (reason: ConstructorParameters<typeof CheckpointError>[1], msg: string, field?: string, cause?: unknown) =>
    new CheckpointError(file, reason, msg, field, cause === undefined ? undefined : { cause });

/** Magic, version, length: the payload and the checksum stored after it. */
function checkFrame(file: string, bytesIn: Uint8Array): { body: Buffer; stored: Buffer } {
  const data = Buffer.from(bytesIn.buffer, bytesIn.byteOffset, bytesIn.byteLength);
  const E = errorMaker(file);

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
  return { body: data.subarray(CHECKPOINT_HEADER_SIZE, end), stored: data.subarray(end) };
}

function checkDigest(file: string, body: Buffer, stored: Buffer): void {
  const digest = createHash('sha256').update(body).digest();
  if (!digest.equals(stored)) {
    throw errorMaker(file)(
      'checksum',
      `sha256 checksum mismatch: the payload is corrupt (stored ${stored.toString('hex')}, computed ${digest.toString('hex')})`,
    );
  }
}

/** Decodes and validates every field of a payload (whose checksum may not be checked yet). */
function decodePayload(file: string, body: Buffer, memSize: number): Verified {
  const E = errorMaker(file);
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
  const stats = Array.isArray(root.stats) ? statList(root.stats, bad) : obj(root.stats, 'stats');
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
            ? brotliDecompressSync(c.data, { maxOutputLength: c.want, chunkSize: c.want })
            : inflateRawSync(c.data, { maxOutputLength: c.want, chunkSize: c.want });
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
          else if (c.codec === 'brotli') brotliDecompress(c.data, { maxOutputLength: c.want, chunkSize: c.want }, done);
          else inflateRaw(c.data, { maxOutputLength: c.want, chunkSize: c.want }, done);
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

/** A stats list: every entry {name, value, desc?, unit?}. */
function statList(list: unknown[], bad: (field: string, msg: string) => never): CheckpointStat[] {
  list.forEach((s, i) => {
    const f = `stats[${i}]`;
    if (typeof s !== 'object' || s === null || Array.isArray(s) || s instanceof Uint8Array) bad(f, 'not an object');
    const o = s as Record<string, unknown>;
    if (typeof o.name !== 'string' || o.name.length === 0) bad(`${f}.name`, 'not a stat name');
    if (typeof o.value !== 'number' && typeof o.value !== 'string' && typeof o.value !== 'bigint') bad(`${f}.value`, 'not a number or string');
    if (o.desc !== undefined && typeof o.desc !== 'string') bad(`${f}.desc`, 'not a string');
    if (o.unit !== undefined && typeof o.unit !== 'string') bad(`${f}.unit`, 'not a string');
  });
  return list as CheckpointStat[];
}
