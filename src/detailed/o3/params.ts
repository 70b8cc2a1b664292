/**
 * Parameters of the O3 pipeline (gem5 O3CPU-style): one flat table, every field with a default
 * and a one-line description. Memory-system and branch-predictor parameters live with those
 * models (`mem/`, `bpred/`).
 */
import { defaults, type OpClass, type ParamSpecs, type ParamValues } from './types.js';

export const O3ParamSpecs = {
  fetchWidth: { default: 4, desc: 'Instructions fetched per cycle' },
  fetchBufferBytes: { default: 64, desc: 'Fetch buffer size in bytes; a new aligned block costs one I-cache access' },
  fetchQueueSize: { default: 32, desc: 'Fetch queue capacity in instructions (at least fetchWidth*(fetchToDecodeDelay+2))' },
  decodeWidth: { default: 4, desc: 'µops decoded per cycle' },
  decodeQueueSize: { default: 32, desc: 'Decode→rename µop buffer capacity (at least decodeWidth*(decodeToRenameDelay+2))' },
  renameWidth: { default: 4, desc: 'µops renamed per cycle' },
  dispatchWidth: { default: 4, desc: 'µops dispatched into ROB/IQ/LSQ per cycle (dispatch happens in the rename cycle)' },
  issueWidth: { default: 6, desc: 'µops issued to functional units per cycle' },
  wbWidth: { default: 6, desc: 'µops writing back results per cycle' },
  commitWidth: { default: 4, desc: 'µops committed per cycle' },
  fetchToDecodeDelay: { default: 1, desc: 'Cycles from fetch to decode' },
  decodeToRenameDelay: { default: 1, desc: 'Cycles from decode to rename' },
  renameToIEWDelay: { default: 2, desc: 'Cycles from rename/dispatch until a µop may issue' },
  iewToCommitDelay: { default: 1, desc: 'Cycles from writeback until the µop may commit' },
  branchRedirectDelay: { default: 1, desc: 'Cycles from a mispredicted branch resolving until fetch restarts at the right target' },
  commitToFetchDelay: { default: 1, desc: 'Cycles from a serializing instruction committing until fetch restarts' },
  numROBEntries: { default: 192, desc: 'Reorder buffer entries (µops)' },
  numIQEntries: { default: 64, desc: 'Issue queue entries (µops)' },
  LQEntries: { default: 32, desc: 'Load queue entries' },
  SQEntries: { default: 32, desc: 'Store queue entries (held until the committed store is written)' },
  numPhysIntRegs: { default: 256, desc: 'Physical integer registers (GPRs + flags)' },
  numPhysFloatRegs: { default: 256, desc: 'Physical FP/SIMD registers (xmm, mxcsr, x87)' },
  storeForwardLatency: { default: 2, desc: 'Cycles for a load fully covered by an older executed store (store-to-load forwarding)' },
  storeForwarding: { default: true, desc: 'Forward store data to younger loads from the store queue' },
  // Functional-unit pool: count per unit type; latency and pipelining per op class.
  numIntAlu: { default: 4, desc: 'Integer ALUs (IntAlu, Branch)' },
  intAluLat: { default: 1, desc: 'IntAlu latency' },
  branchLat: { default: 1, desc: 'Branch resolution latency' },
  numIntMult: { default: 1, desc: 'Integer multipliers' },
  intMultLat: { default: 3, desc: 'IntMult latency' },
  intMultPipelined: { default: true, desc: 'IntMult unit accepts a new op every cycle' },
  numIntDiv: { default: 1, desc: 'Integer dividers' },
  intDivLat: { default: 20, desc: 'IntDiv latency' },
  intDivPipelined: { default: false, desc: 'IntDiv unit accepts a new op every cycle' },
  numFpAdd: { default: 2, desc: 'FP add/compare/convert units' },
  floatAddLat: { default: 3, desc: 'FloatAdd latency' },
  floatCmpLat: { default: 3, desc: 'FloatCmp latency' },
  floatCvtLat: { default: 4, desc: 'FloatCvt latency' },
  numFpMult: { default: 2, desc: 'FP multipliers' },
  floatMultLat: { default: 4, desc: 'FloatMult latency' },
  numFpDiv: { default: 1, desc: 'FP divide/sqrt units' },
  floatDivLat: { default: 13, desc: 'FloatDiv latency' },
  floatSqrtLat: { default: 20, desc: 'FloatSqrt latency' },
  fpDivPipelined: { default: false, desc: 'FP divide/sqrt unit accepts a new op every cycle' },
  numSimd: { default: 2, desc: 'SIMD units' },
  simdAluLat: { default: 1, desc: 'SimdAlu latency' },
  simdMultLat: { default: 3, desc: 'SimdMult latency' },
  simdShuffleLat: { default: 1, desc: 'SimdShuffle latency' },
  numLoadPorts: { default: 2, desc: 'Load ports (MemRead issue per cycle)' },
  numStorePorts: { default: 1, desc: 'Store ports (MemWrite address/data issue per cycle)' },
  skipIdleCycles: { default: true, desc: 'Jump over cycles in which no stage can act (their stall stats are still counted); speed only, no timing effect' },
  serializeLat: { default: 1, desc: 'Execution latency of a serializing µop once it is alone in the ROB' },
} satisfies ParamSpecs;

type Widen<T> = T extends boolean ? boolean : T extends number ? number : T extends string ? string : T;
export type O3Params = { -readonly [K in keyof typeof O3ParamSpecs]: Widen<ParamValues<typeof O3ParamSpecs>[K]> };

export function o3Defaults(over: Partial<O3Params> = {}): O3Params {
  return { ...(defaults(O3ParamSpecs) as O3Params), ...over };
}

export const OP_CLASSES: readonly OpClass[] = [
  'IntAlu', 'IntMult', 'IntDiv', 'FloatAdd', 'FloatCmp', 'FloatCvt', 'FloatMult', 'FloatDiv', 'FloatSqrt',
  'SimdAlu', 'SimdMult', 'SimdShuffle', 'MemRead', 'MemWrite', 'Branch', 'Nop', 'Serialize',
];
export const OPCLASS_INDEX: Readonly<Record<OpClass, number>> = Object.fromEntries(
  OP_CLASSES.map((c, i) => [c, i]),
) as Record<OpClass, number>;
export const CLS_MEMREAD = OPCLASS_INDEX.MemRead;
export const CLS_MEMWRITE = OPCLASS_INDEX.MemWrite;
export const CLS_BRANCH = OPCLASS_INDEX.Branch;
export const CLS_NOP = OPCLASS_INDEX.Nop;
export const CLS_SERIALIZE = OPCLASS_INDEX.Serialize;

/** Functional-unit types of the pool, and the op classes each serves with latency/pipelining. */
export interface FUTypeDesc {
  name: string;
  count: number;
  classes: { cls: OpClass; lat: number; pipelined: boolean }[];
}

export function fuTypes(p: O3Params): FUTypeDesc[] {
  return [
    { name: 'IntAlu', count: p.numIntAlu, classes: [{ cls: 'IntAlu', lat: p.intAluLat, pipelined: true }, { cls: 'Branch', lat: p.branchLat, pipelined: true }] },
    { name: 'IntMult', count: p.numIntMult, classes: [{ cls: 'IntMult', lat: p.intMultLat, pipelined: p.intMultPipelined }] },
    { name: 'IntDiv', count: p.numIntDiv, classes: [{ cls: 'IntDiv', lat: p.intDivLat, pipelined: p.intDivPipelined }] },
    {
      name: 'FpAdd', count: p.numFpAdd, classes: [
        { cls: 'FloatAdd', lat: p.floatAddLat, pipelined: true },
        { cls: 'FloatCmp', lat: p.floatCmpLat, pipelined: true },
        { cls: 'FloatCvt', lat: p.floatCvtLat, pipelined: true },
      ],
    },
    { name: 'FpMult', count: p.numFpMult, classes: [{ cls: 'FloatMult', lat: p.floatMultLat, pipelined: true }] },
    {
      name: 'FpDiv', count: p.numFpDiv, classes: [
        { cls: 'FloatDiv', lat: p.floatDivLat, pipelined: p.fpDivPipelined },
        { cls: 'FloatSqrt', lat: p.floatSqrtLat, pipelined: p.fpDivPipelined },
      ],
    },
    {
      name: 'Simd', count: p.numSimd, classes: [
        { cls: 'SimdAlu', lat: p.simdAluLat, pipelined: true },
        { cls: 'SimdMult', lat: p.simdMultLat, pipelined: true },
        { cls: 'SimdShuffle', lat: p.simdShuffleLat, pipelined: true },
      ],
    },
    // Memory ports: the latency of a load comes from the memory system; the port is busy 1 cycle.
    { name: 'LoadPort', count: p.numLoadPorts, classes: [{ cls: 'MemRead', lat: 0, pipelined: true }] },
    { name: 'StorePort', count: p.numStorePorts, classes: [{ cls: 'MemWrite', lat: 1, pipelined: true }] },
  ];
}
