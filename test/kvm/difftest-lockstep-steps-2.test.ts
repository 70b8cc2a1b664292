/**
 * Lockstep per instruction, part 2 of 2 (split so both halves run in parallel): KVM single-steps
 * each workload beside the atomic CPU for its first 100,000 instructions (see difftest-support.ts).
 */
import { defineInstructionLockstep } from './difftest-support.js';

defineInstructionLockstep(2, 2);
