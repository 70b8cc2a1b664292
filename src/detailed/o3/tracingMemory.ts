/**
 * Guest memory that also records the data accesses of the instruction being executed, so the
 * detailed CPU's µops carry real addresses: a GuestMemory with tracing on (see
 * GuestMemory.tracing for why it is not a subclass).
 */
import { GuestMemory } from '../memory.js';
import type { AddressSpace } from '../../guest/addressSpace.js';

export type TracingMemory = GuestMemory & { readonly tracing: true };

export function tracingMemory(aspace: AddressSpace): TracingMemory {
  return new GuestMemory(aspace, true) as TracingMemory;
}

export function isTracing(m: GuestMemory): m is TracingMemory {
  return m.tracing;
}
