/**
 * A decoded instruction as plain JS data, read once from iced-x86 (each field read crosses
 * into wasm, ~20 ns): what the instruction builders need, and nothing on the hot path.
 */
import { Code, Instruction, MemorySizeExt, Mnemonic, OpKind, Register } from 'iced-x86';
import { gprOf } from './operands.js';

export type OpInfo =
  | { kind: 'reg'; reg: Register }
  | { kind: 'mem' }
  | { kind: 'imm'; size: number; value: bigint }
  | { kind: 'branch'; target: number }
  | { kind: 'string' }
  | { kind: 'other'; opKind: OpKind };

export interface MemInfo {
  /** GPR numbers, -1 when absent. */
  base: number;
  index: number;
  scale: number;
  /** Signed displacement. */
  disp: number;
  ipRel: boolean;
  ipRelAddress: number;
  seg: 'fs' | 'gs' | null;
  addr32: boolean;
  /** Bytes the instruction reads/writes at this operand (0 for lea/nop forms). */
  size: number;
}

export interface DecodeInfo {
  rip: number;
  len: number;
  next: number;
  code: Code;
  mnemonic: Mnemonic;
  ops: OpInfo[];
  mem: MemInfo | null;
  rep: boolean;
  repne: boolean;
  lock: boolean;
  /** Condition code in x86 encoding order (0 = O … 15 = G), -1 when the instruction has none. */
  cc: number;
  /** iced's flow control: does the instruction end a basic block? */
  endsBlock: boolean;
  bytes: Uint8Array;
}

const IMM_SIZE: Partial<Record<OpKind, number>> = {
  [OpKind.Immediate8]: 1,
  [OpKind.Immediate8_2nd]: 1,
  [OpKind.Immediate16]: 2,
  [OpKind.Immediate32]: 4,
  [OpKind.Immediate64]: 8,
  [OpKind.Immediate8to16]: 2,
  [OpKind.Immediate8to32]: 4,
  [OpKind.Immediate8to64]: 8,
  [OpKind.Immediate32to64]: 8,
};

function toSigned64(v: bigint): number {
  return Number(BigInt.asIntN(64, v));
}

export function extractDecodeInfo(ins: Instruction, bytes: Uint8Array, flowNext: boolean): DecodeInfo {
  const rip = Number(ins.ip);
  const len = ins.length;
  const opCount = ins.opCount;
  const ops: OpInfo[] = [];
  let mem: MemInfo | null = null;
  for (let i = 0; i < opCount; i++) {
    const k = i === 0 ? ins.op0Kind : i === 1 ? ins.op1Kind : i === 2 ? ins.op2Kind : i === 3 ? ins.op3Kind : ins.op4Kind;
    switch (k) {
      case OpKind.Register: {
        const reg = i === 0 ? ins.op0Register : i === 1 ? ins.op1Register : i === 2 ? ins.op2Register : i === 3 ? ins.op3Register : ins.op4Register;
        ops.push({ kind: 'reg', reg });
        break;
      }
      case OpKind.Memory: {
        const baseReg = ins.memoryBase;
        const indexReg = ins.memoryIndex;
        const ipRel = ins.isIpRelMemoryOperand;
        const seg = ins.memorySegment;
        mem = {
          base: ipRel ? -1 : (gprOf(baseReg)?.index ?? -1),
          index: gprOf(indexReg)?.index ?? -1,
          scale: ins.memoryIndexScale,
          disp: toSigned64(ins.memoryDisplacement),
          ipRel,
          ipRelAddress: ipRel ? Number(ins.ipRelMemoryAddress) : 0,
          seg: seg === Register.FS ? 'fs' : seg === Register.GS ? 'gs' : null,
          // A 67 prefix: 32-bit base and/or index registers (eip-relative forms are resolved by iced).
          addr32:
            (baseReg >= Register.EAX && baseReg <= Register.R15D) ||
            (indexReg >= Register.EAX && indexReg <= Register.R15D),
          size: MemorySizeExt.size(ins.memorySize),
        };
        ops.push({ kind: 'mem' });
        break;
      }
      case OpKind.NearBranch16:
      case OpKind.NearBranch32:
      case OpKind.NearBranch64:
        ops.push({ kind: 'branch', target: Number(ins.nearBranch64) });
        break;
      case OpKind.MemorySegSI:
      case OpKind.MemorySegESI:
      case OpKind.MemorySegRSI:
      case OpKind.MemorySegDI:
      case OpKind.MemorySegEDI:
      case OpKind.MemorySegRDI:
      case OpKind.MemoryESDI:
      case OpKind.MemoryESEDI:
      case OpKind.MemoryESRDI:
        ops.push({ kind: 'string' });
        break;
      default: {
        const size = IMM_SIZE[k];
        if (size !== undefined) {
          ops.push({ kind: 'imm', size, value: BigInt.asUintN(64, ins.immediate(i)) });
        } else {
          ops.push({ kind: 'other', opKind: k });
        }
      }
    }
  }
  return {
    rip,
    len,
    next: rip + len,
    code: ins.code,
    mnemonic: ins.mnemonic,
    ops,
    mem,
    rep: ins.hasRepPrefix || ins.hasRepePrefix,
    repne: ins.hasRepnePrefix,
    lock: ins.hasLockPrefix,
    cc: ins.conditionCode - 1,
    endsBlock: !flowNext,
    bytes: bytes.slice(0, len),
  };
}
