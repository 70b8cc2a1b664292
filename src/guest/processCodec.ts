/**
 * ProcessState on the wire (handoffs between CPU models, worker messages): a versioned msgpack
 * record. Decoding validates version and shape and names the bad field (ProcessStateFormatError).
 */
import { Packr } from 'msgpackr';
import { ProcessStateFormatError } from './errors.js';
import type { AddressSpace } from './addressSpace.js';
import { validateProcessState } from './process.js';
import { PROCESS_STATE_VERSION, type ProcessState } from './processState.js';

const packr = new Packr({ useRecords: false, moreTypes: false });

export function encodeProcessState(state: ProcessState): Uint8Array {
  return packr.pack(state);
}

/**
 * Decodes and validates; `memSize` bounds every physical address in it. `current`: the
 * receiver's address space, whose unchanged copy need not be validated again (validateProcessState).
 */
export function decodeProcessState(bytes: Uint8Array, memSize: number, current?: AddressSpace): ProcessState {
  let value: unknown;
  try {
    value = packr.unpack(bytes);
  } catch (e) {
    throw new ProcessStateFormatError('(encoding)', `not a msgpack record: ${(e as Error).message}`);
  }
  if (typeof value !== 'object' || value === null) throw new ProcessStateFormatError('(root)', 'not a record');
  const v = (value as { version?: unknown }).version;
  if (v !== PROCESS_STATE_VERSION) {
    throw new ProcessStateFormatError('version', `expected ${PROCESS_STATE_VERSION}, got ${String(v)}`);
  }
  return validateProcessState(value, memSize, current);
}
