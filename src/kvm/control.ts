/**
 * The control block shared by the main thread and the KVM worker (a SharedArrayBuffer).
 * The main thread asks the running vCPU to stop by writing a request here, setting
 * kvm_run.immediate_exit and signalling the vCPU thread; the worker reads and clears it when
 * KVM_RUN returns EINTR.
 */
export const enum StopRequest {
  None = 0,
  Pause = 1,
  TimeLimit = 2,
}

const SLOT_STOP = 0;
const SLOTS = 4;

export class ControlBlock {
  readonly words: Int32Array;
  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(SLOTS * 4)) {
    this.words = new Int32Array(buffer);
  }
  requestStop(reason: StopRequest): void {
    // A time limit outranks a pause: never downgrade.
    Atomics.compareExchange(this.words, SLOT_STOP, StopRequest.None, reason);
    if (reason === StopRequest.TimeLimit) Atomics.store(this.words, SLOT_STOP, reason);
  }
  /** Drops a stale pause request (one that arrived after the run it was meant for had ended). */
  dropStalePause(): boolean {
    return Atomics.compareExchange(this.words, SLOT_STOP, StopRequest.Pause, StopRequest.None) === StopRequest.Pause;
  }
  takeStop(): StopRequest {
    return Atomics.exchange(this.words, SLOT_STOP, StopRequest.None) as StopRequest;
  }
  peekStop(): StopRequest {
    return Atomics.load(this.words, SLOT_STOP) as StopRequest;
  }
}
